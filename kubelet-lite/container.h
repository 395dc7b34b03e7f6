/* SPDX-License-Identifier: Apache-2.0 */
/*
 * container: turns a Pod's container spec into what the process runtime executes: argv,
 * the complete environment, the working directory and the cpu/memory limits.
 *
 * corral runs containers as host processes, not images, so `command` (plus `args`) names the
 * program; a container with only `args` runs args as the whole command line, and one with
 * neither is a configuration error. Environment follows Kubernetes: a small base (PATH, HOME,
 * HOSTNAME), then envFrom, then env (value / valueFrom fieldRef, resourceFieldRef,
 * configMapKeyRef, secretKeyRef) with $(VAR) expansion, then the GPU visibility variables,
 * which the pod cannot override (docs/gpus.md). The identity comes from securityContext
 * (runAsUser, runAsGroup, supplementalGroups, runAsNonRoot; the container's over the pod's).
 */
#ifndef CORRAL_KUBELET_CONTAINER_H
#define CORRAL_KUBELET_CONTAINER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* What the agent knows that the container spec refers to. All borrowed. */
struct corral_plan_context {
    const char *node_name;
    const char *host_ip;     /* the node's address (also the pod IP: host network) */
    const char *default_cwd; /* working directory when the spec has none */
    const char *gpu_visible; /* CUDA/NVIDIA_VISIBLE_DEVICES value, "" for none */
    const char *gpu_milli;   /* corral.io/assigned-gpu-milli, NULL when not shared */
    int64_t node_cpu_milli;  /* allocatable, for resourceFieldRef without a limit */
    int64_t node_memory_bytes;
    /* {"configmaps": {NAME: ConfigMap}, "secrets": {NAME: Secret}}: the objects the pod
     * refers to that the agent could fetch; a missing name means "not found". */
    const json_t *sources;
};

struct corral_container_plan {
    char **argv; /* NULL-terminated */
    char **envp; /* NULL-terminated, "NAME=value" */
    char *cwd;
    int64_t cpu_limit_milli;    /* 0: none */
    int64_t memory_limit_bytes; /* 0: none */
    int64_t cpu_request_milli;
    int64_t memory_request_bytes;
    int64_t uid;      /* securityContext.runAsUser, -1: the agent's own */
    int64_t gid;      /* runAsGroup, -1: unchanged (0 when only runAsUser is set) */
    unsigned ngroups; /* supplementalGroups */
    int64_t groups[32];
};

/*
 * Builds the plan for container (borrowed, an element of pod's containers or initContainers).
 * Returns 0 and fills *plan (free with corral_container_plan_free), or -EINVAL with the
 * reason in err, worded as the kubelet words CreateContainerConfigError messages
 * ("configmap \"cfg\" not found"), or -ENOMEM.
 */
int corral_container_plan(const json_t *pod, const json_t *container,
                          const struct corral_plan_context *ctx, struct corral_container_plan *plan,
                          char *err, size_t errlen);

void corral_container_plan_free(struct corral_container_plan *plan);

/*
 * The cpu (milli) and memory (bytes) a container requests: requests, else limits, else 0.
 * Returns 0 or -EINVAL for a malformed quantity.
 */
int corral_container_requests(const json_t *container, int64_t *cpu_milli, int64_t *memory);

/* The value of NAME in a plan's environment, or NULL. Borrowed. */
const char *corral_container_plan_getenv(const struct corral_container_plan *plan,
                                         const char *name);

/*
 * Expands $(VAR) references in s against env (a NULL-terminated "NAME=value" array) as
 * Kubernetes does: $$ is a literal $, unknown references stay as written. Caller frees.
 */
char *corral_container_expand(const char *s, char *const *env);

#endif
