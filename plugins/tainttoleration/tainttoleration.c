/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TaintToleration: Kubernetes taints and tolerations. Filter rejects a node with a NoSchedule
 * or NoExecute taint the pod does not tolerate, and an unschedulable (cordoned) node unless the
 * pod tolerates node.kubernetes.io/unschedulable. Score prefers nodes with fewer untolerated
 * PreferNoSchedule taints. The rejection names the taint, as kubectl shows it:
 * "node(s) had untolerated taint {gpu.example.com/broken: true}".
 */
#include "corral/plugin.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TOLERATIONS 64
#define MAX_INTERNED 256
#define R_UNSCHEDULABLE 1
#define R_GENERIC 2
#define R_TAINT_BASE 16

struct toleration {
    const char *key, *op, *value, *effect; /* borrowed from the pod object */
};

struct state {
    const struct corral_host *h;
    struct toleration tol[MAX_TOLERATIONS];
    int n_tol;
    char interned[MAX_INTERNED][160];
    int n_interned;
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

static const char *str(const struct corral_host *h, const struct corral_value *o, const char *k)
{
    const char *v = h->value_string(h->value_get(o, k));
    return v ? v : "";
}

static void read_tolerations(struct state *st, const struct corral_pod *pod)
{
    const struct corral_host *h = st->h;
    const struct corral_value *list = h->value_path(h->pod_object(h, pod), "spec.tolerations");
    st->n_tol = 0;
    for (size_t i = 0; i < h->value_size(list) && st->n_tol < MAX_TOLERATIONS; i++) {
        const struct corral_value *t = h->value_at(list, i);
        struct toleration *o = &st->tol[st->n_tol++];
        o->key = str(h, t, "key");
        o->op = *str(h, t, "operator") ? str(h, t, "operator") : "Equal";
        o->value = str(h, t, "value");
        o->effect = str(h, t, "effect");
    }
}

static bool tolerates(const struct toleration *t, const struct corral_taint *taint)
{
    if (*t->effect && strcmp(t->effect, taint->effect) != 0)
        return false;
    if (!*t->key)
        return strcmp(t->op, "Exists") == 0;
    if (strcmp(t->key, taint->key) != 0)
        return false;
    return strcmp(t->op, "Exists") == 0 || strcmp(t->value, taint->value) == 0;
}

static bool tolerated(const struct state *st, const struct corral_taint *taint)
{
    for (int i = 0; i < st->n_tol; i++)
        if (tolerates(&st->tol[i], taint))
            return true;
    return false;
}

static int pre_filter(void *s, const struct corral_pod *pod)
{
    struct state *st = s;
    read_tolerations(st, pod);
    st->read_for = pod;
    st->read_seq = st->h->pod_sequence(st->h, pod);
    return CORRAL_OK;
}

static int intern(struct state *st, const struct corral_taint *t)
{
    char text[160];
    snprintf(text, sizeof(text), "{%s: %s}", t->key, t->value);
    for (int i = 0; i < st->n_interned; i++)
        if (strcmp(st->interned[i], text) == 0)
            return R_TAINT_BASE + i;
    if (st->n_interned == MAX_INTERNED)
        return R_GENERIC;
    memcpy(st->interned[st->n_interned], text, sizeof(text));
    return R_TAINT_BASE + st->n_interned++;
}

static int filter(void *s, const struct corral_pod *pod, uint32_t node)
{
    struct state *st = s;
    const struct corral_host *h = st->h;
    (void)pod;
    static const struct corral_taint cordon = {"node.kubernetes.io/unschedulable", "",
                                               "NoSchedule"};
    if (h->node_unschedulable(h, node) && !tolerated(st, &cordon))
        return CORRAL_REJECT_UNRESOLVABLE(R_UNSCHEDULABLE);
    uint32_t n = h->node_taint_count(h, node);
    for (uint32_t i = 0; i < n; i++) {
        struct corral_taint t;
        if (h->node_taint(h, node, i, &t) < 0 || strcmp(t.effect, "PreferNoSchedule") == 0)
            continue;
        if (!tolerated(st, &t))
            return CORRAL_REJECT_UNRESOLVABLE(intern(st, &t));
    }
    return CORRAL_OK;
}

static int pre_score(void *s, const struct corral_pod *pod)
{
    struct state *st = s;
    if (st->read_for != pod || st->read_seq != st->h->pod_sequence(st->h, pod))
        read_tolerations(st, pod); /* else pre_filter just read this pod */
    st->read_for = NULL;
    return CORRAL_OK;
}

static int64_t score(void *s, const struct corral_pod *pod, uint32_t node)
{
    struct state *st = s;
    const struct corral_host *h = st->h;
    (void)pod;
    int64_t bad = 0;
    for (uint32_t i = 0; i < h->node_taint_count(h, node); i++) {
        struct corral_taint t;
        if (h->node_taint(h, node, i, &t) == 0 && strcmp(t.effect, "PreferNoSchedule") == 0 &&
            !tolerated(st, &t))
            bad++;
    }
    bad = bad > 10 ? 10 : bad;
    return CORRAL_MAX_NODE_SCORE - bad * (CORRAL_MAX_NODE_SCORE / 10);
}

static int reason(void *s, const struct corral_pod *pod, int code, char *buf, size_t len)
{
    struct state *st = s;
    (void)pod;
    if (code == R_UNSCHEDULABLE)
        return snprintf(buf, len, "node(s) were unschedulable");
    if (code >= R_TAINT_BASE && code - R_TAINT_BASE < st->n_interned)
        return snprintf(buf, len, "node(s) had untolerated taint %s",
                        st->interned[code - R_TAINT_BASE]);
    return snprintf(buf, len, "node(s) had untolerated taints");
}

static const struct corral_plugin plugin = {
    .abi_version = CORRAL_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(struct corral_plugin),
    .name = "TaintToleration",
    .description = "taints and tolerations, cordoned nodes, PreferNoSchedule scoring",
    .flags = CORRAL_PLUGIN_NODE_LOCAL | CORRAL_PLUGIN_NODE_CLASS,
    .init = init,
    .fini = fini,
    .pre_filter = pre_filter,
    .filter = filter,
    .pre_score = pre_score,
    .score = score,
    .reason = reason,
};

CORRAL_PLUGIN_EXPORT const struct corral_plugin *corral_plugin_entry(void)
{
    return &plugin;
}
