/* SPDX-License-Identifier: Apache-2.0 */
/*
 * frag: GPU fragmentation as defined by FGD (Weng et al., ATC '23; see
 * ../shared/alibaba-gpu-2023/NOTES.md §3): given a distribution of "typical tasks", a node's
 * fragmentation is the expected amount of its idle GPU share that a random typical task could
 * not use. For one task: if it cannot run on the node at all (too little CPU, not enough GPUs
 * with enough free share, wrong model), every idle milli-GPU counts; if it can, the idle share
 * on GPUs that are too full for it (or of a model it may not use) counts. Written against
 * include/corral/plugin.h only.
 *
 * A task distribution is either given (plugin arguments) or learned online from the pods the
 * plugin sees: the most frequent (cpu, GPUs, share, models) shapes covering a fraction of the
 * pods seen so far, refreshed at doubling counts and adopted only when it moved by more than a
 * threshold (total variation distance), so the host's caches are dropped rarely.
 */
#ifndef CORRAL_PLUGIN_FRAG_H
#define CORRAL_PLUGIN_FRAG_H

#include "corral/plugin.h"
#include "gpuutil.h"

#include <stdbool.h>
#include <stdint.h>

#define FRAG_MAX_TASKS 256

/* Hot data only; a task's model restriction lives in frag_model.models. */
struct frag_task {
    int64_t cpu;   /* millicores */
    int64_t mem;   /* bytes (0: not checked) */
    int32_t gpus;  /* 0 for CPU-only tasks */
    int32_t milli; /* per-GPU share, 1000 for whole GPUs */
    double weight; /* probability; weights sum to 1 */
    uint32_t count;
    int32_t models; /* index into frag_model.models, -1 = any model */
    uint64_t allow; /* bits of frag_model.names the task may use; all ones = any model */
};

#define FRAG_MAX_NAMES 63 /* bit 63 stands for "a model no task names" */

struct frag_model {
    struct frag_task task[FRAG_MAX_TASKS]; /* GPU tasks by decreasing share, CPU-only last */
    struct gu_list models[FRAG_MAX_TASKS];
    int n, n_models;
    char names[FRAG_MAX_NAMES][GU_ITEM_LEN]; /* model names the tasks restrict to */
    int n_names;
    bool any_models; /* some task restricts models */
    /*
     * false (FGD as published): a CPU-only task counts every idle GPU as fragment, fitting or
     * not, which makes it a constant; true: only where the task's cpu/memory do not fit.
     */
    bool cpu_aware;
};

/* One node's state as FGD sees it. */
struct frag_node {
    int n_gpus;
    int32_t free[CORRAL_MAX_GPUS_PER_NODE];
    const struct corral_gpu *gpu[CORRAL_MAX_GPUS_PER_NODE];
    int64_t cpu_free, mem_free;
    /* Model-name bits of each GPU under bits_for (computed on first use, then reused). */
    uint64_t bits[CORRAL_MAX_GPUS_PER_NODE];
    const struct frag_model *bits_for;
};

/* Reads node's state through the host. */
void frag_node_read(const struct corral_host *h, uint32_t node, struct frag_node *out);

/* Expected fragmented GPU milli of nv under model m (nv caches per-GPU model bits). */
double frag_amount(const struct frag_model *m, struct frag_node *nv);

/*
 * Parses a typicalTasks argument: a list of {cpu, memory?, gpus, gpuMilli, models?, weight? |
 * count?}. Returns 0 or -EINVAL with err.
 */
int frag_model_parse(const struct corral_host *h, const struct corral_value *list,
                     struct frag_model *m, char *err, size_t errlen);

/* The task shape of a pod; its model list goes to *models. */
void frag_task_of(const struct corral_host *h, const struct corral_pod *pod, struct frag_task *t,
                  struct gu_list *models);

/* Online learning of the task distribution. */
struct frag_learner {
    struct frag_task *seen; /* distinct shapes, with counts */
    struct gu_list *seen_models;
    int n_seen, cap_seen;
    uint64_t total;
    uint64_t next_refresh;
    double coverage, threshold;
    struct frag_model *next; /* scratch */
};

/* Returns 0 or -ENOMEM. */
int frag_learner_init(struct frag_learner *l, double coverage, double threshold);
void frag_learner_free(struct frag_learner *l);
/*
 * Counts the pod's shape. Returns 1 when m was replaced by a materially different
 * distribution (the caller should drop cached results), else 0.
 */
int frag_learner_observe(struct frag_learner *l, const struct corral_host *h,
                         const struct corral_pod *pod, struct frag_model *m);

#endif
