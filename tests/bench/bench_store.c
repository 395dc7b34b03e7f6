/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_store: the SQLite store's figures, one `name=value unit` per line.
 *
 *   store_create_durable_64t    durable creates/s, 64 client threads (group commit)
 *   store_create_durable_1t     durable creates/s, 1 client thread (one fsync each)
 *   store_create_batch_avg      writes per commit during the 64-thread run
 *   store_create_p99_64t        create latency p99, 64 threads
 *   store_get_1t / _2t          gets/s over CORRAL_BENCH_OBJECTS objects
 *   store_list_all              time to list every object
 *   store_load                  open (load) time with CORRAL_BENCH_OBJECTS objects
 *   store_json_per_object       an object's size as JSON; _packed_per_object as memory holds it
 *   store_overhead_per_object   heap bytes per object beyond its packed form, with the watch
 *                               history of its creation still held (as right after a load)
 *   store_overhead_per_object_no_history   the same once the history is compacted
 *   store_rss_per_object        RSS growth per object after a load, JSON included
 *   store_watch_p99_100w        create-to-delivery p99 with 100 watchers
 *   store_etcd_create_64t       creates/s through etcd (a local etcd on loopback), 64 threads
 *   store_etcd_load             open time with those objects in etcd
 *   (the etcd figures only when /usr/bin/etcd or $CORRAL_ETCD exists)
 *
 * CORRAL_BENCH_OBJECTS sets the object count (default 100000). The objects are pod-sized
 * (about 1.3 KB of JSON). Timings depend on the machine and its disk; never assert on them.
 */
#include "error.h"
#include "log.h"
#include "meta.h"
#include "store.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <jansson.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define DIE(...)                                                                                   \
    do {                                                                                           \
        fprintf(stderr, "bench_store: " __VA_ARGS__);                                              \
        fputc('\n', stderr);                                                                       \
        exit(1);                                                                                   \
    } while (0)

static size_t n_objects = 100000;
static char root[256];

static json_t *make_pod(const char *name)
{
    json_error_t err;
    json_t *p = json_pack_ex(
        &err, 0,
        "{s:s, s:s, s:{s:s, s:s, s:s, s:{s:s, s:s, s:s}, s:{s:s}}, "
        "s:{s:[{s:s, s:s, s:[{s:i, s:s}], s:{s:{s:s, s:s, s:s}, s:{s:s, s:s, s:s}}, "
        "s:[{s:s, s:s}, {s:s, s:s}], s:[{s:s, s:s}]}], s:s, s:s, s:s, s:i, s:[{s:s, s:s, s:s}]}, "
        "s:{s:s, s:s}}",
        "apiVersion", "v1", "kind", "Pod", "metadata", "name", name, "namespace", "default", "uid",
        "6f1c2e4a-0b7d-4e55-9d0a-8c3f2b1a9e77", "labels", "app", "llm-inference", "tier", "gpu",
        "pod-template-hash", "7d9f8c6b5", "annotations", "corral.io/gpu-share", "500", "spec",
        "containers", "name", "server", "image",
        "registry.example.com/team/vllm-server:v0.6.3-cuda12.4", "ports", "containerPort", 8000,
        "protocol", "TCP", "resources", "requests", "cpu", "4", "memory", "32Gi", "nvidia.com/gpu",
        "1", "limits", "cpu", "8", "memory", "48Gi", "nvidia.com/gpu", "1", "env", "name", "MODEL",
        "value", "meta-llama/Llama-3.1-8B-Instruct", "name", "MAX_MODEL_LEN", "value", "8192",
        "volumeMounts", "name", "models", "mountPath", "/models", "restartPolicy", "Always",
        "schedulerName", "corral-scheduler", "serviceAccountName", "default",
        "terminationGracePeriodSeconds", 30, "tolerations", "key", "nvidia.com/gpu", "operator",
        "Exists", "effect", "NoSchedule", "status", "phase", "Pending", "qosClass", "Burstable");
    if (!p)
        DIE("json_pack: %s", err.text);
    return p;
}

static double secs(uint64_t ns)
{
    return (double)ns / 1e9;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static struct corral_store *open_store(const char *name)
{
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/%s", root, name);
    struct corral_store *st;
    int rc = corral_store_open_sqlite(dir, &st);
    if (rc != 0)
        DIE("open %s: %s", dir, corral_strerror(rc));
    return st;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t p99(uint64_t *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof(*v), cmp_u64);
    return v[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1];
}

/* ---- creates ------------------------------------------------------------------------------ */

struct creator {
    struct corral_store *st;
    size_t first, count;
    uint64_t *lat; /* per create, ns */
};

static void *creator_main(void *arg)
{
    struct creator *c = arg;
    for (size_t i = 0; i < c->count; i++) {
        char name[32], key[96];
        snprintf(name, sizeof(name), "pod-%07zu", c->first + i);
        snprintf(key, sizeof(key), "/registry/pods/default/%s", name);
        uint64_t t0 = corral_now_ns();
        int rc = corral_store_create(c->st, key, make_pod(name), NULL);
        if (rc != 0)
            DIE("create %s: %s", key, corral_strerror(rc));
        if (c->lat)
            c->lat[i] = corral_now_ns() - t0;
    }
    return NULL;
}

/* Creates objects [first, first + total) with nthreads clients. Returns elapsed ns. */
static uint64_t create_run(struct corral_store *st, size_t first, size_t total, int nthreads,
                           uint64_t *lat)
{
    pthread_t t[64];
    struct creator c[64];
    size_t per = total / (size_t)nthreads;
    uint64_t t0 = corral_now_ns();
    for (int i = 0; i < nthreads; i++) {
        size_t count = i == nthreads - 1 ? total - per * (size_t)i : per;
        c[i] = (struct creator){st, first + per * (size_t)i, count,
                                lat ? lat + per * (size_t)i : NULL};
        if (pthread_create(&t[i], NULL, creator_main, &c[i]) != 0)
            DIE("pthread_create");
    }
    for (int i = 0; i < nthreads; i++)
        pthread_join(t[i], NULL);
    return corral_now_ns() - t0;
}

static void bench_creates(struct corral_store *st)
{
    size_t n1 = 2000;
    uint64_t ns = create_run(st, 0, n1, 1, NULL);
    printf("store_create_durable_1t=%.0f ops/s\n", (double)n1 / secs(ns));

    struct corral_store_stats s0, s1;
    corral_store_stats(st, &s0);
    size_t n64 = n_objects - n1;
    uint64_t *lat = calloc(n64, sizeof(*lat));
    ns = create_run(st, n1, n64, 64, lat);
    corral_store_stats(st, &s1);
    printf("store_create_durable_64t=%.0f ops/s\n", (double)n64 / secs(ns));
    printf("store_create_batch_avg=%.1f writes/commit\n",
           (double)(s1.committed_ops - s0.committed_ops) / (double)(s1.commits - s0.commits));
    printf("store_commit_avg=%.3f ms\n", (double)(s1.commit_ns_total - s0.commit_ns_total) /
                                             (double)(s1.commits - s0.commits) / 1e6);
    printf("store_create_p99_64t=%.3f ms\n", (double)p99(lat, n64) / 1e6);
    free(lat);
}

/* ---- reads -------------------------------------------------------------------------------- */

struct getter {
    struct corral_store *st;
    size_t n;
    unsigned seed;
};

static void *getter_main(void *arg)
{
    struct getter *g = arg;
    for (size_t i = 0; i < g->n; i++) {
        char key[96];
        g->seed = g->seed * 1103515245u + 12345u;
        snprintf(key, sizeof(key), "/registry/pods/default/pod-%07zu",
                 (size_t)(g->seed >> 8) % n_objects);
        struct corral_store_obj o;
        if (corral_store_get(g->st, key, &o) != 0)
            DIE("get %s", key);
        corral_blob_unref(o.value);
    }
    return NULL;
}

static void bench_gets(struct corral_store *st, int nthreads)
{
    pthread_t t[8];
    struct getter g[8];
    size_t per = 1000000;
    uint64_t t0 = corral_now_ns();
    for (int i = 0; i < nthreads; i++) {
        g[i] = (struct getter){st, per, (unsigned)i * 7919u + 1};
        pthread_create(&t[i], NULL, getter_main, &g[i]);
    }
    for (int i = 0; i < nthreads; i++)
        pthread_join(t[i], NULL);
    uint64_t ns = corral_now_ns() - t0;
    printf("store_get_%dt=%.0f ops/s\n", nthreads, (double)per * nthreads / secs(ns));
}

static void bench_list(struct corral_store *st)
{
    struct corral_store_list l;
    struct corral_store_list_opts lo = {.prefix = "/registry/pods/"};
    uint64_t t0 = corral_now_ns();
    if (corral_store_list(st, &lo, &l) != 0 || l.n != n_objects)
        DIE("list");
    uint64_t ns = corral_now_ns() - t0;
    corral_store_list_clear(&l);
    printf("store_list_all=%.1f ms\n", (double)ns / 1e6);
}

/* ---- load and memory ---------------------------------------------------------------------- */

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

static void bench_load(void)
{
    malloc_trim(0);
    size_t heap0 = mallinfo2().uordblks;
    long rss0 = rss_kb();
    uint64_t t0 = corral_now_ns();
    struct corral_store *st = open_store("main");
    uint64_t ns = corral_now_ns() - t0;
    size_t heap1 = mallinfo2().uordblks;
    long rss1 = rss_kb();
    struct corral_store_stats s;
    corral_store_stats(st, &s);
    if (s.objects != n_objects)
        DIE("loaded %" PRIu64 " objects, wanted %zu", s.objects, n_objects);
    printf("store_load=%.0f ms\n", (double)ns / 1e6);
    printf("store_load_objects=%" PRIu64 " objects\n", s.objects);
    printf("store_json_per_object=%.0f bytes\n", (double)s.bytes / (double)s.objects);
    printf("store_packed_per_object=%.0f bytes\n", (double)s.mem / (double)s.objects);
    printf("store_dictionaries=%" PRIu64 " dictionaries, %.0f KB\n", s.dicts,
           (double)s.dict_mem / 1024.0);
    printf("store_overhead_per_object=%.0f bytes\n",
           ((double)heap1 - (double)heap0 - (double)s.mem) / (double)s.objects);
    printf("store_rss_per_object=%.0f bytes\n", (double)(rss1 - rss0) * 1024.0 / (double)s.objects);
    printf("store_rss_after_load=%.1f MB\n", (double)rss1 / 1024.0);
    printf("store_history_after_load=%" PRIu64 " events\n", s.history_events);
    /* the same without the watch history (once retention has dropped it) */
    corral_store_compact(st, s.rev);
    malloc_trim(0);
    size_t heap2 = mallinfo2().uordblks;
    printf("store_overhead_per_object_no_history=%.0f bytes\n",
           ((double)heap2 - (double)heap0 - (double)s.mem) / (double)s.objects);
    bench_gets(st, 1);
    bench_gets(st, 2);
    bench_list(st);
    corral_store_close(st);
}

/* ---- watch delivery ----------------------------------------------------------------------- */

#define WATCHERS 100
#define WATCH_EVENTS 2000

static uint64_t watch_start[WATCH_EVENTS];

struct watcher {
    struct corral_store *st;
    int64_t after;
    uint64_t *lat;
    size_t n;
};

static void *watcher_main(void *arg)
{
    struct watcher *w = arg;
    struct corral_store_event ev[64];
    while (w->n < WATCH_EVENTS) {
        int64_t seen;
        int n = corral_store_events(w->st, "/registry/events/", w->after, ev, 64, 2000, &seen);
        if (n < 0)
            DIE("events: %s", corral_strerror(n));
        if (n == 0 && seen == w->after)
            DIE("watcher starved");
        uint64_t now = corral_now_ns();
        for (int i = 0; i < n; i++) {
            size_t idx = strtoul(strrchr(ev[i].key, '-') + 1, NULL, 10);
            w->lat[w->n++] = now - __atomic_load_n(&watch_start[idx], __ATOMIC_ACQUIRE);
            corral_store_event_clear(&ev[i]);
        }
        w->after = seen;
    }
    return NULL;
}

struct watch_writer {
    struct corral_store *st;
    int id, nthreads;
};

static void *watch_writer_main(void *arg)
{
    struct watch_writer *w = arg;
    for (size_t i = (size_t)w->id; i < WATCH_EVENTS; i += (size_t)w->nthreads) {
        char key[64];
        snprintf(key, sizeof(key), "/registry/events/default/e-%zu", i);
        __atomic_store_n(&watch_start[i], corral_now_ns(), __ATOMIC_RELEASE);
        if (corral_store_create(w->st, key, json_pack("{s:i}", "i", (json_int_t)i), NULL) != 0)
            DIE("create %s", key);
        usleep(1000); /* a steady stream, not one burst */
    }
    return NULL;
}

static void bench_watch(void)
{
    struct corral_store *st = open_store("watch");
    static struct watcher w[WATCHERS];
    pthread_t wt[WATCHERS], ct[4];
    struct watch_writer ww[4];
    int64_t rev = corral_store_revision(st);
    for (int i = 0; i < WATCHERS; i++) {
        w[i] = (struct watcher){st, rev, calloc(WATCH_EVENTS, sizeof(uint64_t)), 0};
        pthread_create(&wt[i], NULL, watcher_main, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        ww[i] = (struct watch_writer){st, i, 4};
        pthread_create(&ct[i], NULL, watch_writer_main, &ww[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(ct[i], NULL);
    uint64_t *all = malloc(sizeof(uint64_t) * WATCHERS * WATCH_EVENTS);
    size_t n = 0;
    for (int i = 0; i < WATCHERS; i++) {
        pthread_join(wt[i], NULL);
        memcpy(all + n, w[i].lat, w[i].n * sizeof(uint64_t));
        n += w[i].n;
        free(w[i].lat);
    }
    printf("store_watch_p99_100w=%.2f ms\n", (double)p99(all, n) / 1e6);
    printf("store_watch_max_100w=%.2f ms\n", (double)all[n - 1] / 1e6);
    free(all);
    corral_store_close(st);
}

/* ---- etcd -------------------------------------------------------------------------------- */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        DIE("probing a port: %s", strerror(errno));
    close(fd);
    return ntohs(a.sin_port);
}

/* Starts etcd in root/etcd; returns its pid and the client URL in url, 0 without etcd. */
static pid_t etcd_start(char *url, size_t len)
{
    const char *bin = getenv("CORRAL_ETCD") ? getenv("CORRAL_ETCD") : "/usr/bin/etcd";
    if (access(bin, X_OK) != 0)
        return 0;
    char data[300], curls[64], purls[64], cluster[96], log[300];
    snprintf(curls, sizeof(curls), "http://127.0.0.1:%d", free_port());
    snprintf(purls, sizeof(purls), "http://127.0.0.1:%d", free_port());
    snprintf(cluster, sizeof(cluster), "default=%s", purls);
    static int runs;
    snprintf(data, sizeof(data), "%s/etcd-%d", root, runs++);
    snprintf(log, sizeof(log), "%s/etcd.log", root);
    snprintf(url, len, "%s", curls);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(bin, bin, "--name", "default", "--data-dir", data, "--listen-client-urls", curls,
              "--advertise-client-urls", curls, "--listen-peer-urls", purls,
              "--initial-advertise-peer-urls", purls, "--initial-cluster", cluster,
              "--quota-backend-bytes", "8589934592", (char *)NULL);
        _exit(127);
    }
    return pid;
}

static size_t discard(char *p, size_t size, size_t n, void *ctx)
{
    (void)p;
    (void)ctx;
    return size * n;
}

/* True once etcd's gateway answers /v3/maintenance/status. */
static bool etcd_up(const char *url)
{
    char u[128];
    snprintf(u, sizeof(u), "%s/v3/maintenance/status", url);
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, u);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, "{}");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 1000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    return status == 200;
}

/* Starts etcd (up to three tries on fresh ports). Returns its pid, 0 without an etcd binary. */
static pid_t etcd_run(char *url, size_t len)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        pid_t pid = etcd_start(url, len);
        if (!pid)
            return 0;
        for (int i = 0; i < 100; i++) {
            if (etcd_up(url))
                return pid;
            usleep(100000);
        }
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    DIE("etcd did not come up");
}

static struct corral_store *etcd_open(const char *url)
{
    struct corral_store *st = NULL;
    int rc = corral_store_open_etcd(url, "/bench", &st);
    if (rc != 0)
        DIE("open etcd store: %s", corral_strerror(rc));
    return st;
}

static void bench_etcd(void)
{
    char url[64];
    pid_t pid = etcd_run(url, sizeof(url));
    if (!pid)
        return;
    size_t n = n_objects / 5 < 20000 ? n_objects / 5 : 20000;
    struct corral_store *st = etcd_open(url);
    uint64_t ns = create_run(st, 0, n, 64, NULL);
    printf("store_etcd_create_64t=%.0f ops/s\n", (double)n / secs(ns));
    corral_store_close(st);
    uint64_t t0 = corral_now_ns();
    st = etcd_open(url);
    ns = corral_now_ns() - t0;
    printf("store_etcd_load=%.0f ms\n", (double)ns / 1e6);
    printf("store_etcd_load_objects=%zu objects\n", n);
    corral_store_close(st);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

/* Runs the load phase in a fresh process, so that its RSS is not the create phase's leftovers. */
static void bench_load_fresh(void)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        DIE("fork: %s", strerror(errno));
    if (pid == 0) {
        char n[32];
        snprintf(n, sizeof(n), "%zu", n_objects);
        execl("/proc/self/exe", "bench_store", "--load", root, n, (char *)NULL);
        _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        DIE("load phase failed");
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--load") == 0) {
        snprintf(root, sizeof(root), "%s", argv[2]);
        n_objects = (size_t)atol(argv[3]);
        corral_log_set_level(CORRAL_LOG_WARN);
        setvbuf(stdout, NULL, _IOLBF, 0);
        bench_load();
        return 0;
    }
    const char *env = getenv("CORRAL_BENCH_OBJECTS");
    if (env && atol(env) > 2000)
        n_objects = (size_t)atol(env);
    const char *tmp = getenv("TMPDIR");
    snprintf(root, sizeof(root), "%s/corral-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(root))
        DIE("mkdtemp: %s", strerror(errno));
    corral_log_set_level(CORRAL_LOG_WARN);
    setvbuf(stdout, NULL, _IOLBF, 0);

    struct corral_store *st = open_store("main");
    bench_creates(st);
    corral_store_close(st);
    bench_load_fresh();
    bench_watch();
    bench_etcd();

    nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
