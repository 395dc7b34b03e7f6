/* SPDX-License-Identifier: Apache-2.0 */
/*
 * FragAware: corral's default packing score, in the spirit of FGD (lib/frag.h).
 *
 * For each feasible node it finds the GPUs that would raise the node's expected fragmentation
 * the least (for a shared GPU, the fitting GPU with the smallest increase, then the one left
 * fullest), and scores the node lexicographically: first by that increase, rounded to
 * args.resolution milli-GPU (so near-equal increases count as equal), then by a packing term
 * (args.secondary: mostAllocated, the node's GPU share allocated after the placement, or
 * none). With the profile's tieBreak: first, remaining ties go to the first node in a fixed
 * order, which keeps consolidating work onto the same nodes and leaves whole nodes free.
 * Reserve takes the GPUs the score was computed for.
 *
 * The task distribution is learned online from the pods seen so far (args.typicalTasks:
 * "learn", the default; coverage args.coverage) or given as a list; it is never read from the
 * future. args.cpuAware counts CPU-only tasks that no longer fit as fragmenting the idle GPUs.
 */
#include "corral/plugin.h"
#include "frag.h"
#include "gpuutil.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 5000 /* increases are clamped to +-BUCKETS x resolution */
#define SECONDARY 100

enum secondary { SEC_NONE, SEC_MOST_ALLOCATED };

struct state {
    const struct corral_host *h;
    struct frag_model model;
    bool learn;
    struct frag_learner learner;
    double resolution;
    double balance;               /* weight of the stranded-GPU term */
    double seen_cpu, seen_mem, seen_gpu; /* sums over GPU pods seen */
    double r_cpu, r_mem;          /* cpu and memory per GPU milli, frozen per epoch */
    enum secondary sec;
    double *f0;
    uint64_t *f0_gen, f0_epoch, *f0_epoch_seen;
    uint32_t cap;
    uint64_t epoch;
    struct frag_task pod;
    struct gu_list pod_models;
};

static int parse_args(struct state *st, const struct corral_value *args, char *err,
                      size_t errlen)
{
    const struct corral_host *h = st->h;
    const struct corral_value *tt = h->value_get(args, "typicalTasks");
    const char *mode = h->value_string(tt);
    const struct corral_value *cov = h->value_get(args, "coverage");
    const struct corral_value *res = h->value_get(args, "resolution");
    const char *sec = h->value_string(h->value_get(args, "secondary"));
    double coverage = cov ? h->value_number(cov) : 0.95;
    st->resolution = res ? h->value_number(res) : 1.0;
    st->model.cpu_aware = h->value_bool(h->value_get(args, "cpuAware"));
    const struct corral_value *bal = h->value_get(args, "balance");
    st->balance = bal ? h->value_number(bal) : 0;
    if (coverage <= 0 || coverage > 1 || st->resolution < 1) {
        snprintf(err, errlen, "coverage must be in (0, 1] and resolution >= 1");
        return -EINVAL;
    }
    if (!sec || strcmp(sec, "mostAllocated") == 0)
        st->sec = SEC_MOST_ALLOCATED;
    else if (strcmp(sec, "none") == 0)
        st->sec = SEC_NONE;
    else {
        snprintf(err, errlen, "secondary: \"%s\" is not mostAllocated or none", sec);
        return -EINVAL;
    }
    const struct corral_value *thr = h->value_get(args, "refreshThreshold");
    double threshold = thr ? h->value_number(thr) : 0.05;
    if (!tt || (mode && strcmp(mode, "learn") == 0)) {
        st->learn = true;
        return frag_learner_init(&st->learner, coverage, threshold);
    }
    if (mode) {
        snprintf(err, errlen, "typicalTasks: \"%s\" is neither a list nor \"learn\"", mode);
        return -EINVAL;
    }
    bool cpu_aware = st->model.cpu_aware;
    int rc = frag_model_parse(h, tt, &st->model, err, errlen);
    st->model.cpu_aware = cpu_aware;
    double cpu = 0, mem = 0, gpu = 0;
    for (int i = 0; i < st->model.n; i++) {
        const struct frag_task *t = &st->model.task[i];
        cpu += t->weight * (double)t->cpu * (t->gpus > 0);
        mem += t->weight * (double)t->mem * (t->gpus > 0);
        gpu += t->weight * (double)t->gpus * t->milli;
    }
    st->r_cpu = gpu > 0 ? cpu / gpu : 0;
    st->r_mem = gpu > 0 ? mem / gpu : 0;
    return rc;
}

static int init(const struct corral_host *h, const struct corral_value *args, void **out,
                char *err, size_t errlen)
{
    struct state *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    st->h = h;
    st->epoch = 1;
    int rc = parse_args(st, args, err, errlen);
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

static void observe_ratio(struct state *st, const struct corral_pod *pod)
{
    struct frag_task t;
    struct gu_list models;
    frag_task_of(st->h, pod, &t, &models);
    if (t.gpus == 0)
        return;
    st->seen_cpu += (double)t.cpu;
    st->seen_mem += (double)t.mem;
    st->seen_gpu += (double)t.gpus * t.milli;
}

static int pre_filter(void *s, const struct corral_pod *pod)
{
    struct state *st = s;
    observe_ratio(st, pod);
    if (st->learn) {
        if (frag_learner_observe(&st->learner, st->h, pod, &st->model)) {
            st->epoch++;
            st->r_cpu = st->seen_gpu > 0 ? st->seen_cpu / st->seen_gpu : 0;
            st->r_mem = st->seen_gpu > 0 ? st->seen_mem / st->seen_gpu : 0;
            st->h->invalidate(st->h);
        }
    }
    return CORRAL_SKIP;
}

static int pre_score(void *s, const struct corral_pod *pod)
{
    struct state *st = s;
    frag_task_of(st->h, pod, &st->pod, &st->pod_models);
    return CORRAL_OK;
}

static bool grow(struct state *st, uint32_t n)
{
    if (n <= st->cap)
        return true;
    uint32_t cap = n * 2;
    double *f = realloc(st->f0, cap * sizeof(double));
    if (f)
        st->f0 = f;
    uint64_t *g = f ? realloc(st->f0_gen, cap * 2 * sizeof(uint64_t)) : NULL;
    if (!g)
        return false;
    memset(g + 2 * st->cap, 0, (cap - st->cap) * 2 * sizeof(uint64_t));
    st->f0_gen = g;
    st->cap = cap;
    return true;
}

/* GPU share the node can never use: more idle GPU than its cpu or memory can feed. */
static double stranded(const struct state *st, const struct frag_node *nv)
{
    double idle = 0;
    for (int g = 0; g < nv->n_gpus; g++)
        idle += nv->free[g];
    double s = 0;
    if (st->r_cpu > 0) {
        double x = idle - (double)(nv->cpu_free > 0 ? nv->cpu_free : 0) / st->r_cpu;
        s = x > s ? x : s;
    }
    if (st->r_mem > 0) {
        double x = idle - (double)(nv->mem_free > 0 ? nv->mem_free : 0) / st->r_mem;
        s = x > s ? x : s;
    }
    return s;
}

/* Fragmentation plus weighted stranded share. */
static double cost(const struct state *st, struct frag_node *nv)
{
    double c = frag_amount(&st->model, nv);
    return st->balance > 0 ? c + st->balance * stranded(st, nv) : c;
}

/* Current fragmentation of node, cached per (node generation, model epoch). */
static double current_frag(struct state *st, uint32_t node, struct frag_node *nv)
{
    if (!grow(st, st->h->node_count(st->h)))
        return cost(st, nv);
    uint64_t gen = st->h->node_generation(st->h, node);
    uint64_t *slot = &st->f0_gen[2 * node];
    if (slot[0] != gen || slot[1] != st->epoch) {
        st->f0[node] = cost(st, nv);
        slot[0] = gen;
        slot[1] = st->epoch;
    }
    return st->f0[node];
}

struct choice {
    double delta;
    uint64_t gpus;
    int32_t left; /* free share left on the chosen GPU (shared pods) */
};

static void try_share(struct state *st, struct frag_node *nv, uint64_t allowed, double f0,
                      struct choice *best)
{
    uint64_t tried = 0; /* free shares already tried: equal shares give equal results */
    for (int g = 0; g < nv->n_gpus; g++) {
        int32_t f = nv->free[g];
        if (!(allowed >> g & 1) || f < st->pod.milli)
            continue;
        if (!st->model.any_models) {
            bool seen = false;
            for (int k = 0; k < g && !seen; k++)
                seen = (tried >> k & 1) && nv->free[k] == f;
            if (seen)
                continue;
            tried |= 1ull << g;
        }
        nv->free[g] = f - st->pod.milli;
        double d = cost(st, nv) - f0;
        nv->free[g] = f;
        int32_t left = f - st->pod.milli;
        if (!best->gpus || d < best->delta - 1e-9 ||
            (d < best->delta + 1e-9 && left < best->left)) {
            best->delta = d;
            best->gpus = 1ull << g;
            best->left = left;
        }
    }
}

static struct choice best_choice(struct state *st, uint32_t node)
{
    const struct corral_host *h = st->h;
    struct frag_node nv;
    frag_node_read(h, node, &nv);
    double f0 = current_frag(st, node, &nv);
    uint64_t allowed = h->cycle_gpu_mask(h, node);
    struct choice c = {0, 0, 0};
    nv.cpu_free -= st->pod.cpu;
    nv.mem_free -= st->pod.mem;
    if (st->pod.gpus > 0 && st->pod.milli < 1000) {
        try_share(st, &nv, allowed, f0, &c);
        return c;
    }
    for (int g = 0; g < nv.n_gpus && gu_popcount(c.gpus) < st->pod.gpus; g++)
        if ((allowed >> g & 1) && nv.free[g] == 1000) {
            c.gpus |= 1ull << g;
            nv.free[g] = 0;
        }
    c.delta = cost(st, &nv) - f0;
    return c;
}

static int64_t secondary(struct state *st, uint32_t node)
{
    const struct corral_host *h = st->h;
    if (st->sec == SEC_NONE)
        return 0;
    int64_t cap = h->node_allocatable(h, node, CORRAL_RES_GPU_MILLI);
    if (cap <= 0) {
        cap = h->node_allocatable(h, node, CORRAL_RES_CPU);
        int64_t used = h->node_requested(h, node, CORRAL_RES_CPU) + st->pod.cpu;
        return cap > 0 ? (SECONDARY - 1) * used / cap : 0;
    }
    int64_t used = h->node_requested(h, node, CORRAL_RES_GPU_MILLI) +
                   (int64_t)st->pod.gpus * st->pod.milli;
    return (SECONDARY - 1) * (used > cap ? cap : used) / cap;
}

static int64_t score(void *s, const struct corral_pod *pod, uint32_t node)
{
    struct state *st = s;
    (void)pod;
    struct choice c = best_choice(st, node);
    double b = floor(c.delta / st->resolution + 0.5);
    b = b < -(BUCKETS - 1) ? -(BUCKETS - 1) : (b > BUCKETS - 1 ? BUCKETS - 1 : b);
    return (int64_t)(BUCKETS - b) * SECONDARY + secondary(st, node);
}

static int reserve(void *s, const struct corral_pod *pod, uint32_t node)
{
    struct state *st = s;
    if (st->pod.gpus == 0)
        return CORRAL_OK;
    struct choice c = best_choice(st, node);
    if (!c.gpus)
        return CORRAL_OK; /* leave it to the next Reserve plugin */
    int rc = st->h->assign_gpus(st->h, pod, node, c.gpus, st->pod.milli);
    return rc == -EBUSY ? CORRAL_OK : rc;
}

static const struct corral_plugin plugin = {
    .abi_version = CORRAL_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(struct corral_plugin),
    .name = "FragAware",
    .description = "least expected GPU fragmentation, learned online, then packing",
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
