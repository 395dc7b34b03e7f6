/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctrl_nodelifecycle: corral's failover. "Leases are seconds, not minutes."
 *
 * Health: every node agent renews its Lease kube-node-lease/<node>. The controller notes, on
 * its own monotonic clock, when it last saw the lease's spec.renewTime change (or the Ready
 * condition's heartbeat), so node clocks never matter. A node not heard from for
 * --node-grace-seconds (cfg.node_grace_s, default 10; a node that never sent a heartbeat gets
 * the 60 s startup grace) is lost: its conditions become Unknown (Ready: NodeStatusUnknown,
 * "Kubelet stopped posting node status."), it gets the node.kubernetes.io/unreachable taints
 * (NoSchedule, and NoExecute with timeAdded), its pods are marked not Ready (so Endpoints drop
 * them) and a NodeNotReady Event is recorded. A node whose kubelet reports Ready=False gets
 * the node.kubernetes.io/not-ready taints instead. When the lease is fresh again the
 * unreachable taints go; Ready comes back from the kubelet itself.
 *
 * Eviction (the taint manager): a pod on a node with NoExecute taints is deleted once the
 * shortest tolerationSeconds of its tolerations for those taints has passed since the taint's
 * timeAdded (no matching toleration: at once; a toleration without seconds: never). Pods get
 * 20 s tolerations for unreachable/not-ready by default. Pods on an unreachable node are
 * force-deleted (grace 0), so their ReplicaSet or Job replaces them elsewhere at once; the node
 * agent, if it comes back, kills what is no longer bound to it.
 *
 * Clean-up (pod GC): pods in a graceful deletion on a node that is lost, not ready or gone are
 * force-deleted once their grace period has passed; a deleted Node takes its pods with it; pods
 * bound to a node that never existed are deleted after 40 s.
 *
 * Keys on the work queue: "monitor" (every second), node store keys, pod store keys.
 */
#include "ctrl.h"
#include "ctrl_extract.h"
#include "ctrl_map.h"
#include "ctrl_pods.h"
#include "ctrl_util.h"
#include "error.h"
#include "log.h"
#include "meta.h"
#include "objects.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NODE_PREFIX "/registry/nodes/"
#define LEASE_PREFIX "/registry/coordination.k8s.io/leases/kube-node-lease/"
#define POD_PREFIX "/registry/pods/"
#define MONITOR "monitor"
#define MONITOR_MS 1000
#define STARTUP_GRACE_S 60
#define ORPHAN_QUARANTINE_S 40
#define UNREACHABLE "node.kubernetes.io/unreachable"
#define NOT_READY "node.kubernetes.io/not-ready"
#define NS_PER_S 1000000000ull

enum ready_state { READY_UNKNOWN, READY_TRUE, READY_FALSE };

struct nl_node {
    char *name;
    bool exists;
    bool heard;        /* a lease renewal or heartbeat was ever seen */
    uint64_t probe_ns; /* monotonic time of the last renewal seen */
    char *renew;       /* last lease spec.renewTime seen */
    char *heartbeat;   /* last Ready lastHeartbeatTime seen */
    enum ready_state ready;
    json_t *taints; /* spec.taints (owned) or NULL */
    bool lost_reported;
};

struct nl_state {
    struct corral_ctrl_map nodes;   /* name -> nl_node */
    struct corral_ctrl_map missing; /* node name -> (uintptr_t) time its pods were first seen */
    struct corral_ctrl_map deleted; /* node names deleted while we watched */
    bool relisting;
};

static void node_free(void *v)
{
    struct nl_node *n = v;
    if (!n)
        return;
    free(n->name);
    free(n->renew);
    free(n->heartbeat);
    json_decref(n->taints);
    free(n);
}

static void nl_reset(struct corral_ctrl *c)
{
    struct nl_state *st = corral_ctrl_state(c);
    corral_ctrl_map_clear(&st->nodes, node_free);
    corral_ctrl_map_clear(&st->missing, NULL);
    st->relisting = true;
    corral_ctrl_enqueue(c, MONITOR, MONITOR_MS);
}

static int nl_init(struct corral_ctrl *c)
{
    struct nl_state *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    corral_ctrl_set_state(c, st);
    return 0;
}

static void nl_fini(struct corral_ctrl *c)
{
    struct nl_state *st = corral_ctrl_state(c);
    nl_reset(c);
    corral_ctrl_map_clear(&st->deleted, NULL);
    free(st);
}

static uint64_t grace_ns(const struct corral_ctrl *c, const struct nl_node *n)
{
    uint64_t g = corral_ctrl_srv((struct corral_ctrl *)c)->cfg.node_grace_s;
    if (g == 0)
        g = 10;
    if (!n->heard && g < STARTUP_GRACE_S)
        g = STARTUP_GRACE_S;
    return g * NS_PER_S;
}

static bool is_lost(const struct corral_ctrl *c, const struct nl_node *n)
{
    return corral_now_ns() > n->probe_ns + grace_ns(c, n);
}

static struct nl_node *node_get(struct nl_state *st, const char *name, bool create)
{
    struct nl_node *n = corral_ctrl_map_get(&st->nodes, name);
    if (n || !create)
        return n;
    n = calloc(1, sizeof(*n));
    if (!n || !(n->name = strdup(name)) || corral_ctrl_map_put(&st->nodes, name, n) == n) {
        node_free(n);
        return NULL;
    }
    n->probe_ns = corral_now_ns();
    return n;
}

static void heard(struct nl_node *n, char **field, const char *value)
{
    if (!value || (*field && strcmp(*field, value) == 0))
        return;
    bool first = *field == NULL;
    free(*field);
    *field = strdup(value);
    if (!first || n->heard) /* a value seen at start-up is not a fresh renewal */
        n->probe_ns = corral_now_ns();
    n->heard = true;
}

static void enqueue_pods_on(struct corral_ctrl *c, const char *node)
{
    struct corral_ctrl_pod **pods = NULL;
    long n = corral_ctrl_pods_on_node(corral_ctrl_pod_index(c), node, &pods);
    for (long i = 0; i < n; i++)
        corral_ctrl_enqueue(c, pods[i]->key, 0);
    corral_ctrl_pods_release(pods, n);
}

static enum ready_state ready_of(const json_t *node, const char **heartbeat)
{
    json_t *cond = corral_ctrl_condition(json_object_get(node, "status"), "Ready");
    const char *s = json_string_value(json_object_get(cond, "status"));
    *heartbeat = json_string_value(json_object_get(cond, "lastHeartbeatTime"));
    if (s && strcmp(s, "True") == 0)
        return READY_TRUE;
    if (s && strcmp(s, "False") == 0)
        return READY_FALSE;
    return READY_UNKNOWN;
}

static const char *const node_fields[] = {"kind",
                                          "apiVersion",
                                          "metadata.name",
                                          "metadata.uid",
                                          "metadata.resourceVersion",
                                          "spec.taints",
                                          "status.conditions",
                                          NULL};
static const char *const lease_fields[] = {"spec.renewTime", NULL};

static void observe_node(struct corral_ctrl *c, const struct corral_store_event *ev)
{
    struct nl_state *st = corral_ctrl_state(c);
    const char *name = ev->key + strlen(NODE_PREFIX);
    if (ev->type == CORRAL_EVENT_DELETED) {
        node_free(corral_ctrl_map_del(&st->nodes, name));
        corral_ctrl_map_put(&st->deleted, name, CORRAL_CTRL_MAP_PRESENT);
        enqueue_pods_on(c, name);
        return;
    }
    json_t *obj = corral_ctrl_extract_blob(ev->value, node_fields);
    struct nl_node *n = obj ? node_get(st, name, true) : NULL;
    if (!n) {
        json_decref(obj);
        return;
    }
    bool was = n->exists;
    enum ready_state before = n->ready;
    n->exists = true;
    corral_ctrl_map_del(&st->deleted, name);
    corral_ctrl_map_del(&st->missing, name);
    const char *hb = NULL;
    n->ready = ready_of(obj, &hb);
    heard(n, &n->heartbeat, hb);
    json_t *taints = json_object_get(json_object_get(obj, "spec"), "taints");
    bool taints_changed = !json_equal(taints, n->taints) && (taints || n->taints);
    json_decref(n->taints);
    n->taints = json_array_size(taints) ? json_deep_copy(taints) : NULL;
    if (was && !st->relisting && before != n->ready && n->ready == READY_TRUE)
        corral_ctrl_event(c, obj, "Normal", "NodeReady", "Node %s status is now: NodeReady", name);
    json_decref(obj);
    if (taints_changed || !was)
        enqueue_pods_on(c, name);
    corral_ctrl_enqueue(c, ev->key, 0);
}

static void observe_lease(struct corral_ctrl *c, const struct corral_store_event *ev)
{
    struct nl_state *st = corral_ctrl_state(c);
    const char *name = ev->key + strlen(LEASE_PREFIX);
    if (ev->type == CORRAL_EVENT_DELETED || strchr(name, '/'))
        return;
    json_t *obj = corral_ctrl_extract_blob(ev->value, lease_fields);
    const char *renew =
        json_string_value(json_object_get(json_object_get(obj, "spec"), "renewTime"));
    struct nl_node *n = renew ? node_get(st, name, true) : NULL;
    if (n) {
        bool lost = is_lost(c, n);
        heard(n, &n->renew, renew);
        if (lost && !is_lost(c, n) && n->exists) {
            char key[CORRAL_CTRL_KEY_MAX];
            snprintf(key, sizeof(key), "%s%s", NODE_PREFIX, name);
            corral_ctrl_enqueue(c, key, 0); /* back: drop the taints now */
        }
    }
    json_decref(obj);
}

static void check_pod(struct corral_ctrl *c, const struct corral_ctrl_pod *pod)
{
    struct nl_state *st = corral_ctrl_state(c);
    if (!pod->node)
        return;
    struct nl_node *n = corral_ctrl_map_get(&st->nodes, pod->node);
    if (!n || !n->exists || n->taints || (pod->deleting && n->ready != READY_TRUE))
        corral_ctrl_enqueue(c, pod->key, 0);
}

static void nl_observe(struct corral_ctrl *c, const struct corral_store_event *ev)
{
    if (strncmp(ev->key, NODE_PREFIX, strlen(NODE_PREFIX)) == 0) {
        observe_node(c, ev);
    } else if (strncmp(ev->key, LEASE_PREFIX, strlen(LEASE_PREFIX)) == 0) {
        observe_lease(c, ev);
    } else { /* only pods bound to a node concern node health */
        const struct corral_ctrl_pod *old, *pod;
        corral_ctrl_pod_change(c, &old, &pod);
        if (pod)
            check_pod(c, pod);
    }
}

static void nl_resync(struct corral_ctrl *c)
{
    struct nl_state *st = corral_ctrl_state(c);
    size_t pos = 0;
    const char *name;
    char key[CORRAL_CTRL_KEY_MAX];
    while (corral_ctrl_map_next(&st->nodes, &pos, &name, NULL)) {
        snprintf(key, sizeof(key), "%s%s", NODE_PREFIX, name);
        corral_ctrl_enqueue(c, key, 0);
    }
    struct corral_ctrl_pod **pods = NULL;
    long n = corral_ctrl_pods_all(corral_ctrl_pod_index(c), &pods);
    for (long i = 0; i < n; i++)
        check_pod(c, pods[i]);
    corral_ctrl_pods_release(pods, n);
}

/* ---- taints ---- */

static bool taint_is(const json_t *t, const char *key, const char *effect)
{
    const char *k = json_string_value(json_object_get(t, "key"));
    const char *e = json_string_value(json_object_get(t, "effect"));
    return k && e && strcmp(k, key) == 0 && strcmp(e, effect) == 0;
}

static bool has_taint(const json_t *taints, const char *key, const char *effect)
{
    size_t i;
    json_t *t;
    json_array_foreach(taints, i, t)
    {
        if (taint_is(t, key, effect))
            return true;
    }
    return false;
}

/* Adds (want) or removes the NoSchedule and NoExecute taints key. Returns true on change. */
static bool set_taints(json_t *spec, const char *key, bool want, time_t now)
{
    json_t *taints = json_object_get(spec, "taints");
    bool changed = false;
    static const char *const effects[] = {"NoSchedule", "NoExecute"};
    for (int e = 0; e < 2; e++) {
        bool present = has_taint(taints, key, effects[e]);
        if (want && !present) {
            if (!json_is_array(taints)) {
                taints = json_array();
                json_object_set_new(spec, "taints", taints);
            }
            json_t *t = json_pack("{s:s, s:s}", "key", key, "effect", effects[e]);
            char ts[21];
            if (e == 1)
                json_object_set_new(t, "timeAdded", json_string(corral_ctrl_format_time(now, ts)));
            json_array_append_new(taints, t);
            changed = true;
        }
        for (size_t i = 0; !want && present && i < json_array_size(taints); i++) {
            if (taint_is(json_array_get(taints, i), key, effects[e])) {
                json_array_remove(taints, i);
                changed = true;
                break;
            }
        }
    }
    if (changed && json_array_size(taints) == 0)
        json_object_del(spec, "taints");
    return changed;
}

/* ---- node sync ---- */

/* Sets every condition Unknown, as Kubernetes does for a node that went silent. */
static bool conditions_unknown(json_t *status, time_t now)
{
    bool changed = false;
    if (!corral_ctrl_condition(status, "Ready"))
        changed |= corral_ctrl_set_condition(status, "Ready", "Unknown", "NodeStatusNeverUpdated",
                                             "Kubelet never posted node status.", NULL, now);
    size_t i;
    json_t *cond;
    json_array_foreach(json_object_get(status, "conditions"), i, cond)
    {
        const char *type = json_string_value(json_object_get(cond, "type"));
        const char *s = json_string_value(json_object_get(cond, "status"));
        if (!type || (s && strcmp(s, "Unknown") == 0))
            continue;
        changed |= corral_ctrl_set_condition(status, type, "Unknown", "NodeStatusUnknown",
                                             "Kubelet stopped posting node status.", NULL, now);
    }
    return changed;
}

static void mark_pods_not_ready(struct corral_ctrl *c, const char *node)
{
    struct corral_ctrl_pod **pods = NULL;
    long n = corral_ctrl_pods_on_node(corral_ctrl_pod_index(c), node, &pods);
    time_t now = corral_ctrl_now();
    for (long i = 0; i < n; i++) {
        if (!pods[i]->ready)
            continue;
        json_t *pod = NULL;
        if (corral_objects_get(corral_ctrl_srv(c), corral_ctrl_kinds()->pods, pods[i]->ns,
                               pods[i]->name, &pod) < 0)
            continue;
        json_t *status = json_object_get(pod, "status");
        if (json_is_object(status) &&
            corral_ctrl_set_condition(status, "Ready", "False", "NodeNotReady",
                                      "the node is not reachable", NULL, now))
            corral_objects_update(corral_ctrl_srv(c), corral_ctrl_kinds()->pods, pod, true, NULL);
        else
            json_decref(pod);
    }
    corral_ctrl_pods_release(pods, n);
}

/* Writes node (stolen) as a status or a spec update; on success refreshes *node. */
static int write_node(struct corral_ctrl *c, json_t **node, json_t *obj, bool status)
{
    json_t *out = NULL;
    int rc =
        corral_objects_update(corral_ctrl_srv(c), corral_ctrl_kinds()->nodes, obj, status, &out);
    if (rc == 0) {
        json_decref(*node);
        *node = out;
    }
    return rc;
}

static int sync_lost(struct corral_ctrl *c, struct nl_node *n, json_t **node, time_t now)
{
    json_t *obj = json_deep_copy(*node);
    json_t *status = json_object_get(obj, "status");
    if (!json_is_object(status)) {
        status = json_object();
        json_object_set_new(obj, "status", status);
    }
    int rc = 0;
    if (conditions_unknown(status, now))
        rc = write_node(c, node, obj, true);
    else
        json_decref(obj);
    if (rc < 0)
        return rc;
    obj = json_deep_copy(*node);
    json_t *spec = json_object_get(obj, "spec");
    if (!json_is_object(spec)) {
        spec = json_object();
        json_object_set_new(obj, "spec", spec);
    }
    bool changed = set_taints(spec, UNREACHABLE, true, now);
    changed |= set_taints(spec, NOT_READY, false, now);
    if (changed)
        rc = write_node(c, node, obj, false);
    else
        json_decref(obj);
    if (rc == 0 && !n->lost_reported) {
        n->lost_reported = true;
        corral_warn("nodelifecycle", "node %s lost: no lease renewal for %u s", n->name,
                    corral_ctrl_srv(c)->cfg.node_grace_s);
        corral_ctrl_event(c, *node, "Normal", "NodeNotReady", "Node %s status is now: NodeNotReady",
                          n->name);
        mark_pods_not_ready(c, n->name);
    }
    return rc;
}

static int sync_alive(struct corral_ctrl *c, struct nl_node *n, json_t **node, time_t now)
{
    json_t *obj = json_deep_copy(*node);
    json_t *spec = json_object_get(obj, "spec");
    if (!json_is_object(spec)) {
        spec = json_object();
        json_object_set_new(obj, "spec", spec);
    }
    const char *hb;
    enum ready_state ready = ready_of(*node, &hb);
    bool changed = set_taints(spec, UNREACHABLE, false, now);
    changed |= set_taints(spec, NOT_READY, ready == READY_FALSE, now);
    if (n->lost_reported)
        corral_info("nodelifecycle", "node %s is back", n->name);
    n->lost_reported = false;
    if (!changed) {
        json_decref(obj);
        return 0;
    }
    return write_node(c, node, obj, false);
}

static int sync_node(struct corral_ctrl *c, const char *key)
{
    struct nl_state *st = corral_ctrl_state(c);
    const char *name = key + strlen(NODE_PREFIX);
    struct nl_node *n = corral_ctrl_map_get(&st->nodes, name);
    json_t *node = NULL;
    if (!n || !n->exists)
        return 0;
    int rc = corral_objects_get(corral_ctrl_srv(c), corral_ctrl_kinds()->nodes, NULL, name, &node);
    if (rc < 0)
        return rc == CORRAL_ENOTFOUND ? 0 : rc;
    time_t now = corral_ctrl_now();
    rc = is_lost(c, n) ? sync_lost(c, n, &node, now) : sync_alive(c, n, &node, now);
    json_decref(node);
    return rc;
}

/* Whether the node's stored state differs from what its health calls for. */
static bool node_needs_sync(const struct corral_ctrl *c, const struct nl_node *n)
{
    bool lost = is_lost(c, n);
    if (lost)
        return n->ready != READY_UNKNOWN || !has_taint(n->taints, UNREACHABLE, "NoExecute") ||
               !has_taint(n->taints, UNREACHABLE, "NoSchedule") || !n->lost_reported;
    return has_taint(n->taints, UNREACHABLE, "NoExecute") ||
           has_taint(n->taints, UNREACHABLE, "NoSchedule") ||
           has_taint(n->taints, NOT_READY, "NoExecute") != (n->ready == READY_FALSE);
}

static int monitor(struct corral_ctrl *c)
{
    struct nl_state *st = corral_ctrl_state(c);
    size_t pos = 0;
    const char *name;
    void *v;
    char key[CORRAL_CTRL_KEY_MAX];
    while (corral_ctrl_map_next(&st->nodes, &pos, &name, &v)) {
        struct nl_node *n = v;
        if (!n->exists || !node_needs_sync(c, n))
            continue;
        snprintf(key, sizeof(key), "%s%s", NODE_PREFIX, name);
        corral_ctrl_enqueue(c, key, 0);
    }
    corral_ctrl_enqueue(c, MONITOR, MONITOR_MS);
    return 0;
}

/* ---- pods: eviction and clean-up ---- */

static bool tolerates(const json_t *tol, const json_t *taint)
{
    const char *tk = json_string_value(json_object_get(tol, "key"));
    const char *op = json_string_value(json_object_get(tol, "operator"));
    const char *te = json_string_value(json_object_get(tol, "effect"));
    const char *k = json_string_value(json_object_get(taint, "key"));
    const char *e = json_string_value(json_object_get(taint, "effect"));
    if (te && *te && (!e || strcmp(te, e) != 0))
        return false;
    if (op && strcmp(op, "Exists") == 0)
        return !tk || !*tk || (k && strcmp(tk, k) == 0);
    const char *tv = json_string_value(json_object_get(tol, "value"));
    const char *v = json_string_value(json_object_get(taint, "value"));
    return tk && k && strcmp(tk, k) == 0 && strcmp(tv ? tv : "", v ? v : "") == 0;
}

/*
 * When the pod must leave a node with taints: 0 = now, -1 = never (or no NoExecute taint),
 * else the wall-clock time.
 */
static time_t eviction_time(const struct corral_ctrl_pod *pod, const json_t *taints,
                            time_t first_seen)
{
    time_t when = -1;
    size_t i, j;
    json_t *taint, *tol;
    json_array_foreach(taints, i, taint)
    {
        const char *e = json_string_value(json_object_get(taint, "effect"));
        if (!e || strcmp(e, "NoExecute") != 0)
            continue;
        long min = -1;
        bool matched = false;
        json_array_foreach(pod->tolerations, j, tol)
        {
            if (!tolerates(tol, taint))
                continue;
            matched = true;
            json_t *secs = json_object_get(tol, "tolerationSeconds");
            if (json_is_integer(secs) && (min < 0 || json_integer_value(secs) < min))
                min = (long)json_integer_value(secs);
        }
        if (!matched)
            return 0;
        if (min < 0)
            continue;
        time_t added = corral_ctrl_time_at(taint, "timeAdded", NULL);
        time_t t = (added ? added : first_seen) + (min > 0 ? min : 0);
        if (when < 0 || t < when)
            when = t;
    }
    return when;
}

static int force_delete(struct corral_ctrl *c, const struct corral_ctrl_pod *pod, long grace,
                        const char *why)
{
    int rc =
        corral_ctrl_delete(c, corral_ctrl_kinds()->pods, pod->ns, pod->name, pod->uid, grace, NULL);
    if (rc == 0) {
        json_t *ref =
            json_pack("{s:s, s:s, s:{s:s, s:s, s:s}}", "kind", "Pod", "apiVersion", "v1",
                      "metadata", "name", pod->name, "namespace", pod->ns, "uid", pod->uid);
        corral_ctrl_event(c, ref, "Normal", why, "Marking for deletion Pod %s/%s", pod->ns,
                          pod->name);
        json_decref(ref);
    }
    return rc == CORRAL_ENOTFOUND ? 0 : rc;
}

static void enqueue_at(struct corral_ctrl *c, const char *key, time_t when, time_t now)
{
    long secs = (long)(when - now);
    corral_ctrl_enqueue(c, key, (unsigned)(secs > 0 ? secs : 0) * 1000u + 50);
}

/* A pod bound to a node that is gone, or that never existed. */
static int sync_orphan(struct corral_ctrl *c, const struct corral_ctrl_pod *pod, time_t now)
{
    struct nl_state *st = corral_ctrl_state(c);
    if (corral_ctrl_map_get(&st->deleted, pod->node))
        return force_delete(c, pod, 0, "NodeDeleted");
    uintptr_t since = (uintptr_t)corral_ctrl_map_get(&st->missing, pod->node);
    if (!since) {
        since = (uintptr_t)now;
        corral_ctrl_map_put(&st->missing, pod->node, (void *)since);
    }
    if ((time_t)since + ORPHAN_QUARANTINE_S <= now)
        return force_delete(c, pod, 0, "PodGCOrphaned");
    enqueue_at(c, pod->key, (time_t)since + ORPHAN_QUARANTINE_S, now);
    return 0;
}

static int sync_bound_pod(struct corral_ctrl *c, const char *key,
                          const struct corral_ctrl_pod *pod)
{
    struct nl_state *st = corral_ctrl_state(c);
    time_t now = corral_ctrl_now();
    struct nl_node *n = corral_ctrl_map_get(&st->nodes, pod->node);
    if (!n || !n->exists)
        return sync_orphan(c, pod, now);
    bool lost = is_lost(c, n) || has_taint(n->taints, UNREACHABLE, "NoExecute");
    if (pod->deleting) {
        if ((!lost && n->ready == READY_TRUE) || pod->grace == 0)
            return 0; /* its kubelet finishes the deletion, or finalizers hold it */
        if (pod->deleting <= now)
            return force_delete(c, pod, 0, "TerminatingOnLostNode");
        enqueue_at(c, key, pod->deleting, now);
        return 0;
    }
    time_t when = eviction_time(pod, n->taints, now);
    if (when < 0)
        return 0;
    if (when <= now)
        return force_delete(c, pod, lost ? 0 : -1, "TaintManagerEviction");
    enqueue_at(c, key, when, now);
    return 0;
}

static int sync_pod(struct corral_ctrl *c, const char *key)
{
    struct corral_ctrl_pod *pod = corral_ctrl_pods_get(corral_ctrl_pod_index(c), key);
    int rc = pod && pod->node ? sync_bound_pod(c, key, pod) : 0;
    corral_ctrl_pod_unref(pod);
    return rc;
}

static int nl_sync(struct corral_ctrl *c, const char *key)
{
    if (strcmp(key, MONITOR) == 0)
        return monitor(c);
    if (strncmp(key, NODE_PREFIX, strlen(NODE_PREFIX)) == 0)
        return sync_node(c, key);
    return sync_pod(c, key);
}

static void nl_relisted(struct corral_ctrl *c)
{
    struct nl_state *st = corral_ctrl_state(c);
    st->relisting = false;
}

const struct corral_ctrl_def corral_ctrl_nodelifecycle = {
    .name = "nodelifecycle",
    .component = "node-controller",
    .prefixes = {NODE_PREFIX, LEASE_PREFIX, POD_PREFIX},
    .resync_s = 30,
    .pods = true,
    .init = nl_init,
    .fini = nl_fini,
    .reset = nl_reset,
    .observe = nl_observe,
    .resync = nl_resync,
    .sync = nl_sync,
    .relisted = nl_relisted,
};
