/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests for the etcd store beyond the shared suite (test_store.c runs that against etcd too):
 * two apiservers sharing one etcd (each sees the other's writes, conditional updates race
 * correctly across them), endpoint lists and failover, bad arguments, and an etcd that is killed
 * and restarted while another apiserver writes and compacts, after which the first one must
 * catch up (re-listing when etcd compacted past its watch). Needs the etcd binary (else 77).
 */
#include "test_store_util.h"

#include "meta.h"
#include "pki.h"
#include "store.h"

#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>

static json_t *obj(const char *name, int v)
{
    return json_pack("{s:s, s:s, s:{s:s}, s:{s:i}}", "apiVersion", "v1", "kind", "ConfigMap",
                     "metadata", "name", name, "data", "v", v);
}

static struct corral_store *open_prefix(const char *prefix)
{
    tsu_etcd_start();
    struct corral_store *st = NULL;
    CHECK_INT_EQ(corral_store_open_etcd(tsu_etcd_url, prefix, &st), 0);
    return st;
}

/* Waits until st has reached rev (through its watch). */
static void wait_rev(struct corral_store *st, int64_t rev)
{
    for (int i = 0; i < 500 && corral_store_revision(st) < rev; i++)
        tsu_sleep_ms(20);
    CHECK(corral_store_revision(st) >= rev);
}

/* Both stores hold the same objects, byte for byte. */
static void check_same(struct corral_store *a, struct corral_store *b, const char *prefix)
{
    struct corral_store_list la, lb;
    struct corral_store_list_opts lo = {.prefix = prefix};
    CHECK_INT_EQ(corral_store_list(a, &lo, &la), 0);
    CHECK_INT_EQ(corral_store_list(b, &lo, &lb), 0);
    CHECK_INT_EQ(la.n, lb.n);
    for (size_t i = 0; i < la.n; i++) {
        CHECK_STR_EQ(la.keys[i], lb.keys[i]);
        CHECK_STR_EQ(la.items[i]->data, lb.items[i]->data);
    }
    corral_store_list_clear(&la);
    corral_store_list_clear(&lb);
}

struct racer {
    struct corral_store *st;
    int64_t rev;
    pthread_barrier_t *bar;
    int rc;
};

static void *racer_main(void *arg)
{
    struct racer *r = arg;
    pthread_barrier_wait(r->bar);
    r->rc = corral_store_update(r->st, "/registry/configmaps/x", obj("x", 9), r->rev, NULL);
    return NULL;
}

static void test_two_apiservers(void)
{
    struct corral_store *a = open_prefix("/shared"), *b = open_prefix("/shared");
    struct corral_store_obj o, ob;
    int64_t r0 = corral_store_revision(b);
    CHECK_INT_EQ(corral_store_create(a, "/registry/configmaps/x", obj("x", 1), &o), 0);
    wait_rev(b, o.mod_rev);
    CHECK_INT_EQ(corral_store_get(b, "/registry/configmaps/x", &ob), 0);
    CHECK_INT_EQ(ob.mod_rev, o.mod_rev);
    CHECK_INT_EQ(ob.create_rev, o.create_rev);
    CHECK_STR_EQ(ob.value->data, o.value->data); /* same bytes, same resourceVersion */
    corral_blob_unref(ob.value);
    int64_t rev = o.mod_rev;
    corral_blob_unref(o.value);
    /* B's watch saw A's write */
    struct corral_store_event ev[4];
    int64_t seen;
    CHECK_INT_EQ(corral_store_events(b, "/registry/", r0, ev, 4, 2000, &seen), 1);
    CHECK_INT_EQ(ev[0].type, CORRAL_EVENT_ADDED);
    CHECK_INT_EQ(ev[0].rev, rev);
    corral_store_event_clear(&ev[0]);
    /* A creating what B created: AlreadyExists, decided by etcd */
    CHECK_INT_EQ(corral_store_create(b, "/registry/configmaps/x", obj("x", 2), NULL),
                 CORRAL_EEXISTS);

    /* the same expect_rev from both apiservers at once: exactly one wins, every round */
    for (int round = 0; round < 5; round++) {
        enum { N = 8 };
        pthread_barrier_t bar;
        pthread_barrier_init(&bar, NULL, N);
        struct racer r[N];
        pthread_t t[N];
        for (int i = 0; i < N; i++) {
            r[i] = (struct racer){.st = i % 2 ? a : b, .rev = rev, .bar = &bar};
            CHECK(pthread_create(&t[i], NULL, racer_main, &r[i]) == 0);
        }
        int wins = 0;
        for (int i = 0; i < N; i++) {
            pthread_join(t[i], NULL);
            if (r[i].rc == 0)
                wins++;
            else
                CHECK_INT_EQ(r[i].rc, CORRAL_ECONFLICT);
        }
        pthread_barrier_destroy(&bar);
        CHECK_INT_EQ(wins, 1);
        wait_rev(a, corral_store_revision(b));
        wait_rev(b, corral_store_revision(a));
        CHECK_INT_EQ(corral_store_get(a, "/registry/configmaps/x", &o), 0);
        CHECK(o.mod_rev > rev);
        rev = o.mod_rev;
        corral_blob_unref(o.value);
    }

    /* B deletes; A's watch reports it with the last state */
    int64_t ra = corral_store_revision(a);
    CHECK_INT_EQ(corral_store_delete(b, "/registry/configmaps/x", rev, &o), 0);
    CHECK_INT_EQ(corral_store_events(a, "/registry/", ra, ev, 4, 2000, &seen), 1);
    CHECK_INT_EQ(ev[0].type, CORRAL_EVENT_DELETED);
    CHECK_INT_EQ(ev[0].rev, o.mod_rev);
    CHECK_STR_EQ(ev[0].value->data, o.value->data);
    CHECK(ev[0].prev != NULL);
    corral_store_event_clear(&ev[0]);
    corral_blob_unref(o.value);
    CHECK_INT_EQ(corral_store_get(a, "/registry/configmaps/x", &o), CORRAL_ENOTFOUND);
    check_same(a, b, "/");
    corral_store_close(a);
    corral_store_close(b);
}

static void test_endpoints(void)
{
    tsu_etcd_start();
    struct corral_store *st = NULL;
    char eps[256];
    /* port 1 refuses: the store moves on to the next endpoint */
    snprintf(eps, sizeof(eps), "http://127.0.0.1:1,%s/", tsu_etcd_url);
    CHECK_INT_EQ(corral_store_open_etcd(eps, "/failover", &st), 0);
    CHECK_INT_EQ(corral_store_create(st, "/registry/a/b", obj("b", 1), NULL), 0);
    corral_store_close(st);

    CHECK_INT_EQ(corral_store_open_etcd("http://127.0.0.1:1", "/x", &st), CORRAL_EUNAVAILABLE);
    CHECK(st == NULL);
    CHECK_INT_EQ(corral_store_open_etcd("ftp://127.0.0.1:2379", "/x", &st), -EINVAL);
    CHECK_INT_EQ(corral_store_open_etcd("", "/x", &st), -EINVAL);
    CHECK_INT_EQ(corral_store_open_etcd(tsu_etcd_url, "corral", &st), -EINVAL);
    CHECK_INT_EQ(corral_store_open_etcd(NULL, "/x", &st), -EINVAL);

    /* etcd refuses requests over 1.5 MiB: the caller learns it is too large, nothing else */
    CHECK_INT_EQ(corral_store_open_etcd(tsu_etcd_url, "/big", &st), 0);
    size_t sizes[] = {1600 << 10, 2 << 20}; /* over etcd's 1.5 MiB; over the gateway's 2 MiB */
    for (int i = 0; i < 2; i++) {
        char *big = malloc(sizes[i]);
        memset(big, 'x', sizes[i] - 1);
        big[sizes[i] - 1] = '\0';
        json_t *o = json_pack("{s:{s:s}, s:s}", "metadata", "name", "big", "data", big);
        free(big);
        CHECK_INT_EQ(corral_store_create(st, "/registry/configmaps/big", o, NULL),
                     CORRAL_ETOOLARGE);
    }
    CHECK_INT_EQ(corral_store_create(st, "/registry/configmaps/small", obj("s", 1), NULL), 0);
    corral_store_close(st);

    /* a prefix is a boundary: /failover2 does not see /failover's keys */
    CHECK_INT_EQ(corral_store_open_etcd(tsu_etcd_url, "/failover2/", &st), 0);
    struct corral_store_stats s;
    corral_store_stats(st, &s);
    CHECK_INT_EQ(s.objects, 0);
    corral_store_close(st);
}

/*
 * etcd dies under apiserver A: reads go on from memory, writes fail. etcd comes back; B writes,
 * deletes and compacts etcd past A's watch. A must converge on B's state (re-listing if its
 * watch was compacted away).
 */
static void test_etcd_restart(void)
{
    struct corral_store *a = open_prefix("/restart");
    for (int i = 0; i < 10; i++) {
        char key[64];
        snprintf(key, sizeof(key), "/registry/configmaps/k%d", i);
        CHECK_INT_EQ(corral_store_create(a, key, obj("k", i), NULL), 0);
    }
    int64_t before = corral_store_revision(a);
    tsu_etcd_kill();
    struct corral_store_obj o;
    CHECK_INT_EQ(corral_store_get(a, "/registry/configmaps/k3", &o), 0); /* from memory */
    corral_blob_unref(o.value);
    CHECK_INT_EQ(corral_store_create(a, "/registry/configmaps/down", obj("d", 0), NULL),
                 CORRAL_EUNAVAILABLE);
    tsu_sleep_ms(1500); /* A's watch backs off meanwhile */
    tsu_etcd_restart();

    struct corral_store *b = open_prefix("/restart");
    CHECK_INT_EQ(corral_store_revision(b), before); /* etcd kept every acknowledged write */
    for (int i = 10; i < 20; i++) {
        char key[64];
        snprintf(key, sizeof(key), "/registry/configmaps/k%d", i);
        CHECK_INT_EQ(corral_store_create(b, key, obj("k", i), NULL), 0);
    }
    CHECK_INT_EQ(corral_store_delete(b, "/registry/configmaps/k0", 0, NULL), 0);
    CHECK_INT_EQ(corral_store_compact(b, corral_store_revision(b)), 0);
    int64_t head = corral_store_revision(b);

    wait_rev(a, head);
    check_same(a, b, "/");
    struct corral_store_stats s;
    corral_store_stats(a, &s);
    CHECK_INT_EQ(s.objects, 19);
    fprintf(stderr, "apiserver A %s\n",
            s.compacted_rev > before ? "re-listed after the compaction"
                                     : "caught up on the watch before the compaction");
    /* and A writes again */
    CHECK_INT_EQ(corral_store_create(a, "/registry/configmaps/after", obj("a", 0), &o), 0);
    CHECK(o.mod_rev > head);
    corral_blob_unref(o.value);
    corral_store_close(b);
    corral_store_close(a);
}

struct filler {
    struct corral_store *st;
    int from, to;
};

static void *filler_main(void *arg)
{
    struct filler *f = arg;
    for (int i = f->from; i < f->to; i++) {
        char key[64];
        snprintf(key, sizeof(key), "/registry/configmaps/p%05d", i);
        CHECK_INT_EQ(corral_store_create(f->st, key, obj("p", i), NULL), 0);
    }
    return NULL;
}

/* More keys than one range page: the load pages through them at one revision. */
static void test_paging(void)
{
    struct corral_store *a = open_prefix("/paging");
    enum { N = 2500, T = 16 };
    struct filler f[T];
    pthread_t t[T];
    for (int i = 0; i < T; i++) {
        f[i] = (struct filler){a, N * i / T, N * (i + 1) / T};
        CHECK(pthread_create(&t[i], NULL, filler_main, &f[i]) == 0);
    }
    for (int i = 0; i < T; i++)
        pthread_join(t[i], NULL);
    struct corral_store *b = open_prefix("/paging");
    struct corral_store_stats s;
    corral_store_stats(b, &s);
    CHECK_INT_EQ(s.objects, N);
    CHECK_INT_EQ(corral_store_revision(b), corral_store_revision(a));
    check_same(a, b, "/registry/");
    corral_store_close(b);
    corral_store_close(a);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    CHECK(fputs(text, f) >= 0);
    CHECK(fclose(f) == 0);
}

/* A CA, etcd's serving certificate and a client certificate, as PEM files under dir. */
static void make_pki(const char *dir)
{
    char *ca, *ca_key, *srv, *srv_key, *cli, *cli_key, path[512];
    CHECK_INT_EQ(corral_pki_ca_new("etcd-ca", 1, CORRAL_PKI_KEY_ECDSA_P256, &ca, &ca_key), 0);
    const char *ips[] = {"127.0.0.1", NULL}, *dns[] = {"localhost", NULL};
    /* etcd's JSON gateway dials etcd's own gRPC side with the serving certificate as its
     * client certificate: under --client-cert-auth that one needs clientAuth too */
    struct corral_pki_cert_spec server = {.cn = "etcd",
                                          .dns_names = dns,
                                          .ip_addrs = ips,
                                          .usage =
                                              CORRAL_PKI_USAGE_SERVER | CORRAL_PKI_USAGE_CLIENT,
                                          .days = 1};
    struct corral_pki_cert_spec client = {
        .cn = "corral-apiserver", .usage = CORRAL_PKI_USAGE_CLIENT, .days = 1};
    CHECK_INT_EQ(
        corral_pki_issue(ca, ca_key, &server, NULL, CORRAL_PKI_KEY_ECDSA_P256, &srv, &srv_key), 0);
    CHECK_INT_EQ(
        corral_pki_issue(ca, ca_key, &client, NULL, CORRAL_PKI_KEY_ECDSA_P256, &cli, &cli_key), 0);
    const char *names[] = {"ca.pem", "server.pem", "server-key.pem", "client.pem",
                           "client-key.pem"};
    const char *texts[] = {ca, srv, srv_key, cli, cli_key};
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        write_file(path, texts[i]);
    }
    free(ca);
    free(srv);
    free(cli);
    corral_pki_free_secret(ca_key);
    corral_pki_free_secret(srv_key);
    corral_pki_free_secret(cli_key);
}

/* Starts a second etcd that serves clients over TLS and demands client certificates. */
static pid_t etcd_tls_start(const char *dir, char *url, size_t len)
{
    char data[600], log[600], curls[64], purls[64], cluster[96], cert[600], key[600], ca[600];
    snprintf(curls, sizeof(curls), "https://127.0.0.1:%d", tsu_free_port());
    snprintf(purls, sizeof(purls), "http://127.0.0.1:%d", tsu_free_port());
    snprintf(cluster, sizeof(cluster), "tls=%s", purls);
    snprintf(data, sizeof(data), "%s/data", dir);
    snprintf(log, sizeof(log), "%s/etcd.log", dir);
    snprintf(cert, sizeof(cert), "%s/server.pem", dir);
    snprintf(key, sizeof(key), "%s/server-key.pem", dir);
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    snprintf(url, len, "%s", curls);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(tsu_etcd_binary(), "etcd", "--name", "tls", "--data-dir", data,
              "--listen-client-urls", curls, "--advertise-client-urls", curls, "--listen-peer-urls",
              purls, "--initial-advertise-peer-urls", purls, "--initial-cluster", cluster,
              "--cert-file", cert, "--key-file", key, "--trusted-ca-file", ca, "--client-cert-auth",
              (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* etcd over TLS with client certificates: the right files work, anything less is refused. */
static void test_tls(void)
{
    tsu_etcd_start(); /* skips (77) without etcd */
    char dir[300], url[64], ca[400], cert[400], key[400];
    snprintf(dir, sizeof(dir), "%s/tls", tsu_root);
    CHECK(mkdir(dir, 0700) == 0);
    make_pki(dir);
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    snprintf(cert, sizeof(cert), "%s/client.pem", dir);
    snprintf(key, sizeof(key), "%s/client-key.pem", dir);
    pid_t pid = etcd_tls_start(dir, url, sizeof(url));
    struct corral_store_etcd_tls tls = {.ca_file = ca, .cert_file = cert, .key_file = key};
    struct corral_store *st = NULL;
    for (int i = 0; i < 150 && corral_store_open_etcd_tls(url, "/tls", &tls, &st) != 0; i++)
        tsu_sleep_ms(100);
    CHECK(st != NULL);
    struct corral_store_obj o;
    int64_t r0 = corral_store_revision(st);
    CHECK_INT_EQ(corral_store_create(st, "/registry/secrets/default/s", obj("s", 1), &o), 0);
    corral_blob_unref(o.value);
    struct corral_store_event ev[2];
    int64_t seen;
    CHECK_INT_EQ(corral_store_events(st, "/registry/", r0, ev, 2, 2000, &seen), 1);
    corral_store_event_clear(&ev[0]);
    corral_store_close(st);

    struct corral_store_etcd_tls no_client = {.ca_file = ca};
    CHECK_INT_EQ(corral_store_open_etcd_tls(url, "/tls", &no_client, &st), CORRAL_EUNAVAILABLE);
    struct corral_store_etcd_tls no_ca = {.cert_file = cert, .key_file = key};
    CHECK_INT_EQ(corral_store_open_etcd_tls(url, "/tls", &no_ca, &st), CORRAL_EUNAVAILABLE);
    CHECK_INT_EQ(corral_store_open_etcd(url, "/tls", &st), CORRAL_EUNAVAILABLE);
    struct corral_store_etcd_tls half = {.ca_file = ca, .cert_file = cert};
    CHECK_INT_EQ(corral_store_open_etcd_tls(url, "/tls", &half, &st), -EINVAL);
    struct corral_store_etcd_tls missing = {.ca_file = "/nonexistent/ca.pem"};
    CHECK_INT_EQ(corral_store_open_etcd_tls(url, "/tls", &missing, &st), -EINVAL);
    CHECK(st == NULL);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

STORE_TESTS(CORRAL_TEST(two_apiservers), CORRAL_TEST(endpoints), CORRAL_TEST(paging),
            CORRAL_TEST(tls), CORRAL_TEST(etcd_restart))
