/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_apiserver: the apiserver figures of issue #2, measured over HTTP against the real
 * `corral apiserver` (argv[1], the binary this build made) on a loopback port, one
 * `name=value unit` line each:
 *
 *   apiserver_create_durable_64c    durable creates/s: 64 keep-alive clients POST ~1 KB pods
 *                                   until CORRAL_BENCH_PODS are stored (each 201 means the pod
 *                                   is committed to disk); _p50/_p99 are their latencies
 *   apiserver_get_64c               GETs/s of single pods (random names among those stored),
 *                                   64 keep-alive clients, CORRAL_BENCH_GET_SECONDS seconds
 *   apiserver_rss_after_creates     VmRSS of the apiserver (/proc/PID/status) after the creates
 *                                   and GETs, with CORRAL_BENCH_PODS pods stored
 *   apiserver_pod_json_bytes        a stored pod as JSON; _packed_bytes as the store holds it
 *   apiserver_rss_per_pod           RSS growth over the empty server per pod; _overhead_per_pod
 *                                   is that less the packed pod
 *   apiserver_watch_p50_100w/_p99/_max   100 watchers on one namespace; a paced creator
 *                                   (CORRAL_BENCH_WATCH_RATE pods/s) writes
 *                                   CORRAL_BENCH_WATCH_EVENTS pods, each with an annotation
 *                                   holding the clock just before its POST was written;
 *                                   latency = arrival at a watcher minus that time (so it
 *                                   includes the durable commit); _fanout_p99 leaves the commit
 *                                   out: each arrival minus the first arrival of that event
 *   apiserver_restart_to_ready_kill9   kill -9 with everything stored, then exec to the first
 *                                   200 from /readyz
 *   apiserver_restart_to_ready      SIGTERM (clean close), then exec to the first 200 from /readyz
 *   apiserver_rss_after_restart     VmRSS once ready after that restart
 *
 * CORRAL_BENCH_CONTROLLERS=0 starts the server with --no-controllers, to tell what the
 * built-in controllers (which index every pod) cost.
 *
 * Alongside each load figure the bench prints the CPU the load generator and the server used
 * during the run (as a share of one core), so a reader can tell who was the bottleneck, and the
 * server's CPU time per op (per delivered event for the watch run): on a shared machine that is
 * a steadier before/after figure than the rates. The load generator is one thread with raw
 * non-blocking sockets and epoll, HTTP/1.1 keep-alive, one request in flight per connection
 * (closed loop); the watchers are one more thread. Both run on the same machine as the server:
 * on a 2-core machine they share the cores, and every figure here is a figure for server plus
 * client on that machine. Timings depend on the machine and its disk; never assert on them.
 */
#include "corral-config.h"
#include "daemon.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DIE(...)                                                                                   \
    do {                                                                                           \
        fprintf(stderr, "bench_apiserver: " __VA_ARGS__);                                          \
        fputc('\n', stderr);                                                                       \
        exit(1);                                                                                   \
    } while (0)

#define NS_BENCH "bench"
#define NS_WATCH "bench-watch"
#define SENT_ANNOTATION "bench.corral.io/sent-ns"
#define REQ_MAX 4096
#define STALL_NS (60ull * 1000000000ull) /* a run with no answer for this long fails */
#define LINE_MAX_BYTES 65536

static size_t n_pods = 100000;
static unsigned get_seconds = 5;
static size_t watch_events = 2000;
static unsigned watch_rate = 500;
static int n_watchers = 100;
static int n_clients = 64;
static int port;
static char data_dir[600];
static struct corral_daemon server;

/* ---- small helpers ------------------------------------------------------------------------ */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static size_t env_size(const char *name, size_t dflt)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return dflt;
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    if (*end || n == 0)
        DIE("%s=%s: expected a positive number", name, v);
    return (size_t)n;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorts v and returns its q-quantile (0 < q <= 1) in ms. */
static double quantile_ms(uint32_t *v, size_t n, double q)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof(*v), cmp_u32);
    size_t i = (size_t)(q * (double)n);
    if (i >= n)
        i = n - 1;
    return (double)v[i] / 1000.0;
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Reads "Key:   N kB" from /proc/PID/status; returns kB or -1. */
static long proc_status_kb(pid_t pid, const char *key)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kb = -1;
    size_t klen = strlen(key);
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, key, klen) == 0 && line[klen] == ':')
            kb = strtol(line + klen + 1, NULL, 10);
    fclose(f);
    return kb;
}

/* CPU seconds (user + system) the process has used. */
static double proc_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    /* fields after the comm: state(3) ... utime(14) stime(15) */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* CPU use of both sides over one measured run. */
struct cpu_mark {
    uint64_t t;
    double client, server;
};

static struct cpu_mark cpu_mark(void)
{
    return (struct cpu_mark){now_ns(), self_cpu_s(), proc_cpu_s(server.pid)};
}

/* Prints the CPU both sides used since a, and the server's CPU time per op (ops done since a). */
static void print_cpu(const char *name, struct cpu_mark a, uint64_t ops)
{
    struct cpu_mark b = cpu_mark();
    double wall = (double)(b.t - a.t) / 1e9;
    printf("%s_client_cpu=%.0f %%core\n", name, 100.0 * (b.client - a.client) / wall);
    printf("%s_server_cpu=%.0f %%core\n", name, 100.0 * (b.server - a.server) / wall);
    printf("%s_server_cpu_per_op=%.1f us\n", name, 1e6 * (b.server - a.server) / (double)ops);
}

/* ---- sockets and HTTP/1.1 ------------------------------------------------------------------ */

/* A blocking TCP connection to 127.0.0.1:port with Nagle off; -1 on failure. */
static int connect_loopback(int p)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void set_nonblocking(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Value of header name (case-insensitive) in the header block, or NULL. */
static const char *header_value(const char *hdr, size_t hlen, const char *name)
{
    size_t nlen = strlen(name);
    const char *p = memchr(hdr, '\n', hlen), *end = hdr + hlen;
    while (p && p + 1 + nlen < end) {
        p++;
        if (strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
            p += nlen + 1;
            while (*p == ' ')
                p++;
            return p;
        }
        p = memchr(p, '\n', (size_t)(end - p));
    }
    return NULL;
}

/* Length of the chunked body at b[0..len), or 0 when incomplete, -1 when malformed. */
static long chunked_len(const char *b, size_t len)
{
    size_t off = 0;
    for (;;) {
        const char *crlf = memmem(b + off, len - off, "\r\n", 2);
        if (!crlf)
            return 0;
        char *end;
        unsigned long n = strtoul(b + off, &end, 16);
        if (end == b + off)
            return -1;
        off = (size_t)(crlf - b) + 2;
        if (n == 0)
            return off + 2 <= len ? (long)(off + 2) : 0;
        if (off + n + 2 > len)
            return 0;
        off += n + 2;
    }
}

/*
 * Length of the complete HTTP response at the start of buf (status in *status), 0 when more
 * bytes are needed, -1 when it is malformed.
 */
static long response_len(const char *buf, size_t len, int *status)
{
    const char *eoh = memmem(buf, len, "\r\n\r\n", 4);
    if (!eoh)
        return 0;
    size_t hlen = (size_t)(eoh - buf) + 4;
    if (hlen < 12 || strncmp(buf, "HTTP/1.", 7) != 0)
        return -1;
    *status = atoi(buf + 9);
    const char *cl = header_value(buf, hlen, "Content-Length");
    if (cl) {
        size_t total = hlen + strtoul(cl, NULL, 10);
        return total <= len ? (long)total : 0;
    }
    const char *te = header_value(buf, hlen, "Transfer-Encoding");
    if (te && strncasecmp(te, "chunked", 7) == 0) {
        long n = chunked_len(buf + hlen, len - hlen);
        return n > 0 ? (long)hlen + n : n;
    }
    return -1;
}

/*
 * One blocking request on a fresh connection. Returns the HTTP status (body copied into
 * out/outlen when given), or -1 when the server cannot be reached.
 */
static int http_once(const char *method, const char *path, const char *body, char *out,
                     size_t outlen)
{
    int fd = connect_loopback(port);
    if (fd < 0)
        return -1;
    char req[REQ_MAX];
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     method, path, body ? strlen(body) : 0, body ? body : "");
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    int status = -1;
    if (!buf || write(fd, req, (size_t)n) != n)
        goto out;
    for (;;) {
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        long total = response_len(buf, len, &status);
        if (total != 0)
            break;
    }
    buf[len] = 0;
    const char *b = strstr(buf, "\r\n\r\n");
    if (out && outlen)
        snprintf(out, outlen, "%s", b ? b + 4 : "");
out:
    free(buf);
    close(fd);
    return status;
}

/* ---- the closed-loop load generator -------------------------------------------------------- */

struct load;
/* Writes request number seq into buf (at most REQ_MAX bytes); returns its length. */
typedef size_t (*make_req_fn)(struct load *l, uint64_t seq, char *buf);

struct conn {
    int fd;
    char out[REQ_MAX];
    size_t out_len, out_off;
    char *in;
    size_t in_len, in_cap;
    uint64_t sent_ns;
    bool busy;
};

struct load {
    int nconn;
    uint64_t total;       /* requests to issue; 0 = until deadline_ns */
    uint64_t deadline_ns;
    unsigned rate;        /* requests per second; 0 = as fast as the server answers */
    int expect;           /* the status every answer must have */
    make_req_fn make;
    const char *ns;
    uint64_t rng;
    /* results */
    uint64_t issued, done, errors;
    uint32_t *lat_us;
    size_t nlat, lat_cap;
    uint64_t start_ns, end_ns;
};

static void lat_push(struct load *l, uint64_t ns)
{
    if (l->nlat == l->lat_cap) {
        l->lat_cap = l->lat_cap ? l->lat_cap * 2 : 65536;
        l->lat_us = realloc(l->lat_us, l->lat_cap * sizeof(*l->lat_us));
        if (!l->lat_us)
            DIE("out of memory");
    }
    l->lat_us[l->nlat++] = (uint32_t)(ns / 1000);
}

static bool load_more(const struct load *l, uint64_t now)
{
    if (l->total)
        return l->issued < l->total;
    return now < l->deadline_ns;
}

/* True when the next request may go now (pacing); *wait_ms says how long until it may. */
static bool load_due(const struct load *l, uint64_t now, int *wait_ms)
{
    if (!l->rate)
        return true;
    uint64_t due = l->start_ns + l->issued * 1000000000ull / l->rate;
    if (now >= due)
        return true;
    int ms = (int)((due - now) / 1000000) + 1;
    if (ms < *wait_ms)
        *wait_ms = ms;
    return false;
}

static int conn_flush(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        c->out_off += (size_t)n;
    }
    return 0;
}

static void conn_issue(struct load *l, struct conn *c, int ep)
{
    c->out_len = l->make(l, l->issued++, c->out);
    c->out_off = 0;
    c->sent_ns = now_ns();
    c->busy = true;
    if (conn_flush(c) < 0)
        DIE("write: %s", strerror(errno));
    struct epoll_event ev = {.events = EPOLLIN | (c->out_off < c->out_len ? EPOLLOUT : 0),
                             .data.ptr = c};
    if (c->out_off < c->out_len)
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Reads what is there; finishes the request when its response is complete. */
static void conn_read(struct load *l, struct conn *c)
{
    for (;;) {
        if (c->in_cap - c->in_len < 16384) {
            c->in_cap = c->in_cap ? c->in_cap * 2 : 65536;
            c->in = realloc(c->in, c->in_cap);
            if (!c->in)
                DIE("out of memory");
        }
        ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
        if (n == 0)
            DIE("the server closed a connection");
        if (n < 0) {
            if (errno == EAGAIN)
                break;
            DIE("read: %s", strerror(errno));
        }
        c->in_len += (size_t)n;
    }
    int status = 0;
    long total = response_len(c->in, c->in_len, &status);
    if (total < 0)
        DIE("malformed response: %.200s", c->in);
    if (total == 0)
        return;
    if (status != l->expect) {
        if (l->errors++ < 5)
            fprintf(stderr, "bench_apiserver: status %d: %.300s\n", status,
                    strstr(c->in, "\r\n\r\n") ? strstr(c->in, "\r\n\r\n") + 4 : c->in);
    }
    lat_push(l, now_ns() - c->sent_ns);
    memmove(c->in, c->in + total, c->in_len - (size_t)total);
    c->in_len -= (size_t)total;
    c->busy = false;
    l->done++;
}

static void conns_open(struct load *l, struct conn *cs, int ep)
{
    for (int i = 0; i < l->nconn; i++) {
        cs[i] = (struct conn){.fd = connect_loopback(port)};
        if (cs[i].fd < 0)
            DIE("connect to 127.0.0.1:%d: %s", port, strerror(errno));
        set_nonblocking(cs[i].fd);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
    }
}

static void conns_close(struct conn *cs, int n)
{
    for (int i = 0; i < n; i++) {
        close(cs[i].fd);
        free(cs[i].in);
    }
}

/* Issues on every idle connection while requests are due; returns the epoll timeout. */
static int load_fill(struct load *l, struct conn *cs, int ep)
{
    int wait_ms = 100;
    uint64_t now = now_ns();
    for (int i = 0; i < l->nconn; i++)
        if (!cs[i].busy && load_more(l, now) && load_due(l, now, &wait_ms))
            conn_issue(l, &cs[i], ep);
    return wait_ms;
}

static int busy_count(const struct conn *cs, int n)
{
    int b = 0;
    for (int i = 0; i < n; i++)
        b += cs[i].busy;
    return b;
}

/* Runs the load to completion (every issued request answered). */
static void load_run(struct load *l)
{
    struct conn *cs = calloc((size_t)l->nconn, sizeof(*cs));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (!cs || ep < 0)
        DIE("out of memory");
    conns_open(l, cs, ep);
    l->start_ns = now_ns();
    uint64_t last_done = 0, progress_ns = l->start_ns;
    for (;;) {
        int wait_ms = load_fill(l, cs, ep);
        if (!load_more(l, now_ns()) && busy_count(cs, l->nconn) == 0)
            break;
        if (l->done != last_done) {
            last_done = l->done;
            progress_ns = now_ns();
        } else if (now_ns() - progress_ns > STALL_NS) {
            DIE("no answer from the server for %llu s", STALL_NS / 1000000000ull);
        }
        struct epoll_event evs[256];
        int n = epoll_wait(ep, evs, 256, wait_ms);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (evs[i].events & EPOLLOUT && conn_flush(c) == 0 && c->out_off == c->out_len) {
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
            }
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                conn_read(l, c);
        }
    }
    l->end_ns = now_ns();
    conns_close(cs, l->nconn);
    close(ep);
    free(cs);
}

/* ---- requests ------------------------------------------------------------------------------ */

/*
 * The pods. The default is an inference server on one GPU: about 330 bytes as posted and about
 * 1.1 KB as stored, once the server has added uid, timestamps, resourceVersion and the
 * defaulted fields (tolerations, requests, termination settings, status). CORRAL_BENCH_POD=large
 * posts a fuller spec (ports, requests, env, mounts): about 1.45 KB as stored.
 */
static bool large_pods;

static int pod_json(char *buf, size_t cap, const char *ns, const char *name, uint64_t sent)
{
    static const char small[] =
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\",\"namespace\":"
        "\"%s\",\"labels\":{\"app\":\"llm-inference\"},\"annotations\":{\"" SENT_ANNOTATION
        "\":\"%" PRIu64 "\"}},\"spec\":{\"containers\":[{\"name\":\"server\",\"image\":"
        "\"registry.example.com/vllm:v0.6.3\",\"resources\":{\"limits\":{\"nvidia.com/gpu\":"
        "\"1\"}}}],\"schedulerName\":\"corral-scheduler\"}}";
    static const char large[] =
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\",\"namespace\":"
        "\"%s\",\"labels\":{\"app\":\"llm-inference\",\"tier\":\"gpu\",\"pod-template-hash\":"
        "\"7d9f8c6b5\"},\"annotations\":{\"" SENT_ANNOTATION "\":\"%" PRIu64 "\"}},"
        "\"spec\":{\"containers\":[{\"name\":\"server\",\"image\":"
        "\"registry.example.com/team/vllm-server:v0.6.3-cuda12.4\",\"ports\":[{"
        "\"containerPort\":8000,\"protocol\":\"TCP\"}],\"resources\":{\"requests\":{\"cpu\":"
        "\"4\",\"memory\":\"32Gi\",\"nvidia.com/gpu\":\"1\"},\"limits\":{\"cpu\":\"8\","
        "\"memory\":\"48Gi\",\"nvidia.com/gpu\":\"1\"}},\"env\":[{\"name\":\"MODEL\",\"value\":"
        "\"meta-llama/Llama-3.1-8B-Instruct\"},{\"name\":\"MAX_MODEL_LEN\",\"value\":\"8192\"}],"
        "\"volumeMounts\":[{\"name\":\"models\",\"mountPath\":\"/models\"}]}],\"restartPolicy\":"
        "\"Always\",\"schedulerName\":\"corral-scheduler\",\"serviceAccountName\":\"default\","
        "\"terminationGracePeriodSeconds\":30,\"tolerations\":[{\"key\":\"nvidia.com/gpu\","
        "\"operator\":\"Exists\",\"effect\":\"NoSchedule\"}]}}";
    return snprintf(buf, cap, large_pods ? large : small, name, ns, sent);
}

static size_t make_create(struct load *l, uint64_t seq, char *buf)
{
    char name[64], body[3072];
    snprintf(name, sizeof(name), "pod-%07" PRIu64, seq);
    int blen = pod_json(body, sizeof(body), l->ns, name, now_ns());
    int n = snprintf(buf, REQ_MAX,
                     "POST /api/v1/namespaces/%s/pods HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                     l->ns, blen, body);
    if (n >= REQ_MAX)
        DIE("request too long");
    return (size_t)n;
}

static size_t make_get(struct load *l, uint64_t seq, char *buf)
{
    uint64_t i = xorshift(&l->rng) % n_pods;
    int n = snprintf(buf, REQ_MAX,
                     "GET /api/v1/namespaces/%s/pods/pod-%07" PRIu64 " HTTP/1.1\r\n"
                     "Host: 127.0.0.1\r\nAccept: application/json\r\n\r\n",
                     l->ns, i);
    return (size_t)n;
}

/* ---- the server ----------------------------------------------------------------------------- */

static bool no_controllers;

static void start_server(void)
{
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    const char *argv[] = {"apiserver", "--listen", listen, "--data-dir", data_dir,
                          "--insecure-http", no_controllers ? "--no-controllers" : NULL, NULL};
    if (corral_daemon_start(&server, argv, 60000) != 0)
        DIE("the apiserver did not start");
}

static void create_namespace(const char *name)
{
    char body[256];
    snprintf(body, sizeof(body),
             "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"%s\"}}",
             name);
    int st = http_once("POST", "/api/v1/namespaces", body, NULL, 0);
    if (st != 201 && st != 409)
        DIE("creating namespace %s: HTTP %d", name, st);
}

/* Value of an unlabelled metric from /metrics, or -1 when it is not there. */
static double metric(const char *name)
{
    size_t cap = 1 << 20;
    char *text = malloc(cap), line[160];
    if (!text || http_once("GET", "/metrics", NULL, text, cap) != 200)
        DIE("cannot read /metrics");
    snprintf(line, sizeof(line), "\n%s ", name);
    const char *p = strstr(text, line);
    double v = p ? strtod(p + strlen(line), NULL) : -1;
    free(text);
    return v;
}

static long rss_kb(void)
{
    return proc_status_kb(server.pid, "VmRSS");
}

/* ---- the figures ---------------------------------------------------------------------------- */

static void bench_creates(void)
{
    struct load l = {.nconn = n_clients, .total = n_pods, .expect = 201, .make = make_create,
                     .ns = NS_BENCH};
    double commits = metric("corral_store_commits_total");
    double writes = metric("corral_store_committed_writes_total");
    double commit_s = metric("corral_store_commit_duration_seconds_sum");
    struct cpu_mark m = cpu_mark();
    load_run(&l);
    if (l.errors)
        DIE("%" PRIu64 " creates failed", l.errors);
    double s = (double)(l.end_ns - l.start_ns) / 1e9;
    printf("apiserver_create_durable_64c=%.0f creates/s\n", (double)l.done / s);
    print_cpu("apiserver_create_durable_64c", m, l.done);
    commits = metric("corral_store_commits_total") - commits;
    writes = metric("corral_store_committed_writes_total") - writes;
    commit_s = metric("corral_store_commit_duration_seconds_sum") - commit_s;
    printf("apiserver_create_batch_avg=%.1f writes/commit\n", writes / commits);
    printf("apiserver_commit_avg=%.2f ms\n", 1e3 * commit_s / commits);
    printf("apiserver_create_p50_64c=%.2f ms\n", quantile_ms(l.lat_us, l.nlat, 0.50));
    printf("apiserver_create_p99_64c=%.2f ms\n", quantile_ms(l.lat_us, l.nlat, 0.99));
    free(l.lat_us);
}

static void bench_gets(void)
{
    struct load l = {.nconn = n_clients, .expect = 200, .make = make_get, .ns = NS_BENCH,
                     .rng = 0x9e3779b97f4a7c15ull};
    l.deadline_ns = now_ns() + (uint64_t)get_seconds * 1000000000ull;
    struct cpu_mark m = cpu_mark();
    load_run(&l);
    if (l.errors)
        DIE("%" PRIu64 " GETs failed", l.errors);
    double s = (double)(l.end_ns - l.start_ns) / 1e9;
    printf("apiserver_get_64c=%.0f gets/s\n", (double)l.done / s);
    print_cpu("apiserver_get_64c", m, l.done);
    printf("apiserver_get_p50_64c=%.2f ms\n", quantile_ms(l.lat_us, l.nlat, 0.50));
    printf("apiserver_get_p99_64c=%.2f ms\n", quantile_ms(l.lat_us, l.nlat, 0.99));
    free(l.lat_us);
}

static void bench_rss(const char *name)
{
    printf("%s=%.1f MB\n", name, (double)rss_kb() / 1024.0);
}

/*
 * RSS per stored pod beyond the RSS of the empty server, the pod's size as JSON and as the store
 * holds it (packed), and how much of the RSS per pod is not the packed pod.
 */
static void bench_rss_per_pod(long rss0_kb)
{
    double objects = metric("corral_store_objects");
    double pod_bytes = metric("corral_store_bytes") / objects;
    double packed = metric("corral_store_memory_bytes{part=\"objects\"}") / objects;
    double per_pod = (double)(rss_kb() - rss0_kb) * 1024.0 / (double)n_pods;
    printf("apiserver_rss_empty=%.1f MB\n", (double)rss0_kb / 1024.0);
    printf("apiserver_pod_json_bytes=%.0f bytes\n", pod_bytes);
    printf("apiserver_pod_packed_bytes=%.0f bytes\n", packed);
    printf("apiserver_store_dictionaries=%.0f dictionaries, %.1f MB\n",
           metric("corral_store_dictionaries"),
           metric("corral_store_memory_bytes{part=\"dictionaries\"}") / 1048576.0);
    printf("apiserver_rss_per_pod=%.0f bytes\n", per_pod);
    printf("apiserver_rss_overhead_per_pod=%.0f bytes\n", per_pod - packed);
}

/* ---- watchers ------------------------------------------------------------------------------- */

enum wstate { W_HEADERS, W_SIZE, W_DATA, W_DATA_END };

struct watcher {
    int fd;
    enum wstate state;
    char hdr[4096];
    size_t hdr_len;
    char size_line[32];
    size_t size_len;
    size_t chunk_left;
    char *line;
    size_t line_len;
    uint64_t events;
};

struct watch_set {
    struct watcher *w;
    int n;
    int ep;
    atomic_bool stop;
    atomic_uint_fast64_t delivered;
    uint32_t *lat_us;      /* per delivery: arrival - sent */
    uint32_t *seq;         /* per delivery: which pod */
    uint64_t *arrival;     /* per delivery: when */
    size_t nlat, lat_cap;
    uint64_t record_after; /* sent-ns values below this are warm-up events: not recorded */
};

/* One complete event line: records create-to-arrival when it carries the annotation. */
static void watch_line(struct watch_set *ws, struct watcher *w, uint64_t now)
{
    static const char key[] = "\"" SENT_ANNOTATION "\":\"";
    w->line[w->line_len] = 0;
    const char *p = strstr(w->line, key);
    if (!p) {
        if (w->line_len > 1)
            fprintf(stderr, "bench_apiserver: watch line without the annotation: %.200s\n",
                    w->line);
        return;
    }
    uint64_t sent = strtoull(p + sizeof(key) - 1, NULL, 10);
    const char *name = strstr(w->line, "\"name\":\"pod-");
    w->events++;
    atomic_fetch_add(&ws->delivered, 1);
    if (sent < ws->record_after || ws->nlat == ws->lat_cap || !name)
        return;
    ws->seq[ws->nlat] = (uint32_t)strtoul(name + strlen("\"name\":\"pod-"), NULL, 10);
    ws->arrival[ws->nlat] = now;
    ws->lat_us[ws->nlat++] = (uint32_t)((now - sent) / 1000);
}

/*
 * The fan-out part of the latency, without the commit: for each delivery, its arrival minus the
 * first arrival of the same event at any watcher. Returns the array (caller frees) in *out.
 */
static size_t watch_fanout(const struct watch_set *ws, size_t nseq, uint32_t **out)
{
    uint64_t *first = malloc((nseq + 1) * sizeof(*first));
    uint32_t *f = malloc((ws->nlat + 1) * sizeof(*f));
    if (!first || !f)
        DIE("out of memory");
    for (size_t i = 0; i <= nseq; i++)
        first[i] = UINT64_MAX;
    for (size_t i = 0; i < ws->nlat; i++)
        if (ws->seq[i] <= nseq && ws->arrival[i] < first[ws->seq[i]])
            first[ws->seq[i]] = ws->arrival[i];
    size_t n = 0;
    for (size_t i = 0; i < ws->nlat; i++)
        if (ws->seq[i] <= nseq)
            f[n++] = (uint32_t)((ws->arrival[i] - first[ws->seq[i]]) / 1000);
    free(first);
    *out = f;
    return n;
}

static void watch_data(struct watch_set *ws, struct watcher *w, const char *p, size_t n,
                       uint64_t now)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n') {
            watch_line(ws, w, now);
            w->line_len = 0;
        } else if (w->line_len < LINE_MAX_BYTES - 1) {
            w->line[w->line_len++] = p[i];
        }
    }
}

/* Feeds bytes through the HTTP header and chunked-encoding states of watcher w. */
static void watch_feed(struct watch_set *ws, struct watcher *w, const char *p, size_t n,
                       uint64_t now)
{
    while (n > 0) {
        if (w->state == W_HEADERS) {
            w->hdr[w->hdr_len++] = *p++;
            n--;
            if (w->hdr_len >= 4 && memcmp(w->hdr + w->hdr_len - 4, "\r\n\r\n", 4) == 0) {
                if (strncmp(w->hdr, "HTTP/1.1 200", 12) != 0)
                    DIE("watch refused: %.*s", (int)w->hdr_len, w->hdr);
                w->state = W_SIZE;
            } else if (w->hdr_len == sizeof(w->hdr)) {
                DIE("watch response headers too long");
            }
        } else if (w->state == W_SIZE) {
            char ch = *p++;
            n--;
            if (ch == '\n') {
                w->size_line[w->size_len] = 0;
                w->chunk_left = strtoul(w->size_line, NULL, 16);
                w->size_len = 0;
                if (w->chunk_left == 0)
                    DIE("a watch stream ended");
                w->state = W_DATA;
            } else if (ch != '\r' && w->size_len < sizeof(w->size_line) - 1) {
                w->size_line[w->size_len++] = ch;
            }
        } else if (w->state == W_DATA) {
            size_t k = n < w->chunk_left ? n : w->chunk_left;
            watch_data(ws, w, p, k, now);
            p += k;
            n -= k;
            w->chunk_left -= k;
            if (w->chunk_left == 0)
                w->state = W_DATA_END;
        } else { /* W_DATA_END: the CRLF after a chunk */
            if (*p == '\n')
                w->state = W_SIZE;
            p++;
            n--;
        }
    }
}

static void *watch_thread(void *arg)
{
    struct watch_set *ws = arg;
    static char buf[1 << 16];
    while (!atomic_load(&ws->stop)) {
        struct epoll_event evs[128];
        int n = epoll_wait(ws->ep, evs, 128, 50);
        for (int i = 0; i < n; i++) {
            struct watcher *w = evs[i].data.ptr;
            for (;;) {
                ssize_t r = read(w->fd, buf, sizeof(buf));
                if (r == 0)
                    DIE("a watch connection closed");
                if (r < 0)
                    break;
                /* the clock after the read: an event cannot arrive before it was sent */
                watch_feed(ws, w, buf, (size_t)r, now_ns());
            }
        }
    }
    return NULL;
}

static void watchers_open(struct watch_set *ws, const char *rv)
{
    ws->w = calloc((size_t)ws->n, sizeof(*ws->w));
    ws->ep = epoll_create1(EPOLL_CLOEXEC);
    if (!ws->w || ws->ep < 0)
        DIE("out of memory");
    char req[512];
    int len = snprintf(req, sizeof(req),
                       "GET /api/v1/namespaces/" NS_WATCH "/pods?watch=true&resourceVersion=%s"
                       "&allowWatchBookmarks=true HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                       rv);
    for (int i = 0; i < ws->n; i++) {
        struct watcher *w = &ws->w[i];
        w->fd = connect_loopback(port);
        w->line = malloc(LINE_MAX_BYTES);
        if (w->fd < 0 || !w->line)
            DIE("watcher %d: cannot connect", i);
        if (write(w->fd, req, (size_t)len) != len)
            DIE("watcher %d: write failed", i);
        set_nonblocking(w->fd);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = w};
        epoll_ctl(ws->ep, EPOLL_CTL_ADD, w->fd, &ev);
    }
}

static void watchers_close(struct watch_set *ws)
{
    for (int i = 0; i < ws->n; i++) {
        close(ws->w[i].fd);
        free(ws->w[i].line);
    }
    close(ws->ep);
    free(ws->w);
    free(ws->lat_us);
    free(ws->seq);
    free(ws->arrival);
}

/* Waits until the watchers have received `want` events in all; false on timeout. */
static bool watchers_wait(struct watch_set *ws, uint64_t want, int timeout_ms)
{
    uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;
    while (atomic_load(&ws->delivered) < want) {
        if (now_ns() > deadline)
            return false;
        usleep(2000);
    }
    return true;
}

/* The store revision, from a one-item list of the watched namespace. */
static void current_rv(char *rv, size_t len)
{
    char body[8192];
    int st = http_once("GET", "/api/v1/namespaces/" NS_WATCH "/pods?limit=1", NULL, body,
                       sizeof(body));
    const char *p = strstr(body, "\"resourceVersion\":\"");
    if (st != 200 || !p)
        DIE("cannot read the list revision (HTTP %d)", st);
    p += strlen("\"resourceVersion\":\"");
    size_t n = strcspn(p, "\"");
    snprintf(rv, len, "%.*s", (int)(n < len ? n : len - 1), p);
}

static void bench_watch(void)
{
    create_namespace(NS_WATCH);
    char rv[32];
    current_rv(rv, sizeof(rv));
    struct watch_set ws = {.n = n_watchers, .lat_cap = watch_events * (size_t)n_watchers};
    ws.lat_us = malloc(ws.lat_cap * sizeof(*ws.lat_us));
    ws.seq = malloc(ws.lat_cap * sizeof(*ws.seq));
    ws.arrival = malloc(ws.lat_cap * sizeof(*ws.arrival));
    if (!ws.lat_us || !ws.seq || !ws.arrival)
        DIE("out of memory");
    watchers_open(&ws, rv);
    pthread_t th;
    pthread_create(&th, NULL, watch_thread, &ws);

    /* Warm-up: one pod that every watcher must see, so all streams are established. */
    struct load warm = {.nconn = 1, .total = 1, .expect = 201, .make = make_create,
                        .ns = NS_WATCH};
    load_run(&warm);
    free(warm.lat_us);
    if (!watchers_wait(&ws, (uint64_t)n_watchers, 30000))
        DIE("the watchers did not see the warm-up event");
    ws.record_after = now_ns();

    /* names after the warm-up pod's (pod-0000000) */
    struct load l = {.nconn = 16, .issued = 1, .total = watch_events + 1, .rate = watch_rate,
                     .expect = 201, .make = make_create, .ns = NS_WATCH};
    struct cpu_mark m = cpu_mark();
    load_run(&l);
    bool all = watchers_wait(&ws, (uint64_t)n_watchers * (watch_events + 1), 60000);
    print_cpu("apiserver_watch_100w", m, (uint64_t)n_watchers * watch_events);
    atomic_store(&ws.stop, true);
    pthread_join(th, NULL);
    if (l.errors)
        DIE("%" PRIu64 " creates failed during the watch run", l.errors);
    printf("apiserver_watch_create_p99=%.2f ms\n", quantile_ms(l.lat_us, l.nlat, 0.99));
    if (!all)
        DIE("watchers got %" PRIu64 " of %zu events", (uint64_t)atomic_load(&ws.delivered),
            (size_t)n_watchers * (watch_events + 1));
    printf("apiserver_watch_events=%zu events x %d watchers at %u creates/s\n", watch_events,
           n_watchers, watch_rate);
    printf("apiserver_watch_p50_100w=%.2f ms\n", quantile_ms(ws.lat_us, ws.nlat, 0.50));
    printf("apiserver_watch_p99_100w=%.2f ms\n", quantile_ms(ws.lat_us, ws.nlat, 0.99));
    printf("apiserver_watch_max_100w=%.2f ms\n", quantile_ms(ws.lat_us, ws.nlat, 1.0));
    uint32_t *fan;
    size_t nfan = watch_fanout(&ws, watch_events + 1, &fan);
    printf("apiserver_watch_fanout_p99_100w=%.2f ms\n", quantile_ms(fan, nfan, 0.99));
    free(fan);
    free(l.lat_us);
    watchers_close(&ws);
}

/* ---- restart -------------------------------------------------------------------------------- */

struct ready_probe {
    uint64_t t0;
    atomic_uint_fast64_t ready_ns; /* 0 until /readyz answered 200 */
    atomic_bool stop;
};

static void *probe_thread(void *arg)
{
    struct ready_probe *p = arg;
    while (!atomic_load(&p->stop)) {
        if (http_once("GET", "/readyz", NULL, NULL, 0) == 200) {
            atomic_store(&p->ready_ns, now_ns());
            return NULL;
        }
        usleep(1000);
    }
    return NULL;
}

/* Stops the server with sig, restarts it and prints exec-to-ready as name. */
static void bench_restart(const char *name, int sig)
{
    corral_daemon_stop(&server, sig);
    struct ready_probe p = {.t0 = now_ns()};
    pthread_t th;
    pthread_create(&th, NULL, probe_thread, &p);
    start_server();
    uint64_t deadline = now_ns() + 60000000000ull;
    while (!atomic_load(&p.ready_ns) && now_ns() < deadline)
        usleep(1000);
    atomic_store(&p.stop, true);
    pthread_join(th, NULL);
    if (!atomic_load(&p.ready_ns))
        DIE("the restarted apiserver never answered /readyz");
    printf("%s=%.0f ms\n", name, (double)(atomic_load(&p.ready_ns) - p.t0) / 1e6);
}

/* ---- main ----------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    if (argc > 1)
        corral_test_set_exe(argv[1]);
    setvbuf(stdout, NULL, _IOLBF, 0);
    n_pods = env_size("CORRAL_BENCH_PODS", n_pods);
    get_seconds = (unsigned)env_size("CORRAL_BENCH_GET_SECONDS", get_seconds);
    watch_events = env_size("CORRAL_BENCH_WATCH_EVENTS", watch_events);
    watch_rate = (unsigned)env_size("CORRAL_BENCH_WATCH_RATE", watch_rate);
    n_watchers = (int)env_size("CORRAL_BENCH_WATCHERS", (size_t)n_watchers);
    n_clients = (int)env_size("CORRAL_BENCH_CLIENTS", (size_t)n_clients);
    const char *shape = getenv("CORRAL_BENCH_POD");
    if (shape && *shape && strcmp(shape, "small") != 0 && strcmp(shape, "large") != 0)
        DIE("CORRAL_BENCH_POD=%s: expected small or large", shape);
    large_pods = shape && strcmp(shape, "large") == 0;
    const char *ctrl = getenv("CORRAL_BENCH_CONTROLLERS");
    no_controllers = ctrl && strcmp(ctrl, "0") == 0;
    struct rlimit rl = {4096, 4096};
    setrlimit(RLIMIT_NOFILE, &rl);

    snprintf(data_dir, sizeof(data_dir), "%s/data", corral_test_tmpdir());
    port = corral_test_free_port();
    if (port <= 0)
        DIE("no free port");
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    printf("apiserver_bench_machine=%ld cores shared by server and load generator\n", cores);
    printf("apiserver_bench_pods=%zu pods (%s)\n", n_pods, large_pods ? "large" : "small");
    printf("apiserver_bench_controllers=%s\n", no_controllers ? "off (--no-controllers)" : "on");
    start_server();
    create_namespace(NS_BENCH);
    long rss0 = rss_kb();

    bench_creates();
    bench_gets();
    bench_rss("apiserver_rss_after_creates");
    bench_rss_per_pod(rss0);
    bench_watch();
    bench_restart("apiserver_restart_to_ready_kill9", SIGKILL);
    bench_restart("apiserver_restart_to_ready", SIGTERM);
    usleep(200000);
    bench_rss("apiserver_rss_after_restart");
    corral_daemon_stop(&server, SIGTERM);
    return 0;
}
