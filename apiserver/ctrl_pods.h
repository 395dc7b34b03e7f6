/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctrl_pods: the pod index a controller keeps. Each pod is held as a small summary (what the
 * controllers decide on: owner, node, phase, readiness, deletion, labels, named ports,
 * tolerations) parsed once per store event, never per sync, so reconciling an owner of
 * thousands of pods reads no JSON. The index also groups pod keys by controller owner UID, by
 * node, and (for adoption) the pods without a controller by namespace.
 */
#ifndef CORRAL_CTRL_PODS_H
#define CORRAL_CTRL_PODS_H

#include "ctrl_map.h"
#include "store.h"

#include <jansson.h>
#include <stdbool.h>
#include <time.h>

#define CORRAL_JOB_TRACKING_FINALIZER "batch.kubernetes.io/job-tracking"
#define CORRAL_JOB_INDEX_KEY "batch.kubernetes.io/job-completion-index"

enum corral_pod_phase {
    CORRAL_POD_PENDING,
    CORRAL_POD_UNKNOWN,
    CORRAL_POD_RUNNING,
    CORRAL_POD_SUCCEEDED,
    CORRAL_POD_FAILED,
};

/* Optional fields of a summary: each controller keeps only what it reads. */
enum corral_ctrl_pod_fields {
    CORRAL_POD_LABELS = 1 << 0,      /* labels */
    CORRAL_POD_PORTS = 1 << 1,       /* named container ports */
    CORRAL_POD_TOLERATIONS = 1 << 2, /* tolerations */
    CORRAL_POD_ADDRESS = 1 << 3,     /* podIP, hostname, subdomain */
    CORRAL_POD_INDEX = 1 << 4,       /* completion_index (from the annotations) */
};

struct corral_ctrl_pod {
    char *key; /* "key\0ns\0name": ns and name point into this allocation */
    const char *ns, *name;
    char *uid;
    char *owner_uid;     /* controller ownerReference's uid, or NULL */
    char owner_kind[24]; /* its kind ("ReplicaSet", "Job"), "" when none */
    char *node;          /* spec.nodeName, or NULL */
    char *ip;            /* status.podIP, or NULL (CORRAL_POD_ADDRESS) */
    char *hostname;      /* spec.hostname, or NULL (CORRAL_POD_ADDRESS) */
    char *subdomain;     /* spec.subdomain, or NULL (CORRAL_POD_ADDRESS) */
    /* Shared, read-only values (identical ones are stored once per index): never modify. */
    json_t *labels;      /* an object, maybe empty (CORRAL_POD_LABELS; else NULL) */
    json_t *ports;       /* [{name, containerPort, protocol}] of named ports, or NULL */
    json_t *tolerations; /* spec.tolerations, or NULL */
    time_t created;
    time_t deleting; /* metadata.deletionTimestamp, 0 = not being deleted */
    long grace;      /* metadata.deletionGracePeriodSeconds */
    enum corral_pod_phase phase;
    bool ready;
    time_t ready_since;   /* the Ready condition's lastTransitionTime */
    int restarts;         /* sum of container restartCounts */
    bool job_tracking;    /* carries the Job tracking finalizer */
    bool on_failure;      /* restartPolicy OnFailure */
    int completion_index; /* job-completion-index annotation, -1 if none (CORRAL_POD_INDEX) */
};

/* Whether the index keeps a pod (a controller ignores pods it can never act on). */
typedef bool (*corral_ctrl_pod_keep_fn)(const struct corral_ctrl_pod *pod, void *ctx);

struct corral_ctrl_pods {
    struct corral_ctrl_map by_key;   /* key -> struct corral_ctrl_pod */
    struct corral_ctrl_map by_owner; /* controller uid -> set of keys */
    struct corral_ctrl_map by_node;  /* node name -> set of keys */
    struct corral_ctrl_map orphans;  /* namespace -> set of keys of pods without controller */
    struct corral_ctrl_map interned; /* compact JSON -> the shared json_t */
    unsigned fields;
    corral_ctrl_pod_keep_fn keep;
    void *keep_ctx;
    unsigned applies; /* since the last sweep of interned values */
};

/* fields: the optional fields to keep; keep (NULL = every pod) filters what is indexed. */
void corral_ctrl_pods_init(struct corral_ctrl_pods *p, unsigned fields,
                           corral_ctrl_pod_keep_fn keep, void *keep_ctx);
void corral_ctrl_pods_clear(struct corral_ctrl_pods *p);

/*
 * Applies a store event about a pod. Returns the new summary (borrowed; NULL when the pod is
 * gone, unreadable or not kept); *old receives the previous summary, detached from the index
 * (the caller frees it with corral_ctrl_pod_free), or NULL.
 */
struct corral_ctrl_pod *corral_ctrl_pods_apply(struct corral_ctrl_pods *p,
                                               const struct corral_store_event *ev,
                                               struct corral_ctrl_pod **old);

/* The summary of the pod at key (borrowed) or NULL. */
struct corral_ctrl_pod *corral_ctrl_pods_get(const struct corral_ctrl_pods *p, const char *key);

/*
 * Collects the summaries whose keys are in set (a corral_ctrl_map of keys; NULL = none) into
 * a malloc'd array (caller frees the array only). Returns the count, or -ENOMEM.
 */
long corral_ctrl_pods_collect(const struct corral_ctrl_pods *p, const struct corral_ctrl_map *set,
                              struct corral_ctrl_pod ***out);

void corral_ctrl_pod_free(struct corral_ctrl_pod *pod);

/* True when the pod's controller reference names kind (e.g. "ReplicaSet"). */
bool corral_ctrl_pod_owned_by(const struct corral_ctrl_pod *pod, const char *kind);
/* Not Succeeded/Failed and not being deleted. */
bool corral_ctrl_pod_active(const struct corral_ctrl_pod *pod);
/* Ready for at least min_ready seconds at now. */
bool corral_ctrl_pod_available(const struct corral_ctrl_pod *pod, long min_ready, time_t now);

/*
 * qsort comparator over struct corral_ctrl_pod *: the pod to delete first sorts first
 * (unscheduled before scheduled, Pending before Unknown before Running, not ready before
 * ready, ready for less time first, more restarts first, newer first), as Kubernetes ranks
 * them when scaling down.
 */
int corral_ctrl_pod_delete_order(const void *a, const void *b);

#endif
