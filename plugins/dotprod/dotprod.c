/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DotProd: the published Tetris-style policy (NOTES.md §3; dimext=merge, norm=max): the dot
 * product of the node's free (cpu, GPU milli) vector and the pod's demand, each dimension
 * divided by the largest node capacity; the node with the smallest product wins
 * (score = 1 - dot / 2). GPU choice is ResourceFit's best-fit GPU.
 */
#include "corral/plugin.h"
#include "clusterspec.h"

#include <errno.h>
#include <stdlib.h>

struct state {
    const struct corral_host *h;
    struct clusterspec cs;
    int64_t cpu, gpu_milli;
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
    const struct corral_host *h = st->h;
    if (clusterspec_refresh(&st->cs, h))
        h->invalidate(h);
    st->cpu = h->pod_request(h, pod, CORRAL_RES_CPU);
    st->gpu_milli = h->pod_request(h, pod, CORRAL_RES_GPU) * 1000 +
                    h->pod_request(h, pod, CORRAL_RES_GPU_MILLI);
    return CORRAL_OK;
}

static int64_t score(void *s, const struct corral_pod *pod, uint32_t node)
{
    struct state *st = s;
    const struct corral_host *h = st->h;
    (void)pod;
    double mc = (double)st->cs.max_cpu, mg = (double)st->cs.max_gpu_milli;
    double cpu_free = (double)(h->node_allocatable(h, node, CORRAL_RES_CPU) -
                               h->node_requested(h, node, CORRAL_RES_CPU));
    double gpu_free = (double)(h->node_allocatable(h, node, CORRAL_RES_GPU_MILLI) -
                               h->node_requested(h, node, CORRAL_RES_GPU_MILLI));
    double dot = (cpu_free / mc) * ((double)st->cpu / mc) + (gpu_free / mg) * ((double)st->gpu_milli / mg);
    double v = (1.0 - dot / 2.0) * 100; /* an integer percentage, as published */
    return v < 0 ? 0 : (int64_t)v * (CORRAL_MAX_NODE_SCORE / 100);
}

static const struct corral_plugin plugin = {
    .abi_version = CORRAL_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(struct corral_plugin),
    .name = "DotProd",
    .description = "published Tetris-style dot product of free resources and demand",
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
