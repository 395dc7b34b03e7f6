/* SPDX-License-Identifier: Apache-2.0 */
/*
 * MostAllocated: Kubernetes' bin-packing strategy of NodeResourcesFit: for each resource,
 * (requested + pod) / allocatable, averaged with weights; the fullest node wins.
 * args.resources: list of {name: cpu|memory|nvidia.com/gpu, weight} (default all three,
 * weight 1; nvidia.com/gpu counts shares in milli).
 */
#include "corral/plugin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct state {
    const struct corral_host *h;
    int64_t w[3]; /* cpu, memory, gpu */
    int64_t req[3];
};

static int init(const struct corral_host *h, const struct corral_value *args, void **out,
                char *err, size_t errlen)
{
    struct state *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    st->h = h;
    const struct corral_value *res = h->value_get(args, "resources");
    if (!res) {
        st->w[0] = st->w[1] = st->w[2] = 1;
    }
    for (size_t i = 0; i < h->value_size(res); i++) {
        const struct corral_value *r = h->value_at(res, i);
        const char *name = h->value_string(h->value_get(r, "name"));
        int64_t w = h->value_get(r, "weight") ? h->value_integer(h->value_get(r, "weight")) : 1;
        int k = !name ? -1 : strcmp(name, "cpu") == 0 ? 0 : strcmp(name, "memory") == 0 ? 1
                          : strcmp(name, "nvidia.com/gpu") == 0 ? 2 : -1;
        if (k < 0 || w < 0) {
            snprintf(err, errlen, "resources[%zu]: name must be cpu, memory or nvidia.com/gpu "
                     "and weight >= 0", i);
            free(st);
            return -EINVAL;
        }
        st->w[k] = w;
    }
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
    st->req[0] = h->pod_request(h, pod, CORRAL_RES_CPU);
    st->req[1] = h->pod_request(h, pod, CORRAL_RES_MEMORY);
    st->req[2] = h->pod_request(h, pod, CORRAL_RES_GPU) * 1000 +
                 h->pod_request(h, pod, CORRAL_RES_GPU_MILLI);
    return CORRAL_OK;
}

static int64_t score(void *s, const struct corral_pod *pod, uint32_t node)
{
    struct state *st = s;
    const struct corral_host *h = st->h;
    (void)pod;
    static const enum corral_resource r[3] = {CORRAL_RES_CPU, CORRAL_RES_MEMORY,
                                              CORRAL_RES_GPU_MILLI};
    double sum = 0;
    int64_t wsum = 0;
    for (int k = 0; k < 3; k++) {
        int64_t cap = h->node_allocatable(h, node, r[k]);
        if (!st->w[k] || cap <= 0)
            continue;
        int64_t used = h->node_requested(h, node, r[k]) + st->req[k];
        sum += (double)st->w[k] * (double)(used > cap ? cap : used) / (double)cap;
        wsum += st->w[k];
    }
    return wsum ? (int64_t)(sum / (double)wsum * CORRAL_MAX_NODE_SCORE) : 0;
}

static const struct corral_plugin plugin = {
    .abi_version = CORRAL_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(struct corral_plugin),
    .name = "MostAllocated",
    .description = "Kubernetes MostAllocated: prefer the fullest node",
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
