/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Integration tests for `corral kubelet` with the real API server on loopback: a pod with
 * command/env runs and its output reaches `pods/NAME/log` (and `kubectl logs` when kubectl is
 * installed); restartPolicy and probes as seen through the API; deletion stops the process
 * within its grace period; two one-GPU pods on a 4-GPU node get different GPUs; the agent
 * survives an API server outage and re-registers after a restart on an empty store; several
 * agents share one machine; and the TLS path: bootstrap-token join, node credentials, logs
 * proxied over HTTPS with the node's pinned serving CA and the API server's client
 * certificate.
 */
#include "client.h"
#include "corral-config.h"
#include "daemon.h"
#include "error.h"
#include "harness.h"
#include "kubeconfig.h"
#include "meta.h"
#include "pki.h"
#include "yamljson.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TOPO(file) CORRAL_SHARED_DIR "/hwloc-topologies/" file
#define H100 TOPO("dell-xe8640_2xXeon8480_4xH100-SXM5_nvlink_cuda-nvml-opencl.xml")
#define RTX TOPO("desktop_i5-13600KF_RTX3070_opencl.xml")

struct cluster {
    struct corral_daemon api;
    char data[512];
    char kubeconfig[512];
    int port;
    struct corral_client *c;
};

static int seq;

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    CHECK(fputs(text, f) >= 0);
    CHECK(fclose(f) == 0);
}

static void start_api(struct cluster *cl, const char *extra1, const char *extra2)
{
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", cl->port);
    const char *argv[] = {"apiserver", "--listen", listen, "--data-dir",
                          cl->data,    extra1,     extra2, NULL};
    CHECK(corral_daemon_start(&cl->api, argv, 20000) == 0);
}

/* A plain-HTTP API server and a kubeconfig for it. */
static void cluster_up(struct cluster *cl)
{
    memset(cl, 0, sizeof(*cl));
    snprintf(cl->data, sizeof(cl->data), "%s/api-%d", corral_test_tmpdir(), ++seq);
    cl->port = corral_test_free_port();
    start_api(cl, "--insecure-http", NULL);
    snprintf(cl->kubeconfig, sizeof(cl->kubeconfig), "%s/kc-%d.yaml", corral_test_tmpdir(), seq);
    char text[1024];
    snprintf(text, sizeof(text),
             "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: '%s'}\n"
             "users:\n- name: u\n  user: {}\ncontexts:\n- name: x\n  context: {cluster: c, "
             "user: u}\ncurrent-context: x\n",
             cl->api.url);
    write_file(cl->kubeconfig, text);
    struct corral_client_config cfg = {.server = cl->api.url};
    CHECK(corral_client_new(&cfg, &cl->c) == 0);
}

static void cluster_down(struct cluster *cl)
{
    corral_client_free(cl->c);
    corral_daemon_stop(&cl->api, SIGTERM);
}

/* Starts an agent; extra is a NULL-terminated list of more arguments (may be NULL). */
static void agent_up(struct corral_daemon *d, const struct cluster *cl, const char *name,
                     const char *address, const char *topology, const char *const *extra)
{
    char state[512];
    snprintf(state, sizeof(state), "%s/state-%s-%d", corral_test_tmpdir(), name, ++seq);
    const char *argv[40] = {"kubelet",
                            "--apiserver",
                            cl->api.url,
                            "--kubeconfig",
                            cl->kubeconfig,
                            "--name",
                            name,
                            "--state-dir",
                            state,
                            "--address",
                            address,
                            "--port",
                            "0",
                            "--topology",
                            topology,
                            "--heartbeat-interval",
                            "1s",
                            "--backoff-initial",
                            "200ms",
                            "--backoff-max",
                            "1s",
                            NULL};
    int n = 21;
    for (int i = 0; extra && extra[i] && n < 38; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    CHECK(corral_daemon_start(d, argv, 30000) == 0);
}

static json_t *get(struct corral_client *c, const char *path)
{
    json_t *obj = NULL;
    return corral_client_get(c, path, &obj) == 0 ? obj : NULL;
}

static json_t *pod_path_get(struct corral_client *c, const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), "/api/v1/namespaces/default/pods/%s", name);
    return get(c, path);
}

static double now_s(void)
{
    return (double)corral_now_ns() / 1e9;
}

typedef bool (*pod_pred)(const json_t *pod, const void *arg);

/* Polls pod name until pred holds (NULL pod = it does not exist). Returns the pod (or NULL). */
static json_t *wait_pod(struct cluster *cl, const char *name, pod_pred pred, const void *arg,
                        double timeout_s)
{
    double until = now_s() + timeout_s;
    json_t *pod = NULL;
    for (;;) {
        json_decref(pod);
        pod = pod_path_get(cl->c, name);
        if (pred(pod, arg))
            return pod;
        if (now_s() > until)
            break;
        usleep(100000);
    }
    char *text = pod ? json_dumps(json_object_get(pod, "status"), JSON_INDENT(1)) : NULL;
    fprintf(stderr, "pod %s: condition not reached; status: %s\n", name, text ? text : "(gone)");
    free(text);
    CHECK(!"pod condition not reached in time");
    return NULL;
}

static const char *phase(const json_t *pod)
{
    return json_string_value(json_object_get(json_object_get(pod, "status"), "phase"));
}

static bool phase_is(const json_t *pod, const void *arg)
{
    return pod && phase(pod) && strcmp(phase(pod), arg) == 0;
}

static bool gone(const json_t *pod, const void *arg)
{
    (void)arg;
    return pod == NULL;
}

static json_t *cstatus(const json_t *pod, const char *name)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(json_object_get(pod, "status"), "containerStatuses"), i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "name")), name) == 0)
            return c;
    }
    return NULL;
}

static bool running(const json_t *pod, const void *arg)
{
    json_t *c = pod ? cstatus(pod, arg ? arg : "app") : NULL;
    return c && json_object_get(json_object_get(c, "state"), "running");
}

static bool pod_ready(const json_t *pod, const void *want)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(json_object_get(pod, "status"), "conditions"), i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "type")), "Ready") == 0)
            return strcmp(json_string_value(json_object_get(c, "status")), want) == 0;
    }
    return false;
}

static bool restarted_at_least(const json_t *pod, const void *arg)
{
    json_t *c = pod ? cstatus(pod, "app") : NULL;
    return c && json_integer_value(json_object_get(c, "restartCount")) >= *(const int *)arg;
}

/* Creates a pod from YAML (name, node and body filled in). */
static void create_pod(struct cluster *cl, const char *yaml)
{
    json_t *docs = NULL;
    struct corral_parse_error pe;
    CHECK(corral_yaml_load(yaml, strlen(yaml), &docs, &pe) == 0);
    json_t *out = NULL;
    int rc = corral_client_create(cl->c, "/api/v1/namespaces/default/pods", json_array_get(docs, 0),
                                  &out);
    if (rc != 0)
        fprintf(stderr, "create: %s\n", corral_client_error(cl->c));
    CHECK(rc == 0);
    json_decref(out);
    json_decref(docs);
}

/* GET pods/NAME/log?QUERY. Returns the body (caller frees) and the HTTP status in *code. */
static char *pod_log(struct cluster *cl, const char *name, const char *query, long *code)
{
    char path[512];
    snprintf(path, sizeof(path), "/api/v1/namespaces/default/pods/%s/log%s%s", name,
             query ? "?" : "", query ? query : "");
    struct corral_response r;
    CHECK(corral_client_request(cl->c, "GET", path, NULL, NULL, 0, &r) == 0);
    *code = r.status;
    char *body = strdup(r.body);
    corral_response_clear(&r);
    return body;
}

static bool kubectl_available(void)
{
    return access("/usr/bin/kubectl", X_OK) == 0;
}

/* Runs kubectl with the cluster's kubeconfig; returns its stdout (caller frees). */
static char *kubectl(const struct cluster *cl, const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "/usr/bin/kubectl --kubeconfig '%s' --request-timeout=20s %s 2>&1",
             cl->kubeconfig, args);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL);
    char *out = calloc(1, 65536);
    size_t n = fread(out, 1, 65535, p);
    out[n] = '\0';
    pclose(p);
    return out;
}

static json_t *node_get(struct cluster *cl, const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), "/api/v1/nodes/%s", name);
    return get(cl->c, path);
}

static const char *node_condition(const json_t *node, const char *type)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(json_object_get(node, "status"), "conditions"), i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "type")), type) == 0)
            return json_string_value(json_object_get(c, "status"));
    }
    return NULL;
}

static bool node_ready(struct cluster *cl, const char *name, double timeout_s)
{
    double until = now_s() + timeout_s;
    while (now_s() < until) {
        json_t *n = node_get(cl, name);
        const char *r = n ? node_condition(n, "Ready") : NULL;
        bool ok = r && strcmp(r, "True") == 0;
        json_decref(n);
        if (ok)
            return true;
        usleep(100000);
    }
    return false;
}

static char *lease_renew_time(struct cluster *cl, const char *name)
{
    char path[256];
    snprintf(path, sizeof(path),
             "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/%s", name);
    json_t *l = get(cl->c, path);
    const char *t = json_string_value(json_object_get(json_object_get(l, "spec"), "renewTime"));
    char *copy = t ? strdup(t) : NULL;
    json_decref(l);
    return copy;
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_pod_runs_and_logs(void)
{
    struct cluster cl;
    cluster_up(&cl);
    struct corral_daemon agent;
    agent_up(&agent, &cl, "gpu-node-1", "127.0.0.2", H100, NULL);
    CHECK(node_ready(&cl, "gpu-node-1", 10));

    json_t *node = node_get(&cl, "gpu-node-1");
    json_t *labels = json_object_get(json_object_get(node, "metadata"), "labels");
    CHECK_STR_EQ(json_string_value(json_object_get(labels, "nvidia.com/gpu.count")), "4");
    CHECK_STR_EQ(json_string_value(json_object_get(labels, "corral.io/gpu.model")),
                 "H100-SXM5-80GB");
    CHECK_STR_EQ(
        json_string_value(json_object_get(
            json_object_get(json_object_get(node, "status"), "capacity"), "nvidia.com/gpu")),
        "4");
    CHECK_STR_EQ(node_condition(node, "MemoryPressure"), "False");
    CHECK(node_condition(node, "GPUHealthy") != NULL);
    json_decref(node);
    char *renew1 = lease_renew_time(&cl, "gpu-node-1");
    CHECK(renew1 != NULL);

    create_pod(&cl, "apiVersion: v1\nkind: Pod\nmetadata: {name: hello}\n"
                    "spec:\n  nodeName: gpu-node-1\n  restartPolicy: Never\n  containers:\n"
                    "  - name: app\n    image: busybox\n"
                    "    command: [sh, -c]\n"
                    "    args: ['echo \"hello $GREETING from $(POD)\"; echo to-stderr >&2']\n"
                    "    env:\n    - {name: GREETING, value: world}\n"
                    "    - name: POD\n      valueFrom: {fieldRef: {fieldPath: metadata.name}}\n");
    json_t *pod = wait_pod(&cl, "hello", phase_is, "Succeeded", 20);
    json_t *term = json_object_get(json_object_get(cstatus(pod, "app"), "state"), "terminated");
    CHECK_INT_EQ(json_integer_value(json_object_get(term, "exitCode")), 0);
    CHECK_STR_EQ(json_string_value(json_object_get(json_object_get(pod, "status"), "podIP")),
                 "127.0.0.2");
    json_decref(pod);
    long code;
    char *log = pod_log(&cl, "hello", "container=app", &code);
    if (code != 200)
        fprintf(stderr, "log: %ld %s\n", code, log);
    CHECK_INT_EQ(code, 200);
    CHECK_STR_EQ(log, "hello world from hello\nto-stderr\n");
    free(log);
    log = pod_log(&cl, "hello", "container=app&tailLines=1", &code);
    CHECK_STR_EQ(log, "to-stderr\n");
    free(log);
    log = pod_log(&cl, "hello", "container=nope", &code);
    CHECK(code >= 400);
    free(log);
    if (kubectl_available()) {
        char *out = kubectl(&cl, "logs hello");
        CHECK_STR_EQ(out, "hello world from hello\nto-stderr\n");
        free(out);
    } else {
        fprintf(stderr, "kubectl not installed: checked pods/NAME/log only\n");
    }

    /* a follower sees lines as they come, and the stream ends with the container */
    create_pod(&cl, "apiVersion: v1\nkind: Pod\nmetadata: {name: ticker}\n"
                    "spec:\n  nodeName: gpu-node-1\n  restartPolicy: Never\n  containers:\n"
                    "  - name: app\n    image: busybox\n"
                    "    command: [sh, -c, 'for i in 1 2 3; do echo tick $i; sleep 0.5; done']\n");
    json_decref(wait_pod(&cl, "ticker", running, NULL, 20));
    log = pod_log(&cl, "ticker", "container=app&follow=true", &code);
    CHECK_INT_EQ(code, 200);
    CHECK_STR_EQ(log, "tick 1\ntick 2\ntick 3\n");
    free(log);
    if (kubectl_available()) { /* the same through the real kubectl */
        create_pod(&cl, "apiVersion: v1\nkind: Pod\nmetadata: {name: ticker2}\n"
                        "spec:\n  nodeName: gpu-node-1\n  restartPolicy: Never\n  containers:\n"
                        "  - name: app\n    image: busybox\n"
                        "    command: [sh, -c, 'for i in 1 2 3; do echo tock $i; sleep 0.5; "
                        "done']\n");
        json_decref(wait_pod(&cl, "ticker2", running, NULL, 20));
        char *out = kubectl(&cl, "logs -f ticker2");
        CHECK_STR_EQ(out, "tock 1\ntock 2\ntock 3\n");
        free(out);
        out = kubectl(&cl, "logs ticker2 --timestamps --tail=1");
        CHECK(strlen(out) > 31 && out[4] == '-' && strstr(out, "Z tock 3\n") != NULL);
        free(out);
    }

    usleep(1500000);
    char *renew2 = lease_renew_time(&cl, "gpu-node-1");
    CHECK(renew2 && strcmp(renew1, renew2) != 0); /* the lease is being renewed */
    free(renew1);
    free(renew2);
    CHECK_INT_EQ(corral_daemon_stop(&agent, SIGTERM), 0);
    node = node_get(&cl, "gpu-node-1");
    CHECK_STR_EQ(node_condition(node, "Ready"), "False"); /* it said goodbye */
    json_decref(node);
    cluster_down(&cl);
}

static void test_restarts_and_probes(void)
{
    struct cluster cl;
    cluster_up(&cl);
    struct corral_daemon agent;
    agent_up(&agent, &cl, "node-p", "127.0.0.3", RTX, NULL);
    CHECK(node_ready(&cl, "node-p", 10));
    create_pod(&cl, "apiVersion: v1\nkind: Pod\nmetadata: {name: flaky}\n"
                    "spec:\n  nodeName: node-p\n  restartPolicy: OnFailure\n  containers:\n"
                    "  - name: app\n    image: busybox\n"
                    "    command: [sh, -c, 'n=$(cat n 2>/dev/null || echo 0); n=$((n+1));"
                    " echo $n > n; echo attempt $n; [ $n -ge 3 ]']\n");
    create_pod(&cl, "apiVersion: v1\nkind: Pod\nmetadata: {name: probed}\n"
                    "spec:\n  nodeName: node-p\n  terminationGracePeriodSeconds: 2\n"
                    "  containers:\n  - name: app\n    image: busybox\n"
                    "    command: [sh, -c, 'rm -f ready; sleep 2; touch ready; sleep 30']\n"
                    "    readinessProbe:\n      exec: {command: [test, -f, ready]}\n"
                    "      periodSeconds: 1\n      failureThreshold: 1\n"
                    "    livenessProbe:\n      exec: {command: [test, '!', -f, ready]}\n"
                    "      initialDelaySeconds: 4\n      periodSeconds: 1\n"
                    "      failureThreshold: 1\n");
    json_t *pod = wait_pod(&cl, "flaky", phase_is, "Succeeded", 30);
    CHECK_INT_EQ(json_integer_value(json_object_get(cstatus(pod, "app"), "restartCount")), 2);
    json_decref(pod);
    long code;
    char *log = pod_log(&cl, "flaky", "container=app&previous=true", &code);
    CHECK_STR_EQ(log, "attempt 2\n");
    free(log);

    /* readiness: not ready, then ready once the file exists */
    pod = wait_pod(&cl, "probed", running, NULL, 20);
    CHECK(pod_ready(pod, "False"));
    json_decref(pod);
    json_decref(wait_pod(&cl, "probed", pod_ready, "True", 20));
    /* liveness fails once the file exists (after its initial delay): restarted */
    int one = 1;
    pod = wait_pod(&cl, "probed", restarted_at_least, &one, 30);
    json_t *last = json_object_get(json_object_get(cstatus(pod, "app"), "lastState"), "terminated");
    CHECK_STR_CONTAINS(json_string_value(json_object_get(last, "message")),
                       "Liveness probe failed");
    json_decref(pod);
    /* what happened is on record as Events, as `kubectl describe` shows them */
    json_t *events = get(cl.c, "/api/v1/namespaces/default/events?fieldSelector="
                               "involvedObject.name%3Dprobed");
    char *text = events ? json_dumps(events, JSON_COMPACT) : NULL;
    CHECK_STR_CONTAINS(text, "\"reason\":\"Unhealthy\"");
    CHECK_STR_CONTAINS(text, "failed liveness probe, will be restarted");
    CHECK_STR_CONTAINS(text, "\"component\":\"kubelet\"");
    free(text);
    json_decref(events);
    if (kubectl_available()) {
        char *out = kubectl(&cl, "describe pod probed");
        CHECK_STR_CONTAINS(out, "Readiness probe failed");
        free(out);
    }
    CHECK_INT_EQ(corral_daemon_stop(&agent, SIGTERM), 0);
    cluster_down(&cl);
}

static bool pid_alive(pid_t pid)
{
    char path[64], state = 'Z';
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char buf[512];
    if (fgets(buf, sizeof(buf), f)) {
        char *rp = strrchr(buf, ')');
        if (rp)
            state = rp[2];
    }
    fclose(f);
    return state != 'Z';
}

static pid_t logged_pid(struct cluster *cl, const char *name)
{
    long code;
    char *log = pod_log(cl, name, "container=app", &code);
    pid_t pid = (pid_t)atol(strstr(log, "pid ") ? strstr(log, "pid ") + 4 : "0");
    free(log);
    return pid;
}

static void test_delete_within_grace(void)
{
    struct cluster cl;
    cluster_up(&cl);
    struct corral_daemon agent;
    agent_up(&agent, &cl, "node-d", "127.0.0.4", RTX, NULL);
    CHECK(node_ready(&cl, "node-d", 10));
    create_pod(&cl, "apiVersion: v1\nkind: Pod\nmetadata: {name: polite}\n"
                    "spec:\n  nodeName: node-d\n  terminationGracePeriodSeconds: 10\n"
                    "  containers:\n  - name: app\n    image: busybox\n"
                    "    command: [sh, -c, 'trap \"sleep 1; exit 0\" TERM; echo pid $$$$;"
                    " while true; do sleep 0.2; done']\n");
    create_pod(&cl, "apiVersion: v1\nkind: Pod\nmetadata: {name: stubborn}\n"
                    "spec:\n  nodeName: node-d\n  terminationGracePeriodSeconds: 2\n"
                    "  containers:\n  - name: app\n    image: busybox\n"
                    "    command: [sh, -c, 'trap \"\" TERM; echo pid $$$$;"
                    " while true; do sleep 0.2; done']\n");
    json_decref(wait_pod(&cl, "polite", running, NULL, 20));
    json_decref(wait_pod(&cl, "stubborn", running, NULL, 20));
    usleep(300000);
    pid_t polite = logged_pid(&cl, "polite"), stubborn = logged_pid(&cl, "stubborn");
    CHECK(polite > 0 && pid_alive(polite));
    CHECK(stubborn > 0 && pid_alive(stubborn));

    double t0 = now_s();
    CHECK(corral_client_delete(cl.c, "/api/v1/namespaces/default/pods/polite", NULL, NULL) == 0);
    CHECK(corral_client_delete(cl.c, "/api/v1/namespaces/default/pods/stubborn", NULL, NULL) == 0);
    wait_pod(&cl, "stubborn", gone, NULL, 15);
    double stubborn_s = now_s() - t0;
    wait_pod(&cl, "polite", gone, NULL, 15);
    double polite_s = now_s() - t0;
    CHECK(!pid_alive(polite));
    CHECK(!pid_alive(stubborn));
    fprintf(stderr, "deleted: polite in %.2fs (grace 10s), stubborn in %.2fs (grace 2s)\n",
            polite_s, stubborn_s);
    CHECK(polite_s < 10);
    CHECK(stubborn_s < 2 + 3); /* SIGKILL at the grace deadline, plus the status round trip */
    CHECK_INT_EQ(corral_daemon_stop(&agent, SIGTERM), 0);
    cluster_down(&cl);
}

static char *gpu_of(struct cluster *cl, const char *name)
{
    long code;
    char *log = pod_log(cl, name, "container=app", &code);
    CHECK_INT_EQ(code, 200);
    log[strcspn(log, "\n")] = '\0';
    return log;
}

static void test_two_gpu_pods_get_different_gpus(void)
{
    struct cluster cl;
    cluster_up(&cl);
    struct corral_daemon agent;
    agent_up(&agent, &cl, "gpu-node-2", "127.0.0.5", H100, NULL);
    CHECK(node_ready(&cl, "gpu-node-2", 10));
    static const char tmpl[] = "apiVersion: v1\nkind: Pod\nmetadata: {name: %s}\n"
                               "spec:\n  nodeName: gpu-node-2\n  containers:\n"
                               "  - name: app\n    image: cuda\n"
                               "    command: [sh, -c, 'echo $CUDA_VISIBLE_DEVICES; sleep 30']\n"
                               "    resources: {limits: {nvidia.com/gpu: 1}}\n";
    char yaml[1024];
    snprintf(yaml, sizeof(yaml), tmpl, "train-a");
    create_pod(&cl, yaml);
    snprintf(yaml, sizeof(yaml), tmpl, "train-b");
    create_pod(&cl, yaml);
    /* and one bound the scheduler's way: a Binding naming GPU 3 */
    snprintf(yaml, sizeof(yaml),
             "apiVersion: v1\nkind: Pod\nmetadata: {name: train-c}\nspec:\n  containers:\n"
             "  - name: app\n    image: cuda\n"
             "    command: [sh, -c, 'echo $CUDA_VISIBLE_DEVICES; sleep 30']\n"
             "    resources: {limits: {nvidia.com/gpu: 1}}\n");
    create_pod(&cl, yaml);
    json_t *binding =
        json_pack("{s:s, s:s, s:{s:s, s:{s:s}}, s:{s:s, s:s}}", "apiVersion", "v1", "kind",
                  "Binding", "metadata", "name", "train-c", "annotations",
                  "corral.io/assigned-gpus", "3", "target", "kind", "Node", "name", "gpu-node-2");
    CHECK(corral_client_create(cl.c, "/api/v1/namespaces/default/pods/train-c/binding", binding,
                               NULL) == 0);
    json_decref(binding);
    json_decref(wait_pod(&cl, "train-a", running, NULL, 20));
    json_decref(wait_pod(&cl, "train-b", running, NULL, 20));
    json_decref(wait_pod(&cl, "train-c", running, NULL, 20));
    usleep(300000);
    char *a = gpu_of(&cl, "train-a"), *b = gpu_of(&cl, "train-b"), *c = gpu_of(&cl, "train-c");
    fprintf(stderr, "CUDA_VISIBLE_DEVICES: train-a=%s train-b=%s train-c=%s\n", a, b, c);
    CHECK(strlen(a) == 1 && strlen(b) == 1); /* indices: this export has no UUIDs */
    CHECK(strcmp(a, b) != 0);
    CHECK_STR_EQ(c, "3");
    CHECK(strcmp(a, "3") != 0 && strcmp(b, "3") != 0);
    free(a);
    free(b);
    free(c);
    CHECK_INT_EQ(corral_daemon_stop(&agent, SIGTERM), 0);
    cluster_down(&cl);
}

static void test_api_outage_and_restart(void)
{
    struct cluster cl;
    cluster_up(&cl);
    struct corral_daemon agent;
    agent_up(&agent, &cl, "node-o", "127.0.0.6", RTX, NULL);
    CHECK(node_ready(&cl, "node-o", 10));
    create_pod(&cl, "apiVersion: v1\nkind: Pod\nmetadata: {name: steady}\n"
                    "spec:\n  nodeName: node-o\n  containers:\n  - name: app\n"
                    "    image: busybox\n    command: [sh, -c, 'echo pid $$$$; sleep 60']\n");
    json_decref(wait_pod(&cl, "steady", running, NULL, 20));
    usleep(300000);
    pid_t pid = logged_pid(&cl, "steady");
    CHECK(pid > 0);

    /* the API server dies; the pod does not care */
    corral_daemon_stop(&cl.api, SIGKILL);
    sleep(3);
    CHECK(pid_alive(pid));
    start_api(&cl, "--insecure-http", NULL); /* same port, same store */
    char *before = lease_renew_time(&cl, "node-o");
    sleep(2);
    char *after = lease_renew_time(&cl, "node-o");
    CHECK(before && after && strcmp(before, after) != 0);
    free(before);
    free(after);
    CHECK(pid_alive(pid));
    json_t *pod = pod_path_get(cl.c, "steady");
    CHECK(running(pod, NULL));
    json_decref(pod);

    /* restarted on an empty store: the node registers again, the orphaned pod is stopped */
    corral_daemon_stop(&cl.api, SIGKILL);
    snprintf(cl.data + strlen(cl.data), sizeof(cl.data) - strlen(cl.data), "-fresh");
    start_api(&cl, "--insecure-http", NULL);
    CHECK(node_ready(&cl, "node-o", 15));
    double until = now_s() + 15;
    while (pid_alive(pid) && now_s() < until)
        usleep(100000);
    CHECK(!pid_alive(pid));
    CHECK_INT_EQ(corral_daemon_stop(&agent, SIGTERM), 0);
    cluster_down(&cl);
}

static void test_several_agents_one_machine(void)
{
    struct cluster cl;
    cluster_up(&cl);
    struct corral_daemon a1, a2;
    const char *extra1[] = {"--provider",  "studio-anna", "--zone",
                            "home-berlin", "--taint",     "gpu=consumer:NoSchedule",
                            NULL};
    agent_up(&a1, &cl, "rtx-anna", "127.0.0.7", RTX, extra1);
    agent_up(&a2, &cl, "h100-a", "127.0.0.8", H100, NULL);
    CHECK(node_ready(&cl, "rtx-anna", 10));
    CHECK(node_ready(&cl, "h100-a", 10));
    json_t *n1 = node_get(&cl, "rtx-anna"), *n2 = node_get(&cl, "h100-a");
    json_t *l1 = json_object_get(json_object_get(n1, "metadata"), "labels");
    json_t *l2 = json_object_get(json_object_get(n2, "metadata"), "labels");
    CHECK_STR_EQ(json_string_value(json_object_get(l1, "corral.io/gpu.class")), "consumer");
    CHECK_STR_EQ(json_string_value(json_object_get(l1, "corral.io/provider")), "studio-anna");
    CHECK_STR_EQ(json_string_value(json_object_get(l2, "corral.io/gpu.class")),
                 "datacenter-training");
    json_t *taint = json_array_get(json_object_get(json_object_get(n1, "spec"), "taints"), 0);
    CHECK_STR_EQ(json_string_value(json_object_get(taint, "key")), "gpu");
    json_decref(n1);
    json_decref(n2);
    CHECK_INT_EQ(corral_daemon_stop(&a1, SIGTERM), 0);
    CHECK_INT_EQ(corral_daemon_stop(&a2, SIGTERM), 0);
    cluster_down(&cl);
}

/* ---- TLS: corral init, bootstrap join, logs through the authenticated proxy ---------------- */

static char *first_bootstrap_token(const char *dir)
{
    char path[700], *text = NULL, *tok = NULL;
    snprintf(path, sizeof(path), "%s/bootstrap-tokens", dir);
    CHECK(corral_pki_read_file(path, &text, NULL) == 0);
    for (char *line = strtok(text, "\n"); line && !tok; line = strtok(NULL, "\n"))
        if (line[0] != '#')
            tok = strndup(line, strcspn(line, " "));
    corral_pki_free_secret(text);
    CHECK(tok != NULL);
    return tok;
}

static void test_tls_join_and_logs(void)
{
    char dir[600], cmd[1400];
    snprintf(dir, sizeof(dir), "%s/cluster-tls", corral_test_tmpdir());
    snprintf(cmd, sizeof(cmd), "'%s' init --dir '%s' >/dev/null 2>&1", corral_test_exe(), dir);
    CHECK(system(cmd) == 0);
    struct cluster cl;
    memset(&cl, 0, sizeof(cl));
    snprintf(cl.data, sizeof(cl.data), "%s/api-tls", corral_test_tmpdir());
    cl.port = corral_test_free_port();
    start_api(&cl, "--cluster-dir", dir);
    /* the admin's view, for the test itself */
    char admin[700];
    snprintf(admin, sizeof(admin), "%s/admin.kubeconfig", dir);
    struct corral_kubeconfig kc;
    CHECK(corral_kubeconfig_load(admin, NULL, &kc, NULL) == 0);
    CHECK(corral_kubeconfig_client(&kc, cl.api.url, &cl.c) == 0);
    /* the node's bootstrap kubeconfig: the cluster CA and a bootstrap token, nothing else */
    char *token = first_bootstrap_token(dir);
    struct corral_kubeconfig boot = {.context = "boot",
                                     .cluster = "corral",
                                     .user = "bootstrap",
                                     .server = cl.api.url,
                                     .ca_pem = kc.ca_pem,
                                     .token = token};
    const struct corral_kubeconfig *ctx[] = {&boot};
    snprintf(cl.kubeconfig, sizeof(cl.kubeconfig), "%s/bootstrap.kubeconfig", corral_test_tmpdir());
    CHECK(corral_kubeconfig_write(cl.kubeconfig, ctx, 1) == 0);
    corral_pki_free_secret(token);

    struct corral_daemon agent;
    agent_up(&agent, &cl, "secure-1", "127.0.0.9", RTX, NULL);
    CHECK(node_ready(&cl, "secure-1", 15));
    /* it joined: its own credentials, private */
    char state_kc[700];
    snprintf(state_kc, sizeof(state_kc), "%s/state-secure-1-%d/kubelet.kubeconfig",
             corral_test_tmpdir(), seq);
    struct stat st;
    CHECK(stat(state_kc, &st) == 0);
    CHECK_INT_EQ(st.st_mode & 0777, 0600);
    struct corral_kubeconfig node_kc;
    CHECK(corral_kubeconfig_load(state_kc, NULL, &node_kc, NULL) == 0);
    struct corral_pki_subject subj;
    CHECK(corral_pki_cert_subject(node_kc.cert_pem, &subj) == 0);
    CHECK_STR_EQ(subj.cn, "system:node:secure-1");
    corral_pki_subject_clear(&subj);
    corral_kubeconfig_clear(&node_kc);

    create_pod(&cl, "apiVersion: v1\nkind: Pod\nmetadata: {name: secret-logs}\n"
                    "spec:\n  nodeName: secure-1\n  restartPolicy: Never\n  containers:\n"
                    "  - name: app\n    image: busybox\n    command: [echo, over tls]\n");
    json_decref(wait_pod(&cl, "secret-logs", phase_is, "Succeeded", 20));
    long code;
    char *log = pod_log(&cl, "secret-logs", "container=app", &code);
    if (code != 200)
        fprintf(stderr, "log over TLS: %ld %s\n", code, log);
    CHECK_INT_EQ(code, 200);
    CHECK_STR_EQ(log, "over tls\n");
    free(log);

    /* the node's log endpoint itself refuses a caller without the cluster's client cert */
    json_t *node = node_get(&cl, "secure-1");
    const char *pin = json_string_value(
        json_object_get(json_object_get(json_object_get(node, "metadata"), "annotations"),
                        "corral.io/kubelet-serving-ca"));
    CHECK(pin != NULL);
    json_int_t port = json_integer_value(json_object_get(
        json_object_get(json_object_get(json_object_get(node, "status"), "daemonEndpoints"),
                        "kubeletEndpoint"),
        "Port"));
    char url[128];
    snprintf(url, sizeof(url), "https://127.0.0.9:%lld", (long long)port);
    struct corral_client_config anon = {.server = url, .ca_pem = pin};
    struct corral_client *direct;
    CHECK(corral_client_new(&anon, &direct) == 0);
    struct corral_response r;
    CHECK(corral_client_request(direct, "GET", "/containerLogs/default/secret-logs/app", NULL, NULL,
                                0, &r) == 0); /* TLS verified against the pinned CA */
    CHECK_INT_EQ(r.status, 401);
    corral_response_clear(&r);
    corral_client_free(direct);
    json_decref(node);

    /* a restart uses the saved credentials; the bootstrap token is not needed again */
    CHECK_INT_EQ(corral_daemon_stop(&agent, SIGTERM), 0);
    write_file(cl.kubeconfig, "this is not a kubeconfig any more\n");
    char state[600];
    snprintf(state, sizeof(state), "%s/state-secure-1-%d", corral_test_tmpdir(), seq);
    const char *argv[] = {"kubelet",     "--apiserver", cl.api.url,  "--kubeconfig",
                          cl.kubeconfig, "--name",      "secure-1",  "--state-dir",
                          state,         "--address",   "127.0.0.9", "--port",
                          "0",           "--topology",  RTX,         NULL};
    CHECK(corral_daemon_start(&agent, argv, 30000) == 0);
    CHECK(node_ready(&cl, "secure-1", 15));
    CHECK_INT_EQ(corral_daemon_stop(&agent, SIGTERM), 0);

    /* a node certificate about to expire is renewed at start, with itself */
    char ca_path[700], key_path[700], *ca = NULL, *ca_key = NULL, *cert = NULL, *key = NULL;
    snprintf(ca_path, sizeof(ca_path), "%s/pki/ca.crt", dir);
    snprintf(key_path, sizeof(key_path), "%s/pki/ca.key", dir);
    CHECK(corral_pki_read_file(ca_path, &ca, NULL) == 0);
    CHECK(corral_pki_read_file(key_path, &ca_key, NULL) == 0);
    const char *orgs[] = {"system:nodes", NULL};
    struct corral_pki_cert_spec spec = {
        .cn = "system:node:secure-1", .orgs = orgs, .usage = CORRAL_PKI_USAGE_CLIENT, .days = 2};
    CHECK(corral_pki_issue(ca, ca_key, &spec, NULL, CORRAL_PKI_KEY_ECDSA_P256, &cert, &key) == 0);
    struct corral_kubeconfig shortlived = {.context = "n",
                                           .cluster = "c",
                                           .user = "u",
                                           .server = cl.api.url,
                                           .ca_pem = ca,
                                           .cert_pem = cert,
                                           .key_pem = key};
    const struct corral_kubeconfig *sctx[] = {&shortlived};
    CHECK(corral_kubeconfig_write(state_kc, sctx, 1) == 0);
    CHECK(corral_daemon_start(&agent, argv, 30000) == 0);
    CHECK(node_ready(&cl, "secure-1", 15));
    CHECK(corral_kubeconfig_load(state_kc, NULL, &node_kc, NULL) == 0);
    CHECK(corral_pki_cert_subject(node_kc.cert_pem, &subj) == 0);
    CHECK(subj.not_after - time(NULL) > 30 * 86400); /* a fresh one */
    CHECK_STR_EQ(subj.cn, "system:node:secure-1");
    corral_pki_subject_clear(&subj);
    corral_kubeconfig_clear(&node_kc);
    CHECK_INT_EQ(corral_daemon_stop(&agent, SIGTERM), 0);
    free(ca);
    free(cert);
    corral_pki_free_secret(ca_key);
    corral_pki_free_secret(key);
    corral_kubeconfig_clear(&kc);
    cluster_down(&cl);
}

static void on_abort(int sig)
{
    (void)sig;
    exit(134); /* runs the daemon cleanup (atexit), which abort() would skip */
}

int tests_main(int argc, char **argv);

#define main tests_main
CORRAL_TESTS(CORRAL_TEST(pod_runs_and_logs), CORRAL_TEST(restarts_and_probes),
             CORRAL_TEST(delete_within_grace), CORRAL_TEST(two_gpu_pods_get_different_gpus),
             CORRAL_TEST(api_outage_and_restart), CORRAL_TEST(several_agents_one_machine),
             CORRAL_TEST(tls_join_and_logs))
#undef main

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH-TO-CORRAL [TEST]\n", argv[0]);
        return 2;
    }
    corral_test_set_exe(argv[1]);
    signal(SIGABRT, on_abort);
    argv[1] = argv[0];
    return tests_main(argc - 1, argv + 1);
}
