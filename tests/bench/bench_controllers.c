/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_controllers: the built-in controllers at scale, measured against the real
 * `corral apiserver` (argv[1]) on a loopback port, one `name=value unit` line each:
 *
 *   ctrl_pods_created_s            a Deployment of CORRAL_BENCH_PODS replicas (default 10000),
 *                                  with a Service selecting them: seconds from the POST until the
 *                                  ReplicaSet's status counts every pod (each pod a durable
 *                                  create); ctrl_pod_create_rate is pods/s
 *   ctrl_available_after_ready_s   the bench marks every pod Ready (4 client threads, as kubelets
 *                                  would); seconds from the last of those writes until the
 *                                  Deployment reports them all available
 *   ctrl_one_pod_status_ms_p50/_max  one pod flips readiness among all of them: milliseconds
 *                                  until its ReplicaSet's readyReplicas shows it (20 flips)
 *   ctrl_idle_cpu                  the apiserver's CPU use (share of one core) over 20 s with
 *                                  nothing changing: what the controllers cost at rest
 *   ctrl_rss                       VmRSS of the apiserver with every pod stored and indexed,
 *                                  after all of the above
 *   ctrl_restart_ready_s           restart with every pod stored: exec to "listening"
 *   ctrl_index_rss                 RSS after that restart (controllers relisted) minus the RSS
 *                                  of the same store served with --no-controllers: what the
 *                                  controllers' indexes cost
 *   ctrl_scale_down_s              scaling the Deployment to 0: seconds until no pod is left
 *   ctrl_side_write_ms_p50/_p99    latency of unrelated ConfigMap updates made by another client
 *                                  during that scale-down (do controllers starve other writers?)
 *
 * Client and server share the machine (2 cores when this was written): these are figures for
 * both together. Timings depend on the machine and its disk; never assert on them.
 */
#include "client.h"
#include "daemon.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NS "/api/v1/namespaces/default"
#define APPS "/apis/apps/v1/namespaces/default"
#define WRITERS 4

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_controllers: %s\n", what);
    exit(1);
}

static struct corral_client *client_for(const char *url)
{
    struct corral_client_config cfg = {.server = url, .timeout_ms = 600000};
    struct corral_client *c;
    if (corral_client_new(&cfg, &c) < 0)
        die("cannot make a client");
    return c;
}

static long long status_int(struct corral_client *c, const char *path, const char *field)
{
    json_t *o = NULL;
    if (corral_client_get(c, path, &o) < 0)
        return -1;
    long long v = json_integer_value(json_object_get(json_object_get(o, "status"), field));
    json_decref(o);
    return v;
}

static double wait_status(struct corral_client *c, const char *path, const char *field,
                          long long want, double timeout)
{
    double t0 = now_s();
    while (status_int(c, path, field) != want) {
        if (now_s() - t0 > timeout)
            die("timed out waiting for a status");
        usleep(20000);
    }
    return now_s() - t0;
}

/* Names of every pod with label app=bench (a JSON array of strings, new reference). */
static json_t *pod_names(struct corral_client *c)
{
    json_t *names = json_array();
    char *cont = NULL;
    do {
        char *path = strdup(NS "/pods");
        corral_client_query_add(&path, "labelSelector", "app=bench");
        corral_client_query_add(&path, "limit", "1000");
        if (cont)
            corral_client_query_add(&path, "continue", cont);
        free(cont);
        cont = NULL;
        json_t *l = NULL;
        if (corral_client_get(c, path, &l) < 0)
            die("cannot list pods");
        free(path);
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(l, "items"), i, p)
        {
            if (!json_object_get(json_object_get(p, "metadata"), "deletionTimestamp"))
                json_array_append(names, json_object_get(json_object_get(p, "metadata"), "name"));
        }
        const char *next =
            json_string_value(json_object_get(json_object_get(l, "metadata"), "continue"));
        cont = next && *next ? strdup(next) : NULL;
        json_decref(l);
    } while (cont);
    return names;
}

static void set_ready(struct corral_client *c, const char *name, bool ready, int i)
{
    char path[300], ip[32], ts[32];
    snprintf(path, sizeof(path), NS "/pods/%s/status", name);
    snprintf(ip, sizeof(ip), "10.%d.%d.%d", 8 + i / 62500, (i / 250) % 250, i % 250 + 2);
    time_t t = time(NULL);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
    json_t *patch = json_pack("{s:{s:s, s:s, s:[{s:s, s:s, s:s}]}}", "status", "phase", "Running",
                              "podIP", ip, "conditions", "type", "Ready", "status",
                              ready ? "True" : "False", "lastTransitionTime", ts);
    if (corral_client_patch(c, path, CORRAL_PATCH_MERGE, patch, NULL) < 0)
        die("cannot patch a pod status");
    json_decref(patch);
}

struct marker {
    struct corral_client *c;
    json_t *names;
    size_t from, step;
    pthread_t t;
};

static void *mark_main(void *arg)
{
    struct marker *m = arg;
    for (size_t i = m->from; i < json_array_size(m->names); i += m->step)
        set_ready(m->c, json_string_value(json_array_get(m->names, i)), true, (int)i);
    return NULL;
}

static void mark_all_ready(struct corral_client *c, json_t *names)
{
    struct marker m[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        m[i] = (struct marker){.names = names, .from = (size_t)i, .step = WRITERS};
        if (corral_client_clone(c, &m[i].c) < 0 ||
            pthread_create(&m[i].t, NULL, mark_main, &m[i]) != 0)
            die("cannot start the status writers");
    }
    for (int i = 0; i < WRITERS; i++) {
        pthread_join(m[i].t, NULL);
        corral_client_free(m[i].c);
    }
}

static double cpu_seconds(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f || !fgets(buf, sizeof(buf), f))
        die("cannot read /proc/PID/stat");
    fclose(f);
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    /* fields after the command: state(3) ... utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        die("cannot parse /proc/PID/stat");
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double rss_mb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    double kb = 0;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = atof(line + 6);
    if (f)
        fclose(f);
    return kb / 1024.0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct side {
    struct corral_client *c;
    atomic_bool stop;
    double lat[100000];
    size_t n;
    pthread_t t;
};

static void *side_main(void *arg)
{
    struct side *s = arg;
    json_t *cm = json_pack("{s:s, s:s, s:{s:s}, s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap",
                           "metadata", "name", "side", "data", "n", "0");
    corral_client_create(s->c, NS "/configmaps", cm, NULL);
    json_decref(cm);
    for (int i = 0; !atomic_load(&s->stop) && s->n < 100000; i++) {
        char v[32];
        snprintf(v, sizeof(v), "%d", i);
        json_t *patch = json_pack("{s:{s:s}}", "data", "n", v);
        double t0 = now_s();
        if (corral_client_patch(s->c, NS "/configmaps/side", CORRAL_PATCH_MERGE, patch, NULL) == 0)
            s->lat[s->n++] = (now_s() - t0) * 1000.0;
        json_decref(patch);
        usleep(10000);
    }
    return NULL;
}

static struct corral_daemon start(const char *dir, bool controllers)
{
    struct corral_daemon d;
    const char *argv[] = {"apiserver",
                          "--listen",
                          "127.0.0.1:0",
                          "--data-dir",
                          dir,
                          "--insecure-http",
                          controllers ? NULL : "--no-controllers",
                          NULL};
    if (corral_daemon_start(&d, argv, 120000) < 0)
        die("cannot start the apiserver");
    return d;
}

static void create(struct corral_client *c, const char *collection, json_t *obj)
{
    if (corral_client_create(c, collection, obj, NULL) < 0)
        die(corral_client_error(c));
    json_decref(obj);
}

static char rs_path[512];

static void find_rs(struct corral_client *c)
{
    for (int tries = 0; tries < 500 && !rs_path[0]; tries++) {
        json_t *l = NULL;
        if (corral_client_get(c, APPS "/replicasets?labelSelector=app%3Dbench", &l) == 0 &&
            json_array_size(json_object_get(l, "items")) == 1)
            snprintf(
                rs_path, sizeof(rs_path), APPS "/replicasets/%s",
                json_string_value(json_object_get(
                    json_object_get(json_array_get(json_object_get(l, "items"), 0), "metadata"),
                    "name")));
        json_decref(l);
        usleep(10000);
    }
    if (!rs_path[0])
        die("no ReplicaSet appeared");
}

static void one_pod_latency(struct corral_client *c, json_t *names, long n)
{
    double lat[20];
    for (int i = 0; i < 20; i++) {
        const char *name =
            json_string_value(json_array_get(names, (size_t)(i * 37) % json_array_size(names)));
        double t0 = now_s();
        set_ready(c, name, false, i);
        wait_status(c, rs_path, "readyReplicas", n - 1, 60);
        lat[i] = (now_s() - t0) * 1000.0;
        set_ready(c, name, true, i);
        wait_status(c, rs_path, "readyReplicas", n, 60);
    }
    qsort(lat, 20, sizeof(lat[0]), cmp_double);
    printf("ctrl_one_pod_status_ms_p50=%.1f ms\nctrl_one_pod_status_ms_max=%.1f ms\n", lat[10],
           lat[19]);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        corral_test_set_exe(argv[1]);
    const char *env = getenv("CORRAL_BENCH_PODS");
    long n = env ? atol(env) : 10000;
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/data", corral_test_tmpdir());
    struct corral_daemon d = start(dir, true);
    struct corral_client *c = client_for(d.url);

    create(c, NS "/services",
           json_pack("{s:s, s:s, s:{s:s}, s:{s:{s:s}, s:[{s:i}]}}", "apiVersion", "v1", "kind",
                     "Service", "metadata", "name", "bench", "spec", "selector", "app", "bench",
                     "ports", "port", 80));
    double t0 = now_s();
    create(c, APPS "/deployments",
           json_pack("{s:s, s:s, s:{s:s}, s:{s:I, s:{s:{s:s}}, s:{s:{s:{s:s}}, s:{s:[{s:s, "
                     "s:s}]}}}}",
                     "apiVersion", "apps/v1", "kind", "Deployment", "metadata", "name", "bench",
                     "spec", "replicas", (json_int_t)n, "selector", "matchLabels", "app", "bench",
                     "template", "metadata", "labels", "app", "bench", "spec", "containers", "name",
                     "main", "image", "bench:1"));
    find_rs(c);
    wait_status(c, rs_path, "replicas", n, 1800);
    double created = now_s() - t0;
    printf("ctrl_pods_created_s=%.1f s\nctrl_pod_create_rate=%.0f pods/s\n", created,
           (double)n / created);
    fflush(stdout);

    json_t *names = pod_names(c);
    mark_all_ready(c, names);
    double marked = now_s();
    wait_status(c, APPS "/deployments/bench", "availableReplicas", n, 1800);
    printf("ctrl_available_after_ready_s=%.2f s\n", now_s() - marked);
    one_pod_latency(c, names, n);
    fflush(stdout);

    sleep(2);
    double cpu0 = cpu_seconds(d.pid), w0 = now_s();
    sleep(20);
    printf("ctrl_idle_cpu=%.1f %% of a core\n",
           100.0 * (cpu_seconds(d.pid) - cpu0) / (now_s() - w0));
    double rss = rss_mb(d.pid);
    printf("ctrl_rss=%.0f MB\n", rss);
    fflush(stdout);

    /* the same store served without, then with, the controllers: what the indexes cost */
    corral_client_free(c);
    corral_daemon_stop(&d, SIGTERM);
    d = start(dir, false);
    sleep(3);
    double without = rss_mb(d.pid);
    corral_daemon_stop(&d, SIGTERM);
    double r0 = now_s();
    d = start(dir, true);
    c = client_for(d.url);
    printf("ctrl_restart_ready_s=%.1f s\n", now_s() - r0);
    sleep(5);
    printf("ctrl_index_rss=%.0f MB\n", rss_mb(d.pid) - without);
    fflush(stdout);

    static struct side side;
    if (corral_client_clone(c, &side.c) < 0 || pthread_create(&side.t, NULL, side_main, &side))
        die("cannot start the side writer");
    usleep(300000);
    double s0 = now_s();
    json_t *scale = json_pack("{s:{s:i}}", "spec", "replicas", 0);
    if (corral_client_patch(c, APPS "/deployments/bench", CORRAL_PATCH_MERGE, scale, NULL) < 0)
        die("cannot scale down");
    json_decref(scale);
    wait_status(c, rs_path, "replicas", 0, 1800);
    while (1) {
        json_t *l = NULL;
        corral_client_get(c, NS "/pods?labelSelector=app%3Dbench&limit=1", &l);
        bool empty = json_array_size(json_object_get(l, "items")) == 0;
        json_decref(l);
        if (empty)
            break;
        usleep(20000);
    }
    printf("ctrl_scale_down_s=%.1f s\n", now_s() - s0);
    atomic_store(&side.stop, true);
    pthread_join(side.t, NULL);
    qsort(side.lat, side.n, sizeof(double), cmp_double);
    if (side.n)
        printf("ctrl_side_write_ms_p50=%.1f ms\nctrl_side_write_ms_p99=%.1f ms\n",
               side.lat[side.n / 2], side.lat[side.n * 99 / 100]);
    corral_client_free(side.c);
    json_decref(names);
    corral_client_free(c);
    corral_daemon_stop(&d, SIGTERM);
    return 0;
}
