/* SPDX-License-Identifier: Apache-2.0 */
/*
 * runtime: the pod runtime. Given Pod objects, it runs their containers as processes and
 * reports Pod status the way the kubelet does: phases, container states, restartPolicy with
 * exponential back-off, init containers and sidecars, startup/liveness/readiness probes (exec,
 * httpGet, tcpSocket), postStart/preStop hooks, graceful termination (SIGTERM to the process group,
 * grace period, SIGKILL), activeDeadlineSeconds, per-container logs with rotation, cgroup v2
 * limits where available, GPU visibility from the binding (docs/gpus.md), securityContext
 * users, and the kubelet's admission checks (pods, cpu and memory requests against allocatable:
 * OutOfpods, OutOfcpu, OutOfmemory).
 *
 * It knows nothing about the API server: the agent feeds it pods and forwards the statuses it
 * reports, which is what lets it be tested with real processes and no cluster.
 *
 * Threads: one loop thread (epoll over process pidfds, log pipes and timers) owns all state
 * behind a mutex; the public functions are thread-safe and return quickly. Callbacks run on
 * the loop thread with the lock released, so they may call back into the runtime.
 *
 * On disk: <state_dir>/pods/<namespace>_<name>_<uid>/<container>/<restartCount>.log (the
 * kubelet's layout) and <...>/work, the default working directory.
 */
#ifndef CORRAL_KUBELET_RUNTIME_H
#define CORRAL_KUBELET_RUNTIME_H

#include "cgroup.h"
#include "topology.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct corral_runtime_config {
    const char *node_name;
    const char *state_dir;
    const char *host_ip;                  /* pod and host IP (processes share the host network) */
    const struct corral_topology *topo;   /* borrowed; must outlive the runtime */
    const struct corral_cgroups *cgroups; /* borrowed; NULL: no cgroups */
    int64_t backoff_initial_ms;           /* restart back-off: first delay (Kubernetes: 10 s) */
    int64_t backoff_max_ms;               /* cap (Kubernetes: 5 min) */
    int64_t log_max_bytes;                /* per log file before rotation */
    int log_max_files;
    int64_t node_cpu_milli;    /* allocatable: admission and resourceFieldRef defaults */
    int64_t node_memory_bytes; /* (0: not checked at admission) */
    int max_pods;              /* pods admitted at once (0: not checked) */
    /* A pod's status changed. status is borrowed (json_incref to keep). */
    void (*on_status)(void *ctx, const char *ns, const char *name, const char *uid,
                      const json_t *status);
    /* A pod that was being stopped has no processes left. */
    void (*on_stopped)(void *ctx, const char *ns, const char *name, const char *uid);
    /* Something worth an Event happened: event is {"type": "Normal"|"Warning", "reason",
     * "message", "fieldPath" (when about a container)}; borrowed. */
    void (*on_event)(void *ctx, const char *ns, const char *name, const char *uid,
                     const json_t *event);
    void *ctx;
};

struct corral_runtime;

/* Starts the loop thread. Returns 0 and *out, or -errno with a logged reason. */
int corral_runtime_new(const struct corral_runtime_config *cfg, struct corral_runtime **out);

/*
 * Stops every pod (grace_s seconds of SIGTERM, then SIGKILL), waits for their processes,
 * stops the thread and frees rt.
 */
void corral_runtime_free(struct corral_runtime *rt, int grace_s);

/*
 * Adds pod (copied) or updates the pod with its metadata.uid. sources is
 * {"configmaps": {NAME: obj}, "secrets": {NAME: obj}} (copied; NULL: none) for env references;
 * passing it again with more objects lets a container that waited for them start. A pod with
 * metadata.deletionTimestamp is stopped with its deletionGracePeriodSeconds. Returns 0,
 * -EINVAL (no uid/name), -ENOMEM.
 */
int corral_runtime_sync_pod(struct corral_runtime *rt, const json_t *pod, const json_t *sources);

/*
 * Stops pod uid (deleted, or bound elsewhere): grace_s seconds (< 0: the pod's
 * terminationGracePeriodSeconds) then SIGKILL. on_stopped follows when nothing is left; the
 * pod is then forgotten. Returns 0 or -ENOENT.
 */
int corral_runtime_stop_pod(struct corral_runtime *rt, const char *uid, int grace_s);

/* Forgets a stopped pod and removes its files. Returns 0, -ENOENT, -EBUSY (still running). */
int corral_runtime_remove_pod(struct corral_runtime *rt, const char *uid);

/* The pod's current status (new reference), NULL when unknown. */
json_t *corral_runtime_status(struct corral_runtime *rt, const char *uid);

/* [{"namespace","name","uid","phase","stopping"}] for every pod known (new reference). */
json_t *corral_runtime_pods(struct corral_runtime *rt);

/* Where a container's log is, for the log server. */
struct corral_log_target {
    char path[1100];
    int max_files;
    bool running; /* the container is running now (following should go on) */
    int restart;  /* which run the log belongs to */
};

/*
 * Finds the log of container in pod ns/name (container NULL: the pod's only container),
 * the current run or, with previous, the one before. Returns 0, -ENOENT (no such pod or
 * container, or no previous run), -EINVAL (container needed: the pod has several).
 */
int corral_runtime_log_target(struct corral_runtime *rt, const char *ns, const char *name,
                              const char *container, bool previous, struct corral_log_target *out,
                              char *err, size_t errlen);

/* Whether run `restart` of the container is still running (for `logs -f`). */
bool corral_runtime_log_running(struct corral_runtime *rt, const char *ns, const char *name,
                                const char *container, int restart);

/* Number of processes the runtime supervises (containers, probes, hooks). */
size_t corral_runtime_process_count(struct corral_runtime *rt);

#endif
