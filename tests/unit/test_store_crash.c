/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Crash test for the SQLite store: a child process opens the store and writes from many threads
 * (creates, updates of per-thread counters, deletes), reporting each write on a pipe only after
 * the store acknowledged it. The parent kills the child with SIGKILL at a random moment (some
 * rounds while it is still opening), reads every report that made it into the pipe, reopens
 * the store and checks that every acknowledged write is there, every object is intact JSON with
 * the right resourceVersion, and revisions never go back. Several rounds share one directory,
 * so each round also recovers from the previous crashes.
 */
#include "test_store_util.h"

#include "store.h"

#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>

#define THREADS 16
#define ROUNDS 6
#define MAX_ACKS 200000

enum ack_kind { ACK_CREATE = 'C', ACK_UPDATE = 'U', ACK_DELETE = 'D' };

struct ack {
    char kind;
    char key[96];
    int64_t rev;
    long n; /* counter value for updates */
};

struct child_thread {
    struct corral_store *st;
    int fd;
    int round;
    int id;
};

static void ack_write(int fd, char kind, const char *key, int64_t rev, long n)
{
    char line[200];
    int len = snprintf(line, sizeof(line), "%c %s %" PRId64 " %ld\n", kind, key, rev, n);
    /* one write() below PIPE_BUF: a report is either whole in the pipe or absent */
    if (write(fd, line, (size_t)len) != len)
        _exit(3);
}

static json_t *object(const char *name, long n)
{
    return json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:i, s:s}}", "apiVersion", "v1", "kind",
                     "ConfigMap", "metadata", "name", name, "namespace", "default", "data", "n",
                     (json_int_t)n, "pad",
                     "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
}

static void *child_writer(void *arg)
{
    struct child_thread *t = arg;
    char counter[96];
    snprintf(counter, sizeof(counter), "/registry/counters/r%d-t%d", t->round, t->id);
    struct corral_store_obj o;
    if (corral_store_create(t->st, counter, object("counter", 0), &o) != 0)
        _exit(4);
    ack_write(t->fd, ACK_CREATE, counter, o.mod_rev, 0);
    corral_blob_unref(o.value);
    for (long i = 1;; i++) {
        char key[96], name[64];
        snprintf(name, sizeof(name), "r%d-t%d-%ld", t->round, t->id, i);
        snprintf(key, sizeof(key), "/registry/configmaps/default/%s", name);
        if (corral_store_create(t->st, key, object(name, i), &o) != 0)
            _exit(5);
        ack_write(t->fd, ACK_CREATE, key, o.mod_rev, i);
        corral_blob_unref(o.value);
        if (i % 3 == 0) {
            if (corral_store_update(t->st, counter, object("counter", i), 0, &o) != 0)
                _exit(6);
            ack_write(t->fd, ACK_UPDATE, counter, o.mod_rev, i);
            corral_blob_unref(o.value);
        }
        if (i % 7 == 0) {
            if (corral_store_delete(t->st, key, 0, &o) != 0)
                _exit(7);
            ack_write(t->fd, ACK_DELETE, key, o.mod_rev, i);
            corral_blob_unref(o.value);
        }
    }
    return NULL;
}

static void child_main(const char *dir, int round, int fd)
{
    struct corral_store *st = NULL;
    if (corral_store_open_sqlite(dir, &st) != 0)
        _exit(2);
    static struct child_thread t[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        t[i] = (struct child_thread){.st = st, .fd = fd, .round = round, .id = i};
        if (pthread_create(&th[i], NULL, child_writer, &t[i]) != 0)
            _exit(8);
    }
    for (;;)
        pause();
}

struct reader {
    int fd;
    struct ack *acks;
    size_t n;
};

/* Reads the child's reports until EOF (the pipe must not fill up and stall the child). */
static void *read_acks(void *arg)
{
    struct reader *r = arg;
    FILE *f = fdopen(r->fd, "r");
    CHECK(f != NULL);
    char line[256];
    while (fgets(line, sizeof(line), f)) {
        CHECK(r->n < MAX_ACKS);
        struct ack *a = &r->acks[r->n];
        CHECK(sscanf(line, "%c %95s %" SCNd64 " %ld", &a->kind, a->key, &a->rev, &a->n) == 4);
        r->n++;
    }
    fclose(f);
    return NULL;
}

static long data_n(const json_t *j)
{
    return (long)json_integer_value(json_object_get(json_object_get(j, "data"), "n"));
}

/* Checks one acknowledged write against the recovered store. */
static void verify_ack(struct corral_store *st, const struct ack *a)
{
    struct corral_store_obj o;
    int rc = corral_store_get(st, a->key, &o);
    if (a->kind == ACK_DELETE) {
        CHECK_INT_EQ(rc, CORRAL_ENOTFOUND);
        return;
    }
    if (a->kind == ACK_CREATE && strncmp(a->key, "/registry/configmaps/", 21) == 0) {
        /* every 7th is deleted right after; that delete may have committed unreported */
        if (rc == CORRAL_ENOTFOUND && a->n % 7 == 0)
            return;
        CHECK_INT_EQ(rc, 0);
        CHECK_INT_EQ(o.mod_rev, a->rev); /* never updated */
    } else {
        CHECK_INT_EQ(rc, 0);
        CHECK(o.mod_rev >= a->rev); /* a later update may have committed unreported */
    }
    json_t *j = corral_blob_json(o.value);
    CHECK(j != NULL);
    char rv[24];
    snprintf(rv, sizeof(rv), "%" PRId64, o.mod_rev);
    CHECK_STR_EQ(
        json_string_value(json_object_get(json_object_get(j, "metadata"), "resourceVersion")), rv);
    CHECK(data_n(j) >= a->n);
    json_decref(j);
    corral_blob_unref(o.value);
}

/* Every stored object is whole: valid JSON whose resourceVersion is its mod revision. */
static size_t verify_all(struct corral_store *st)
{
    struct corral_store_list l;
    struct corral_store_list_opts lo = {.prefix = "/registry/"};
    CHECK_INT_EQ(corral_store_list(st, &lo, &l), 0);
    for (size_t i = 0; i < l.n; i++) {
        json_t *j = corral_blob_json(l.items[i]);
        CHECK(j != NULL);
        struct corral_store_obj o;
        CHECK_INT_EQ(corral_store_get(st, l.keys[i], &o), 0);
        char rv[24];
        snprintf(rv, sizeof(rv), "%" PRId64, o.mod_rev);
        CHECK_STR_EQ(
            json_string_value(json_object_get(json_object_get(j, "metadata"), "resourceVersion")),
            rv);
        CHECK_STR_EQ(json_string_value(json_object_get(j, "kind")), "ConfigMap");
        corral_blob_unref(o.value);
        json_decref(j);
    }
    size_t n = l.n;
    corral_store_list_clear(&l);
    return n;
}

static void test_kill9(void)
{
    const char *dir = tsu_dir("crash");
    static struct ack acks[MAX_ACKS];
    int64_t max_rev = 0;
    srand((unsigned)getpid());
    for (int round = 0; round < ROUNDS; round++) {
        int fds[2];
        CHECK(pipe(fds) == 0);
        fflush(NULL);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            child_main(dir, round, fds[1]);
        }
        close(fds[1]);
        struct reader rd = {.fd = fds[0], .acks = acks};
        pthread_t rt;
        CHECK(pthread_create(&rt, NULL, read_acks, &rd) == 0);
        /* round 0 dies while opening an empty store, the others at 150..650 ms */
        int delay = round == 0 ? 2 : 150 + rand() % 500;
        tsu_sleep_ms(delay);
        CHECK(kill(pid, SIGKILL) == 0);
        pthread_join(rt, NULL);
        size_t n = rd.n;
        int status;
        CHECK(waitpid(pid, &status, 0) == pid);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL); /* no write failed */

        struct corral_store *st = NULL;
        CHECK_INT_EQ(corral_store_open_sqlite(dir, &st), 0);
        int64_t round_max = 0;
        for (size_t i = 0; i < n; i++) {
            verify_ack(st, &acks[i]);
            if (acks[i].rev > round_max)
                round_max = acks[i].rev;
        }
        CHECK(round_max == 0 || round_max > max_rev); /* revisions never go back */
        if (round_max > max_rev)
            max_rev = round_max;
        CHECK(corral_store_revision(st) >= max_rev);
        size_t objects = verify_all(st);
        fprintf(stderr,
                "round %d: killed after %d ms, %zu acknowledged writes, %zu objects, "
                "revision %" PRId64 "\n",
                round, delay, n, objects, corral_store_revision(st));
        corral_store_close(st);
    }
    CHECK(max_rev > 0);
}

STORE_TESTS(CORRAL_TEST(kill9))
