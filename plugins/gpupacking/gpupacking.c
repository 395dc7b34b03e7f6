/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GpuPacking: the published packing policy (NOTES.md §3), integer scores as published:
 * using only partly used GPUs scores 100 - (their free share in %)/10 (at least 50); having to
 * open k wholly free GPUs on a used node scores 50 - k (at least 33); an idle node scores
 * 33 - its GPU count, so smaller idle nodes come first. GPU choice is ResourceFit's best-fit.
 */
#include "corral/plugin.h"
#include "gpuutil.h"

#include <errno.h>
#include <stdlib.h>


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

/* The published rule, in integer percentages (see the head comment). */
static int64_t packing(struct state *st, uint32_t node)
{
    const struct corral_host *h = st->h;
    uint64_t allowed = h->cycle_gpu_mask(h, node);
    uint32_t n = h->node_gpu_count(h, node);
    int32_t left[CORRAL_MAX_GPUS_PER_NODE];
    int fully_free = 0;
    for (uint32_t g = 0; g < n; g++) {
        left[g] = h->node_gpu(h, node, g)->free_milli;
        fully_free += left[g] == 1000;
    }
    if (fully_free == (int)n) /* an idle node: smaller ones first */
        return 100 / 3 - fully_free > fully_free ? 100 / 3 - fully_free : fully_free;
    /* Take GPUs least-free first, as the published allocator does. */
    uint64_t used = 0;
    int need = st->gpus, new_gpus = 0;
    int64_t free_ratio = 0;
    while (need > 0) {
        int best = -1;
        for (uint32_t g = 0; g < n; g++)
            if ((allowed >> g & 1) && !(used >> g & 1) && left[g] >= st->milli &&
                (best < 0 || left[g] < left[best]))
                best = (int)g;
        if (best < 0)
            return 0;
        used |= 1ull << best;
        new_gpus += left[best] == 1000;
        free_ratio += left[best] * 100 / 1000;
        need--;
    }
    if (new_gpus > 0)
        return 100 / 2 - new_gpus > 100 / 3 ? 100 / 2 - new_gpus : 100 / 3;
    return 100 - free_ratio / 10 > 100 / 2 ? 100 - free_ratio / 10 : 100 / 2;
}

static int64_t score(void *s, const struct corral_pod *pod, uint32_t node)
{
    (void)pod;
    return packing(s, node) * (CORRAL_MAX_NODE_SCORE / 100);
}

static const struct corral_plugin plugin = {
    .abi_version = CORRAL_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(struct corral_plugin),
    .name = "GpuPacking",
    .description = "published packing: partly used GPUs, then used nodes, then small idle nodes",
    .flags = CORRAL_PLUGIN_NODE_LOCAL | CORRAL_PLUGIN_NODE_CLASS,
    .init = init,
    .fini = fini,
    .pre_score = pre_score,
    .score = score,
};

CORRAL_PLUGIN_EXPORT const struct corral_plugin *corral_plugin_entry(void)
{
    return &plugin;
}
