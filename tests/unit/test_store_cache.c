/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the store's in-memory structures: the ordered map (cache_map.c) checked
 * against a plain sorted array through long random sequences of inserts, removes and seeks,
 * the watch-history ring (cache_history.c) across growth and wrap-around, and the stamped
 * documents (store.c).
 */
#include "cache_history.h"
#include "cache_map.h"
#include "harness.h"
#include "store_backend.h"

#include <errno.h>
#include <inttypes.h>
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
        struct corral_cache_entry *e = corral_cache_entry_new(key, corral_blob_new("{}", 2), 1, 1);
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
        CHECK_INT_EQ(
            corral_cache_map_insert(&m, corral_cache_entry_new(key, corral_blob_new("1", 1), i, i)),
            0);
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
        .value = corral_blob_new("{\"v\":1}", 7),
        .prev = with_prev ? corral_blob_new("{}", 2) : NULL,
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

CORRAL_TESTS(CORRAL_TEST(map_random), CORRAL_TEST(map_sequential), CORRAL_TEST(history_ring),
             CORRAL_TEST(doc_stamp))
