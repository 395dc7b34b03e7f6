/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctrl_pods: pod summaries and the per-controller pod index (see ctrl_pods.h).
 *
 * Invariant: every summary in by_key is listed in exactly the secondary sets its fields name
 * (by_owner[owner_uid] or orphans[ns], and by_node[node] when bound); apply() removes the old
 * summary from its sets before inserting the new one.
 */
#include "ctrl_pods.h"
#include "ctrl_util.h"
#include "meta.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void corral_ctrl_pods_init(struct corral_ctrl_pods *p)
{
    corral_ctrl_map_init(&p->by_key);
    corral_ctrl_map_init(&p->by_owner);
    corral_ctrl_map_init(&p->by_node);
    corral_ctrl_map_init(&p->orphans);
}

static void free_pod(void *v)
{
    corral_ctrl_pod_free(v);
}

void corral_ctrl_pods_clear(struct corral_ctrl_pods *p)
{
    corral_ctrl_map_clear(&p->by_key, free_pod);
    corral_ctrl_multimap_clear(&p->by_owner);
    corral_ctrl_multimap_clear(&p->by_node);
    corral_ctrl_multimap_clear(&p->orphans);
}

void corral_ctrl_pod_free(struct corral_ctrl_pod *pod)
{
    if (!pod)
        return;
    free(pod->key);
    free(pod->ns);
    free(pod->name);
    free(pod->uid);
    free(pod->owner_uid);
    free(pod->node);
    free(pod->ip);
    free(pod->hostname);
    free(pod->subdomain);
    free(pod->restart_policy);
    json_decref(pod->labels);
    json_decref(pod->ports);
    json_decref(pod->tolerations);
    free(pod);
}

static char *dup_nonempty(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

static enum corral_pod_phase parse_phase(const char *s)
{
    if (!s)
        return CORRAL_POD_PENDING;
    if (strcmp(s, "Running") == 0)
        return CORRAL_POD_RUNNING;
    if (strcmp(s, "Succeeded") == 0)
        return CORRAL_POD_SUCCEEDED;
    if (strcmp(s, "Failed") == 0)
        return CORRAL_POD_FAILED;
    if (strcmp(s, "Unknown") == 0)
        return CORRAL_POD_UNKNOWN;
    return CORRAL_POD_PENDING;
}

static json_t *named_ports(const json_t *spec)
{
    json_t *out = NULL;
    size_t i, j;
    json_t *c, *port;
    json_array_foreach(json_object_get(spec, "containers"), i, c)
    {
        json_array_foreach(json_object_get(c, "ports"), j, port)
        {
            const char *name = json_string_value(json_object_get(port, "name"));
            if (!name || !json_is_integer(json_object_get(port, "containerPort")))
                continue;
            if (!out)
                out = json_array();
            const char *proto = json_string_value(json_object_get(port, "protocol"));
            json_array_append_new(out, json_pack("{s:s, s:O, s:s}", "name", name,
                                                 "containerPort",
                                                 json_object_get(port, "containerPort"),
                                                 "protocol", proto ? proto : "TCP"));
        }
    }
    return out;
}

static void parse_status(struct corral_ctrl_pod *pod, const json_t *status)
{
    pod->phase = parse_phase(json_string_value(json_object_get(status, "phase")));
    pod->ip = dup_nonempty(json_string_value(json_object_get(status, "podIP")));
    json_t *ready = corral_ctrl_condition(status, "Ready");
    const char *rs = json_string_value(json_object_get(ready, "status"));
    pod->ready = rs && strcmp(rs, "True") == 0;
    pod->ready_since = corral_ctrl_time_at(ready, "lastTransitionTime", NULL);
    size_t i;
    json_t *cs;
    json_array_foreach(json_object_get(status, "containerStatuses"), i, cs)
        pod->restarts += (int)corral_ctrl_int(cs, "restartCount", 0);
}

struct corral_ctrl_pod *corral_ctrl_pod_parse(const json_t *obj, const char *key)
{
    struct corral_ctrl_pod *pod = calloc(1, sizeof(*pod));
    if (!pod)
        return NULL;
    json_t *meta = json_object_get(obj, "metadata"), *spec = json_object_get(obj, "spec");
    pod->key = strdup(key);
    pod->ns = strdup(corral_meta_namespace(obj) ? corral_meta_namespace(obj) : "");
    pod->name = strdup(corral_meta_name(obj) ? corral_meta_name(obj) : "");
    pod->uid = strdup(corral_ctrl_uid(obj) ? corral_ctrl_uid(obj) : "");
    if (!pod->key || !pod->ns || !pod->name || !pod->uid) {
        corral_ctrl_pod_free(pod);
        return NULL;
    }
    json_t *ref = corral_ctrl_controller_ref(obj);
    pod->owner_uid = dup_nonempty(json_string_value(json_object_get(ref, "uid")));
    pod->node = dup_nonempty(json_string_value(json_object_get(spec, "nodeName")));
    pod->hostname = dup_nonempty(json_string_value(json_object_get(spec, "hostname")));
    pod->subdomain = dup_nonempty(json_string_value(json_object_get(spec, "subdomain")));
    pod->restart_policy = dup_nonempty(json_string_value(json_object_get(spec,
                                                                         "restartPolicy")));
    json_t *labels = json_object_get(meta, "labels");
    pod->labels = json_is_object(labels) ? json_deep_copy(labels) : json_object();
    pod->ports = named_ports(spec);
    json_t *tol = json_object_get(spec, "tolerations");
    pod->tolerations = json_array_size(tol) ? json_deep_copy(tol) : NULL;
    pod->created = corral_ctrl_time_at(meta, "creationTimestamp", NULL);
    pod->deleting = corral_ctrl_time_at(meta, "deletionTimestamp", NULL);
    if (json_object_get(meta, "deletionTimestamp") && !pod->deleting)
        pod->deleting = 1;
    pod->grace = (long)corral_ctrl_int(meta, "deletionGracePeriodSeconds", 0);
    pod->job_tracking = corral_ctrl_has_finalizer(obj, CORRAL_JOB_TRACKING_FINALIZER);
    pod->has_finalizers = json_array_size(json_object_get(meta, "finalizers")) > 0;
    const char *idx = json_string_value(json_object_get(json_object_get(meta, "annotations"),
                                                        CORRAL_JOB_INDEX_KEY));
    pod->completion_index = idx && *idx && strspn(idx, "0123456789") == strlen(idx)
                                ? atoi(idx)
                                : -1;
    parse_status(pod, json_object_get(obj, "status"));
    return pod;
}

static void unlink_pod(struct corral_ctrl_pods *p, const struct corral_ctrl_pod *pod)
{
    if (pod->owner_uid)
        corral_ctrl_multimap_del(&p->by_owner, pod->owner_uid, pod->key);
    else
        corral_ctrl_multimap_del(&p->orphans, pod->ns, pod->key);
    if (pod->node)
        corral_ctrl_multimap_del(&p->by_node, pod->node, pod->key);
}

static int link_pod(struct corral_ctrl_pods *p, const struct corral_ctrl_pod *pod)
{
    int rc = pod->owner_uid ? corral_ctrl_multimap_add(&p->by_owner, pod->owner_uid, pod->key)
                            : corral_ctrl_multimap_add(&p->orphans, pod->ns, pod->key);
    if (rc == 0 && pod->node)
        rc = corral_ctrl_multimap_add(&p->by_node, pod->node, pod->key);
    return rc;
}

struct corral_ctrl_pod *corral_ctrl_pods_apply(struct corral_ctrl_pods *p,
                                               const struct corral_store_event *ev,
                                               struct corral_ctrl_pod **old)
{
    *old = corral_ctrl_map_del(&p->by_key, ev->key);
    if (*old)
        unlink_pod(p, *old);
    if (ev->type == CORRAL_EVENT_DELETED || !ev->value)
        return NULL;
    json_t *obj = corral_blob_json(ev->value);
    struct corral_ctrl_pod *pod = obj ? corral_ctrl_pod_parse(obj, ev->key) : NULL;
    json_decref(obj);
    if (!pod)
        return NULL;
    if (corral_ctrl_map_put(&p->by_key, ev->key, pod) == pod || link_pod(p, pod) < 0) {
        corral_ctrl_map_del(&p->by_key, ev->key);
        unlink_pod(p, pod);
        corral_ctrl_pod_free(pod);
        return NULL;
    }
    return pod;
}

struct corral_ctrl_pod *corral_ctrl_pods_get(const struct corral_ctrl_pods *p, const char *key)
{
    return corral_ctrl_map_get(&p->by_key, key);
}

long corral_ctrl_pods_collect(const struct corral_ctrl_pods *p, const struct corral_ctrl_map *set,
                              struct corral_ctrl_pod ***out)
{
    size_t n = set ? corral_ctrl_map_size(set) : 0, k = 0, pos = 0;
    *out = calloc(n ? n : 1, sizeof(**out));
    if (!*out)
        return -ENOMEM;
    const char *key;
    while (set && corral_ctrl_map_next(set, &pos, &key, NULL)) {
        struct corral_ctrl_pod *pod = corral_ctrl_map_get(&p->by_key, key);
        if (pod)
            (*out)[k++] = pod;
    }
    return (long)k;
}

bool corral_ctrl_pod_active(const struct corral_ctrl_pod *pod)
{
    return !pod->deleting && pod->phase != CORRAL_POD_SUCCEEDED &&
           pod->phase != CORRAL_POD_FAILED;
}

bool corral_ctrl_pod_available(const struct corral_ctrl_pod *pod, long min_ready, time_t now)
{
    if (!pod->ready)
        return false;
    return min_ready <= 0 || (pod->ready_since && pod->ready_since + min_ready <= now);
}

static int cmp_int(long long a, long long b)
{
    return a < b ? -1 : a > b;
}

int corral_ctrl_pod_delete_order(const void *pa, const void *pb)
{
    const struct corral_ctrl_pod *a = *(struct corral_ctrl_pod *const *)pa;
    const struct corral_ctrl_pod *b = *(struct corral_ctrl_pod *const *)pb;
    int r;
    if ((r = cmp_int(a->node != NULL, b->node != NULL)))
        return r;
    if ((r = cmp_int(a->phase, b->phase)))
        return r;
    if ((r = cmp_int(a->ready, b->ready)))
        return r;
    if (a->ready && b->ready && (r = cmp_int(b->ready_since, a->ready_since)))
        return r; /* ready more recently first */
    if ((r = cmp_int(b->restarts, a->restarts)))
        return r;
    if ((r = cmp_int(b->created, a->created)))
        return r;
    return strcmp(b->name, a->name);
}
