/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pod: the scheduler's view of a Pod. corral_pod_new() reads a Pod object once: its effective
 * requests (as Kubernetes computes them: max of init containers and the sum of containers,
 * plus overhead; requests default to limits), the GPU request per docs/gpus.md, its priority,
 * and a signature: the canonical JSON of everything a node-local plugin may read (namespace,
 * labels, annotations, spec without nodeName). Pods with equal signatures are scheduled
 * identically by node-local plugins, which lets the framework reuse their results.
 *
 * struct corral_pod is opaque to plugins (include/corral/plugin.h); the scheduler's own files
 * read its fields directly. Placement fields are written only by the snapshot.
 */
#ifndef CORRAL_SCHED_POD_H
#define CORRAL_SCHED_POD_H

#include "corral/plugin.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum corral_pod_state {
    CORRAL_POD_NEW = 0,
    CORRAL_POD_GATED,    /* PreEnqueue said not yet */
    CORRAL_POD_QUEUED,
    CORRAL_POD_WAITING,  /* reserved, waiting in Permit */
    CORRAL_POD_BOUND,
    CORRAL_POD_FAILED,   /* unschedulable (simulation: final) */
};

struct corral_pod_ext {
    char *name;
    int64_t value;
};

struct corral_pod {
    json_t *obj; /* owned reference */
    const char *name, *ns, *uid, *scheduler_name; /* borrowed from obj */
    json_t *labels, *annotations;                 /* borrowed, may be NULL */
    int64_t req[CORRAL_RES_COUNT];
    struct corral_pod_ext *ext;
    uint32_t n_ext;
    int32_t priority;
    bool host_ports; /* some container or init container asks for a hostPort */
    uint64_t seq;

    /* Placement (snapshot-owned): node, GPU positions and share per GPU. */
    uint32_t node;
    uint32_t node_pos; /* index in the node's pod list */
    uint64_t gpus;
    int32_t gpu_milli;

    char *sig; /* canonical signature (owned) */
    size_t sig_len;
    uint64_t sig_hash;

    enum corral_pod_state state;
    char *message; /* last scheduling message (owned) */
    int attempts;
    uint32_t nominated; /* node nominated by preemption, CORRAL_NO_NODE when none */
    uint32_t qpos;      /* position in the framework's queue heap while queued */
    uint64_t permit_deadline_ms;
    uint64_t permit_pending; /* bitmask of permit plugin slots still waiting */
    int profile;             /* index of the profile scheduling it, -1 when none */
};

/*
 * Builds a pod from a Pod object (steals the reference to obj, also on failure). Returns 0 and
 * *out (free with corral_pod_free), or CORRAL_EINVALID with a message in err naming the bad
 * field, or -ENOMEM.
 */
int corral_pod_new(json_t *obj, struct corral_pod **out, char *err, size_t errlen);
void corral_pod_free(struct corral_pod *pod);

/* True when the pod asks for any GPU (whole or shared). */
bool corral_pod_wants_gpu(const struct corral_pod *pod);

/* Total GPU demand in milli (whole GPUs x 1000, or the share). */
int64_t corral_pod_gpu_demand(const struct corral_pod *pod);

/* Sets pod->message to a copy of msg (NULL clears). Returns 0 or -ENOMEM. */
int corral_pod_set_message(struct corral_pod *pod, const char *msg);

/* 64-bit FNV-1a of buf; used for signatures and the name index. */
uint64_t corral_pod_hash(const void *buf, size_t len);

#endif
