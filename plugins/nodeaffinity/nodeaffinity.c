/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NodeAffinity: spec.nodeSelector and spec.affinity.nodeAffinity, as Kubernetes evaluates them.
 * Filter: every nodeSelector label must be equal, and when required terms exist the node must
 * match at least one term (a term's matchExpressions on labels, with In, NotIn, Exists,
 * DoesNotExist, Gt, Lt, and matchFields on metadata.name, all ANDed; an empty term matches
 * nothing). Score: the sum of the weights of matching preferred terms, normalised so the best
 * node scores the maximum. Malformed terms reject the pod with a message.
 */
#include "corral/plugin.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define R_MISMATCH 1
#define R_INVALID 2

struct state {
    const struct corral_host *h;
    const struct corral_value *selector, *required, *preferred; /* borrowed for the cycle */
    const struct corral_pod *read_for; /* the pod pre_filter read this cycle */
    uint64_t read_seq;
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

static void read_pod(struct state *st, const struct corral_pod *pod)
{
    const struct corral_host *h = st->h;
    const struct corral_value *obj = h->pod_object(h, pod);
    const struct corral_value *na = h->value_path(obj, "spec.affinity.nodeAffinity");
    st->selector = h->value_path(obj, "spec.nodeSelector");
    st->required = h->value_path(h->value_get(na, "requiredDuringSchedulingIgnoredDuringExecution"),
                                 "nodeSelectorTerms");
    st->preferred = h->value_get(na, "preferredDuringSchedulingIgnoredDuringExecution");
}

/* matchFields supports metadata.name with In/NotIn, as Kubernetes does. */
static int fields_match(const struct corral_host *h, const struct corral_value *fields,
                        uint32_t node)
{
    const char *name = h->node_name(h, node);
    for (size_t i = 0; i < h->value_size(fields); i++) {
        const struct corral_value *f = h->value_at(fields, i);
        const char *key = h->value_string(h->value_get(f, "key"));
        const char *op = h->value_string(h->value_get(f, "operator"));
        const struct corral_value *vals = h->value_get(f, "values");
        if (!key || strcmp(key, "metadata.name") != 0 || !op ||
            (strcmp(op, "In") != 0 && strcmp(op, "NotIn") != 0))
            return -EINVAL;
        bool in = false;
        for (size_t j = 0; j < h->value_size(vals); j++) {
            const char *v = h->value_string(h->value_at(vals, j));
            in |= v && strcmp(v, name) == 0;
        }
        if (in != (strcmp(op, "In") == 0))
            return 0;
    }
    return 1;
}

/* 1 when node matches term, 0 when not, -EINVAL when the term is malformed. */
static int term_matches(const struct corral_host *h, const struct corral_value *term,
                        uint32_t node)
{
    const struct corral_value *exprs = h->value_get(term, "matchExpressions");
    const struct corral_value *fields = h->value_get(term, "matchFields");
    if (h->value_size(exprs) == 0 && h->value_size(fields) == 0)
        return 0;
    int r = h->value_size(exprs) ? h->node_matches(h, exprs, node) : 1;
    if (r == 1 && h->value_size(fields))
        r = fields_match(h, fields, node);
    return r;
}

static int selector_matches(struct state *st, uint32_t node)
{
    const struct corral_host *h = st->h;
    for (size_t i = 0; i < h->value_size(st->selector); i++) {
        const char *key;
        const char *want = h->value_string(h->value_member(st->selector, i, &key));
        const char *have = h->node_label(h, node, key);
        if (!want)
            return -EINVAL;
        if (!have || strcmp(have, want) != 0)
            return 0;
    }
    return 1;
}

static int pre_filter(void *s, const struct corral_pod *pod)
{
    struct state *st = s;
    const struct corral_host *h = st->h;
    read_pod(st, pod);
    st->read_for = pod;
    st->read_seq = h->pod_sequence(h, pod);
    if ((st->selector && h->value_type(st->selector) != CORRAL_VALUE_OBJECT) ||
        (st->required && h->value_type(st->required) != CORRAL_VALUE_ARRAY))
        return CORRAL_REJECT_UNRESOLVABLE(R_INVALID);
    return h->value_size(st->selector) || st->required ? CORRAL_OK : CORRAL_SKIP;
}

static int filter(void *s, const struct corral_pod *pod, uint32_t node)
{
    struct state *st = s;
    const struct corral_host *h = st->h;
    (void)pod;
    int r = selector_matches(st, node);
    if (r < 0)
        return CORRAL_REJECT_UNRESOLVABLE(R_INVALID);
    if (r == 0)
        return CORRAL_REJECT_UNRESOLVABLE(R_MISMATCH);
    if (!st->required)
        return CORRAL_OK;
    for (size_t i = 0; i < h->value_size(st->required); i++) {
        r = term_matches(h, h->value_at(st->required, i), node);
        if (r < 0)
            return CORRAL_REJECT_UNRESOLVABLE(R_INVALID);
        if (r == 1)
            return CORRAL_OK;
    }
    return CORRAL_REJECT_UNRESOLVABLE(R_MISMATCH);
}

static int pre_score(void *s, const struct corral_pod *pod)
{
    struct state *st = s;
    if (st->read_for != pod || st->read_seq != st->h->pod_sequence(st->h, pod))
        read_pod(st, pod); /* else pre_filter just read this pod */
    st->read_for = NULL;
    return st->h->value_size(st->preferred) ? CORRAL_OK : CORRAL_SKIP;
}

static int64_t score(void *s, const struct corral_pod *pod, uint32_t node)
{
    struct state *st = s;
    const struct corral_host *h = st->h;
    (void)pod;
    int64_t sum = 0;
    for (size_t i = 0; i < h->value_size(st->preferred); i++) {
        const struct corral_value *p = h->value_at(st->preferred, i);
        int64_t w = h->value_integer(h->value_get(p, "weight"));
        if (w > 0 && term_matches(h, h->value_get(p, "preference"), node) == 1)
            sum += w;
    }
    return sum;
}

static void normalize(void *s, const struct corral_pod *pod, const uint32_t *nodes,
                      int64_t *scores, size_t n)
{
    (void)s;
    (void)pod;
    (void)nodes;
    int64_t max = 0;
    for (size_t i = 0; i < n; i++)
        max = scores[i] > max ? scores[i] : max;
    for (size_t i = 0; i < n; i++)
        scores[i] = max ? scores[i] * CORRAL_MAX_NODE_SCORE / max : 0;
}

static int reason(void *s, const struct corral_pod *pod, int code, char *buf, size_t len)
{
    (void)s;
    (void)pod;
    if (code == R_INVALID)
        return snprintf(buf, len, "pod has an invalid nodeSelector or node affinity");
    return snprintf(buf, len, "node(s) didn't match Pod's node affinity/selector");
}

static const struct corral_plugin plugin = {
    .abi_version = CORRAL_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(struct corral_plugin),
    .name = "NodeAffinity",
    .description = "nodeSelector, required and preferred node affinity",
    .flags = CORRAL_PLUGIN_NODE_LOCAL,
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
