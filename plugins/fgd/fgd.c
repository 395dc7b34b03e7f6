/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fgd: the published Fragmentation Gradient Descent policy (Weng et al., ATC '23), as a Score
 * and Reserve plugin. For every feasible node it finds the placement (which GPU, for a shared
 * GPU) that increases the node's fragmentation (lib/frag.h) the least, and scores the node by
 * that increase as the published code does: the integer part of 100 x sigmoid(-increase/1000).
 * Reserve then takes the same GPUs.
 *
 * args.typicalTasks: a list of task shapes with weights or counts (FGD's "typical tasks"), or
 * "learn" (default) to learn them online from the pods seen (coverage args.coverage, 0.95).
 * `corral sim` replaces the string "workload" with the replayed workload's own shapes, which
 * is what the published experiment did.
 */
#include "corral/plugin.h"
#include "frag.h"
#include "gpuutil.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct state {
    const struct corral_host *h;
    struct frag_model model;
    bool learn;
    struct frag_learner learner;
    double *f0;
    uint64_t *f0_gen;
    uint32_t cap;
    /* per cycle */
    struct frag_task pod;
    struct gu_list pod_models;
};

static int init(const struct corral_host *h, const struct corral_value *args, void **out,
                char *err, size_t errlen)
{
    struct state *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    st->h = h;
    st->model.cpu_aware = false; /* as published: CPU-only tasks count every idle GPU */
    const struct corral_value *tt = h->value_get(args, "typicalTasks");
    const char *mode = h->value_string(tt);
    const struct corral_value *cov = h->value_get(args, "coverage");
    double coverage = cov ? h->value_number(cov) : 0.95;
    int rc = 0;
    if (coverage <= 0 || coverage > 1) {
        snprintf(err, errlen, "coverage: must be in (0, 1]");
        rc = -EINVAL;
    } else if (!tt || (mode && strcmp(mode, "learn") == 0)) {
        st->learn = true;
        rc = frag_learner_init(&st->learner, coverage, 0.05);
    } else if (mode && strcmp(mode, "workload") == 0) {
        snprintf(err, errlen, "typicalTasks: \"workload\" is only known to `corral sim`; give a "
                 "list or \"learn\"");
        rc = -EINVAL;
    } else if (mode) {
        snprintf(err, errlen, "typicalTasks: \"%s\" is neither a list nor \"learn\"", mode);
        rc = -EINVAL;
    } else {
        rc = frag_model_parse(h, tt, &st->model, err, errlen);
    }
    if (rc < 0) {
        frag_learner_free(&st->learner);
        free(st);
        return rc;
    }
    *out = st;
    return 0;
}

static void fini(void *s)
{
    struct state *st = s;
    frag_learner_free(&st->learner);
    free(st->f0);
    free(st->f0_gen);
    free(st);
}

static int pre_filter(void *s, const struct corral_pod *pod)
{
    struct state *st = s;
    if (st->learn && frag_learner_observe(&st->learner, st->h, pod, &st->model)) {
        if (st->f0_gen)
            memset(st->f0_gen, 0, st->cap * sizeof(uint64_t));
        st->h->invalidate(st->h);
    }
    return CORRAL_SKIP; /* no Filter */
}

static int pre_score(void *s, const struct corral_pod *pod)
{
    struct state *st = s;
    frag_task_of(st->h, pod, &st->pod, &st->pod_models);
    return CORRAL_OK;
}

/* The node's current fragmentation, cached per node generation. */
static double current_frag(struct state *st, uint32_t node, struct frag_node *nv)
{
    uint32_t n = st->h->node_count(st->h);
    if (n > st->cap) {
        uint32_t cap = n * 2;
        double *f = realloc(st->f0, cap * sizeof(double));
        uint64_t *g = f ? realloc(st->f0_gen, cap * sizeof(uint64_t)) : NULL;
        if (f)
            st->f0 = f;
        if (!g)
            return frag_amount(&st->model, nv);
        st->f0_gen = g;
        memset(g + st->cap, 0, (cap - st->cap) * sizeof(uint64_t));
        st->cap = cap;
    }
    uint64_t gen = st->h->node_generation(st->h, node);
    if (st->f0_gen[node] != gen) {
        st->f0[node] = frag_amount(&st->model, nv);
        st->f0_gen[node] = gen;
    }
    return st->f0[node];
}

/* Best placement on node: returns the fragmentation increase and the GPUs in *pick. */
static double best_delta(struct state *st, uint32_t node, uint64_t *pick)
{
    const struct corral_host *h = st->h;
    struct frag_node nv;
    frag_node_read(h, node, &nv);
    double f0 = current_frag(st, node, &nv);
    uint64_t allowed = h->cycle_gpu_mask(h, node);
    nv.cpu_free -= st->pod.cpu;
    nv.mem_free -= st->pod.mem;
    *pick = 0;
    if (st->pod.gpus == 0)
        return frag_amount(&st->model, &nv) - f0;
    if (st->pod.milli == 1000) {
        for (int g = 0; g < nv.n_gpus && gu_popcount(*pick) < st->pod.gpus; g++)
            if ((allowed >> g & 1) && nv.free[g] == 1000) {
                *pick |= 1ull << g;
                nv.free[g] = 0;
            }
        return frag_amount(&st->model, &nv) - f0;
    }
    double best = 1e18;
    for (int g = 0; g < nv.n_gpus; g++) {
        int32_t f = nv.free[g];
        if (!(allowed >> g & 1) || f < st->pod.milli)
            continue;
        nv.free[g] = f - st->pod.milli;
        double d = frag_amount(&st->model, &nv) - f0;
        nv.free[g] = f;
        int32_t pf = *pick ? nv.free[__builtin_ctzll(*pick)] : 0;
        if (d < best - 1e-9 || (d < best + 1e-9 && f < pf)) {
            best = d;
            *pick = 1ull << g;
        }
    }
    return best;
}

static int64_t score(void *s, const struct corral_pod *pod, uint32_t node)
{
    struct state *st = s;
    (void)pod;
    uint64_t pick;
    double d = best_delta(st, node, &pick);
    /* As published: an integer percentage, sigmoid of the decrease in thousands of milli. */
    return (int64_t)(100.0 / (1.0 + exp(d / 1000.0))) * (CORRAL_MAX_NODE_SCORE / 100);
}

static int reserve(void *s, const struct corral_pod *pod, uint32_t node)
{
    struct state *st = s;
    if (st->pod.gpus == 0)
        return CORRAL_OK;
    uint64_t pick;
    best_delta(st, node, &pick);
    if (!pick)
        return CORRAL_OK; /* leave it to the next Reserve plugin */
    int rc = st->h->assign_gpus(st->h, pod, node, pick, st->pod.milli);
    return rc == -EBUSY ? CORRAL_OK : rc;
}

static const struct corral_plugin plugin = {
    .abi_version = CORRAL_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(struct corral_plugin),
    .name = "Fgd",
    .description = "published FGD: least increase of expected GPU fragmentation",
    .flags = CORRAL_PLUGIN_NODE_LOCAL | CORRAL_PLUGIN_NODE_CLASS,
    .init = init,
    .fini = fini,
    .pre_filter = pre_filter,
    .pre_score = pre_score,
    .score = score,
    .reserve = reserve,
};

CORRAL_PLUGIN_EXPORT const struct corral_plugin *corral_plugin_entry(void)
{
    return &plugin;
}
