/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Coscheduling: gang scheduling (docs/gpus.md), as kubernetes-sigs' Coscheduling plugin. Pods
 * labelled scheduling.x-k8s.io/pod-group: NAME form a group whose size comes from the PodGroup
 * (scheduling.x-k8s.io/v1alpha1, spec.minMember, spec.scheduleTimeoutSeconds) or, without one,
 * the pod annotation scheduling.x-k8s.io/min-member. All minMember pods are bound or none:
 *  - PreEnqueue / PreFilter: a group with fewer known pods than minMember waits.
 *  - Permit: a reserved member waits until minMember members hold a node, then the whole
 *    group is allowed at once; after the timeout (args.scheduleTimeoutSeconds, 60) it is
 *    rejected.
 *  - PostFilter / Unreserve: when one member cannot be scheduled or fails later, every waiting
 *    member is rejected and gives its node back.
 */
#include "corral/plugin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LABEL "scheduling.x-k8s.io/pod-group"
#define MIN_ANNOTATION "scheduling.x-k8s.io/min-member"
#define MAX_MEMBERS 4096
#define R_TOO_FEW 1
#define R_INVALID 2

struct group {
    const char *name;
    int64_t min;
    uint32_t timeout_ms;
};

struct state {
    const struct corral_host *h;
    uint32_t default_timeout_ms;
    const struct corral_pod *members[MAX_MEMBERS];
};

static int init(const struct corral_host *h, const struct corral_value *args, void **out,
                char *err, size_t errlen)
{
    struct state *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    st->h = h;
    const struct corral_value *t = h->value_get(args, "scheduleTimeoutSeconds");
    int64_t secs = t ? h->value_integer(t) : 60;
    if (secs <= 0 || secs > 86400) {
        snprintf(err, errlen, "scheduleTimeoutSeconds: must be between 1 and 86400");
        free(st);
        return -EINVAL;
    }
    st->default_timeout_ms = (uint32_t)secs * 1000;
    *out = st;
    return 0;
}

static void fini(void *s)
{
    free(s);
}

/* 1 when pod belongs to a group (filled in), 0 when not, -EINVAL when the group is unusable. */
static int group_of(struct state *st, const struct corral_pod *pod, struct group *g)
{
    const struct corral_host *h = st->h;
    g->name = h->pod_label(h, pod, LABEL);
    if (!g->name)
        return 0;
    const struct corral_value *pg = h->lookup_object(h, "scheduling.x-k8s.io/v1alpha1",
                                                     "PodGroup", h->pod_namespace(h, pod),
                                                     g->name);
    g->timeout_ms = st->default_timeout_ms;
    if (pg) {
        g->min = h->value_integer(h->value_path(pg, "spec.minMember"));
        int64_t t = h->value_integer(h->value_path(pg, "spec.scheduleTimeoutSeconds"));
        if (t > 0 && t <= 86400)
            g->timeout_ms = (uint32_t)t * 1000;
    } else {
        const char *m = h->pod_annotation(h, pod, MIN_ANNOTATION);
        char *end;
        g->min = m ? strtoll(m, &end, 10) : 1;
        if (m && (*end || end == m))
            return -EINVAL;
    }
    return g->min >= 1 && g->min <= MAX_MEMBERS ? 1 : -EINVAL;
}

static uint32_t members(struct state *st, const struct corral_pod *pod, const struct group *g)
{
    const struct corral_host *h = st->h;
    uint32_t n = h->pods_with_label(h, h->pod_namespace(h, pod), LABEL, g->name, st->members,
                                    MAX_MEMBERS);
    return n > MAX_MEMBERS ? MAX_MEMBERS : n;
}

static int enough(void *s, const struct corral_pod *pod)
{
    struct state *st = s;
    struct group g;
    int r = group_of(st, pod, &g);
    if (r < 0)
        return CORRAL_REJECT_UNRESOLVABLE(R_INVALID);
    if (r == 0)
        return CORRAL_OK;
    return members(st, pod, &g) >= (uint32_t)g.min ? CORRAL_OK : CORRAL_REJECT(R_TOO_FEW);
}

static int pre_filter(void *s, const struct corral_pod *pod)
{
    int rc = enough(s, pod);
    return rc == CORRAL_OK ? CORRAL_SKIP : rc;
}

static int permit(void *s, const struct corral_pod *pod, uint32_t node, uint32_t *timeout_ms)
{
    struct state *st = s;
    const struct corral_host *h = st->h;
    (void)node;
    struct group g;
    if (group_of(st, pod, &g) != 1 || g.min <= 1)
        return CORRAL_OK;
    uint32_t n = members(st, pod, &g), placed = 0;
    for (uint32_t i = 0; i < n; i++)
        placed += h->pod_node(h, st->members[i]) != CORRAL_NO_NODE;
    if (placed < (uint32_t)g.min) {
        *timeout_ms = g.timeout_ms;
        return CORRAL_WAIT;
    }
    for (uint32_t i = 0; i < h->waiting_count(h); i++) {
        const struct corral_pod *w = h->waiting_pod(h, i);
        const char *wg = h->pod_label(h, w, LABEL);
        if (wg && strcmp(wg, g.name) == 0 &&
            strcmp(h->pod_namespace(h, w), h->pod_namespace(h, pod)) == 0)
            h->permit_allow(h, w, NULL);
    }
    return CORRAL_OK;
}

/* Rejects every waiting member of pod's group but pod itself. */
static void reject_group(struct state *st, const struct corral_pod *pod)
{
    const struct corral_host *h = st->h;
    struct group g;
    if (group_of(st, pod, &g) != 1)
        return;
    char msg[256];
    snprintf(msg, sizeof(msg), "pod group %s rejected: member %s could not be scheduled",
             g.name, h->pod_name(h, pod));
    for (uint32_t i = 0; i < h->waiting_count(h); i++) {
        const struct corral_pod *w = h->waiting_pod(h, i);
        const char *wg = h->pod_label(h, w, LABEL);
        if (w != pod && wg && strcmp(wg, g.name) == 0 &&
            strcmp(h->pod_namespace(h, w), h->pod_namespace(h, pod)) == 0)
            h->permit_reject(h, w, msg);
    }
}

static void unreserve(void *s, const struct corral_pod *pod, uint32_t node)
{
    (void)node;
    reject_group(s, pod);
}

static int post_filter(void *s, const struct corral_pod *pod, uint32_t *nominated)
{
    (void)nominated;
    reject_group(s, pod);
    return CORRAL_REJECT(R_TOO_FEW); /* no room was made */
}

static int reason(void *s, const struct corral_pod *pod, int code, char *buf, size_t len)
{
    struct state *st = s;
    struct group g;
    if (code == R_INVALID || group_of(st, pod, &g) != 1)
        return snprintf(buf, len, "pod group has an invalid minMember (annotation %s or "
                        "PodGroup spec.minMember)", MIN_ANNOTATION);
    return snprintf(buf, len, "pod group %s has %u of %lld pods", g.name, members(st, pod, &g),
                    (long long)g.min);
}

static const struct corral_plugin plugin = {
    .abi_version = CORRAL_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(struct corral_plugin),
    .name = "Coscheduling",
    .description = "gang scheduling of PodGroups: all minMember pods or none",
    .init = init,
    .fini = fini,
    .pre_enqueue = enough,
    .pre_filter = pre_filter,
    .post_filter = post_filter,
    .permit = permit,
    .unreserve = unreserve,
    .reason = reason,
};

CORRAL_PLUGIN_EXPORT const struct corral_plugin *corral_plugin_entry(void)
{
    return &plugin;
}
