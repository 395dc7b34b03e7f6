/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GpuTopology: multi-GPU pods get GPUs that talk fast to each other. For a pod asking for k
 * whole GPUs the plugin looks at the node's wholly free, usable GPUs: k of them on one NVLink
 * island is the best tier, k on one NUMA node the next, anything else (or a node whose
 * topology is unknown) the last. Score = tier, then within a tier the tightest group (the
 * island or NUMA node left with the fewest free GPUs, so bigger groups stay whole for bigger
 * pods). Reserve takes that group's GPUs; on nodes without topology it leaves the choice to
 * the next Reserve plugin. Single-GPU pods are placed the same way, on the fullest group.
 */
#include "corral/plugin.h"
#include "gpuutil.h"

#include <errno.h>
#include <stdlib.h>

#define TIER (CORRAL_MAX_NODE_SCORE / 3)

struct state {
    const struct corral_host *h;
    int gpus;
    int32_t milli;
};

struct pick {
    int tier;       /* 2 island, 1 NUMA, 0 none */
    int group_free; /* free GPUs in the chosen group */
    uint64_t gpus;
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
    return st->gpus > 0 && st->milli == 1000 ? CORRAL_OK : CORRAL_SKIP;
}

/* The tightest group (by island when by_island, else by NUMA node) holding k free GPUs. */
static void best_group(struct state *st, uint32_t node, uint64_t free, bool by_island,
                       struct pick *out)
{
    const struct corral_host *h = st->h;
    uint32_t n = h->node_gpu_count(h, node);
    for (uint32_t a = 0; a < n; a++) {
        if (!(free >> a & 1))
            continue;
        const struct corral_gpu *ga = h->node_gpu(h, node, a);
        int key = by_island ? ga->island : ga->numa_node;
        if (key < 0)
            continue;
        uint64_t members = 0;
        for (uint32_t b = 0; b < n; b++) {
            const struct corral_gpu *gb = h->node_gpu(h, node, b);
            if ((free >> b & 1) && (by_island ? gb->island : gb->numa_node) == key)
                members |= 1ull << b;
        }
        int cnt = gu_popcount(members);
        if (cnt < st->gpus || (out->gpus && cnt >= out->group_free))
            continue;
        uint64_t take = 0;
        for (uint32_t b = 0; b < n && gu_popcount(take) < st->gpus; b++)
            if (members >> b & 1)
                take |= 1ull << b;
        *out = (struct pick){by_island ? 2 : 1, cnt, take};
    }
}

static struct pick choose(struct state *st, uint32_t node)
{
    const struct corral_host *h = st->h;
    uint64_t allowed = h->cycle_gpu_mask(h, node), free = 0;
    bool islands = false, numa = false;
    for (uint32_t g = 0, n = h->node_gpu_count(h, node); g < n; g++) {
        const struct corral_gpu *gpu = h->node_gpu(h, node, g);
        if ((allowed >> g & 1) && gpu->free_milli == 1000)
            free |= 1ull << g;
        islands |= gpu->island >= 0;
        numa |= gpu->numa_node >= 0;
    }
    struct pick p = {0, 0, 0};
    if (islands && gu_popcount(free) >= st->gpus)
        best_group(st, node, free, true, &p);
    if (!p.gpus && numa && gu_popcount(free) >= st->gpus)
        best_group(st, node, free, false, &p);
    return p;
}

static int64_t score(void *s, const struct corral_pod *pod, uint32_t node)
{
    struct state *st = s;
    (void)pod;
    struct pick p = choose(st, node);
    if (!p.gpus)
        return 0;
    int64_t tight = (TIER - 1) * (CORRAL_MAX_GPUS_PER_NODE - p.group_free) /
                    CORRAL_MAX_GPUS_PER_NODE;
    return p.tier * TIER + tight;
}

static int reserve(void *s, const struct corral_pod *pod, uint32_t node)
{
    struct state *st = s;
    gu_pod_gpu(st->h, pod, &st->gpus, &st->milli);
    if (!st->gpus || st->milli != 1000)
        return CORRAL_OK;
    struct pick p = choose(st, node);
    if (!p.gpus)
        return CORRAL_OK;
    int rc = st->h->assign_gpus(st->h, pod, node, p.gpus, 1000);
    return rc == -EBUSY ? CORRAL_OK : rc;
}

static const struct corral_plugin plugin = {
    .abi_version = CORRAL_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(struct corral_plugin),
    .name = "GpuTopology",
    .description = "multi-GPU pods on one NVLink island or NUMA node, tightest group first",
    .flags = CORRAL_PLUGIN_NODE_LOCAL | CORRAL_PLUGIN_NODE_CLASS,
    .init = init,
    .fini = fini,
    .pre_score = pre_score,
    .score = score,
    .reserve = reserve,
};

CORRAL_PLUGIN_EXPORT const struct corral_plugin *corral_plugin_entry(void)
{
    return &plugin;
}
