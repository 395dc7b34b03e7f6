/* SPDX-License-Identifier: Apache-2.0 */
/* frag: see frag.h. */
#include "frag.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void frag_node_read(const struct corral_host *h, uint32_t node, struct frag_node *out)
{
    uint32_t n = h->node_gpu_count(h, node);
    out->n_gpus = (int)n;
    for (uint32_t g = 0; g < n; g++) {
        out->gpu[g] = h->node_gpu(h, node, g);
        out->free[g] = out->gpu[g]->free_milli;
    }
    out->bits_for = NULL;
    out->cpu_free = h->node_allocatable(h, node, CORRAL_RES_CPU) -
                    h->node_requested(h, node, CORRAL_RES_CPU);
    out->mem_free = h->node_allocatable(h, node, CORRAL_RES_MEMORY) -
                    h->node_requested(h, node, CORRAL_RES_MEMORY);
}

static bool host_fits(const struct frag_task *t, const struct frag_node *nv)
{
    return nv->cpu_free >= t->cpu && (!t->mem || nv->mem_free >= t->mem);
}

static int name_id(const struct frag_model *m, const char *name)
{
    for (int i = 0; name && i < m->n_names; i++)
        if (strcasecmp(m->names[i], name) == 0)
            return i;
    return FRAG_MAX_NAMES;
}

/* Bits of the names a GPU answers to (its model and its product). */
static uint64_t gpu_bits(const struct frag_model *m, const struct corral_gpu *g)
{
    return (1ull << name_id(m, g->model)) | (1ull << name_id(m, g->product));
}

/* Sorts v[0..n) in decreasing order (n is at most a node's GPU count). */
static void sort_desc(int32_t *v, int n)
{
    for (int i = 1; i < n; i++) {
        int32_t x = v[i];
        int j = i;
        for (; j > 0 && v[j - 1] < x; j--)
            v[j] = v[j - 1];
        v[j] = x;
    }
}

/*
 * General path: per-GPU model restrictions. Tasks are grouped by the set of models they may
 * use (normalise() sorts them so); within a group the usable GPUs are fixed, so the same merge
 * pass as the fast path serves the group: fragment = idle - (usable shares the task fits on).
 */
static double frag_general(const struct frag_model *m, struct frag_node *nv, int64_t idle)
{
    if (nv->bits_for != m) {
        for (int g = 0; g < nv->n_gpus; g++)
            nv->bits[g] = gpu_bits(m, nv->gpu[g]);
        nv->bits_for = m;
    }
    const uint64_t *bits = nv->bits;
    double sum = 0;
    int32_t f[CORRAL_MAX_GPUS_PER_NODE];
    int n = 0, k = 0;
    int64_t fit_sum = 0;
    uint64_t group = 0;
    for (int i = 0; i < m->n; i++) {
        const struct frag_task *t = &m->task[i];
        bool host_ok = host_fits(t, nv);
        if (t->gpus == 0) {
            sum += host_ok && m->cpu_aware ? 0 : t->weight * (double)idle;
            continue;
        }
        if (i == 0 || t->allow != group) { /* a new group: its usable GPUs, sorted */
            group = t->allow;
            n = k = 0;
            fit_sum = 0;
            for (int g = 0; g < nv->n_gpus; g++)
                if (group & bits[g])
                    f[n++] = nv->free[g];
            sort_desc(f, n);
        }
        for (; k < n && f[k] >= t->milli; k++)
            fit_sum += f[k];
        sum += t->weight * (double)(host_ok && k >= t->gpus ? idle - fit_sum : idle);
    }
    return sum;
}

/*
 * Fast path (no task restricts models): with the free shares sorted in decreasing order and
 * the tasks sorted by decreasing share, the number of GPUs a task fits on only grows along the
 * task list, so one merge pass serves every task: fragment = idle - (shares it fits on).
 */
static double frag_sorted(const struct frag_model *m, const struct frag_node *nv, int64_t idle)
{
    int32_t f[CORRAL_MAX_GPUS_PER_NODE];
    int n = nv->n_gpus;
    for (int i = 0; i < n; i++) {
        int32_t v = nv->free[i];
        int j = i;
        for (; j > 0 && f[j - 1] < v; j--)
            f[j] = f[j - 1];
        f[j] = v;
    }
    double sum = 0;
    int k = 0;
    int64_t fit_sum = 0;
    for (int i = 0; i < m->n; i++) {
        const struct frag_task *t = &m->task[i];
        bool host_ok = host_fits(t, nv);
        if (t->gpus == 0) {
            sum += host_ok && m->cpu_aware ? 0 : t->weight * (double)idle;
            continue;
        }
        for (; k < n && f[k] >= t->milli; k++)
            fit_sum += f[k];
        sum += t->weight * (double)(host_ok && k >= t->gpus ? idle - fit_sum : idle);
    }
    return sum;
}

double frag_amount(const struct frag_model *m, struct frag_node *nv)
{
    int64_t idle = 0;
    for (int g = 0; g < nv->n_gpus; g++)
        idle += nv->free[g];
    if (idle == 0)
        return 0;
    return m->any_models ? frag_general(m, nv, idle) : frag_sorted(m, nv, idle);
}

/*
 * GPU tasks grouped by the models they may use, each group by decreasing share, CPU-only tasks
 * last (frag_sorted and frag_general rely on it).
 */
static int cmp_milli_desc(const void *x, const void *y)
{
    const struct frag_task *a = x, *b = y;
    if (a->gpus == 0 || b->gpus == 0)
        return (a->gpus == 0) - (b->gpus == 0);
    if (a->allow != b->allow)
        return a->allow < b->allow ? -1 : 1;
    return (a->milli < b->milli) - (a->milli > b->milli);
}

static void normalise(struct frag_model *m)
{
    double total = 0;
    m->any_models = false;
    for (int i = 0; i < m->n; i++) {
        total += m->task[i].weight;
        m->any_models |= m->task[i].models >= 0;
    }
    for (int i = 0; total > 0 && i < m->n; i++)
        m->task[i].weight /= total;
    qsort(m->task, (size_t)m->n, sizeof(m->task[0]), cmp_milli_desc);
}

/* Records task t's model list (l) and the name bits it may use. */
static int add_models(struct frag_model *m, struct frag_task *t, const struct gu_list *l)
{
    t->allow = ~0ull;
    if (l->n == 0)
        return -1;
    t->allow = 0;
    for (int i = 0; i < l->n; i++) {
        int id = name_id(m, l->item[i]);
        if (id == FRAG_MAX_NAMES && m->n_names < FRAG_MAX_NAMES) {
            snprintf(m->names[m->n_names], GU_ITEM_LEN, "%s", l->item[i]);
            id = m->n_names++;
        }
        t->allow |= id < FRAG_MAX_NAMES ? 1ull << id : 0;
    }
    m->models[m->n_models] = *l;
    return m->n_models++;
}

static int parse_task(const struct corral_host *h, const struct corral_value *v,
                      struct frag_model *m, size_t i, char *err, size_t errlen)
{
    struct frag_task *t = &m->task[m->n];
    struct gu_list models;
    memset(t, 0, sizeof(*t));
    t->cpu = h->value_integer(h->value_get(v, "cpu"));
    t->mem = h->value_integer(h->value_get(v, "memory"));
    t->gpus = (int32_t)h->value_integer(h->value_get(v, "gpus"));
    t->milli = (int32_t)h->value_integer(h->value_get(v, "gpuMilli"));
    const struct corral_value *w = h->value_get(v, "weight");
    t->weight = w ? h->value_number(w) : (double)h->value_integer(h->value_get(v, "count"));
    if (t->gpus > 0 && t->milli == 0)
        t->milli = 1000;
    if (t->cpu < 0 || t->mem < 0 || t->gpus < 0 || t->gpus > CORRAL_MAX_GPUS_PER_NODE ||
        t->milli < 0 || t->milli > 1000 || (t->gpus > 1 && t->milli != 1000) ||
        t->weight <= 0 || gu_list_parse(h->value_string(h->value_get(v, "models")), &models) < 0) {
        snprintf(err, errlen, "typicalTasks[%zu]: needs cpu >= 0, gpus 0..%d, gpuMilli 1..1000 "
                 "(1000 when gpus > 1) and a positive weight or count", i,
                 CORRAL_MAX_GPUS_PER_NODE);
        return -EINVAL;
    }
    t->count = (uint32_t)(t->weight + 0.5);
    t->models = add_models(m, t, &models);
    m->n++;
    return 0;
}

int frag_model_parse(const struct corral_host *h, const struct corral_value *list,
                     struct frag_model *m, char *err, size_t errlen)
{
    m->n = m->n_models = m->n_names = 0;
    if (h->value_type(list) != CORRAL_VALUE_ARRAY || h->value_size(list) == 0) {
        snprintf(err, errlen, "typicalTasks: must be a non-empty list or \"learn\"");
        return -EINVAL;
    }
    size_t n = h->value_size(list);
    if (n > FRAG_MAX_TASKS) {
        snprintf(err, errlen, "typicalTasks: at most %d tasks", FRAG_MAX_TASKS);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = parse_task(h, h->value_at(list, i), m, i, err, errlen);
        if (rc < 0)
            return rc;
    }
    normalise(m);
    return 0;
}

void frag_task_of(const struct corral_host *h, const struct corral_pod *pod, struct frag_task *t,
                  struct gu_list *models)
{
    memset(t, 0, sizeof(*t));
    t->cpu = h->pod_request(h, pod, CORRAL_RES_CPU);
    t->mem = h->pod_request(h, pod, CORRAL_RES_MEMORY);
    gu_pod_gpu(h, pod, &t->gpus, &t->milli);
    if (gu_list_parse(h->pod_annotation(h, pod, "corral.io/gpu-models"), models) < 0)
        models->n = 0;
    t->models = models->n ? 0 : -1;
    t->count = 1;
}

int frag_learner_init(struct frag_learner *l, double coverage, double threshold)
{
    memset(l, 0, sizeof(*l));
    l->coverage = coverage;
    l->threshold = threshold;
    l->next_refresh = 16;
    l->next = calloc(1, sizeof(*l->next));
    return l->next ? 0 : -ENOMEM;
}

void frag_learner_free(struct frag_learner *l)
{
    free(l->seen);
    free(l->seen_models);
    free(l->next);
    memset(l, 0, sizeof(*l));
}

static bool same_list(const struct gu_list *a, const struct gu_list *b)
{
    if (a->n != b->n)
        return false;
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->item[i], b->item[i]) != 0)
            return false;
    return true;
}

static bool same_shape(const struct frag_task *a, const struct gu_list *am,
                       const struct frag_task *b, const struct gu_list *bm)
{
    return a->cpu == b->cpu && a->gpus == b->gpus && a->milli == b->milli &&
           same_list(am, bm);
}

/* Indices of seen shapes by decreasing count. */
static int cmp_seen(const void *x, const void *y, void *arg)
{
    const struct frag_learner *l = arg;
    uint32_t a = l->seen[*(const int *)x].count, b = l->seen[*(const int *)y].count;
    return (a < b) - (a > b);
}

static void build(struct frag_learner *l, struct frag_model *m, int *order)
{
    for (int i = 0; i < l->n_seen; i++)
        order[i] = i;
    qsort_r(order, (size_t)l->n_seen, sizeof(int), cmp_seen, l);
    m->n = m->n_models = m->n_names = 0;
    uint64_t covered = 0;
    for (int i = 0; i < l->n_seen && m->n < FRAG_MAX_TASKS; i++) {
        if ((double)covered >= l->coverage * (double)l->total)
            break;
        const struct frag_task *s = &l->seen[order[i]];
        m->task[m->n] = *s;
        m->task[m->n].weight = (double)s->count;
        m->task[m->n].mem = 0;
        m->task[m->n].models = add_models(m, &m->task[m->n], &l->seen_models[order[i]]);
        covered += s->count;
        m->n++;
    }
    normalise(m);
}

/* Total variation distance between two task distributions. */
static double distance(const struct frag_model *a, const struct frag_model *b)
{
    static const struct gu_list none = {.n = 0};
    double d = 0;
    for (int i = 0; i < a->n; i++) {
        const struct frag_task *t = &a->task[i];
        const struct gu_list *tm = t->models >= 0 ? &a->models[t->models] : &none;
        double other = 0;
        for (int j = 0; j < b->n; j++) {
            const struct frag_task *u = &b->task[j];
            if (same_shape(t, tm, u, u->models >= 0 ? &b->models[u->models] : &none))
                other = u->weight;
        }
        d += fabs(t->weight - other);
    }
    for (int j = 0; j < b->n; j++) { /* shapes only b has */
        const struct frag_task *u = &b->task[j];
        const struct gu_list *um = u->models >= 0 ? &b->models[u->models] : &none;
        bool found = false;
        for (int i = 0; i < a->n && !found; i++) {
            const struct frag_task *t = &a->task[i];
            found = same_shape(t, t->models >= 0 ? &a->models[t->models] : &none, u, um);
        }
        d += found ? 0 : u->weight;
    }
    return d / 2;
}

static int remember(struct frag_learner *l, const struct frag_task *t, const struct gu_list *tm)
{
    for (int i = 0; i < l->n_seen; i++)
        if (same_shape(&l->seen[i], &l->seen_models[i], t, tm)) {
            l->seen[i].count++;
            return 0;
        }
    if (l->n_seen == l->cap_seen) {
        int cap = l->cap_seen ? l->cap_seen * 2 : 64;
        struct frag_task *ns = realloc(l->seen, (size_t)cap * sizeof(*ns));
        if (ns)
            l->seen = ns;
        struct gu_list *nm = ns ? realloc(l->seen_models, (size_t)cap * sizeof(*nm)) : NULL;
        if (!nm)
            return -ENOMEM;
        l->seen_models = nm;
        l->cap_seen = cap;
    }
    l->seen[l->n_seen] = *t;
    l->seen_models[l->n_seen++] = *tm;
    return 0;
}

int frag_learner_observe(struct frag_learner *l, const struct corral_host *h,
                         const struct corral_pod *pod, struct frag_model *m)
{
    struct frag_task t;
    struct gu_list tm;
    frag_task_of(h, pod, &t, &tm);
    if (remember(l, &t, &tm) < 0)
        return 0;
    if (++l->total < l->next_refresh)
        return 0;
    l->next_refresh *= 2;
    int *order = malloc((size_t)l->n_seen * sizeof(int));
    if (!order)
        return 0;
    bool cpu_aware = m->cpu_aware;
    build(l, l->next, order);
    free(order);
    l->next->cpu_aware = cpu_aware;
    if (m->n > 0 && distance(m, l->next) < l->threshold)
        return 0;
    *m = *l->next;
    return 1;
}
