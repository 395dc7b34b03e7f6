/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GpuClass: keeps each kind of work on the GPUs meant for it (docs/gpus.md).
 *  - Filter: render work (corral.io/workload: render) only gets GPUs with RT cores.
 *  - Score: a GPU pod that does not need a tensor-class datacenter GPU (it is not training
 *    work, does not ask for the datacenter-training class or NVLink) scores nodes by the share
 *    of its usable GPUs that are not datacenter-training class, so H100/A100-class nodes are
 *    used by others only when nothing else fits; training work prefers them. CPU-only pods
 *    prefer nodes without GPUs. GPUs of unknown class count as not datacenter-training.
 */
#include "corral/plugin.h"
#include "gpuutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRAINING "datacenter-training"
#define R_RT 1
#define R_INVALID 2

struct state {
    const struct corral_host *h;
    struct gu_constraints c;
    int gpus;
    int32_t milli;
    bool render, wants_datacenter;
    char err[256];
    const struct corral_pod *read_for; /* the pod pre_filter read this cycle */
    uint64_t read_seq;
    int read_rc;
};

static int init(const struct corral_host *h, const struct corral_value *args, void **out,
                char *err, size_t errlen)
{
    (void)args;
    (void)err;
    (void)errlen;
    struct state *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    st->h = h;
    *out = st;
    return 0;
}

static void fini(void *s)
{
    free(s);
}

static int read_pod(struct state *st, const struct corral_pod *pod)
{
    gu_pod_gpu(st->h, pod, &st->gpus, &st->milli);
    if (gu_constraints_parse(st->h, pod, &st->c, st->err, sizeof(st->err)) < 0)
        return -EINVAL;
    st->render = st->c.workload == GU_WORKLOAD_RENDER;
    st->wants_datacenter = st->c.workload == GU_WORKLOAD_TRAINING || st->c.need_nvlink ||
                           gu_list_has(&st->c.classes, TRAINING);
    return 0;
}

static int pre_filter(void *s, const struct corral_pod *pod)
{
    struct state *st = s;
    st->read_rc = read_pod(st, pod);
    st->read_for = pod;
    st->read_seq = st->h->pod_sequence(st->h, pod);
    if (st->read_rc < 0)
        return CORRAL_REJECT_UNRESOLVABLE(R_INVALID);
    return st->gpus && st->render ? CORRAL_OK : CORRAL_SKIP;
}

static int filter(void *s, const struct corral_pod *pod, uint32_t node)
{
    struct state *st = s;
    const struct corral_host *h = st->h;
    (void)pod;
    uint64_t rt = 0;
    for (uint32_t g = 0; g < h->node_gpu_count(h, node); g++)
        if (h->node_gpu(h, node, g)->flags & CORRAL_GPU_RT_CORES)
            rt |= 1ull << g;
    h->cycle_restrict_gpus(h, node, rt);
    return gu_popcount(h->cycle_gpu_mask(h, node)) >= st->gpus ? CORRAL_OK
                                                               : CORRAL_REJECT_UNRESOLVABLE(R_RT);
}

static int pre_score(void *s, const struct corral_pod *pod)
{
    struct state *st = s;
    int rc = st->read_rc;
    if (st->read_for != pod || st->read_seq != st->h->pod_sequence(st->h, pod))
        rc = read_pod(st, pod); /* else pre_filter just read this pod */
    st->read_for = NULL;
    return rc < 0 ? CORRAL_SKIP : CORRAL_OK;
}

static int64_t score(void *s, const struct corral_pod *pod, uint32_t node)
{
    struct state *st = s;
    const struct corral_host *h = st->h;
    (void)pod;
    uint32_t n = h->node_gpu_count(h, node);
    if (!st->gpus)
        return n == 0 ? CORRAL_MAX_NODE_SCORE : CORRAL_MAX_NODE_SCORE / 2;
    uint64_t allowed = h->cycle_gpu_mask(h, node);
    int64_t usable = 0, training = 0;
    for (uint32_t g = 0; g < n; g++) {
        if (!(allowed >> g & 1))
            continue;
        usable++;
        training += strcmp(h->node_gpu(h, node, g)->gpu_class, TRAINING) == 0;
    }
    if (!usable)
        return 0;
    int64_t share = training * CORRAL_MAX_NODE_SCORE / usable;
    return st->wants_datacenter ? share : CORRAL_MAX_NODE_SCORE - share;
}

static int reason(void *s, const struct corral_pod *pod, int code, char *buf, size_t len)
{
    struct state *st = s;
    (void)pod;
    if (code == R_INVALID)
        return snprintf(buf, len, "%s", st->err);
    return snprintf(buf, len, "node(s) had no GPUs with RT cores (render workload)");
}

static const struct corral_plugin plugin = {
    .abi_version = CORRAL_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(struct corral_plugin),
    .name = "GpuClass",
    .description = "render work on RT-core GPUs; other work away from training-class GPUs",
    .flags = CORRAL_PLUGIN_NODE_LOCAL | CORRAL_PLUGIN_NODE_CLASS,
    .init = init,
    .fini = fini,
    .pre_filter = pre_filter,
    .filter = filter,
    .pre_score = pre_score,
    .score = score,
    .reason = reason,
};

CORRAL_PLUGIN_EXPORT const struct corral_plugin *corral_plugin_entry(void)
{
    return &plugin;
}
