/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `corral scheduler` against the real `corral apiserver` on loopback: the test creates nodes
 * (with the corral.io/gpus annotation of docs/gpus.md) and pods over HTTP, and checks what the
 * scheduler writes back: the binding (spec.nodeName plus the assigned GPU indices, UUIDs and
 * share), the Scheduled and FailedScheduling Events, the PodScheduled=False condition with the
 * "0/N nodes are available: ..." explanation, the retry when a node arrives, a gang bound as a
 * whole, and a bound pod's resources returned when it is deleted.
 */
#include "client.h"
#include "daemon.h"
#include "error.h"
#include "harness.h"
#include "meta.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS "/api/v1/namespaces/default"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

#define WAIT_FOR(cond, secs)                                                                       \
    do {                                                                                           \
        double until_ = now_s() + (secs);                                                          \
        while (!(cond) && now_s() < until_)                                                        \
            sleep_ms(50);                                                                          \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: timed out waiting for %s\n", __FILE__, __LINE__, #cond);      \
            corral_daemon_dump(&sched);                                                            \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static struct corral_daemon api, sched;
static struct corral_client *c;

static void create(const char *collection, const char *json)
{
    json_error_t je;
    json_t *obj = json_loads(json, 0, &je);
    if (!obj)
        fprintf(stderr, "bad test JSON: %s: %s\n", je.text, json);
    CHECK(obj != NULL);
    int rc = corral_client_create(c, collection, obj, NULL);
    if (rc != 0)
        fprintf(stderr, "create in %s: %s\n", collection, corral_client_error(c));
    CHECK(rc == 0);
    json_decref(obj);
}

static json_t *get_pod(const char *name)
{
    char path[256];
    json_t *out = NULL;
    snprintf(path, sizeof(path), NS "/pods/%s", name);
    return corral_client_get(c, path, &out) == 0 ? out : NULL;
}

/* The pod's spec.nodeName ("" while unbound) into buf. */
static const char *node_of(const char *pod, char *buf, size_t len)
{
    json_t *p = get_pod(pod);
    const char *n = json_string_value(json_object_get(json_object_get(p, "spec"), "nodeName"));
    snprintf(buf, len, "%s", n ? n : "");
    json_decref(p);
    return buf;
}

static bool bound(const char *pod)
{
    char buf[128];
    return *node_of(pod, buf, sizeof(buf)) != '\0';
}

static const char *annotation(const char *pod, const char *key, char *buf, size_t len)
{
    json_t *p = get_pod(pod);
    const char *v = json_string_value(json_object_get(corral_meta_annotations(p), key));
    snprintf(buf, len, "%s", v ? v : "");
    json_decref(p);
    return buf;
}

/* The PodScheduled condition's message when it is False, "" otherwise. */
static const char *unschedulable_message(const char *pod, char *buf, size_t len)
{
    json_t *p = get_pod(pod);
    size_t i;
    json_t *cond;
    buf[0] = '\0';
    json_array_foreach(json_object_get(json_object_get(p, "status"), "conditions"), i, cond)
    {
        const char *type = json_string_value(json_object_get(cond, "type"));
        const char *st = json_string_value(json_object_get(cond, "status"));
        const char *msg = json_string_value(json_object_get(cond, "message"));
        if (type && strcmp(type, "PodScheduled") == 0 && st && strcmp(st, "False") == 0 && msg)
            snprintf(buf, len, "%s", msg);
    }
    json_decref(p);
    return buf;
}

/* True when an Event with reason about pod exists whose message contains needle. */
static bool has_event(const char *pod, const char *reason, const char *needle)
{
    json_t *list = NULL;
    bool found = false;
    if (corral_client_get(c, NS "/events", &list) != 0)
        return false;
    size_t i;
    json_t *ev;
    json_array_foreach(json_object_get(list, "items"), i, ev)
    {
        const char *name = json_string_value(json_object_get(json_object_get(ev,
                                                                             "involvedObject"),
                                                             "name"));
        const char *r = json_string_value(json_object_get(ev, "reason"));
        const char *m = json_string_value(json_object_get(ev, "message"));
        found |= name && r && m && strcmp(name, pod) == 0 && strcmp(r, reason) == 0 &&
                 strstr(m, needle);
    }
    json_decref(list);
    return found;
}

static void gpu_node(const char *name, int gpus, const char *model, bool rt, const char *cls)
{
    char per[4096] = "[", one[512], json[8192];
    for (int g = 0; g < gpus; g++) {
        snprintf(one, sizeof(one),
                 "%s{\\\"index\\\":%d,\\\"uuid\\\":\\\"GPU-%s-%d\\\",\\\"model\\\":\\\"%s\\\","
                 "\\\"rtCores\\\":%s,\\\"class\\\":\\\"%s\\\",\\\"numaNode\\\":0,"
                 "\\\"island\\\":-1}",
                 g ? "," : "", g, name, g, model, rt ? "true" : "false", cls);
        strcat(per, one);
    }
    strcat(per, "]");
    snprintf(json, sizeof(json),
             "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"%s\","
             "\"labels\":{\"corral.io/gpu.model\":\"%s\"},\"annotations\":{\"corral.io/gpus\":"
             "\"%s\"}},\"status\":{\"capacity\":{\"cpu\":\"16\",\"memory\":\"64Gi\","
             "\"pods\":\"110\",\"nvidia.com/gpu\":\"%d\"},\"allocatable\":{\"cpu\":\"16\","
             "\"memory\":\"64Gi\",\"pods\":\"110\",\"nvidia.com/gpu\":\"%d\"},"
             "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}",
             name, model, per, gpus, gpus);
    create("/api/v1/nodes", json);
}

static void pod(const char *name, const char *limits, const char *labels, const char *ann)
{
    char json[4096];
    snprintf(json, sizeof(json),
             "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\","
             "\"labels\":{%s},\"annotations\":{%s}},\"spec\":{\"containers\":[{\"name\":\"c\","
             "\"image\":\"busybox\",\"command\":[\"sleep\",\"3600\"],\"resources\":{"
             "\"requests\":{\"cpu\":\"100m\"},\"limits\":{%s}}}]}}",
             name, labels ? labels : "", ann ? ann : "", limits);
    create(NS "/pods", json);
}

static void write_kubeconfig(const char *path, const char *url)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fprintf(f, "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n"
               "    server: %s\nusers:\n- name: admin\n  user: {}\ncontexts:\n- name: test\n"
               "  context: {cluster: test, user: admin}\ncurrent-context: test\n", url);
    fclose(f);
}

static void start_apiserver(void)
{
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/data", corral_test_tmpdir());
    const char *a[] = {"apiserver", "--listen", "127.0.0.1:0", "--data-dir", dir,
                       "--insecure-http", "--node-grace-seconds", "3600", NULL};
    CHECK(corral_daemon_start(&api, a, 20000) == 0);
    struct corral_client_config cfg = {.server = api.url};
    CHECK(corral_client_new(&cfg, &c) == 0);
}

static void start_scheduler(void)
{
    char kc[600];
    snprintf(kc, sizeof(kc), "%s/kubeconfig", corral_test_tmpdir());
    write_kubeconfig(kc, api.url);
    const char *s[] = {"scheduler", "--kubeconfig", kc, "--apiserver", api.url,
                       "--retry-seconds", "2", NULL};
    CHECK(corral_daemon_start(&sched, s, 20000) == 0);
}

/* True when the scheduler's /metrics contains line. */
static bool metrics_have(struct corral_client *sc, const char *line)
{
    struct corral_response r = {0};
    bool ok = corral_client_request(sc, "GET", "/metrics", NULL, NULL, 0, &r) == 0 && r.body &&
              strstr(r.body, line) != NULL;
    corral_response_clear(&r);
    return ok;
}

static void test_scheduler(void)
{
    char buf[1024];
    start_apiserver();
    gpu_node("dc-1", 2, "A100-SXM4-80GB", false, "datacenter-training");
    gpu_node("rtx-1", 1, "RTX-4090", true, "consumer");
    /* after the nodes: its first list has them (nodes and pods come by separate watches, so a
     * node created later may be seen after a pod created after it) */
    start_scheduler();

    /* a whole GPU, away from the training-class node (GpuClass) with its UUID */
    pod("infer", "\"nvidia.com/gpu\":1", NULL, NULL);
    WAIT_FOR(bound("infer"), 20);
    CHECK_STR_EQ(node_of("infer", buf, sizeof(buf)), "rtx-1");
    CHECK_STR_EQ(annotation("infer", "corral.io/assigned-gpus", buf, sizeof(buf)), "0");
    CHECK_STR_EQ(annotation("infer", "corral.io/assigned-gpu-uuids", buf, sizeof(buf)),
                 "GPU-rtx-1-0");
    WAIT_FOR(has_event("infer", "Scheduled", "Successfully assigned default/infer to rtx-1"), 10);

    /* a share of one GPU: the only room left is on the A100s */
    pod("share", "\"corral.io/gpu-milli\":\"250\"", NULL, NULL);
    WAIT_FOR(bound("share"), 20);
    CHECK_STR_EQ(node_of("share", buf, sizeof(buf)), "dc-1");
    CHECK_STR_EQ(annotation("share", "corral.io/assigned-gpu-milli", buf, sizeof(buf)), "250");

    /* render work needs RT cores: none left, and the A100s have none */
    pod("render", "\"nvidia.com/gpu\":1", NULL, "\"corral.io/workload\":\"render\"");
    WAIT_FOR(*unschedulable_message("render", buf, sizeof(buf)), 20);
    CHECK_STR_EQ(buf, "0/2 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s) had no "
                      "GPUs with RT cores (render workload).");
    WAIT_FOR(has_event("render", "FailedScheduling", "0/2 nodes are available"), 10);

    /* a new node with RT cores: the pod is retried and lands there */
    gpu_node("rtx-2", 2, "RTX-4090", true, "consumer");
    WAIT_FOR(bound("render"), 20);
    CHECK_STR_EQ(node_of("render", buf, sizeof(buf)), "rtx-2");

    /* a gang of two one-GPU pods (PodGroup minMember 2) on what is left: rtx-2 has one GPU,
     * dc-1 one whole GPU; both are bound, or neither */
    create("/apis/scheduling.x-k8s.io/v1alpha1/namespaces/default/podgroups",
           "{\"apiVersion\":\"scheduling.x-k8s.io/v1alpha1\",\"kind\":\"PodGroup\","
           "\"metadata\":{\"name\":\"train\"},\"spec\":{\"minMember\":2}}");
    pod("w0", "\"nvidia.com/gpu\":1", "\"scheduling.x-k8s.io/pod-group\":\"train\"", NULL);
    sleep_ms(500);
    CHECK(!bound("w0")); /* waits for its group */
    pod("w1", "\"nvidia.com/gpu\":1", "\"scheduling.x-k8s.io/pod-group\":\"train\"", NULL);
    WAIT_FOR(bound("w0") && bound("w1"), 20);

    /* the cluster is full now; deleting a pod lets the next one in */
    pod("late", "\"nvidia.com/gpu\":1", NULL, NULL);
    WAIT_FOR(*unschedulable_message("late", buf, sizeof(buf)), 20);
    CHECK_STR_CONTAINS(buf, "Insufficient nvidia.com/gpu");
    json_t *now = json_pack("{s:i}", "gracePeriodSeconds", 0); /* no kubelet to wait for */
    CHECK(corral_client_delete(c, NS "/pods/infer", now, NULL) == 0);
    json_decref(now);
    WAIT_FOR(bound("late"), 20);
    CHECK_STR_EQ(node_of("late", buf, sizeof(buf)), "rtx-1");

    /* the scheduler's own endpoints */
    char url[300];
    struct corral_client_config cfg = {.server = sched.url};
    struct corral_client *sc;
    CHECK(corral_client_new(&cfg, &sc) == 0);
    struct corral_response r = {0};
    snprintf(url, sizeof(url), "/healthz");
    CHECK(corral_client_request(sc, "GET", url, NULL, NULL, 0, &r) == 0);
    CHECK_INT_EQ(r.status, 200);
    corral_response_clear(&r);
    /* the counter moves once the binding returns, which may be after the test saw the pod */
    WAIT_FOR(metrics_have(sc, "corral_scheduler_pods_bound_total 6"), 10);
    corral_client_free(sc);

    CHECK_INT_EQ(corral_daemon_stop(&sched, SIGTERM), 0);
    corral_client_free(c);
    corral_daemon_stop(&api, SIGTERM);
}

/* A failed CHECK aborts, which skips the harness's atexit cleanup: stop the daemons here. */
static void on_abort(int sig)
{
    if (sched.pid > 0)
        kill(sched.pid, SIGKILL);
    if (api.pid > 0)
        kill(api.pid, SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        corral_test_set_exe(argv[1]);
    signal(SIGABRT, on_abort);
    fprintf(stderr, "-- scheduler\n");
    test_scheduler();
    fprintf(stderr, "ok scheduler\n");
    return 0;
}
