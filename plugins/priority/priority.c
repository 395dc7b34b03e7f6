/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Priority: pod priority, as Kubernetes' PrioritySort and DefaultPreemption.
 *  - QueueSort: higher spec.priority first (then arrival order).
 *  - PostFilter: when no node fits, look for a node where evicting lower-priority pods makes
 *    room: remove all of them, check the pod fits (every Filter plugin, through the host), then
 *    give back as many victims as possible, highest priority first. Among candidate nodes the
 *    one whose most important victim has the lowest priority wins, then the fewest victims,
 *    then the lowest priority sum. Pods with preemptionPolicy: Never do not preempt.
 *    Nodes rejected for reasons eviction cannot fix (affinity, taints, GPU model) are skipped.
 */
#include "corral/plugin.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VICTIMS 256
#define R_NONE 1
#define R_NEVER 2

struct candidate {
    uint32_t node;
    const struct corral_pod *v[MAX_VICTIMS];
    uint32_t n;
    int64_t top, sum;
};

struct state {
    const struct corral_host *h;
    struct candidate cur, best;
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

static int queue_less(void *s, const struct corral_pod *a, const struct corral_pod *b)
{
    struct state *st = s;
    int32_t pa = st->h->pod_priority(st->h, a), pb = st->h->pod_priority(st->h, b);
    return pa > pb ? -1 : (pa < pb ? 1 : 0);
}

static int by_priority(const void *x, const void *y, void *h)
{
    const struct corral_host *host = h;
    int32_t a = host->pod_priority(host, *(const struct corral_pod *const *)x);
    int32_t b = host->pod_priority(host, *(const struct corral_pod *const *)y);
    return (a > b) - (a < b);
}

/* Sorts victims by descending priority (insertion sort; lists are short). */
static void sort_desc(const struct corral_host *h, const struct corral_pod **v, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++)
        for (uint32_t j = i; j > 0 && by_priority(&v[j - 1], &v[j], (void *)h) < 0; j--) {
            const struct corral_pod *t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
}

/* Builds the minimal victim set on node into st->cur; false when the node cannot help. */
static bool victims_on(struct state *st, const struct corral_pod *pod, uint32_t node)
{
    const struct corral_host *h = st->h;
    int32_t prio = h->pod_priority(h, pod);
    struct candidate *c = &st->cur;
    c->node = node;
    c->n = 0;
    for (uint32_t i = 0; i < h->node_pod_count(h, node) && c->n < MAX_VICTIMS; i++) {
        const struct corral_pod *p = h->node_pod(h, node, i);
        if (h->pod_priority(h, p) < prio)
            c->v[c->n++] = p;
    }
    if (c->n == 0 || h->fits_without(h, pod, node, c->v, c->n) != 0)
        return false;
    sort_desc(h, c->v, c->n);
    for (uint32_t i = 0; i < c->n;) { /* reprieve, most important first */
        const struct corral_pod *keep = c->v[i];
        memmove(&c->v[i], &c->v[i + 1], (c->n - i - 1) * sizeof(c->v[0]));
        c->n--;
        if (h->fits_without(h, pod, node, c->v, c->n) == 0)
            continue; /* keep it */
        memmove(&c->v[i + 1], &c->v[i], (c->n - i) * sizeof(c->v[0]));
        c->v[i] = keep;
        c->n++;
        i++;
    }
    c->top = INT32_MIN;
    c->sum = 0;
    for (uint32_t i = 0; i < c->n; i++) {
        int64_t p = h->pod_priority(h, c->v[i]);
        c->top = p > c->top ? p : c->top;
        c->sum += p;
    }
    return true;
}

static bool better(const struct candidate *a, const struct candidate *b)
{
    if (a->top != b->top)
        return a->top < b->top;
    if (a->n != b->n)
        return a->n < b->n;
    return a->sum < b->sum;
}

static int post_filter(void *s, const struct corral_pod *pod, uint32_t *nominated)
{
    struct state *st = s;
    const struct corral_host *h = st->h;
    const char *policy = h->value_string(h->value_path(h->pod_object(h, pod),
                                                       "spec.preemptionPolicy"));
    if (policy && strcmp(policy, "Never") == 0)
        return CORRAL_REJECT(R_NEVER);
    bool found = false;
    int32_t prio = h->pod_priority(h, pod);
    if (CORRAL_HOST_HAS(h, column_min) && h->column_min(h, CORRAL_COL_MIN_PRIORITY) >= prio)
        return CORRAL_REJECT(R_NONE); /* no node holds a pod it could preempt */
    const int64_t *lowest = h->node_column(h, CORRAL_COL_MIN_PRIORITY);
    for (uint32_t node = 0, n = h->node_count(h); node < n; node++) {
        if (lowest[node] >= prio || !h->node_exists(h, node) || !victims_on(st, pod, node))
            continue;
        if (!found || better(&st->cur, &st->best)) {
            st->best = st->cur;
            found = true;
        }
    }
    if (!found)
        return CORRAL_REJECT(R_NONE);
    int rc = h->preempt(h, pod, st->best.node, st->best.v, st->best.n);
    if (rc < 0)
        return rc;
    *nominated = st->best.node;
    h->log(h, CORRAL_PLUGIN_LOG_INFO, "pod %s/%s preempts %u pod(s) on node %s",
           h->pod_namespace(h, pod), h->pod_name(h, pod), st->best.n,
           h->node_name(h, st->best.node));
    return CORRAL_OK;
}

static int reason(void *s, const struct corral_pod *pod, int code, char *buf, size_t len)
{
    (void)s;
    (void)pod;
    if (code == R_NEVER)
        return snprintf(buf, len, "preemption disabled by preemptionPolicy: Never");
    return snprintf(buf, len, "No preemption victims found for incoming pod");
}

static const struct corral_plugin plugin = {
    .abi_version = CORRAL_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(struct corral_plugin),
    .name = "Priority",
    .description = "priority queue order and preemption of lower-priority pods",
    .init = init,
    .fini = fini,
    .queue_less = queue_less,
    .post_filter = post_filter,
    .reason = reason,
};

CORRAL_PLUGIN_EXPORT const struct corral_plugin *corral_plugin_entry(void)
{
    return &plugin;
}
