/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon: `corral scheduler`, the scheduler against a real apiserver.
 *
 * Three informers (pods, nodes, PodGroups; common/client.h) run list+watch on their own
 * threads and hand deep copies of every event to one scheduling thread through a queue. That
 * thread alone owns the snapshot and the framework: it applies the events (nodes in and out,
 * pods bound by anyone, pods waiting for one of our profiles, pods gone), and once both the
 * pod and node lists have been seen it schedules: the framework's cycle, then the binding
 * written with POST pods/NAME/binding carrying the node and the GPUs (docs/gpus.md). A pod that
 * does not fit gets the explanation in a FailedScheduling Event and in its PodScheduled=False
 * condition; it is tried again when the cluster changes (a node arrives or changes, a pod
 * leaves) and at least every --retry-seconds. A small HTTP endpoint serves /healthz and
 * /metrics and prints "listening on URL" so supervisors know the scheduler is up.
 */
#include "embedded.h"
#include "framework.h"
#include "profile.h"
#include "scheduler.h"
#include "snapshot.h"

#include "client.h"
#include "corral-config.h"
#include "error.h"
#include "kubeconfig.h"
#include "log.h"
#include "meta.h"

#include <errno.h>
#include <getopt.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOG "scheduler"

enum source { SRC_POD, SRC_NODE, SRC_GROUP, SRC_COUNT };

struct item {
    enum source src;
    enum corral_watch_type type;
    json_t *obj; /* deep copy, owned; NULL for the marker that a (re)list has been queued */
    struct item *next;
};

struct opts {
    const char *apiserver, *kubeconfig, *profile, *plugin_dir, *listen;
    int retry_s;
};

struct daemon {
    struct opts o;
    struct corral_sched_config *cfg;
    struct corral_snapshot *snap;
    struct corral_framework *fw;
    struct corral_client *api, *watch[SRC_COUNT];
    struct corral_informer *inf[SRC_COUNT];
    pthread_t thread[SRC_COUNT];
    bool started[SRC_COUNT];
    atomic_bool synced[SRC_COUNT];

    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct item *head, *tail;

    json_t *groups;   /* "ns/name" -> PodGroup */
    json_t *reported; /* "ns/name" -> last message written for the pod */
    bool changed;     /* the cluster changed since unschedulable pods were last retried */
    uint64_t last_retry_ms;
    struct MHD_Daemon *http;
    atomic_ullong bound, failed_attempts, bind_errors;
};

static atomic_bool stopping;

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&stopping, true);
}

static uint64_t now_ms(void)
{
    return corral_now_ns() / 1000000u;
}

/* ---- the informer threads: copy each event into the queue ---- */

struct feed {
    struct daemon *d;
    enum source src;
};

static struct feed feeds[SRC_COUNT];

static void push(struct daemon *d, struct item *it)
{
    pthread_mutex_lock(&d->mu);
    if (d->tail)
        d->tail->next = it;
    else
        d->head = it;
    d->tail = it;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

static int enqueue(enum corral_watch_type type, json_t *object, void *ctx)
{
    struct feed *f = ctx;
    struct item *it = calloc(1, sizeof(*it));
    if (!it || !(it->obj = json_deep_copy(object))) {
        free(it);
        corral_error(LOG, "out of memory queueing an event");
        return 0;
    }
    it->src = f->src;
    it->type = type;
    push(f->d, it);
    return 0;
}

/*
 * The list is complete: queue a marker behind its objects. The source counts as synced only
 * when the loop reaches the marker, so no pod is scheduled against a node list the loop has
 * only partly applied (the list's last nodes may still sit in the queue behind a pod).
 */
static int on_synced(void *ctx)
{
    struct feed *f = ctx;
    struct item *it = calloc(1, sizeof(*it));
    if (!it) {
        corral_error(LOG, "out of memory queueing the end of a list");
        return -ENOMEM;
    }
    it->src = f->src;
    push(f->d, it);
    return 0;
}

static void *run_informer(void *arg)
{
    struct corral_informer *inf = arg;
    corral_informer_run(inf);
    return NULL;
}

static int start_informers(struct daemon *d)
{
    static const char *const paths[SRC_COUNT] = {
        "/api/v1/pods", "/api/v1/nodes", "/apis/scheduling.x-k8s.io/v1alpha1/podgroups"};
    for (int s = 0; s < SRC_COUNT; s++) {
        feeds[s] = (struct feed){d, (enum source)s};
        struct corral_informer_config cfg = {
            .path = paths[s], .on_event = enqueue, .on_synced = on_synced, .ctx = &feeds[s]};
        int rc = corral_client_clone(d->api, &d->watch[s]);
        if (rc == 0)
            rc = corral_informer_new(d->watch[s], &cfg, &d->inf[s]);
        if (rc == 0 && pthread_create(&d->thread[s], NULL, run_informer, d->inf[s]) != 0)
            rc = -EAGAIN;
        if (rc < 0)
            return rc;
        d->started[s] = true;
    }
    return 0;
}

/* ---- writing to the apiserver ---- */

static json_t *involved(const struct corral_pod *pod)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "apiVersion", "v1", "kind", "Pod", "namespace",
                     pod->ns, "name", pod->name, "uid", pod->uid ? pod->uid : "");
}

/* A core/v1 Event about pod, as kube-scheduler writes them. */
static void post_event(struct daemon *d, const struct corral_pod *pod, const char *type,
                       const char *reason, const char *message)
{
    char ts[21], gen[300];
    corral_meta_format_time(time(NULL), ts);
    snprintf(gen, sizeof(gen), "%s.", pod->name);
    json_t *ev = json_pack("{s:s, s:s, s:{s:s, s:s}, s:o, s:s, s:s, s:s, s:{s:s}, s:s, s:s, s:i,"
                           " s:s, s:s}",
                           "apiVersion", "v1", "kind", "Event", "metadata", "generateName", gen,
                           "namespace", pod->ns, "involvedObject", involved(pod), "type", type,
                           "reason", reason, "message", message, "source", "component",
                           pod->scheduler_name, "firstTimestamp", ts, "lastTimestamp", ts,
                           "count", 1, "reportingComponent", pod->scheduler_name, "action",
                           "Scheduling");
    char *path = corral_client_path("v1", "events", pod->ns, NULL, NULL);
    int rc = ev && path ? corral_client_create(d->api, path, ev, NULL) : -ENOMEM;
    if (rc < 0)
        corral_warn(LOG, "event for pod %s/%s not written: %s", pod->ns, pod->name,
                    *corral_client_error(d->api) ? corral_client_error(d->api)
                                                 : corral_strerror(rc));
    free(path);
    json_decref(ev);
}

/* PodScheduled=False with reason Unschedulable and the explanation (strategic merge patch). */
static void set_unschedulable(struct daemon *d, const struct corral_pod *pod, const char *msg)
{
    char ts[21];
    corral_meta_format_time(time(NULL), ts);
    json_t *patch = json_pack("{s:{s:[{s:s, s:s, s:s, s:s, s:n, s:s}]}}", "status", "conditions",
                              "type", "PodScheduled", "status", "False", "reason",
                              "Unschedulable", "message", msg, "lastProbeTime",
                              "lastTransitionTime", ts);
    char *path = corral_client_path("v1", "pods", pod->ns, pod->name, "status");
    int rc = patch && path ? corral_client_patch(d->api, path, CORRAL_PATCH_STRATEGIC, patch, NULL)
                           : -ENOMEM;
    if (rc < 0 && rc != CORRAL_ENOTFOUND)
        corral_warn(LOG, "condition of pod %s/%s not written: %s", pod->ns, pod->name,
                    *corral_client_error(d->api) ? corral_client_error(d->api)
                                                 : corral_strerror(rc));
    free(path);
    json_decref(patch);
}

/* "0,2" and "GPU-a,GPU-c" for the pod's GPUs on node. */
static void gpu_lists(const struct corral_snap_node *nd, uint64_t gpus, char *idx, size_t ilen,
                      char *uuids, size_t ulen, bool *have_uuids)
{
    size_t io = 0, uo = 0;
    idx[0] = uuids[0] = '\0';
    *have_uuids = true;
    for (uint32_t g = 0; g < nd->n_gpus; g++) {
        if (!(gpus >> g & 1))
            continue;
        io += (size_t)snprintf(idx + io, io < ilen ? ilen - io : 0, "%s%d", io ? "," : "",
                               nd->gpus[g].index);
        *have_uuids &= nd->gpus[g].uuid[0] != '\0';
        uo += (size_t)snprintf(uuids + uo, uo < ulen ? ulen - uo : 0, "%s%s", uo ? "," : "",
                               nd->gpus[g].uuid);
    }
}

static json_t *binding_for(const struct corral_snap_node *nd, const struct corral_pod *pod)
{
    json_t *ann = json_object();
    if (pod->gpus) {
        char idx[512], uuids[4096], milli[16];
        bool have_uuids;
        gpu_lists(nd, pod->gpus, idx, sizeof(idx), uuids, sizeof(uuids), &have_uuids);
        json_object_set_new(ann, "corral.io/assigned-gpus", json_string(idx));
        if (have_uuids)
            json_object_set_new(ann, "corral.io/assigned-gpu-uuids", json_string(uuids));
        if (pod->gpu_milli < 1000) {
            snprintf(milli, sizeof(milli), "%d", pod->gpu_milli);
            json_object_set_new(ann, "corral.io/assigned-gpu-milli", json_string(milli));
        }
    }
    return json_pack("{s:s, s:s, s:{s:s, s:s, s:o}, s:{s:s, s:s}}", "apiVersion", "v1", "kind",
                     "Binding", "metadata", "name", pod->name, "namespace", pod->ns,
                     "annotations", ann, "target", "kind", "Node", "name", nd->name);
}

/* The framework's default binder: POST pods/NAME/binding. */
static int bind_cb(void *arg, struct corral_pod *pod, uint32_t node)
{
    struct daemon *d = arg;
    const struct corral_snap_node *nd = &d->snap->nodes[node];
    json_t *b = binding_for(nd, pod);
    char *path = corral_client_path("v1", "pods", pod->ns, pod->name, "binding");
    int rc = b && path ? corral_client_create(d->api, path, b, NULL) : -ENOMEM;
    free(path);
    json_decref(b);
    if (rc < 0) {
        atomic_fetch_add(&d->bind_errors, 1);
        corral_warn(LOG, "binding %s/%s to %s failed: %s", pod->ns, pod->name, nd->name,
                    *corral_client_error(d->api) ? corral_client_error(d->api)
                                                 : corral_strerror(rc));
        return rc;
    }
    atomic_fetch_add(&d->bound, 1);
    char msg[700];
    snprintf(msg, sizeof(msg), "Successfully assigned %s/%s to %s", pod->ns, pod->name,
             nd->name);
    corral_info(LOG, "%s", msg);
    post_event(d, pod, "Normal", "Scheduled", msg);
    return 0;
}

static void pod_key(const char *ns, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", ns ? ns : "default", name ? name : "");
}

static void unschedulable_cb(void *arg, struct corral_pod *pod, const char *message)
{
    struct daemon *d = arg;
    char key[512];
    atomic_fetch_add(&d->failed_attempts, 1);
    pod_key(pod->ns, pod->name, key, sizeof(key));
    const char *last = json_string_value(json_object_get(d->reported, key));
    if (last && strcmp(last, message) == 0)
        return; /* already said, in the same words */
    json_object_set_new(d->reported, key, json_string(message));
    corral_info(LOG, "pod %s/%s: %s", pod->ns, pod->name, message);
    post_event(d, pod, "Warning", "FailedScheduling", message);
    set_unschedulable(d, pod, message);
}

static void evicted_cb(void *arg, struct corral_pod *victim, const struct corral_pod *by)
{
    struct daemon *d = arg;
    char *path = corral_client_path("v1", "pods", victim->ns, victim->name, NULL);
    char msg[700];
    snprintf(msg, sizeof(msg), "Preempted by pod %s/%s on node %s", by->ns, by->name,
             by->nominated != CORRAL_NO_NODE ? d->snap->nodes[by->nominated].name : "?");
    post_event(d, victim, "Normal", "Preempted", msg);
    int rc = path ? corral_client_delete(d->api, path, NULL, NULL) : -ENOMEM;
    if (rc < 0 && rc != CORRAL_ENOTFOUND)
        corral_warn(LOG, "deleting preempted pod %s/%s failed: %s", victim->ns, victim->name,
                    corral_strerror(rc));
    free(path);
}

static json_t *lookup_cb(void *arg, const char *api_version, const char *kind, const char *ns,
                         const char *name)
{
    struct daemon *d = arg;
    char key[512];
    (void)api_version;
    if (strcmp(kind, "PodGroup") != 0)
        return NULL;
    pod_key(ns, name, key, sizeof(key));
    return json_object_get(d->groups, key);
}

/* ---- applying events ---- */

static const char *phase_of(const json_t *pod)
{
    const char *p = json_string_value(json_object_get(json_object_get(pod, "status"), "phase"));
    return p ? p : "";
}

static void forget_pod(struct daemon *d, const char *ns, const char *name)
{
    struct corral_pod *pod = corral_fw_find_pod(d->fw, ns ? ns : "default", name);
    char key[512];
    pod_key(ns, name, key, sizeof(key));
    json_object_del(d->reported, key);
    if (pod) {
        corral_fw_remove_pod(d->fw, pod);
        d->changed = true;
    }
}

static bool ours(struct daemon *d, const json_t *obj)
{
    const char *s = json_string_value(json_object_get(json_object_get(obj, "spec"),
                                                      "schedulerName"));
    return corral_fw_profile_index(d->fw, s ? s : "default-scheduler") >= 0;
}

static void add_pod(struct daemon *d, json_t *obj, const char *node)
{
    struct corral_pod *pod;
    char err[512];
    const char *name = corral_meta_name(obj), *ns = corral_meta_namespace(obj);
    char what[512];
    pod_key(ns, name, what, sizeof(what));
    int rc = corral_pod_new(json_incref(obj), &pod, err, sizeof(err));
    if (rc < 0) {
        corral_warn(LOG, "pod %s cannot be scheduled: %s", what, err);
        return;
    }
    rc = node ? corral_fw_add_bound_pod(d->fw, pod, node) : corral_fw_add_pod(d->fw, pod);
    if (rc < 0 && rc != CORRAL_ENOTFOUND)
        corral_warn(LOG, "pod %s: %s", what, corral_strerror(rc));
}

static void apply_pod(struct daemon *d, enum corral_watch_type type, json_t *obj)
{
    const char *name = corral_meta_name(obj), *ns = corral_meta_namespace(obj);
    if (!name)
        return;
    const char *node = json_string_value(json_object_get(json_object_get(obj, "spec"),
                                                         "nodeName"));
    const char *phase = phase_of(obj);
    bool done = strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0;
    struct corral_pod *known = corral_fw_find_pod(d->fw, ns ? ns : "default", name);
    if (type == CORRAL_WATCH_DELETED || done) {
        forget_pod(d, ns, name);
        return;
    }
    if (node && *node) {
        if (known && known->node != CORRAL_NO_NODE &&
            strcmp(d->snap->nodes[known->node].name, node) == 0)
            return; /* our own binding coming back, or no change */
        if (known)
            forget_pod(d, ns, name);
        add_pod(d, obj, node);
        return;
    }
    if (!known && ours(d, obj) && !json_object_get(json_object_get(obj, "metadata"),
                                                   "deletionTimestamp"))
        add_pod(d, obj, NULL);
}

static void orphan(struct corral_pod *pod, void *arg)
{
    (void)pod;
    (void)arg; /* the pod stays known, unplaced; the node controller evicts it */
}

/* Pods bound to name before the node was known take their place on it now. */
static void place_waiting_pods(struct daemon *d, const char *name)
{
    size_t pos = 0;
    void *v;
    while (corral_strmap_next(&d->fw->pods, &pos, NULL, &v)) {
        struct corral_pod *pod = v;
        const char *want = json_string_value(json_object_get(json_object_get(pod->obj, "spec"),
                                                             "nodeName"));
        if (pod->state == CORRAL_POD_BOUND && pod->node == CORRAL_NO_NODE && want &&
            strcmp(want, name) == 0)
            corral_fw_place_bound_pod(d->fw, pod, name);
    }
}

static void apply_node(struct daemon *d, enum corral_watch_type type, json_t *obj)
{
    const char *name = corral_meta_name(obj);
    char err[512];
    if (!name)
        return;
    d->changed = true;
    if (type == CORRAL_WATCH_DELETED) {
        corral_snapshot_remove_node(d->snap, name, orphan, d);
        return;
    }
    if (corral_snapshot_upsert_node(d->snap, json_incref(obj), err, sizeof(err)) < 0)
        corral_warn(LOG, "node %s left out of scheduling: %s", name, err);
    else
        place_waiting_pods(d, name);
}

static void apply_group(struct daemon *d, enum corral_watch_type type, json_t *obj)
{
    char key[512];
    pod_key(corral_meta_namespace(obj), corral_meta_name(obj), key, sizeof(key));
    if (type == CORRAL_WATCH_DELETED)
        json_object_del(d->groups, key);
    else
        json_object_set(d->groups, key, obj);
    d->changed = true;
}

static void apply(struct daemon *d, struct item *it)
{
    if (!it->obj) {
        atomic_store(&d->synced[it->src], true);
        return;
    }
    switch (it->src) {
    case SRC_POD: apply_pod(d, it->type, it->obj); break;
    case SRC_NODE: apply_node(d, it->type, it->obj); break;
    case SRC_GROUP: apply_group(d, it->type, it->obj); break;
    default: break;
    }
}

/* Takes the queued events (waiting up to wait_ms for one). */
static struct item *take(struct daemon *d, int wait_ms)
{
    pthread_mutex_lock(&d->mu);
    if (!d->head && wait_ms > 0 && !atomic_load(&stopping)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += wait_ms / 1000;
        ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&d->cv, &d->mu, &ts);
    }
    struct item *all = d->head;
    d->head = d->tail = NULL;
    pthread_mutex_unlock(&d->mu);
    return all;
}

/* ---- scheduling ---- */

static void retry_unschedulable(struct daemon *d)
{
    size_t pos = 0;
    void *v;
    while (corral_strmap_next(&d->fw->pods, &pos, NULL, &v)) {
        struct corral_pod *pod = v;
        if (pod->state == CORRAL_POD_FAILED && pod->node == CORRAL_NO_NODE && pod->profile >= 0)
            corral_fw_requeue(d->fw, pod);
    }
    d->last_retry_ms = now_ms();
    d->changed = false;
}

static bool ready(struct daemon *d)
{
    return atomic_load(&d->synced[SRC_POD]) && atomic_load(&d->synced[SRC_NODE]);
}

static void schedule(struct daemon *d)
{
    uint64_t now = now_ms();
    if ((d->changed && now - d->last_retry_ms >= 1000) ||
        now - d->last_retry_ms >= (uint64_t)d->o.retry_s * 1000)
        retry_unschedulable(d);
    corral_fw_retry_gated(d->fw);
    while (!atomic_load(&stopping) && corral_fw_schedule_next(d->fw, NULL, NULL))
        corral_fw_process_waiting(d->fw, false);
    corral_fw_process_waiting(d->fw, false);
}

static void loop(struct daemon *d)
{
    while (!atomic_load(&stopping)) {
        struct item *it = take(d, 500);
        while (it) {
            struct item *next = it->next;
            apply(d, it);
            json_decref(it->obj);
            free(it);
            it = next;
        }
        if (ready(d))
            schedule(d);
    }
}

/* ---- /healthz and /metrics ---- */

static enum MHD_Result on_http(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_len, void **con_cls)
{
    struct daemon *d = cls;
    (void)version;
    (void)upload;
    (void)upload_len;
    (void)con_cls;
    char body[1024];
    unsigned code = MHD_HTTP_OK;
    if (strcmp(method, "GET") != 0) {
        code = MHD_HTTP_METHOD_NOT_ALLOWED;
        snprintf(body, sizeof(body), "method not allowed\n");
    } else if (strcmp(url, "/healthz") == 0 || strcmp(url, "/readyz") == 0) {
        code = ready(d) ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
        snprintf(body, sizeof(body), "%s\n", ready(d) ? "ok" : "waiting for the first list");
    } else if (strcmp(url, "/metrics") == 0) {
        snprintf(body, sizeof(body),
                 "corral_scheduler_pods_bound_total %llu\n"
                 "corral_scheduler_unschedulable_attempts_total %llu\n"
                 "corral_scheduler_binding_errors_total %llu\n",
                 (unsigned long long)atomic_load(&d->bound),
                 (unsigned long long)atomic_load(&d->failed_attempts),
                 (unsigned long long)atomic_load(&d->bind_errors));
    } else {
        code = MHD_HTTP_NOT_FOUND;
        snprintf(body, sizeof(body), "not found\n");
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body,
                                                             MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static int start_http(struct daemon *d)
{
    char host[64] = "127.0.0.1";
    int port = 0;
    const char *colon = strrchr(d->o.listen, ':');
    if (!colon || colon - d->o.listen >= (long)sizeof(host) || sscanf(colon + 1, "%d", &port) != 1 ||
        port < 0 || port > 65535) {
        fprintf(stderr, "corral scheduler: --listen: \"%s\" is not ADDRESS:PORT\n", d->o.listen);
        return -EINVAL;
    }
    memcpy(host, d->o.listen, (size_t)(colon - d->o.listen));
    host[colon - d->o.listen] = '\0';
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, "corral scheduler: --listen: \"%s\" is not an IPv4 address\n", host);
        return -EINVAL;
    }
    d->http = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                               on_http, d, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                               MHD_OPTION_END);
    if (!d->http) {
        fprintf(stderr, "corral scheduler: cannot listen on %s\n", d->o.listen);
        return -EADDRINUSE;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d->http, MHD_DAEMON_INFO_BIND_PORT);
    printf("listening on http://%s:%u\n", host, info ? info->port : (unsigned)port);
    fflush(stdout);
    return 0;
}

/* ---- setup ---- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: corral scheduler --kubeconfig FILE [--apiserver URL] [--profile FILE]\n"
            "                        [--plugin-dir DIR] [--listen ADDR:PORT] [--retry-seconds N]\n\n"
            "Schedules pods onto nodes: watches pods, nodes and PodGroups, binds with the\n"
            "binding subresource (node and GPUs), explains every pod it cannot place.\n\n"
            "  --kubeconfig FILE   credentials (default: $KUBECONFIG or ~/.kube/config)\n"
            "  --apiserver URL     overrides the kubeconfig's server\n"
            "  --profile FILE      scheduler configuration (default: the built-in default)\n"
            "  --plugin-dir DIR    where plugins are (default: the configuration's pluginDir)\n"
            "  --listen ADDR:PORT  /healthz and /metrics (default 127.0.0.1:0, any free port)\n"
            "  --retry-seconds N   retry unschedulable pods at least this often (default 30)\n");
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"apiserver", required_argument, 0, 'a'}, {"kubeconfig", required_argument, 0, 'k'},
        {"profile", required_argument, 0, 'p'},   {"plugin-dir", required_argument, 0, 'd'},
        {"listen", required_argument, 0, 'l'},    {"retry-seconds", required_argument, 0, 'r'},
        {"help", no_argument, 0, 'h'},            {0, 0, 0, 0},
    };
    *o = (struct opts){.listen = "127.0.0.1:0", .retry_s = 30};
    optind = 1;
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'a': o->apiserver = optarg; break;
        case 'k': o->kubeconfig = optarg; break;
        case 'p': o->profile = optarg; break;
        case 'd': o->plugin_dir = optarg; break;
        case 'l': o->listen = optarg; break;
        case 'r':
            o->retry_s = (int)strtol(optarg, &end, 10);
            if (*end || o->retry_s < 1 || o->retry_s > 3600) {
                fprintf(stderr, "corral scheduler: --retry-seconds: must be 1..3600\n");
                return -1;
            }
            break;
        case 'h': usage(stdout); return 1;
        default: usage(stderr); return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "corral scheduler: unexpected argument \"%s\"\n", argv[optind]);
        return -1;
    }
    return 0;
}

static int load_config(struct daemon *d)
{
    char err[1024] = "";
    const struct corral_embedded_profile *ep = corral_embedded_profile("default");
    int rc = d->o.profile ? corral_sched_config_load(d->o.profile, &d->cfg, err, sizeof(err))
                          : corral_sched_config_parse(ep->text, strlen(ep->text),
                                                      "manifests/profiles/default.yaml",
                                                      &d->cfg, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "corral scheduler: %s\n", err);
    return rc;
}

static int setup(struct daemon *d)
{
    char err[1024] = "";
    struct corral_fw_callbacks cb = {.arg = d,
                                     .bind = bind_cb,
                                     .unschedulable = unschedulable_cb,
                                     .evicted = evicted_cb,
                                     .lookup = lookup_cb};
    d->snap = corral_snapshot_new();
    d->groups = json_object();
    d->reported = json_object();
    if (!d->snap || !d->groups || !d->reported)
        return -ENOMEM;
    int rc = load_config(d);
    if (rc == 0 && (rc = corral_fw_new(d->cfg, d->o.plugin_dir, d->snap, &cb,
                                       (uint64_t)time(NULL), &d->fw, err, sizeof(err))) < 0)
        fprintf(stderr, "corral scheduler: %s\n", err);
    if (rc == 0 && (rc = corral_kubeconfig_client_from_file(d->o.kubeconfig, d->o.apiserver,
                                                            &d->api)) < 0)
        fprintf(stderr, "corral scheduler: cannot build a client from the kubeconfig: %s\n",
                corral_strerror(rc));
    return rc;
}

static void teardown(struct daemon *d)
{
    for (int s = 0; s < SRC_COUNT; s++)
        if (d->inf[s])
            corral_informer_stop(d->inf[s]);
    for (int s = 0; s < SRC_COUNT; s++) {
        if (d->started[s])
            pthread_join(d->thread[s], NULL);
        corral_informer_free(d->inf[s]);
        corral_client_free(d->watch[s]);
    }
    if (d->http)
        MHD_stop_daemon(d->http);
    struct item *it = take(d, 0);
    while (it) {
        struct item *next = it->next;
        json_decref(it->obj);
        free(it);
        it = next;
    }
    corral_fw_free(d->fw);
    corral_snapshot_free(d->snap);
    corral_sched_config_free(d->cfg);
    corral_client_free(d->api);
    json_decref(d->groups);
    json_decref(d->reported);
}

int corral_scheduler_main(int argc, char **argv)
{
    static struct daemon d;
    memset(&d, 0, sizeof(d));
    int rc = parse_opts(argc, argv, &d.o);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    pthread_mutex_init(&d.mu, NULL);
    pthread_cond_init(&d.cv, NULL);
    atomic_store(&stopping, false);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    rc = setup(&d);
    if (rc == 0)
        rc = start_http(&d);
    if (rc == 0 && (rc = start_informers(&d)) < 0)
        fprintf(stderr, "corral scheduler: cannot start watching: %s\n", corral_strerror(rc));
    if (rc == 0) {
        corral_info(LOG, "scheduling for %u profile(s); plugins from %s", d.fw->n_profiles,
                    d.fw->plugin_dir);
        loop(&d);
        corral_info(LOG, "stopping");
    }
    teardown(&d);
    pthread_mutex_destroy(&d.mu);
    pthread_cond_destroy(&d.cv);
    return rc == 0 ? 0 : 1;
}
