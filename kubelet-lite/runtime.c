/* SPDX-License-Identifier: Apache-2.0 */
/*
 * runtime: the pod runtime (see runtime.h).
 *
 * Shape. Every pod is a struct rpod holding its containers (init containers first) as struct
 * ctr. The loop thread sleeps in epoll_wait until a process exits (pidfd), a container writes
 * output (pipe), another thread changes something (eventfd) or the earliest timer is due
 * (back-off expiry, probe period, grace deadline). Then, under the lock, it handles those
 * events and runs reconcile() on every pod, which is written as "look at the state, take the
 * next step": start what should run, probe what is due, kill what must stop, compute the
 * status. Statuses that changed are reported after the lock is dropped.
 *
 * Kubernetes behaviour followed here (pkg/kubelet): the first restart is immediate, later ones
 * wait back-off (initial, doubling, capped; reset after a run of twice the cap); a container
 * waiting out back-off is Waiting/CrashLoopBackOff with lastState Terminated; phases follow
 * getPhase(); liveness and readiness probes start only after the startup probe succeeds; a
 * probe acts after failureThreshold consecutive failures (successThreshold successes);
 * deleting a pod runs preStop, then SIGTERM, then SIGKILL at the grace deadline, and a deleted
 * pod ends in a terminal phase.
 */
#include "runtime.h"

#include "container.h"
#include "gpualloc.h"
#include "log.h"
#include "logs.h"
#include "meta.h"
#include "proc.h"
#include "prober.h"
#include "quantity.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SUBSYS "runtime"
#define NEVER INT64_MAX
#define CONFIG_RETRY_MS 2000 /* retry a container whose ConfigMap/Secret was missing */

/* snprintf for text whose truncation is acceptable or checked by the caller (gcc cannot
 * second-guess it through the va_list). Returns 0, or -ENAMETOOLONG when out was too small. */
static int fmt(char *out, size_t len, const char *f, ...) __attribute__((format(printf, 3, 4)));

static int fmt(char *out, size_t len, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(out, len, f, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

enum watch_kind { W_WAKE, W_EXIT, W_OUT, W_ERR, W_PROBE_EXIT, W_HOOK_EXIT };

struct watch {
    enum watch_kind kind;
    void *obj;
};

enum cstate { C_WAITING, C_RUNNING, C_TERMINATED };
enum policy { P_ALWAYS, P_ON_FAILURE, P_NEVER };
enum phase { PH_PENDING, PH_RUNNING, PH_SUCCEEDED, PH_FAILED };
enum probe_type { PR_NONE, PR_EXEC, PR_HTTP, PR_TCP, PR_SLEEP };
enum probe_role { ROLE_STARTUP, ROLE_LIVENESS, ROLE_READINESS, ROLE_POST_START, ROLE_PRE_STOP };

struct rpod;
struct ctr;

/* A probe or a lifecycle hook: one action that runs now and then and succeeds or fails. */
struct probe {
    struct ctr *ctr;
    enum probe_role role;
    enum probe_type type;
    const json_t *spec; /* the probe/handler object (borrowed from the pod) */
    int64_t initial_delay_ms, period_ms, timeout_ms;
    int success_threshold, failure_threshold;
    int64_t next_ms; /* when to run next */
    bool in_flight;
    uint64_t token;          /* of the in-flight HTTP/TCP request */
    int64_t deadline_ms;     /* of the in-flight exec or sleep */
    struct corral_proc proc; /* exec */
    bool have_proc;
    struct watch w_exit;
    int successes, failures;
    bool passed; /* the last verdict was success */
    bool done;   /* hooks: finished */
    char message[256];
};

struct term_info {
    bool set;
    int exit_code, signal;
    char reason[48];
    char message[512];
    char started[32], finished[32];
    char container_id[160];
};

struct ctr {
    struct rpod *pod;
    const json_t *spec;
    char name[64];
    bool init;
    bool sidecar;     /* an init container with restartPolicy Always: runs beside the pod */
    bool was_started; /* sidecar: it has been started once (later containers may go) */
    enum cstate state;
    char reason[48];       /* waiting reason */
    char message[512];     /* waiting message */
    struct term_info term; /* while C_TERMINATED */
    struct term_info last; /* lastState */
    struct corral_proc proc;
    bool have_proc;
    int out_fd, err_fd;
    struct watch w_exit, w_out, w_err;
    struct corral_log_writer log;
    char cgroup[1100];
    long oom_before;
    char started_at[32];
    int64_t started_ms;
    int restart_count;
    bool ever_started;
    int64_t backoff_ms; /* delay before the next restart (0: immediately) */
    int64_t next_start_ms;
    bool ready, started;
    struct probe startup, liveness, readiness, post_start, pre_stop;
    bool killing; /* SIGTERM sent or preStop running */
    bool sigterm_sent, sigkill_sent;
    int64_t kill_deadline_ms;
    char kill_message[256];
    bool no_restart; /* this run is the last (policy, or the pod is stopping) */
    char gpu_visible[1024];
};

struct rpod {
    struct rpod *next;
    json_t *pod;
    json_t *sources;
    char uid[64], ns[254], name[254];
    char dir[1024];
    struct ctr *ctrs;
    size_t ninit, nctrs; /* ctrs[0..ninit) are init containers */
    enum policy policy;
    enum phase phase;
    char reason[64], message[512];
    char start_time[32];
    int64_t start_ms;
    int64_t active_deadline_ms; /* 0: none */
    bool admitted;
    struct corral_gpu_assignment gpus;
    char gpu_milli[16];
    bool stopping;
    bool force_failed; /* ends Failed whatever the exit codes (deadline exceeded) */
    int64_t grace_deadline_ms;
    bool stopped_reported;
    int grace_s;
    json_t *status;        /* last reported */
    char cond_time[5][32]; /* lastTransitionTime per condition */
    int cond_status[5];    /* -1 unknown, 0 False, 1 True */
};

struct result {
    uint64_t token;
    bool ok;
    char message[256];
};

enum note_kind { NOTE_STATUS, NOTE_STOPPED, NOTE_EVENT };

struct note { /* a callback to make once the lock is dropped */
    struct note *next;
    enum note_kind kind;
    char ns[254], name[254], uid[64];
    json_t *obj; /* the status, or the event */
};

struct corral_runtime {
    struct corral_runtime_config cfg;
    char *node_name, *state_dir, *host_ip;
    pthread_t thread;
    pthread_mutex_t lock;
    int epfd, wakefd;
    struct watch w_wake;
    bool quit;
    int quit_grace_s;
    struct rpod *pods;
    struct corral_prober *prober;
    struct corral_gpu_pool gpus;
    uint64_t next_token;
    struct result *results;
    size_t nresults, cap_results;
    struct note *notes;
};

/* ---- small helpers ------------------------------------------------------------------------- */

static int64_t now_ms(void)
{
    return (int64_t)(corral_now_ns() / 1000000);
}

static void now_rfc3339(char out[32])
{
    corral_meta_format_time(time(NULL), out);
}

static void wake(struct corral_runtime *rt)
{
    uint64_t one = 1;
    ssize_t n = write(rt->wakefd, &one, sizeof(one));
    (void)n;
}

static int watch_fd(struct corral_runtime *rt, int fd, struct watch *w)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = w};
    return epoll_ctl(rt->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static void unwatch_fd(struct corral_runtime *rt, int fd)
{
    epoll_ctl(rt->epfd, EPOLL_CTL_DEL, fd, NULL);
}

static int64_t json_int_or(const json_t *obj, const char *key, int64_t dflt)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? json_integer_value(v) : dflt;
}

/* ---- probes and hooks: set-up ---------------------------------------------------------------- */

static enum probe_type handler_type(const json_t *h)
{
    if (json_object_get(h, "exec"))
        return PR_EXEC;
    if (json_object_get(h, "httpGet"))
        return PR_HTTP;
    if (json_object_get(h, "tcpSocket"))
        return PR_TCP;
    if (json_object_get(h, "sleep"))
        return PR_SLEEP;
    return PR_NONE;
}

static void probe_init(struct probe *pr, struct ctr *c, enum probe_role role, const json_t *spec)
{
    memset(pr, 0, sizeof(*pr));
    pr->ctr = c;
    pr->role = role;
    pr->spec = spec;
    pr->type = spec ? handler_type(spec) : PR_NONE;
    pr->w_exit = (struct watch){W_PROBE_EXIT, pr};
    pr->initial_delay_ms = json_int_or(spec, "initialDelaySeconds", 0) * 1000;
    pr->period_ms = json_int_or(spec, "periodSeconds", 10) * 1000;
    pr->timeout_ms = json_int_or(spec, "timeoutSeconds", 1) * 1000;
    pr->success_threshold = (int)json_int_or(spec, "successThreshold", 1);
    pr->failure_threshold = (int)json_int_or(spec, "failureThreshold", 3);
    if (pr->period_ms <= 0)
        pr->period_ms = 10000;
    if (pr->timeout_ms <= 0)
        pr->timeout_ms = 1000;
    if (pr->success_threshold < 1)
        pr->success_threshold = 1;
    if (pr->failure_threshold < 1)
        pr->failure_threshold = 1;
    pr->next_ms = NEVER;
}

static void ctr_init(struct ctr *c, struct rpod *p, const json_t *spec, bool init)
{
    memset(c, 0, sizeof(*c));
    c->pod = p;
    c->spec = spec;
    c->init = init;
    const char *rp = json_string_value(json_object_get(spec, "restartPolicy"));
    c->sidecar = init && rp && strcmp(rp, "Always") == 0;
    bool no_probes = init && !c->sidecar; /* plain init containers have no probes */
    snprintf(c->name, sizeof(c->name), "%s", json_string_value(json_object_get(spec, "name")));
    c->state = C_WAITING;
    snprintf(c->reason, sizeof(c->reason), "%s", init ? "PodInitializing" : "ContainerCreating");
    if (!init && p->ninit > 0)
        snprintf(c->reason, sizeof(c->reason), "PodInitializing");
    c->out_fd = c->err_fd = -1;
    c->log.fd = -1;
    c->w_exit = (struct watch){W_EXIT, c};
    c->w_out = (struct watch){W_OUT, c};
    c->w_err = (struct watch){W_ERR, c};
    const json_t *lc = json_object_get(spec, "lifecycle");
    probe_init(&c->startup, c, ROLE_STARTUP,
               no_probes ? NULL : json_object_get(spec, "startupProbe"));
    probe_init(&c->liveness, c, ROLE_LIVENESS,
               no_probes ? NULL : json_object_get(spec, "livenessProbe"));
    probe_init(&c->readiness, c, ROLE_READINESS,
               no_probes ? NULL : json_object_get(spec, "readinessProbe"));
    probe_init(&c->post_start, c, ROLE_POST_START, json_object_get(lc, "postStart"));
    probe_init(&c->pre_stop, c, ROLE_PRE_STOP, json_object_get(lc, "preStop"));
}

/* ---- notes (callbacks after the lock) -------------------------------------------------------- */

/* Queues a callback; steals obj. */
static void note(struct corral_runtime *rt, struct rpod *p, enum note_kind kind, json_t *obj)
{
    struct note *n = calloc(1, sizeof(*n));
    if (!n) {
        json_decref(obj);
        return;
    }
    n->kind = kind;
    snprintf(n->ns, sizeof(n->ns), "%s", p->ns);
    snprintf(n->name, sizeof(n->name), "%s", p->name);
    snprintf(n->uid, sizeof(n->uid), "%s", p->uid);
    n->obj = obj;
    struct note **tail = &rt->notes;
    while (*tail)
        tail = &(*tail)->next;
    *tail = n;
}

static void deliver_notes(struct corral_runtime *rt)
{
    struct note *n = rt->notes;
    rt->notes = NULL;
    pthread_mutex_unlock(&rt->lock);
    while (n) {
        struct note *next = n->next;
        if (n->kind == NOTE_STOPPED && rt->cfg.on_stopped)
            rt->cfg.on_stopped(rt->cfg.ctx, n->ns, n->name, n->uid);
        else if (n->kind == NOTE_STATUS && rt->cfg.on_status)
            rt->cfg.on_status(rt->cfg.ctx, n->ns, n->name, n->uid, n->obj);
        else if (n->kind == NOTE_EVENT && rt->cfg.on_event)
            rt->cfg.on_event(rt->cfg.ctx, n->ns, n->name, n->uid, n->obj);
        json_decref(n->obj);
        free(n);
        n = next;
    }
    pthread_mutex_lock(&rt->lock);
}

/*
 * Records a Kubernetes-style event about pod p (container c, or the pod when NULL): type
 * "Normal" or "Warning", a CamelCase reason and a message, as the kubelet would.
 */
static void emit(struct corral_runtime *rt, struct rpod *p, const struct ctr *c, const char *type,
                 const char *reason, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void emit(struct corral_runtime *rt, struct rpod *p, const struct ctr *c, const char *type,
                 const char *reason, const char *fmt, ...)
{
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    json_t *ev = json_pack("{s:s, s:s, s:s}", "type", type, "reason", reason, "message", message);
    if (ev && c)
        json_object_set_new(
            ev, "fieldPath",
            json_sprintf("spec.%s{%s}", c->init ? "initContainers" : "containers", c->name));
    if (ev)
        note(rt, p, NOTE_EVENT, ev);
}

/* ---- pods: creation and validation ------------------------------------------------------------
 */

static enum policy parse_policy(const json_t *spec)
{
    const char *p = json_string_value(json_object_get(spec, "restartPolicy"));
    if (p && strcmp(p, "OnFailure") == 0)
        return P_ON_FAILURE;
    if (p && strcmp(p, "Never") == 0)
        return P_NEVER;
    return P_ALWAYS;
}

/* Checks what this runtime cannot do, so that such a pod fails with a clear reason. */
static const char *unsupported(const json_t *spec, char *buf, size_t len)
{
    static const char *const lists[] = {"initContainers", "containers"};
    for (int l = 0; l < 2; l++) {
        size_t i, k;
        const json_t *c, *m;
        json_array_foreach(json_object_get(spec, lists[l]), i, c)
        {
            static const char *const probes[] = {"startupProbe", "livenessProbe", "readinessProbe"};
            for (int p = 0; p < 3; p++)
                if (json_object_get(json_object_get(c, probes[p]), "grpc")) {
                    snprintf(buf, len,
                             "container %s: gRPC probes are not supported by corral's "
                             "process runtime (use exec, httpGet or tcpSocket)",
                             json_string_value(json_object_get(c, "name")));
                    return buf;
                }
            json_array_foreach(json_object_get(c, "volumeMounts"), k, m)
            {
                const char *vol = json_string_value(json_object_get(m, "name"));
                if (vol && strncmp(vol, "kube-api-access-", 16) == 0)
                    continue; /* the service-account token the apiserver adds by itself */
                snprintf(buf, len,
                         "container %s mounts volume %s at %s: corral runs containers "
                         "as host processes and cannot mount volumes",
                         json_string_value(json_object_get(c, "name")), vol ? vol : "",
                         json_string_value(json_object_get(m, "mountPath")));
                return buf;
            }
        }
    }
    return NULL;
}

static int make_dirs(const char *path)
{
    char buf[1100];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    return mkdir(buf, 0755) < 0 && errno != EEXIST ? -errno : 0;
}

static struct rpod *pod_new(struct corral_runtime *rt, const json_t *pod)
{
    const json_t *md = json_object_get(pod, "metadata");
    const json_t *spec = json_object_get(pod, "spec");
    struct rpod *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->pod = json_deep_copy(pod);
    snprintf(p->uid, sizeof(p->uid), "%s", json_string_value(json_object_get(md, "uid")));
    snprintf(p->name, sizeof(p->name), "%s", json_string_value(json_object_get(md, "name")));
    const char *ns = json_string_value(json_object_get(md, "namespace"));
    snprintf(p->ns, sizeof(p->ns), "%s", ns ? ns : "default");
    snprintf(p->dir, sizeof(p->dir), "%s/pods/%s_%s_%s", rt->state_dir, p->ns, p->name, p->uid);
    p->policy = parse_policy(spec);
    p->ninit = json_array_size(json_object_get(spec, "initContainers"));
    p->nctrs = p->ninit + json_array_size(json_object_get(spec, "containers"));
    p->ctrs = calloc(p->nctrs ? p->nctrs : 1, sizeof(*p->ctrs));
    if (!p->pod || !p->ctrs) {
        json_decref(p->pod);
        free(p->ctrs);
        free(p);
        return NULL;
    }
    for (size_t i = 0; i < p->nctrs; i++) {
        bool init = i < p->ninit;
        const json_t *list = json_object_get(json_object_get(p->pod, "spec"),
                                             init ? "initContainers" : "containers");
        ctr_init(&p->ctrs[i], p, json_array_get(list, init ? i : i - p->ninit), init);
    }
    p->grace_s = (int)json_int_or(spec, "terminationGracePeriodSeconds", 30);
    p->active_deadline_ms = json_int_or(spec, "activeDeadlineSeconds", 0) * 1000;
    for (int k = 0; k < 5; k++)
        p->cond_status[k] = -1;
    return p;
}

static void pod_fail(struct rpod *p, const char *reason, const char *message)
{
    p->phase = PH_FAILED;
    snprintf(p->reason, sizeof(p->reason), "%s", reason);
    snprintf(p->message, sizeof(p->message), "%s", message);
    for (size_t i = 0; i < p->nctrs; i++)
        p->ctrs[i].no_restart = true;
}

/* What a pod requests: the larger of its app containers' sum and its largest init container. */
static void pod_requests(const struct rpod *p, int64_t *cpu, int64_t *mem)
{
    int64_t app_cpu = 0, app_mem = 0, init_cpu = 0, init_mem = 0;
    for (size_t i = 0; i < p->nctrs; i++) {
        int64_t c = 0, m = 0;
        corral_container_requests(p->ctrs[i].spec, &c, &m);
        if (p->ctrs[i].init && !p->ctrs[i].sidecar) {
            init_cpu = c > init_cpu ? c : init_cpu;
            init_mem = m > init_mem ? m : init_mem;
        } else {
            app_cpu += c;
            app_mem += m;
        }
    }
    *cpu = app_cpu > init_cpu ? app_cpu : init_cpu;
    *mem = app_mem > init_mem ? app_mem : init_mem;
}

static bool holds_resources(const struct rpod *p)
{
    return p->admitted && p->phase != PH_SUCCEEDED && p->phase != PH_FAILED;
}

/* The kubelet's resource admission. Returns false after failing the pod. */
static bool fits(struct corral_runtime *rt, struct rpod *p)
{
    int64_t cpu, mem, used_cpu = 0, used_mem = 0, pods = 0;
    pod_requests(p, &cpu, &mem);
    for (struct rpod *o = rt->pods; o; o = o->next) {
        if (o == p || !holds_resources(o))
            continue;
        int64_t c, m;
        pod_requests(o, &c, &m);
        used_cpu += c;
        used_mem += m;
        pods++;
    }
    char msg[300];
    const struct {
        const char *reason, *res;
        int64_t want, used, cap;
    } checks[] = {{"OutOfpods", "pods", 1, pods, rt->cfg.max_pods},
                  {"OutOfcpu", "cpu", cpu, used_cpu, rt->cfg.node_cpu_milli},
                  {"OutOfmemory", "memory", mem, used_mem, rt->cfg.node_memory_bytes}};
    for (int k = 0; k < 3; k++) {
        if (checks[k].cap <= 0 || checks[k].used + checks[k].want <= checks[k].cap)
            continue;
        snprintf(msg, sizeof(msg),
                 "Node didn't have enough resource: %s, requested: %lld, used: %lld, capacity: "
                 "%lld",
                 checks[k].res, (long long)checks[k].want, (long long)checks[k].used,
                 (long long)checks[k].cap);
        pod_fail(p, checks[k].reason, msg);
        emit(rt, p, NULL, "Warning", checks[k].reason, "%s", msg);
        return false;
    }
    return true;
}

/* Admission: what the kubelet checks before it starts anything. */
static void admit(struct corral_runtime *rt, struct rpod *p)
{
    char why[600];
    p->admitted = true;
    now_rfc3339(p->start_time);
    p->start_ms = now_ms();
    if (p->nctrs == p->ninit) {
        pod_fail(p, "Invalid", "the pod has no containers");
        return;
    }
    if (unsupported(json_object_get(p->pod, "spec"), why, sizeof(why))) {
        pod_fail(p, "Unsupported", why);
        emit(rt, p, NULL, "Warning", "Unsupported", "%s", why);
        return;
    }
    if (!fits(rt, p))
        return;
    if (corral_gpu_admit(&rt->gpus, p->uid, p->pod, &p->gpus, why, sizeof(why)) < 0) {
        char msg[700];
        snprintf(msg, sizeof(msg), "Allocate failed due to %s, which is unexpected", why);
        pod_fail(p, "UnexpectedAdmissionError", msg);
        emit(rt, p, NULL, "Warning", "UnexpectedAdmissionError", "%s", msg);
        memset(&p->gpus, 0, sizeof(p->gpus));
        return;
    }
    if (p->gpus.milli > 0)
        snprintf(p->gpu_milli, sizeof(p->gpu_milli), "%d", p->gpus.milli);
    char work[1100];
    snprintf(work, sizeof(work), "%s/work", p->dir);
    if (make_dirs(work) < 0) {
        fmt(why, sizeof(why), "cannot create %s: %s", work, strerror(errno));
        pod_fail(p, "UnexpectedAdmissionError", why);
    }
}

/* Hands the containers that ask for GPUs their share of the pod's assignment, in order. */
static void split_gpus(struct corral_runtime *rt, struct rpod *p)
{
    int next_app = 0;
    for (size_t i = 0; i < p->nctrs; i++) {
        struct ctr *c = &p->ctrs[i];
        const json_t *lim = json_object_get(json_object_get(c->spec, "resources"), "limits");
        struct corral_quantity q;
        int want = 0;
        if (corral_quantity_from_json(json_object_get(lim, "nvidia.com/gpu"), &q) == 0)
            want = (int)corral_quantity_value(&q);
        bool shared = json_object_get(lim, "corral.io/gpu-milli") != NULL;
        if (shared && p->gpus.n > 0)
            want = 1;
        int first = c->init || shared ? 0 : next_app;
        if (want > p->gpus.n - first)
            want = p->gpus.n - first > 0 ? p->gpus.n - first : 0;
        corral_gpu_visible(rt->cfg.topo, p->gpus.idx + first, want, c->gpu_visible,
                           sizeof(c->gpu_visible));
        if (!c->init && !shared)
            next_app += want;
    }
}

/* ---- processes ---------------------------------------------------------------------------------
 */

static void close_pipe(struct corral_runtime *rt, int *fd)
{
    if (*fd < 0)
        return;
    unwatch_fd(rt, *fd);
    close(*fd);
    *fd = -1;
}

/*
 * Copies what the container wrote into its log (at most 1 MiB per call unless draining, so
 * that one chatty container does not starve the loop). Returns false at end of file.
 */
static bool pump(struct ctr *c, int fd, enum corral_log_stream stream, bool drain)
{
    char buf[65536];
    for (int rounds = 0; drain || rounds < 16; rounds++) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n > 0) {
            if (c->log.fd >= 0 && corral_log_write(&c->log, stream, buf, (size_t)n) < 0)
                corral_warn(SUBSYS, "%s/%s %s: writing the log: %s", c->pod->ns, c->pod->name,
                            c->name, strerror(errno));
            continue;
        }
        return n < 0 && (errno == EAGAIN || errno == EINTR);
    }
    return true;
}

static void drain_output(struct corral_runtime *rt, struct ctr *c)
{
    if (c->out_fd >= 0 && !pump(c, c->out_fd, CORRAL_LOG_STDOUT, true))
        close_pipe(rt, &c->out_fd);
    if (c->err_fd >= 0 && !pump(c, c->err_fd, CORRAL_LOG_STDERR, true))
        close_pipe(rt, &c->err_fd);
}

static int open_pipes(struct corral_runtime *rt, struct ctr *c, int child[2])
{
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) < 0)
        return -errno;
    if (pipe2(err, O_CLOEXEC) < 0) {
        int e = errno;
        close(out[0]);
        close(out[1]);
        return -e;
    }
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    fcntl(err[0], F_SETFL, O_NONBLOCK);
    c->out_fd = out[0];
    c->err_fd = err[0];
    child[0] = out[1];
    child[1] = err[1];
    watch_fd(rt, c->out_fd, &c->w_out);
    watch_fd(rt, c->err_fd, &c->w_err);
    return 0;
}

static void container_id(const struct ctr *c, char *out, size_t len)
{
    snprintf(out, len, "corral://%s/%s/%d", c->pod->uid, c->name, c->restart_count);
}

static void set_waiting(struct ctr *c, const char *reason, const char *message)
{
    c->state = C_WAITING;
    snprintf(c->reason, sizeof(c->reason), "%s", reason);
    fmt(c->message, sizeof(c->message), "%s", message ? message : "");
}

static void set_terminated(struct ctr *c, int exit_code, int sig, const char *reason,
                           const char *message)
{
    c->state = C_TERMINATED;
    memset(&c->term, 0, sizeof(c->term));
    c->term.set = true;
    c->term.exit_code = exit_code;
    c->term.signal = sig;
    snprintf(c->term.reason, sizeof(c->term.reason), "%s", reason);
    snprintf(c->term.message, sizeof(c->term.message), "%s", message ? message : "");
    snprintf(c->term.started, sizeof(c->term.started), "%s", c->started_at);
    now_rfc3339(c->term.finished);
    if (!c->term.started[0])
        snprintf(c->term.started, sizeof(c->term.started), "%s", c->term.finished);
    container_id(c, c->term.container_id, sizeof(c->term.container_id));
    c->ready = false;
}

static int open_log(struct corral_runtime *rt, struct ctr *c)
{
    char dir[1100], path[1200];
    snprintf(dir, sizeof(dir), "%s/%s", c->pod->dir, c->name);
    int rc = make_dirs(dir);
    if (rc < 0)
        return rc;
    snprintf(path, sizeof(path), "%s/%d.log", dir, c->restart_count);
    if (c->restart_count >= 2) { /* keep this run's log and the previous one */
        char old[1200];
        for (int k = 0; k < rt->cfg.log_max_files; k++) {
            if (k == 0)
                snprintf(old, sizeof(old), "%s/%d.log", dir, c->restart_count - 2);
            else
                snprintf(old, sizeof(old), "%s/%d.log.%d", dir, c->restart_count - 2, k);
            unlink(old);
        }
    }
    return corral_log_open(&c->log, path, rt->cfg.log_max_bytes, rt->cfg.log_max_files);
}

static int setup_cgroup(struct corral_runtime *rt, struct ctr *c,
                        const struct corral_container_plan *plan)
{
    const struct corral_cgroups *cg = rt->cfg.cgroups;
    c->cgroup[0] = '\0';
    if (!cg || !cg->usable)
        return -1;
    int rc = corral_cgroup_create(cg, c->pod->uid, c->name, plan->cpu_limit_milli,
                                  plan->memory_limit_bytes, c->cgroup, sizeof(c->cgroup));
    if (rc < 0) {
        corral_warn(SUBSYS, "%s/%s %s: cgroup: %s; running without one", c->pod->ns, c->pod->name,
                    c->name, strerror(-rc));
        c->cgroup[0] = '\0';
        return -1;
    }
    c->oom_before = corral_cgroup_oom_kills(c->cgroup);
    return corral_cgroup_open_procs(c->cgroup);
}

static void plan_context(struct corral_runtime *rt, struct ctr *c, struct corral_plan_context *pc,
                         char *cwd, size_t len)
{
    snprintf(cwd, len, "%s/work", c->pod->dir);
    *pc = (struct corral_plan_context){
        .node_name = rt->node_name,
        .host_ip = rt->host_ip,
        .default_cwd = cwd,
        .gpu_visible = c->gpu_visible,
        .gpu_milli = c->pod->gpu_milli[0] ? c->pod->gpu_milli : NULL,
        .node_cpu_milli = rt->cfg.node_cpu_milli,
        .node_memory_bytes = rt->cfg.node_memory_bytes,
        .sources = c->pod->sources,
    };
}

static void schedule_probes(struct ctr *c, int64_t now)
{
    c->startup.next_ms = c->startup.type ? now + c->startup.initial_delay_ms : NEVER;
    c->liveness.next_ms = NEVER;
    c->readiness.next_ms = NEVER;
    c->started = c->startup.type == PR_NONE;
    if (c->started) {
        c->liveness.next_ms = c->liveness.type ? now + c->liveness.initial_delay_ms : NEVER;
        c->readiness.next_ms = c->readiness.type ? now + c->readiness.initial_delay_ms : NEVER;
    }
    struct probe *all[] = {&c->startup, &c->liveness, &c->readiness};
    for (int i = 0; i < 3; i++) {
        all[i]->successes = all[i]->failures = 0;
        all[i]->passed = false;
    }
    c->ready = false;
    c->post_start.done = c->post_start.type == PR_NONE;
    c->post_start.next_ms = c->post_start.type ? now : NEVER;
    c->pre_stop.done = false;
    c->pre_stop.in_flight = false;
}

/* Runs the process as the plan's securityContext user; the pod's work directory becomes theirs. */
static void take_identity(struct ctr *c, const struct corral_container_plan *plan,
                          struct corral_proc_spec *spec, gid_t *groups)
{
    if (plan->uid < 0 && plan->gid < 0)
        return;
    spec->identity = true;
    spec->uid = plan->uid >= 0 ? plan->uid : (long long)geteuid();
    spec->gid = plan->gid;
    for (unsigned i = 0; i < plan->ngroups; i++)
        groups[i] = (gid_t)plan->groups[i];
    spec->ngroups = plan->ngroups;
    spec->groups = groups;
    char work[1100];
    fmt(work, sizeof(work), "%s/work", c->pod->dir);
    if (chown(work, (uid_t)spec->uid, plan->gid >= 0 ? (gid_t)plan->gid : (gid_t)-1) < 0)
        corral_warn(SUBSYS, "%s/%s: cannot hand %s to uid %lld: %s", c->pod->ns, c->pod->name, work,
                    spec->uid, strerror(errno));
}

static void start_container(struct corral_runtime *rt, struct ctr *c)
{
    struct corral_plan_context pc;
    struct corral_container_plan plan;
    char cwd[1100], err[600];
    plan_context(rt, c, &pc, cwd, sizeof(cwd));
    if (corral_container_plan(c->pod->pod, c->spec, &pc, &plan, err, sizeof(err)) < 0) {
        if (strcmp(c->reason, "CreateContainerConfigError") != 0 || strcmp(c->message, err) != 0)
            emit(rt, c->pod, c, "Warning", "Failed", "Error: %s", err);
        set_waiting(c, "CreateContainerConfigError", err);
        c->next_start_ms = now_ms() + CONFIG_RETRY_MS;
        return;
    }
    int child[2] = {-1, -1}, procs = -1;
    int rc = open_log(rt, c);
    if (rc == 0)
        rc = open_pipes(rt, c, child);
    if (rc < 0) {
        snprintf(err, sizeof(err), "preparing logs: %s", strerror(-rc));
        set_waiting(c, "RunContainerError", err);
        c->next_start_ms = now_ms() + CONFIG_RETRY_MS;
        corral_log_close(&c->log);
        corral_container_plan_free(&plan);
        return;
    }
    procs = setup_cgroup(rt, c, &plan);
    struct corral_proc_spec spec = {.argv = plan.argv,
                                    .envp = plan.envp,
                                    .cwd = plan.cwd,
                                    .stdin_fd = -1,
                                    .stdout_fd = child[0],
                                    .stderr_fd = child[1],
                                    .cgroup_procs_fd = procs};
    gid_t groups[32];
    take_identity(c, &plan, &spec, groups);
    now_rfc3339(c->started_at);
    c->started_ms = now_ms();
    c->ever_started = true;
    rc = corral_proc_spawn(&spec, &c->proc, err, sizeof(err));
    close(child[0]);
    close(child[1]);
    if (procs >= 0)
        close(procs);
    corral_container_plan_free(&plan);
    if (rc < 0) {
        drain_output(rt, c);
        close_pipe(rt, &c->out_fd);
        close_pipe(rt, &c->err_fd);
        corral_log_close(&c->log);
        set_terminated(c, 128, 0, "StartError", err);
        emit(rt, c->pod, c, "Warning", "Failed", "Error: %s", err);
        return;
    }
    c->have_proc = true;
    watch_fd(rt, c->proc.pidfd, &c->w_exit);
    c->state = C_RUNNING;
    c->reason[0] = c->message[0] = '\0';
    c->killing = c->sigterm_sent = c->sigkill_sent = false;
    c->kill_message[0] = '\0';
    schedule_probes(c, c->started_ms);
    emit(rt, c->pod, c, "Normal", "Started", "Started container %s", c->name);
    corral_debug(SUBSYS, "%s/%s %s: started pid %d", c->pod->ns, c->pod->name, c->name,
                 (int)c->proc.pid);
}

static void kill_leftovers(struct ctr *c)
{
    corral_proc_signal_group(&c->proc, SIGKILL);
    if (c->cgroup[0])
        corral_cgroup_kill(c->cgroup);
}

static void on_exit_event(struct corral_runtime *rt, struct ctr *c)
{
    int code, sig;
    if (corral_proc_reap(&c->proc, &code, &sig) <= 0)
        return; /* spurious, or not ours: it is reaped next time */
    unwatch_fd(rt, c->proc.pidfd);
    c->have_proc = false;
    kill_leftovers(c); /* as a container's PID namespace would: the main process took them */
    drain_output(rt, c);
    close_pipe(rt, &c->out_fd);
    close_pipe(rt, &c->err_fd);
    corral_log_close(&c->log);
    bool oom = c->cgroup[0] && corral_cgroup_oom_kills(c->cgroup) > c->oom_before;
    const char *reason = oom ? "OOMKilled" : code == 0 ? "Completed" : "Error";
    set_terminated(c, code, sig, reason, c->kill_message);
    if (c->cgroup[0])
        corral_cgroup_remove(c->cgroup);
    corral_debug(SUBSYS, "%s/%s %s: exited with %d", c->pod->ns, c->pod->name, c->name, code);
}

/* ---- probes and hooks: running ------------------------------------------------------------ */

static int handler_port(const struct ctr *c, const json_t *port)
{
    if (json_is_integer(port))
        return (int)json_integer_value(port);
    const char *name = json_string_value(port);
    if (!name)
        return -1;
    char *end;
    long v = strtol(name, &end, 10);
    if (!*end && v > 0 && v < 65536)
        return (int)v;
    size_t i;
    const json_t *p;
    json_array_foreach(json_object_get(c->spec, "ports"), i, p)
    {
        const char *pn = json_string_value(json_object_get(p, "name"));
        if (pn && strcmp(pn, name) == 0)
            return (int)json_int_or(p, "containerPort", -1);
    }
    return -1;
}

static void probe_verdict(struct corral_runtime *rt, struct probe *pr, bool ok, const char *msg);

static int run_http_or_tcp(struct corral_runtime *rt, struct probe *pr)
{
    bool http = pr->type == PR_HTTP;
    const json_t *h = json_object_get(pr->spec, http ? "httpGet" : "tcpSocket");
    int port = handler_port(pr->ctr, json_object_get(h, "port"));
    if (port <= 0 || port > 65535) {
        snprintf(pr->message, sizeof(pr->message),
                 "invalid port: neither a number in 1-65535 "
                 "nor the name of a container port");
        return -EINVAL;
    }
    const char *host = json_string_value(json_object_get(h, "host"));
    const char *headers[34] = {NULL};
    char hbuf[32][320];
    size_t i, n = 0;
    const json_t *hd;
    json_array_foreach(json_object_get(h, "httpHeaders"), i, hd)
    {
        if (n == 32)
            break;
        snprintf(hbuf[n], sizeof(hbuf[n]), "%s: %s", json_string_value(json_object_get(hd, "name")),
                 json_string_value(json_object_get(hd, "value")));
        headers[n] = hbuf[n];
        n++;
    }
    const char *scheme = json_string_value(json_object_get(h, "scheme"));
    struct corral_probe_request req = {
        .kind = http ? CORRAL_PROBE_HTTP : CORRAL_PROBE_TCP,
        .host = host && *host ? host : rt->host_ip,
        .port = port,
        .path = json_string_value(json_object_get(h, "path")),
        .https = scheme && strcmp(scheme, "HTTPS") == 0,
        .headers = headers,
        .timeout_ms = (int)pr->timeout_ms,
    };
    pr->token = ++rt->next_token;
    return corral_prober_submit(rt->prober, pr->token, &req);
}

static int run_exec(struct corral_runtime *rt, struct probe *pr)
{
    struct ctr *c = pr->ctr;
    const json_t *cmd = json_object_get(json_object_get(pr->spec, "exec"), "command");
    struct corral_plan_context pc;
    struct corral_container_plan plan;
    char cwd[1100], err[512];
    plan_context(rt, c, &pc, cwd, sizeof(cwd));
    json_t *fake = json_pack("{s:s, s:O}", "name", c->name, "command", cmd);
    json_t *env = json_object_get(c->spec, "env");
    if (env)
        json_object_set(fake, "env", env);
    if (json_object_get(c->spec, "envFrom"))
        json_object_set(fake, "envFrom", json_object_get(c->spec, "envFrom"));
    static const char *const inherited[] = {"workingDir", "securityContext"};
    for (int k = 0; k < 2; k++)
        if (json_object_get(c->spec, inherited[k]))
            json_object_set(fake, inherited[k], json_object_get(c->spec, inherited[k]));
    int rc = corral_container_plan(c->pod->pod, fake, &pc, &plan, err, sizeof(err));
    json_decref(fake);
    if (rc < 0) {
        fmt(pr->message, sizeof(pr->message), "%s", err);
        return rc;
    }
    int procs = c->cgroup[0] ? corral_cgroup_open_procs(c->cgroup) : -1;
    struct corral_proc_spec spec = {.argv = plan.argv,
                                    .envp = plan.envp,
                                    .cwd = plan.cwd,
                                    .stdin_fd = -1,
                                    .stdout_fd = -1,
                                    .stderr_fd = -1,
                                    .cgroup_procs_fd = procs};
    gid_t groups[32];
    take_identity(c, &plan, &spec, groups);
    rc = corral_proc_spawn(&spec, &pr->proc, err, sizeof(err));
    if (procs >= 0)
        close(procs);
    corral_container_plan_free(&plan);
    if (rc < 0) {
        fmt(pr->message, sizeof(pr->message), "%s", err);
        return rc;
    }
    pr->have_proc = true;
    watch_fd(rt, pr->proc.pidfd, &pr->w_exit);
    return 0;
}

static int64_t hook_timeout(const struct probe *pr)
{
    const struct rpod *p = pr->ctr->pod;
    if (pr->role == ROLE_PRE_STOP)
        return pr->ctr->kill_deadline_ms - now_ms();
    return (int64_t)p->grace_s * 1000; /* postStart: bounded like the kubelet's hook timeout */
}

static void probe_start(struct corral_runtime *rt, struct probe *pr, int64_t now)
{
    bool hook = pr->role == ROLE_POST_START || pr->role == ROLE_PRE_STOP;
    int64_t timeout = hook ? hook_timeout(pr) : pr->timeout_ms;
    pr->in_flight = true;
    pr->deadline_ms = now + (timeout > 0 ? timeout : 1);
    pr->message[0] = '\0';
    int rc;
    switch (pr->type) {
    case PR_EXEC:
        rc = run_exec(rt, pr);
        break;
    case PR_HTTP:
    case PR_TCP:
        rc = run_http_or_tcp(rt, pr);
        pr->deadline_ms = NEVER; /* the prober enforces the timeout */
        break;
    case PR_SLEEP: {
        int64_t s = json_int_or(json_object_get(pr->spec, "sleep"), "seconds", 0) * 1000;
        pr->deadline_ms = now + (s < timeout ? s : timeout);
        return;
    }
    default:
        snprintf(pr->message, sizeof(pr->message), "the handler names no action");
        rc = -EINVAL;
    }
    if (rc < 0)
        probe_verdict(rt, pr, false, pr->message);
}

static void probe_on_exit(struct corral_runtime *rt, struct probe *pr)
{
    int code, sig;
    if (corral_proc_reap(&pr->proc, &code, &sig) <= 0)
        return;
    unwatch_fd(rt, pr->proc.pidfd);
    pr->have_proc = false;
    corral_proc_signal_group(&pr->proc, SIGKILL);
    char msg[64];
    snprintf(msg, sizeof(msg), "command exited with code %d", code);
    if (pr->in_flight)
        probe_verdict(rt, pr, code == 0, code == 0 ? "" : msg);
}

static void probe_timeout(struct corral_runtime *rt, struct probe *pr)
{
    if (pr->type == PR_SLEEP) {
        probe_verdict(rt, pr, true, "");
        return;
    }
    if (pr->have_proc)
        corral_proc_signal_group(&pr->proc, SIGKILL); /* reaped when its pidfd fires */
    probe_verdict(rt, pr, false, "command timed out");
}

static void begin_kill(struct corral_runtime *rt, struct ctr *c, int64_t deadline, const char *why);

/* A probe or hook finished. Applies thresholds and acts on the verdict. */
static void probe_verdict(struct corral_runtime *rt, struct probe *pr, bool ok, const char *msg)
{
    struct ctr *c = pr->ctr;
    int64_t now = now_ms();
    pr->in_flight = false;
    pr->deadline_ms = NEVER;
    snprintf(pr->message, sizeof(pr->message), "%s", msg ? msg : "");
    if (pr->role == ROLE_POST_START || pr->role == ROLE_PRE_STOP) {
        pr->done = true;
        if (pr->role == ROLE_POST_START && !ok && c->state == C_RUNNING) {
            char why[400];
            snprintf(why, sizeof(why), "PostStartHookError: %s", pr->message);
            emit(rt, c->pod, c, "Warning", "FailedPostStartHook", "%s", why);
            begin_kill(rt, c, now + (int64_t)c->pod->grace_s * 1000, why);
        }
        return;
    }
    if (c->state != C_RUNNING)
        return;
    pr->successes = ok ? pr->successes + 1 : 0;
    pr->failures = ok ? 0 : pr->failures + 1;
    static const char *const kind[] = {"Startup", "Liveness", "Readiness"};
    if (!ok)
        emit(rt, c->pod, c, "Warning", "Unhealthy", "%s probe failed: %s", kind[pr->role],
             pr->message);
    pr->next_ms = now + pr->period_ms;
    if (ok && pr->successes >= pr->success_threshold)
        pr->passed = true;
    if (!ok && pr->failures >= pr->failure_threshold)
        pr->passed = false;
    switch (pr->role) {
    case ROLE_STARTUP:
        if (pr->passed && !c->started) {
            c->started = true;
            pr->next_ms = NEVER;
            c->liveness.next_ms = c->liveness.type ? now + c->liveness.initial_delay_ms : NEVER;
            c->readiness.next_ms = c->readiness.type ? now + c->readiness.initial_delay_ms : NEVER;
        } else if (!ok && pr->failures >= pr->failure_threshold) {
            char why[400];
            snprintf(why, sizeof(why), "Startup probe failed: %s", pr->message);
            begin_kill(rt, c, now + (int64_t)c->pod->grace_s * 1000, why);
        }
        break;
    case ROLE_LIVENESS:
        if (!ok && pr->failures >= pr->failure_threshold) {
            int64_t grace = json_int_or(pr->spec, "terminationGracePeriodSeconds", c->pod->grace_s);
            char why[400];
            snprintf(why, sizeof(why), "Liveness probe failed: %s", pr->message);
            begin_kill(rt, c, now + grace * 1000, why);
        }
        break;
    case ROLE_READINESS:
        c->ready = pr->passed;
        break;
    default:
        break;
    }
}

static struct probe *find_token(struct corral_runtime *rt, uint64_t token)
{
    for (struct rpod *p = rt->pods; p; p = p->next)
        for (size_t i = 0; i < p->nctrs; i++) {
            struct ctr *c = &p->ctrs[i];
            struct probe *all[] = {&c->startup, &c->liveness, &c->readiness, &c->post_start,
                                   &c->pre_stop};
            for (int k = 0; k < 5; k++)
                if (all[k]->in_flight && all[k]->token == token)
                    return all[k];
        }
    return NULL;
}

static void on_prober_result(void *ctx, uint64_t token, bool ok, const char *message)
{
    struct corral_runtime *rt = ctx;
    pthread_mutex_lock(&rt->lock);
    if (rt->nresults == rt->cap_results) {
        size_t cap = rt->cap_results ? rt->cap_results * 2 : 16;
        struct result *r = realloc(rt->results, cap * sizeof(*r));
        if (!r) {
            pthread_mutex_unlock(&rt->lock);
            return;
        }
        rt->results = r;
        rt->cap_results = cap;
    }
    struct result *r = &rt->results[rt->nresults++];
    r->token = token;
    r->ok = ok;
    snprintf(r->message, sizeof(r->message), "%s", message);
    pthread_mutex_unlock(&rt->lock);
    wake(rt);
}

static void apply_results(struct corral_runtime *rt)
{
    for (size_t i = 0; i < rt->nresults; i++) {
        struct probe *pr = find_token(rt, rt->results[i].token);
        if (pr)
            probe_verdict(rt, pr, rt->results[i].ok, rt->results[i].message);
    }
    rt->nresults = 0;
}

static bool should_restart(const struct rpod *p, const struct ctr *c)
{
    if (c->no_restart || p->stopping)
        return false;
    if (c->sidecar)
        return true;
    if (c->init)
        return c->term.exit_code != 0 && p->policy != P_NEVER;
    return p->policy == P_ALWAYS || (p->policy == P_ON_FAILURE && c->term.exit_code != 0);
}

/* ---- stopping ------------------------------------------------------------------------------ */

static void send_sigterm(struct ctr *c)
{
    if (c->sigterm_sent || !c->have_proc)
        return;
    c->sigterm_sent = true;
    corral_proc_signal_group(&c->proc, SIGTERM);
}

/* Starts stopping c: preStop (if any, and not already run), then SIGTERM; SIGKILL at deadline. */
static void begin_kill(struct corral_runtime *rt, struct ctr *c, int64_t deadline, const char *why)
{
    if (!c->have_proc)
        return;
    if (c->killing) {
        if (deadline < c->kill_deadline_ms)
            c->kill_deadline_ms = deadline; /* a shorter grace wins, as in the kubelet */
        return;
    }
    c->killing = true;
    c->kill_deadline_ms = deadline;
    snprintf(c->kill_message, sizeof(c->kill_message), "%s", why ? why : "");
    if (why && (strncmp(why, "Liveness", 8) == 0 || strncmp(why, "Startup", 7) == 0))
        emit(rt, c->pod, c, "Normal", "Killing", "Container %s failed %s probe, will be restarted",
             c->name, why[0] == 'L' ? "liveness" : "startup");
    else if (why && *why)
        emit(rt, c->pod, c, "Normal", "Killing", "Stopping container %s: %s", c->name, why);
    else
        emit(rt, c->pod, c, "Normal", "Killing", "Stopping container %s", c->name);
    c->ready = false;
    if (c->pre_stop.type != PR_NONE && !c->pre_stop.done && deadline > now_ms()) {
        probe_start(rt, &c->pre_stop, now_ms());
        return;
    }
    send_sigterm(c);
}

static void kill_step(struct ctr *c, int64_t now)
{
    if (!c->killing || !c->have_proc)
        return;
    if (!c->sigterm_sent && (c->pre_stop.done || c->pre_stop.type == PR_NONE))
        send_sigterm(c);
    if (now >= c->kill_deadline_ms && !c->sigkill_sent) {
        send_sigterm(c);
        kill_leftovers(c);
        c->sigkill_sent = true;
    }
}

static bool pod_has_processes(const struct rpod *p)
{
    for (size_t i = 0; i < p->nctrs; i++) {
        const struct ctr *c = &p->ctrs[i];
        if (c->have_proc || c->startup.have_proc || c->liveness.have_proc ||
            c->readiness.have_proc || c->post_start.have_proc || c->pre_stop.have_proc)
            return true;
    }
    return false;
}

static void stop_pod(struct corral_runtime *rt, struct rpod *p, int grace_s)
{
    int64_t deadline = now_ms() + (int64_t)(grace_s < 0 ? p->grace_s : grace_s) * 1000;
    if (p->stopping && deadline >= p->grace_deadline_ms)
        return;
    p->stopping = true;
    p->grace_deadline_ms = deadline;
    for (size_t i = 0; i < p->nctrs; i++) {
        struct ctr *c = &p->ctrs[i];
        c->no_restart = true;
        if (c->state == C_WAITING && !c->have_proc)
            c->next_start_ms = NEVER;
        if (!c->sidecar) /* sidecars last: stop_step() */
            begin_kill(rt, c, deadline, NULL);
    }
}

/* ---- the reconcile step ------------------------------------------------------------------- */

/* A terminated container that will run again: back-off, then Waiting until then. */
static void plan_restart(struct corral_runtime *rt, struct ctr *c, int64_t now)
{
    int64_t ran = now - c->started_ms;
    if (ran >= 2 * rt->cfg.backoff_max_ms)
        c->backoff_ms = 0; /* it ran well for long enough: start over */
    c->last = c->term;
    c->next_start_ms = now + c->backoff_ms;
    int64_t next = c->backoff_ms ? c->backoff_ms * 2 : rt->cfg.backoff_initial_ms;
    c->backoff_ms = next > rt->cfg.backoff_max_ms ? rt->cfg.backoff_max_ms : next;
    c->restart_count++;
    char msg[200];
    fmt(msg, sizeof(msg), "back-off %llds restarting failed container=%s pod=%s_%s(%s)",
        (long long)((c->next_start_ms - now + 999) / 1000), c->name, c->pod->name, c->pod->ns,
        c->pod->uid);
    if (c->next_start_ms > now)
        set_waiting(c, "CrashLoopBackOff", msg);
    if (c->next_start_ms > now)
        emit(rt, c->pod, c, "Warning", "BackOff",
             "Back-off restarting failed container %s in pod "
             "%s_%s(%s)",
             c->name, c->pod->name, c->pod->ns, c->pod->uid);
    else
        set_waiting(c, "ContainerCreating", NULL);
}

/* Moves c along. Returns true when it is done for good (terminated, no restart). */
static bool step_container(struct corral_runtime *rt, struct ctr *c, int64_t now)
{
    if (c->state == C_TERMINATED && !c->have_proc) {
        if (!should_restart(c->pod, c))
            return true;
        plan_restart(rt, c, now);
    }
    if (c->state == C_WAITING && !c->have_proc && !c->pod->stopping && now >= c->next_start_ms)
        start_container(rt, c);
    if (c->state == C_RUNNING) {
        kill_step(c, now);
        struct probe *all[] = {&c->post_start, &c->startup, &c->liveness, &c->readiness};
        for (int k = 0; k < 4 && !c->killing; k++) {
            struct probe *pr = all[k];
            if (pr->in_flight && now >= pr->deadline_ms)
                probe_timeout(rt, pr);
            else if (!pr->in_flight && !pr->have_proc && !pr->done && pr->type &&
                     now >= pr->next_ms && (k == 0 || c->post_start.done))
                probe_start(rt, pr, now);
        }
        if (c->pre_stop.in_flight && now >= c->pre_stop.deadline_ms)
            probe_timeout(rt, &c->pre_stop);
        if (!c->readiness.type)
            c->ready = c->started && !c->killing;
    }
    return false;
}

static bool init_done(const struct ctr *c)
{
    return c->state == C_TERMINATED && c->term.exit_code == 0;
}

static enum phase compute_phase(const struct rpod *p)
{
    if (p->phase == PH_SUCCEEDED || p->phase == PH_FAILED)
        return p->phase;
    int sidecars = 0;
    for (size_t i = 0; i < p->ninit; i++) {
        const struct ctr *c = &p->ctrs[i];
        sidecars += c->sidecar && c->have_proc;
        if (c->sidecar && c->was_started)
            continue;
        if (!c->sidecar && c->state == C_TERMINATED && c->term.exit_code != 0 &&
            !should_restart(p, c) && !c->have_proc)
            return PH_FAILED;
        if (c->sidecar || !init_done(c))
            return p->stopping && !pod_has_processes(p) ? PH_FAILED : PH_PENDING;
    }
    int running = 0, waiting = 0, stopped = 0, succeeded = 0;
    for (size_t i = p->ninit; i < p->nctrs; i++) {
        const struct ctr *c = &p->ctrs[i];
        if (c->state == C_RUNNING || c->have_proc)
            running++;
        else if (c->state == C_TERMINATED) {
            stopped++;
            succeeded += c->term.exit_code == 0;
        } else if (c->last.set)
            stopped++;
        else
            waiting++;
    }
    if (p->stopping && running == 0 && sidecars == 0)
        return stopped == succeeded && waiting == 0 ? PH_SUCCEEDED : PH_FAILED;
    if (running == 0 && sidecars > 0)
        return PH_RUNNING; /* the sidecars are being stopped */
    if (waiting > 0)
        return PH_PENDING;
    if (running > 0)
        return PH_RUNNING;
    if (p->policy == P_ALWAYS)
        return PH_RUNNING;
    if (stopped == succeeded)
        return PH_SUCCEEDED;
    return p->policy == P_NEVER ? PH_FAILED : PH_RUNNING;
}

static void check_deadline(struct corral_runtime *rt, struct rpod *p, int64_t now)
{
    if (p->active_deadline_ms <= 0 || p->stopping || now < p->start_ms + p->active_deadline_ms)
        return;
    stop_pod(rt, p, -1);
    p->force_failed = true;
    snprintf(p->reason, sizeof(p->reason), "DeadlineExceeded");
    snprintf(p->message, sizeof(p->message),
             "Pod was active on the node longer than the specified deadline");
    emit(rt, p, NULL, "Warning", "DeadlineExceeded", "%s", p->message);
}

/*
 * Init containers, one at a time and in order; a sidecar (restartPolicy Always) only has to have
 * started before the next one goes, and keeps running beside the pod. Returns true once every
 * plain init container has succeeded and every sidecar has started.
 */
static bool run_init(struct corral_runtime *rt, struct rpod *p, int64_t now)
{
    for (size_t i = 0; i < p->ninit; i++) {
        struct ctr *c = &p->ctrs[i];
        if (c->sidecar) {
            step_container(rt, c, now);
            c->was_started |= c->state == C_RUNNING && c->started;
            if (!c->was_started)
                return false;
            continue;
        }
        if (init_done(c))
            continue;
        step_container(rt, c, now);
        return false;
    }
    return true;
}

static bool app_has_processes(const struct rpod *p)
{
    for (size_t i = 0; i < p->nctrs; i++)
        if (!p->ctrs[i].sidecar && p->ctrs[i].have_proc)
            return true;
    return false;
}

/* When the app containers are done for good, the sidecars are stopped (as in a Job). */
static void finish_sidecars(struct corral_runtime *rt, struct rpod *p, int64_t now)
{
    for (size_t i = p->ninit; i < p->nctrs; i++) {
        const struct ctr *c = &p->ctrs[i];
        if (c->state != C_TERMINATED || c->have_proc || should_restart(p, c))
            return;
    }
    for (size_t i = 0; i < p->ninit; i++) {
        struct ctr *c = &p->ctrs[i];
        if (!c->sidecar)
            continue;
        c->no_restart = true;
        begin_kill(rt, c, now + (int64_t)p->grace_s * 1000, NULL);
    }
}

/* A stopping (or finished) pod: kill steps; sidecars go once the other containers have. */
static void stop_step(struct corral_runtime *rt, struct rpod *p, int64_t now)
{
    bool others = app_has_processes(p);
    for (size_t i = 0; i < p->nctrs; i++) {
        struct ctr *c = &p->ctrs[i];
        if (c->sidecar && !others && c->have_proc && !c->killing)
            begin_kill(rt, c, p->stopping ? p->grace_deadline_ms : now, NULL);
        kill_step(c, now);
        if (c->pre_stop.in_flight && now >= c->pre_stop.deadline_ms)
            probe_timeout(rt, &c->pre_stop);
    }
}

static void reconcile(struct corral_runtime *rt, struct rpod *p, int64_t now)
{
    if (!p->admitted) {
        admit(rt, p);
        split_gpus(rt, p);
    }
    check_deadline(rt, p, now);
    bool terminal = p->phase == PH_SUCCEEDED || p->phase == PH_FAILED;
    if (terminal || p->stopping)
        stop_step(rt, p, now);
    else if (run_init(rt, p, now)) {
        for (size_t i = p->ninit; i < p->nctrs; i++)
            step_container(rt, &p->ctrs[i], now);
        finish_sidecars(rt, p, now);
    }
    enum phase before = p->phase;
    p->phase = compute_phase(p);
    if (p->phase == PH_SUCCEEDED && p->force_failed)
        p->phase = PH_FAILED;
    if ((p->phase == PH_SUCCEEDED || p->phase == PH_FAILED) && before != p->phase) {
        for (size_t i = 0; i < p->nctrs; i++)
            begin_kill(rt, &p->ctrs[i], now, NULL); /* nothing runs on in a finished pod */
        corral_gpu_release(&rt->gpus, p->uid, &p->gpus);
        memset(&p->gpus, 0, sizeof(p->gpus));
    }
}

/* ---- status --------------------------------------------------------------------------------- */

static json_t *term_json(const struct term_info *t)
{
    json_t *o = json_pack("{s:i, s:s, s:s, s:s, s:s}", "exitCode", t->exit_code, "reason",
                          t->reason, "startedAt", t->started, "finishedAt", t->finished,
                          "containerID", t->container_id);
    if (t->signal)
        json_object_set_new(o, "signal", json_integer(t->signal));
    if (t->message[0])
        json_object_set_new(o, "message", json_string(t->message));
    return o;
}

static json_t *ctr_status(const struct ctr *c)
{
    const char *image = json_string_value(json_object_get(c->spec, "image"));
    json_t *st = json_object(), *state;
    if (c->state == C_RUNNING || c->have_proc)
        state = json_pack("{s:{s:s}}", "running", "startedAt", c->started_at);
    else if (c->state == C_TERMINATED)
        state = json_pack("{s:o}", "terminated", term_json(&c->term));
    else if (c->message[0])
        state = json_pack("{s:{s:s, s:s}}", "waiting", "reason", c->reason, "message", c->message);
    else
        state = json_pack("{s:{s:s}}", "waiting", "reason", c->reason);
    json_object_set_new(st, "name", json_string(c->name));
    json_object_set_new(st, "state", state);
    json_object_set_new(st, "lastState",
                        c->last.set ? json_pack("{s:o}", "terminated", term_json(&c->last))
                                    : json_object());
    json_object_set_new(st, "ready", json_boolean(c->ready));
    json_object_set_new(st, "restartCount", json_integer(c->restart_count));
    json_object_set_new(st, "image", json_string(image ? image : ""));
    json_object_set_new(st, "imageID", json_string(""));
    if (c->ever_started) {
        char id[160];
        container_id(c, id, sizeof(id));
        json_object_set_new(st, "containerID", json_string(id));
    }
    if (!c->init || c->sidecar)
        json_object_set_new(st, "started", json_boolean(c->started && c->state == C_RUNNING));
    return st;
}

static const char *const cond_types[5] = {"PodReadyToStartContainers", "Initialized", "Ready",
                                          "ContainersReady", "PodScheduled"};

static void names_where(const struct rpod *p, bool init, bool (*pred)(const struct ctr *),
                        char *out, size_t len)
{
    size_t used = (size_t)snprintf(out, len, "[");
    bool first = true;
    for (size_t i = init ? 0 : p->ninit; i < (init ? p->ninit : p->nctrs) && used < len; i++) {
        if (!pred(&p->ctrs[i]))
            continue;
        used += (size_t)snprintf(out + used, len - used, "%s%s", first ? "" : " ", p->ctrs[i].name);
        first = false;
    }
    if (used < len)
        snprintf(out + used, len - used, "]");
}

static bool not_ready(const struct ctr *c)
{
    return !c->ready;
}

static bool not_initialized(const struct ctr *c)
{
    return c->sidecar ? !c->was_started : !init_done(c);
}

static json_t *condition(struct rpod *p, int k, bool status, const char *reason,
                         const char *message)
{
    if (p->cond_status[k] != (int)status) {
        p->cond_status[k] = status;
        now_rfc3339(p->cond_time[k]);
    }
    json_t *c = json_pack("{s:s, s:s, s:n, s:s}", "type", cond_types[k], "status",
                          status ? "True" : "False", "lastProbeTime", "lastTransitionTime",
                          p->cond_time[k]);
    if (reason)
        json_object_set_new(c, "reason", json_string(reason));
    if (message)
        json_object_set_new(c, "message", json_string(message));
    return c;
}

static json_t *conditions(struct rpod *p)
{
    bool terminal = p->phase == PH_SUCCEEDED || p->phase == PH_FAILED;
    bool initialized = true, ready = !terminal && p->nctrs > p->ninit;
    for (size_t i = 0; i < p->ninit; i++) {
        const struct ctr *c = &p->ctrs[i];
        initialized &= c->sidecar ? c->was_started : init_done(c);
        if (c->sidecar)
            ready &= c->ready;
    }
    for (size_t i = p->ninit; i < p->nctrs; i++)
        ready &= p->ctrs[i].ready;
    char names[600];
    json_t *arr = json_array();
    json_array_append_new(arr, condition(p, 0, p->admitted && !terminal, NULL, NULL));
    names_where(p, true, not_initialized, names, sizeof(names));
    json_array_append_new(arr,
                          condition(p, 1, initialized || terminal,
                                    initialized || terminal ? NULL : "ContainersNotInitialized",
                                    initialized || terminal ? NULL : names));
    names_where(p, false, not_ready, names, sizeof(names));
    const char *why = terminal ? "PodCompleted" : ready ? NULL : "ContainersNotReady";
    char msg[700];
    snprintf(msg, sizeof(msg), "containers with unready status: %s", names);
    json_array_append_new(arr, condition(p, 2, ready, why, ready || terminal ? NULL : msg));
    json_array_append_new(arr, condition(p, 3, ready, why, ready || terminal ? NULL : msg));
    /* PodScheduled is the scheduler's: carry it over as the API server has it */
    size_t i;
    const json_t *c;
    bool scheduled = false;
    json_array_foreach(json_object_get(json_object_get(p->pod, "status"), "conditions"), i, c)
    {
        const char *t = json_string_value(json_object_get(c, "type"));
        if (t && strcmp(t, "PodScheduled") == 0) {
            json_array_append(arr, (json_t *)c);
            scheduled = true;
        }
    }
    if (!scheduled) /* created with spec.nodeName: it is here, so it is scheduled */
        json_array_append_new(arr, json_pack("{s:s, s:s, s:n, s:s}", "type", "PodScheduled",
                                             "status", "True", "lastProbeTime",
                                             "lastTransitionTime", p->start_time));
    return arr;
}

static const char *qos_class(const struct rpod *p)
{
    bool any = false, guaranteed = true;
    for (size_t i = 0; i < p->nctrs; i++) {
        const json_t *r = json_object_get(p->ctrs[i].spec, "resources");
        const json_t *lim = json_object_get(r, "limits"), *req = json_object_get(r, "requests");
        static const char *const res[] = {"cpu", "memory"};
        for (int k = 0; k < 2; k++) {
            const json_t *l = json_object_get(lim, res[k]), *q = json_object_get(req, res[k]);
            any |= l || q;
            struct corral_quantity a, b;
            if (!l ||
                (q && (corral_quantity_from_json(l, &a) < 0 ||
                       corral_quantity_from_json(q, &b) < 0 || corral_quantity_cmp(&a, &b) != 0)))
                guaranteed = false;
        }
    }
    return !any ? "BestEffort" : guaranteed ? "Guaranteed" : "Burstable";
}

static json_t *build_status(struct corral_runtime *rt, struct rpod *p)
{
    static const char *const phases[] = {"Pending", "Running", "Succeeded", "Failed"};
    json_t *st = json_object();
    json_object_set_new(st, "phase", json_string(phases[p->phase]));
    json_object_set_new(st, "conditions", conditions(p));
    if (p->reason[0])
        json_object_set_new(st, "reason", json_string(p->reason));
    if (p->message[0])
        json_object_set_new(st, "message", json_string(p->message));
    json_object_set_new(st, "hostIP", json_string(rt->host_ip));
    json_object_set_new(st, "hostIPs", json_pack("[{s:s}]", "ip", rt->host_ip));
    json_object_set_new(st, "podIP", json_string(rt->host_ip));
    json_object_set_new(st, "podIPs", json_pack("[{s:s}]", "ip", rt->host_ip));
    if (p->start_time[0])
        json_object_set_new(st, "startTime", json_string(p->start_time));
    bool admitted_ok = !(p->phase == PH_FAILED && !p->ctrs[0].ever_started && p->reason[0] &&
                         strcmp(p->reason, "DeadlineExceeded") != 0);
    json_t *init = json_array(), *app = json_array();
    for (size_t i = 0; admitted_ok && i < p->nctrs; i++)
        json_array_append_new(i < p->ninit ? init : app, ctr_status(&p->ctrs[i]));
    if (p->ninit)
        json_object_set_new(st, "initContainerStatuses", init);
    else
        json_decref(init);
    json_object_set_new(st, "containerStatuses", app);
    json_object_set_new(st, "qosClass", json_string(qos_class(p)));
    return st;
}

static void report(struct corral_runtime *rt, struct rpod *p)
{
    json_t *st = build_status(rt, p);
    if (p->status && json_equal(p->status, st)) {
        json_decref(st);
    } else {
        json_decref(p->status);
        p->status = st;
        note(rt, p, NOTE_STATUS, json_incref(st));
    }
    if (p->stopping && !p->stopped_reported && !pod_has_processes(p)) {
        p->stopped_reported = true;
        note(rt, p, NOTE_STOPPED, NULL);
    }
}

/* ---- timers and events ------------------------------------------------------------------ */

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static int64_t ctr_deadline(const struct ctr *c)
{
    int64_t t = NEVER;
    if (c->state == C_WAITING && !c->have_proc && !c->pod->stopping)
        t = c->next_start_ms;
    if (c->killing && c->have_proc && !c->sigkill_sent)
        t = min64(t, c->kill_deadline_ms);
    if (c->state == C_TERMINATED && !c->have_proc && should_restart(c->pod, c))
        t = 0; /* plan the restart now */
    const struct probe *all[] = {&c->post_start, &c->startup, &c->liveness, &c->readiness,
                                 &c->pre_stop};
    for (int k = 0; k < 5; k++) {
        if (all[k]->in_flight)
            t = min64(t, all[k]->deadline_ms);
        else if (c->state == C_RUNNING && all[k]->type && !all[k]->done && k < 4)
            t = min64(t, all[k]->next_ms);
    }
    return t;
}

static int next_timeout(struct corral_runtime *rt)
{
    int64_t t = NEVER, now = now_ms();
    for (struct rpod *p = rt->pods; p; p = p->next) {
        if (!p->admitted)
            return 0;
        if (p->active_deadline_ms > 0 && !p->stopping)
            t = min64(t, p->start_ms + p->active_deadline_ms);
        for (size_t i = 0; i < p->nctrs; i++)
            t = min64(t, ctr_deadline(&p->ctrs[i]));
    }
    if (t == NEVER)
        return -1;
    return t <= now ? 0 : (int)min64(t - now, 60000);
}

static void dispatch(struct corral_runtime *rt, struct watch *w)
{
    uint64_t v;
    switch (w->kind) {
    case W_WAKE:
        if (read(rt->wakefd, &v, sizeof(v)) < 0 && errno != EAGAIN)
            corral_warn(SUBSYS, "wake: %s", strerror(errno));
        break;
    case W_EXIT:
        on_exit_event(rt, w->obj);
        break;
    case W_OUT:
    case W_ERR: {
        struct ctr *c = w->obj;
        int *fd = w->kind == W_OUT ? &c->out_fd : &c->err_fd;
        if (*fd >= 0 &&
            !pump(c, *fd, w->kind == W_OUT ? CORRAL_LOG_STDOUT : CORRAL_LOG_STDERR, false))
            close_pipe(rt, fd);
        break;
    }
    case W_PROBE_EXIT:
    case W_HOOK_EXIT:
        probe_on_exit(rt, w->obj);
        break;
    }
}

static bool anything_running(const struct corral_runtime *rt)
{
    for (const struct rpod *p = rt->pods; p; p = p->next)
        if (pod_has_processes(p))
            return true;
    return false;
}

static void *loop_main(void *arg)
{
    struct corral_runtime *rt = arg;
    struct epoll_event events[64];
    pthread_mutex_lock(&rt->lock);
    while (!rt->quit || anything_running(rt)) {
        int timeout = next_timeout(rt);
        pthread_mutex_unlock(&rt->lock);
        int n = epoll_wait(rt->epfd, events, 64, timeout);
        pthread_mutex_lock(&rt->lock);
        for (int i = 0; i < n; i++)
            dispatch(rt, events[i].data.ptr);
        apply_results(rt);
        int64_t now = now_ms();
        for (struct rpod *p = rt->pods; p; p = p->next) {
            reconcile(rt, p, now);
            report(rt, p);
        }
        deliver_notes(rt);
    }
    pthread_mutex_unlock(&rt->lock);
    return NULL;
}

/* ---- public ------------------------------------------------------------------------------ */

int corral_runtime_new(const struct corral_runtime_config *cfg, struct corral_runtime **out)
{
    struct corral_runtime *rt = calloc(1, sizeof(*rt));
    if (!rt)
        return -ENOMEM;
    rt->cfg = *cfg;
    rt->node_name = strdup(cfg->node_name ? cfg->node_name : "node");
    rt->state_dir = strdup(cfg->state_dir ? cfg->state_dir : ".");
    rt->host_ip = strdup(cfg->host_ip ? cfg->host_ip : "127.0.0.1");
    if (rt->cfg.backoff_initial_ms <= 0)
        rt->cfg.backoff_initial_ms = 10000;
    if (rt->cfg.backoff_max_ms < rt->cfg.backoff_initial_ms)
        rt->cfg.backoff_max_ms = rt->cfg.backoff_initial_ms;
    if (rt->cfg.log_max_bytes < 4096)
        rt->cfg.log_max_bytes = 10 * 1024 * 1024;
    if (rt->cfg.log_max_files < 1)
        rt->cfg.log_max_files = 5;
    corral_gpu_pool_init(&rt->gpus, cfg->topo);
    pthread_mutex_init(&rt->lock, NULL);
    rt->epfd = epoll_create1(EPOLL_CLOEXEC);
    rt->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    rt->w_wake = (struct watch){W_WAKE, rt};
    int rc = -ENOMEM;
    if (!rt->node_name || !rt->state_dir || !rt->host_ip || rt->epfd < 0 || rt->wakefd < 0)
        goto err_free;
    if ((rc = watch_fd(rt, rt->wakefd, &rt->w_wake)) < 0)
        goto err_free;
    if ((rc = corral_prober_new(on_prober_result, rt, &rt->prober)) < 0)
        goto err_free;
    if ((rc = -pthread_create(&rt->thread, NULL, loop_main, rt)) < 0)
        goto err_prober;
    *out = rt;
    return 0;

err_prober:
    corral_prober_free(rt->prober);
err_free:
    if (rt->epfd >= 0)
        close(rt->epfd);
    if (rt->wakefd >= 0)
        close(rt->wakefd);
    free(rt->node_name);
    free(rt->state_dir);
    free(rt->host_ip);
    free(rt);
    corral_error(SUBSYS, "cannot start the pod runtime: %s", strerror(-rc));
    return rc;
}

static void pod_free(struct rpod *p)
{
    for (size_t i = 0; i < p->nctrs; i++)
        corral_log_close(&p->ctrs[i].log);
    json_decref(p->pod);
    json_decref(p->sources);
    json_decref(p->status);
    free(p->ctrs);
    free(p);
}

void corral_runtime_free(struct corral_runtime *rt, int grace_s)
{
    if (!rt)
        return;
    pthread_mutex_lock(&rt->lock);
    rt->quit = true;
    for (struct rpod *p = rt->pods; p; p = p->next)
        stop_pod(rt, p, grace_s);
    pthread_mutex_unlock(&rt->lock);
    wake(rt);
    pthread_join(rt->thread, NULL);
    corral_prober_free(rt->prober);
    while (rt->pods) {
        struct rpod *p = rt->pods;
        rt->pods = p->next;
        pod_free(p);
    }
    while (rt->notes) {
        struct note *n = rt->notes;
        rt->notes = n->next;
        json_decref(n->obj);
        free(n);
    }
    close(rt->epfd);
    close(rt->wakefd);
    free(rt->results);
    pthread_mutex_destroy(&rt->lock);
    free(rt->node_name);
    free(rt->state_dir);
    free(rt->host_ip);
    free(rt);
}

static struct rpod *find_pod(struct corral_runtime *rt, const char *uid)
{
    for (struct rpod *p = rt->pods; p; p = p->next)
        if (strcmp(p->uid, uid) == 0)
            return p;
    return NULL;
}

static struct rpod *find_pod_name(struct corral_runtime *rt, const char *ns, const char *name)
{
    struct rpod *found = NULL;
    for (struct rpod *p = rt->pods; p; p = p->next) /* the newest incarnation wins */
        if (strcmp(p->ns, ns) == 0 && strcmp(p->name, name) == 0)
            found = p;
    return found;
}

static void update_pod(struct corral_runtime *rt, struct rpod *p, const json_t *pod,
                       const json_t *sources)
{
    if (sources) {
        json_decref(p->sources);
        p->sources = json_deep_copy(sources);
        for (size_t i = 0; i < p->nctrs; i++)
            if (strcmp(p->ctrs[i].reason, "CreateContainerConfigError") == 0)
                p->ctrs[i].next_start_ms = 0; /* try again now */
    }
    /* metadata and status change (annotations, deletion); the spec is immutable */
    json_t *md = json_object_get(pod, "metadata");
    json_object_set_new(p->pod, "metadata", json_deep_copy(md));
    json_t *status = json_object_get(pod, "status");
    if (status)
        json_object_set_new(p->pod, "status", json_deep_copy(status));
    if (json_object_get(md, "deletionTimestamp")) {
        int64_t grace = json_int_or(md, "deletionGracePeriodSeconds", p->grace_s);
        stop_pod(rt, p, (int)grace);
    }
}

int corral_runtime_sync_pod(struct corral_runtime *rt, const json_t *pod, const json_t *sources)
{
    const json_t *md = json_object_get(pod, "metadata");
    const char *uid = json_string_value(json_object_get(md, "uid"));
    if (!uid || !*uid || !json_string_value(json_object_get(md, "name")) || strlen(uid) >= 64)
        return -EINVAL;
    pthread_mutex_lock(&rt->lock);
    struct rpod *p = find_pod(rt, uid);
    int rc = 0;
    if (p) {
        update_pod(rt, p, pod, sources);
    } else if (rt->quit) {
        rc = -ESHUTDOWN;
    } else if ((p = pod_new(rt, pod))) {
        p->sources = sources ? json_deep_copy(sources) : NULL;
        p->next = rt->pods;
        rt->pods = p;
        if (json_object_get(md, "deletionTimestamp"))
            update_pod(rt, p, pod, NULL);
    } else {
        rc = -ENOMEM;
    }
    pthread_mutex_unlock(&rt->lock);
    wake(rt);
    return rc;
}

int corral_runtime_stop_pod(struct corral_runtime *rt, const char *uid, int grace_s)
{
    pthread_mutex_lock(&rt->lock);
    struct rpod *p = find_pod(rt, uid);
    if (p)
        stop_pod(rt, p, grace_s);
    pthread_mutex_unlock(&rt->lock);
    wake(rt);
    return p ? 0 : -ENOENT;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

int corral_runtime_remove_pod(struct corral_runtime *rt, const char *uid)
{
    pthread_mutex_lock(&rt->lock);
    struct rpod **pp = &rt->pods, *p = NULL;
    while (*pp && strcmp((*pp)->uid, uid) != 0)
        pp = &(*pp)->next;
    p = *pp;
    int rc = !p ? -ENOENT : pod_has_processes(p) ? -EBUSY : 0;
    if (rc == 0) {
        *pp = p->next;
        corral_gpu_release(&rt->gpus, p->uid, &p->gpus);
    }
    pthread_mutex_unlock(&rt->lock);
    if (rc == 0) {
        nftw(p->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        pod_free(p);
    }
    return rc;
}

json_t *corral_runtime_status(struct corral_runtime *rt, const char *uid)
{
    pthread_mutex_lock(&rt->lock);
    struct rpod *p = find_pod(rt, uid);
    json_t *st = p && p->status ? json_deep_copy(p->status) : NULL;
    pthread_mutex_unlock(&rt->lock);
    return st;
}

json_t *corral_runtime_pods(struct corral_runtime *rt)
{
    static const char *const phases[] = {"Pending", "Running", "Succeeded", "Failed"};
    json_t *arr = json_array();
    pthread_mutex_lock(&rt->lock);
    for (struct rpod *p = rt->pods; p; p = p->next)
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:b}", "namespace", p->ns,
                                             "name", p->name, "uid", p->uid, "phase",
                                             phases[p->phase], "stopping", p->stopping));
    pthread_mutex_unlock(&rt->lock);
    return arr;
}

static struct ctr *find_ctr(struct rpod *p, const char *container, char *err, size_t errlen)
{
    if (!container || !*container) {
        if (p->nctrs - p->ninit == 1)
            return &p->ctrs[p->ninit];
        snprintf(err, errlen, "a container name must be specified for pod %s, choose one of: [",
                 p->name);
        for (size_t i = p->ninit; i < p->nctrs; i++)
            snprintf(err + strlen(err), errlen - strlen(err), "%s%s", i > p->ninit ? " " : "",
                     p->ctrs[i].name);
        snprintf(err + strlen(err), errlen - strlen(err), "]");
        return NULL;
    }
    for (size_t i = 0; i < p->nctrs; i++)
        if (strcmp(p->ctrs[i].name, container) == 0)
            return &p->ctrs[i];
    snprintf(err, errlen, "container %s is not valid for pod %s", container, p->name);
    return NULL;
}

int corral_runtime_log_target(struct corral_runtime *rt, const char *ns, const char *name,
                              const char *container, bool previous, struct corral_log_target *out,
                              char *err, size_t errlen)
{
    pthread_mutex_lock(&rt->lock);
    int rc = 0;
    struct rpod *p = find_pod_name(rt, ns, name);
    struct ctr *c = p ? find_ctr(p, container, err, errlen) : NULL;
    if (!p) {
        snprintf(err, errlen, "pod %s/%s is not running on this node", ns, name);
        rc = -ENOENT;
    } else if (!c) {
        rc = container && *container ? -ENOENT : -EINVAL;
    } else {
        int run = c->restart_count - (previous ? 1 : 0);
        bool has_run = previous ? c->restart_count > 0 : c->ever_started;
        if (!has_run) {
            snprintf(err, errlen,
                     previous ? "previous terminated container \"%s\" in pod "
                                "\"%s\" not found"
                              : "container \"%s\" in pod \"%s\" is waiting to start",
                     c->name, p->name);
            rc = previous ? -ENOENT : -EAGAIN;
        } else {
            snprintf(out->path, sizeof(out->path), "%s/%s/%d.log", p->dir, c->name, run);
            out->max_files = rt->cfg.log_max_files;
            out->restart = run;
            out->running = !previous && c->have_proc;
        }
    }
    pthread_mutex_unlock(&rt->lock);
    return rc;
}

bool corral_runtime_log_running(struct corral_runtime *rt, const char *ns, const char *name,
                                const char *container, int restart)
{
    char err[256];
    pthread_mutex_lock(&rt->lock);
    struct rpod *p = find_pod_name(rt, ns, name);
    struct ctr *c = p ? find_ctr(p, container, err, sizeof(err)) : NULL;
    bool running =
        c && c->restart_count == restart && (c->have_proc || c->out_fd >= 0 || c->err_fd >= 0);
    pthread_mutex_unlock(&rt->lock);
    return running;
}

size_t corral_runtime_process_count(struct corral_runtime *rt)
{
    size_t n = 0;
    pthread_mutex_lock(&rt->lock);
    for (struct rpod *p = rt->pods; p; p = p->next)
        for (size_t i = 0; i < p->nctrs; i++) {
            const struct ctr *c = &p->ctrs[i];
            n += c->have_proc + c->startup.have_proc + c->liveness.have_proc +
                 c->readiness.have_proc + c->post_start.have_proc + c->pre_stop.have_proc;
        }
    pthread_mutex_unlock(&rt->lock);
    return n;
}
