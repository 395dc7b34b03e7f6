/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Failover with real parts, default settings: `corral apiserver` (controllers on, node grace
 * 10 s), `corral scheduler` and two `corral kubelet` node agents on 127.0.0.2 and 127.0.0.3
 * (simulated 4xH100 machines from the hwloc exports in the shared test data), a Deployment of
 * pods that just sleep, each needing one GPU. The agent running the pods is killed with
 * SIGKILL: the test times how long until every pod runs again on the surviving node (lease
 * lapse -> taint -> eviction after the default 20 s toleration -> ReplicaSet replacement ->
 * scheduling -> start). The target is "rescheduled within ~60 s of node loss"; stock
 * Kubernetes takes 50 s + 300 s before eviction even starts.
 */
#include "corral-config.h"
#include "client.h"
#include "daemon.h"
#include "error.h"
#include "harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define H100                                                                                       \
    CORRAL_SHARED_DIR                                                                              \
        "/hwloc-topologies/dell-xe8640_2xXeon8480_4xH100-SXM5_nvlink_cuda-nvml-opencl.xml"
#define NS "/api/v1/namespaces/default"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    CHECK(fputs(text, f) >= 0);
    CHECK(fclose(f) == 0);
}

static void agent_up(struct corral_daemon *d, const char *api, const char *kubeconfig,
                     const char *name, const char *address)
{
    char state[600];
    snprintf(state, sizeof(state), "%s/state-%s", corral_test_tmpdir(), name);
    const char *argv[] = {"kubelet",  "--apiserver", api,     "--kubeconfig",
                          kubeconfig, "--name",      name,    "--state-dir",
                          state,      "--address",   address, "--port",
                          "0",        "--topology",  H100,    "--heartbeat-interval",
                          "2s",       NULL};
    CHECK(corral_daemon_start(d, argv, 30000) == 0);
}

/* Pods of app=sleeper: how many are Running on node (all of them if node is NULL). */
static size_t running_on(struct corral_client *c, const char *node, size_t *total)
{
    json_t *l = NULL;
    CHECK(corral_client_get(c, NS "/pods?labelSelector=app%3Dsleeper", &l) == 0);
    size_t n = 0, i;
    json_t *p;
    *total = 0;
    json_array_foreach(json_object_get(l, "items"), i, p)
    {
        if (json_object_get(json_object_get(p, "metadata"), "deletionTimestamp"))
            continue;
        (*total)++;
        const char *phase =
            json_string_value(json_object_get(json_object_get(p, "status"), "phase"));
        const char *on = json_string_value(json_object_get(json_object_get(p, "spec"), "nodeName"));
        if (phase && strcmp(phase, "Running") == 0 && on && (!node || strcmp(on, node) == 0))
            n++;
    }
    json_decref(l);
    return n;
}

static void wait_running(struct corral_client *c, const char *node, size_t want, double secs)
{
    double until = now_s() + secs;
    size_t total = 0;
    while (now_s() < until) {
        if (running_on(c, node, &total) == want && total == want)
            return;
        usleep(200000);
    }
    fprintf(stderr, "timed out: %zu of %zu pods running on %s\n", running_on(c, node, &total), want,
            node ? node : "any node");
    abort();
}

/* The node the pods run on. */
static char *pods_node(struct corral_client *c)
{
    json_t *l = NULL;
    CHECK(corral_client_get(c, NS "/pods?labelSelector=app%3Dsleeper", &l) == 0);
    const char *on = json_string_value(json_object_get(
        json_object_get(json_array_get(json_object_get(l, "items"), 0), "spec"), "nodeName"));
    char *copy = on ? strdup(on) : NULL;
    json_decref(l);
    return copy;
}

static void test_node_death_reschedules(void)
{
    char data[600], kubeconfig[600], listen[64];
    snprintf(data, sizeof(data), "%s/api", corral_test_tmpdir());
    snprintf(kubeconfig, sizeof(kubeconfig), "%s/kubeconfig.yaml", corral_test_tmpdir());
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", corral_test_free_port());
    struct corral_daemon api, sched, a, b;
    const char *api_argv[] = {"apiserver", "--listen",        listen, "--data-dir",
                              data,        "--insecure-http", NULL};
    CHECK(corral_daemon_start(&api, api_argv, 20000) == 0);
    char text[1024];
    snprintf(text, sizeof(text),
             "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: '%s'}\n"
             "users:\n- name: u\n  user: {}\ncontexts:\n- name: x\n  context: {cluster: c, "
             "user: u}\ncurrent-context: x\n",
             api.url);
    write_file(kubeconfig, text);
    const char *sched_argv[] = {"scheduler", "--kubeconfig", kubeconfig, "--retry-seconds", "2",
                                NULL};
    CHECK(corral_daemon_start(&sched, sched_argv, 20000) == 0);
    agent_up(&a, api.url, kubeconfig, "gpu-a", "127.0.0.2");
    agent_up(&b, api.url, kubeconfig, "gpu-b", "127.0.0.3");

    struct corral_client_config cfg = {.server = api.url};
    struct corral_client *c;
    CHECK(corral_client_new(&cfg, &c) == 0);
    /* 3 pods of 1 GPU each, kept together on one node by pod affinity-free means: the first
       node gets them all because a pod needs 1 of its 4 GPUs and the scheduler packs */
    json_t *dep =
        json_pack("{s:s, s:s, s:{s:s}, s:{s:i, s:{s:{s:s}}, s:{s:{s:{s:s}}, s:{s:i, s:[{s:s, s:s, "
                  "s:[s, s, s], s:{s:{s:s}}}]}}}}",
                  "apiVersion", "apps/v1", "kind", "Deployment", "metadata", "name", "sleeper",
                  "spec", "replicas", 3, "selector", "matchLabels", "app", "sleeper", "template",
                  "metadata", "labels", "app", "sleeper", "spec", "terminationGracePeriodSeconds",
                  1, "containers", "name", "main", "image", "busybox", "command", "sh", "-c",
                  "sleep 3600", "resources", "limits", "nvidia.com/gpu", "1");
    CHECK(corral_client_create(c, "/apis/apps/v1/namespaces/default/deployments", dep, NULL) == 0);
    json_decref(dep);
    wait_running(c, NULL, 3, 60);
    char *victim = pods_node(c);
    CHECK(victim != NULL);
    size_t total;
    if (running_on(c, victim, &total) != 3) {
        fprintf(stderr, "the scheduler spread the pods; killing %s anyway\n", victim);
    }
    const char *survivor = strcmp(victim, "gpu-a") == 0 ? "gpu-b" : "gpu-a";
    struct corral_daemon *dead = strcmp(victim, "gpu-a") == 0 ? &a : &b;

    double t0 = now_s();
    corral_daemon_stop(dead, SIGKILL);
    wait_running(c, survivor, 3, 120);
    double took = now_s() - t0;
    fprintf(stderr, "node %s killed: all 3 pods running on %s %.1f s later\n", victim, survivor,
            took);
    printf("node_death_to_pods_running_elsewhere=%.1f s\n", took);
    fflush(stdout);
    CHECK(took < 60);
    free(victim);
    corral_client_free(c);
    corral_daemon_stop(strcmp(survivor, "gpu-a") == 0 ? &a : &b, SIGTERM);
    corral_daemon_stop(&sched, SIGTERM);
    CHECK_INT_EQ(corral_daemon_stop(&api, SIGTERM), 0);
}

static void on_abort(int sig)
{
    (void)sig;
    signal(SIGABRT, SIG_DFL);
    exit(134); /* runs the daemon helper's clean-up */
}

int main(int argc, char **argv)
{
    if (argc > 1)
        corral_test_set_exe(argv[1]);
    corral_test_tmpdir();
    signal(SIGABRT, on_abort);
    fprintf(stderr, "-- node_death_reschedules\n");
    test_node_death_reschedules();
    fprintf(stderr, "ok node_death_reschedules\n");
    return 0;
}
