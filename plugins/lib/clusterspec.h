/* SPDX-License-Identifier: Apache-2.0 */
/*
 * clusterspec: the largest node capacities in the cluster (cpu, memory, GPU milli), which the
 * published BestFit and DotProd policies normalise by. Recomputed when the node count
 * changes; the caller then invalidates the host's caches. Written against plugin.h only.
 */
#ifndef CORRAL_PLUGIN_CLUSTERSPEC_H
#define CORRAL_PLUGIN_CLUSTERSPEC_H

#include "corral/plugin.h"

#include <stdbool.h>
#include <stdint.h>

struct clusterspec {
    uint32_t nodes_seen;
    int64_t max_cpu, max_mem, max_gpu_milli;
};

/* Refreshes cs; returns true when the maxima changed. */
static inline bool clusterspec_refresh(struct clusterspec *cs, const struct corral_host *h)
{
    uint32_t n = h->node_count(h);
    if (n == cs->nodes_seen)
        return false;
    const int64_t *cpu = h->node_column(h, CORRAL_COL_ALLOC_CPU);
    const int64_t *mem = h->node_column(h, CORRAL_COL_ALLOC_MEMORY);
    const int64_t *gpu = h->node_column(h, CORRAL_COL_ALLOC_GPU);
    struct clusterspec next = {n, 1, 1, 1};
    for (uint32_t i = 0; i < n; i++) {
        next.max_cpu = cpu[i] > next.max_cpu ? cpu[i] : next.max_cpu;
        next.max_mem = mem[i] > next.max_mem ? mem[i] : next.max_mem;
        next.max_gpu_milli = gpu[i] * 1000 > next.max_gpu_milli ? gpu[i] * 1000 : next.max_gpu_milli;
    }
    bool changed = next.max_cpu != cs->max_cpu || next.max_mem != cs->max_mem ||
                   next.max_gpu_milli != cs->max_gpu_milli;
    *cs = next;
    return changed;
}

#endif
