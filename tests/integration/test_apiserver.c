/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Integration tests for `corral apiserver`: the real daemon on a loopback port, driven over
 * HTTP with corral's own client. Covers the REST verbs and their errors, selectors and paging,
 * watch semantics, request limits, and durability: the server is SIGKILLed in the middle of
 * concurrent writes and every acknowledged object must be there, intact, after a restart.
 */
#include "client.h"
#include "daemon.h"
#include "error.h"
#include "harness.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char data_dir[512];

static struct corral_daemon start_apiserver(void)
{
    struct corral_daemon d;
    const char *argv[] = {"apiserver", "--listen", "127.0.0.1:0", "--data-dir", data_dir,
                          "--insecure-http", NULL};
    CHECK(corral_daemon_start(&d, argv, 20000) == 0);
    return d;
}

static struct corral_client *client_for(const struct corral_daemon *d)
{
    struct corral_client_config cfg = {.server = d->url};
    struct corral_client *c;
    CHECK(corral_client_new(&cfg, &c) == 0);
    return c;
}

static json_t *pod(const char *name, const char *cpu)
{
    return json_pack("{s:s, s:s, s:{s:s, s:{s:s}}, s:{s:[{s:s, s:s, s:{s:{s:s}}}]}}",
                     "apiVersion", "v1", "kind", "Pod", "metadata", "name", name, "labels",
                     "app", "web", "spec", "containers", "name", "main", "image", "busybox:1.36",
                     "resources", "limits", "cpu", cpu);
}

static const char *meta_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), key));
}

static void test_crud_and_errors(void)
{
    struct corral_daemon d = start_apiserver();
    struct corral_client *c = client_for(&d);
    const char *pods = "/api/v1/namespaces/default/pods";
    json_t *p = pod("web-0", "500m"), *out = NULL;
    CHECK(corral_client_create(c, pods, p, &out) == 0);
    CHECK(meta_str(out, "uid") && strlen(meta_str(out, "uid")) == 36);
    CHECK(meta_str(out, "creationTimestamp"));
    long rv1 = atol(meta_str(out, "resourceVersion"));
    CHECK(rv1 > 0);
    CHECK_STR_EQ(json_string_value(json_object_get(json_object_get(out, "status"), "phase")),
                 "Pending");
    CHECK(corral_client_create(c, pods, p, NULL) == CORRAL_EEXISTS);
    CHECK_STR_CONTAINS(corral_client_error(c), "pods \"web-0\" already exists");

    /* stale update: 409 Conflict; current: 200 and a newer revision */
    json_t *stale = json_deep_copy(out);
    json_object_set_new(json_object_get(stale, "metadata"), "labels",
                        json_pack("{s:s}", "app", "db"));
    json_object_set_new(json_object_get(stale, "metadata"), "resourceVersion", json_string("1"));
    CHECK(corral_client_update(c, "/api/v1/namespaces/default/pods/web-0", stale, NULL) ==
          CORRAL_ECONFLICT);
    CHECK_STR_CONTAINS(corral_client_error(c), "the object has been modified");
    json_object_set_new(json_object_get(stale, "metadata"), "resourceVersion",
                        json_string(meta_str(out, "resourceVersion")));
    json_t *updated = NULL;
    CHECK(corral_client_update(c, "/api/v1/namespaces/default/pods/web-0", stale, &updated) ==
          0);
    CHECK(atol(meta_str(updated, "resourceVersion")) > rv1);
    CHECK_STR_EQ(meta_str(updated, "uid"), meta_str(out, "uid"));

    /* invalid quantity: 422 naming the field */
    struct corral_response r;
    json_t *bad = pod("bad", "abc");
    CHECK(corral_client_request_json(c, "POST", pods, bad, NULL, &r) == 0);
    CHECK_INT_EQ(r.status, 422);
    json_t *cause = json_array_get(json_object_get(json_object_get(r.json, "details"), "causes"), 0);
    CHECK_STR_EQ(json_string_value(json_object_get(cause, "field")),
                 "spec.containers[0].resources.limits.cpu");
    CHECK_STR_CONTAINS(json_string_value(json_object_get(cause, "message")),
                       "invalid quantity \"abc\"");
    corral_response_clear(&r);

    /* wrong namespace in the body, missing namespace, malformed JSON, YAML body */
    json_t *other = pod("x", "1");
    json_object_set_new(json_object_get(other, "metadata"), "namespace", json_string("kube-system"));
    CHECK(corral_client_create(c, pods, other, NULL) == CORRAL_EBADREQUEST);
    json_t *y = pod("y", "1");
    CHECK(corral_client_create(c, "/api/v1/namespaces/nope/pods", y, NULL) == CORRAL_ENOTFOUND);
    json_decref(y);
    CHECK(corral_client_request(c, "POST", pods, "application/json", "{\"kind\":", 8, &r) == 0);
    CHECK_INT_EQ(r.status, 400);
    CHECK_STR_EQ(json_string_value(json_object_get(r.json, "kind")), "Status");
    corral_response_clear(&r);
    const char *yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\n"
                       "data:\n  answer: \"42\"\n";
    CHECK(corral_client_request(c, "POST", "/api/v1/namespaces/default/configmaps",
                                "application/yaml", yaml, strlen(yaml), &r) == 0);
    CHECK_INT_EQ(r.status, 201);
    corral_response_clear(&r);

    /* delete, then 404 with a NotFound Status */
    CHECK(corral_client_delete(c, "/api/v1/namespaces/default/configmaps/from-yaml", NULL,
                               NULL) == 0);
    CHECK(corral_client_request(c, "GET", "/api/v1/namespaces/default/configmaps/from-yaml",
                                NULL, NULL, 0, &r) == 0);
    CHECK_INT_EQ(r.status, 404);
    CHECK_STR_EQ(json_string_value(json_object_get(r.json, "reason")), "NotFound");
    corral_response_clear(&r);

    json_decref(p);
    json_decref(out);
    json_decref(stale);
    json_decref(updated);
    json_decref(bad);
    json_decref(other);
    corral_client_free(c);
    CHECK_INT_EQ(corral_daemon_stop(&d, SIGTERM), 0);
}

static json_t *configmap(const char *name, const char *team)
{
    return json_pack("{s:s, s:s, s:{s:s, s:{s:s}}, s:{s:s}}", "apiVersion", "v1", "kind",
                     "ConfigMap", "metadata", "name", name, "labels", "team", team, "data",
                     "name", name);
}

static void test_list_selectors_paging(void)
{
    struct corral_daemon d = start_apiserver();
    struct corral_client *c = client_for(&d);
    for (int i = 0; i < 25; i++) {
        char name[32];
        snprintf(name, sizeof(name), "cm-%02d", i);
        json_t *cm = configmap(name, i % 5 == 0 ? "gpu" : "cpu");
        CHECK(corral_client_create(c, "/api/v1/namespaces/default/configmaps", cm, NULL) == 0);
        json_decref(cm);
    }
    json_t *l = NULL;
    CHECK(corral_client_get(c, "/api/v1/namespaces/default/configmaps?labelSelector=team%3Dgpu",
                            &l) == 0);
    CHECK_INT_EQ(json_array_size(json_object_get(l, "items")), 5);
    CHECK_STR_EQ(json_string_value(json_object_get(l, "kind")), "ConfigMapList");
    json_decref(l);
    CHECK(corral_client_get(c, "/api/v1/configmaps?fieldSelector=metadata.name%3Dcm-07", &l) ==
          0);
    CHECK_INT_EQ(json_array_size(json_object_get(l, "items")), 1);
    json_decref(l);
    struct corral_response r;
    CHECK(corral_client_request(c, "GET", "/api/v1/configmaps?fieldSelector=spec.bogus%3D1",
                                NULL, NULL, 0, &r) == 0);
    CHECK_INT_EQ(r.status, 400);
    CHECK_STR_CONTAINS(json_string_value(json_object_get(r.json, "message")),
                       "field label not supported");
    corral_response_clear(&r);
    CHECK(corral_client_request(c, "GET", "/api/v1/configmaps?labelSelector=team+in+gpu", NULL,
                                NULL, 0, &r) == 0);
    CHECK_INT_EQ(r.status, 400);
    corral_response_clear(&r);

    /* paging: 25 objects in pages of 10, same list resourceVersion, no duplicates */
    char path[512] = "/api/v1/namespaces/default/configmaps?limit=10";
    int total = 0, pages = 0;
    char first_rv[32] = "";
    json_t *seen = json_object();
    for (;;) {
        CHECK(corral_client_get(c, path, &l) == 0);
        pages++;
        json_t *meta = json_object_get(l, "metadata");
        const char *rv = json_string_value(json_object_get(meta, "resourceVersion"));
        if (!first_rv[0])
            snprintf(first_rv, sizeof(first_rv), "%s", rv);
        CHECK_STR_EQ(rv, first_rv);
        size_t i;
        json_t *item;
        json_array_foreach(json_object_get(l, "items"), i, item)
        {
            CHECK(!json_object_get(seen, meta_str(item, "name")));
            json_object_set_new(seen, meta_str(item, "name"), json_true());
            total++;
        }
        const char *cont = json_string_value(json_object_get(meta, "continue"));
        if (!cont) {
            json_decref(l);
            break;
        }
        snprintf(path, sizeof(path), "/api/v1/namespaces/default/configmaps?limit=10&continue=%s",
                 cont);
        json_decref(l);
    }
    CHECK_INT_EQ(total, 25);
    CHECK_INT_EQ(pages, 3);
    json_decref(seen);
    corral_client_free(c);
    CHECK_INT_EQ(corral_daemon_stop(&d, SIGTERM), 0);
}

struct event_log {
    char types[32][16];
    char names[32][64];
    int n;
};

static int record_event(enum corral_watch_type type, json_t *obj, void *ctx)
{
    struct event_log *log = ctx;
    static const char *const names[] = {"", "ADDED", "MODIFIED", "DELETED", "BOOKMARK"};
    if (log->n < 32) {
        snprintf(log->types[log->n], 16, "%s", names[type]);
        snprintf(log->names[log->n], 64, "%s", meta_str(obj, "name") ? meta_str(obj, "name") : "");
        log->n++;
    }
    return 0;
}

struct watcher {
    const char *url;
    const char *path;
    struct event_log log;
};

static void *watch_thread(void *arg)
{
    struct watcher *w = arg;
    struct corral_client_config cfg = {.server = w->url};
    struct corral_client *c;
    CHECK(corral_client_new(&cfg, &c) == 0);
    corral_client_watch(c, w->path, 3, record_event, &w->log);
    corral_client_free(c);
    return NULL;
}

static void test_watch(void)
{
    struct corral_daemon d = start_apiserver();
    struct corral_client *c = client_for(&d);
    json_t *l = NULL;
    CHECK(corral_client_get(c, "/api/v1/namespaces/default/configmaps", &l) == 0);
    char all_path[256], sel_path[256];
    const char *rv = json_string_value(json_object_get(json_object_get(l, "metadata"),
                                                       "resourceVersion"));
    snprintf(all_path, sizeof(all_path), "/api/v1/namespaces/default/configmaps?resourceVersion=%s",
             rv);
    snprintf(sel_path, sizeof(sel_path),
             "/api/v1/namespaces/default/configmaps?resourceVersion=%s&labelSelector=team%%3Dgpu",
             rv);
    json_decref(l);
    struct watcher all = {.url = d.url, .path = all_path}, sel = {.url = d.url, .path = sel_path};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, watch_thread, &all);
    pthread_create(&t2, NULL, watch_thread, &sel);
    usleep(300000);
    json_t *cm = configmap("w1", "gpu");
    CHECK(corral_client_create(c, "/api/v1/namespaces/default/configmaps", cm, NULL) == 0);
    /* relabel: the selector watch must see it leave (DELETED) */
    json_t *patch = json_pack("{s:{s:{s:s}}}", "metadata", "labels", "team", "cpu");
    CHECK(corral_client_patch(c, "/api/v1/namespaces/default/configmaps/w1", CORRAL_PATCH_MERGE,
                              patch, NULL) == 0);
    CHECK(corral_client_delete(c, "/api/v1/namespaces/default/configmaps/w1", NULL, NULL) == 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    CHECK_INT_EQ(all.log.n, 3);
    CHECK_STR_EQ(all.log.types[0], "ADDED");
    CHECK_STR_EQ(all.log.types[1], "MODIFIED");
    CHECK_STR_EQ(all.log.types[2], "DELETED");
    CHECK_STR_EQ(all.log.names[2], "w1");
    CHECK_INT_EQ(sel.log.n, 2);
    CHECK_STR_EQ(sel.log.types[0], "ADDED");
    CHECK_STR_EQ(sel.log.types[1], "DELETED");
    json_decref(cm);
    json_decref(patch);
    corral_client_free(c);
    CHECK_INT_EQ(corral_daemon_stop(&d, SIGTERM), 0);
}

static int expect_gone(enum corral_watch_type type, json_t *obj, void *ctx)
{
    (void)type;
    (void)obj;
    (void)ctx;
    return 1; /* any event means the old revision was still served: stop */
}

static void test_watch_resume_and_gone(void)
{
    struct corral_daemon d;
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/gone", corral_test_tmpdir());
    const char *argv[] = {"apiserver", "--listen", "127.0.0.1:0", "--data-dir", dir,
                          "--insecure-http", "--watch-history-events", "20", "--no-controllers",
                          NULL};
    CHECK(corral_daemon_start(&d, argv, 20000) == 0);
    struct corral_client *c = client_for(&d);
    json_t *first = NULL;
    json_t *cm = configmap("resume-0", "gone");
    CHECK(corral_client_create(c, "/api/v1/namespaces/default/configmaps", cm, &first) == 0);
    json_decref(cm);
    long rv0 = atol(meta_str(first, "resourceVersion"));
    for (int i = 1; i <= 60; i++) {
        char name[32];
        snprintf(name, sizeof(name), "resume-%d", i);
        cm = configmap(name, "gone");
        CHECK(corral_client_create(c, "/api/v1/namespaces/default/configmaps", cm, NULL) == 0);
        json_decref(cm);
    }
    /* a recent revision resumes: the next events arrive in order */
    json_t *l = NULL;
    CHECK(corral_client_get(c, "/api/v1/namespaces/default/configmaps?limit=1", &l) == 0);
    long now = atol(json_string_value(json_object_get(json_object_get(l, "metadata"),
                                                      "resourceVersion")));
    json_decref(l);
    char path[256];
    snprintf(path, sizeof(path), "/api/v1/namespaces/default/configmaps?resourceVersion=%ld",
             now - 5);
    struct event_log log = {.n = 0};
    CHECK(corral_client_watch(c, path, 1, record_event, &log) == 0);
    CHECK_INT_EQ(log.n, 5);
    CHECK_STR_EQ(log.names[0], "resume-56");
    /* the first revision is long compacted: 410 Gone, the client must re-list */
    snprintf(path, sizeof(path), "/api/v1/namespaces/default/configmaps?resourceVersion=%ld",
             rv0);
    CHECK(corral_client_watch(c, path, 2, expect_gone, NULL) == CORRAL_EGONE);
    json_decref(first);
    corral_client_free(c);
    CHECK_INT_EQ(corral_daemon_stop(&d, SIGTERM), 0);
}

static void test_limits_and_health(void)
{
    struct corral_daemon d = start_apiserver();
    struct corral_client *c = client_for(&d);
    struct corral_response r;
    size_t big = 4 * 1024 * 1024;
    char *body = malloc(big);
    memset(body, ' ', big);
    body[0] = '{';
    body[big - 1] = '}';
    CHECK(corral_client_request(c, "POST", "/api/v1/namespaces/default/configmaps",
                                "application/json", body, big, &r) == 0);
    CHECK_INT_EQ(r.status, 413);
    corral_response_clear(&r);
    free(body);
    CHECK(corral_client_request(c, "GET", "/version", NULL, NULL, 0, &r) == 0);
    CHECK_INT_EQ(r.status, 200);
    CHECK_STR_EQ(json_string_value(json_object_get(r.json, "minor")), "32");
    corral_response_clear(&r);
    CHECK(corral_client_request(c, "GET", "/readyz", NULL, NULL, 0, &r) == 0);
    CHECK_INT_EQ(r.status, 200);
    corral_response_clear(&r);
    CHECK(corral_client_request(c, "GET", "/metrics", NULL, NULL, 0, &r) == 0);
    CHECK_STR_CONTAINS(r.body, "apiserver_request_total{verb=\"create\",resource=\"configmaps\","
                               "code=\"413\"} 1");
    CHECK_STR_CONTAINS(r.body, "corral_store_commits_total");
    corral_response_clear(&r);
    CHECK(corral_client_request(c, "DELETE", "/api/v1/namespaces/default", NULL, NULL, 0, &r) ==
          0);
    CHECK_INT_EQ(r.status, 403);
    corral_response_clear(&r);
    CHECK(corral_client_request(c, "GET", "/api/v1/widgets", NULL, NULL, 0, &r) == 0);
    CHECK_INT_EQ(r.status, 404);
    corral_response_clear(&r);
    corral_client_free(c);
    CHECK_INT_EQ(corral_daemon_stop(&d, SIGTERM), 0);
}

/* ---- durability under SIGKILL ---- */

#define WRITERS 16
#define MAX_ACKED 200000

struct writer_ctx {
    const char *url;
    int id;
    atomic_int *acked_count;
    char (*acked)[32];
    atomic_bool *stop;
};

static void *writer_thread(void *arg)
{
    struct writer_ctx *w = arg;
    struct corral_client_config cfg = {.server = w->url, .timeout_ms = 5000};
    struct corral_client *c;
    CHECK(corral_client_new(&cfg, &c) == 0);
    for (int i = 0; !atomic_load(w->stop); i++) {
        char name[32];
        snprintf(name, sizeof(name), "w%02d-%06d", w->id, i);
        json_t *cm = configmap(name, "durable");
        int rc = corral_client_create(c, "/api/v1/namespaces/default/configmaps", cm, NULL);
        json_decref(cm);
        if (rc != 0)
            break; /* the server died under us: this write was not acknowledged */
        int slot = atomic_fetch_add(w->acked_count, 1);
        if (slot < MAX_ACKED)
            snprintf(w->acked[slot], 32, "%s", name);
    }
    corral_client_free(c);
    return NULL;
}

static void test_kill9_loses_nothing(void)
{
    char (*acked)[32] = calloc(MAX_ACKED, 32);
    for (int round = 0; round < 3; round++) {
        struct corral_daemon d = start_apiserver();
        atomic_int count = 0;
        atomic_bool stop = false;
        struct writer_ctx ctx[WRITERS];
        pthread_t threads[WRITERS];
        for (int i = 0; i < WRITERS; i++) {
            ctx[i] = (struct writer_ctx){d.url, round * 100 + i, &count, acked, &stop};
            pthread_create(&threads[i], NULL, writer_thread, &ctx[i]);
        }
        usleep(700000 + (useconds_t)round * 300000);
        kill(d.pid, SIGKILL);
        for (int i = 0; i < WRITERS; i++)
            pthread_join(threads[i], NULL);
        corral_daemon_stop(&d, SIGKILL);
        int n = atomic_load(&count);
        CHECK(n > 0);
        struct corral_daemon d2 = start_apiserver();
        struct corral_client *c = client_for(&d2);
        for (int i = 0; i < n && i < MAX_ACKED; i++) {
            char path[128];
            snprintf(path, sizeof(path), "/api/v1/namespaces/default/configmaps/%s", acked[i]);
            json_t *obj = NULL;
            int rc = corral_client_get(c, path, &obj);
            if (rc != 0)
                fprintf(stderr, "acknowledged %s is missing after kill -9\n", acked[i]);
            CHECK(rc == 0);
            CHECK_STR_EQ(json_string_value(json_object_get(json_object_get(obj, "data"), "name")),
                         acked[i]);
            CHECK(atol(meta_str(obj, "resourceVersion")) > 0);
            json_decref(obj);
        }
        fprintf(stderr, "round %d: %d acknowledged creates survived kill -9\n", round, n);
        corral_client_free(c);
        CHECK_INT_EQ(corral_daemon_stop(&d2, SIGTERM), 0);
    }
    free(acked);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        corral_test_set_exe(argv[1]);
    snprintf(data_dir, sizeof(data_dir), "%s/data", corral_test_tmpdir());
    static const struct corral_test tests[] = {
        CORRAL_TEST(crud_and_errors), CORRAL_TEST(list_selectors_paging), CORRAL_TEST(watch),
        CORRAL_TEST(watch_resume_and_gone),
        CORRAL_TEST(limits_and_health), CORRAL_TEST(kill9_loses_nothing)};
    const char *only = argc > 2 ? argv[2] : NULL;
    for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
        if (only && strcmp(only, tests[i].name) != 0)
            continue;
        fprintf(stderr, "-- %s\n", tests[i].name);
        tests[i].fn();
        fprintf(stderr, "ok %s\n", tests[i].name);
    }
    return 0;
}
