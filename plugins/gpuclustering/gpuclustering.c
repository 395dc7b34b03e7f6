/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GpuClustering: the published clustering policy (NOTES.md §3). Pods are grouped by their GPU
 * request: every shared-GPU pod is one group, whole-GPU pods group by count. A node that
 * already holds only this pod's group is preferred, then a node holding several groups
 * including it, then an idle node, then a node of other groups; within a tier, less free GPU
 * wins (25 x (8000 - free milli) / 8000, integer arithmetic as published). GPU choice is
 * ResourceFit's best-fit GPU.
 */
#include "corral/plugin.h"
#include "gpuutil.h"

#include <errno.h>
#include <stdlib.h>

#define UNIT (CORRAL_MAX_NODE_SCORE / 100)
#define MAX_SPEC_GPU 8000

struct state {
    const struct corral_host *h;
    int gpus;
    int32_t milli;
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

static int pre_score(void *s, const struct corral_pod *pod)
{
    struct state *st = s;
    gu_pod_gpu(st->h, pod, &st->gpus, &st->milli);
    return st->gpus ? CORRAL_OK : CORRAL_SKIP;
}

static int tier(struct state *st, uint32_t node)
{
    const struct corral_host *h = st->h;
    bool same = false, other = false;
    for (uint32_t i = 0; i < h->node_pod_count(h, node); i++) {
        int c;
        int32_t m;
        gu_pod_gpu(h, h->node_pod(h, node, i), &c, &m);
        if (!c)
            continue;
        bool pod_share = st->milli < 1000, other_share = m < 1000;
        if (pod_share == other_share && (pod_share || c == st->gpus))
            same = true;
        else
            other = true;
    }
    if (same)
        return other ? 2 : 3;
    return other ? 0 : 1;
}

static int64_t score(void *s, const struct corral_pod *pod, uint32_t node)
{
    struct state *st = s;
    const struct corral_host *h = st->h;
    (void)pod;
    int64_t left = h->node_allocatable(h, node, CORRAL_RES_GPU_MILLI) -
                   h->node_requested(h, node, CORRAL_RES_GPU_MILLI);
    int64_t within = 25 * (MAX_SPEC_GPU - left) / MAX_SPEC_GPU;
    return (tier(st, node) * 25 + within) * UNIT;
}

static const struct corral_plugin plugin = {
    .abi_version = CORRAL_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(struct corral_plugin),
    .name = "GpuClustering",
    .description = "published clustering: keep pods with the same GPU request together",
    .flags = CORRAL_PLUGIN_NODE_LOCAL,
    .init = init,
    .fini = fini,
    .pre_score = pre_score,
    .score = score,
};

CORRAL_PLUGIN_EXPORT const struct corral_plugin *corral_plugin_entry(void)
{
    return &plugin;
}
