/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gpuutil: helpers the built-in GPU plugins share, written against include/corral/plugin.h
 * only (so they are plugin code, not host code): the GPU constraints a pod states in its
 * annotations (docs/gpus.md), matching one GPU against them, and small GPU-set utilities.
 */
#ifndef CORRAL_PLUGIN_GPUUTIL_H
#define CORRAL_PLUGIN_GPUUTIL_H

#include "corral/plugin.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GU_MAX_ITEMS 16
#define GU_ITEM_LEN 64

struct gu_list {
    char item[GU_MAX_ITEMS][GU_ITEM_LEN];
    int n;
};

enum gu_workload { GU_WORKLOAD_NONE = 0, GU_WORKLOAD_RENDER, GU_WORKLOAD_TRAINING,
                   GU_WORKLOAD_INFERENCE, GU_WORKLOAD_OTHER };

/* Why a GPU does not satisfy the constraints (0 = it does). */
enum gu_fail {
    GU_OK = 0,
    GU_FAIL_MODEL,
    GU_FAIL_FAMILY,
    GU_FAIL_MEMORY,
    GU_FAIL_COMPUTE,
    GU_FAIL_RT_CORES,
    GU_FAIL_NVLINK,
    GU_FAIL_CLASS,
    GU_FAIL_COUNT,
};

struct gu_constraints {
    struct gu_list models, families, classes;
    int64_t min_memory_mib; /* 0 = none */
    int min_compute;        /* major * 100 + minor, -1 = none */
    bool need_rt, need_nvlink;
    enum gu_workload workload;
    bool any; /* some per-GPU constraint is present */
};

/*
 * Reads the pod's corral.io/gpu-* and corral.io/workload annotations. Returns 0, or -EINVAL
 * with err naming the annotation and the problem.
 */
int gu_constraints_parse(const struct corral_host *h, const struct corral_pod *pod,
                         struct gu_constraints *c, char *err, size_t errlen);

/* Checks one GPU; returns GU_OK or the first constraint it fails. */
enum gu_fail gu_constraints_check(const struct gu_constraints *c, const struct corral_gpu *g);

/* Splits a comma-separated list (items trimmed, empty ones dropped). Returns -E2BIG when full. */
int gu_list_parse(const char *s, struct gu_list *out);
/* Case-insensitive membership. */
bool gu_list_has(const struct gu_list *l, const char *v);
/* Writes "a, b, c" into buf. */
void gu_list_format(const struct gu_list *l, char *buf, size_t len);

/* Whole GPUs (count) and per-GPU share (milli) the pod asks for; *milli = 0 when none. */
void gu_pod_gpu(const struct corral_host *h, const struct corral_pod *pod, int *count,
                int32_t *milli);

static inline int gu_popcount(uint64_t m)
{
    return __builtin_popcountll(m);
}

#endif
