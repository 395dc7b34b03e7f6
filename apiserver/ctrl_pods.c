/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctrl_pods: pod summaries and the per-controller pod index (see ctrl_pods.h).
 *
 * Invariant: every summary in by_key is listed in exactly the secondary sets its fields name
 * (by_owner[owner_uid] or orphans[ns], and by_node[node] when bound); apply() removes the old
 * summary from its sets before inserting the new one.
 *
 * Memory: a summary holds a few short strings; labels, named ports and tolerations are
 * interned (pods of one template share one copy), and the table of interned values is swept
 * of unused entries every SWEEP_EVERY events.
 */
#include "ctrl_pods.h"
#include "ctrl_extract.h"
#include "ctrl_util.h"
#include "meta.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SWEEP_EVERY 4096

void corral_ctrl_pods_init(struct corral_ctrl_pods *p, unsigned fields,
                           corral_ctrl_pod_keep_fn keep, void *keep_ctx)
{
    memset(p, 0, sizeof(*p));
    p->fields = fields;
    p->keep = keep;
    p->keep_ctx = keep_ctx;
}

static void free_pod(void *v)
{
    corral_ctrl_pod_free(v);
}

static void free_json(void *v)
{
    json_decref(v);
}

void corral_ctrl_pods_clear(struct corral_ctrl_pods *p)
{
    corral_ctrl_map_clear(&p->by_key, free_pod);
    corral_ctrl_multimap_clear(&p->by_owner);
    corral_ctrl_multimap_clear(&p->by_node);
    corral_ctrl_multimap_clear(&p->orphans);
    corral_ctrl_map_clear(&p->interned, free_json);
}

void corral_ctrl_pod_free(struct corral_ctrl_pod *pod)
{
    if (!pod)
        return;
    free(pod->key);
    free(pod->uid);
    free(pod->owner_uid);
    free(pod->node);
    free(pod->ip);
    free(pod->hostname);
    free(pod->subdomain);
    json_decref(pod->labels);
    json_decref(pod->ports);
    json_decref(pod->tolerations);
    free(pod);
}

/* Drops interned values no summary uses any more. */
static void sweep_interned(struct corral_ctrl_pods *p)
{
    size_t pos = 0;
    const char *key;
    void *v;
    while (corral_ctrl_map_next(&p->interned, &pos, &key, &v)) {
        if (((json_t *)v)->refcount > 1)
            continue;
        corral_ctrl_map_del(&p->interned, key);
        json_decref(v);
    }
}

/* The shared copy of v (a new reference); steals v. */
static json_t *intern(struct corral_ctrl_pods *p, json_t *v)
{
    if (!v)
        return NULL;
    char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (!text)
        return v;
    json_t *shared = corral_ctrl_map_get(&p->interned, text);
    if (shared) {
        json_decref(v);
        v = json_incref(shared);
    } else if (!corral_ctrl_map_put(&p->interned, text, v)) {
        json_incref(v); /* one reference for the table, one for the caller */
    }
    free(text);
    return v;
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
            json_array_append_new(out, json_pack("{s:s, s:O, s:s}", "name", name, "containerPort",
                                                 json_object_get(port, "containerPort"), "protocol",
                                                 proto ? proto : "TCP"));
        }
    }
    return out;
}

static void parse_status(struct corral_ctrl_pod *pod, const json_t *status, unsigned fields)
{
    pod->phase = parse_phase(json_string_value(json_object_get(status, "phase")));
    if (fields & CORRAL_POD_ADDRESS)
        pod->ip = dup_nonempty(json_string_value(json_object_get(status, "podIP")));
    json_t *ready = corral_ctrl_condition(status, "Ready");
    const char *rs = json_string_value(json_object_get(ready, "status"));
    pod->ready = rs && strcmp(rs, "True") == 0;
    pod->ready_since = corral_ctrl_time_at(ready, "lastTransitionTime", NULL);
    size_t i;
    json_t *cs;
    json_array_foreach(json_object_get(status, "containerStatuses"), i, cs) pod->restarts +=
        (int)corral_ctrl_int(cs, "restartCount", 0);
}

/* Allocates "key\0ns\0name" and points ns and name into it. */
static int set_identity(struct corral_ctrl_pod *pod, const char *key, const json_t *obj)
{
    const char *ns = corral_meta_namespace(obj), *name = corral_meta_name(obj);
    const char *uid = corral_ctrl_uid(obj);
    ns = ns ? ns : "";
    name = name ? name : "";
    size_t kl = strlen(key), nl = strlen(ns), ml = strlen(name);
    pod->key = malloc(kl + nl + ml + 3);
    pod->uid = strdup(uid ? uid : "");
    if (!pod->key || !pod->uid)
        return -ENOMEM;
    memcpy(pod->key, key, kl + 1);
    memcpy(pod->key + kl + 1, ns, nl + 1);
    memcpy(pod->key + kl + nl + 2, name, ml + 1);
    pod->ns = pod->key + kl + 1;
    pod->name = pod->key + kl + nl + 2;
    return 0;
}

static void parse_owner(struct corral_ctrl_pod *pod, const json_t *obj)
{
    json_t *ref = corral_ctrl_controller_ref(obj);
    pod->owner_uid = dup_nonempty(json_string_value(json_object_get(ref, "uid")));
    const char *kind = json_string_value(json_object_get(ref, "kind"));
    snprintf(pod->owner_kind, sizeof(pod->owner_kind), "%s", pod->owner_uid && kind ? kind : "");
}

static struct corral_ctrl_pod *parse(struct corral_ctrl_pods *p, const json_t *obj, const char *key)
{
    struct corral_ctrl_pod *pod = calloc(1, sizeof(*pod));
    if (!pod || set_identity(pod, key, obj) < 0) {
        corral_ctrl_pod_free(pod);
        return NULL;
    }
    json_t *meta = json_object_get(obj, "metadata"), *spec = json_object_get(obj, "spec");
    parse_owner(pod, obj);
    pod->node = dup_nonempty(json_string_value(json_object_get(spec, "nodeName")));
    if (p->fields & CORRAL_POD_ADDRESS) {
        pod->hostname = dup_nonempty(json_string_value(json_object_get(spec, "hostname")));
        pod->subdomain = dup_nonempty(json_string_value(json_object_get(spec, "subdomain")));
    }
    const char *rp = json_string_value(json_object_get(spec, "restartPolicy"));
    pod->on_failure = rp && strcmp(rp, "OnFailure") == 0;
    if (p->fields & CORRAL_POD_LABELS) {
        json_t *labels = json_object_get(meta, "labels");
        pod->labels = intern(p, json_is_object(labels) ? json_deep_copy(labels) : json_object());
    }
    if (p->fields & CORRAL_POD_PORTS)
        pod->ports = intern(p, named_ports(spec));
    json_t *tol = json_object_get(spec, "tolerations");
    if ((p->fields & CORRAL_POD_TOLERATIONS) && json_array_size(tol))
        pod->tolerations = intern(p, json_deep_copy(tol));
    pod->created = corral_ctrl_time_at(meta, "creationTimestamp", NULL);
    pod->deleting = corral_ctrl_time_at(meta, "deletionTimestamp", NULL);
    if (json_object_get(meta, "deletionTimestamp") && !pod->deleting)
        pod->deleting = 1;
    pod->grace = (long)corral_ctrl_int(meta, "deletionGracePeriodSeconds", 0);
    pod->job_tracking = corral_ctrl_has_finalizer(obj, CORRAL_JOB_TRACKING_FINALIZER);
    const char *idx = json_string_value(
        json_object_get(json_object_get(meta, "annotations"), CORRAL_JOB_INDEX_KEY));
    pod->completion_index =
        idx && *idx && strspn(idx, "0123456789") == strlen(idx) ? atoi(idx) : -1;
    parse_status(pod, json_object_get(obj, "status"), p->fields);
    return pod;
}

/* Reads from the stored pod only the members the summary is made of. */
static json_t *read_fields(const struct corral_ctrl_pods *p, const struct corral_blob *b)
{
    const char *paths[32] = {"metadata.name",
                             "metadata.namespace",
                             "metadata.uid",
                             "metadata.ownerReferences",
                             "metadata.creationTimestamp",
                             "metadata.deletionTimestamp",
                             "metadata.deletionGracePeriodSeconds",
                             "metadata.finalizers",
                             "spec.nodeName",
                             "spec.restartPolicy",
                             "status.phase",
                             "status.conditions",
                             "status.containerStatuses"};
    size_t n = 13;
    if (p->fields & CORRAL_POD_LABELS)
        paths[n++] = "metadata.labels";
    if (p->fields & CORRAL_POD_INDEX)
        paths[n++] = "metadata.annotations";
    if (p->fields & CORRAL_POD_PORTS)
        paths[n++] = "spec.containers";
    if (p->fields & CORRAL_POD_TOLERATIONS)
        paths[n++] = "spec.tolerations";
    if (p->fields & CORRAL_POD_ADDRESS) {
        paths[n++] = "status.podIP";
        paths[n++] = "spec.hostname";
        paths[n++] = "spec.subdomain";
    }
    paths[n] = NULL;
    return corral_ctrl_extract_blob(b, paths);
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
    if (++p->applies >= SWEEP_EVERY) {
        p->applies = 0;
        sweep_interned(p);
    }
    if (ev->type == CORRAL_EVENT_DELETED || !ev->value)
        return NULL;
    json_t *obj = read_fields(p, ev->value);
    struct corral_ctrl_pod *pod = obj ? parse(p, obj, ev->key) : NULL;
    json_decref(obj);
    if (pod && p->keep && !p->keep(pod, p->keep_ctx)) {
        corral_ctrl_pod_free(pod);
        pod = NULL;
    }
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

bool corral_ctrl_pod_owned_by(const struct corral_ctrl_pod *pod, const char *kind)
{
    return pod->owner_uid && strcmp(pod->owner_kind, kind) == 0;
}

bool corral_ctrl_pod_active(const struct corral_ctrl_pod *pod)
{
    return !pod->deleting && pod->phase != CORRAL_POD_SUCCEEDED && pod->phase != CORRAL_POD_FAILED;
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
