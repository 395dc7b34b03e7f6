/* SPDX-License-Identifier: Apache-2.0 */
/*
 * BestFit: the published best-fit policy (NOTES.md §3): score = 1 - sum over (cpu, GPU) of
 * 0.5 * (free - request) / largest node capacity, i.e. the node left with the least free
 * resource wins. As published, the score is an integer percentage, min-max normalised over the
 * feasible nodes (NormalizeScore). GPU choice is ResourceFit's best-fit GPU.
 * args.weights: {cpu, gpu} (0.5 each).
 */
#include "corral/plugin.h"
#include "clusterspec.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

struct state {
    const struct corral_host *h;
    struct clusterspec cs;
    double w_cpu, w_gpu;
    int64_t cpu, gpu_milli;
};

static int init(const struct corral_host *h, const struct corral_value *args, void **out,
                char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    struct state *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    st->h = h;
    const struct corral_value *w = h->value_get(args, "weights");
    st->w_cpu = h->value_get(w, "cpu") ? h->value_number(h->value_get(w, "cpu")) : 0.5;
    st->w_gpu = h->value_get(w, "gpu") ? h->value_number(h->value_get(w, "gpu")) : 0.5;
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
    double cpu_free = (double)(h->node_allocatable(h, node, CORRAL_RES_CPU) -
                               h->node_requested(h, node, CORRAL_RES_CPU) - st->cpu);
    double gpu_free = (double)(h->node_allocatable(h, node, CORRAL_RES_GPU_MILLI) -
                               h->node_requested(h, node, CORRAL_RES_GPU_MILLI) - st->gpu_milli);
    double left = st->w_cpu * cpu_free / (double)st->cs.max_cpu +
                  st->w_gpu * gpu_free / (double)st->cs.max_gpu_milli;
    double v = (1.0 - left / (st->w_cpu + st->w_gpu)) * 100;
    return v < 0 ? 0 : (int64_t)v;
}

/* Kubernetes-style min-max normalisation to integer percentages, as published. */
static void normalize(void *s, const struct corral_pod *pod, const uint32_t *nodes,
                      int64_t *scores, size_t n)
{
    (void)s;
    (void)pod;
    (void)nodes;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        lo = scores[i] < lo ? scores[i] : lo;
        hi = scores[i] > hi ? scores[i] : hi;
    }
    for (size_t i = 0; i < n; i++)
        scores[i] = hi == lo ? 0 : (scores[i] - lo) * 100 / (hi - lo) * (CORRAL_MAX_NODE_SCORE / 100);
}

static const struct corral_plugin plugin = {
    .abi_version = CORRAL_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(struct corral_plugin),
    .name = "BestFit",
    .description = "published best-fit: least free cpu and GPU left",
    .flags = CORRAL_PLUGIN_NODE_LOCAL | CORRAL_PLUGIN_NODE_CLASS,
    .init = init,
    .fini = fini,
    .pre_score = pre_score,
    .score = score,
    .normalize_score = normalize,
};

CORRAL_PLUGIN_EXPORT const struct corral_plugin *corral_plugin_entry(void)
{
    return &plugin;
}
