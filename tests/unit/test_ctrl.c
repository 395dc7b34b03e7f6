/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the controllers' building blocks: the hash map and its set helpers
 * (ctrl_map.c), pod summaries, the pod index and the scale-down order (ctrl_pods.c), and the
 * helpers every controller uses (ctrl_util.c: int-or-percent, conditions, store keys,
 * finalizers, owner references).
 */
#include "ctrl_extract.h"
#include "ctrl_map.h"
#include "ctrl_pods.h"
#include "ctrl_util.h"
#include "harness.h"
#include "meta.h"

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

static struct corral_ctrl_pod *apply(struct corral_ctrl_pods *idx, json_t *p)
{
    char *text = json_dumps(p, JSON_COMPACT);
    struct corral_blob *b = corral_blob_new(text, strlen(text));
    free(text);
    char key[128];
    snprintf(key, sizeof(key), "/registry/pods/default/%s", corral_meta_name(p));
    struct corral_store_event ev = {.type = CORRAL_EVENT_ADDED, .key = key, .value = b};
    struct corral_ctrl_pod *old = NULL;
    struct corral_ctrl_pod *sum = corral_ctrl_pods_apply(idx, &ev, &old);
    corral_ctrl_pod_free(old);
    corral_blob_unref(b);
    json_decref(p);
    return sum;
}

static void test_pod_index_and_delete_order(void)
{
    struct corral_ctrl_pods idx;
    corral_ctrl_pods_init(&idx, CORRAL_POD_LABELS, NULL, NULL);
    const char *t0 = "2026-01-01T00:00:00Z", *t1 = "2026-01-01T00:01:00Z";
    struct corral_ctrl_pod *p[6];
    p[0] = apply(&idx, pod("ready-old", "n1", "Running", true, t0, t0));
    p[1] = apply(&idx, pod("ready-new", "n1", "Running", true, t1, t0));
    p[2] = apply(&idx, pod("unbound", NULL, "Pending", false, t0, t0));
    p[3] = apply(&idx, pod("pending", "n1", "Pending", false, t0, t0));
    p[4] = apply(&idx, pod("notready", "n1", "Running", false, t0, t0));
    p[5] = apply(&idx, pod("notready-newer", "n1", "Running", false, t0, t1));
    for (int i = 0; i < 6; i++)
        CHECK(p[i] != NULL);
    CHECK_STR_EQ(p[0]->ns, "default");
    CHECK_STR_EQ(p[0]->name, "ready-old");
    CHECK(p[0]->labels == p[1]->labels); /* identical labels are stored once */
    CHECK_INT_EQ(corral_ctrl_map_size(corral_ctrl_multimap_get(&idx.by_node, "n1")), 5);
    CHECK_INT_EQ(corral_ctrl_map_size(corral_ctrl_multimap_get(&idx.orphans, "default")), 6);
    qsort(p, 6, sizeof(p[0]), corral_ctrl_pod_delete_order);
    static const char *const want[] = {"unbound",  "pending",   "notready-newer",
                                       "notready", "ready-new", "ready-old"};
    for (int i = 0; i < 6; i++)
        CHECK_STR_EQ(p[i]->name, want[i]);
    CHECK(corral_ctrl_pod_available(p[5], 30, corral_ctrl_parse_time(t0) + 60));
    CHECK(!corral_ctrl_pod_available(p[4], 90, corral_ctrl_parse_time(t1) + 60));
    corral_ctrl_pods_clear(&idx);
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
             CORRAL_TEST(keys_and_metadata), CORRAL_TEST(pod_index_and_delete_order))
