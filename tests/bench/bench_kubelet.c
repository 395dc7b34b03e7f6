/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_kubelet: the node agent figures of issue #4, measured against the real
 * `corral apiserver` and `corral kubelet` (argv[1]) on loopback, one `name=value unit` line each:
 *
 *   kubelet_start_ms             exec of `corral kubelet` (H100 topology, live cgroups) to its
 *                                "listening on" line
 *   kubelet_ready_ms             exec to the Node being Ready in the API server
 *   kubelet_rss_idle             VmRSS of the agent (/proc/PID/status) registered, heart-beating,
 *                                no pods, after CORRAL_BENCH_IDLE_S seconds
 *   kubelet_pss_idle, kubelet_private_idle
 *                                the same memory as the kernel apportions it (smaps_rollup Pss)
 *                                and the part no other process shares (Private_Clean +
 *                                Private_Dirty): VmRSS also counts every page of shared library
 *                                code the agent has touched (libcurl's dependency chain,
 *                                OpenSSL, GnuTLS for libmicrohttpd), which other processes map
 *                                too
 *   kubelet_rss_library_floor   VmRSS of rss_floor (argv[2]): a process that links the same
 *                                libraries and only initialises libcurl, OpenSSL and
 *                                libmicrohttpd; no agent built on them can go below it
 *   kubelet_rss_idle_own         kubelet_rss_idle minus that floor
 *   kubelet_bound_to_running_p50/_p99/_max
 *                                one pod at a time: a Binding is POSTed for an unbound pod
 *                                (`sleep`), latency = the watch event showing it Running minus
 *                                the moment before the Binding was sent; CORRAL_BENCH_PODS pods
 *   kubelet_burst_to_running_p50/_p99
 *                                the same with all pods bound back to back
 *   kubelet_rss_50pods           VmRSS of the agent with those pods running (their processes are
 *                                not counted: they are the workload)
 *   kubelet_threads_50pods       threads of the agent then
 *   kubelet_cpu_idle             the agent's CPU time per second while idle (heartbeats, node
 *                                status), in ms of CPU per s
 *
 * Client, API server, agent and pods share the machine (2 cores here): the latencies include
 * the API server's durable writes and its watch fan-out. Never assert on these figures.
 */
#include "client.h"
#include "corral-config.h"
#include "daemon.h"
#include "meta.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DIE(...)                                                                                   \
    do {                                                                                           \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
        exit(1);                                                                                   \
    } while (0)

#define NODE "bench-node"
#define MAX_PODS 256

static int env_int(const char *name, int dflt)
{
    const char *v = getenv(name);
    return v && atoi(v) > 0 ? atoi(v) : dflt;
}

static double now_ms(void)
{
    return (double)corral_now_ns() / 1e6;
}

static long proc_status(pid_t pid, const char *key)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long v = -1;
    size_t n = strlen(key);
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, key, n) == 0 && line[n] == ':')
            v = atol(line + n + 1);
    if (f)
        fclose(f);
    return v;
}

/* A field of /proc/PID/smaps_rollup in kB (Private_* summed when key is "Private"). */
static long rollup(pid_t pid, const char *key)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
    FILE *f = fopen(path, "r");
    long sum = 0, v;
    size_t n = strlen(key);
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, key, n) == 0 && (line[n] == ':' || line[n] == '_') &&
            strncmp(line, "Pss_", 4) != 0 && sscanf(strchr(line, ':') + 1, "%ld", &v) == 1)
            sum += v;
    if (f)
        fclose(f);
    return sum;
}

/* VmRSS in kB that the rss_floor program reports, or -1. */
static long library_floor(const char *program)
{
    FILE *p = popen(program, "r");
    long kb = -1;
    if (p && fscanf(p, "%ld", &kb) != 1)
        kb = -1;
    if (p && pclose(p) != 0)
        kb = -1;
    return kb;
}

static double cpu_seconds(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f || !fgets(buf, sizeof(buf), f))
        DIE("cannot read %s", path);
    fclose(f);
    unsigned long ut = 0, st = 0;
    char *rp = strrchr(buf, ')');
    if (!rp || sscanf(rp + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        DIE("cannot parse %s", path);
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* ---- the watch: when each pod is first seen Running ------------------------------------------ */

struct watch {
    struct corral_client *c;
    pthread_t thread;
    pthread_mutex_t lock;
    double running_at[MAX_PODS]; /* ms, 0 = not yet */
    char rv[32];
};

static int pod_index(const char *name)
{
    return strncmp(name, "bench-", 6) == 0 ? atoi(name + 6) : -1;
}

static int on_event(enum corral_watch_type type, json_t *pod, void *ctx)
{
    struct watch *w = ctx;
    double t = now_ms();
    const char *name = json_string_value(json_object_get(json_object_get(pod, "metadata"), "name"));
    const char *phase = json_string_value(json_object_get(json_object_get(pod, "status"), "phase"));
    int i = name ? pod_index(name) : -1;
    if (type != CORRAL_WATCH_DELETED && i >= 0 && i < MAX_PODS && phase &&
        strcmp(phase, "Running") == 0) {
        pthread_mutex_lock(&w->lock);
        if (w->running_at[i] == 0)
            w->running_at[i] = t;
        pthread_mutex_unlock(&w->lock);
    }
    return 0;
}

static void *watch_main(void *arg)
{
    struct watch *w = arg;
    char path[128];
    snprintf(path, sizeof(path), "/api/v1/namespaces/default/pods?resourceVersion=%s", w->rv);
    corral_client_watch(w->c, path, 3600, on_event, w);
    return NULL;
}

static double running_at(struct watch *w, int i)
{
    pthread_mutex_lock(&w->lock);
    double t = w->running_at[i];
    pthread_mutex_unlock(&w->lock);
    return t;
}

/* ---- cluster ----------------------------------------------------------------------------------
 */

static void write_kubeconfig(const char *path, const char *url)
{
    FILE *f = fopen(path, "w");
    if (!f)
        DIE("cannot write %s", path);
    fprintf(f,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: '%s'}\n"
            "users:\n- name: u\n  user: {}\ncontexts:\n- name: x\n  context: {cluster: c, "
            "user: u}\ncurrent-context: x\n",
            url);
    fclose(f);
}

static void create_pod(struct corral_client *c, int i)
{
    char name[32];
    snprintf(name, sizeof(name), "bench-%d", i);
    json_t *pod =
        json_pack("{s:s, s:s, s:{s:s}, s:{s:i, s:[{s:s, s:s, s:[s,s]}]}}", "apiVersion", "v1",
                  "kind", "Pod", "metadata", "name", name, "spec", "terminationGracePeriodSeconds",
                  1, "containers", "name", "app", "image", "busybox", "command", "sleep", "600");
    if (corral_client_create(c, "/api/v1/namespaces/default/pods", pod, NULL) != 0)
        DIE("create %s: %s", name, corral_client_error(c));
    json_decref(pod);
}

static void bind_pod(struct corral_client *c, int i)
{
    char name[32], path[128];
    snprintf(name, sizeof(name), "bench-%d", i);
    snprintf(path, sizeof(path), "/api/v1/namespaces/default/pods/%s/binding", name);
    json_t *b =
        json_pack("{s:s, s:s, s:{s:s}, s:{s:s, s:s}}", "apiVersion", "v1", "kind", "Binding",
                  "metadata", "name", name, "target", "kind", "Node", "name", NODE);
    if (corral_client_create(c, path, b, NULL) != 0)
        DIE("bind %s: %s", name, corral_client_error(c));
    json_decref(b);
}

static bool node_ready(struct corral_client *c)
{
    json_t *node = NULL;
    if (corral_client_get(c, "/api/v1/nodes/" NODE, &node) != 0)
        return false;
    bool ready = false;
    size_t i;
    json_t *cond;
    json_array_foreach(json_object_get(json_object_get(node, "status"), "conditions"), i, cond)
    {
        const char *t = json_string_value(json_object_get(cond, "type"));
        const char *s = json_string_value(json_object_get(cond, "status"));
        ready |= t && s && strcmp(t, "Ready") == 0 && strcmp(s, "True") == 0;
    }
    json_decref(node);
    return ready;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report_latencies(const char *name, double *lat, int n)
{
    qsort(lat, (size_t)n, sizeof(double), cmp_double);
    printf("%s_p50=%.1f ms\n", name, lat[n / 2]);
    printf("%s_p99=%.1f ms\n", name, lat[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1]);
    printf("%s_max=%.1f ms\n", name, lat[n - 1]);
}

/* Binds pods [first, first+n) (one at a time when paced) and measures bound-to-running. */
static void bind_and_measure(struct corral_client *c, struct watch *w, int first, int n, bool paced,
                             double *lat)
{
    double *sent = calloc((size_t)n, sizeof(double));
    for (int k = 0; k < n; k++) {
        sent[k] = now_ms();
        bind_pod(c, first + k);
        while (paced && running_at(w, first + k) == 0 && now_ms() - sent[k] < 30000)
            usleep(200);
    }
    for (int k = 0; k < n; k++) {
        while (running_at(w, first + k) == 0) {
            if (now_ms() - sent[k] > 60000)
                DIE("pod bench-%d did not run within 60 s", first + k);
            usleep(1000);
        }
        lat[k] = running_at(w, first + k) - sent[k];
    }
    free(sent);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        DIE("usage: %s PATH-TO-CORRAL [PATH-TO-RSS-FLOOR]", argv[0]);
    corral_test_set_exe(argv[1]);
    int pods = env_int("CORRAL_BENCH_PODS", 50);
    int idle_s = env_int("CORRAL_BENCH_IDLE_S", 10);
    if (pods > MAX_PODS / 2)
        pods = MAX_PODS / 2;
    char data[512], kc[512], state[512];
    snprintf(data, sizeof(data), "%s/data", corral_test_tmpdir());
    snprintf(kc, sizeof(kc), "%s/kubeconfig", corral_test_tmpdir());
    snprintf(state, sizeof(state), "%s/state", corral_test_tmpdir());
    struct corral_daemon api, agent;
    const char *api_argv[] = {"apiserver", "--listen",        "127.0.0.1:0", "--data-dir",
                              data,        "--insecure-http", NULL};
    if (corral_daemon_start(&api, api_argv, 30000) != 0)
        DIE("apiserver did not start");
    write_kubeconfig(kc, api.url);
    struct corral_client_config cfg = {.server = api.url};
    struct corral_client *c;
    if (corral_client_new(&cfg, &c) != 0)
        DIE("client");

    const char *kl_argv[] = {"kubelet",
                             "--apiserver",
                             api.url,
                             "--kubeconfig",
                             kc,
                             "--name",
                             NODE,
                             "--state-dir",
                             state,
                             "--address",
                             "127.0.0.1",
                             "--port",
                             "0",
                             "--topology",
                             CORRAL_SHARED_DIR
                             "/hwloc-topologies/"
                             "dell-xe8640_2xXeon8480_4xH100-SXM5_nvlink_cuda-nvml-"
                             "opencl.xml",
                             "--max-pods",
                             "200",
                             NULL};
    double t0 = now_ms();
    if (corral_daemon_start(&agent, kl_argv, 30000) != 0)
        DIE("kubelet did not start");
    printf("kubelet_start_ms=%.1f ms\n", now_ms() - t0);
    while (!node_ready(c)) {
        if (now_ms() - t0 > 30000)
            DIE("node not ready within 30 s");
        usleep(1000);
    }
    printf("kubelet_ready_ms=%.1f ms\n", now_ms() - t0);
    fflush(stdout);

    double cpu0 = cpu_seconds(agent.pid), w0 = now_ms();
    sleep((unsigned)idle_s);
    double idle_share = (cpu_seconds(agent.pid) - cpu0) / ((now_ms() - w0) / 1000.0);
    long rss_idle = proc_status(agent.pid, "VmRSS");
    printf("kubelet_rss_idle=%.1f MB\n", (double)rss_idle / 1024.0);
    long floor_kb = argc > 2 ? library_floor(argv[2]) : -1;
    if (floor_kb > 0) {
        printf("kubelet_rss_library_floor=%.1f MB\n", (double)floor_kb / 1024.0);
        printf("kubelet_rss_idle_own=%.1f MB\n", (double)(rss_idle - floor_kb) / 1024.0);
    }
    printf("kubelet_pss_idle=%.1f MB\n", (double)rollup(agent.pid, "Pss") / 1024.0);
    printf("kubelet_private_idle=%.1f MB\n", (double)rollup(agent.pid, "Private") / 1024.0);
    printf("kubelet_cpu_idle=%.2f ms_per_s\n", idle_share * 1000.0);
    fflush(stdout);

    /* the pods exist unbound first, so that the measured part starts at the binding */
    for (int i = 0; i < 2 * pods; i++)
        create_pod(c, i);
    json_t *list = NULL;
    if (corral_client_get(c, "/api/v1/namespaces/default/pods", &list) != 0)
        DIE("list");
    struct watch w;
    memset(&w, 0, sizeof(w));
    pthread_mutex_init(&w.lock, NULL);
    snprintf(
        w.rv, sizeof(w.rv), "%s",
        json_string_value(json_object_get(json_object_get(list, "metadata"), "resourceVersion")));
    json_decref(list);
    if (corral_client_clone(c, &w.c) != 0 || pthread_create(&w.thread, NULL, watch_main, &w))
        DIE("watch");
    usleep(200000);

    double *lat = calloc((size_t)pods, sizeof(double));
    bind_and_measure(c, &w, 0, pods, true, lat);
    report_latencies("kubelet_bound_to_running", lat, pods);
    sleep(1);
    printf("kubelet_rss_%dpods=%.1f MB\n", pods, (double)proc_status(agent.pid, "VmRSS") / 1024.0);
    printf("kubelet_private_%dpods=%.1f MB\n", pods, (double)rollup(agent.pid, "Private") / 1024.0);
    printf("kubelet_threads_%dpods=%ld threads\n", pods, proc_status(agent.pid, "Threads"));
    fflush(stdout);
    bind_and_measure(c, &w, pods, pods, false, lat);
    report_latencies("kubelet_burst_to_running", lat, pods);
    printf("kubelet_rss_%dpods=%.1f MB\n", 2 * pods,
           (double)proc_status(agent.pid, "VmRSS") / 1024.0);
    fflush(stdout);
    free(lat);

    corral_client_stop(w.c);
    pthread_join(w.thread, NULL);
    corral_client_free(w.c);
    corral_daemon_stop(&agent, SIGTERM);
    corral_client_free(c);
    corral_daemon_stop(&api, SIGTERM);
    return 0;
}
