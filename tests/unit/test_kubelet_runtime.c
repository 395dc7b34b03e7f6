/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pod runtime with real processes and no API server: command/env/logs, restartPolicy and
 * back-off, init containers, probes (exec, httpGet, tcpSocket), graceful termination and
 * preStop, GPU visibility from bindings, missing ConfigMaps, activeDeadlineSeconds, start
 * errors, cgroups. Probe periods are whole seconds (as in Kubernetes), so a few tests take a
 * few seconds; nothing asserts on timing beyond "within the grace period".
 */
#include "cgroup.h"
#include "corral-config.h"
#include "harness.h"
#include "logs.h"
#include "meta.h"
#include "runtime.h"
#include "topology.h"
#include "yamljson.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TOPO(file) CORRAL_SHARED_DIR "/hwloc-topologies/" file
#define H200 TOPO("lenovo-sd665n-v3_2xEPYC9555_4xH200_nvlink_cuda-nvml-opencl.xml")
#define NO_GPUS TOPO("AMD-negative_hpe-ex255a_4xMI300A-APU_rsmi.xml")

/* ---- harness ------------------------------------------------------------------------------- */

struct env {
    char *dir;
    struct corral_topology *topo;
    struct corral_cgroups cg;
    struct corral_runtime *rt;
    pthread_mutex_t m;
    pthread_cond_t cv;
    json_t *status;  /* uid -> latest status */
    json_t *history; /* uid -> [every status reported] */
    json_t *stopped; /* uid -> true */
    json_t *events;  /* [{"uid", "type", "reason", "message", "fieldPath"}] */
};

static void on_status(void *ctx, const char *ns, const char *name, const char *uid,
                      const json_t *status)
{
    struct env *e = ctx;
    (void)ns;
    (void)name;
    pthread_mutex_lock(&e->m);
    json_object_set_new(e->status, uid, json_deep_copy(status));
    json_t *h = json_object_get(e->history, uid);
    if (!h)
        json_object_set_new(e->history, uid, h = json_array());
    json_array_append_new(h, json_deep_copy(status));
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->m);
}

static void on_event(void *ctx, const char *ns, const char *name, const char *uid,
                     const json_t *event)
{
    struct env *e = ctx;
    (void)ns;
    (void)name;
    pthread_mutex_lock(&e->m);
    json_t *copy = json_deep_copy(event);
    json_object_set_new(copy, "uid", json_string(uid));
    json_array_append_new(e->events, copy);
    pthread_mutex_unlock(&e->m);
}

/* Whether an event with this reason (and a message containing text) was recorded for uid. */
static bool has_event(struct env *e, const char *uid, const char *reason, const char *text)
{
    bool found = false;
    pthread_mutex_lock(&e->m);
    size_t i;
    json_t *ev;
    json_array_foreach(e->events, i, ev)
    {
        const char *m = json_string_value(json_object_get(ev, "message"));
        found |= strcmp(json_string_value(json_object_get(ev, "uid")), uid) == 0 &&
                 strcmp(json_string_value(json_object_get(ev, "reason")), reason) == 0 &&
                 (!text || (m && strstr(m, text)));
    }
    pthread_mutex_unlock(&e->m);
    return found;
}

static void on_stopped(void *ctx, const char *ns, const char *name, const char *uid)
{
    struct env *e = ctx;
    (void)ns;
    (void)name;
    pthread_mutex_lock(&e->m);
    json_object_set_new(e->stopped, uid, json_true());
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->m);
}

static int env_max_pods; /* 0: not checked */

static void env_up(struct env *e, const char *topo_file)
{
    memset(e, 0, sizeof(*e));
    e->dir = strdup("/tmp/corral-krt-XXXXXX");
    CHECK(mkdtemp(e->dir) != NULL);
    CHECK(chmod(e->dir, 0711) == 0); /* as the agent makes its state directory */
    char err[512];
    CHECK_INT_EQ(corral_topology_load(topo_file, &e->topo, err, sizeof(err)), 0);
    char node[64];
    snprintf(node, sizeof(node), "rt-%d", (int)getpid());
    corral_cgroup_init(&e->cg, node);
    pthread_mutex_init(&e->m, NULL);
    pthread_cond_init(&e->cv, NULL);
    e->status = json_object();
    e->history = json_object();
    e->stopped = json_object();
    e->events = json_array();
    struct corral_runtime_config cfg = {
        .node_name = node,
        .state_dir = e->dir,
        .host_ip = "127.0.0.1",
        .topo = e->topo,
        .cgroups = &e->cg,
        .backoff_initial_ms = 300,
        .backoff_max_ms = 1200,
        .log_max_bytes = 1 << 20,
        .log_max_files = 2,
        .node_cpu_milli = 4000,
        .node_memory_bytes = 1LL << 32,
        .max_pods = env_max_pods,
        .on_status = on_status,
        .on_stopped = on_stopped,
        .on_event = on_event,
        .ctx = e,
    };
    CHECK_INT_EQ(corral_runtime_new(&cfg, &e->rt), 0);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void env_down(struct env *e)
{
    corral_runtime_free(e->rt, 1);
    corral_topology_free(e->topo);
    json_decref(e->status);
    json_decref(e->history);
    json_decref(e->stopped);
    json_decref(e->events);
    pthread_mutex_destroy(&e->m);
    pthread_cond_destroy(&e->cv);
    if (e->cg.root[0])
        rmdir(e->cg.root);
    nftw(e->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(e->dir);
}

static json_t *yaml(const char *text)
{
    json_t *docs = NULL;
    struct corral_parse_error pe;
    int rc = corral_yaml_load(text, strlen(text), &docs, &pe);
    if (rc != 0)
        fprintf(stderr, "yaml %d:%d %s\n", pe.line, pe.column, pe.message);
    CHECK_INT_EQ(rc, 0);
    json_t *doc = json_incref(json_array_get(docs, 0));
    json_decref(docs);
    return doc;
}

/* A pod named NAME with uid NAME-uid; body is the YAML of its spec (indented by 2). */
static json_t *mkpod(const char *name, const char *annotations, const char *spec)
{
    char text[8192];
    snprintf(text, sizeof(text),
             "apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  namespace: default\n"
             "  uid: %s-uid\n  annotations: {%s}\nspec:\n%s",
             name, name, annotations ? annotations : "", spec);
    return yaml(text);
}

static const char *uid_of(const json_t *pod)
{
    return json_string_value(json_object_get(json_object_get(pod, "metadata"), "uid"));
}

typedef bool (*pred_fn)(const json_t *status, const void *arg);

/* Waits until pred holds for pod uid's status; returns a copy (caller decrefs). */
static json_t *wait_for(struct env *e, const char *uid, pred_fn pred, const void *arg,
                        int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&e->m);
    json_t *st;
    while (!((st = json_object_get(e->status, uid)) && pred(st, arg))) {
        if (pthread_cond_timedwait(&e->cv, &e->m, &until) == ETIMEDOUT) {
            char *text = st ? json_dumps(st, JSON_INDENT(1)) : NULL;
            fprintf(stderr, "timed out waiting on %s; last status: %s\n", uid,
                    text ? text : "(none)");
            free(text);
            pthread_mutex_unlock(&e->m);
            CHECK(!"condition not reached in time");
        }
    }
    json_t *copy = json_deep_copy(st);
    pthread_mutex_unlock(&e->m);
    return copy;
}

static bool phase_is(const json_t *st, const void *arg)
{
    const char *p = json_string_value(json_object_get(st, "phase"));
    return p && strcmp(p, arg) == 0;
}

static json_t *ctr_status(const json_t *st, const char *name)
{
    static const char *const lists[] = {"containerStatuses", "initContainerStatuses"};
    for (int l = 0; l < 2; l++) {
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(st, lists[l]), i, c)
        {
            if (strcmp(json_string_value(json_object_get(c, "name")), name) == 0)
                return c;
        }
    }
    return NULL;
}

static int64_t restarts(const json_t *st, const char *name)
{
    return json_integer_value(json_object_get(ctr_status(st, name), "restartCount"));
}

static bool app_restarted_twice(const json_t *st, const void *arg)
{
    (void)arg;
    return restarts(st, "app") >= 2;
}

static bool ready_is(const json_t *st, const void *arg)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(st, "conditions"), i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "type")), "Ready") == 0)
            return strcmp(json_string_value(json_object_get(c, "status")), arg) == 0;
    }
    return false;
}

static bool running(const json_t *st, const void *arg)
{
    json_t *c = ctr_status(st, arg ? arg : "app");
    return c && json_object_get(json_object_get(c, "state"), "running") != NULL;
}

static bool waiting_reason(const json_t *st, const void *arg)
{
    json_t *c = ctr_status(st, "app");
    const char *r = json_string_value(
        json_object_get(json_object_get(json_object_get(c, "state"), "waiting"), "reason"));
    return r && strcmp(r, arg) == 0;
}

static const char *state_field(const json_t *st, const char *ctr, const char *state,
                               const char *field)
{
    return json_string_value(json_object_get(
        json_object_get(json_object_get(ctr_status(st, ctr), "state"), state), field));
}

static int64_t exit_code(const json_t *st, const char *ctr)
{
    return json_integer_value(json_object_get(
        json_object_get(json_object_get(ctr_status(st, ctr), "state"), "terminated"), "exitCode"));
}

static int collect(void *ctx, const char *data, size_t len)
{
    char *buf = ctx;
    size_t have = strlen(buf);
    if (have + len >= 8192)
        len = 8191 - have;
    memcpy(buf + have, data, len);
    buf[have + len] = '\0';
    return 0;
}

/* The log of container ctr of pod name (current run, or previous). Static buffer. */
static const char *pod_log(struct env *e, const char *name, const char *ctr, bool previous)
{
    static char buf[8192];
    struct corral_log_target t;
    char err[256];
    buf[0] = '\0';
    int rc = corral_runtime_log_target(e->rt, "default", name, ctr, previous, &t, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "log target: %s\n", err);
    CHECK_INT_EQ(rc, 0);
    struct corral_log_query q = {.tail_lines = -1, .limit_bytes = -1};
    CHECK(corral_log_read(t.path, t.max_files, &q, collect, buf, NULL) >= 0);
    return buf;
}

static bool was_stopped(struct env *e, const char *uid, int timeout_ms)
{
    for (int i = 0; i < timeout_ms / 10; i++) {
        pthread_mutex_lock(&e->m);
        bool s = json_object_get(e->stopped, uid) != NULL;
        pthread_mutex_unlock(&e->m);
        if (s)
            return true;
        usleep(10000);
    }
    return false;
}

/* ---- tests: running ------------------------------------------------------------------------- */

static void test_command_env_and_logs(void)
{
    struct env e;
    env_up(&e, NO_GPUS);
    json_t *pod = mkpod("hello", NULL,
                        "  restartPolicy: Never\n"
                        "  containers:\n"
                        "  - name: app\n"
                        "    image: busybox\n"
                        "    command: [sh, -c]\n"
                        "    args: ['echo \"hello $WHO from $(POD_NAME)\"; pwd; echo oops >&2']\n"
                        "    workingDir: /tmp\n"
                        "    env:\n"
                        "    - name: WHO\n"
                        "      valueFrom: {configMapKeyRef: {name: greet, key: who}}\n"
                        "    - name: POD_NAME\n"
                        "      valueFrom: {fieldRef: {fieldPath: metadata.name}}\n");
    json_t *sources =
        json_loads("{\"configmaps\":{\"greet\":{\"data\":{\"who\":\"world\"}}}}", 0, NULL);
    CHECK_INT_EQ(corral_runtime_sync_pod(e.rt, pod, sources), 0);
    json_t *st = wait_for(&e, uid_of(pod), phase_is, "Succeeded", 10000);
    CHECK_INT_EQ(exit_code(st, "app"), 0);
    CHECK_STR_EQ(state_field(st, "app", "terminated", "reason"), "Completed");
    CHECK_INT_EQ(restarts(st, "app"), 0);
    CHECK(ready_is(st, "False"));
    CHECK_STR_EQ(json_string_value(json_object_get(st, "podIP")), "127.0.0.1");
    CHECK_STR_EQ(json_string_value(json_object_get(st, "qosClass")), "BestEffort");
    CHECK(json_string_value(json_object_get(st, "startTime")) != NULL);
    CHECK_STR_EQ(pod_log(&e, "hello", "app", false), "hello world from hello\n/tmp\noops\n");
    CHECK(has_event(&e, uid_of(pod), "Started", "Started container app"));
    json_t *last_cond = json_array_get(json_object_get(st, "conditions"), 4);
    CHECK_STR_EQ(json_string_value(json_object_get(last_cond, "type")), "PodScheduled");
    CHECK_STR_EQ(json_string_value(json_object_get(last_cond, "status")), "True");
    CHECK_STR_EQ(pod_log(&e, "hello", NULL, false), "hello world from hello\n/tmp\noops\n");
    json_decref(st);
    json_decref(sources);
    json_decref(pod);
    env_down(&e);
}

static void test_restart_policies(void)
{
    struct env e;
    env_up(&e, NO_GPUS);
    /* Never: the exit code is final */
    json_t *never = mkpod("never", NULL,
                          "  restartPolicy: Never\n"
                          "  containers:\n"
                          "  - {name: app, command: [sh, -c, 'exit 3']}\n");
    /* OnFailure: fails twice (counting in its working directory), then succeeds */
    json_t *onfail = mkpod("onfail", NULL,
                           "  restartPolicy: OnFailure\n"
                           "  containers:\n"
                           "  - name: app\n"
                           "    command: [sh, -c, 'n=$(cat n 2>/dev/null || echo 0); n=$((n+1));"
                           " echo $n > n; echo run $n; [ $n -ge 3 ]']\n");
    /* Always: even success is restarted */
    json_t *always = mkpod("always", NULL,
                           "  containers:\n"
                           "  - {name: app, command: [sh, -c, 'echo once']}\n");
    CHECK_INT_EQ(corral_runtime_sync_pod(e.rt, never, NULL), 0);
    CHECK_INT_EQ(corral_runtime_sync_pod(e.rt, onfail, NULL), 0);
    CHECK_INT_EQ(corral_runtime_sync_pod(e.rt, always, NULL), 0);

    json_t *st = wait_for(&e, uid_of(never), phase_is, "Failed", 10000);
    CHECK_INT_EQ(exit_code(st, "app"), 3);
    CHECK_STR_EQ(state_field(st, "app", "terminated", "reason"), "Error");
    CHECK_INT_EQ(restarts(st, "app"), 0);
    json_decref(st);

    st = wait_for(&e, uid_of(onfail), phase_is, "Succeeded", 15000);
    CHECK_INT_EQ(restarts(st, "app"), 2);
    CHECK_INT_EQ(exit_code(st, "app"), 0);
    json_t *last =
        json_object_get(json_object_get(ctr_status(st, "app"), "lastState"), "terminated");
    CHECK_INT_EQ(json_integer_value(json_object_get(last, "exitCode")), 1);
    CHECK_STR_EQ(pod_log(&e, "onfail", "app", false), "run 3\n");
    CHECK_STR_EQ(pod_log(&e, "onfail", "app", true), "run 2\n");
    json_decref(st);
    /* the second restart waited out a back-off, visible as CrashLoopBackOff */
    bool backoff_seen = false;
    pthread_mutex_lock(&e.m);
    size_t i;
    json_t *h;
    json_array_foreach(json_object_get(e.history, uid_of(onfail)), i, h)
    {
        backoff_seen |= waiting_reason(h, "CrashLoopBackOff");
        CHECK(strcmp(json_string_value(json_object_get(h, "phase")), "Failed") != 0);
    }
    pthread_mutex_unlock(&e.m);
    CHECK(backoff_seen);
    CHECK(has_event(&e, uid_of(onfail), "BackOff", "Back-off restarting failed container app"));

    st = wait_for(&e, uid_of(always), app_restarted_twice, NULL, 15000);
    CHECK(phase_is(st, "Running"));
    json_decref(st);
    json_decref(never);
    json_decref(onfail);
    json_decref(always);
    env_down(&e);
}

static void test_init_containers(void)
{
    struct env e;
    env_up(&e, NO_GPUS);
    json_t *ok = mkpod("init-ok", NULL,
                       "  restartPolicy: Never\n"
                       "  initContainers:\n"
                       "  - {name: first, command: [sh, -c, 'echo one > marker']}\n"
                       "  - {name: second, command: [sh, -c, 'echo two >> marker']}\n"
                       "  containers:\n"
                       "  - {name: app, command: [cat, marker]}\n");
    json_t *bad = mkpod("init-bad", NULL,
                        "  restartPolicy: Never\n"
                        "  initContainers:\n"
                        "  - {name: first, command: [sh, -c, 'exit 2']}\n"
                        "  containers:\n"
                        "  - {name: app, command: ['true']}\n");
    CHECK_INT_EQ(corral_runtime_sync_pod(e.rt, ok, NULL), 0);
    CHECK_INT_EQ(corral_runtime_sync_pod(e.rt, bad, NULL), 0);
    json_t *st = wait_for(&e, uid_of(ok), phase_is, "Succeeded", 10000);
    CHECK_STR_EQ(pod_log(&e, "init-ok", "app", false), "one\ntwo\n");
    CHECK_STR_EQ(state_field(st, "first", "terminated", "reason"), "Completed");
    CHECK_STR_EQ(state_field(st, "second", "terminated", "reason"), "Completed");
    CHECK_INT_EQ(json_array_size(json_object_get(st, "initContainerStatuses")), 2);
    json_decref(st);
    st = wait_for(&e, uid_of(bad), phase_is, "Failed", 10000);
    CHECK_INT_EQ(exit_code(st, "first"), 2);
    CHECK_STR_EQ(state_field(st, "app", "waiting", "reason"), "PodInitializing");
    json_decref(st);
    json_decref(ok);
    json_decref(bad);
    env_down(&e);
}

/* ---- tests: probes -------------------------------------------------------------------------- */

struct http_server {
    int fd, port;
    atomic_int status; /* what to answer */
    atomic_bool stop;
    pthread_t thread;
};

static void *serve(void *arg)
{
    struct http_server *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {s->fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        char buf[1024];
        ssize_t n = recv(c, buf, sizeof(buf), 0);
        if (n > 0) {
            char reply[128];
            int len = snprintf(reply, sizeof(reply),
                               "HTTP/1.1 %d X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                               atomic_load(&s->status));
            CHECK(send(c, reply, (size_t)len, MSG_NOSIGNAL) == len);
        }
        close(c);
    }
    return NULL;
}

static void server_up(struct http_server *s, int status)
{
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK(bind(s->fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    CHECK(listen(s->fd, 16) == 0);
    socklen_t len = sizeof(a);
    CHECK(getsockname(s->fd, (struct sockaddr *)&a, &len) == 0);
    s->port = ntohs(a.sin_port);
    atomic_store(&s->status, status);
    atomic_store(&s->stop, false);
    CHECK(pthread_create(&s->thread, NULL, serve, s) == 0);
}

static void server_down(struct http_server *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    close(s->fd);
}

static void test_readiness_http_and_tcp(void)
{
    struct env e;
    env_up(&e, NO_GPUS);
    struct http_server srv;
    server_up(&srv, 503);
    char spec[1024];
    snprintf(spec, sizeof(spec),
             "  containers:\n"
             "  - name: app\n"
             "    command: [sleep, '60']\n"
             "    ports: [{name: web, containerPort: %d}]\n"
             "    readinessProbe:\n"
             "      httpGet: {path: /ready, port: web, httpHeaders: [{name: X-A, value: b}]}\n"
             "      periodSeconds: 1\n"
             "      failureThreshold: 1\n"
             "  - name: side\n"
             "    command: [sleep, '60']\n"
             "    readinessProbe:\n"
             "      tcpSocket: {port: %d}\n"
             "      periodSeconds: 1\n",
             srv.port, srv.port);
    json_t *pod = mkpod("ready", NULL, spec);
    CHECK_INT_EQ(corral_runtime_sync_pod(e.rt, pod, NULL), 0);
    json_t *st = wait_for(&e, uid_of(pod), running, "app", 5000);
    json_decref(st);
    usleep(1500000);
    st = wait_for(&e, uid_of(pod), ready_is, "False", 1000);
    CHECK(json_is_false(json_object_get(ctr_status(st, "app"), "ready")));
    json_decref(st);
    atomic_store(&srv.status, 200);
    st = wait_for(&e, uid_of(pod), ready_is, "True", 5000);
    CHECK(json_is_true(json_object_get(ctr_status(st, "side"), "ready")));
    CHECK(phase_is(st, "Running"));
    json_decref(st);
    atomic_store(&srv.status, 500);
    st = wait_for(&e, uid_of(pod), ready_is, "False", 5000);
    CHECK_INT_EQ(restarts(st, "app"), 0); /* readiness never restarts */
    json_decref(st);
    server_down(&srv);
    json_decref(pod);
    env_down(&e);
}

static bool app_restarted(const json_t *st, const void *arg)
{
    (void)arg;
    return restarts(st, "app") >= 1 && running(st, "app");
}

static void test_liveness_and_startup(void)
{
    struct env e;
    env_up(&e, NO_GPUS);
    json_t *live = mkpod("live", NULL,
                         "  terminationGracePeriodSeconds: 2\n"
                         "  containers:\n"
                         "  - name: app\n"
                         "    command: [sh, -c, 'touch alive; sleep 1; rm alive; exec sleep 60']\n"
                         "    livenessProbe:\n"
                         "      exec: {command: [test, -f, alive]}\n"
                         "      periodSeconds: 1\n"
                         "      failureThreshold: 1\n");
    json_t *startup = mkpod("startup", NULL,
                            "  containers:\n"
                            "  - name: app\n"
                            "    command: [sleep, '60']\n"
                            "    startupProbe:\n"
                            "      exec: {command: ['false']}\n"
                            "      periodSeconds: 1\n"
                            "      failureThreshold: 2\n"
                            "    livenessProbe:\n"
                            "      exec: {command: ['false']}\n"
                            "      initialDelaySeconds: 100\n");
    CHECK_INT_EQ(corral_runtime_sync_pod(e.rt, live, NULL), 0);
    CHECK_INT_EQ(corral_runtime_sync_pod(e.rt, startup, NULL), 0);
    json_t *st = wait_for(&e, uid_of(live), app_restarted, NULL, 15000);
    json_t *last =
        json_object_get(json_object_get(ctr_status(st, "app"), "lastState"), "terminated");
    CHECK_INT_EQ(json_integer_value(json_object_get(last, "exitCode")), 143); /* SIGTERM */
    CHECK_INT_EQ(json_integer_value(json_object_get(last, "signal")), 15);
    CHECK_STR_CONTAINS(json_string_value(json_object_get(last, "message")),
                       "Liveness probe failed: command exited with code 1");
    CHECK(has_event(&e, uid_of(live), "Unhealthy", "Liveness probe failed"));
    CHECK(has_event(&e, uid_of(live), "Killing", "failed liveness probe, will be restarted"));
    json_decref(st);
    st = wait_for(&e, uid_of(startup), app_restarted, NULL, 15000);
    last = json_object_get(json_object_get(ctr_status(st, "app"), "lastState"), "terminated");
    CHECK_STR_CONTAINS(json_string_value(json_object_get(last, "message")), "Startup probe failed");
    CHECK(json_is_false(json_object_get(ctr_status(st, "app"), "started")));
    json_decref(st);
    json_decref(live);
    json_decref(startup);
    env_down(&e);
}

/* ---- tests: stopping ------------------------------------------------------------------------- */

static void test_graceful_termination(void)
{
    struct env e;
    env_up(&e, NO_GPUS);
    json_t *polite = mkpod("polite", NULL,
                           "  terminationGracePeriodSeconds: 20\n"
                           "  containers:\n"
                           "  - name: app\n"
                           "    command: [sh, -c, 'trap \"echo bye; exit 0\" TERM; echo up;"
                           " while true; do sleep 0.1; done']\n"
                           "    lifecycle:\n"
                           "      preStop:\n"
                           "        exec: {command: [sh, -c, 'echo prestop > prestop.txt']}\n");
    json_t *stubborn = mkpod("stubborn", NULL,
                             "  terminationGracePeriodSeconds: 1\n"
                             "  containers:\n"
                             "  - name: app\n"
                             "    command: [sh, -c, 'trap \"\" TERM; echo up;"
                             " while true; do sleep 0.1; done']\n");
    CHECK_INT_EQ(corral_runtime_sync_pod(e.rt, polite, NULL), 0);
    CHECK_INT_EQ(corral_runtime_sync_pod(e.rt, stubborn, NULL), 0);
    json_decref(wait_for(&e, uid_of(polite), running, NULL, 5000));
    json_decref(wait_for(&e, uid_of(stubborn), running, NULL, 5000));
    usleep(200000); /* let the shells install their traps */

    uint64_t t0 = corral_now_ns();
    CHECK_INT_EQ(corral_runtime_stop_pod(e.rt, uid_of(polite), -1), 0);
    CHECK(was_stopped(&e, uid_of(polite), 20000));
    double polite_s = (double)(corral_now_ns() - t0) / 1e9;
    json_t *st = wait_for(&e, uid_of(polite), phase_is, "Succeeded", 1000);
    CHECK_INT_EQ(exit_code(st, "app"), 0);
    CHECK(polite_s < 20); /* within its grace period */
    /* SIGTERM goes to the whole process group: the shell's sleep gets it too */
    const char *log = pod_log(&e, "polite", "app", false);
    CHECK(strncmp(log, "up\n", 3) == 0);
    CHECK(strlen(log) >= 4 && strcmp(log + strlen(log) - 4, "bye\n") == 0);
    char path[1200];
    snprintf(path, sizeof(path), "%s/pods/default_polite_polite-uid/work/prestop.txt", e.dir);
    CHECK(access(path, F_OK) == 0); /* preStop ran */
    json_decref(st);

    t0 = corral_now_ns();
    CHECK_INT_EQ(corral_runtime_stop_pod(e.rt, uid_of(stubborn), -1), 0);
    CHECK(was_stopped(&e, uid_of(stubborn), 10000));
    double stubborn_s = (double)(corral_now_ns() - t0) / 1e9;
    st = wait_for(&e, uid_of(stubborn), phase_is, "Failed", 1000);
    CHECK_INT_EQ(exit_code(st, "app"), 137); /* SIGKILL at the end of the grace period */
    CHECK(stubborn_s >= 0.9);
    fprintf(stderr, "stop: polite %.2fs, stubborn %.2fs (grace 1s)\n", polite_s, stubborn_s);
    json_decref(st);

    CHECK_INT_EQ(corral_runtime_remove_pod(e.rt, uid_of(polite)), 0);
    snprintf(path, sizeof(path), "%s/pods/default_polite_polite-uid", e.dir);
    CHECK(access(path, F_OK) < 0);
    CHECK(corral_runtime_status(e.rt, uid_of(polite)) == NULL);
    CHECK_INT_EQ(corral_runtime_remove_pod(e.rt, uid_of(polite)), -ENOENT);
    CHECK_INT_EQ(corral_runtime_process_count(e.rt), 0);
    json_decref(polite);
    json_decref(stubborn);
    env_down(&e);
}

static void test_deletion_through_sync(void)
{
    struct env e;
    env_up(&e, NO_GPUS);
    json_t *pod = mkpod("deleted", NULL,
                        "  containers:\n"
                        "  - {name: app, command: [sleep, '60']}\n");
    CHECK_INT_EQ(corral_runtime_sync_pod(e.rt, pod, NULL), 0);
    json_decref(wait_for(&e, uid_of(pod), running, NULL, 5000));
    json_t *md = json_object_get(pod, "metadata");
    json_object_set_new(md, "deletionTimestamp", json_string("2026-01-01T00:00:00Z"));
    json_object_set_new(md, "deletionGracePeriodSeconds", json_integer(5));
    CHECK_INT_EQ(corral_runtime_sync_pod(e.rt, pod, NULL), 0);
    CHECK(was_stopped(&e, uid_of(pod), 6000));
    json_t *st = wait_for(&e, uid_of(pod), phase_is, "Failed", 1000);
    CHECK_INT_EQ(exit_code(st, "app"), 143); /* sleep dies of SIGTERM */
    json_decref(st);
    json_decref(pod);
    env_down(&e);
}

/* ---- tests: GPUs ---------------------------------------------------------------------------- */

static const char gpu_spec[] = "  restartPolicy: Never\n"
                               "  containers:\n"
                               "  - name: app\n"
                               "    command: [sh, -c, 'echo \"$CUDA_VISIBLE_DEVICES|"
                               "$NVIDIA_VISIBLE_DEVICES\"']\n"
                               "    resources: {limits: {nvidia.com/gpu: 1}}\n";

static void test_gpu_visibility(void)
{
    struct env e;
    env_up(&e, H200);
    json_t *a = mkpod("gpu-a", NULL, gpu_spec);
    json_t *b = mkpod("gpu-b", "corral.io/assigned-gpus: '3'", gpu_spec);
    json_t *none = mkpod("gpu-none", NULL,
                         "  restartPolicy: Never\n"
                         "  containers:\n"
                         "  - name: app\n"
                         "    command: [sh, -c, 'echo \"[$CUDA_VISIBLE_DEVICES]"
                         "$NVIDIA_VISIBLE_DEVICES\"']\n");
    json_t *clash =
        mkpod("gpu-clash", "corral.io/assigned-gpu-uuids: GPU-81addb77-2337-6f9f-b0dd-696aa82969d1",
              "  containers:\n"
              "  - name: app\n"
              "    command: [sleep, '60']\n"
              "    resources: {limits: {nvidia.com/gpu: 1}}\n");
    /* b holds GPU 3 while it runs: hold it with a sleeping twin first */
    json_t *holder = mkpod("gpu-holder", "corral.io/assigned-gpus: '3'",
                           "  containers:\n"
                           "  - name: app\n"
                           "    command: [sleep, '60']\n"
                           "    resources: {limits: {nvidia.com/gpu: 1}}\n");
    CHECK_INT_EQ(corral_runtime_sync_pod(e.rt, a, NULL), 0);
    json_t *st = wait_for(&e, uid_of(a), phase_is, "Succeeded", 10000);
    json_decref(st);
    CHECK_STR_EQ(pod_log(&e, "gpu-a", "app", false), "GPU-46f77619-68bf-8f9d-7cfb-61fa9c4ca692|"
                                                     "GPU-46f77619-68bf-8f9d-7cfb-61fa9c4ca692\n");
    CHECK_INT_EQ(corral_runtime_sync_pod(e.rt, b, NULL), 0);
    json_decref(wait_for(&e, uid_of(b), phase_is, "Succeeded", 10000));
    CHECK_STR_EQ(pod_log(&e, "gpu-b", "app", false), "GPU-81addb77-2337-6f9f-b0dd-696aa82969d1|"
                                                     "GPU-81addb77-2337-6f9f-b0dd-696aa82969d1\n");
    CHECK_INT_EQ(corral_runtime_sync_pod(e.rt, none, NULL), 0);
    json_decref(wait_for(&e, uid_of(none), phase_is, "Succeeded", 10000));
    CHECK_STR_EQ(pod_log(&e, "gpu-none", "app", false), "[]void\n");
    CHECK_INT_EQ(corral_runtime_sync_pod(e.rt, holder, NULL), 0);
    json_decref(wait_for(&e, uid_of(holder), running, NULL, 5000));
    CHECK_INT_EQ(corral_runtime_sync_pod(e.rt, clash, NULL), 0);
    st = wait_for(&e, uid_of(clash), phase_is, "Failed", 5000);
    CHECK_STR_EQ(json_string_value(json_object_get(st, "reason")), "UnexpectedAdmissionError");
    CHECK_STR_CONTAINS(json_string_value(json_object_get(st, "message")),
                       "GPU 3 is already held by pod gpu-holder-uid");
    json_decref(st);
    json_t *all[] = {a, b, none, clash, holder};
    for (size_t i = 0; i < 5; i++)
        json_decref(all[i]);
    env_down(&e);
}

static void test_two_pods_get_different_gpus(void)
{
    struct env e;
    env_up(&e, TOPO("dell-xe8640_2xXeon8480_4xH100-SXM5_nvlink_cuda-nvml-opencl.xml"));
    static const char spec[] = "  containers:\n"
                               "  - name: app\n"
                               "    command: [sh, -c, 'echo $CUDA_VISIBLE_DEVICES; sleep 60']\n"
                               "    resources: {limits: {nvidia.com/gpu: 1}}\n";
    json_t *p1 = mkpod("one", NULL, spec), *p2 = mkpod("two", NULL, spec);
    CHECK_INT_EQ(corral_runtime_sync_pod(e.rt, p1, NULL), 0);
    CHECK_INT_EQ(corral_runtime_sync_pod(e.rt, p2, NULL), 0);
    json_decref(wait_for(&e, uid_of(p1), running, NULL, 5000));
    json_decref(wait_for(&e, uid_of(p2), running, NULL, 5000));
    usleep(200000);
    char one[64], two[64];
    snprintf(one, sizeof(one), "%s", pod_log(&e, "one", "app", false));
    snprintf(two, sizeof(two), "%s", pod_log(&e, "two", "app", false));
    CHECK(one[0] >= '0' && one[0] <= '3' && one[1] == '\n'); /* indices: the export has no UUIDs */
    CHECK(two[0] >= '0' && two[0] <= '3' && two[1] == '\n');
    CHECK(one[0] != two[0]);
    json_decref(p1);
    json_decref(p2);
    env_down(&e);
}

/* ---- tests: failures ------------------------------------------------------------------------ */

static void test_config_errors_and_deadlines(void)
{
    struct env e;
    env_up(&e, NO_GPUS);
    json_t *cfg = mkpod("needs-cfg", NULL,
                        "  restartPolicy: Never\n"
                        "  containers:\n"
                        "  - name: app\n"
                        "    command: [sh, -c, 'echo $MODE']\n"
                        "    envFrom: [{configMapRef: {name: settings}}]\n");
    json_t *nobin = mkpod("nobin", NULL,
                          "  restartPolicy: Never\n"
                          "  containers:\n"
                          "  - {name: app, command: [no-such-binary-anywhere]}\n");
    json_t *deadline = mkpod("deadline", NULL,
                             "  activeDeadlineSeconds: 1\n"
                             "  containers:\n"
                             "  - {name: app, command: [sleep, '60']}\n");
    json_t *volumes = mkpod("volumes", NULL,
                            "  containers:\n"
                            "  - name: app\n"
                            "    command: ['true']\n"
                            "    volumeMounts: [{name: data, mountPath: /data}]\n"
                            "  volumes: [{name: data, emptyDir: {}}]\n");
    json_t *all[] = {cfg, nobin, deadline, volumes};
    for (int i = 0; i < 4; i++)
        CHECK_INT_EQ(corral_runtime_sync_pod(e.rt, all[i], NULL), 0);

    json_t *st = wait_for(&e, uid_of(cfg), waiting_reason, "CreateContainerConfigError", 5000);
    CHECK_STR_EQ(state_field(st, "app", "waiting", "message"), "configmap \"settings\" not found");
    CHECK(phase_is(st, "Pending"));
    json_decref(st);
    json_t *sources =
        json_loads("{\"configmaps\":{\"settings\":{\"data\":{\"MODE\":\"on\"}}}}", 0, NULL);
    CHECK_INT_EQ(corral_runtime_sync_pod(e.rt, cfg, sources), 0);
    json_decref(wait_for(&e, uid_of(cfg), phase_is, "Succeeded", 5000));
    CHECK_STR_EQ(pod_log(&e, "needs-cfg", "app", false), "on\n");

    st = wait_for(&e, uid_of(nobin), phase_is, "Failed", 5000);
    CHECK_STR_EQ(state_field(st, "app", "terminated", "reason"), "StartError");
    CHECK_INT_EQ(exit_code(st, "app"), 128);
    CHECK_STR_CONTAINS(state_field(st, "app", "terminated", "message"),
                       "executable file not found in $PATH");
    json_decref(st);

    st = wait_for(&e, uid_of(deadline), phase_is, "Failed", 40000);
    CHECK_STR_EQ(json_string_value(json_object_get(st, "reason")), "DeadlineExceeded");
    json_decref(st);

    st = wait_for(&e, uid_of(volumes), phase_is, "Failed", 5000);
    CHECK_STR_EQ(json_string_value(json_object_get(st, "reason")), "Unsupported");
    CHECK_STR_CONTAINS(json_string_value(json_object_get(st, "message")), "cannot mount volumes");
    json_decref(st);
    json_decref(sources);
    for (int i = 0; i < 4; i++)
        json_decref(all[i]);
    env_down(&e);
}

static void test_cgroup_placement(void)
{
    struct env e;
    env_up(&e, NO_GPUS);
    json_t *pod = mkpod("cg", NULL,
                        "  restartPolicy: Never\n"
                        "  containers:\n"
                        "  - name: app\n"
                        "    command: [grep, '^0::', /proc/self/cgroup]\n"
                        "    resources: {limits: {cpu: 250m, memory: 64Mi}}\n");
    CHECK_INT_EQ(corral_runtime_sync_pod(e.rt, pod, NULL), 0);
    json_t *st = wait_for(&e, uid_of(pod), phase_is, "Succeeded", 5000);
    CHECK_STR_EQ(json_string_value(json_object_get(st, "qosClass")), "Guaranteed");
    const char *log = pod_log(&e, "cg", "app", false);
    if (e.cg.usable)
        CHECK_STR_CONTAINS(log, "/pod-cg-uid/app");
    else
        fprintf(stderr, "no cgroups on this host: %s\n", e.cg.status);
    json_decref(st);
    json_decref(pod);
    env_down(&e);
}

static void test_security_context(void)
{
    struct env e;
    env_up(&e, NO_GPUS);
    json_t *user =
        mkpod("as-nobody", NULL,
              "  restartPolicy: Never\n"
              "  securityContext: {runAsUser: 65534, runAsGroup: 65534,"
              " supplementalGroups: [4242]}\n"
              "  containers:\n"
              "  - name: app\n"
              "    command: [sh, -c, 'id -u; id -g; id -G; touch mine && echo wrote']\n");
    json_t *nonroot = mkpod("nonroot", NULL,
                            "  containers:\n"
                            "  - name: app\n"
                            "    command: ['true']\n"
                            "    securityContext: {runAsNonRoot: true}\n");
    json_t *grpc = mkpod("grpc", NULL,
                         "  containers:\n"
                         "  - name: app\n"
                         "    command: [sleep, '5']\n"
                         "    livenessProbe: {grpc: {port: 9000}}\n");
    CHECK_INT_EQ(corral_runtime_sync_pod(e.rt, grpc, NULL), 0);
    json_t *st = wait_for(&e, uid_of(grpc), phase_is, "Failed", 5000);
    CHECK_STR_EQ(json_string_value(json_object_get(st, "reason")), "Unsupported");
    CHECK_STR_CONTAINS(json_string_value(json_object_get(st, "message")), "gRPC probes");
    json_decref(st);
    if (geteuid() == 0) {
        CHECK_INT_EQ(corral_runtime_sync_pod(e.rt, user, NULL), 0);
        json_decref(wait_for(&e, uid_of(user), phase_is, "Succeeded", 5000));
        CHECK_STR_EQ(pod_log(&e, "as-nobody", "app", false), "65534\n65534\n65534 4242\nwrote\n");
        CHECK_INT_EQ(corral_runtime_sync_pod(e.rt, nonroot, NULL), 0);
        st = wait_for(&e, uid_of(nonroot), waiting_reason, "CreateContainerConfigError", 5000);
        CHECK_STR_CONTAINS(state_field(st, "app", "waiting", "message"),
                           "container has runAsNonRoot and image will run as root");
        json_decref(st);
    } else {
        fprintf(stderr, "not root: runAsUser cases need root to switch users; skipped\n");
    }
    json_decref(user);
    json_decref(nonroot);
    json_decref(grpc);
    env_down(&e);
}

static void test_sidecars(void)
{
    struct env e;
    env_up(&e, NO_GPUS);
    /* a Job-like pod: the sidecar starts (its startup probe sees its file) before the next
     * init container, serves beside the app, and is stopped when the app is done */
    json_t *pod = mkpod("with-sidecar", NULL,
                        "  restartPolicy: Never\n"
                        "  terminationGracePeriodSeconds: 5\n"
                        "  initContainers:\n"
                        "  - name: proxy\n"
                        "    restartPolicy: Always\n"
                        "    command: [sh, -c, 'trap \"echo proxy-stopped >> trail; exit 0\" TERM;"
                        " echo proxy-up >> trail; touch proxy-ready;"
                        " while true; do sleep 0.1; done']\n"
                        "    startupProbe:\n"
                        "      exec: {command: [test, -f, proxy-ready]}\n"
                        "      periodSeconds: 1\n"
                        "  - name: setup\n"
                        "    command: [sh, -c, 'echo setup >> trail']\n"
                        "  containers:\n"
                        "  - name: app\n"
                        "    command: [sh, -c, 'cat trail; sleep 0.3']\n");
    CHECK_INT_EQ(corral_runtime_sync_pod(e.rt, pod, NULL), 0);
    json_t *st = wait_for(&e, uid_of(pod), running, "app", 10000);
    CHECK(ready_is(st, "True"));
    json_t *proxy = ctr_status(st, "proxy");
    CHECK(json_is_true(json_object_get(proxy, "started")));
    json_decref(st);
    st = wait_for(&e, uid_of(pod), phase_is, "Succeeded", 10000);
    CHECK_STR_EQ(pod_log(&e, "with-sidecar", "app", false), "proxy-up\nsetup\n");
    CHECK_STR_EQ(state_field(st, "proxy", "terminated", "reason"), "Completed");
    CHECK_INT_EQ(restarts(st, "proxy"), 0);
    json_decref(st);
    char trail[1200], line[64] = "";
    snprintf(trail, sizeof(trail), "%s/pods/default_with-sidecar_with-sidecar-uid/work/trail",
             e.dir);
    FILE *f = fopen(trail, "r");
    CHECK(f != NULL);
    while (fgets(line, sizeof(line), f))
        ;
    fclose(f);
    CHECK_STR_EQ(line, "proxy-stopped\n"); /* stopped after the app, not before */
    json_decref(pod);

    /* deleting a serving pod stops the app first, the sidecar after it */
    json_t *svc =
        mkpod("svc", NULL,
              "  terminationGracePeriodSeconds: 5\n"
              "  initContainers:\n"
              "  - name: proxy\n"
              "    restartPolicy: Always\n"
              "    command: [sh, -c, 'trap \"sleep 0.3; echo proxy-stopped >> trail; exit 0\""
              " TERM; while true; do sleep 0.1; done']\n"
              "  containers:\n"
              "  - name: app\n"
              "    command: [sh, -c, 'trap \"sleep 0.3; echo app-stopped >> trail; exit 0\""
              " TERM; while true; do sleep 0.1; done']\n");
    CHECK_INT_EQ(corral_runtime_sync_pod(e.rt, svc, NULL), 0);
    json_decref(wait_for(&e, uid_of(svc), running, "app", 10000));
    usleep(300000);
    CHECK_INT_EQ(corral_runtime_stop_pod(e.rt, uid_of(svc), -1), 0);
    CHECK(was_stopped(&e, uid_of(svc), 10000));
    snprintf(trail, sizeof(trail), "%s/pods/default_svc_svc-uid/work/trail", e.dir);
    f = fopen(trail, "r");
    CHECK(f != NULL);
    char all[128] = "";
    size_t n = fread(all, 1, sizeof(all) - 1, f);
    all[n] = '\0';
    fclose(f);
    CHECK_STR_EQ(all, "app-stopped\nproxy-stopped\n");
    json_decref(svc);
    env_down(&e);
}

static void test_admission(void)
{
    struct env e;
    env_max_pods = 3;
    env_up(&e, NO_GPUS); /* 4 CPUs, 4 GiB allocatable */
    env_max_pods = 0;
    static const char big[] = "  containers:\n"
                              "  - name: app\n"
                              "    command: [sleep, '30']\n"
                              "    resources: {requests: {cpu: '3', memory: 1Gi}}\n";
    static const char small[] = "  containers:\n"
                                "  - {name: app, command: [sleep, '30']}\n";
    json_t *a = mkpod("big-a", NULL, big), *b = mkpod("big-b", NULL, big);
    json_t *s1 = mkpod("small-1", NULL, small), *s2 = mkpod("small-2", NULL, small);
    json_t *s3 = mkpod("small-3", NULL, small);
    CHECK_INT_EQ(corral_runtime_sync_pod(e.rt, a, NULL), 0);
    json_decref(wait_for(&e, uid_of(a), running, NULL, 5000));
    CHECK_INT_EQ(corral_runtime_sync_pod(e.rt, b, NULL), 0);
    json_t *st = wait_for(&e, uid_of(b), phase_is, "Failed", 5000);
    CHECK_STR_EQ(json_string_value(json_object_get(st, "reason")), "OutOfcpu");
    CHECK(has_event(&e, uid_of(b), "OutOfcpu", "Node didn't have enough resource: cpu"));
    CHECK_STR_EQ(json_string_value(json_object_get(st, "message")),
                 "Node didn't have enough resource: cpu, requested: 3000, used: 3000, capacity: "
                 "4000");
    json_decref(st);
    CHECK_INT_EQ(corral_runtime_sync_pod(e.rt, s1, NULL), 0);
    CHECK_INT_EQ(corral_runtime_sync_pod(e.rt, s2, NULL), 0);
    json_decref(wait_for(&e, uid_of(s1), running, NULL, 5000));
    json_decref(wait_for(&e, uid_of(s2), running, NULL, 5000));
    CHECK_INT_EQ(corral_runtime_sync_pod(e.rt, s3, NULL), 0);
    st = wait_for(&e, uid_of(s3), phase_is, "Failed", 5000);
    CHECK_STR_EQ(json_string_value(json_object_get(st, "reason")), "OutOfpods");
    json_decref(st);
    json_t *all[] = {a, b, s1, s2, s3};
    for (int i = 0; i < 5; i++)
        json_decref(all[i]);
    env_down(&e);
}

CORRAL_TESTS(CORRAL_TEST(command_env_and_logs), CORRAL_TEST(restart_policies),
             CORRAL_TEST(init_containers), CORRAL_TEST(readiness_http_and_tcp),
             CORRAL_TEST(liveness_and_startup), CORRAL_TEST(graceful_termination),
             CORRAL_TEST(deletion_through_sync), CORRAL_TEST(gpu_visibility),
             CORRAL_TEST(two_pods_get_different_gpus), CORRAL_TEST(config_errors_and_deadlines),
             CORRAL_TEST(cgroup_placement), CORRAL_TEST(security_context), CORRAL_TEST(admission),
             CORRAL_TEST(sidecars))
