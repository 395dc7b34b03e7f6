/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the store's in-memory structures: the ordered map (cache_map.c) checked
 * against a plain sorted array through long random sequences of inserts, removes and seeks,
 * the watch-history ring (cache_history.c) across growth and wrap-around, the stamped
 * documents (store.c), and packing (cache_pack.c): round trips with and without dictionaries,
 * the kind that picks a class, dictionaries trained and retrained while older objects stay
 * decodable, and threads packing at once.
 */
#include "cache_history.h"
#include "cache_map.h"
#include "cache_pack.h"
#include "harness.h"
#include "store_backend.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>

/* xorshift64*, deterministic so that a failure reproduces */
static uint64_t rng_state = 88172645463325252ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

/* The reference: a sorted array of keys. */
struct ref {
    char **keys;
    size_t n;
};

static size_t ref_bound(const struct ref *r, const char *key, bool *eq)
{
    size_t lo = 0, hi = r->n;
    *eq = false;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(r->keys[mid], key);
        if (c == 0)
            *eq = true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void ref_insert(struct ref *r, const char *key)
{
    bool eq;
    size_t i = ref_bound(r, key, &eq);
    CHECK(!eq);
    r->keys = realloc(r->keys, (r->n + 1) * sizeof(*r->keys));
    memmove(&r->keys[i + 1], &r->keys[i], (r->n - i) * sizeof(*r->keys));
    r->keys[i] = strdup(key);
    r->n++;
}

static void ref_remove(struct ref *r, size_t i)
{
    free(r->keys[i]);
    memmove(&r->keys[i], &r->keys[i + 1], (r->n - i - 1) * sizeof(*r->keys));
    r->n--;
}

static void random_key(char *buf, size_t len, unsigned range)
{
    snprintf(buf, len, "/registry/pods/ns%u/p%06u", (unsigned)(rng() % 4),
             (unsigned)(rng() % range));
}

static void check_same(const struct corral_cache_map *m, const struct ref *r)
{
    CHECK_INT_EQ(m->count, r->n);
    struct corral_cache_pos pos;
    corral_cache_map_seek(m, "", false, &pos);
    size_t i = 0;
    for (struct corral_cache_entry *e; (e = corral_cache_map_at(m, &pos));
         corral_cache_map_next(m, &pos))
        CHECK_STR_EQ(e->key, r->keys[i++]);
    CHECK_INT_EQ(i, r->n);
}

static void check_seek(const struct corral_cache_map *m, const struct ref *r)
{
    char key[64];
    random_key(key, sizeof(key), 5000);
    bool excl = rng() & 1, eq;
    size_t i = ref_bound(r, key, &eq);
    if (excl && eq)
        i++;
    struct corral_cache_pos pos;
    corral_cache_map_seek(m, key, excl, &pos);
    struct corral_cache_entry *e = corral_cache_map_at(m, &pos);
    if (i == r->n)
        CHECK(e == NULL);
    else
        CHECK_STR_EQ(e->key, r->keys[i]);
}

static void map_step(struct corral_cache_map *m, struct ref *r, unsigned insert_pct)
{
    char key[64];
    if (rng() % 100 < insert_pct || r->n == 0) {
        random_key(key, sizeof(key), 5000);
        struct corral_cache_entry *e =
            corral_cache_entry_new(key, corral_packed_raw("{}", 2), 1, 1);
        bool eq;
        ref_bound(r, key, &eq);
        if (eq) {
            CHECK_INT_EQ(corral_cache_map_insert(m, e), -EEXIST);
            corral_cache_entry_free(e);
        } else {
            CHECK_INT_EQ(corral_cache_map_insert(m, e), 0);
            ref_insert(r, key);
        }
    } else {
        size_t i = rng() % r->n;
        snprintf(key, sizeof(key), "%s", r->keys[i]);
        struct corral_cache_entry *e = corral_cache_map_remove(m, key);
        CHECK(e != NULL);
        CHECK_STR_EQ(e->key, key);
        corral_cache_entry_free(e);
        ref_remove(r, i);
        CHECK(corral_cache_map_remove(m, key) == NULL);
    }
}

static void test_map_random(void)
{
    struct corral_cache_map m;
    struct ref r = {0};
    corral_cache_map_init(&m);
    /* grow, churn, shrink to empty, grow again */
    unsigned phases[][2] = {{8000, 90}, {8000, 50}, {12000, 5}, {3000, 80}};
    for (size_t p = 0; p < sizeof(phases) / sizeof(phases[0]); p++) {
        for (unsigned i = 0; i < phases[p][0]; i++) {
            map_step(&m, &r, phases[p][1]);
            if (i % 500 == 0) {
                check_same(&m, &r);
                for (int k = 0; k < 20; k++)
                    check_seek(&m, &r);
            }
            if (r.n) {
                const char *k = r.keys[rng() % r.n];
                struct corral_cache_entry *e = corral_cache_map_get(&m, k);
                CHECK(e != NULL);
                CHECK_STR_EQ(e->key, k);
            }
        }
        check_same(&m, &r);
    }
    CHECK(corral_cache_map_get(&m, "/nope") == NULL);
    for (size_t i = 0; i < r.n; i++)
        free(r.keys[i]);
    free(r.keys);
    corral_cache_map_destroy(&m);
}

static void test_map_sequential(void)
{
    /* appends in key order keep leaves full; reserve makes inserts allocation-free */
    struct corral_cache_map m;
    corral_cache_map_init(&m);
    enum { N = 10000 };
    CHECK_INT_EQ(corral_cache_map_reserve(&m, N), 0);
    for (int i = 0; i < N; i++) {
        char key[32];
        snprintf(key, sizeof(key), "/k/%06d", i);
        struct corral_cache_entry *e = corral_cache_entry_new(key, corral_packed_raw("1", 1), i, i);
        CHECK_INT_EQ(corral_cache_map_insert(&m, e), 0);
    }
    CHECK_INT_EQ(m.count, N);
    CHECK_INT_EQ(m.nleaves, (N + CORRAL_CACHE_LEAF_MAX - 1) / CORRAL_CACHE_LEAF_MAX);
    corral_cache_map_trim(&m, 0);
    CHECK_INT_EQ(m.nspare, 0);
    /* remove every other key, then all: leaves merge and disappear */
    for (int i = 0; i < N; i += 2) {
        char key[32];
        snprintf(key, sizeof(key), "/k/%06d", i);
        corral_cache_entry_free(corral_cache_map_remove(&m, key));
    }
    CHECK_INT_EQ(m.count, N / 2);
    CHECK(m.nleaves <= (N + CORRAL_CACHE_LEAF_MAX - 1) / CORRAL_CACHE_LEAF_MAX);
    for (int i = 1; i < N; i += 2) {
        char key[32];
        snprintf(key, sizeof(key), "/k/%06d", i);
        corral_cache_entry_free(corral_cache_map_remove(&m, key));
    }
    CHECK_INT_EQ(m.count, 0);
    CHECK_INT_EQ(m.nleaves, 0);
    corral_cache_map_destroy(&m);
}

static void push_event(struct corral_cache_history *h, int64_t rev, bool with_prev)
{
    struct corral_cache_event ev = {
        .rev = rev,
        .prev_rev = with_prev ? rev - 1 : 0,
        .key = strdup("/k/a"),
        .value = corral_packed_raw("{\"v\":1}", 7),
        .prev = with_prev ? corral_packed_raw("{}", 2) : NULL,
        .type = with_prev ? CORRAL_EVENT_MODIFIED : CORRAL_EVENT_ADDED,
    };
    CHECK_INT_EQ(corral_cache_history_push(h, &ev), 0);
    CHECK(ev.key == NULL);
}

static void test_history_ring(void)
{
    struct corral_cache_history h;
    corral_cache_history_init(&h);
    int64_t next = 1, oldest = 1;
    /* push and pop at different rates so that the ring wraps while it grows */
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < 37; i++, next += 2)
            push_event(&h, next, i % 2);
        for (int i = 0; i < 29 && h.n; i++) {
            struct corral_cache_event ev;
            CHECK_INT_EQ(corral_cache_history_pop(&h, &ev), 0);
            CHECK_INT_EQ(ev.rev, oldest);
            CHECK_INT_EQ(h.compacted, oldest);
            oldest += 2;
            corral_cache_event_clear(&ev);
        }
        uint64_t bytes = 0;
        for (size_t i = 0; i < h.n; i++) {
            const struct corral_cache_event *ev = corral_cache_history_at(&h, i);
            CHECK_INT_EQ(ev->rev, oldest + 2 * (int64_t)i);
            bytes += corral_cache_event_bytes(ev);
        }
        CHECK_INT_EQ(h.bytes, bytes);
        /* find: the first event after a revision, also between two (revisions are odd) */
        CHECK_INT_EQ(corral_cache_history_find(&h, oldest - 1), 0);
        CHECK_INT_EQ(corral_cache_history_find(&h, oldest), 1);
        CHECK_INT_EQ(corral_cache_history_find(&h, oldest + 1), 1);
        CHECK_INT_EQ(corral_cache_history_find(&h, next), h.n);
    }
    corral_cache_history_destroy(&h);
    struct corral_cache_event ev;
    CHECK_INT_EQ(corral_cache_history_pop(&h, &ev), -ENOENT);
}

static void test_doc_stamp(void)
{
    json_t *o = json_pack("{s:s, s:{s:s}, s:{s:s}}", "kind", "Pod", "metadata", "name", "a",
                          "status", "resourceVersion",
                          "\x01"
                          "abc");
    struct corral_store_doc d;
    CHECK_INT_EQ(corral_store_doc_make(o, &d), 0);
    json_decref(o);
    struct corral_blob *b = corral_store_doc_stamp(&d, 42);
    CHECK_STR_EQ(b->data, "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\",\"resourceVersion\":"
                          "\"42\"},\"status\":{\"resourceVersion\":\"\\u0001abc\"}}");
    CHECK(corral_store_blob_check_rev(b, 42));
    CHECK(!corral_store_blob_check_rev(b, 4));
    CHECK(!corral_store_blob_check_rev(b, 420));
    struct corral_blob *r = corral_store_blob_restamp(b, 1234567890123);
    CHECK_STR_EQ(r->data, "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\",\"resourceVersion\":"
                          "\"1234567890123\"},\"status\":{\"resourceVersion\":\"\\u0001abc\"}}");
    CHECK_INT_EQ(r->len, strlen(r->data));
    CHECK(corral_store_blob_check_rev(r, 1234567890123));
    /* a blob the store did not stamp cannot be restamped */
    struct corral_blob *plain = corral_blob_new("{\"a\":1}", 7);
    CHECK(corral_store_blob_restamp(plain, 5) == NULL);
    CHECK(!corral_store_blob_check_rev(plain, 5));
    corral_blob_unref(plain);
    corral_blob_unref(r);
    corral_blob_unref(b);
    corral_store_doc_clear(&d);

    json_t *bad = json_array();
    CHECK_INT_EQ(corral_store_doc_make(bad, &d), -EINVAL);
    json_decref(bad);
    bad = json_pack("{s:[]}", "metadata");
    CHECK_INT_EQ(corral_store_doc_make(bad, &d), -EINVAL);
    json_decref(bad);
    CHECK_INT_EQ(corral_store_check_key("/registry/pods/a"), 0);
    CHECK_INT_EQ(corral_store_check_key("/registry/pods/"), -EINVAL);
    CHECK_INT_EQ(corral_store_check_prefix("/registry/pods/"), 0);
    CHECK_INT_EQ(corral_store_check_prefix("/"), 0);
    CHECK_INT_EQ(corral_store_check_prefix("/registry"), -EINVAL);
}

/* ---- packing ------------------------------------------------------------------------------ */

/* A stored-pod-like document (about 1.2 KB) with rv_off at its resourceVersion's digits. */
static size_t pod_text(char *buf, size_t cap, unsigned i, const char *image, size_t *rv_off)
{
    int n = snprintf(
        buf, cap,
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"web-%u\",\"namespace\":"
        "\"default\",\"uid\":\"%08x-1d5d-41ab-80f7-%012" PRIx64 "\",\"labels\":{\"app\":\"web\"},"
        "\"creationTimestamp\":\"2026-11-25T01:%02u:%02uZ\",\"managedFields\":[{\"manager\":"
        "\"kubectl\",\"operation\":\"Update\",\"apiVersion\":\"v1\",\"fieldsType\":\"FieldsV1\","
        "\"fieldsV1\":{\"f:metadata\":{\"f:labels\":{\"f:app\":{}}},\"f:spec\":{\"f:containers\":"
        "{\"k:{\\\"name\\\":\\\"server\\\"}\":{\"f:name\":{},\"f:image\":{}}}}}}],"
        "\"resourceVersion\":\"%u\"},\"spec\":{\"containers\":[{\"name\":\"server\",\"image\":"
        "\"%s\",\"resources\":{\"limits\":{\"nvidia.com/gpu\":\"1\"}},\"imagePullPolicy\":"
        "\"IfNotPresent\",\"terminationMessagePath\":\"/dev/termination-log\"}],\"restartPolicy\":"
        "\"Always\",\"terminationGracePeriodSeconds\":30,\"dnsPolicy\":\"ClusterFirst\","
        "\"tolerations\":[{\"key\":\"node.kubernetes.io/not-ready\",\"operator\":\"Exists\","
        "\"effect\":\"NoExecute\",\"tolerationSeconds\":300}]},\"status\":{\"phase\":\"Pending\","
        "\"qosClass\":\"BestEffort\"}}",
        i, (unsigned)(rng() >> 32), (uint64_t)(rng() & 0xffffffffffffull), (i / 60) % 60, i % 60,
        1000 + i,
        image);
    CHECK(n > 0 && (size_t)n < cap);
    char digits[16];
    snprintf(digits, sizeof(digits), "\"%u\"}", 1000 + i);
    const char *at = strstr(buf, digits);
    CHECK(at != NULL);
    *rv_off = (size_t)(at - buf) + 1;
    return (size_t)n;
}

/* Checks that p unpacks at rev to text with text's own digits at rv_off replaced by rev. */
static void check_unpack(const struct corral_packed *p, const char *text, size_t len,
                         size_t rv_off, size_t rv_len, int64_t rev)
{
    struct corral_blob *b = corral_packed_blob(p, rev);
    CHECK(b != NULL);
    char digits[24], *want = malloc(len + sizeof(digits));
    CHECK(want != NULL);
    int nd = rv_off ? snprintf(digits, sizeof(digits), "%" PRId64, rev) : 0;
    memcpy(want, text, rv_off);
    memcpy(want + rv_off, digits, (size_t)nd);
    memcpy(want + rv_off + nd, text + rv_off + rv_len, len - rv_off - rv_len);
    size_t wlen = len - rv_len + (size_t)nd;
    want[wlen] = '\0';
    CHECK_INT_EQ(b->len, wlen);
    CHECK_STR_EQ(b->data, want);
    CHECK_INT_EQ(b->rv_off, rv_off);
    CHECK_INT_EQ(corral_packed_plain_len(p, rev), wlen);
    if (rv_off)
        CHECK(corral_store_blob_check_rev(b, rev));
    corral_blob_unref(b);
    free(want);
}

static void test_pack_roundtrip(void)
{
    struct corral_packer *pk;
    CHECK_INT_EQ(corral_packer_new(&pk), 0);
    /* small objects without a dictionary stay as they are */
    const char *t = "{\"kind\":\"Lease\",\"metadata\":{\"resourceVersion\":\"77\"}}";
    size_t off = strstr(t, "77") - t;
    struct corral_packed *p = corral_packer_pack(pk, t, strlen(t), off, 2);
    CHECK(p != NULL);
    CHECK_INT_EQ(p->zlen, p->len);
    CHECK_INT_EQ(p->len, strlen(t) - 2);
    check_unpack(p, t, strlen(t), off, 2, 5);
    check_unpack(p, t, strlen(t), off, 2, 1234567890123);
    struct corral_packed *q = corral_packed_copy(p);
    check_unpack(q, t, strlen(t), off, 2, 9);
    corral_packed_unref(q);
    corral_packed_unref(p);
    /* no revision at all; and arguments out of range */
    p = corral_packer_pack(pk, "{}", 2, 0, 0);
    check_unpack(p, "{}", 2, 0, 0, 42);
    corral_packed_unref(p);
    CHECK(corral_packer_pack(pk, "{}", 2, 0, 1) == NULL);
    CHECK(corral_packer_pack(pk, "{}", 2, 1, 2) == NULL);
    CHECK(corral_packer_pack(pk, "{}", 2, 3, 0) == NULL);
    /* a large object of a new kind is compressed without a dictionary */
    static char big[40000];
    int n = snprintf(big, sizeof(big), "{\"kind\":\"ConfigMap\",\"metadata\":{\"resourceVersion\""
                                       ":\"\"},\"data\":{\"x\":\"");
    for (int i = 0; i < 30000; i++)
        big[n++] = "abcdefgh"[i % 8 ^ (i / 500) % 4];
    n += snprintf(big + n, sizeof(big) - (size_t)n, "\"}}");
    off = strstr(big, "\"\"}") - big + 1;
    p = corral_packer_pack(pk, big, (size_t)n, off, 0);
    CHECK(p != NULL);
    CHECK(p->zlen < p->len / 4);
    check_unpack(p, big, (size_t)n, off, 0, 31);
    corral_packed_unref(p);
    /* the blob form */
    struct corral_blob *b = corral_store_blob_splice(t, strlen(t), off = strstr(t, "77") - t, 2,
                                                     4242);
    p = corral_packer_pack_blob(pk, b);
    check_unpack(p, b->data, b->len, b->rv_off, 4, 17);
    corral_packed_unref(p);
    corral_blob_unref(b);
    struct corral_packer_stats st;
    corral_packer_stats(pk, &st);
    CHECK_INT_EQ(st.classes, 3); /* Lease, "" and ConfigMap */
    CHECK_INT_EQ(st.dicts, 0);
    CHECK_INT_EQ(st.live_plain, 0);
    CHECK_INT_EQ(st.live_packed, 0);
    corral_packer_free(pk);
}

/* The kind that picks the class is the top-level one, however the object is laid out. */
static void test_pack_kind(void)
{
    struct corral_packer *pk;
    CHECK_INT_EQ(corral_packer_new(&pk), 0);
    static const char *const texts[] = {
        "{\"spec\":{\"kind\":\"Nested\",\"a\":[1,{\"kind\":\"X\"}]},\"kind\":\"Pod\"}",
        " { \"metadata\" : { \"k\\\"ind\" : \"q\" } , \"kind\" : \"Pod\" } ",
        "{\"kind\":\"Pod\"}",
        "{\"a\":\"}\\\"{\",\"kind\":\"Node\"}",
        "{\"kind\":\"Po\\u0064\"}",      /* escaped: no class of its own */
        "{\"kind\":1}",                   /* not a string */
        "[\"kind\",\"Pod\"]",             /* not an object */
        "{\"kind\":\"Pod\"",              /* truncated */
        "{\"a\":{\"b\":[\"]\",{}]},\"kind\":\"Node\",\"z\":true}",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(*texts); i++) {
        struct corral_packed *p = corral_packer_pack(pk, texts[i], strlen(texts[i]), 0, 0);
        CHECK(p != NULL);
        check_unpack(p, texts[i], strlen(texts[i]), 0, 0, 1);
        corral_packed_unref(p);
    }
    struct corral_packer_stats st;
    corral_packer_stats(pk, &st);
    CHECK_INT_EQ(st.classes, 3); /* Pod, Node and "" */
    corral_packer_free(pk);
}

struct packed_text {
    struct corral_packed *p;
    char text[2048];
    size_t len, rv_off, rv_len;
};

static void pack_pods(struct corral_packer *pk, struct packed_text *out, unsigned from,
                      unsigned n, const char *image)
{
    for (unsigned i = 0; i < n; i++) {
        struct packed_text *t = &out[i];
        t->len = pod_text(t->text, sizeof(t->text), from + i, image, &t->rv_off);
        char digits[16];
        t->rv_len = (size_t)snprintf(digits, sizeof(digits), "%u", 1000 + from + i);
        t->p = corral_packer_pack(pk, t->text, t->len, t->rv_off, t->rv_len);
        CHECK(t->p != NULL);
    }
}

static size_t check_pods(const struct packed_text *t, unsigned n)
{
    size_t packed = 0;
    for (unsigned i = 0; i < n; i++) {
        check_unpack(t[i].p, t[i].text, t[i].len, t[i].rv_off, t[i].rv_len, 100 + i);
        packed += t[i].p->zlen;
    }
    return packed;
}

/*
 * Pods pack small once their kind has a dictionary; when the pods change shape the dictionary
 * is retrained and replaced, and the objects packed with the old one still decode.
 */
static void test_pack_dictionary(void)
{
    enum { N = 400 };
    struct corral_packer *pk;
    CHECK_INT_EQ(corral_packer_new(&pk), 0);
    static struct packed_text a[N], b[N];
    pack_pods(pk, a, 0, N, "registry.example.com/team/vllm-server:v0.6.3-cuda12.4");
    struct corral_packer_stats st;
    corral_packer_stats(pk, &st);
    CHECK(st.trainings >= 1);
    CHECK(st.adoptions >= 1);
    CHECK_INT_EQ(st.dicts, 1);
    CHECK(st.dict_bytes > 4096);
    /* the first ones wait for the dictionary (64 writes and 64 KB alive: here about 130
     * objects); the rest pack to a small fraction */
    CHECK_INT_EQ(a[0].p->zlen, a[0].p->len);
    size_t late = check_pods(&a[200], N - 200);
    CHECK(late / (N - 200) < a[0].len / 10);
    /* a new image and a longer annotation everywhere: the dictionary drifts and is replaced */
    for (unsigned round = 0; round < 8; round++) {
        char image[256];
        snprintf(image, sizeof(image), "quay.example.org/other-team/triton-inference-server-"
                                       "r%u:24.%02u-py3-with-a-much-longer-tag-%u", round,
                 round, round * 7919);
        pack_pods(pk, b, N * (round + 1), N, image);
        check_pods(b, N);
        for (unsigned i = 0; i < N; i++)
            corral_packed_unref(b[i].p);
    }
    corral_packer_stats(pk, &st);
    CHECK(st.adoptions >= 2);
    CHECK(st.dicts >= 2); /* the current one, and the first for the pods of a[] */
    check_pods(a, N);
    for (unsigned i = 0; i < N; i++)
        corral_packed_unref(a[i].p);
    corral_packer_stats(pk, &st);
    CHECK_INT_EQ(st.dicts, 1); /* the old versions went with their last objects */
    CHECK_INT_EQ(st.live_plain, 0);
    CHECK_INT_EQ(st.live_packed, 0);
    corral_packer_free(pk);
}

struct pack_thread {
    struct corral_packer *pk;
    unsigned id;
};

static void *pack_thread_main(void *arg)
{
    struct pack_thread *pt = arg;
    static _Thread_local struct packed_text t[200];
    for (unsigned round = 0; round < 5; round++) {
        pack_pods(pt->pk, t, pt->id * 10000 + round * 200, 200, "registry.example.com/x:1");
        check_pods(t, 200);
        for (unsigned i = 0; i < 200; i++)
            corral_packed_unref(t[i].p);
    }
    return NULL;
}

/* Threads packing and unpacking at once, while the class trains its dictionary. */
static void test_pack_threads(void)
{
    struct corral_packer *pk;
    CHECK_INT_EQ(corral_packer_new(&pk), 0);
    pthread_t th[4];
    struct pack_thread pt[4];
    for (unsigned i = 0; i < 4; i++) {
        pt[i] = (struct pack_thread){pk, i};
        CHECK(pthread_create(&th[i], NULL, pack_thread_main, &pt[i]) == 0);
    }
    for (unsigned i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    struct corral_packer_stats st;
    corral_packer_stats(pk, &st);
    CHECK(st.adoptions >= 1);
    CHECK_INT_EQ(st.live_plain, 0);
    corral_packer_free(pk);
}

CORRAL_TESTS(CORRAL_TEST(map_random), CORRAL_TEST(map_sequential), CORRAL_TEST(history_ring),
             CORRAL_TEST(doc_stamp), CORRAL_TEST(pack_roundtrip), CORRAL_TEST(pack_kind),
             CORRAL_TEST(pack_dictionary), CORRAL_TEST(pack_threads))
