/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the controllers' building blocks: the hash map and its set helpers
 * (ctrl_map.c), pod summaries, the shared pod index (changes applied once and handed to every
 * controller, groups, catching up from the store) and the scale-down order (ctrl_pods.c), and
 * the helpers every controller uses (ctrl_util.c: int-or-percent, conditions, store keys,
 * finalizers, owner references).
 */
#include "ctrl_extract.h"
#include "ctrl_map.h"
#include "ctrl_pods.h"
#include "ctrl_util.h"
#include "harness.h"
#include "meta.h"
#include "store.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_map_basics(void)
{
    struct corral_ctrl_map m;
    corral_ctrl_map_init(&m);
    CHECK(corral_ctrl_map_get(&m, "a") == NULL);
    CHECK(corral_ctrl_map_del(&m, "a") == NULL);
    char key[32];
    for (uintptr_t i = 1; i <= 5000; i++) {
        snprintf(key, sizeof(key), "k%lu", (unsigned long)i);
        CHECK(corral_ctrl_map_put(&m, key, (void *)i) == NULL);
    }
    CHECK_INT_EQ(corral_ctrl_map_size(&m), 5000);
    CHECK(corral_ctrl_map_put(&m, "k7", (void *)70) == (void *)7); /* replaced, old returned */
    CHECK(corral_ctrl_map_get(&m, "k7") == (void *)70);
    /* deleting every other key leaves tombstones that lookups and inserts step over */
    for (uintptr_t i = 1; i <= 5000; i += 2) {
        snprintf(key, sizeof(key), "k%lu", (unsigned long)i);
        CHECK(corral_ctrl_map_del(&m, key) != NULL);
    }
    CHECK_INT_EQ(corral_ctrl_map_size(&m), 2500);
    CHECK(corral_ctrl_map_get(&m, "k1") == NULL);
    CHECK(corral_ctrl_map_get(&m, "k2") == (void *)2);
    for (uintptr_t i = 1; i <= 5000; i += 2) {
        snprintf(key, sizeof(key), "k%lu", (unsigned long)i);
        CHECK(corral_ctrl_map_put(&m, key, (void *)i) == NULL);
    }
    size_t pos = 0, seen = 0;
    const char *k;
    void *v;
    uintptr_t sum = 0;
    while (corral_ctrl_map_next(&m, &pos, &k, &v)) {
        seen++;
        sum += (uintptr_t)v;
        CHECK(k[0] == 'k');
    }
    CHECK_INT_EQ(seen, 5000);
    CHECK_INT_EQ(sum, 5000u * 5001u / 2u); /* k7 was deleted and put back as 7 */
    corral_ctrl_map_clear(&m, NULL);
    CHECK_INT_EQ(corral_ctrl_map_size(&m), 0);
}

static void test_map_delete_while_iterating(void)
{
    struct corral_ctrl_map m;
    corral_ctrl_map_init(&m);
    for (int i = 0; i < 100; i++) {
        char key[16];
        snprintf(key, sizeof(key), "%d", i);
        corral_ctrl_map_put(&m, key, CORRAL_CTRL_MAP_PRESENT);
    }
    size_t pos = 0;
    const char *k;
    while (corral_ctrl_map_next(&m, &pos, &k, NULL))
        if (atoi(k) % 3 == 0)
            corral_ctrl_map_del(&m, k);
    CHECK_INT_EQ(corral_ctrl_map_size(&m), 66);
    corral_ctrl_map_clear(&m, NULL);
}

static void test_multimap(void)
{
    struct corral_ctrl_map mm;
    corral_ctrl_map_init(&mm);
    CHECK(corral_ctrl_multimap_add(&mm, "rs-1", "pod-a") == 0);
    CHECK(corral_ctrl_multimap_add(&mm, "rs-1", "pod-b") == 0);
    CHECK(corral_ctrl_multimap_add(&mm, "rs-1", "pod-b") == 0); /* a set: no duplicate */
    CHECK(corral_ctrl_multimap_add(&mm, "rs-2", "pod-c") == 0);
    CHECK_INT_EQ(corral_ctrl_map_size(corral_ctrl_multimap_get(&mm, "rs-1")), 2);
    corral_ctrl_multimap_del(&mm, "rs-2", "pod-c");
    CHECK(corral_ctrl_multimap_get(&mm, "rs-2") == NULL); /* empty sets go */
    corral_ctrl_multimap_del(&mm, "rs-9", "nothing");
    corral_ctrl_multimap_clear(&mm);
}

static void test_int_or_percent(void)
{
    int v;
    json_t *pct = json_string("25%"), *num = json_integer(3), *str = json_string("2");
    json_t *bad = json_string("25 percent"), *neg = json_integer(-1);
    CHECK(corral_ctrl_int_or_percent(pct, 10, true, 0, &v) == 0 && v == 3);  /* 2.5 up */
    CHECK(corral_ctrl_int_or_percent(pct, 10, false, 0, &v) == 0 && v == 2); /* 2.5 down */
    CHECK(corral_ctrl_int_or_percent(pct, 4, false, 0, &v) == 0 && v == 1);
    CHECK(corral_ctrl_int_or_percent(num, 10, true, 0, &v) == 0 && v == 3);
    CHECK(corral_ctrl_int_or_percent(str, 10, true, 0, &v) == 0 && v == 2);
    CHECK(corral_ctrl_int_or_percent(NULL, 10, true, 7, &v) == 0 && v == 7);
    CHECK(corral_ctrl_int_or_percent(bad, 10, true, 0, &v) < 0);
    CHECK(corral_ctrl_int_or_percent(neg, 10, true, 0, &v) < 0);
    json_decref(pct);
    json_decref(num);
    json_decref(str);
    json_decref(bad);
    json_decref(neg);
}

static void test_conditions(void)
{
    json_t *st = json_object();
    CHECK(corral_ctrl_set_condition(st, "Available", "False", "MinimumReplicasUnavailable", "no",
                                    "lastUpdateTime", 1000));
    json_t *c = corral_ctrl_condition(st, "Available");
    CHECK_STR_EQ(json_string_value(json_object_get(c, "lastTransitionTime")),
                 "1970-01-01T00:16:40Z");
    /* the same again is no change */
    CHECK(!corral_ctrl_set_condition(st, "Available", "False", "MinimumReplicasUnavailable", "no",
                                     "lastUpdateTime", 2000));
    /* a new message keeps the transition time; a new status moves it */
    CHECK(corral_ctrl_set_condition(st, "Available", "False", "MinimumReplicasUnavailable",
                                    "still no", "lastUpdateTime", 2000));
    CHECK_STR_EQ(json_string_value(json_object_get(c, "lastTransitionTime")),
                 "1970-01-01T00:16:40Z");
    CHECK_STR_EQ(json_string_value(json_object_get(c, "lastUpdateTime")), "1970-01-01T00:33:20Z");
    CHECK(corral_ctrl_set_condition(st, "Available", "True", "MinimumReplicasAvailable", "yes",
                                    NULL, 3000));
    CHECK_STR_EQ(json_string_value(json_object_get(c, "lastTransitionTime")),
                 "1970-01-01T00:50:00Z");
    CHECK(corral_ctrl_remove_condition(st, "Available"));
    CHECK(!corral_ctrl_remove_condition(st, "Available"));
    json_decref(st);
}

static void test_keys_and_metadata(void)
{
    char buf[256];
    const char *ns, *name;
    CHECK(corral_ctrl_split_key("/registry/apps/replicasets/prod/web-1", true, buf, sizeof(buf),
                                &ns, &name) == 0);
    CHECK_STR_EQ(ns, "prod");
    CHECK_STR_EQ(name, "web-1");
    CHECK(corral_ctrl_split_key("/registry/nodes/gpu-1", false, buf, sizeof(buf), &ns, &name) == 0);
    CHECK(ns == NULL);
    CHECK_STR_EQ(name, "gpu-1");
    CHECK(corral_ctrl_split_key("/registry/nodes/", false, buf, sizeof(buf), &ns, &name) < 0);

    json_t *obj = json_loads("{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"metadata\":"
                             "{\"name\":\"rs\",\"uid\":\"u-1\",\"finalizers\":[\"a\",\"b\"],"
                             "\"ownerReferences\":[{\"uid\":\"x\"},{\"uid\":\"d-1\","
                             "\"controller\":true}]}}",
                             0, NULL);
    CHECK(obj != NULL);
    CHECK(corral_ctrl_has_finalizer(obj, "b"));
    CHECK(corral_ctrl_remove_finalizer(obj, "a"));
    CHECK(!corral_ctrl_has_finalizer(obj, "a"));
    CHECK_STR_EQ(json_string_value(json_object_get(corral_ctrl_controller_ref(obj), "uid")), "d-1");
    json_t *ref = corral_ctrl_owner_ref(obj, true, true);
    CHECK_STR_EQ(json_string_value(json_object_get(ref, "kind")), "ReplicaSet");
    CHECK_STR_EQ(json_string_value(json_object_get(ref, "uid")), "u-1");
    CHECK(json_is_true(json_object_get(ref, "blockOwnerDeletion")));
    json_decref(ref);
    json_decref(obj);
}

static json_t *pod(const char *name, const char *node, const char *phase, bool ready,
                   const char *ready_since, const char *created)
{
    json_t *p = json_pack("{s:{s:s, s:s, s:s, s:s, s:{s:s}}, s:{}, s:{s:s, s:[{s:s, s:s, s:s}]}}",
                          "metadata", "name", name, "namespace", "default", "uid", name,
                          "creationTimestamp", created, "labels", "app", "web", "spec", "status",
                          "phase", phase, "conditions", "type", "Ready", "status",
                          ready ? "True" : "False", "lastTransitionTime", ready_since);
    if (node)
        json_object_set_new(json_object_get(p, "spec"), "nodeName", json_string(node));
    return p;
}

static int64_t test_rev;

/* A pod event at the next revision, as the store would deliver it. */
static struct corral_store_event pod_event(enum corral_event_type type, json_t *now, json_t *before)
{
    static char key[128];
    json_t *named = now ? now : before;
    snprintf(key, sizeof(key), "/registry/pods/default/%s", corral_meta_name(named));
    struct corral_store_event ev = {.type = type, .rev = ++test_rev, .key = strdup(key)};
    char *text = now ? json_dumps(now, JSON_COMPACT) : NULL;
    ev.value = text ? corral_blob_new(text, strlen(text)) : NULL;
    free(text);
    text = before ? json_dumps(before, JSON_COMPACT) : NULL;
    ev.prev = text ? corral_blob_new(text, strlen(text)) : NULL;
    free(text);
    if (type == CORRAL_EVENT_DELETED) { /* a deleted object's value is its last state */
        corral_blob_unref(ev.value);
        ev.value = corral_blob_ref(ev.prev);
    }
    return ev;
}

/* Applies a creation of p (stolen) and returns the index's summary (borrowed from it). */
static struct corral_ctrl_pod *apply(struct corral_ctrl_pods *idx, json_t *p)
{
    struct corral_store_event ev = pod_event(CORRAL_EVENT_ADDED, p, NULL);
    struct corral_ctrl_pod *old = NULL, *now = NULL;
    CHECK_INT_EQ(corral_ctrl_pods_change(idx, &ev, &old, &now), 0);
    CHECK(old == NULL);
    corral_store_event_clear(&ev);
    json_decref(p);
    corral_ctrl_pod_unref(now); /* the index keeps its own */
    return now;
}

static void test_pod_index_and_delete_order(void)
{
    struct corral_ctrl_pods *idx;
    CHECK_INT_EQ(corral_ctrl_pods_new(&idx), 0);
    const char *t0 = "2026-01-01T00:00:00Z", *t1 = "2026-01-01T00:01:00Z";
    struct corral_ctrl_pod *p[6];
    p[0] = apply(idx, pod("ready-old", "n1", "Running", true, t0, t0));
    p[1] = apply(idx, pod("ready-new", "n1", "Running", true, t1, t0));
    p[2] = apply(idx, pod("unbound", NULL, "Pending", false, t0, t0));
    p[3] = apply(idx, pod("pending", "n1", "Pending", false, t0, t0));
    p[4] = apply(idx, pod("notready", "n1", "Running", false, t0, t0));
    p[5] = apply(idx, pod("notready-newer", "n1", "Running", false, t0, t1));
    for (int i = 0; i < 6; i++)
        CHECK(p[i] != NULL);
    CHECK_STR_EQ(p[0]->ns, "default");
    CHECK_STR_EQ(p[0]->name, "ready-old");
    CHECK_STR_EQ(p[0]->key, "/registry/pods/default/ready-old");
    CHECK(p[0]->labels == p[1]->labels); /* identical labels are stored once */
    struct corral_ctrl_pod **got;
    long n = corral_ctrl_pods_on_node(idx, "n1", &got);
    CHECK_INT_EQ(n, 5);
    corral_ctrl_pods_release(got, n);
    n = corral_ctrl_pods_orphans(idx, "default", &got);
    CHECK_INT_EQ(n, 6);
    corral_ctrl_pods_release(got, n);
    qsort(p, 6, sizeof(p[0]), corral_ctrl_pod_delete_order);
    static const char *const want[] = {"unbound",  "pending",   "notready-newer",
                                       "notready", "ready-new", "ready-old"};
    for (int i = 0; i < 6; i++)
        CHECK_STR_EQ(p[i]->name, want[i]);
    CHECK(corral_ctrl_pod_available(p[5], 30, corral_ctrl_parse_time(t0) + 60));
    CHECK(!corral_ctrl_pod_available(p[4], 90, corral_ctrl_parse_time(t1) + 60));
    corral_ctrl_pods_free(idx);
}

static json_t *owned_pod(const char *name, const char *node, const char *owner)
{
    json_t *p = pod(name, node, "Running", true, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z");
    if (owner)
        json_object_set_new(json_object_get(p, "metadata"), "ownerReferences",
                            json_pack("[{s:s, s:s, s:s, s:b}]", "kind", "ReplicaSet", "name",
                                      "rs", "uid", owner, "controller", 1));
    return p;
}

enum group { ON_NODE, OWNED, ORPHANS, IN_NS, ALL };

/* How many pods the index has in a group. */
static long count(struct corral_ctrl_pods *idx, enum group g, const char *name)
{
    struct corral_ctrl_pod **pods = NULL;
    long n = g == ON_NODE   ? corral_ctrl_pods_on_node(idx, name, &pods)
             : g == OWNED   ? corral_ctrl_pods_owned(idx, name, &pods)
             : g == ORPHANS ? corral_ctrl_pods_orphans(idx, name, &pods)
             : g == IN_NS   ? corral_ctrl_pods_in_ns(idx, name, &pods)
                            : corral_ctrl_pods_all(idx, &pods);
    CHECK(n >= 0);
    for (long i = 0; i < n; i++)
        CHECK(pods[i] != NULL);
    corral_ctrl_pods_release(pods, n);
    return n;
}

/*
 * The first controller to observe an event applies it; the others get the same pair of
 * summaries from the ring, and one too far behind reads an equal pair from the event.
 */
static void test_pod_index_changes(void)
{
    struct corral_ctrl_pods *idx;
    CHECK_INT_EQ(corral_ctrl_pods_new(&idx), 0);
    test_rev = 0;
    json_t *a1 = owned_pod("a", "n1", "u1"), *a2 = owned_pod("a", "n2", "u1");
    json_t *b = owned_pod("b", NULL, NULL);
    struct corral_store_event ev[4] = {
        pod_event(CORRAL_EVENT_ADDED, a1, NULL), pod_event(CORRAL_EVENT_ADDED, b, NULL),
        pod_event(CORRAL_EVENT_MODIFIED, a2, a1), pod_event(CORRAL_EVENT_DELETED, NULL, b)};
    struct corral_ctrl_pod *old[4], *now[4];
    for (int i = 0; i < 4; i++)
        CHECK_INT_EQ(corral_ctrl_pods_change(idx, &ev[i], &old[i], &now[i]), 0);
    CHECK(old[0] == NULL && old[1] == NULL && now[3] == NULL);
    CHECK(old[2] == now[0] && old[3] == now[1]);
    CHECK_STR_EQ(now[2]->node, "n2");
    CHECK_STR_EQ(now[0]->owner_uid, "u1");
    CHECK_STR_EQ(now[0]->owner_kind, "ReplicaSet");
    CHECK(corral_ctrl_pod_owned_by(now[0], "ReplicaSet"));
    CHECK(now[1]->owner_uid == NULL);
    CHECK_INT_EQ(count(idx, ON_NODE, "n1"), 0);
    CHECK_INT_EQ(count(idx, ON_NODE, "n2"), 1);
    CHECK_INT_EQ(count(idx, OWNED, "u1"), 1);
    CHECK_INT_EQ(count(idx, ORPHANS, "default"), 0);
    CHECK_INT_EQ(count(idx, IN_NS, "default"), 1);
    CHECK_INT_EQ(count(idx, ALL, NULL), 1);
    struct corral_ctrl_pod *cur = corral_ctrl_pods_get(idx, "/registry/pods/default/a");
    CHECK(cur == now[2]);
    corral_ctrl_pod_unref(cur);
    CHECK(corral_ctrl_pods_get(idx, "/registry/pods/default/b") == NULL);
    /* a second controller: the very same summaries */
    for (int i = 0; i < 4; i++) {
        struct corral_ctrl_pod *o, *n;
        CHECK_INT_EQ(corral_ctrl_pods_change(idx, &ev[i], &o, &n), 0);
        CHECK(o == old[i] && n == now[i]);
        corral_ctrl_pod_unref(o);
        corral_ctrl_pod_unref(n);
    }
    /* many more events push these out of the ring: a laggard reads them from the event */
    for (int i = 0; i < 5000; i++) {
        char name[32];
        snprintf(name, sizeof(name), "x%d", i % 50);
        json_t *p = owned_pod(name, "n3", NULL);
        struct corral_store_event e = pod_event(CORRAL_EVENT_ADDED, p, NULL);
        struct corral_ctrl_pod *o, *n;
        CHECK_INT_EQ(corral_ctrl_pods_change(idx, &e, &o, &n), 0);
        corral_ctrl_pod_unref(o);
        corral_ctrl_pod_unref(n);
        corral_store_event_clear(&e);
        json_decref(p);
    }
    struct corral_ctrl_pod *o, *n;
    CHECK_INT_EQ(corral_ctrl_pods_change(idx, &ev[2], &o, &n), 0);
    CHECK(o != old[2] && n != now[2]);
    CHECK_STR_EQ(o->node, "n1");
    CHECK_STR_EQ(n->node, "n2");
    CHECK_STR_EQ(n->key, now[2]->key);
    CHECK(n->labels == now[2]->labels);
    corral_ctrl_pod_unref(o);
    corral_ctrl_pod_unref(n);
    CHECK_INT_EQ(count(idx, ON_NODE, "n3"), 50);
    struct corral_ctrl_pods_stats st;
    corral_ctrl_pods_stats(idx, &st);
    CHECK_INT_EQ(st.pods, 51);
    CHECK_INT_EQ(st.rev, test_rev);
    CHECK(st.bytes > 51 * sizeof(struct corral_ctrl_pod));
    corral_ctrl_pods_drop(idx);
    corral_ctrl_pods_stats(idx, &st);
    CHECK_INT_EQ(st.pods, 0);
    CHECK_INT_EQ(st.rev, 0);
    for (int i = 0; i < 4; i++) {
        corral_ctrl_pod_unref(old[i]);
        corral_ctrl_pod_unref(now[i]);
        corral_store_event_clear(&ev[i]);
    }
    json_decref(a1);
    json_decref(a2);
    json_decref(b);
    corral_ctrl_pods_free(idx);
}

static void create_pod(struct corral_store *st, const char *name, const char *node)
{
    char key[128];
    snprintf(key, sizeof(key), "/registry/pods/default/%s", name);
    CHECK_INT_EQ(corral_store_create(st, key, owned_pod(name, node, NULL), NULL), 0);
}

/* A (re)listing controller brings the index up from the store's history, or from a list. */
static void test_pod_index_catch_up(void)
{
    char dir[] = "/tmp/corral-test-ctrl-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    struct corral_store *st;
    CHECK_INT_EQ(corral_store_open_sqlite(dir, &st), 0);
    struct corral_ctrl_pods *idx;
    CHECK_INT_EQ(corral_ctrl_pods_new(&idx), 0);
    create_pod(st, "p1", "n1");
    create_pod(st, "p2", "n1");
    CHECK_INT_EQ(corral_store_create(st, "/registry/nodes/n1", json_pack("{s:s}", "kind", "Node"),
                                     NULL),
                 0);
    CHECK_INT_EQ(corral_ctrl_pods_catch_up(idx, st, corral_store_revision(st)), 0);
    CHECK_INT_EQ(count(idx, ON_NODE, "n1"), 2);
    struct corral_ctrl_pods_stats s;
    corral_ctrl_pods_stats(idx, &s);
    CHECK_INT_EQ(s.rev, corral_store_revision(st)); /* past the Node too */
    CHECK_INT_EQ(corral_store_delete(st, "/registry/pods/default/p1", 0, NULL), 0);
    create_pod(st, "p3", "n2");
    CHECK_INT_EQ(corral_ctrl_pods_catch_up(idx, st, corral_store_revision(st)), 0);
    CHECK_INT_EQ(count(idx, ON_NODE, "n1"), 1);
    CHECK_INT_EQ(count(idx, ON_NODE, "n2"), 1);
    /* the history no longer reaches back: a reload from a list */
    CHECK_INT_EQ(corral_store_delete(st, "/registry/pods/default/p2", 0, NULL), 0);
    create_pod(st, "p4", "n2");
    CHECK_INT_EQ(corral_store_compact(st, corral_store_revision(st)), 0);
    CHECK_INT_EQ(corral_ctrl_pods_catch_up(idx, st, corral_store_revision(st)), 0);
    CHECK_INT_EQ(count(idx, ON_NODE, "n1"), 0);
    CHECK_INT_EQ(count(idx, ON_NODE, "n2"), 2);
    CHECK_INT_EQ(count(idx, ALL, NULL), 2);
    corral_ctrl_pods_stats(idx, &s);
    CHECK_INT_EQ(s.rev, corral_store_revision(st));
    corral_ctrl_pods_free(idx);
    corral_store_close(st);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

static void check_extract(const char *text, const char *const *paths, const char *want)
{
    json_t *got = corral_ctrl_extract(text, strlen(text), paths);
    if (!want) {
        CHECK(got == NULL);
        return;
    }
    json_t *w = json_loads(want, 0, NULL);
    CHECK(w != NULL);
    if (!got || !json_equal(got, w)) {
        char *g = got ? json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        fprintf(stderr, "got  %s\nwant %s\n", g ? g : "NULL", want);
        free(g);
        abort();
    }
    json_decref(got);
    json_decref(w);
}

static void test_extract(void)
{
    const char *pod =
        "{\"kind\":\"Pod\", \"metadata\": {\"name\":\"a\\\"b}\",\"labels\":{\"x.y/z\":\"1\"},"
        "\"annotations\":{\"note\":\"{[\\\\\\\"]}\"},\"ownerReferences\":[{\"uid\":\"u\","
        "\"controller\":true}]},\n \"spec\":{\"containers\":[{\"name\":\"c\",\"ports\":[]}],"
        "\"nodeName\":\"n1\",\"priority\":-5,\"x\":null,\"y\":1.5e3},"
        "\"status\":{\"phase\":\"Running\",\"conditions\":[{\"type\":\"Ready\"}]}}";
    check_extract(pod, (const char *const[]){"metadata.ownerReferences", "status.phase", NULL},
                  "{\"metadata\":{\"ownerReferences\":[{\"uid\":\"u\",\"controller\":true}]},"
                  "\"status\":{\"phase\":\"Running\"}}");
    check_extract(pod, (const char *const[]){"metadata.name", "metadata.labels", "kind", NULL},
                  "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\\\"b}\",\"labels\":"
                  "{\"x.y/z\":\"1\"}}}");
    check_extract(pod,
                  (const char *const[]){"spec.nodeName", "spec.priority", "spec.y", "spec.x", NULL},
                  "{\"spec\":{\"nodeName\":\"n1\",\"priority\":-5,\"y\":1500.0,\"x\":null}}");
    /* absent members, and paths through scalars, give nothing */
    check_extract(pod, (const char *const[]){"metadata.uid", "kind.x", "spec.nodeName.z", NULL},
                  "{\"metadata\":{},\"spec\":{}}");
    check_extract("{}", (const char *const[]){"a", NULL}, "{}");
    check_extract("[1]", (const char *const[]){"a", NULL}, NULL);
    check_extract("{\"a\":{\"b\":1}", (const char *const[]){"a.b", NULL}, NULL);
    check_extract("{\"a\":\"x", (const char *const[]){"b", NULL}, NULL);
}

CORRAL_TESTS(CORRAL_TEST(map_basics), CORRAL_TEST(extract), CORRAL_TEST(map_delete_while_iterating),
             CORRAL_TEST(multimap), CORRAL_TEST(int_or_percent), CORRAL_TEST(conditions),
             CORRAL_TEST(keys_and_metadata), CORRAL_TEST(pod_index_and_delete_order),
             CORRAL_TEST(pod_index_changes), CORRAL_TEST(pod_index_catch_up))
