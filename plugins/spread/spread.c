/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Spread: spec.topologySpreadConstraints, as Kubernetes' PodTopologySpread does it, for
 * spreading replicas across zones (topology.kubernetes.io/zone), providers (corral.io/provider)
 * or any node label. For each constraint the pods matching its labelSelector in the pod's
 * namespace are counted per domain (the value of topologyKey on their node). DoNotSchedule
 * constraints filter: a node must carry the key and placing the pod there must keep
 * count - min <= maxSkew. ScheduleAnyway constraints score: fewer matching pods in the node's
 * domains is better. Not node-local: the counts change as other pods land.
 */
#include "corral/plugin.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CONSTRAINTS 8
#define MAX_DOMAINS 1024
#define R_SKEW 1
#define R_MISSING 2
#define R_INVALID 3

struct constraint {
    const char *key;
    int64_t max_skew;
    bool hard;
    const struct corral_value *selector;
    const char *domain[MAX_DOMAINS];
    int64_t count[MAX_DOMAINS];
    int n_domains;
    int64_t min;
};

struct state {
    const struct corral_host *h;
    struct constraint c[MAX_CONSTRAINTS];
    int n;
    bool any_hard, any_soft;
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

static int domain_index(struct constraint *c, const char *v, bool add)
{
    for (int i = 0; i < c->n_domains; i++)
        if (strcmp(c->domain[i], v) == 0)
            return i;
    if (!add || c->n_domains == MAX_DOMAINS)
        return -1;
    c->domain[c->n_domains] = v;
    c->count[c->n_domains] = 0;
    return c->n_domains++;
}

static void count_domains(struct state *st, struct constraint *c, const struct corral_pod *pod)
{
    const struct corral_host *h = st->h;
    const char *ns = h->pod_namespace(h, pod);
    c->n_domains = 0;
    for (uint32_t node = 0; node < h->node_count(h); node++) {
        const char *v = h->node_exists(h, node) ? h->node_label(h, node, c->key) : NULL;
        int d = v ? domain_index(c, v, true) : -1;
        if (d < 0)
            continue;
        for (uint32_t i = 0; i < h->node_pod_count(h, node); i++) {
            const struct corral_pod *p = h->node_pod(h, node, i);
            if (strcmp(h->pod_namespace(h, p), ns) == 0 && h->pod_matches(h, c->selector, p) == 1)
                c->count[d]++;
        }
    }
    c->min = c->n_domains ? c->count[0] : 0;
    for (int d = 1; d < c->n_domains; d++)
        c->min = c->count[d] < c->min ? c->count[d] : c->min;
}

static int read_constraints(struct state *st, const struct corral_pod *pod)
{
    const struct corral_host *h = st->h;
    const struct corral_value *list =
        h->value_path(h->pod_object(h, pod), "spec.topologySpreadConstraints");
    st->n = 0;
    st->any_hard = st->any_soft = false;
    for (size_t i = 0; i < h->value_size(list) && st->n < MAX_CONSTRAINTS; i++) {
        const struct corral_value *v = h->value_at(list, i);
        struct constraint *c = &st->c[st->n];
        const char *when = h->value_string(h->value_get(v, "whenUnsatisfiable"));
        c->key = h->value_string(h->value_get(v, "topologyKey"));
        c->max_skew = h->value_integer(h->value_get(v, "maxSkew"));
        c->selector = h->value_get(v, "labelSelector");
        if (!c->key || c->max_skew < 1 || !when ||
            (strcmp(when, "DoNotSchedule") != 0 && strcmp(when, "ScheduleAnyway") != 0))
            return -EINVAL;
        c->hard = strcmp(when, "DoNotSchedule") == 0;
        st->any_hard |= c->hard;
        st->any_soft |= !c->hard;
        count_domains(st, c, pod);
        st->n++;
    }
    return 0;
}

static int pre_filter(void *s, const struct corral_pod *pod)
{
    struct state *st = s;
    if (read_constraints(st, pod) < 0)
        return CORRAL_REJECT_UNRESOLVABLE(R_INVALID);
    return st->any_hard ? CORRAL_OK : CORRAL_SKIP;
}

static int filter(void *s, const struct corral_pod *pod, uint32_t node)
{
    struct state *st = s;
    const struct corral_host *h = st->h;
    (void)pod;
    for (int i = 0; i < st->n; i++) {
        struct constraint *c = &st->c[i];
        if (!c->hard)
            continue;
        const char *v = h->node_label(h, node, c->key);
        int d = v ? domain_index(c, v, false) : -1;
        if (d < 0)
            return CORRAL_REJECT_UNRESOLVABLE(R_MISSING);
        if (c->count[d] + 1 - c->min > c->max_skew)
            return CORRAL_REJECT(R_SKEW);
    }
    return CORRAL_OK;
}

static int pre_score(void *s, const struct corral_pod *pod)
{
    struct state *st = s;
    if (read_constraints(st, pod) < 0)
        return CORRAL_SKIP;
    return st->any_soft ? CORRAL_OK : CORRAL_SKIP;
}

static int64_t score(void *s, const struct corral_pod *pod, uint32_t node)
{
    struct state *st = s;
    const struct corral_host *h = st->h;
    (void)pod;
    int64_t sum = 0;
    for (int i = 0; i < st->n; i++) {
        struct constraint *c = &st->c[i];
        const char *v = c->hard ? NULL : h->node_label(h, node, c->key);
        int d = v ? domain_index(c, v, false) : -1;
        if (!c->hard)
            sum += d < 0 ? 1000000 : c->count[d];
    }
    return sum; /* normalised below: fewer matching pods is better */
}

static void normalize(void *s, const struct corral_pod *pod, const uint32_t *nodes,
                      int64_t *scores, size_t n)
{
    (void)s;
    (void)pod;
    (void)nodes;
    int64_t lo = INT64_MAX, hi = 0;
    for (size_t i = 0; i < n; i++) {
        lo = scores[i] < lo ? scores[i] : lo;
        hi = scores[i] > hi ? scores[i] : hi;
    }
    for (size_t i = 0; i < n; i++)
        scores[i] = hi == lo ? CORRAL_MAX_NODE_SCORE
                             : (hi - scores[i]) * CORRAL_MAX_NODE_SCORE / (hi - lo);
}

static int reason(void *s, const struct corral_pod *pod, int code, char *buf, size_t len)
{
    (void)s;
    (void)pod;
    switch (code) {
    case R_MISSING:
        return snprintf(buf, len, "node(s) didn't match pod topology spread constraints "
                        "(missing required label)");
    case R_INVALID: return snprintf(buf, len, "pod has invalid topologySpreadConstraints");
    default: return snprintf(buf, len, "node(s) didn't match pod topology spread constraints");
    }
}

static const struct corral_plugin plugin = {
    .abi_version = CORRAL_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(struct corral_plugin),
    .name = "Spread",
    .description = "topologySpreadConstraints across zones, providers or any node label",
    .init = init,
    .fini = fini,
    .pre_filter = pre_filter,
    .filter = filter,
    .pre_score = pre_score,
    .score = score,
    .normalize_score = normalize,
    .reason = reason,
};

CORRAL_PLUGIN_EXPORT const struct corral_plugin *corral_plugin_entry(void)
{
    return &plugin;
}
