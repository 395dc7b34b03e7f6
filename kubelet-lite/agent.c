/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agent: the node agent joined to a cluster (see agent.h).
 *
 * Shared state (what the informer last said about each pod, the pods that need a runtime sync,
 * statuses waiting to be written, pods whose processes are gone) sits behind one mutex; each
 * thread takes a batch, drops the lock and talks to the API server with its own client. The
 * informer's callback only records and signals, so a slow API call never delays the watch.
 *
 * The API server deletes a terminating pod on its next update (no finalizers), so no status is
 * written for a pod with a deletionTimestamp: once its processes are gone the agent sends the
 * final DELETE (grace 0, UID precondition), as the kubelet does.
 */
#include "agent.h"

#include "container.h"
#include "credentials.h"
#include "error.h"
#include "log.h"
#include "logserver.h"
#include "meta.h"
#include "node.h"
#include "nvml.h"
#include "runtime.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define SUBSYS "agent"
#define LEASE_NS "kube-node-lease"
#define RETRY_MS 1000
#define CONFIG_RETRY_MS 2000
#define STOP_GRACE_S 10

enum { COND_READY, COND_MEMORY, COND_DISK, COND_PID, COND_GPU, NCOND };

struct agent {
    const struct corral_kubelet_options *opts;
    struct corral_topology *topo;
    char name[254];
    char address[64];
    struct corral_node_identity id;
    struct corral_serving_tls tls;
    struct corral_cgroups cg;
    struct corral_runtime *rt;
    struct corral_logserver *ls;
    json_t *node; /* the Node to register: labels, annotations, capacity, nodeInfo */

    pthread_mutex_t lock;
    pthread_cond_t cv;
    bool quit;
    bool relist;      /* the informer should start over with a fresh list */
    json_t *known;    /* uid -> last pod seen bound here; null once deleted or moved */
    json_t *dirty;    /* uid -> true: sync with the runtime */
    json_t *statuses; /* uid -> {"ns", "name", "status"}: to write */
    json_t *stopped;  /* uid -> true: no processes left */
    json_t *events;   /* [{"ns", "name", "uid", "event"}]: to record */
    json_t *recorded; /* aggregation key -> {"name", "count"} of Events written (status thread) */

    struct corral_client *c_inf, *c_sync, *c_status, *c_heart;
    struct corral_informer *inf;
    pthread_t t_inf, t_sync, t_status, t_heart;
    bool started_inf, started_sync, started_status, started_heart;

    /* heartbeat thread only */
    json_t *lease;
    int cond[NCOND];
    char cond_since[NCOND][21];
    bool registered;
    bool had_lease; /* a lease existed once: a missing one means the store was lost */
    bool api_down;
};

/* ---- small helpers ------------------------------------------------------------------------- */

/* snprintf for messages, where cutting a long path short is fine. */
static void msgf(char *out, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void msgf(char *out, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, len, fmt, ap);
    va_end(ap);
}

static const char *str_at(const json_t *obj, const char *a, const char *b)
{
    return json_string_value(json_object_get(json_object_get(obj, a), b));
}

static bool transient(int rc)
{
    return rc == CORRAL_EUNAVAILABLE || rc == CORRAL_ETIMEOUT || rc == -EPROTO ||
           rc == CORRAL_EINTERNAL;
}

static void api_state(struct agent *a, int rc, const char *what)
{
    bool down = transient(rc);
    if (down && !a->api_down)
        corral_warn(SUBSYS, "API server unreachable (%s: %s); pods keep running, retrying", what,
                    corral_client_error(a->c_heart));
    else if (!down && a->api_down)
        corral_info(SUBSYS, "API server reachable again");
    a->api_down = down;
}

static void now_text(char out[21])
{
    corral_meta_format_time(time(NULL), out);
}

/* ---- pods: informer ----------------------------------------------------------------------------
 */

static int on_pod_event(enum corral_watch_type type, json_t *pod, void *ctx)
{
    struct agent *a = ctx;
    const char *uid = str_at(pod, "metadata", "uid");
    const char *node = str_at(pod, "spec", "nodeName");
    if (!uid)
        return 0;
    pthread_mutex_lock(&a->lock);
    bool here = type != CORRAL_WATCH_DELETED && node && strcmp(node, a->name) == 0;
    if (here)
        json_object_set(a->known, uid, pod);
    else if (json_object_get(a->known, uid))
        json_object_set_new(a->known, uid, json_null()); /* deleted, or bound elsewhere */
    if (here || json_object_get(a->known, uid))
        json_object_set_new(a->dirty, uid, json_true());
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->lock);
    return 0;
}

/* After every (re)list: a pod the runtime runs that the API server no longer has must stop. */
static int on_pods_synced(void *ctx)
{
    struct agent *a = ctx;
    json_t *pods = corral_runtime_pods(a->rt);
    size_t i;
    json_t *p;
    pthread_mutex_lock(&a->lock);
    json_array_foreach(pods, i, p)
    {
        const char *uid = json_string_value(json_object_get(p, "uid"));
        if (!json_is_object(json_object_get(a->known, uid))) {
            json_object_set_new(a->known, uid, json_null());
            json_object_set_new(a->dirty, uid, json_true());
        }
    }
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->lock);
    json_decref(pods);
    return 0;
}

static int new_informer(struct agent *a, struct corral_client **c, struct corral_informer **inf)
{
    char *path = corral_client_path("v1", "pods", NULL, NULL, NULL);
    char selector[300];
    snprintf(selector, sizeof(selector), "spec.nodeName=%s", a->name);
    int rc = path ? corral_client_query_add(&path, "fieldSelector", selector) : -ENOMEM;
    struct corral_informer_config ic = {.path = path,
                                        .on_event = on_pod_event,
                                        .on_synced = on_pods_synced,
                                        .ctx = a,
                                        .backoff_min_ms = 200,
                                        .backoff_max_ms = 5000,
                                        .watch_timeout_s = 300};
    *c = NULL;
    *inf = NULL;
    if (rc == 0)
        rc = corral_client_clone(a->id.client, c);
    if (rc == 0)
        rc = corral_informer_new(*c, &ic, inf);
    free(path);
    return rc;
}

/*
 * Runs the pod informer; when the heartbeat finds that the API server lost its store it asks
 * for a fresh one (a watch resumed from a revision the new store never had would miss events).
 */
static void *informer_main(void *arg)
{
    struct agent *a = arg;
    for (;;) {
        corral_informer_run(a->inf);
        pthread_mutex_lock(&a->lock);
        bool again = a->relist && !a->quit;
        a->relist = false;
        struct corral_informer *old = again ? a->inf : NULL;
        struct corral_client *old_c = again ? a->c_inf : NULL;
        if (again)
            json_object_clear(a->known); /* the new list says what is bound here now */
        if (again && new_informer(a, &a->c_inf, &a->inf) < 0) {
            a->inf = old; /* keep the stopped one: agent shutdown frees it */
            a->c_inf = old_c;
            old = NULL;
            old_c = NULL;
            again = false;
        }
        pthread_mutex_unlock(&a->lock);
        corral_informer_free(old);
        corral_client_free(old_c);
        if (!again)
            break;
        corral_info(SUBSYS, "listing this node's pods again");
    }
    return NULL;
}

static void request_relist(struct agent *a)
{
    pthread_mutex_lock(&a->lock);
    a->relist = true;
    if (a->inf)
        corral_informer_stop(a->inf);
    pthread_mutex_unlock(&a->lock);
}

/* ---- pods: sync worker -------------------------------------------------------------------------
 */

static void add_ref(json_t *want, const char *kind, const json_t *ref)
{
    const char *name = json_string_value(json_object_get(ref, "name"));
    if (name)
        json_object_set_new(json_object_get(want, kind), name, json_true());
}

/* The ConfigMaps and Secrets the pod's environment refers to: {configmaps:{N:1}, secrets:{}}. */
static json_t *referenced(const json_t *pod)
{
    json_t *want = json_pack("{s:{}, s:{}}", "configmaps", "secrets");
    static const char *const lists[] = {"containers", "initContainers"};
    for (int l = 0; l < 2; l++) {
        size_t i, k;
        const json_t *c, *e;
        json_array_foreach(json_object_get(json_object_get(pod, "spec"), lists[l]), i, c)
        {
            json_array_foreach(json_object_get(c, "env"), k, e)
            {
                const json_t *from = json_object_get(e, "valueFrom");
                add_ref(want, "configmaps", json_object_get(from, "configMapKeyRef"));
                add_ref(want, "secrets", json_object_get(from, "secretKeyRef"));
            }
            json_array_foreach(json_object_get(c, "envFrom"), k, e)
            {
                add_ref(want, "configmaps", json_object_get(e, "configMapRef"));
                add_ref(want, "secrets", json_object_get(e, "secretRef"));
            }
        }
    }
    return want;
}

/* Fetches what the pod refers to. Missing objects are left out (the runtime reports them). */
static json_t *fetch_sources(struct agent *a, const json_t *pod)
{
    const char *ns = str_at(pod, "metadata", "namespace");
    json_t *want = referenced(pod), *have = json_pack("{s:{}, s:{}}", "configmaps", "secrets");
    static const char *const kinds[] = {"configmaps", "secrets"};
    for (int k = 0; k < 2; k++) {
        const char *name;
        json_t *v;
        json_object_foreach(json_object_get(want, kinds[k]), name, v)
        {
            char *path = corral_client_path("v1", kinds[k], ns ? ns : "default", name, NULL);
            json_t *obj = NULL;
            int rc = path ? corral_client_get(a->c_sync, path, &obj) : -ENOMEM;
            if (rc == 0)
                json_object_set_new(json_object_get(have, kinds[k]), name, obj);
            else if (rc != CORRAL_ENOTFOUND)
                corral_warn(SUBSYS, "fetching %s %s/%s: %s", kinds[k], ns, name,
                            corral_client_error(a->c_sync));
            free(path);
        }
    }
    json_decref(want);
    return have;
}

static void sync_one(struct agent *a, const char *uid)
{
    pthread_mutex_lock(&a->lock);
    json_t *pod = json_incref(json_object_get(a->known, uid));
    pthread_mutex_unlock(&a->lock);
    if (!json_is_object(pod)) {
        /* gone from the API server or bound elsewhere: stop it, quickly */
        corral_runtime_stop_pod(a->rt, uid, 1);
        json_decref(pod);
        return;
    }
    json_t *sources = fetch_sources(a, pod);
    int rc = corral_runtime_sync_pod(a->rt, pod, sources);
    if (rc < 0)
        corral_warn(SUBSYS, "pod %s/%s: %s", str_at(pod, "metadata", "namespace"),
                    str_at(pod, "metadata", "name"), corral_strerror(rc));
    json_decref(sources);
    json_decref(pod);
}

/* The final DELETE of a pod whose processes are gone (grace 0, only this incarnation). */
static void finish_deletion(struct agent *a, const char *uid, const json_t *pod)
{
    const char *ns = str_at(pod, "metadata", "namespace"), *name = str_at(pod, "metadata", "name");
    char *path = corral_client_path("v1", "pods", ns, name, NULL);
    json_t *opts = json_pack("{s:s, s:s, s:i, s:{s:s}}", "apiVersion", "v1", "kind",
                             "DeleteOptions", "gracePeriodSeconds", 0, "preconditions", "uid", uid);
    int rc = path ? corral_client_delete(a->c_sync, path, opts, NULL) : -ENOMEM;
    if (rc < 0 && rc != CORRAL_ENOTFOUND && rc != CORRAL_ECONFLICT) {
        corral_warn(SUBSYS, "deleting pod %s/%s: %s; will retry", ns, name,
                    corral_client_error(a->c_sync));
        pthread_mutex_lock(&a->lock);
        json_object_set_new(a->stopped, uid, json_true());
        pthread_mutex_unlock(&a->lock);
    } else {
        corral_runtime_remove_pod(a->rt, uid);
        corral_info(SUBSYS, "pod %s/%s stopped and deleted", ns, name);
    }
    json_decref(opts);
    free(path);
}

static void handle_stopped(struct agent *a, const char *uid)
{
    pthread_mutex_lock(&a->lock);
    json_t *pod = json_incref(json_object_get(a->known, uid));
    bool quitting = a->quit;
    pthread_mutex_unlock(&a->lock);
    if (json_is_object(pod) &&
        json_object_get(json_object_get(pod, "metadata"), "deletionTimestamp"))
        finish_deletion(a, uid, pod);
    else if (!json_is_object(pod) && !quitting) {
        corral_runtime_remove_pod(a->rt, uid);
        pthread_mutex_lock(&a->lock);
        json_object_del(a->known, uid);
        pthread_mutex_unlock(&a->lock);
    }
    json_decref(pod);
}

/* Pods waiting for a ConfigMap or Secret get another look every few seconds. */
static void retry_config_errors(struct agent *a)
{
    json_t *pods = corral_runtime_pods(a->rt);
    size_t i;
    json_t *p;
    json_array_foreach(pods, i, p)
    {
        const char *uid = json_string_value(json_object_get(p, "uid"));
        json_t *st = corral_runtime_status(a->rt, uid);
        char *text = st ? json_dumps(st, JSON_COMPACT) : NULL;
        if (text && strstr(text, "\"CreateContainerConfigError\"")) {
            pthread_mutex_lock(&a->lock);
            json_object_set_new(a->dirty, uid, json_true());
            pthread_mutex_unlock(&a->lock);
        }
        free(text);
        json_decref(st);
    }
    json_decref(pods);
}

/* Takes every key of obj (under the lock) into a new array and empties obj. */
static json_t *take_keys(json_t *obj)
{
    json_t *keys = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        json_array_append_new(keys, json_string(k));
    }
    json_object_clear(obj);
    return keys;
}

static void *sync_main(void *arg)
{
    struct agent *a = arg;
    pthread_mutex_lock(&a->lock);
    while (!a->quit) {
        if (json_object_size(a->dirty) == 0 && json_object_size(a->stopped) == 0) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += CONFIG_RETRY_MS / 1000;
            if (pthread_cond_timedwait(&a->cv, &a->lock, &until) == ETIMEDOUT) {
                pthread_mutex_unlock(&a->lock);
                retry_config_errors(a);
                pthread_mutex_lock(&a->lock);
            }
            continue;
        }
        json_t *stopped = take_keys(a->stopped), *dirty = take_keys(a->dirty);
        pthread_mutex_unlock(&a->lock);
        size_t i;
        json_t *uid;
        json_array_foreach(stopped, i, uid)
        {
            handle_stopped(a, json_string_value(uid));
        }
        json_array_foreach(dirty, i, uid)
        {
            sync_one(a, json_string_value(uid));
        }
        json_decref(stopped);
        json_decref(dirty);
        pthread_mutex_lock(&a->lock);
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

/* ---- pods: status writer ------------------------------------------------------------------------
 */

static void on_runtime_status(void *ctx, const char *ns, const char *name, const char *uid,
                              const json_t *status)
{
    struct agent *a = ctx;
    pthread_mutex_lock(&a->lock);
    json_object_set_new(a->statuses, uid,
                        json_pack("{s:s, s:s, s:O}", "ns", ns, "name", name, "status", status));
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->lock);
}

#define MAX_QUEUED_EVENTS 1000
#define MAX_RECORDED_EVENTS 4096

static void on_runtime_event(void *ctx, const char *ns, const char *name, const char *uid,
                             const json_t *event)
{
    struct agent *a = ctx;
    pthread_mutex_lock(&a->lock);
    if (json_array_size(a->events) < MAX_QUEUED_EVENTS) /* a storm is dropped, not stalled on */
        json_array_append_new(a->events, json_pack("{s:s, s:s, s:s, s:O}", "ns", ns, "name", name,
                                                   "uid", uid, "event", event));
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->lock);
}

static void on_runtime_stopped(void *ctx, const char *ns, const char *name, const char *uid)
{
    struct agent *a = ctx;
    (void)ns;
    (void)name;
    pthread_mutex_lock(&a->lock);
    json_object_set_new(a->stopped, uid, json_true());
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->lock);
}

/* ---- pods: events ------------------------------------------------------------------------------
 */

static json_t *event_object(struct agent *a, const json_t *item, const char *name, const char *now)
{
    const json_t *ev = json_object_get(item, "event");
    const char *ns = json_string_value(json_object_get(item, "ns"));
    json_t *involved = json_pack("{s:s, s:s, s:s, s:O, s:s}", "apiVersion", "v1", "kind", "Pod",
                                 "namespace", ns, "name", json_object_get(item, "name"), "uid",
                                 json_string_value(json_object_get(item, "uid")));
    if (json_object_get(ev, "fieldPath"))
        json_object_set(involved, "fieldPath", json_object_get(ev, "fieldPath"));
    return json_pack("{s:s, s:s, s:{s:s, s:s}, s:o, s:O, s:O, s:O, s:{s:s, s:s}, s:s, s:s, s:i, "
                     "s:s, s:s}",
                     "apiVersion", "v1", "kind", "Event", "metadata", "name", name, "namespace", ns,
                     "involvedObject", involved, "reason", json_object_get(ev, "reason"), "message",
                     json_object_get(ev, "message"), "type", json_object_get(ev, "type"), "source",
                     "component", "kubelet", "host", a->name, "firstTimestamp", now,
                     "lastTimestamp", now, "count", 1, "reportingComponent", "kubelet",
                     "reportingInstance", a->name);
}

/* Writes one Event, or bumps count/lastTimestamp of the same one written before. */
static int write_event(struct agent *a, const json_t *item)
{
    const json_t *ev = json_object_get(item, "event");
    const char *ns = json_string_value(json_object_get(item, "ns"));
    const char *fp = json_string_value(json_object_get(ev, "fieldPath"));
    char key[1600], now[21], name[320];
    snprintf(key, sizeof(key), "%s|%s|%s|%s", json_string_value(json_object_get(item, "uid")),
             fp ? fp : "", json_string_value(json_object_get(ev, "reason")),
             json_string_value(json_object_get(ev, "message")));
    now_text(now);
    json_t *seen = json_object_get(a->recorded, key);
    int rc;
    if (seen) {
        json_int_t count = json_integer_value(json_object_get(seen, "count")) + 1;
        char *path = corral_client_path("v1", "events", ns,
                                        json_string_value(json_object_get(seen, "name")), NULL);
        json_t *patch = json_pack("{s:I, s:s}", "count", count, "lastTimestamp", now);
        rc = path ? corral_client_patch(a->c_status, path, CORRAL_PATCH_MERGE, patch, NULL)
                  : -ENOMEM;
        json_decref(patch);
        free(path);
        if (rc == 0) {
            json_object_set_new(seen, "count", json_integer(count));
            return 0;
        }
        if (rc != CORRAL_ENOTFOUND)
            return rc;
        json_object_del(a->recorded, key); /* expired on the server: write it anew */
    }
    char uid[37];
    corral_meta_new_uid(uid); /* a random suffix, as client-go's "<object>.<hex>" names */
    snprintf(name, sizeof(name), "%s.%.8s%.4s%.4s",
             json_string_value(json_object_get(item, "name")), uid, uid + 9, uid + 14);
    json_t *obj = event_object(a, item, name, now);
    char *path = corral_client_path("v1", "events", ns, NULL, NULL);
    rc = obj && path ? corral_client_create(a->c_status, path, obj, NULL) : -ENOMEM;
    free(path);
    json_decref(obj);
    if (rc == 0) {
        if (json_object_size(a->recorded) >= MAX_RECORDED_EVENTS)
            json_object_clear(a->recorded);
        json_object_set_new(a->recorded, key, json_pack("{s:s, s:i}", "name", name, "count", 1));
    }
    return rc;
}

static void write_events(struct agent *a)
{
    pthread_mutex_lock(&a->lock);
    json_t *batch = a->events;
    a->events = json_array();
    pthread_mutex_unlock(&a->lock);
    size_t i;
    json_t *item;
    json_array_foreach(batch, i, item)
    {
        int rc = write_event(a, item);
        if (rc < 0 && !transient(rc))
            corral_debug(SUBSYS, "recording an event for pod %s: %s",
                         json_string_value(json_object_get(item, "name")),
                         corral_client_error(a->c_status));
        if (transient(rc))
            break; /* the API server is away: events are not worth queueing for */
    }
    json_decref(batch);
}

/* Whether a status may be written: the pod is bound here and not being deleted. */
static bool writable(struct agent *a, const char *uid)
{
    pthread_mutex_lock(&a->lock);
    json_t *pod = json_object_get(a->known, uid);
    bool ok = json_is_object(pod) &&
              !json_object_get(json_object_get(pod, "metadata"), "deletionTimestamp");
    pthread_mutex_unlock(&a->lock);
    return ok;
}

/* Writes one status. Returns 0, or a transient error to retry later. */
static int write_status(struct agent *a, const char *uid, const json_t *item)
{
    const char *ns = json_string_value(json_object_get(item, "ns"));
    const char *name = json_string_value(json_object_get(item, "name"));
    char *path = corral_client_path("v1", "pods", ns, name, NULL);
    char *status_path = corral_client_path("v1", "pods", ns, name, "status");
    int rc = path && status_path ? 0 : -ENOMEM;
    for (int attempt = 0; rc == 0 && attempt < 3; attempt++) {
        json_t *pod = NULL;
        rc = corral_client_get(a->c_status, path, &pod);
        if (rc == 0 &&
            strcmp(str_at(pod, "metadata", "uid") ? str_at(pod, "metadata", "uid") : "", uid) != 0)
            rc = CORRAL_ENOTFOUND; /* a new pod with the same name: not ours to write */
        if (rc == 0) {
            json_object_set(pod, "status", json_object_get(item, "status"));
            rc = corral_client_update(a->c_status, status_path, pod, NULL);
        }
        json_decref(pod);
        if (rc != CORRAL_ECONFLICT)
            break;
        rc = 0;
    }
    if (rc < 0 && !transient(rc) && rc != CORRAL_ENOTFOUND)
        corral_warn(SUBSYS, "writing the status of pod %s/%s: %s", ns, name,
                    corral_client_error(a->c_status));
    free(path);
    free(status_path);
    return transient(rc) ? rc : 0;
}

static void *status_main(void *arg)
{
    struct agent *a = arg;
    pthread_mutex_lock(&a->lock);
    while (!a->quit) {
        if (json_array_size(a->events) > 0) {
            pthread_mutex_unlock(&a->lock);
            write_events(a);
            pthread_mutex_lock(&a->lock);
            continue;
        }
        if (json_object_size(a->statuses) == 0) {
            pthread_cond_wait(&a->cv, &a->lock);
            continue;
        }
        json_t *batch = json_deep_copy(a->statuses);
        json_object_clear(a->statuses);
        pthread_mutex_unlock(&a->lock);
        const char *uid;
        json_t *item;
        bool failed = false;
        json_object_foreach(batch, uid, item)
        {
            if (!writable(a, uid))
                continue;
            if (failed || write_status(a, uid, item) < 0) {
                failed = true; /* keep it for later, unless a newer one arrived */
                pthread_mutex_lock(&a->lock);
                if (!json_object_get(a->statuses, uid))
                    json_object_set(a->statuses, uid, item);
                pthread_mutex_unlock(&a->lock);
            }
        }
        json_decref(batch);
        if (failed)
            corral_client_sleep(a->c_status, RETRY_MS);
        pthread_mutex_lock(&a->lock);
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

/* ---- node: conditions
 * ---------------------------------------------------------------------------- */

static bool memory_pressure(char *msg, size_t len)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    long long avail_kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "MemAvailable: %lld kB", &avail_kb) == 1)
            break;
    if (f)
        fclose(f);
    snprintf(msg, len, "%lld MiB available (threshold 100 MiB)", avail_kb / 1024);
    return avail_kb >= 0 && avail_kb < 100 * 1024;
}

static bool disk_pressure(const char *dir, char *msg, size_t len)
{
    struct statvfs s;
    if (statvfs(dir, &s) < 0 || s.f_blocks == 0) {
        snprintf(msg, len, "cannot stat %s", dir);
        return false;
    }
    double free_pct = 100.0 * (double)s.f_bavail / (double)s.f_blocks;
    snprintf(msg, len, "%.0f%% of the state directory's filesystem free (threshold 10%%)",
             free_pct);
    return free_pct < 10.0;
}

static bool pid_pressure(char *msg, size_t len)
{
    long running, total, max = 0;
    FILE *f = fopen("/proc/loadavg", "r");
    bool ok = f && fscanf(f, "%*s %*s %*s %ld/%ld", &running, &total) == 2;
    if (f)
        fclose(f);
    f = fopen("/proc/sys/kernel/pid_max", "r");
    ok = ok && f && fscanf(f, "%ld", &max) == 1 && max > 0;
    if (f)
        fclose(f);
    snprintf(msg, len, ok ? "%ld of %ld process IDs in use" : "process count unknown",
             ok ? total : 0, ok ? max : 0);
    return ok && total > max * 9 / 10;
}

static bool gpus_healthy(struct agent *a, char *msg, size_t len)
{
    size_t bad = 0;
    for (size_t i = 0; i < a->topo->ngpus; i++)
        bad += !a->topo->gpus[i].healthy;
    if (a->topo->ngpus == 0)
        snprintf(msg, len, "no NVIDIA GPUs");
    else if (a->topo->from_xml)
        msgf(msg, len, "%zu GPUs from the hwloc topology %s (not probed)", a->topo->ngpus,
             a->topo->source);
    else
        snprintf(msg, len, "%zu of %zu GPUs healthy (%s)", a->topo->ngpus - bad, a->topo->ngpus,
                 a->topo->gpu_probe);
    return bad == 0;
}

/* Re-probes GPU health on a live machine with NVML. Returns true when it changed. */
static bool refresh_gpu_health(struct agent *a)
{
    if (a->topo->from_xml || a->topo->ngpus == 0 || strncmp(a->topo->gpu_probe, "nvml", 4) != 0)
        return false;
    struct corral_gpu_probe *p = NULL;
    size_t n = 0;
    char why[160];
    bool changed = false;
    if (corral_nvml_probe(&p, &n, why, sizeof(why)) < 0)
        n = 0;
    for (size_t i = 0; i < a->topo->ngpus; i++) {
        struct corral_gpu *g = &a->topo->gpus[i];
        bool healthy = false;
        for (size_t k = 0; k < n; k++) {
            char bus[16];
            snprintf(bus, sizeof(bus), "%04x:%02x:%02x.%01x", p[k].domain, p[k].bus, p[k].dev,
                     p[k].func);
            if (strcmp(bus, g->bus_id) == 0)
                healthy = p[k].healthy;
        }
        changed |= healthy != g->healthy;
        __atomic_store_n(&g->healthy, healthy, __ATOMIC_RELAXED); /* the runtime reads it */
    }
    free(p);
    return changed;
}

static json_t *condition(struct agent *a, int k, const char *type, bool status, const char *reason,
                         const char *message, const char *now, bool *changed)
{
    if (a->cond[k] != (int)status) {
        a->cond[k] = status;
        snprintf(a->cond_since[k], sizeof(a->cond_since[k]), "%s", now);
        *changed = true;
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "type", type, "status",
                     status ? "True" : "False", "lastHeartbeatTime", now, "lastTransitionTime",
                     a->cond_since[k], "reason", reason, "message", message);
}

static json_t *conditions(struct agent *a, bool stopping, bool *changed)
{
    char now[21], msg[512];
    now_text(now);
    json_t *arr = json_array();
    bool mem = memory_pressure(msg, sizeof(msg));
    json_array_append_new(
        arr, condition(a, COND_MEMORY, "MemoryPressure", mem,
                       mem ? "KubeletHasInsufficientMemory" : "KubeletHasSufficientMemory", msg,
                       now, changed));
    bool disk = disk_pressure(a->opts->state_dir, msg, sizeof(msg));
    json_array_append_new(arr,
                          condition(a, COND_DISK, "DiskPressure", disk,
                                    disk ? "KubeletHasDiskPressure" : "KubeletHasNoDiskPressure",
                                    msg, now, changed));
    bool pid = pid_pressure(msg, sizeof(msg));
    json_array_append_new(arr,
                          condition(a, COND_PID, "PIDPressure", pid,
                                    pid ? "KubeletHasInsufficientPID" : "KubeletHasSufficientPID",
                                    msg, now, changed));
    bool gpu = gpus_healthy(a, msg, sizeof(msg));
    json_array_append_new(arr,
                          condition(a, COND_GPU, "GPUHealthy", gpu,
                                    gpu ? "AllGPUsHealthy" : "GPUUnhealthy", msg, now, changed));
    json_array_append_new(
        arr,
        condition(a, COND_READY, "Ready", !stopping, stopping ? "KubeletStopped" : "KubeletReady",
                  stopping ? "the node agent is stopping" : "kubelet-lite is posting ready status",
                  now, changed));
    return arr;
}

/* ---- node: registration and status
 * --------------------------------------------------------------- */

static const char node_path[] = "/api/v1/nodes";

/* Copies our labels and annotations onto a Node that exists already (others' stay). */
static void merge_metadata(json_t *existing, const json_t *ours)
{
    static const char *const maps[] = {"labels", "annotations"};
    json_t *md = json_object_get(existing, "metadata");
    for (int m = 0; m < 2; m++) {
        json_t *dst = json_object_get(md, maps[m]);
        if (!json_is_object(dst))
            json_object_set_new(md, maps[m], dst = json_object());
        json_object_update(dst, json_object_get(json_object_get(ours, "metadata"), maps[m]));
    }
}

static int put_status(struct agent *a, json_t *node, bool stopping, bool *changed)
{
    json_t *st = json_deep_copy(json_object_get(a->node, "status"));
    json_object_set_new(st, "conditions", conditions(a, stopping, changed));
    json_object_set_new(node, "status", st);
    char *path = corral_client_path("v1", "nodes", NULL, a->name, "status");
    int rc = path ? corral_client_update(a->c_heart, path, node, NULL) : -ENOMEM;
    free(path);
    return rc;
}

static int register_node(struct agent *a)
{
    json_t *node = json_deep_copy(a->node), *got = NULL;
    bool changed;
    json_object_set_new(json_object_get(node, "status"), "conditions",
                        conditions(a, false, &changed));
    int rc = corral_client_create(a->c_heart, node_path, node, &got);
    json_decref(node);
    if (rc == CORRAL_EEXISTS) {
        char *path = corral_client_path("v1", "nodes", NULL, a->name, NULL);
        rc = path ? corral_client_get(a->c_heart, path, &got) : -ENOMEM;
        if (rc == 0) {
            merge_metadata(got, a->node);
            json_t *updated = NULL;
            rc = corral_client_update(a->c_heart, path, got, &updated);
            json_decref(got);
            got = updated;
        }
        free(path);
    }
    if (rc == 0)
        rc = put_status(a, got, false, &changed);
    if (rc == 0) {
        corral_info(SUBSYS, "registered node %s (%zu GPUs)", a->name, a->topo->ngpus);
        a->registered = true;
    } else if (!transient(rc)) {
        corral_warn(SUBSYS, "registering node %s: %s", a->name, corral_client_error(a->c_heart));
    }
    json_decref(got);
    return rc;
}

/* Refreshes status.conditions (and capacity) of the Node; registers it again when gone. */
static int update_node(struct agent *a, bool stopping)
{
    char *path = corral_client_path("v1", "nodes", NULL, a->name, NULL);
    json_t *node = NULL;
    bool changed = false;
    int rc = path ? corral_client_get(a->c_heart, path, &node) : -ENOMEM;
    free(path);
    if (rc == CORRAL_ENOTFOUND) {
        corral_warn(SUBSYS, "node %s is gone from the API server; registering again", a->name);
        a->registered = false;
        return register_node(a);
    }
    for (int attempt = 0; rc == 0 && attempt < 3; attempt++) {
        rc = put_status(a, node, stopping, &changed);
        if (rc != CORRAL_ECONFLICT)
            break;
        json_decref(node);
        node = NULL;
        char *again = corral_client_path("v1", "nodes", NULL, a->name, NULL);
        rc = again ? corral_client_get(a->c_heart, again, &node) : -ENOMEM;
        free(again);
    }
    json_decref(node);
    return rc;
}

/* ---- node: lease --------------------------------------------------------------------------------
 */

static json_t *lease_object(struct agent *a)
{
    char renew[28];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    corral_meta_format_microtime(&ts, renew);
    int duration = (int)((a->opts->lease_duration_ms + 999) / 1000);
    return json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:i, s:s}}", "apiVersion",
                     "coordination.k8s.io/v1", "kind", "Lease", "metadata", "name", a->name,
                     "namespace", LEASE_NS, "spec", "holderIdentity", a->name,
                     "leaseDurationSeconds", duration, "renewTime", renew);
}

/* Renews (or creates) the node's Lease. Returns 0, 1 when it had to be created, or an error. */
static int renew_lease(struct agent *a)
{
    char *one = corral_client_path("coordination.k8s.io/v1", "leases", LEASE_NS, a->name, NULL);
    char *all = corral_client_path("coordination.k8s.io/v1", "leases", LEASE_NS, NULL, NULL);
    json_t *fresh = lease_object(a), *got = NULL;
    int rc = one && all && fresh ? 0 : -ENOMEM;
    if (rc == 0 && a->lease) {
        json_object_set(json_object_get(fresh, "metadata"), "resourceVersion",
                        json_object_get(json_object_get(a->lease, "metadata"), "resourceVersion"));
        rc = corral_client_update(a->c_heart, one, fresh, &got);
    }
    if (rc == 0 && !a->lease)
        rc = CORRAL_ENOTFOUND;
    if (rc == CORRAL_ECONFLICT) { /* someone else wrote it: take theirs and renew */
        json_t *cur = NULL;
        rc = corral_client_get(a->c_heart, one, &cur);
        if (rc == 0) {
            json_object_set(json_object_get(fresh, "metadata"), "resourceVersion",
                            json_object_get(json_object_get(cur, "metadata"), "resourceVersion"));
            rc = corral_client_update(a->c_heart, one, fresh, &got);
        }
        json_decref(cur);
    }
    bool created = false;
    if (rc == CORRAL_ENOTFOUND) {
        json_object_del(json_object_get(fresh, "metadata"), "resourceVersion");
        rc = corral_client_create(a->c_heart, all, fresh, &got);
        created = rc == 0;
        if (rc == CORRAL_EEXISTS) {
            json_decref(a->lease);
            a->lease = NULL;
            rc = corral_client_get(a->c_heart, one, &a->lease);
            rc = rc == 0 ? CORRAL_ECONFLICT : rc; /* renewed on the next beat */
        }
    }
    if (rc == 0) {
        json_decref(a->lease);
        a->lease = got;
        got = NULL;
    } else if (!transient(rc) && rc != CORRAL_ECONFLICT) {
        corral_warn(SUBSYS, "renewing lease %s/%s: %s", LEASE_NS, a->name,
                    corral_client_error(a->c_heart));
    }
    json_decref(got);
    json_decref(fresh);
    free(one);
    free(all);
    return rc < 0 ? rc : created ? 1 : 0;
}

static bool wait_quit(struct agent *a, int64_t ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&a->lock);
    while (!a->quit && pthread_cond_timedwait(&a->cv, &a->lock, &until) != ETIMEDOUT)
        ;
    bool quit = a->quit;
    pthread_mutex_unlock(&a->lock);
    return quit;
}

static int build_node(struct agent *a);

static void *heartbeat_main(void *arg)
{
    struct agent *a = arg;
    int64_t last_status = 0;
    for (;;) {
        int rc = a->registered ? 0 : register_node(a);
        bool lease_was_gone = false;
        if (rc == 0 && (rc = renew_lease(a)) == 1) {
            /* a new lease: the first one, or the API server lost its store: check the Node */
            lease_was_gone = true;
            rc = 0;
        }
        int64_t now = (int64_t)(corral_now_ns() / 1000000);
        bool gpu_changed =
            now - last_status >= a->opts->status_interval_ms && refresh_gpu_health(a);
        if (gpu_changed && build_node(a) == 0)
            a->registered = false; /* allocatable and the GPU annotation changed: republish */
        bool changed = gpu_changed || lease_was_gone;
        if (lease_was_gone && a->had_lease)
            request_relist(a);
        a->had_lease |= rc == 0;
        if (rc == 0 && a->registered) {
            char msg[256];
            /* a pressure or health change is reported at once, the rest every interval */
            changed |= memory_pressure(msg, sizeof(msg)) != a->cond[COND_MEMORY] ||
                       disk_pressure(a->opts->state_dir, msg, sizeof(msg)) != a->cond[COND_DISK] ||
                       pid_pressure(msg, sizeof(msg)) != a->cond[COND_PID] ||
                       gpus_healthy(a, msg, sizeof(msg)) != a->cond[COND_GPU];
            if (changed || now - last_status >= a->opts->status_interval_ms) {
                rc = update_node(a, false);
                if (rc == 0)
                    last_status = now;
            }
        }
        api_state(a, rc, "heartbeat");
        int64_t wait = a->registered && rc == 0 ? a->opts->heartbeat_ms : RETRY_MS;
        if (wait_quit(a, wait < a->opts->heartbeat_ms ? wait : a->opts->heartbeat_ms))
            break;
    }
    return NULL;
}

/* ---- start-up
 * ------------------------------------------------------------------------------------ */

/* The local address used to reach the API server: what the node publishes by default. */
static int default_address(const char *server, char *out, size_t len)
{
    char host[256] = "", port[16] = "443";
    const char *p = strstr(server, "://");
    p = p ? p + 3 : server;
    size_t n = strcspn(p, ":/");
    snprintf(host, sizeof(host), "%.*s", (int)n, p);
    if (p[n] == ':')
        snprintf(port, sizeof(port), "%.*s", (int)strcspn(p + n + 1, "/"), p + n + 1);
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_DGRAM}, *ai = NULL;
    if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai)
        return -EINVAL;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in local;
    socklen_t sl = sizeof(local);
    int rc = fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
                     getsockname(fd, (struct sockaddr *)&local, &sl) == 0
                 ? 0
                 : -errno;
    if (rc == 0)
        inet_ntop(AF_INET, &local.sin_addr, out, (socklen_t)len);
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return rc;
}

/* "NODE-xxxxxxxx": the node name and a hash of the state directory's real path. */
static void cgroup_name(const char *node, const char *state_dir, char *out, size_t len)
{
    char real[PATH_MAX];
    const char *p = realpath(state_dir, real) ? real : state_dir;
    uint32_t h = 2166136261u;
    for (; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    snprintf(out, len, "%s-%08x", node, h);
}

static int make_state_dir(const char *dir)
{
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    /* 0711: containers running as another user (runAsUser) must reach their work directory
     * inside; nobody may list it. Keys and credentials below are 0600/0700 themselves. */
    if (mkdir(buf, 0711) < 0 && errno != EEXIST)
        return -errno;
    return chmod(buf, 0711) < 0 ? -errno : 0;
}

static int resolve_identity(struct agent *a)
{
    const struct corral_kubelet_options *o = a->opts;
    char err[600];
    if (o->node.name)
        snprintf(a->name, sizeof(a->name), "%s", o->node.name);
    else if (corral_node_name_from_host(a->topo->from_xml ? a->topo->hostname : "", a->name,
                                        sizeof(a->name)) < 0) {
        char host[256] = "";
        gethostname(host, sizeof(host) - 1);
        if (corral_node_name_from_host(host, a->name, sizeof(a->name)) < 0) {
            corral_error(SUBSYS, "no usable node name: pass --name");
            return -EINVAL;
        }
    }
    int rc = corral_credentials_connect(o->kubeconfig, o->apiserver, o->state_dir, a->name, &a->id,
                                        err, sizeof(err));
    if (rc < 0) {
        corral_error(SUBSYS, "%s", err);
        return rc;
    }
    if (o->node.address)
        snprintf(a->address, sizeof(a->address), "%s", o->node.address);
    else if (default_address(a->id.server, a->address, sizeof(a->address)) < 0)
        snprintf(a->address, sizeof(a->address), "127.0.0.1");
    rc = corral_credentials_serving(o->state_dir, a->name, a->address, &a->tls, err, sizeof(err));
    if (rc < 0)
        corral_error(SUBSYS, "%s", err);
    return rc;
}

static int build_node(struct agent *a)
{
    struct corral_node_config cfg = a->opts->node;
    char err[512];
    cfg.name = a->name;
    cfg.address = a->address;
    cfg.port = corral_logserver_port(a->ls);
    json_t *node = corral_node_build(a->topo, &cfg, err, sizeof(err));
    if (!node) {
        corral_error(SUBSYS, "%s", err);
        return -EINVAL;
    }
    json_decref(a->node);
    a->node = node;
    json_t *ann = json_object_get(json_object_get(a->node, "metadata"), "annotations");
    json_object_set_new(ann, CORRAL_SERVING_CA_ANNOTATION, json_string(a->tls.ca_pem));
    json_object_set_new(ann, "corral.io/cgroups", json_string(a->cg.status));
    return 0;
}

static int start_runtime(struct agent *a)
{
    const struct corral_kubelet_options *o = a->opts;
    struct corral_runtime_config cfg = {
        .node_name = a->name,
        .state_dir = o->state_dir,
        .host_ip = a->address,
        .topo = a->topo,
        .cgroups = o->cgroups ? &a->cg : NULL,
        .backoff_initial_ms = o->backoff_initial_ms,
        .backoff_max_ms = o->backoff_max_ms,
        .log_max_bytes = o->log_max_bytes,
        .log_max_files = o->log_max_files,
        .node_cpu_milli = (int64_t)a->topo->pus * 1000 - o->node.reserved_cpu_milli,
        .node_memory_bytes = (int64_t)a->topo->memory_bytes - o->node.reserved_memory_bytes,
        .max_pods = o->node.max_pods > 0 ? o->node.max_pods : CORRAL_NODE_DEFAULT_MAX_PODS,
        .on_status = on_runtime_status,
        .on_stopped = on_runtime_stopped,
        .on_event = on_runtime_event,
        .ctx = a,
    };
    int rc = corral_runtime_new(&cfg, &a->rt);
    if (rc < 0)
        return rc;
    struct corral_logserver_config ls = {.address = a->address,
                                         .port = o->node.port,
                                         .cert_pem = a->tls.cert_pem,
                                         .key_pem = a->tls.key_pem,
                                         .client_ca_pem = a->id.ca_pem,
                                         .runtime = a->rt};
    rc = corral_logserver_start(&ls, &a->ls);
    if (rc == 0 && !a->id.ca_pem)
        corral_warn(SUBSYS, "the kubeconfig names no cluster CA (plain HTTP API server): the log "
                            "endpoint serves loopback peers only");
    return rc;
}

static int start_threads(struct agent *a)
{
    int rc = 0;
    if (corral_client_clone(a->id.client, &a->c_sync) < 0 ||
        corral_client_clone(a->id.client, &a->c_status) < 0 ||
        corral_client_clone(a->id.client, &a->c_heart) < 0)
        rc = -ENOMEM;
    if (rc == 0)
        rc = new_informer(a, &a->c_inf, &a->inf);
    if (rc < 0)
        return rc;
    a->started_heart = pthread_create(&a->t_heart, NULL, heartbeat_main, a) == 0;
    a->started_sync = pthread_create(&a->t_sync, NULL, sync_main, a) == 0;
    a->started_status = pthread_create(&a->t_status, NULL, status_main, a) == 0;
    a->started_inf = pthread_create(&a->t_inf, NULL, informer_main, a) == 0;
    return a->started_heart && a->started_sync && a->started_status && a->started_inf ? 0 : -EAGAIN;
}

/* ---- shutdown
 * ------------------------------------------------------------------------------------ */

static void stop_threads(struct agent *a)
{
    pthread_mutex_lock(&a->lock);
    a->quit = true;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->lock);
    pthread_mutex_lock(&a->lock);
    if (a->inf)
        corral_informer_stop(a->inf);
    pthread_mutex_unlock(&a->lock);
    struct corral_client *clients[] = {a->c_sync, a->c_status, a->c_heart};
    for (int i = 0; i < 3; i++)
        if (clients[i])
            corral_client_stop(clients[i]);
    if (a->started_inf)
        pthread_join(a->t_inf, NULL);
    if (a->started_sync)
        pthread_join(a->t_sync, NULL);
    if (a->started_status)
        pthread_join(a->t_status, NULL);
    if (a->started_heart)
        pthread_join(a->t_heart, NULL);
}

/* Best effort: tell the API server this node is going away (Ready=False). */
static void say_goodbye(struct agent *a)
{
    if (!a->registered || !a->id.client)
        return;
    corral_client_free(a->c_heart);
    a->c_heart = NULL;
    if (corral_client_clone(a->id.client, &a->c_heart) == 0 && update_node(a, true) == 0)
        corral_info(SUBSYS, "node %s marked not ready", a->name);
}

static void cleanup(struct agent *a)
{
    corral_logserver_stop(a->ls);
    if (a->rt)
        corral_runtime_free(a->rt, STOP_GRACE_S);
    say_goodbye(a);
    corral_informer_free(a->inf);
    corral_client_free(a->c_inf);
    corral_client_free(a->c_sync);
    corral_client_free(a->c_status);
    corral_client_free(a->c_heart);
    corral_node_identity_clear(&a->id);
    corral_serving_tls_clear(&a->tls);
    json_decref(a->node);
    json_decref(a->lease);
    json_decref(a->known);
    json_decref(a->dirty);
    json_decref(a->statuses);
    json_decref(a->stopped);
    json_decref(a->events);
    json_decref(a->recorded);
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->cv);
}

int corral_agent_run(const struct corral_kubelet_options *opts, struct corral_topology *topo)
{
    struct agent a;
    memset(&a, 0, sizeof(a));
    a.opts = opts;
    a.topo = topo;
    for (int k = 0; k < NCOND; k++)
        a.cond[k] = -1;
    pthread_mutex_init(&a.lock, NULL);
    pthread_cond_init(&a.cv, NULL);
    a.known = json_object();
    a.dirty = json_object();
    a.statuses = json_object();
    a.stopped = json_object();
    a.events = json_array();
    a.recorded = json_object();
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = make_state_dir(opts->state_dir);
    if (rc < 0)
        corral_error(SUBSYS, "--state-dir %s: %s", opts->state_dir, strerror(-rc));
    if (rc == 0)
        rc = resolve_identity(&a);
    if (rc == 0 && opts->cgroups) {
        /* named after the node and its state directory: agents of two clusters on one
         * machine may share a node name, and each cleans up only its own leftovers */
        char cgname[300];
        cgroup_name(a.name, opts->state_dir, cgname, sizeof(cgname));
        corral_cgroup_init(&a.cg, cgname); /* before any thread: it may move the agent */
    }
    else if (rc == 0)
        snprintf(a.cg.status, sizeof(a.cg.status), "disabled with --no-cgroups");
    if (rc == 0)
        rc = start_runtime(&a);
    if (rc == 0)
        rc = build_node(&a);
    if (rc == 0)
        rc = start_threads(&a);
    if (rc == 0) {
        malloc_trim(0); /* start-up garbage (XML parsing, certificates) goes back to the OS */
        printf("listening on https://%s:%d\n", a.address, corral_logserver_port(a.ls));
        fflush(stdout);
        corral_info(SUBSYS, "node %s: API server %s, address %s, state %s", a.name, a.id.server,
                    a.address, opts->state_dir);
        int sig = 0;
        sigwait(&sigs, &sig);
        corral_info(SUBSYS, "signal %d: stopping pods and leaving", sig);
    }
    stop_threads(&a);
    cleanup(&a);
    return rc == 0 ? 0 : 1;
}
