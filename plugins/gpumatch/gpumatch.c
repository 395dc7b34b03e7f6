/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GpuMatch: GPU model and feature constraints (docs/gpus.md). A pod may ask, by annotation, for
 * GPU models or products (corral.io/gpu-models), families, a minimum memory or compute
 * capability, features (rt-cores, nvlink) or classes. They apply per GPU, so on a node with
 * several GPU models only the matching GPUs remain usable (the pod's GPU set is narrowed for
 * the plugins after this one). A node is rejected when fewer GPUs match than the pod needs;
 * the reason names the constraint that ruled most GPUs out, e.g.
 * "node(s) had GPU model not in [RTX-4090, RTX-3090]". Malformed annotations reject the pod
 * with the annotation and the problem.
 */
#include "corral/plugin.h"
#include "gpuutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { R_INVALID = 100 };

struct state {
    const struct corral_host *h;
    struct gu_constraints c;
    int gpus;
    int32_t milli;
    char err[256];
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

static int pre_filter(void *s, const struct corral_pod *pod)
{
    struct state *st = s;
    gu_pod_gpu(st->h, pod, &st->gpus, &st->milli);
    if (gu_constraints_parse(st->h, pod, &st->c, st->err, sizeof(st->err)) < 0)
        return CORRAL_REJECT_UNRESOLVABLE(R_INVALID);
    return st->gpus && st->c.any ? CORRAL_OK : CORRAL_SKIP;
}

static int filter(void *s, const struct corral_pod *pod, uint32_t node)
{
    struct state *st = s;
    const struct corral_host *h = st->h;
    (void)pod;
    uint32_t n = h->node_gpu_count(h, node);
    uint64_t ok = 0;
    int fails[GU_FAIL_COUNT] = {0};
    for (uint32_t g = 0; g < n; g++) {
        enum gu_fail f = gu_constraints_check(&st->c, h->node_gpu(h, node, g));
        if (f == GU_OK)
            ok |= 1ull << g;
        else
            fails[f]++;
    }
    h->cycle_restrict_gpus(h, node, ok);
    if (gu_popcount(ok & h->cycle_gpu_mask(h, node)) >= st->gpus)
        return CORRAL_OK;
    int worst = GU_FAIL_MODEL;
    for (int f = GU_FAIL_MODEL; f < GU_FAIL_COUNT; f++)
        worst = fails[f] > fails[worst] ? f : worst;
    if (n == 0)
        worst = GU_FAIL_COUNT; /* no GPUs at all */
    return CORRAL_REJECT_UNRESOLVABLE(worst);
}

static int reason(void *s, const struct corral_pod *pod, int code, char *buf, size_t len)
{
    struct state *st = s;
    struct gu_constraints c;
    char list[GU_MAX_ITEMS * (GU_ITEM_LEN + 2)];
    if (code == R_INVALID)
        return snprintf(buf, len, "%s", st->err);
    if (gu_constraints_parse(st->h, pod, &c, st->err, sizeof(st->err)) < 0)
        return snprintf(buf, len, "%s", st->err);
    switch (code) {
    case GU_FAIL_MODEL:
        gu_list_format(&c.models, list, sizeof(list));
        return snprintf(buf, len, "node(s) had GPU model not in [%s]", list);
    case GU_FAIL_FAMILY:
        gu_list_format(&c.families, list, sizeof(list));
        return snprintf(buf, len, "node(s) had GPU family not in [%s]", list);
    case GU_FAIL_MEMORY:
        return snprintf(buf, len, "node(s) had GPUs with less than %lld MiB of memory",
                        (long long)c.min_memory_mib);
    case GU_FAIL_COMPUTE:
        return snprintf(buf, len, "node(s) had GPU compute capability below %d.%d",
                        c.min_compute / 100, c.min_compute % 100);
    case GU_FAIL_RT_CORES: return snprintf(buf, len, "node(s) had no GPUs with RT cores");
    case GU_FAIL_NVLINK: return snprintf(buf, len, "node(s) had no NVLink-connected GPUs");
    case GU_FAIL_CLASS:
        gu_list_format(&c.classes, list, sizeof(list));
        return snprintf(buf, len, "node(s) had GPU class not in [%s]", list);
    case GU_FAIL_COUNT: return snprintf(buf, len, "node(s) had no GPUs");
    default: return 0;
    }
}

static const struct corral_plugin plugin = {
    .abi_version = CORRAL_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(struct corral_plugin),
    .name = "GpuMatch",
    .description = "GPU model, family, memory, compute capability, feature and class constraints",
    .flags = CORRAL_PLUGIN_NODE_LOCAL | CORRAL_PLUGIN_NODE_CLASS,
    .init = init,
    .fini = fini,
    .pre_filter = pre_filter,
    .filter = filter,
    .reason = reason,
};

CORRAL_PLUGIN_EXPORT const struct corral_plugin *corral_plugin_entry(void)
{
    return &plugin;
}
