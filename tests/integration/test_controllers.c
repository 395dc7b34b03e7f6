/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Integration tests for the built-in controllers: the real `corral apiserver` on a loopback
 * port, driven over HTTP with corral's client. There is no scheduler and no node agent here:
 * the test plays both, binding pods and writing their status (Running, Ready, Succeeded,
 * Failed) and renewing node leases, and checks what the controllers make of it.
 *
 * Covered: Deployment -> ReplicaSet -> pods with owner references; scaling; a rolling update
 * that never drops below replicas - maxUnavailable ready pods; Recreate; revision history;
 * ReplicaSet adoption and replacement of failed pods; Jobs that complete, fail after
 * backoffLimit, run out of activeDeadlineSeconds, run Indexed, and expire after
 * ttlSecondsAfterFinished; Endpoints following readiness; node lease lapse -> taint ->
 * eviction -> replacement (timed, with short and with default settings); pods left
 * terminating on a lost node; cascading deletes (Background, Foreground, Orphan).
 */
#include "client.h"
#include "daemon.h"
#include "error.h"
#include "harness.h"
#include "meta.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NS "/api/v1/namespaces/default"
#define APPS "/apis/apps/v1/namespaces/default"
#define BATCH "/apis/batch/v1/namespaces/default"

static int instance;

/* ---- plumbing ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Polls cond every 50 ms for up to secs seconds; fails the test if it never holds. */
#define WAIT_FOR(cond, secs)                                                                       \
    do {                                                                                           \
        double until_ = now_s() + (secs);                                                          \
        while (!(cond) && now_s() < until_)                                                        \
            sleep_ms(50);                                                                          \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: timed out after %g s waiting for %s\n", __FILE__, __LINE__,    \
                    (double)(secs), #cond);                                                        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static char last_dir[600];

static struct corral_daemon start_apiserver_in(const char *dir, const char *grace)
{
    struct corral_daemon d;
    const char *argv[] = {"apiserver",
                          "--listen",
                          "127.0.0.1:0",
                          "--data-dir",
                          dir,
                          "--insecure-http",
                          grace ? "--node-grace-seconds" : NULL,
                          grace,
                          NULL};
    CHECK(corral_daemon_start(&d, argv, 20000) == 0);
    return d;
}

static struct corral_daemon start_apiserver(const char *grace)
{
    snprintf(last_dir, sizeof(last_dir), "%s/data-%d", corral_test_tmpdir(), instance++);
    return start_apiserver_in(last_dir, grace);
}

static struct corral_client *client_for(const struct corral_daemon *d)
{
    struct corral_client_config cfg = {.server = d->url};
    struct corral_client *c;
    CHECK(corral_client_new(&cfg, &c) == 0);
    return c;
}

static json_t *get(struct corral_client *c, const char *path)
{
    json_t *out = NULL;
    return corral_client_get(c, path, &out) == 0 ? out : NULL;
}

static bool exists(struct corral_client *c, const char *path)
{
    json_t *o = get(c, path);
    json_decref(o);
    return o != NULL;
}

/* Items of a list (new reference), optionally label-selected. */
static json_t *list(struct corral_client *c, const char *collection, const char *selector)
{
    char *path = strdup(collection);
    if (selector)
        CHECK(corral_client_query_add(&path, "labelSelector", selector) == 0);
    json_t *l = get(c, path);
    free(path);
    CHECK(l != NULL);
    json_t *items = json_incref(json_object_get(l, "items"));
    json_decref(l);
    return items;
}

static const char *name_of(const json_t *o)
{
    return corral_meta_name(o);
}

static const char *uid_of(const json_t *o)
{
    return json_string_value(json_object_get(json_object_get(o, "metadata"), "uid"));
}

static bool deleting(const json_t *o)
{
    return json_object_get(json_object_get(o, "metadata"), "deletionTimestamp") != NULL;
}

static long long int_at(const json_t *o, const char *a, const char *b)
{
    return json_integer_value(json_object_get(json_object_get(o, a), b));
}

/* Pods matching selector that are not being deleted. */
static size_t live_pods(struct corral_client *c, const char *selector)
{
    json_t *items = list(c, NS "/pods", selector);
    size_t n = 0, i;
    json_t *p;
    json_array_foreach(items, i, p) n += !deleting(p);
    json_decref(items);
    return n;
}

static size_t count(struct corral_client *c, const char *collection, const char *selector)
{
    json_t *items = list(c, collection, selector);
    size_t n = json_array_size(items);
    json_decref(items);
    return n;
}

static const char *condition(const json_t *obj, const char *type, const char *field)
{
    size_t i;
    json_t *cond;
    json_array_foreach(json_object_get(json_object_get(obj, "status"), "conditions"), i, cond)
    {
        const char *t = json_string_value(json_object_get(cond, "type"));
        if (t && strcmp(t, type) == 0)
            return json_string_value(json_object_get(cond, field));
    }
    return NULL;
}

/* The test plays kubelet: writes a pod's phase, readiness and IP through pods/NAME/status. */
static void set_pod_status(struct corral_client *c, const char *name, const char *phase, bool ready,
                           const char *ip)
{
    char path[512], ts[21];
    snprintf(path, sizeof(path), NS "/pods/%s/status", name);
    corral_meta_format_time(time(NULL), ts);
    json_t *patch =
        json_pack("{s:{s:s, s:[{s:s, s:s, s:s}]}}", "status", "phase", phase, "conditions", "type",
                  "Ready", "status", ready ? "True" : "False", "lastTransitionTime", ts);
    if (ip)
        json_object_set_new(json_object_get(patch, "status"), "podIP", json_string(ip));
    int rc = corral_client_patch(c, path, CORRAL_PATCH_MERGE, patch, NULL);
    CHECK(rc == 0 || rc == CORRAL_ENOTFOUND);
    json_decref(patch);
}

static void bind_pod(struct corral_client *c, const char *name, const char *node)
{
    char path[512];
    snprintf(path, sizeof(path), NS "/pods/%s/binding", name);
    json_t *b =
        json_pack("{s:s, s:s, s:{s:s}, s:{s:s, s:s}}", "apiVersion", "v1", "kind", "Binding",
                  "metadata", "name", name, "target", "kind", "Node", "name", node);
    CHECK(corral_client_create(c, path, b, NULL) == 0);
    json_decref(b);
}

/* Marks every live pod matching selector Running and Ready (with an IP). Returns how many. */
static size_t ready_all(struct corral_client *c, const char *selector)
{
    json_t *items = list(c, NS "/pods", selector);
    size_t i, n = 0;
    json_t *p;
    json_array_foreach(items, i, p)
    {
        if (deleting(p) || (condition(p, "Ready", "status") &&
                            strcmp(condition(p, "Ready", "status"), "True") == 0))
            continue;
        char ip[32];
        snprintf(ip, sizeof(ip), "10.1.%zu.%zu", (i / 200) % 250, i % 200 + 2);
        set_pod_status(c, name_of(p), "Running", true, ip);
        n++;
    }
    json_decref(items);
    return n;
}

static size_t set_all_pods(struct corral_client *c, const char *selector, const char *phase)
{
    json_t *items = list(c, NS "/pods", selector);
    size_t i, n = 0;
    json_t *p;
    json_array_foreach(items, i, p)
    {
        const char *cur = json_string_value(json_object_get(json_object_get(p, "status"), "phase"));
        if (deleting(p) || (cur && strcmp(cur, phase) == 0))
            continue;
        set_pod_status(c, name_of(p), phase, false, NULL);
        n++;
    }
    json_decref(items);
    return n;
}

static json_t *pod_template(const char *app, const char *image)
{
    return json_pack("{s:{s:{s:s}}, s:{s:[{s:s, s:s, s:[{s:s, s:i}]}]}}", "metadata", "labels",
                     "app", app, "spec", "containers", "name", "main", "image", image, "ports",
                     "name", "http", "containerPort", 8080);
}

static json_t *deployment(const char *name, int replicas, const char *image)
{
    return json_pack("{s:s, s:s, s:{s:s}, s:{s:i, s:{s:{s:s}}, s:o}}", "apiVersion", "apps/v1",
                     "kind", "Deployment", "metadata", "name", name, "spec", "replicas", replicas,
                     "selector", "matchLabels", "app", name, "template", pod_template(name, image));
}

static void create(struct corral_client *c, const char *collection, json_t *obj)
{
    int rc = corral_client_create(c, collection, obj, NULL);
    if (rc != 0)
        fprintf(stderr, "create in %s: %s\n", collection, corral_client_error(c));
    CHECK(rc == 0);
    json_decref(obj);
}

static void merge_patch(struct corral_client *c, const char *path, const char *json)
{
    json_t *p = json_loads(json, 0, NULL);
    CHECK(p != NULL);
    int rc = corral_client_patch(c, path, CORRAL_PATCH_MERGE, p, NULL);
    if (rc != 0)
        fprintf(stderr, "patch %s: %s\n", path, corral_client_error(c));
    CHECK(rc == 0);
    json_decref(p);
}

static void delete_with(struct corral_client *c, const char *path, const char *policy)
{
    json_t *opts = json_pack("{s:s, s:s, s:s}", "kind", "DeleteOptions", "apiVersion", "v1",
                             "propagationPolicy", policy);
    CHECK(corral_client_delete(c, path, opts, NULL) == 0);
    json_decref(opts);
}

static bool deploy_done(struct corral_client *c, const char *name, long replicas)
{
    char path[256];
    snprintf(path, sizeof(path), APPS "/deployments/%s", name);
    json_t *d = get(c, path);
    bool ok = d &&
              int_at(d, "status", "observedGeneration") >= int_at(d, "metadata", "generation") &&
              int_at(d, "status", "updatedReplicas") == replicas &&
              int_at(d, "status", "replicas") == replicas &&
              int_at(d, "status", "availableReplicas") == replicas;
    json_decref(d);
    return ok;
}

/* status.field of the object at path equals v. */
static bool status_is(struct corral_client *c, const char *path, const char *field, long long v)
{
    json_t *o = get(c, path);
    bool ok = o && json_is_integer(json_object_get(json_object_get(o, "status"), field)) &&
              int_at(o, "status", field) == v;
    json_decref(o);
    return ok;
}

static size_t pods_with_finalizers(struct corral_client *c, const char *selector)
{
    json_t *items = list(c, NS "/pods", selector);
    size_t i, held = 0;
    json_t *p;
    json_array_foreach(items, i, p) held +=
        json_array_size(json_object_get(json_object_get(p, "metadata"), "finalizers")) > 0;
    json_decref(items);
    return held;
}

static size_t owner_refs(struct corral_client *c, const char *path)
{
    json_t *o = get(c, path);
    size_t n = json_array_size(json_object_get(json_object_get(o, "metadata"), "ownerReferences"));
    json_decref(o);
    return n;
}

static void finish(struct corral_client *c, struct corral_daemon *d)
{
    corral_client_free(c);
    CHECK_INT_EQ(corral_daemon_stop(d, SIGTERM), 0);
}

/* ---- Deployment and ReplicaSet ---- */

static void test_deployment_creates_replicaset_and_pods(void)
{
    struct corral_daemon d = start_apiserver(NULL);
    struct corral_client *c = client_for(&d);
    create(c, APPS "/deployments", deployment("web", 3, "nginx:1.25"));
    WAIT_FOR(count(c, NS "/pods", "app=web") == 3, 10);

    json_t *rses = list(c, APPS "/replicasets", "app=web");
    CHECK_INT_EQ(json_array_size(rses), 1);
    json_t *rs = json_array_get(rses, 0);
    json_t *dep = get(c, APPS "/deployments/web");
    json_t *ref =
        json_array_get(json_object_get(json_object_get(rs, "metadata"), "ownerReferences"), 0);
    CHECK_STR_EQ(json_string_value(json_object_get(ref, "kind")), "Deployment");
    CHECK_STR_EQ(json_string_value(json_object_get(ref, "uid")), uid_of(dep));
    CHECK(json_is_true(json_object_get(ref, "controller")));
    CHECK(json_is_true(json_object_get(ref, "blockOwnerDeletion")));
    const char *hash =
        json_string_value(json_object_get(corral_meta_labels(rs), "pod-template-hash"));
    CHECK(hash && strlen(hash) >= 6);
    char want[128];
    snprintf(want, sizeof(want), "web-%s", hash);
    CHECK_STR_EQ(name_of(rs), want);
    CHECK_STR_EQ(json_string_value(json_object_get(
                     json_object_get(json_object_get(json_object_get(rs, "spec"), "selector"),
                                     "matchLabels"),
                     "pod-template-hash")),
                 hash);
    CHECK_STR_EQ(json_string_value(json_object_get(corral_meta_annotations(rs),
                                                   "deployment.kubernetes.io/revision")),
                 "1");

    json_t *pods = list(c, NS "/pods", "app=web");
    size_t i;
    json_t *p;
    json_array_foreach(pods, i, p)
    {
        json_t *pref =
            json_array_get(json_object_get(json_object_get(p, "metadata"), "ownerReferences"), 0);
        CHECK_STR_EQ(json_string_value(json_object_get(pref, "kind")), "ReplicaSet");
        CHECK_STR_EQ(json_string_value(json_object_get(pref, "uid")), uid_of(rs));
        CHECK(json_is_true(json_object_get(pref, "controller")));
        CHECK(json_is_true(json_object_get(pref, "blockOwnerDeletion")));
        CHECK(strncmp(name_of(p), want, strlen(want)) == 0);
        CHECK_STR_EQ(json_string_value(json_object_get(corral_meta_labels(p), "pod-template-hash")),
                     hash);
    }
    /* ready pods make the Deployment available and complete */
    ready_all(c, "app=web");
    WAIT_FOR(deploy_done(c, "web", 3), 10);
    json_t *dd = get(c, APPS "/deployments/web");
    CHECK_STR_EQ(condition(dd, "Available", "status"), "True");
    CHECK_STR_EQ(condition(dd, "Progressing", "reason"), "NewReplicaSetAvailable");
    CHECK_INT_EQ(int_at(dd, "status", "readyReplicas"), 3);
    CHECK_STR_EQ(json_string_value(json_object_get(corral_meta_annotations(dd),
                                                   "deployment.kubernetes.io/revision")),
                 "1");
    /* Events name what happened */
    json_t *events = list(c, NS "/events", NULL);
    bool created = false, scaled = false;
    json_array_foreach(events, i, p)
    {
        const char *reason = json_string_value(json_object_get(p, "reason"));
        created |= reason && strcmp(reason, "SuccessfulCreate") == 0;
        scaled |= reason && strcmp(reason, "ScalingReplicaSet") == 0;
    }
    CHECK(created && scaled);
    json_decref(events);
    json_decref(dd);
    json_decref(pods);
    json_decref(dep);
    json_decref(rses);
    finish(c, &d);
}

static void test_scale_up_and_down(void)
{
    struct corral_daemon d = start_apiserver(NULL);
    struct corral_client *c = client_for(&d);
    create(c, APPS "/deployments", deployment("sc", 2, "busybox:1.36"));
    WAIT_FOR(live_pods(c, "app=sc") == 2, 10);
    merge_patch(c, APPS "/deployments/sc", "{\"spec\":{\"replicas\":5}}");
    WAIT_FOR(live_pods(c, "app=sc") == 5, 10);
    /* three of the five become ready: scaling down to 3 removes the two that are not */
    json_t *pods = list(c, NS "/pods", "app=sc");
    for (size_t i = 0; i < 3; i++)
        set_pod_status(c, name_of(json_array_get(pods, i)), "Running", true, "10.2.0.1");
    json_t *rses = list(c, APPS "/replicasets", "app=sc");
    char rs_path[256];
    snprintf(rs_path, sizeof(rs_path), APPS "/replicasets/%s", name_of(json_array_get(rses, 0)));
    json_decref(rses);
    WAIT_FOR(status_is(c, rs_path, "readyReplicas", 3), 10);
    merge_patch(c, APPS "/deployments/sc", "{\"spec\":{\"replicas\":3}}");
    WAIT_FOR(live_pods(c, "app=sc") == 3, 10);
    for (size_t i = 0; i < 3; i++) {
        char path[256];
        snprintf(path, sizeof(path), NS "/pods/%s", name_of(json_array_get(pods, i)));
        json_t *p = get(c, path);
        CHECK(p && !deleting(p)); /* the ready ones stayed */
        json_decref(p);
    }
    merge_patch(c, APPS "/deployments/sc", "{\"spec\":{\"replicas\":0}}");
    WAIT_FOR(count(c, NS "/pods", "app=sc") == 0, 10);
    json_decref(pods);
    finish(c, &d);
}

static void test_rolling_update_keeps_availability(void)
{
    struct corral_daemon d = start_apiserver(NULL);
    struct corral_client *c = client_for(&d);
    json_t *dep = deployment("roll", 4, "app:v1");
    json_object_set_new(json_object_get(dep, "spec"), "strategy",
                        json_pack("{s:s, s:{s:i, s:i}}", "type", "RollingUpdate", "rollingUpdate",
                                  "maxSurge", 1, "maxUnavailable", 1));
    create(c, APPS "/deployments", dep);
    WAIT_FOR(live_pods(c, "app=roll") == 4, 10);
    ready_all(c, "app=roll");
    WAIT_FOR(deploy_done(c, "roll", 4), 10);

    merge_patch(c, APPS "/deployments/roll",
                "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"main\","
                "\"image\":\"app:v2\",\"ports\":[{\"name\":\"http\",\"containerPort\":8080}]}]"
                "}}}}");
    size_t min_ready = 100, max_live = 0, rounds = 0;
    double until = now_s() + 60;
    while (now_s() < until) {
        json_t *items = list(c, NS "/pods", "app=roll");
        size_t live = 0, ready = 0, i;
        json_t *p;
        json_array_foreach(items, i, p)
        {
            if (deleting(p))
                continue;
            live++;
            const char *r = condition(p, "Ready", "status");
            ready += r && strcmp(r, "True") == 0;
        }
        json_decref(items);
        min_ready = ready < min_ready ? ready : min_ready;
        max_live = live > max_live ? live : max_live;
        rounds++;
        if (deploy_done(c, "roll", 4))
            break;
        ready_all(c, "app=roll"); /* kubelet: new pods come up */
        sleep_ms(20);
    }
    CHECK(deploy_done(c, "roll", 4));
    fprintf(stderr, "rolling update: %zu observations, min ready %zu (floor 3), max live %zu\n",
            rounds, min_ready, max_live);
    CHECK(min_ready >= 3);
    /* every pod runs the new image; the old ReplicaSet is kept at 0 as history */
    json_t *items = list(c, NS "/pods", "app=roll");
    size_t i;
    json_t *p;
    json_array_foreach(items, i, p)
    {
        if (deleting(p))
            continue;
        CHECK_STR_EQ(
            json_string_value(json_object_get(
                json_array_get(json_object_get(json_object_get(p, "spec"), "containers"), 0),
                "image")),
            "app:v2");
    }
    json_t *rses = list(c, APPS "/replicasets", "app=roll");
    CHECK_INT_EQ(json_array_size(rses), 2);
    json_array_foreach(rses, i, p)
    {
        const char *rev = json_string_value(
            json_object_get(corral_meta_annotations(p), "deployment.kubernetes.io/revision"));
        CHECK_INT_EQ(int_at(p, "spec", "replicas"), strcmp(rev, "2") == 0 ? 4 : 0);
    }
    json_t *dd = get(c, APPS "/deployments/roll");
    CHECK_STR_EQ(json_string_value(json_object_get(corral_meta_annotations(dd),
                                                   "deployment.kubernetes.io/revision")),
                 "2");
    CHECK_STR_EQ(condition(dd, "Progressing", "reason"), "NewReplicaSetAvailable");
    json_decref(dd);
    json_decref(rses);
    json_decref(items);
    finish(c, &d);
}

static void test_recreate_and_history(void)
{
    struct corral_daemon d = start_apiserver(NULL);
    struct corral_client *c = client_for(&d);
    json_t *dep = deployment("rc", 2, "app:v1");
    json_object_set_new(json_object_get(dep, "spec"), "strategy",
                        json_pack("{s:s}", "type", "Recreate"));
    json_object_set_new(json_object_get(dep, "spec"), "revisionHistoryLimit", json_integer(1));
    create(c, APPS "/deployments", dep);
    WAIT_FOR(live_pods(c, "app=rc") == 2, 10);
    ready_all(c, "app=rc");
    WAIT_FOR(deploy_done(c, "rc", 2), 10);
    for (int v = 2; v <= 3; v++) {
        char patch[256];
        snprintf(patch, sizeof(patch),
                 "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"main\","
                 "\"image\":\"app:v%d\"}]}}}}",
                 v);
        merge_patch(c, APPS "/deployments/rc", patch);
        double until = now_s() + 30;
        bool mixed = false;
        while (now_s() < until && !deploy_done(c, "rc", 2)) {
            json_t *items = list(c, NS "/pods", "app=rc");
            size_t i, old = 0, young = 0;
            json_t *p;
            json_array_foreach(items, i, p)
            {
                const char *img = json_string_value(json_object_get(
                    json_array_get(json_object_get(json_object_get(p, "spec"), "containers"), 0),
                    "image"));
                char want[32];
                snprintf(want, sizeof(want), "app:v%d", v);
                if (strcmp(img, want) == 0)
                    young++;
                else
                    old++;
            }
            mixed |= old > 0 && young > 0;
            json_decref(items);
            ready_all(c, "app=rc");
            sleep_ms(20);
        }
        CHECK(deploy_done(c, "rc", 2));
        CHECK(!mixed); /* Recreate: never old and new pods at once */
    }
    /* revisionHistoryLimit 1: the newest old ReplicaSet stays, older ones are deleted */
    WAIT_FOR(count(c, APPS "/replicasets", "app=rc") == 2, 10);
    finish(c, &d);
}

static void test_replicaset_adopts_and_replaces(void)
{
    struct corral_daemon d = start_apiserver(NULL);
    struct corral_client *c = client_for(&d);
    json_t *orphan = json_pack("{s:s, s:s, s:{s:s, s:{s:s}}, s:{s:[{s:s, s:s}]}}", "apiVersion",
                               "v1", "kind", "Pod", "metadata", "name", "stray", "labels", "app",
                               "rs", "spec", "containers", "name", "main", "image", "x:1");
    create(c, NS "/pods", orphan);
    json_t *rs =
        json_pack("{s:s, s:s, s:{s:s}, s:{s:i, s:{s:{s:s}}, s:o}}", "apiVersion", "apps/v1", "kind",
                  "ReplicaSet", "metadata", "name", "rs", "spec", "replicas", 3, "selector",
                  "matchLabels", "app", "rs", "template", pod_template("rs", "x:1"));
    create(c, APPS "/replicasets", rs);
    WAIT_FOR(live_pods(c, "app=rs") == 3, 10);
    json_t *stray = get(c, NS "/pods/stray");
    json_t *owner = get(c, APPS "/replicasets/rs");
    json_t *ref =
        json_array_get(json_object_get(json_object_get(stray, "metadata"), "ownerReferences"), 0);
    CHECK_STR_EQ(json_string_value(json_object_get(ref, "uid")), uid_of(owner));
    /* a pod that fails is replaced; the failed one stays, not counted */
    set_pod_status(c, "stray", "Failed", false, NULL);
    WAIT_FOR(live_pods(c, "app=rs") == 4, 10);
    json_t *items = list(c, NS "/pods", "app=rs");
    size_t running = 0, i;
    json_t *p;
    json_array_foreach(items, i, p)
    {
        const char *ph = json_string_value(json_object_get(json_object_get(p, "status"), "phase"));
        running += strcmp(ph, "Failed") != 0;
    }
    CHECK_INT_EQ(running, 3);
    WAIT_FOR(status_is(c, APPS "/replicasets/rs", "replicas", 3) &&
                 status_is(c, APPS "/replicasets/rs", "fullyLabeledReplicas", 3) &&
                 status_is(c, APPS "/replicasets/rs", "observedGeneration", 1),
             10);
    json_decref(items);
    json_decref(stray);
    json_decref(owner);
    finish(c, &d);
}

/* ---- Jobs ---- */

static json_t *job(const char *name, int completions, int parallelism, int backoff)
{
    return json_pack("{s:s, s:s, s:{s:s}, s:{s:i, s:i, s:i, s:{s:{s:s, s:[{s:s, s:s}]}}}}",
                     "apiVersion", "batch/v1", "kind", "Job", "metadata", "name", name, "spec",
                     "completions", completions, "parallelism", parallelism, "backoffLimit",
                     backoff, "template", "spec", "restartPolicy", "Never", "containers", "name",
                     "work", "image", "busybox:1.36");
}

static bool job_condition(struct corral_client *c, const char *name, const char *type)
{
    char path[256];
    snprintf(path, sizeof(path), BATCH "/jobs/%s", name);
    json_t *j = get(c, path);
    const char *s = j ? condition(j, type, "status") : NULL;
    bool ok = s && strcmp(s, "True") == 0;
    json_decref(j);
    return ok;
}

static void test_job_runs_to_completion(void)
{
    struct corral_daemon d = start_apiserver(NULL);
    struct corral_client *c = client_for(&d);
    create(c, BATCH "/jobs", job("calc", 3, 2, 6));
    WAIT_FOR(live_pods(c, "job-name=calc") == 2, 10);
    json_t *pods = list(c, NS "/pods", "job-name=calc");
    json_t *p0 = json_array_get(pods, 0);
    CHECK(strncmp(name_of(p0), "calc-", 5) == 0);
    CHECK_STR_EQ(
        json_string_value(json_object_get(
            json_array_get(json_object_get(json_object_get(p0, "metadata"), "ownerReferences"), 0),
            "kind")),
        "Job");
    json_decref(pods);
    /* the status is written after the pods are created: wait for it */
    WAIT_FOR(status_is(c, BATCH "/jobs/calc", "active", 2), 10);
    json_t *j = get(c, BATCH "/jobs/calc");
    CHECK(json_object_get(json_object_get(j, "status"), "startTime"));
    json_decref(j);
    /* kubelet: pods finish; the controller keeps 2 running until 3 have succeeded */
    double until = now_s() + 20;
    while (!job_condition(c, "calc", "Complete") && now_s() < until) {
        set_all_pods(c, "job-name=calc", "Succeeded");
        sleep_ms(100);
    }
    CHECK(job_condition(c, "calc", "Complete"));
    /* the condition is written with the final count, every finished pod counted */
    j = get(c, BATCH "/jobs/calc");
    CHECK_INT_EQ(int_at(j, "status", "succeeded"), 3);
    CHECK(json_object_get(json_object_get(json_object_get(j, "status"), "uncountedTerminatedPods"),
                          "succeeded") == NULL);
    json_decref(j);
    WAIT_FOR(status_is(c, BATCH "/jobs/calc", "succeeded", 3) &&
                 status_is(c, BATCH "/jobs/calc", "active", 0),
             10);
    j = get(c, BATCH "/jobs/calc");
    CHECK(json_object_get(json_object_get(j, "status"), "completionTime"));
    CHECK_STR_EQ(condition(j, "Complete", "reason"), "CompletionsReached");
    json_decref(j);
    /* counted pods lose the tracking finalizer */
    WAIT_FOR(pods_with_finalizers(c, "job-name=calc") == 0, 10);
    CHECK_INT_EQ(count(c, NS "/pods", "job-name=calc"), 3);
    finish(c, &d);
}

static void test_job_fails_after_backoff_limit(void)
{
    struct corral_daemon d = start_apiserver(NULL);
    struct corral_client *c = client_for(&d);
    create(c, BATCH "/jobs", job("flaky", 4, 2, 1));
    WAIT_FOR(live_pods(c, "job-name=flaky") == 2, 10);
    set_all_pods(c, "job-name=flaky", "Failed");
    WAIT_FOR(job_condition(c, "flaky", "Failed"), 10);
    json_t *j = get(c, BATCH "/jobs/flaky");
    CHECK_STR_EQ(condition(j, "Failed", "reason"), "BackoffLimitExceeded");
    json_decref(j);
    WAIT_FOR(status_is(c, BATCH "/jobs/flaky", "failed", 2) &&
                 status_is(c, BATCH "/jobs/flaky", "active", 0),
             10);
    CHECK_INT_EQ(live_pods(c, "job-name=flaky") - count(c, NS "/pods", "job-name=flaky"), 0);
    /* a failure waits out the back-off before its replacement (10 s, doubling) */
    create(c, BATCH "/jobs", job("retry", 1, 1, 3));
    WAIT_FOR(live_pods(c, "job-name=retry") == 1, 10);
    set_all_pods(c, "job-name=retry", "Failed");
    WAIT_FOR(status_is(c, BATCH "/jobs/retry", "failed", 1), 10);
    double t0 = now_s();
    sleep_ms(2000);
    CHECK_INT_EQ(count(c, NS "/pods", "job-name=retry"), 1);
    WAIT_FOR(count(c, NS "/pods", "job-name=retry") == 2, 15);
    double waited = now_s() - t0;
    fprintf(stderr, "job back-off before the replacement: %.1f s\n", waited);
    CHECK(waited > 7 && waited < 14);
    finish(c, &d);
}

/* The test plays kubelet: pod name fails, its container "work" exiting with code. */
static void fail_with_exit_code(struct corral_client *c, const char *name, int code)
{
    char path[512];
    snprintf(path, sizeof(path), NS "/pods/%s/status", name);
    json_t *patch = json_pack("{s:{s:s, s:[{s:s, s:i, s:{s:{s:i, s:s}}}]}}", "status", "phase",
                              "Failed", "containerStatuses", "name", "work", "restartCount", 0,
                              "state", "terminated", "exitCode", code, "reason", "Error");
    CHECK(corral_client_patch(c, path, CORRAL_PATCH_MERGE, patch, NULL) == 0);
    json_decref(patch);
}

/* The name of the one pod of selector still running (not failed, not being deleted). */
static bool running_pod(struct corral_client *c, const char *selector, char *out, size_t len)
{
    json_t *items = list(c, NS "/pods", selector);
    size_t i;
    json_t *p;
    bool found = false;
    json_array_foreach(items, i, p)
    {
        const char *phase =
            json_string_value(json_object_get(json_object_get(p, "status"), "phase"));
        if (!deleting(p) && (!phase || strcmp(phase, "Failed") != 0)) {
            snprintf(out, len, "%s", name_of(p));
            found = true;
        }
    }
    json_decref(items);
    return found;
}

static void test_job_pod_failure_policy(void)
{
    struct corral_daemon d = start_apiserver(NULL);
    struct corral_client *c = client_for(&d);
    /* backoffLimit 0: any failure that counts fails the Job at once */
    json_t *j = job("pfp", 2, 1, 0);
    json_t *rules = json_pack(
        "[{s:s, s:{s:s, s:[i]}}, {s:s, s:{s:s, s:s, s:[i, i]}}]", "action", "Ignore",
        "onExitCodes", "operator", "In", "values", 3, "action", "FailJob", "onExitCodes",
        "containerName", "work", "operator", "In", "values", 42, 43);
    json_object_set_new(json_object_get(j, "spec"), "podFailurePolicy",
                        json_pack("{s:o}", "rules", rules));
    create(c, BATCH "/jobs", j);
    char name[256], first[256];
    WAIT_FOR(running_pod(c, "job-name=pfp", first, sizeof(first)), 10);
    /* exit code 3: Ignore, so not counted, and replaced without back-off */
    fail_with_exit_code(c, first, 3);
    WAIT_FOR(running_pod(c, "job-name=pfp", name, sizeof(name)) && strcmp(name, first) != 0, 10);
    CHECK(!job_condition(c, "pfp", "Failed"));
    CHECK(status_is(c, BATCH "/jobs/pfp", "failed", 0));
    /* exit code 42 in container work: FailJob */
    fail_with_exit_code(c, name, 42);
    WAIT_FOR(job_condition(c, "pfp", "Failed"), 10);
    j = get(c, BATCH "/jobs/pfp");
    CHECK_STR_EQ(condition(j, "Failed", "reason"), "PodFailurePolicy");
    char want[512];
    snprintf(want, sizeof(want),
             "Container work for pod default/%s failed with exit code 42 matching FailJob rule "
             "at index 1",
             name);
    CHECK_STR_EQ(condition(j, "Failed", "message"), want);
    CHECK_STR_EQ(condition(j, "FailureTarget", "status"), "True");
    CHECK_INT_EQ(int_at(j, "status", "failed"), 1);
    json_decref(j);
    /* a policy needs restartPolicy Never: refused with Kubernetes' message */
    j = job("pfp-bad", 1, 1, 0);
    json_object_set_new(json_object_get(json_object_get(json_object_get(j, "spec"), "template"),
                                        "spec"),
                        "restartPolicy", json_string("OnFailure"));
    json_object_set_new(json_object_get(j, "spec"), "podFailurePolicy",
                        json_pack("{s:[{s:s, s:{s:s, s:[i]}}]}", "rules", "action", "FailJob",
                                  "onExitCodes", "operator", "In", "values", 0));
    CHECK_INT_EQ(corral_client_create(c, BATCH "/jobs", j, NULL), CORRAL_EINVALID);
    const char *why = corral_client_error(c);
    CHECK_STR_CONTAINS(why, "spec.template.spec.restartPolicy: Invalid value: \"OnFailure\": "
                            "only \"Never\" is supported when podFailurePolicy is specified");
    CHECK_STR_CONTAINS(why, "spec.podFailurePolicy.rules[0].onExitCodes.values[0]: Invalid "
                            "value: 0: must not be 0 for the In operator");
    json_decref(j);
    finish(c, &d);
}

static void test_job_success_policy(void)
{
    struct corral_daemon d = start_apiserver(NULL);
    struct corral_client *c = client_for(&d);
    /* a leader and two workers: the Job is done when the leader (index 0) succeeds */
    json_t *j = job("lead", 3, 3, 6);
    json_t *spec = json_object_get(j, "spec");
    json_object_set_new(spec, "completionMode", json_string("Indexed"));
    json_object_set_new(spec, "successPolicy",
                        json_pack("{s:[{s:s}]}", "rules", "succeededIndexes", "0"));
    create(c, BATCH "/jobs", j);
    WAIT_FOR(live_pods(c, "job-name=lead") == 3, 10);
    CHECK_INT_EQ(set_all_pods(c, "job-name=lead,batch.kubernetes.io/job-completion-index=0",
                              "Succeeded"),
                 1);
    WAIT_FOR(job_condition(c, "lead", "Complete"), 10);
    j = get(c, BATCH "/jobs/lead");
    CHECK_STR_EQ(condition(j, "Complete", "reason"), "SuccessPolicy");
    CHECK_STR_EQ(condition(j, "Complete", "message"), "Matched rules at index 0");
    CHECK_STR_EQ(condition(j, "SuccessCriteriaMet", "status"), "True");
    CHECK_INT_EQ(int_at(j, "status", "succeeded"), 1);
    json_decref(j);
    /* the workers still running are stopped: only the leader, finished, is left */
    WAIT_FOR(live_pods(c, "job-name=lead") == 1, 10);
    CHECK_INT_EQ(live_pods(c, "job-name=lead,batch.kubernetes.io/job-completion-index=0"), 1);
    /* a success policy needs Indexed completion, and counts no more than completions */
    j = job("lead-bad", 2, 1, 6);
    json_object_set_new(json_object_get(j, "spec"), "successPolicy",
                        json_pack("{s:[{s:i}]}", "rules", "succeededCount", 3));
    CHECK_INT_EQ(corral_client_create(c, BATCH "/jobs", j, NULL), CORRAL_EINVALID);
    const char *why = corral_client_error(c);
    CHECK_STR_CONTAINS(why, "spec.successPolicy: Invalid value: requires indexed completion mode");
    CHECK_STR_CONTAINS(why, "spec.successPolicy.rules[0].succeededCount: Invalid value: 3: must "
                            "be less than or equal to 2");
    json_decref(j);
    finish(c, &d);
}

static void test_job_deadline_indexed_ttl(void)
{
    struct corral_daemon d = start_apiserver(NULL);
    struct corral_client *c = client_for(&d);
    /* activeDeadlineSeconds */
    json_t *slow = job("slow", 1, 1, 6);
    json_object_set_new(json_object_get(slow, "spec"), "activeDeadlineSeconds", json_integer(2));
    create(c, BATCH "/jobs", slow);
    WAIT_FOR(live_pods(c, "job-name=slow") == 1, 10);
    WAIT_FOR(job_condition(c, "slow", "Failed"), 10);
    json_t *j = get(c, BATCH "/jobs/slow");
    CHECK_STR_EQ(condition(j, "Failed", "reason"), "DeadlineExceeded");
    json_decref(j);
    WAIT_FOR(live_pods(c, "job-name=slow") == 0, 10);

    /* suspend stops the pods; resuming starts them again */
    create(c, BATCH "/jobs", job("pause", 2, 2, 6));
    WAIT_FOR(live_pods(c, "job-name=pause") == 2, 10);
    merge_patch(c, BATCH "/jobs/pause", "{\"spec\":{\"suspend\":true}}");
    WAIT_FOR(job_condition(c, "pause", "Suspended"), 10);
    WAIT_FOR(count(c, NS "/pods", "job-name=pause") == 0, 10); /* finalizers released */
    merge_patch(c, BATCH "/jobs/pause", "{\"spec\":{\"suspend\":false}}");
    WAIT_FOR(live_pods(c, "job-name=pause") == 2, 10);
    CHECK(!job_condition(c, "pause", "Suspended"));
    CHECK(status_is(c, BATCH "/jobs/pause", "failed", 0));

    /* Indexed: one pod per index, each told its index */
    json_t *idx = job("idx", 3, 3, 6);
    json_object_set_new(json_object_get(idx, "spec"), "completionMode", json_string("Indexed"));
    json_object_set_new(json_object_get(idx, "spec"), "ttlSecondsAfterFinished", json_integer(1));
    create(c, BATCH "/jobs", idx);
    WAIT_FOR(live_pods(c, "job-name=idx") == 3, 10);
    json_t *pods = list(c, NS "/pods", "job-name=idx");
    bool seen[3] = {false, false, false};
    size_t i;
    json_t *p;
    json_array_foreach(pods, i, p)
    {
        const char *v = json_string_value(json_object_get(
            corral_meta_annotations(p), "batch.kubernetes.io/job-completion-index"));
        CHECK(v && atoi(v) >= 0 && atoi(v) < 3);
        seen[atoi(v)] = true;
        json_t *env = json_object_get(
            json_array_get(json_object_get(json_object_get(p, "spec"), "containers"), 0), "env");
        CHECK_STR_EQ(json_string_value(json_object_get(json_array_get(env, 0), "value")), v);
    }
    CHECK(seen[0] && seen[1] && seen[2]);
    json_decref(pods);
    set_all_pods(c, "job-name=idx", "Succeeded");
    WAIT_FOR(job_condition(c, "idx", "Complete") || !exists(c, BATCH "/jobs/idx"), 10);
    /* ttlSecondsAfterFinished: 1 s later the Job is gone, its pods with it */
    WAIT_FOR(!exists(c, BATCH "/jobs/idx"), 10);
    WAIT_FOR(count(c, NS "/pods", "job-name=idx") == 0, 10);
    finish(c, &d);
}

/* ---- Endpoints ---- */

static json_t *endpoints_of(struct corral_client *c, const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), NS "/endpoints/%s", name);
    return get(c, path);
}

static size_t addresses(const json_t *ep, const char *field)
{
    size_t n = 0, i;
    json_t *s;
    json_array_foreach(json_object_get(ep, "subsets"), i, s) n +=
        json_array_size(json_object_get(s, field));
    return n;
}

static bool endpoints_are(struct corral_client *c, const char *name, size_t ready, size_t not_ready)
{
    json_t *ep = endpoints_of(c, name);
    bool ok = ep && addresses(ep, "addresses") == ready &&
              addresses(ep, "notReadyAddresses") == not_ready;
    json_decref(ep);
    return ok;
}

static void test_endpoints_follow_readiness(void)
{
    struct corral_daemon d = start_apiserver(NULL);
    struct corral_client *c = client_for(&d);
    json_t *svc =
        json_pack("{s:s, s:s, s:{s:s}, s:{s:{s:s}, s:[{s:s, s:i, s:s}]}}", "apiVersion", "v1",
                  "kind", "Service", "metadata", "name", "front", "spec", "selector", "app",
                  "front", "ports", "name", "web", "port", 80, "targetPort", "http");
    create(c, NS "/services", svc);
    create(c, APPS "/deployments", deployment("front", 2, "nginx:1.25"));
    WAIT_FOR(live_pods(c, "app=front") == 2, 10);
    WAIT_FOR(exists(c, NS "/endpoints/front"), 10);
    json_t *pods = list(c, NS "/pods", "app=front");
    const char *a = name_of(json_array_get(pods, 0)), *b = name_of(json_array_get(pods, 1));
    set_pod_status(c, a, "Running", true, "10.9.0.1");
    set_pod_status(c, b, "Running", false, "10.9.0.2");
    WAIT_FOR(endpoints_are(c, "front", 1, 1), 10);
    json_t *ep = endpoints_of(c, "front");
    json_t *sub = json_array_get(json_object_get(ep, "subsets"), 0);
    json_t *port = json_array_get(json_object_get(sub, "ports"), 0);
    CHECK_INT_EQ(json_integer_value(json_object_get(port, "port")), 8080); /* named targetPort */
    CHECK_STR_EQ(json_string_value(json_object_get(port, "name")), "web");
    json_t *addr = json_array_get(json_object_get(sub, "addresses"), 0);
    CHECK_STR_EQ(json_string_value(json_object_get(addr, "ip")), "10.9.0.1");
    CHECK_STR_EQ(json_string_value(json_object_get(json_object_get(addr, "targetRef"), "name")), a);
    json_decref(ep);
    set_pod_status(c, b, "Running", true, "10.9.0.2");
    WAIT_FOR(endpoints_are(c, "front", 2, 0), 10);
    set_pod_status(c, a, "Running", false, "10.9.0.1");
    WAIT_FOR(endpoints_are(c, "front", 1, 1), 10);
    /* a deleted pod leaves; its replacement has no IP yet, so it is not listed */
    char path[256];
    snprintf(path, sizeof(path), NS "/pods/%s", b);
    CHECK(corral_client_delete(c, path, NULL, NULL) == 0);
    WAIT_FOR(endpoints_are(c, "front", 0, 1), 10);
    /* no selector: not managed; deleting the service deletes its Endpoints */
    CHECK(corral_client_delete(c, NS "/services/front", NULL, NULL) == 0);
    WAIT_FOR(!exists(c, NS "/endpoints/front"), 10);
    json_decref(pods);
    finish(c, &d);
}

/* ---- node lifecycle ---- */

struct renewer {
    struct corral_client *c;
    const char *node;
    atomic_bool run, quit;
    _Atomic double last; /* monotonic time of the last renewal written */
    pthread_t thread;
};

static void write_lease(struct corral_client *c, const char *node)
{
    char path[256], ts[28];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    corral_meta_format_microtime(&now, ts);
    snprintf(path, sizeof(path),
             "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/"
             "leases/%s",
             node);
    json_t *patch = json_pack("{s:{s:s}}", "spec", "renewTime", ts);
    corral_client_patch(c, path, CORRAL_PATCH_MERGE, patch, NULL);
    json_decref(patch);
}

static void *renew_main(void *arg)
{
    struct renewer *r = arg;
    while (!atomic_load(&r->quit)) {
        if (atomic_load(&r->run)) {
            write_lease(r->c, r->node);
            atomic_store(&r->last, now_s());
        }
        sleep_ms(300);
    }
    return NULL;
}

static void create_node(struct corral_client *c, const char *name)
{
    char ts[28];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    corral_meta_format_microtime(&now, ts);
    char hb[21];
    corral_meta_format_time(time(NULL), hb);
    create(c, "/api/v1/nodes",
           json_pack("{s:s, s:s, s:{s:s}, s:{s:[{s:s, s:s, s:s, s:s}]}}", "apiVersion", "v1",
                     "kind", "Node", "metadata", "name", name, "status", "conditions", "type",
                     "Ready", "status", "True", "reason", "KubeletReady", "lastHeartbeatTime", hb));
    create(c, "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
           json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:i, s:s}}", "apiVersion",
                     "coordination.k8s.io/v1", "kind", "Lease", "metadata", "name", name,
                     "namespace", "kube-node-lease", "spec", "holderIdentity", name,
                     "leaseDurationSeconds", 40, "renewTime", ts));
}

static bool node_has_taint(struct corral_client *c, const char *node, const char *key,
                           const char *effect)
{
    char path[256];
    snprintf(path, sizeof(path), "/api/v1/nodes/%s", node);
    json_t *n = get(c, path);
    bool found = false;
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(json_object_get(n, "spec"), "taints"), i, t)
    {
        found |= strcmp(json_string_value(json_object_get(t, "key")), key) == 0 &&
                 strcmp(json_string_value(json_object_get(t, "effect")), effect) == 0;
    }
    json_decref(n);
    return found;
}

static const char *node_ready(struct corral_client *c, const char *node, char *buf, size_t len)
{
    char path[256];
    snprintf(path, sizeof(path), "/api/v1/nodes/%s", node);
    json_t *n = get(c, path);
    snprintf(buf, len, "%s",
             n && condition(n, "Ready", "status") ? condition(n, "Ready", "status") : "");
    json_decref(n);
    return buf;
}

/* Pods matching selector whose uid is not in the array old_uids, not being deleted. */
static size_t new_pods(struct corral_client *c, const char *selector, const json_t *old_uids)
{
    json_t *items = list(c, NS "/pods", selector);
    size_t n = 0, i, j;
    json_t *p, *u;
    json_array_foreach(items, i, p)
    {
        bool old = false;
        json_array_foreach(old_uids, j, u) old |= strcmp(json_string_value(u), uid_of(p)) == 0;
        n += !old && !deleting(p);
    }
    json_decref(items);
    return n;
}

static size_t old_left(struct corral_client *c, const char *selector, const json_t *old_uids)
{
    json_t *items = list(c, NS "/pods", selector);
    size_t n = 0, i, j;
    json_t *p, *u;
    json_array_foreach(items, i, p)
    {
        json_array_foreach(old_uids, j, u) n += strcmp(json_string_value(u), uid_of(p)) == 0;
    }
    json_decref(items);
    return n;
}

/*
 * Runs pods of a ReplicaSet on one node, stops the node's lease and times what follows.
 * toleration < 0 leaves the pods' default tolerations.
 */
static void failover(struct corral_client *c, const char *app, int toleration, double grace,
                     double budget)
{
    struct renewer r = {.node = "gpu-1"};
    CHECK(corral_client_clone(c, &r.c) == 0);
    create_node(c, "gpu-1");
    atomic_store(&r.run, true);
    CHECK(pthread_create(&r.thread, NULL, renew_main, &r) == 0);

    json_t *tmpl = pod_template(app, "infer:1");
    if (toleration >= 0)
        json_object_set_new(json_object_get(tmpl, "spec"), "tolerations",
                            json_pack("[{s:s, s:s, s:s, s:i}]", "key",
                                      "node.kubernetes.io/unreachable", "operator", "Exists",
                                      "effect", "NoExecute", "tolerationSeconds", toleration));
    json_t *rs = json_pack("{s:s, s:s, s:{s:s}, s:{s:i, s:{s:{s:s}}, s:o}}", "apiVersion",
                           "apps/v1", "kind", "ReplicaSet", "metadata", "name", app, "spec",
                           "replicas", 3, "selector", "matchLabels", "app", app, "template", tmpl);
    create(c, APPS "/replicasets", rs);
    char sel[64];
    snprintf(sel, sizeof(sel), "app=%s", app);
    WAIT_FOR(live_pods(c, sel) == 3, 10);
    json_t *pods = list(c, NS "/pods", sel), *uids = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(pods, i, p)
    {
        bind_pod(c, name_of(p), "gpu-1");
        json_array_append_new(uids, json_string(uid_of(p)));
    }
    ready_all(c, sel);
    /* a renewed lease keeps the node healthy past the grace period */
    sleep_ms((int)(grace * 1000) + 1500);
    char buf[32];
    CHECK(!node_has_taint(c, "gpu-1", "node.kubernetes.io/unreachable", "NoExecute"));
    CHECK_STR_EQ(node_ready(c, "gpu-1", buf, sizeof(buf)), "True");

    /* the node dies */
    atomic_store(&r.run, false);
    sleep_ms(400);
    double lost = atomic_load(&r.last);
    WAIT_FOR(node_has_taint(c, "gpu-1", "node.kubernetes.io/unreachable", "NoExecute"), grace + 10);
    double t_taint = now_s() - lost;
    CHECK(node_has_taint(c, "gpu-1", "node.kubernetes.io/unreachable", "NoSchedule"));
    CHECK_STR_EQ(node_ready(c, "gpu-1", buf, sizeof(buf)), "Unknown");
    json_t *node = get(c, "/api/v1/nodes/gpu-1");
    CHECK_STR_EQ(condition(node, "Ready", "reason"), "NodeStatusUnknown");
    CHECK_STR_EQ(condition(node, "Ready", "message"), "Kubelet stopped posting node status.");
    json_decref(node);
    WAIT_FOR(new_pods(c, sel, uids) == 3, budget);
    double t_replaced = now_s() - lost;
    WAIT_FOR(old_left(c, sel, uids) == 0, 10);
    fprintf(stderr,
            "failover (grace %.0f s, toleration %d s): tainted %.1f s, replaced %.1f s "
            "after the last lease renewal\n",
            grace, toleration < 0 ? 20 : toleration, t_taint, t_replaced);
    printf("node_loss_to_taint_%s=%.1f s\nnode_loss_to_replacement_%s=%.1f s\n", app, t_taint, app,
           t_replaced);
    fflush(stdout);
    CHECK(t_replaced < budget);

    /* the lease is renewed again: the taints go */
    atomic_store(&r.run, true);
    WAIT_FOR(!node_has_taint(c, "gpu-1", "node.kubernetes.io/unreachable", "NoExecute"), 10);
    CHECK(!node_has_taint(c, "gpu-1", "node.kubernetes.io/unreachable", "NoSchedule"));

    atomic_store(&r.quit, true);
    pthread_join(r.thread, NULL);
    corral_client_free(r.c);
    json_decref(uids);
    json_decref(pods);
}

/* The highest count among Events with reason about the object named name (0: none). */
static long long event_count(struct corral_client *c, const char *name, const char *reason)
{
    json_t *items = list(c, NS "/events", NULL);
    long long n = 0;
    size_t i;
    json_t *e;
    json_array_foreach(items, i, e)
    {
        const char *r = json_string_value(json_object_get(e, "reason"));
        const char *o =
            json_string_value(json_object_get(json_object_get(e, "involvedObject"), "name"));
        long long k = json_integer_value(json_object_get(e, "count"));
        if (r && o && strcmp(r, reason) == 0 && strcmp(o, name) == 0 && k > n)
            n = k;
    }
    json_decref(items);
    return n;
}

static void test_node_lease_lapse_evicts_and_replaces(void)
{
    struct corral_daemon d = start_apiserver("2");
    struct corral_client *c = client_for(&d);
    failover(c, "fast", 2, 2, 12);

    /* no more renewals: lost a second time, the same Event is counted rather than repeated */
    WAIT_FOR(event_count(c, "gpu-1", "NodeNotReady") == 2, 15);

    /* bind a replacement there, then delete the Node: its pods go */
    json_t *pods = list(c, NS "/pods", "app=fast");
    const char *victim = name_of(json_array_get(pods, 0));
    char path[256];
    snprintf(path, sizeof(path), NS "/pods/%s", victim);
    bind_pod(c, victim, "gpu-1");
    CHECK(corral_client_delete(c, "/api/v1/nodes/gpu-1", NULL, NULL) == 0);
    WAIT_FOR(!exists(c, path), 10);
    WAIT_FOR(live_pods(c, "app=fast") == 3, 10);
    json_decref(pods);
    finish(c, &d);
}

static void test_node_failover_with_defaults(void)
{
    /* --node-grace-seconds 10 and the 20 s default toleration: well within a minute */
    struct corral_daemon d = start_apiserver(NULL);
    struct corral_client *c = client_for(&d);
    failover(c, "dflt", -1, 10, 60);
    finish(c, &d);
}

static void test_terminating_pods_on_lost_node(void)
{
    struct corral_daemon d = start_apiserver("2");
    struct corral_client *c = client_for(&d);
    struct renewer r = {.node = "gpu-2"};
    CHECK(corral_client_clone(c, &r.c) == 0);
    create_node(c, "gpu-2");
    atomic_store(&r.run, true);
    CHECK(pthread_create(&r.thread, NULL, renew_main, &r) == 0);
    /* a pod that tolerates unreachable forever, so only its own deletion removes it */
    create(c, NS "/pods",
           json_pack("{s:s, s:s, s:{s:s}, s:{s:i, s:[{s:s, s:s, s:s}], s:[{s:s, s:s}]}}",
                     "apiVersion", "v1", "kind", "Pod", "metadata", "name", "stuck", "spec",
                     "terminationGracePeriodSeconds", 2, "tolerations", "key",
                     "node.kubernetes.io/unreachable", "operator", "Exists", "effect", "NoExecute",
                     "containers", "name", "main", "image", "x:1"));
    bind_pod(c, "stuck", "gpu-2");
    set_pod_status(c, "stuck", "Running", true, "10.3.0.1");
    /* a graceful delete on a healthy node waits for the kubelet (there is none here) */
    CHECK(corral_client_delete(c, NS "/pods/stuck", NULL, NULL) == 0);
    sleep_ms(3500);
    json_t *p = get(c, NS "/pods/stuck");
    CHECK(p && deleting(p));
    json_decref(p);
    /* the node is lost: past its grace period the pod is force-deleted */
    atomic_store(&r.run, false);
    WAIT_FOR(!exists(c, NS "/pods/stuck"), 15);
    atomic_store(&r.quit, true);
    pthread_join(r.thread, NULL);
    corral_client_free(r.c);
    finish(c, &d);
}

/* ---- garbage collection ---- */

static void test_cascading_deletes(void)
{
    struct corral_daemon d = start_apiserver(NULL);
    struct corral_client *c = client_for(&d);

    /* Background */
    create(c, APPS "/deployments", deployment("bg", 2, "x:1"));
    WAIT_FOR(live_pods(c, "app=bg") == 2, 10);
    delete_with(c, APPS "/deployments/bg", "Background");
    CHECK(!exists(c, APPS "/deployments/bg"));
    WAIT_FOR(count(c, APPS "/replicasets", "app=bg") == 0, 10);
    WAIT_FOR(count(c, NS "/pods", "app=bg") == 0, 10);

    /* Foreground: the owner stays, finalizer held, until its dependents are gone */
    create(c, APPS "/deployments", deployment("fg", 2, "x:1"));
    WAIT_FOR(live_pods(c, "app=fg") == 2, 10);
    delete_with(c, APPS "/deployments/fg", "Foreground");
    json_t *dep = get(c, APPS "/deployments/fg");
    if (dep) {
        CHECK(deleting(dep));
        CHECK_STR_EQ(json_string_value(json_array_get(
                         json_object_get(json_object_get(dep, "metadata"), "finalizers"), 0)),
                     "foregroundDeletion");
        json_decref(dep);
    }
    double until = now_s() + 10;
    while (exists(c, APPS "/deployments/fg") && now_s() < until) {
        sleep_ms(20);
    }
    CHECK(!exists(c, APPS "/deployments/fg"));
    CHECK_INT_EQ(count(c, NS "/pods", "app=fg"), 0); /* gone before their owner */
    CHECK_INT_EQ(count(c, APPS "/replicasets", "app=fg"), 0);

    /* Orphan: the owner goes, the dependents stay without the reference */
    create(c, APPS "/deployments", deployment("or", 2, "x:1"));
    WAIT_FOR(live_pods(c, "app=or") == 2, 10);
    delete_with(c, APPS "/deployments/or", "Orphan");
    WAIT_FOR(!exists(c, APPS "/deployments/or"), 10);
    json_t *rses = list(c, APPS "/replicasets", "app=or");
    CHECK_INT_EQ(json_array_size(rses), 1);
    CHECK(
        !json_object_get(json_object_get(json_array_get(rses, 0), "metadata"), "ownerReferences"));
    json_decref(rses);
    sleep_ms(1000);
    CHECK_INT_EQ(live_pods(c, "app=or"), 2);

    /* a dependent whose owner never existed is collected; one with a live owner keeps it */
    json_t *owners = list(c, APPS "/replicasets", "app=or");
    json_t *owner = json_array_get(owners, 0);
    json_t *refs = json_pack("[{s:s, s:s, s:s, s:s}, {s:s, s:s, s:s, s:s}]", "apiVersion",
                             "apps/v1", "kind", "ReplicaSet", "name", name_of(owner), "uid",
                             uid_of(owner), "apiVersion", "v1", "kind", "ConfigMap", "name",
                             "ghost", "uid", "00000000-0000-4000-8000-000000000000");
    create(c, NS "/configmaps",
           json_pack("{s:s, s:s, s:{s:s, s:O}}", "apiVersion", "v1", "kind", "ConfigMap",
                     "metadata", "name", "half", "ownerReferences", refs));
    create(c, NS "/configmaps",
           json_pack("{s:s, s:s, s:{s:s, s:[O]}}", "apiVersion", "v1", "kind", "ConfigMap",
                     "metadata", "name", "lost", "ownerReferences", json_array_get(refs, 1)));
    WAIT_FOR(!exists(c, NS "/configmaps/lost"), 10);
    WAIT_FOR(owner_refs(c, NS "/configmaps/half") == 1, 10);
    CHECK(exists(c, NS "/configmaps/half"));
    json_decref(refs);
    json_decref(owners);
    finish(c, &d);
}

/* ---- restart ---- */

static void test_restart_changes_nothing(void)
{
    struct corral_daemon d = start_apiserver(NULL);
    struct corral_client *c = client_for(&d);
    create(c, APPS "/deployments", deployment("keep", 3, "x:1"));
    create(c, BATCH "/jobs", job("half", 4, 2, 6));
    WAIT_FOR(live_pods(c, "app=keep") == 3 && live_pods(c, "job-name=half") == 2, 10);
    ready_all(c, "app=keep");
    WAIT_FOR(deploy_done(c, "keep", 3), 10);
    set_all_pods(c, "job-name=half", "Succeeded");
    WAIT_FOR(status_is(c, BATCH "/jobs/half", "succeeded", 2) && live_pods(c, "job-name=half") == 4,
             10);
    json_t *before = list(c, NS "/pods", NULL);
    finish(c, &d);

    d = start_apiserver_in(last_dir, NULL);
    c = client_for(&d);
    sleep_ms(3000); /* relisted, resynced: nothing to do */
    json_t *after = list(c, NS "/pods", NULL);
    CHECK_INT_EQ(json_array_size(after), json_array_size(before));
    size_t i, j;
    json_t *p, *q;
    json_array_foreach(before, i, p)
    {
        bool same = false;
        json_array_foreach(after, j, q) same |=
            strcmp(uid_of(p), uid_of(q)) == 0 && deleting(p) == deleting(q);
        CHECK(same);
    }
    CHECK(deploy_done(c, "keep", 3));
    CHECK(status_is(c, BATCH "/jobs/half", "succeeded", 2));
    /* and the controllers still act */
    set_all_pods(c, "job-name=half", "Succeeded");
    WAIT_FOR(job_condition(c, "half", "Complete"), 10);
    /* Complete comes with the final count, as in Kubernetes (not before every pod is counted) */
    CHECK(status_is(c, BATCH "/jobs/half", "succeeded", 4));
    merge_patch(c, APPS "/deployments/keep", "{\"spec\":{\"replicas\":1}}");
    WAIT_FOR(live_pods(c, "app=keep") == 1, 10);
    json_decref(before);
    json_decref(after);
    finish(c, &d);
}

/* ---- several apiservers on one etcd: one leads the controllers ---- */

static pid_t etcd_pid;

static void stop_etcd(void)
{
    if (etcd_pid > 0) {
        kill(etcd_pid, SIGKILL);
        waitpid(etcd_pid, NULL, 0);
        etcd_pid = 0;
    }
}

/* Starts etcd on loopback; returns its client URL in url, or false when there is no etcd. */
static bool start_etcd(char *url, size_t len)
{
    const char *bin = getenv("CORRAL_ETCD") ? getenv("CORRAL_ETCD") : "/usr/bin/etcd";
    if (access(bin, X_OK) != 0)
        return false;
    int cport = corral_test_free_port(), pport = corral_test_free_port();
    char data[600], curls[64], purls[64], cluster[96], log[600];
    snprintf(data, sizeof(data), "%s/etcd", corral_test_tmpdir());
    snprintf(log, sizeof(log), "%s/etcd.log", corral_test_tmpdir());
    snprintf(curls, sizeof(curls), "http://127.0.0.1:%d", cport);
    snprintf(purls, sizeof(purls), "http://127.0.0.1:%d", pport);
    snprintf(cluster, sizeof(cluster), "default=%s", purls);
    snprintf(url, len, "%s", curls);
    fflush(NULL);
    etcd_pid = fork();
    CHECK(etcd_pid >= 0);
    if (etcd_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(bin, bin, "--name", "default", "--data-dir", data, "--listen-client-urls", curls,
              "--advertise-client-urls", curls, "--listen-peer-urls", purls,
              "--initial-advertise-peer-urls", purls, "--initial-cluster", cluster, (char *)NULL);
        _exit(127);
    }
    atexit(stop_etcd);
    struct corral_client_config cfg = {.server = url, .timeout_ms = 1000};
    struct corral_client *c;
    CHECK(corral_client_new(&cfg, &c) == 0);
    double until = now_s() + 30;
    bool up = false;
    while (!up && now_s() < until) {
        struct corral_response r = {0};
        up = corral_client_request(c, "POST", "/v3/maintenance/status", NULL, "{}", 2, &r) == 0 &&
             r.status == 200;
        corral_response_clear(&r);
        if (!up)
            sleep_ms(100);
    }
    corral_client_free(c);
    CHECK(up);
    return true;
}

static struct corral_daemon start_on_etcd(const char *etcd, char *listen, size_t len)
{
    snprintf(listen, len, "127.0.0.1:%d", corral_test_free_port());
    struct corral_daemon d;
    const char *argv[] = {"apiserver", "--listen",        listen, "--etcd-servers",
                          etcd,        "--insecure-http", NULL};
    CHECK(corral_daemon_start(&d, argv, 30000) == 0);
    return d;
}

static void test_one_leader_among_apiservers(void)
{
    char etcd[64], la[64], lb[64];
    if (!start_etcd(etcd, sizeof(etcd))) {
        fprintf(stderr, "no etcd: skipped\n");
        return;
    }
    struct corral_daemon a = start_on_etcd(etcd, la, sizeof(la));
    struct corral_daemon b = start_on_etcd(etcd, lb, sizeof(lb));
    struct corral_client *ca = client_for(&a), *cb = client_for(&b);
    create(ca, APPS "/deployments", deployment("ha", 3, "x:1"));
    WAIT_FOR(live_pods(cb, "app=ha") == 3, 20);
    sleep_ms(3000); /* two controllers at work would have made more */
    CHECK_INT_EQ(count(cb, NS "/pods", "app=ha"), 3);
    CHECK_INT_EQ(count(cb, APPS "/replicasets", "app=ha"), 1);
    json_t *lease = get(ca, "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/"
                            "corral-controllers");
    CHECK(lease != NULL);
    const char *holder =
        json_string_value(json_object_get(json_object_get(lease, "spec"), "holderIdentity"));
    bool a_leads = holder && strstr(holder, la) != NULL;
    CHECK(a_leads || (holder && strstr(holder, lb) != NULL));
    json_decref(lease);

    /* the leader dies without a word: the other takes over once the lease has gone silent */
    struct corral_daemon *dead = a_leads ? &a : &b, *alive = a_leads ? &b : &a;
    struct corral_client *c = a_leads ? cb : ca;
    corral_daemon_stop(dead, SIGKILL);
    double t0 = now_s();
    merge_patch(c, APPS "/deployments/ha", "{\"spec\":{\"replicas\":5}}");
    WAIT_FOR(live_pods(c, "app=ha") == 5, 40);
    fprintf(stderr, "controllers taken over %.1f s after the leader died\n", now_s() - t0);
    sleep_ms(1000);
    CHECK_INT_EQ(count(c, NS "/pods", "app=ha"), 5);
    corral_client_free(ca);
    corral_client_free(cb);
    CHECK_INT_EQ(corral_daemon_stop(alive, SIGTERM), 0);
    stop_etcd();
}

static void on_abort(int sig)
{
    (void)sig;
    /* run the daemon helper's atexit clean-up: no apiserver or temp dir outlives a failure */
    signal(SIGABRT, SIG_DFL);
    exit(134);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        corral_test_set_exe(argv[1]);
    corral_test_tmpdir();
    signal(SIGABRT, on_abort);
    static const struct corral_test tests[] = {
        CORRAL_TEST(deployment_creates_replicaset_and_pods),
        CORRAL_TEST(scale_up_and_down),
        CORRAL_TEST(rolling_update_keeps_availability),
        CORRAL_TEST(recreate_and_history),
        CORRAL_TEST(replicaset_adopts_and_replaces),
        CORRAL_TEST(job_runs_to_completion),
        CORRAL_TEST(job_fails_after_backoff_limit),
        CORRAL_TEST(job_pod_failure_policy),
        CORRAL_TEST(job_success_policy),
        CORRAL_TEST(job_deadline_indexed_ttl),
        CORRAL_TEST(endpoints_follow_readiness),
        CORRAL_TEST(node_lease_lapse_evicts_and_replaces),
        CORRAL_TEST(terminating_pods_on_lost_node),
        CORRAL_TEST(cascading_deletes),
        CORRAL_TEST(restart_changes_nothing),
        CORRAL_TEST(one_leader_among_apiservers),
        CORRAL_TEST(node_failover_with_defaults),
    };
    const char *only = argc > 2 ? argv[2] : NULL;
    int ran = 0;
    for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
        if (only && strcmp(only, tests[i].name) != 0)
            continue;
        fprintf(stderr, "-- %s\n", tests[i].name);
        tests[i].fn();
        fprintf(stderr, "ok %s\n", tests[i].name);
        ran++;
    }
    if (only && !ran) {
        fprintf(stderr, "no test named %s\n", only);
        return 1;
    }
    return 0;
}
