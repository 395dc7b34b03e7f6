/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for apiserver/store: the same suite runs against each backend (CORRAL_TEST_STORE,
 * see test_store_util.h). CRUD and error codes, racing conditional updates, list order, paging
 * and filters, watch history, resume, compaction, restart, memory accounting, objects packed
 * with a trained dictionary read back byte for byte, concurrent reads.
 */
#include "test_store_util.h"

#include "meta.h"
#include "store.h"

#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>

static json_t *pod(const char *name, const char *extra)
{
    json_t *o = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:{s:s}}", "apiVersion", "v1", "kind",
                          "Pod", "metadata", "name", name, "namespace", "default", "labels", "app",
                          extra ? extra : "web", "spec", "nodeName", "");
    CHECK(o != NULL);
    return o;
}

/* Parses b and checks its metadata.resourceVersion is rev. Returns the JSON (caller decrefs). */
static json_t *check_blob(const struct corral_blob *b, int64_t rev)
{
    CHECK(b != NULL);
    CHECK_INT_EQ(strlen(b->data), b->len);
    json_t *j = corral_blob_json(b);
    CHECK(j != NULL);
    const char *rv =
        json_string_value(json_object_get(json_object_get(j, "metadata"), "resourceVersion"));
    char want[24];
    snprintf(want, sizeof(want), "%" PRId64, rev);
    CHECK_STR_EQ(rv, want);
    return j;
}

static void check_rv(const struct corral_blob *b, int64_t rev)
{
    json_decref(check_blob(b, rev));
}

static void test_crud(void)
{
    struct corral_store *st = tsu_open("crud");
    const char *key = "/registry/pods/default/web-0";
    struct corral_store_obj o;
    int64_t r0 = corral_store_revision(st);

    CHECK_INT_EQ(corral_store_get(st, key, &o), CORRAL_ENOTFOUND);
    CHECK_INT_EQ(corral_store_create(st, key, pod("web-0", NULL), &o), 0);
    CHECK(o.mod_rev > r0);
    CHECK_INT_EQ(o.create_rev, o.mod_rev);
    CHECK_INT_EQ(corral_store_revision(st), o.mod_rev);
    json_t *j = check_blob(o.value, o.mod_rev);
    CHECK_STR_EQ(json_string_value(json_object_get(j, "kind")), "Pod");
    /* key order is kept, so stored bytes look like what the client sent */
    CHECK(strncmp(o.value->data, "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",", 32) == 0);
    json_decref(j);
    int64_t created = o.mod_rev;
    corral_blob_unref(o.value);

    CHECK_INT_EQ(corral_store_get(st, key, &o), 0);
    CHECK_INT_EQ(o.mod_rev, created);
    check_rv(o.value, created);
    corral_blob_unref(o.value);

    CHECK_INT_EQ(corral_store_create(st, key, pod("web-0", NULL), &o), CORRAL_EEXISTS);
    CHECK(o.value == NULL);
    CHECK_INT_EQ(corral_store_update(st, key, pod("web-0", "x"), created + 100, &o),
                 CORRAL_ECONFLICT);
    CHECK_INT_EQ(corral_store_update(st, "/registry/pods/default/nope", pod("nope", NULL), 0, &o),
                 CORRAL_ENOTFOUND);
    CHECK_INT_EQ(corral_store_update(st, key, pod("web-0", "v2"), created, &o), 0);
    CHECK(o.mod_rev > created);
    CHECK_INT_EQ(o.create_rev, created);
    int64_t updated = o.mod_rev;
    check_rv(o.value, updated);
    corral_blob_unref(o.value);
    CHECK_INT_EQ(corral_store_update(st, key, pod("web-0", "v3"), 0, NULL), 0);
    CHECK_INT_EQ(corral_store_get(st, key, &o), 0);
    CHECK(o.mod_rev > updated);
    CHECK_INT_EQ(o.create_rev, created);
    updated = o.mod_rev;
    corral_blob_unref(o.value);

    CHECK_INT_EQ(corral_store_delete(st, key, updated - 1, &o), CORRAL_ECONFLICT);
    CHECK_INT_EQ(corral_store_delete(st, key, updated, &o), 0);
    CHECK(o.mod_rev > updated);
    CHECK_INT_EQ(o.create_rev, created);
    j = check_blob(o.value, o.mod_rev); /* the last state, stamped with the deletion */
    CHECK_STR_EQ(json_string_value(json_object_get(
                     json_object_get(json_object_get(j, "metadata"), "labels"), "app")),
                 "v3");
    json_decref(j);
    corral_blob_unref(o.value);
    CHECK_INT_EQ(corral_store_get(st, key, &o), CORRAL_ENOTFOUND);
    CHECK_INT_EQ(corral_store_delete(st, key, 0, &o), CORRAL_ENOTFOUND);
    /* re-create after delete: a new object with a new create revision */
    CHECK_INT_EQ(corral_store_create(st, key, pod("web-0", NULL), &o), 0);
    CHECK(o.create_rev > updated);
    corral_blob_unref(o.value);
    corral_store_close(st);
}

static void test_bad_input(void)
{
    struct corral_store *st = tsu_open("bad");
    struct corral_store_obj o;
    const char *bad_keys[] = {"",     "registry/pods/a", "/",        "/registry/pods/",
                              "/a b", "/a\x01",          "/\xc3\xa9"};
    for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++) {
        CHECK_INT_EQ(corral_store_create(st, bad_keys[i], pod("a", NULL), &o), -EINVAL);
        CHECK_INT_EQ(corral_store_get(st, bad_keys[i], &o), -EINVAL);
        CHECK_INT_EQ(corral_store_delete(st, bad_keys[i], 0, &o), -EINVAL);
    }
    char *long_key = malloc(2000);
    memset(long_key, 'a', 1999);
    long_key[0] = '/';
    long_key[1999] = '\0';
    CHECK_INT_EQ(corral_store_create(st, long_key, pod("a", NULL), &o), -EINVAL);
    free(long_key);
    CHECK_INT_EQ(corral_store_create(st, NULL, pod("a", NULL), &o), -EINVAL);
    CHECK_INT_EQ(corral_store_create(st, "/a", json_array(), &o), -EINVAL);
    CHECK_INT_EQ(corral_store_create(st, "/a", NULL, &o), -EINVAL);
    CHECK_INT_EQ(corral_store_create(st, "/a", json_pack("{s:i}", "metadata", 1), &o), -EINVAL);
    CHECK_INT_EQ(corral_store_update(st, "/a", json_object(), -1, &o), -EINVAL);
    CHECK_INT_EQ(corral_store_get(st, "/a", &o), CORRAL_ENOTFOUND);

    struct corral_store_list l;
    struct corral_store_list_opts lo = {.prefix = "/registry/pods"};
    CHECK_INT_EQ(corral_store_list(st, &lo, &l), -EINVAL);
    lo.prefix = NULL;
    CHECK_INT_EQ(corral_store_list(st, &lo, &l), -EINVAL);
    struct corral_store_event ev[2];
    int64_t seen;
    CHECK_INT_EQ(corral_store_events(st, "/registry", 0, ev, 2, 0, &seen), -EINVAL);
    CHECK_INT_EQ(corral_store_events(st, "/registry/", 0, ev, 0, 0, &seen), -EINVAL);
    CHECK_INT_EQ(corral_store_events(st, "/registry/", -1, ev, 2, 0, &seen), -EINVAL);

    /* an object without metadata gets it */
    CHECK_INT_EQ(corral_store_create(st, "/x/plain", json_pack("{s:i}", "a", 1), &o), 0);
    json_t *j = check_blob(o.value, o.mod_rev);
    CHECK_INT_EQ(json_integer_value(json_object_get(j, "a")), 1);
    json_decref(j);
    corral_blob_unref(o.value);
    /* a client cannot plant its own resourceVersion, nor confuse the stamping with lookalikes */
    json_t *p = pod("tricky", "\x01"
                              "0123456789abcdef0123456789abcdef");
    json_object_set_new(json_object_get(p, "metadata"), "resourceVersion", json_string("999"));
    json_object_set_new(p, "status",
                        json_pack("{s:s}", "resourceVersion",
                                  "\x01"
                                  "deadbeefdeadbeef"));
    CHECK_INT_EQ(corral_store_create(st, "/x/tricky", p, &o), 0);
    j = check_blob(o.value, o.mod_rev);
    CHECK_STR_EQ(
        json_string_value(json_object_get(json_object_get(j, "status"), "resourceVersion")),
        "\x01"
        "deadbeefdeadbeef");
    json_decref(j);
    corral_blob_unref(o.value);
    corral_store_close(st);
}

/* ---- racing conditional updates ----------------------------------------------------------- */

#define RACE_THREADS 8
#define RACE_INCREMENTS 40

struct race {
    struct corral_store *st;
    atomic_int conflicts;
};

/* Increments the counter object RACE_INCREMENTS times with compare-and-swap retries. */
static void *race_worker(void *arg)
{
    struct race *r = arg;
    for (int i = 0; i < RACE_INCREMENTS; i++) {
        for (;;) {
            struct corral_store_obj o;
            CHECK_INT_EQ(corral_store_get(r->st, "/c/counter", &o), 0);
            json_t *j = corral_blob_json(o.value);
            json_int_t n = json_integer_value(json_object_get(j, "n"));
            json_object_set_new(j, "n", json_integer(n + 1));
            int rc = corral_store_update(r->st, "/c/counter", j, o.mod_rev, NULL);
            corral_blob_unref(o.value);
            if (rc == 0)
                break;
            CHECK_INT_EQ(rc, CORRAL_ECONFLICT);
            atomic_fetch_add(&r->conflicts, 1);
        }
    }
    return NULL;
}

static void test_race_conditional(void)
{
    struct race r = {.st = tsu_open("race")};
    CHECK_INT_EQ(corral_store_create(r.st, "/c/counter", json_pack("{s:i}", "n", 0), NULL), 0);
    pthread_t t[RACE_THREADS];
    for (int i = 0; i < RACE_THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, race_worker, &r) == 0);
    for (int i = 0; i < RACE_THREADS; i++)
        pthread_join(t[i], NULL);
    struct corral_store_obj o;
    CHECK_INT_EQ(corral_store_get(r.st, "/c/counter", &o), 0);
    json_t *j = check_blob(o.value, o.mod_rev);
    /* every increment landed exactly once: no lost update, no double win */
    CHECK_INT_EQ(json_integer_value(json_object_get(j, "n")), RACE_THREADS * RACE_INCREMENTS);
    json_decref(j);
    corral_blob_unref(o.value);
    fprintf(stderr, "conflicts retried: %d\n", atomic_load(&r.conflicts));
    corral_store_close(r.st);
}

struct same_rev {
    struct corral_store *st;
    int64_t rev;
    pthread_barrier_t *bar;
    int rc;
};

static void *same_rev_worker(void *arg)
{
    struct same_rev *w = arg;
    pthread_barrier_wait(w->bar);
    w->rc = corral_store_update(w->st, "/c/one", json_pack("{s:i}", "v", 1), w->rev, NULL);
    return NULL;
}

/* Many updates with the same expect_rev released at once: exactly one wins, each round. */
static void test_race_same_rev(void)
{
    struct corral_store *st = tsu_open("same-rev");
    struct corral_store_obj o;
    CHECK_INT_EQ(corral_store_create(st, "/c/one", json_object(), &o), 0);
    int64_t rev = o.mod_rev;
    corral_blob_unref(o.value);
    enum { N = 16 };
    for (int round = 0; round < 10; round++) {
        pthread_barrier_t bar;
        pthread_barrier_init(&bar, NULL, N);
        struct same_rev w[N];
        pthread_t t[N];
        for (int i = 0; i < N; i++) {
            w[i] = (struct same_rev){.st = st, .rev = rev, .bar = &bar};
            CHECK(pthread_create(&t[i], NULL, same_rev_worker, &w[i]) == 0);
        }
        int wins = 0;
        for (int i = 0; i < N; i++) {
            pthread_join(t[i], NULL);
            if (w[i].rc == 0)
                wins++;
            else
                CHECK_INT_EQ(w[i].rc, CORRAL_ECONFLICT);
        }
        pthread_barrier_destroy(&bar);
        CHECK_INT_EQ(wins, 1);
        CHECK_INT_EQ(corral_store_get(st, "/c/one", &o), 0);
        CHECK(o.mod_rev > rev);
        rev = o.mod_rev;
        corral_blob_unref(o.value);
    }
    corral_store_close(st);
}

/* ---- lists -------------------------------------------------------------------------------- */

static bool filter_even(const struct corral_blob *v, void *ctx)
{
    (void)ctx;
    return strstr(v->data, "\"app\":\"even\"") != NULL;
}

static void list_all(struct corral_store *st, const char *prefix, struct corral_store_list *l)
{
    struct corral_store_list_opts lo = {.prefix = prefix};
    CHECK_INT_EQ(corral_store_list(st, &lo, l), 0);
}

static void test_list(void)
{
    struct corral_store *st = tsu_open("list");
    enum { N = 300 };
    /* insert in a scrambled order under two neighbouring prefixes */
    for (int i = 0; i < N; i++) {
        int k = (i * 7919) % N;
        char key[96], name[32];
        snprintf(name, sizeof(name), "p%04d", k);
        snprintf(key, sizeof(key), "/registry/pods/default/%s", name);
        CHECK_INT_EQ(corral_store_create(st, key, pod(name, k % 2 ? "odd" : "even"), NULL), 0);
        snprintf(key, sizeof(key), "/registry/pods/defaultx/%s", name);
        CHECK_INT_EQ(corral_store_create(st, key, pod(name, "x"), NULL), 0);
    }
    CHECK_INT_EQ(corral_store_create(st, "/registry/pods/default", pod("edge", NULL), NULL), 0);

    struct corral_store_list l;
    list_all(st, "/registry/pods/default/", &l);
    CHECK_INT_EQ(l.n, N);
    CHECK(!l.more);
    CHECK_INT_EQ(l.rev, corral_store_revision(st));
    for (size_t i = 0; i < l.n; i++) {
        char want[96];
        snprintf(want, sizeof(want), "/registry/pods/default/p%04zu", i);
        CHECK_STR_EQ(l.keys[i], want);
        CHECK(strstr(l.items[i]->data, want + strlen("/registry/pods/default/")) != NULL);
    }
    corral_store_list_clear(&l);
    list_all(st, "/registry/pods/", &l);
    CHECK_INT_EQ(l.n, 2 * N + 1);
    corral_store_list_clear(&l);
    list_all(st, "/registry/nodes/", &l);
    CHECK_INT_EQ(l.n, 0);
    CHECK(!l.more);
    corral_store_list_clear(&l);

    /* paging: concatenated pages equal the whole list */
    struct corral_store_list_opts lo = {.prefix = "/registry/pods/default/", .limit = 7};
    char last[128] = "";
    size_t total = 0, pages = 0;
    for (;;) {
        lo.start_after = last[0] ? last : NULL;
        CHECK_INT_EQ(corral_store_list(st, &lo, &l), 0);
        CHECK(l.n <= 7);
        for (size_t i = 0; i < l.n; i++) {
            char want[96];
            snprintf(want, sizeof(want), "/registry/pods/default/p%04zu", total + i);
            CHECK_STR_EQ(l.keys[i], want);
        }
        total += l.n;
        pages++;
        bool more = l.more;
        if (l.n)
            snprintf(last, sizeof(last), "%s", l.keys[l.n - 1]);
        corral_store_list_clear(&l);
        if (!more)
            break;
    }
    CHECK_INT_EQ(total, N);
    CHECK_INT_EQ(pages, (N + 6) / 7);

    /* filter: skipped objects do not count against the limit; more means more that pass */
    lo = (struct corral_store_list_opts){
        .prefix = "/registry/pods/default/", .limit = 10, .filter = filter_even};
    CHECK_INT_EQ(corral_store_list(st, &lo, &l), 0);
    CHECK_INT_EQ(l.n, 10);
    CHECK(l.more);
    for (size_t i = 0; i < l.n; i++) {
        char want[96];
        snprintf(want, sizeof(want), "/registry/pods/default/p%04zu", 2 * i);
        CHECK_STR_EQ(l.keys[i], want);
    }
    corral_store_list_clear(&l);
    lo.limit = 0;
    CHECK_INT_EQ(corral_store_list(st, &lo, &l), 0);
    CHECK_INT_EQ(l.n, N / 2);
    CHECK(!l.more);
    corral_store_list_clear(&l);
    /* the last page of a filtered list has no "more" even with objects after it */
    lo.limit = N / 2;
    CHECK_INT_EQ(corral_store_list(st, &lo, &l), 0);
    CHECK_INT_EQ(l.n, N / 2);
    CHECK(!l.more);
    corral_store_list_clear(&l);
    /* start_after outside the prefix */
    lo = (struct corral_store_list_opts){.prefix = "/registry/pods/default/", .start_after = "/a"};
    CHECK_INT_EQ(corral_store_list(st, &lo, &l), 0);
    CHECK_INT_EQ(l.n, N);
    corral_store_list_clear(&l);
    lo.start_after = "/z";
    CHECK_INT_EQ(corral_store_list(st, &lo, &l), 0);
    CHECK_INT_EQ(l.n, 0);
    corral_store_list_clear(&l);

    /* deletes keep the order */
    for (int i = 0; i < N; i += 3) {
        char key[96];
        snprintf(key, sizeof(key), "/registry/pods/default/p%04d", i);
        CHECK_INT_EQ(corral_store_delete(st, key, 0, NULL), 0);
    }
    list_all(st, "/registry/pods/default/", &l);
    CHECK_INT_EQ(l.n, N - N / 3);
    for (size_t i = 1; i < l.n; i++)
        CHECK(strcmp(l.keys[i - 1], l.keys[i]) < 0);
    corral_store_list_clear(&l);
    corral_store_close(st);
}

/* ---- watch -------------------------------------------------------------------------------- */

static void test_events(void)
{
    struct corral_store *st = tsu_open("events");
    int64_t r0 = corral_store_revision(st);
    struct corral_store_obj o;
    CHECK_INT_EQ(corral_store_create(st, "/registry/pods/default/a", pod("a", "v1"), NULL), 0);
    CHECK_INT_EQ(corral_store_create(st, "/registry/nodes/n1", pod("n1", NULL), NULL), 0);
    CHECK_INT_EQ(corral_store_update(st, "/registry/pods/default/a", pod("a", "v2"), 0, NULL), 0);
    CHECK_INT_EQ(corral_store_delete(st, "/registry/pods/default/a", 0, &o), 0);
    int64_t del_rev = o.mod_rev;
    corral_blob_unref(o.value);

    struct corral_store_event ev[8];
    int64_t seen = 0;
    int n = corral_store_events(st, "/registry/pods/", r0, ev, 8, 0, &seen);
    CHECK_INT_EQ(n, 3);
    CHECK_INT_EQ(seen, corral_store_revision(st));
    CHECK_INT_EQ(ev[0].type, CORRAL_EVENT_ADDED);
    CHECK(ev[0].prev == NULL);
    check_rv(ev[0].value, ev[0].rev);
    CHECK_STR_EQ(ev[0].key, "/registry/pods/default/a");
    CHECK_INT_EQ(ev[1].type, CORRAL_EVENT_MODIFIED);
    check_rv(ev[1].value, ev[1].rev);
    check_rv(ev[1].prev, ev[0].rev);
    CHECK(strstr(ev[1].prev->data, "\"v1\"") && strstr(ev[1].value->data, "\"v2\""));
    CHECK_INT_EQ(ev[2].type, CORRAL_EVENT_DELETED);
    CHECK_INT_EQ(ev[2].rev, del_rev);
    check_rv(ev[2].value, del_rev);
    check_rv(ev[2].prev, ev[1].rev);
    CHECK(ev[0].rev < ev[1].rev && ev[1].rev < ev[2].rev);
    for (int i = 0; i < n; i++)
        corral_store_event_clear(&ev[i]);

    /* max: delivered in chunks; seen says where to go on */
    n = corral_store_events(st, "/registry/", r0, ev, 2, 0, &seen);
    CHECK_INT_EQ(n, 2);
    int64_t second = ev[1].rev;
    CHECK(seen >= second && seen < corral_store_revision(st));
    for (int i = 0; i < n; i++)
        corral_store_event_clear(&ev[i]);
    n = corral_store_events(st, "/registry/", seen, ev, 8, 0, &seen);
    CHECK_INT_EQ(n, 2);
    CHECK(ev[0].rev > second);
    for (int i = 0; i < n; i++)
        corral_store_event_clear(&ev[i]);

    /* nothing under the prefix: seen still advances, so the next call skips what was seen */
    n = corral_store_events(st, "/registry/secrets/", r0, ev, 8, 0, &seen);
    CHECK_INT_EQ(n, 0);
    CHECK_INT_EQ(seen, corral_store_revision(st));
    /* a wait with nothing coming times out with 0 */
    uint64_t t0 = corral_now_ns();
    n = corral_store_events(st, "/registry/", seen, ev, 8, 100, &seen);
    CHECK_INT_EQ(n, 0);
    CHECK(corral_now_ns() - t0 >= 90 * 1000000ull);
    corral_store_close(st);
}

struct waiter {
    struct corral_store *st;
    int64_t after;
    int n;
    struct corral_store_event ev[4];
    uint64_t woke_ns;
};

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    int64_t seen;
    w->n = corral_store_events(w->st, "/registry/pods/", w->after, w->ev, 4, 5000, &seen);
    w->woke_ns = corral_now_ns();
    return NULL;
}

/* Blocked watchers wake on the commit that concerns them, not on unrelated ones. */
static void test_events_wait(void)
{
    struct corral_store *st = tsu_open("events-wait");
    enum { W = 20 };
    struct waiter w[W];
    pthread_t t[W];
    int64_t r0 = corral_store_revision(st);
    for (int i = 0; i < W; i++) {
        w[i] = (struct waiter){.st = st, .after = r0};
        CHECK(pthread_create(&t[i], NULL, waiter_main, &w[i]) == 0);
    }
    tsu_sleep_ms(50);
    CHECK_INT_EQ(corral_store_create(st, "/registry/nodes/n", pod("n", NULL), NULL), 0);
    tsu_sleep_ms(50);
    uint64_t t0 = corral_now_ns();
    CHECK_INT_EQ(corral_store_create(st, "/registry/pods/default/p", pod("p", NULL), NULL), 0);
    uint64_t worst = 0;
    for (int i = 0; i < W; i++) {
        pthread_join(t[i], NULL);
        CHECK_INT_EQ(w[i].n, 1);
        CHECK_STR_EQ(w[i].ev[0].key, "/registry/pods/default/p");
        corral_store_event_clear(&w[i].ev[0]);
        if (w[i].woke_ns - t0 > worst)
            worst = w[i].woke_ns - t0;
    }
    /* informational only: the wake-up latency after the commit returned */
    fprintf(stderr, "slowest of %d watchers woke %.2f ms after the write returned\n", W,
            (double)(int64_t)worst / 1e6);
    CHECK(worst < 4000 * 1000000ull); /* they did not just time out */
    corral_store_close(st);
}

static void test_compaction(void)
{
    struct corral_store *st = tsu_open("compact");
    int64_t revs[10];
    for (int i = 0; i < 10; i++) {
        char key[64];
        snprintf(key, sizeof(key), "/registry/pods/default/c%d", i);
        struct corral_store_obj o;
        CHECK_INT_EQ(corral_store_create(st, key, pod("c", NULL), &o), 0);
        revs[i] = o.mod_rev;
        corral_blob_unref(o.value);
    }
    CHECK_INT_EQ(corral_store_compact(st, revs[4]), 0);
    struct corral_store_stats s;
    corral_store_stats(st, &s);
    CHECK_INT_EQ(s.compacted_rev, revs[4]);
    CHECK_INT_EQ(s.history_events, 5);
    struct corral_store_event ev[16];
    int64_t seen;
    CHECK_INT_EQ(corral_store_events(st, "/registry/", revs[3], ev, 16, 0, &seen), CORRAL_EGONE);
    CHECK_INT_EQ(corral_store_events(st, "/registry/", 0, ev, 16, 0, &seen), CORRAL_EGONE);
    int n = corral_store_events(st, "/registry/", revs[4], ev, 16, 0, &seen);
    CHECK_INT_EQ(n, 5);
    CHECK_INT_EQ(ev[0].rev, revs[5]);
    for (int i = 0; i < n; i++)
        corral_store_event_clear(&ev[i]);
    /* objects are untouched by compaction */
    struct corral_store_list l;
    list_all(st, "/registry/", &l);
    CHECK_INT_EQ(l.n, 10);
    corral_store_list_clear(&l);
    /* compacting past the head is clamped to it */
    CHECK_INT_EQ(corral_store_compact(st, revs[9] + 1000), 0);
    corral_store_stats(st, &s);
    CHECK_INT_EQ(s.compacted_rev, corral_store_revision(st));
    CHECK_INT_EQ(corral_store_events(st, "/registry/", s.rev, ev, 16, 0, &seen), 0);

    /* automatic retention by count */
    struct corral_store_retention ret = {.max_events = 8};
    corral_store_set_retention(st, &ret);
    for (int i = 0; i < 30; i++)
        CHECK_INT_EQ(corral_store_update(st, "/registry/pods/default/c1", pod("c", NULL), 0, NULL),
                     0);
    corral_store_stats(st, &s);
    CHECK(s.history_events <= 8);
    CHECK(s.compacted_rev >= s.rev - 8);
    CHECK_INT_EQ(corral_store_events(st, "/registry/", s.rev - 20, ev, 16, 0, &seen), CORRAL_EGONE);
    n = corral_store_events(st, "/registry/", s.compacted_rev, ev, 16, 0, &seen);
    CHECK_INT_EQ(n, (int)s.history_events);
    for (int i = 0; i < n; i++)
        corral_store_event_clear(&ev[i]);
    /* and by bytes of superseded versions */
    ret = (struct corral_store_retention){.max_bytes = 2000};
    corral_store_set_retention(st, &ret);
    for (int i = 0; i < 30; i++)
        CHECK_INT_EQ(corral_store_update(st, "/registry/pods/default/c1", pod("c", NULL), 0, NULL),
                     0);
    corral_store_stats(st, &s);
    CHECK(s.history_bytes <= 2000);
    CHECK(s.history_events >= 2);
    corral_store_close(st);
}

static void test_restart(void)
{
    struct corral_store *st = tsu_open("restart");
    struct corral_store_obj o;
    for (int i = 0; i < 50; i++) {
        char key[64], name[16];
        snprintf(name, sizeof(name), "r%02d", i);
        snprintf(key, sizeof(key), "/registry/pods/default/%s", name);
        CHECK_INT_EQ(corral_store_create(st, key, pod(name, NULL), NULL), 0);
    }
    CHECK_INT_EQ(corral_store_update(st, "/registry/pods/default/r01", pod("r01", "v2"), 0, &o), 0);
    int64_t upd = o.mod_rev;
    corral_blob_unref(o.value);
    int64_t mid = corral_store_revision(st);
    CHECK_INT_EQ(corral_store_delete(st, "/registry/pods/default/r02", 0, NULL), 0);
    CHECK_INT_EQ(corral_store_create(st, "/registry/pods/default/zz", pod("zz", NULL), NULL), 0);
    /* the newest write is a delete: the revision must still not go back after restart */
    CHECK_INT_EQ(corral_store_delete(st, "/registry/pods/default/zz", 0, NULL), 0);
    int64_t last = corral_store_revision(st);
    struct corral_store_stats before;
    corral_store_stats(st, &before);
    corral_store_close(st);

    st = tsu_open("restart");
    CHECK_INT_EQ(corral_store_revision(st), last);
    struct corral_store_stats after;
    corral_store_stats(st, &after);
    CHECK_INT_EQ(after.objects, 49);
    CHECK_INT_EQ(after.objects, before.objects);
    CHECK_INT_EQ(after.bytes, before.bytes);
    CHECK_INT_EQ(corral_store_get(st, "/registry/pods/default/r01", &o), 0);
    CHECK_INT_EQ(o.mod_rev, upd);
    CHECK(o.create_rev < upd);
    json_t *j = check_blob(o.value, upd);
    json_decref(j);
    corral_blob_unref(o.value);
    CHECK_INT_EQ(corral_store_get(st, "/registry/pods/default/r02", &o), CORRAL_ENOTFOUND);
    struct corral_store_event ev[8];
    int64_t seen;
    if (tsu_is_etcd()) {
        /* etcd: the history starts where this apiserver loaded (as kube-apiserver's watch
         * cache does); older resumes re-list, newer ones work */
        CHECK_INT_EQ(corral_store_events(st, "/registry/pods/", mid, ev, 8, 0, &seen),
                     CORRAL_EGONE);
        CHECK_INT_EQ(corral_store_events(st, "/registry/pods/", last, ev, 8, 0, &seen), 0);
        CHECK_INT_EQ(corral_store_create(st, "/registry/pods/default/new", pod("new", NULL), &o),
                     0);
        CHECK(o.mod_rev > last);
        corral_blob_unref(o.value);
        CHECK_INT_EQ(corral_store_events(st, "/registry/pods/", last, ev, 8, 0, &seen), 1);
        CHECK_INT_EQ(ev[0].type, CORRAL_EVENT_ADDED);
        corral_store_event_clear(&ev[0]);
        corral_store_close(st);
        return;
    }
    /* SQLite: the watch history survived: resume from before the restart */
    int n = corral_store_events(st, "/registry/pods/", mid, ev, 8, 0, &seen);
    CHECK_INT_EQ(n, 3);
    CHECK_INT_EQ(ev[0].type, CORRAL_EVENT_DELETED);
    CHECK_STR_EQ(ev[0].key, "/registry/pods/default/r02");
    CHECK(ev[0].prev != NULL);
    CHECK_INT_EQ(ev[1].type, CORRAL_EVENT_ADDED);
    CHECK_INT_EQ(ev[2].type, CORRAL_EVENT_DELETED);
    CHECK_INT_EQ(ev[2].rev, last);
    for (int i = 0; i < n; i++)
        corral_store_event_clear(&ev[i]);
    /* new revisions continue above every one handed out */
    CHECK_INT_EQ(corral_store_create(st, "/registry/pods/default/new", pod("new", NULL), &o), 0);
    CHECK(o.mod_rev > last);
    corral_blob_unref(o.value);
    /* compaction survives a restart too */
    CHECK_INT_EQ(corral_store_compact(st, mid), 0);
    corral_store_close(st);
    st = tsu_open("restart");
    CHECK_INT_EQ(corral_store_events(st, "/registry/pods/", mid - 1, ev, 8, 0, &seen),
                 CORRAL_EGONE);
    n = corral_store_events(st, "/registry/pods/", mid, ev, 8, 0, &seen);
    CHECK_INT_EQ(n, 4);
    CHECK(ev[0].prev != NULL); /* the version before the compacted revision is kept as prev */
    for (int i = 0; i < n; i++)
        corral_store_event_clear(&ev[i]);
    corral_store_close(st);
}

static void test_memory_accounting(void)
{
    struct corral_store *st = tsu_open("memory");
    struct corral_store_stats s0, s;
    corral_store_stats(st, &s0);
    CHECK_INT_EQ(s0.objects, 0);
    CHECK_INT_EQ(s0.bytes, 0);
    size_t total = 0;
    struct corral_store_obj o;
    for (int i = 0; i < 20; i++) {
        char key[64], name[16];
        snprintf(name, sizeof(name), "m%02d", i);
        snprintf(key, sizeof(key), "/registry/pods/default/%s", name);
        CHECK_INT_EQ(corral_store_create(st, key, pod(name, NULL), &o), 0);
        total += o.value->len;
        corral_blob_unref(o.value);
    }
    corral_store_stats(st, &s);
    CHECK_INT_EQ(s.objects, 20);
    CHECK_INT_EQ(s.bytes, total);
    CHECK_INT_EQ(s.history_events, 20);
    CHECK_INT_EQ(s.history_bytes, 0); /* creations share their bytes with the objects */

    struct corral_store_obj old;
    CHECK_INT_EQ(corral_store_get(st, "/registry/pods/default/m00", &old), 0);
    CHECK_INT_EQ(
        corral_store_update(st, "/registry/pods/default/m00", pod("m00", "longer-label"), 0, &o),
        0);
    total += o.value->len - old.value->len;
    corral_store_stats(st, &s);
    CHECK_INT_EQ(s.bytes, total);
    CHECK_INT_EQ(s.history_bytes, old.value->len);
    size_t hist = old.value->len;
    corral_blob_unref(old.value);
    corral_blob_unref(o.value);

    CHECK_INT_EQ(corral_store_get(st, "/registry/pods/default/m01", &old), 0);
    CHECK_INT_EQ(corral_store_delete(st, "/registry/pods/default/m01", 0, &o), 0);
    total -= old.value->len;
    hist += old.value->len + o.value->len;
    corral_store_stats(st, &s);
    CHECK_INT_EQ(s.objects, 19);
    CHECK_INT_EQ(s.bytes, total);
    CHECK_INT_EQ(s.history_bytes, hist);
    corral_blob_unref(old.value);
    corral_blob_unref(o.value);

    CHECK_INT_EQ(corral_store_compact(st, corral_store_revision(st)), 0);
    corral_store_stats(st, &s);
    CHECK_INT_EQ(s.history_events, 0);
    CHECK_INT_EQ(s.history_bytes, 0);
    CHECK_INT_EQ(s.bytes, total);
    CHECK(s.commits > 0 && s.committed_ops >= 22);
    corral_store_close(st);
}

/* ---- packed objects ------------------------------------------------------------------------ */

/* A pod of about 1.3 KB, alike others but for its name, uid and label. */
static json_t *big_pod(int i, const char *label)
{
    char name[32], uid[64];
    snprintf(name, sizeof(name), "big-%04d", i);
    snprintf(uid, sizeof(uid), "%08x-0b7d-4e55-9d0a-%012x", (unsigned)i * 2654435761u,
             (unsigned)i * 40503u);
    json_t *p = json_pack(
        "{s:s, s:s, s:{s:s, s:s, s:s, s:{s:s, s:s}, s:{s:s}}, "
        "s:{s:[{s:s, s:s, s:[{s:i, s:s}], s:{s:{s:s, s:s, s:s}, s:{s:s, s:s, s:s}}, "
        "s:[{s:s, s:s}, {s:s, s:s}], s:[{s:s, s:s}]}], s:s, s:s, s:s, s:i, s:[{s:s, s:s, s:s}]}, "
        "s:{s:s, s:s}}",
        "apiVersion", "v1", "kind", "Pod", "metadata", "name", name, "namespace", "default", "uid",
        uid, "labels", "app", "llm-inference", "rev", label, "annotations", "corral.io/gpu-share",
        "500", "spec", "containers", "name", "server", "image",
        "registry.example.com/team/vllm-server:v0.6.3-cuda12.4", "ports", "containerPort", 8000,
        "protocol", "TCP", "resources", "requests", "cpu", "4", "memory", "32Gi", "nvidia.com/gpu",
        "1", "limits", "cpu", "8", "memory", "48Gi", "nvidia.com/gpu", "1", "env", "name", "MODEL",
        "value", "meta-llama/Llama-3.1-8B-Instruct", "name", "MAX_MODEL_LEN", "value", "8192",
        "volumeMounts", "name", "models", "mountPath", "/models", "restartPolicy", "Always",
        "schedulerName", "corral-scheduler", "serviceAccountName", "default",
        "terminationGracePeriodSeconds", 30, "tolerations", "key", "nvidia.com/gpu", "operator",
        "Exists", "effect", "NoSchedule", "status", "phase", "Pending", "qosClass", "Burstable");
    CHECK(p != NULL);
    return p;
}

static void check_same_blob(const struct corral_blob *a, const struct corral_blob *b)
{
    CHECK(a != NULL && b != NULL);
    CHECK_INT_EQ(a->len, b->len);
    CHECK_STR_EQ(a->data, b->data);
}

enum { PACKED_N = 300 };

static bool rv_any(const struct corral_blob *b, void *ctx)
{
    (void)b;
    (void)ctx;
    return true;
}

/* Every get, list item and watch event equals, byte for byte, what the writes returned. */
static void check_packed(struct corral_store *st, struct corral_blob **want)
{
    struct corral_store_list l;
    struct corral_store_list_opts lo = {.prefix = "/registry/pods/default/"};
    CHECK_INT_EQ(corral_store_list(st, &lo, &l), 0);
    size_t k = 0;
    for (int i = 0; i < PACKED_N; i++) {
        char key[64];
        snprintf(key, sizeof(key), "/registry/pods/default/big-%04d", i);
        struct corral_store_obj o;
        if (!want[i]) {
            CHECK_INT_EQ(corral_store_get(st, key, &o), CORRAL_ENOTFOUND);
            continue;
        }
        CHECK_INT_EQ(corral_store_get(st, key, &o), 0);
        check_same_blob(o.value, want[i]);
        corral_blob_unref(o.value);
        CHECK(k < l.n);
        CHECK_STR_EQ(l.keys[k], key);
        check_same_blob(l.items[k++], want[i]);
    }
    CHECK_INT_EQ(k, l.n);
    /* a snapshot holds the same, made plain one at a time */
    struct corral_store_snapshot *snap;
    CHECK_INT_EQ(corral_store_snapshot(st, &lo, &snap), 0);
    CHECK_INT_EQ(corral_store_snapshot_count(snap), l.n);
    CHECK_INT_EQ(corral_store_snapshot_rev(snap), l.rev);
    CHECK(!corral_store_snapshot_more(snap));
    for (size_t i = 0; i < l.n; i++) {
        const char *key;
        struct corral_blob *b;
        CHECK_INT_EQ(corral_store_snapshot_item(snap, i, &key, &b), 0);
        CHECK_STR_EQ(key, l.keys[i]);
        CHECK_STR_EQ(corral_store_snapshot_key(snap, i), l.keys[i]);
        check_same_blob(b, l.items[i]);
        corral_blob_unref(b);
    }
    corral_store_snapshot_free(snap);
    struct corral_store_list_opts page = {.prefix = lo.prefix, .start_after = l.keys[0],
                                          .limit = 2};
    CHECK_INT_EQ(corral_store_snapshot(st, &page, &snap), 0);
    CHECK_INT_EQ(corral_store_snapshot_count(snap), 2);
    CHECK(corral_store_snapshot_more(snap));
    CHECK_STR_EQ(corral_store_snapshot_key(snap, 0), l.keys[1]);
    corral_store_snapshot_free(snap);
    page.filter = rv_any;
    CHECK_INT_EQ(corral_store_snapshot(st, &page, &snap), -EINVAL);
    corral_store_list_clear(&l);
}

static void test_packed(void)
{
    struct corral_store *st = tsu_open("packed");
    static struct corral_blob *want[PACKED_N], *first[PACKED_N];
    struct corral_store_obj o;
    int64_t r0 = corral_store_revision(st);
    for (int i = 0; i < PACKED_N; i++) {
        char key[64];
        snprintf(key, sizeof(key), "/registry/pods/default/big-%04d", i);
        CHECK_INT_EQ(corral_store_create(st, key, big_pod(i, "a"), &o), 0);
        want[i] = o.value;
        first[i] = corral_blob_ref(o.value);
    }
    struct corral_store_stats s;
    corral_store_stats(st, &s);
    CHECK(s.dicts >= 1);
    /* about the first 130 wait for the dictionary (64 KB of pods alive); the rest pack small */
    CHECK(s.mem * 2 < s.bytes);
    check_packed(st, want);
    int64_t mid = corral_store_revision(st);
    for (int i = 0; i < 40; i++) { /* updates, then deletes */
        char key[64];
        snprintf(key, sizeof(key), "/registry/pods/default/big-%04d", i);
        if (i < 20)
            CHECK_INT_EQ(corral_store_update(st, key, big_pod(i, "b"), 0, &o), 0);
        else
            CHECK_INT_EQ(corral_store_delete(st, key, 0, &o), 0);
        corral_blob_unref(want[i]);
        want[i] = i < 20 ? corral_blob_ref(o.value) : NULL;
        /* the event: the new state (the deleted one at the deletion's revision) and the old */
        struct corral_store_event ev;
        int64_t seen;
        CHECK_INT_EQ(corral_store_events(st, "/registry/pods/", o.mod_rev - 1, &ev, 1, 0, &seen),
                     1);
        CHECK_INT_EQ(ev.rev, o.mod_rev);
        check_same_blob(ev.value, o.value);
        check_same_blob(ev.prev, first[i]);
        check_rv(ev.value, o.mod_rev);
        corral_store_event_clear(&ev);
        corral_blob_unref(o.value);
    }
    check_packed(st, want);
    /* the creations from the history too, as the writes returned them */
    struct corral_store_event ev[64];
    int64_t seen;
    int n = corral_store_events(st, "/registry/pods/", r0, ev, 64, 0, &seen);
    CHECK_INT_EQ(n, 64);
    for (int i = 0; i < n; i++) {
        check_same_blob(ev[i].value, first[i]);
        corral_store_event_clear(&ev[i]);
    }
    corral_store_close(st);

    st = tsu_open("packed"); /* loaded (and packed again) from the disk or etcd */
    check_packed(st, want);
    if (!tsu_is_etcd()) { /* SQLite keeps the history across restarts */
        n = corral_store_events(st, "/registry/pods/", mid, ev, 64, 0, &seen);
        CHECK_INT_EQ(n, 40);
        for (int i = 0; i < n; i++) {
            CHECK_INT_EQ(ev[i].type, i < 20 ? CORRAL_EVENT_MODIFIED : CORRAL_EVENT_DELETED);
            check_same_blob(ev[i].prev, first[i]);
            if (i < 20)
                check_same_blob(ev[i].value, want[i]);
            check_rv(ev[i].value, ev[i].rev);
            corral_store_event_clear(&ev[i]);
        }
    }
    corral_store_close(st);
    for (int i = 0; i < PACKED_N; i++) {
        corral_blob_unref(want[i]);
        corral_blob_unref(first[i]);
    }
}

/* ---- readers alongside writers ------------------------------------------------------------ */

struct rw {
    struct corral_store *st;
    atomic_bool stop;
    atomic_long reads;
};

static bool rv_consistent(const struct corral_blob *b, void *ctx)
{
    (void)ctx;
    CHECK(b->len > 0 && b->data[0] == '{');
    return true;
}

static void *reader_main(void *arg)
{
    struct rw *r = arg;
    while (!atomic_load(&r->stop)) {
        struct corral_store_list l;
        struct corral_store_list_opts lo = {.prefix = "/registry/", .filter = rv_consistent};
        CHECK_INT_EQ(corral_store_list(r->st, &lo, &l), 0);
        for (size_t i = 1; i < l.n; i++)
            CHECK(strcmp(l.keys[i - 1], l.keys[i]) < 0);
        for (size_t i = 0; i < l.n && i < 5; i++) {
            struct corral_store_obj o;
            if (corral_store_get(r->st, l.keys[i], &o) == 0) {
                check_rv(o.value, o.mod_rev);
                corral_blob_unref(o.value);
            }
        }
        corral_store_list_clear(&l);
        atomic_fetch_add(&r->reads, 1);
    }
    return NULL;
}

struct rw_writer {
    struct rw *rw;
    int id;
};

static void *writer_main(void *arg)
{
    struct rw_writer *w = arg;
    struct rw *r = w->rw;
    for (int i = 0; i < 200; i++) {
        char key[64];
        snprintf(key, sizeof(key), "/registry/pods/default/w%d-%03d", w->id, i % 50);
        int rc = corral_store_create(r->st, key, pod("w", NULL), NULL);
        if (rc == CORRAL_EEXISTS)
            CHECK_INT_EQ(corral_store_delete(r->st, key, 0, NULL), 0);
        else
            CHECK_INT_EQ(rc, 0);
    }
    return NULL;
}

static void test_concurrent_readers(void)
{
    struct rw r = {.st = tsu_open("readers")};
    pthread_t rd[3], wr[2];
    struct rw_writer ws[2] = {{&r, 0}, {&r, 1}};
    for (int i = 0; i < 3; i++)
        CHECK(pthread_create(&rd[i], NULL, reader_main, &r) == 0);
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&wr[i], NULL, writer_main, &ws[i]) == 0);
    for (int i = 0; i < 2; i++)
        pthread_join(wr[i], NULL);
    atomic_store(&r.stop, true);
    for (int i = 0; i < 3; i++)
        pthread_join(rd[i], NULL);
    CHECK(atomic_load(&r.reads) > 0);
    corral_store_close(r.st);
}

/*
 * A write that cannot reach the disk (here: the file-size limit, so every write(2) past 4 KiB
 * fails with EFBIG, as on a full disk) fails with CORRAL_EUNAVAILABLE and leaves memory as it
 * was; once the disk takes writes again the store carries on, and a restart shows exactly the
 * acknowledged writes. SQLite only: etcd's disk is etcd's.
 */
static void test_disk_full(void)
{
    if (tsu_is_etcd())
        return;
    struct corral_store *st = tsu_open("full");
    struct corral_store_obj o;
    CHECK_INT_EQ(corral_store_create(st, "/registry/pods/default/a", pod("a", "v1"), &o), 0);
    int64_t a_rev = o.mod_rev;
    corral_blob_unref(o.value);
    struct corral_store_stats s0, s1;
    corral_store_stats(st, &s0);

    struct rlimit old, lim;
    CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
    lim = old;
    lim.rlim_cur = 4096;
    signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    CHECK_INT_EQ(corral_store_create(st, "/registry/pods/default/b", pod("b", NULL), &o),
                 CORRAL_EUNAVAILABLE);
    CHECK(o.value == NULL);
    CHECK_INT_EQ(corral_store_update(st, "/registry/pods/default/a", pod("a", "v2"), 0, &o),
                 CORRAL_EUNAVAILABLE);
    CHECK_INT_EQ(corral_store_delete(st, "/registry/pods/default/a", 0, &o), CORRAL_EUNAVAILABLE);
    /* errors decided without the disk stay what they are */
    CHECK_INT_EQ(corral_store_create(st, "/registry/pods/default/a", pod("a", NULL), &o),
                 CORRAL_EEXISTS);
    CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);

    corral_store_stats(st, &s1);
    CHECK_INT_EQ(s1.rev, s0.rev);
    CHECK_INT_EQ(s1.objects, s0.objects);
    CHECK_INT_EQ(s1.bytes, s0.bytes);
    CHECK_INT_EQ(s1.history_events, s0.history_events);
    CHECK_INT_EQ(corral_store_get(st, "/registry/pods/default/b", &o), CORRAL_ENOTFOUND);
    CHECK_INT_EQ(corral_store_get(st, "/registry/pods/default/a", &o), 0);
    CHECK_INT_EQ(o.mod_rev, a_rev);
    CHECK(strstr(o.value->data, "\"v1\"") != NULL);
    corral_blob_unref(o.value);
    struct corral_store_event ev[4];
    int64_t seen;
    CHECK_INT_EQ(corral_store_events(st, "/registry/", a_rev, ev, 4, 0, &seen), 0);

    /* the disk is back */
    CHECK_INT_EQ(corral_store_create(st, "/registry/pods/default/c", pod("c", NULL), &o), 0);
    CHECK_INT_EQ(o.mod_rev, a_rev + 1);
    corral_blob_unref(o.value);
    CHECK_INT_EQ(corral_store_update(st, "/registry/pods/default/a", pod("a", "v3"), a_rev, NULL),
                 0);
    int64_t last = corral_store_revision(st);
    corral_store_close(st);

    st = tsu_open("full");
    CHECK_INT_EQ(corral_store_revision(st), last);
    CHECK_INT_EQ(corral_store_get(st, "/registry/pods/default/b", &o), CORRAL_ENOTFOUND);
    CHECK_INT_EQ(corral_store_get(st, "/registry/pods/default/c", &o), 0);
    corral_blob_unref(o.value);
    CHECK_INT_EQ(corral_store_get(st, "/registry/pods/default/a", &o), 0);
    CHECK_INT_EQ(o.mod_rev, last);
    CHECK(strstr(o.value->data, "\"v3\"") != NULL);
    corral_blob_unref(o.value);
    corral_store_close(st);
}

/* A second store on the same directory would hand out the same revisions: refused. */
static void test_exclusive(void)
{
    if (tsu_is_etcd())
        return; /* several stores on one etcd is the point of etcd (test_store_etcd.c) */
    struct corral_store *st = tsu_open("exclusive"), *st2 = NULL;
    CHECK_INT_EQ(corral_store_create(st, "/a/b", json_object(), NULL), 0);
    CHECK_INT_EQ(corral_store_open_sqlite(tsu_dir("exclusive"), &st2), CORRAL_EUNAVAILABLE);
    CHECK(st2 == NULL);
    corral_store_close(st);
    CHECK_INT_EQ(corral_store_open_sqlite(tsu_dir("exclusive"), &st2), 0);
    struct corral_store_obj o;
    CHECK_INT_EQ(corral_store_get(st2, "/a/b", &o), 0);
    corral_blob_unref(o.value);
    corral_store_close(st2);
    /* not a corral database */
    char path[600];
    snprintf(path, sizeof(path), "%s/corral.db", tsu_dir("junk"));
    mkdir(tsu_dir("junk"), 0700);
    FILE *f = fopen(path, "w");
    fputs("this is not SQLite, it is a text file that happens to be named corral.db\n", f);
    fclose(f);
    CHECK_INT_EQ(corral_store_open_sqlite(tsu_dir("junk"), &st2), CORRAL_EUNAVAILABLE);
    CHECK_INT_EQ(corral_store_open_sqlite("", &st2), -EINVAL);
}

/* ---- shutdown ----------------------------------------------------------------------------- */

struct drainer {
    struct corral_store *st;
    int id;
    int ok;   /* creates acknowledged */
    int last; /* the error that ended the loop */
};

static void *drainer_main(void *arg)
{
    struct drainer *d = arg;
    for (int i = 0;; i++) {
        char key[64];
        snprintf(key, sizeof(key), "/registry/pods/default/d%d-%05d", d->id, i);
        int rc = corral_store_create(d->st, key, pod("d", NULL), NULL);
        if (rc != 0) {
            d->last = rc;
            return NULL;
        }
        d->ok++;
    }
}

static void *blocked_watch(void *arg)
{
    struct waiter *w = arg;
    int64_t seen;
    w->n = corral_store_events(w->st, "/registry/nodes/", w->after, w->ev, 4, 20000, &seen);
    w->woke_ns = corral_now_ns();
    return NULL;
}

/*
 * Shutdown while writers hammer the store: every write either was acknowledged (and is there
 * after a restart) or was refused with CORRAL_EUNAVAILABLE; none hangs. A blocked watch ends at
 * once; reads still work until close.
 */
static void test_shutdown(void)
{
    struct corral_store *st = tsu_open("shutdown");
    enum { T = 8 };
    struct drainer d[T];
    pthread_t t[T], wt;
    struct waiter w = {.st = st, .after = corral_store_revision(st)};
    CHECK(pthread_create(&wt, NULL, blocked_watch, &w) == 0);
    for (int i = 0; i < T; i++) {
        d[i] = (struct drainer){.st = st, .id = i};
        CHECK(pthread_create(&t[i], NULL, drainer_main, &d[i]) == 0);
    }
    tsu_sleep_ms(300);
    uint64_t t0 = corral_now_ns();
    corral_store_shutdown(st);
    int total = 0;
    for (int i = 0; i < T; i++) {
        pthread_join(t[i], NULL);
        CHECK_INT_EQ(d[i].last, CORRAL_EUNAVAILABLE);
        total += d[i].ok;
    }
    pthread_join(wt, NULL);
    CHECK_INT_EQ(w.n, CORRAL_EUNAVAILABLE);
    CHECK(w.woke_ns - t0 < 5000 * 1000000ull); /* not the 20 s timeout */
    CHECK(total > 0);
    struct corral_store_stats s;
    corral_store_stats(st, &s);
    CHECK_INT_EQ(s.objects, total); /* reads still served */
    CHECK_INT_EQ(corral_store_create(st, "/registry/pods/default/late", pod("l", NULL), NULL),
                 CORRAL_EUNAVAILABLE);
    corral_store_shutdown(st); /* idempotent */
    corral_store_close(st);

    st = tsu_open("shutdown");
    corral_store_stats(st, &s);
    CHECK_INT_EQ(s.objects, total);
    for (int i = 0; i < T; i++) {
        char key[64];
        struct corral_store_obj o;
        if (d[i].ok == 0)
            continue;
        snprintf(key, sizeof(key), "/registry/pods/default/d%d-%05d", i, d[i].ok - 1);
        CHECK_INT_EQ(corral_store_get(st, key, &o), 0);
        corral_blob_unref(o.value);
    }
    fprintf(stderr, "%d writes acknowledged before the shutdown\n", total);
    corral_store_close(st);
}

STORE_TESTS(CORRAL_TEST(crud), CORRAL_TEST(bad_input), CORRAL_TEST(race_conditional),
            CORRAL_TEST(race_same_rev), CORRAL_TEST(list), CORRAL_TEST(events),
            CORRAL_TEST(events_wait), CORRAL_TEST(compaction), CORRAL_TEST(restart),
            CORRAL_TEST(memory_accounting), CORRAL_TEST(packed), CORRAL_TEST(concurrent_readers),
            CORRAL_TEST(disk_full), CORRAL_TEST(exclusive), CORRAL_TEST(shutdown))
