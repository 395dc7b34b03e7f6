/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctrl_pods: the one pod index every built-in controller reads (ReplicaSet, Job, node
 * lifecycle, Endpoints). Each pod is held once, as a small immutable summary of what those
 * controllers decide on (owner, node, phase, readiness, deletion, labels, named ports,
 * tolerations, addresses) parsed once per store event, never per sync and never per
 * controller, so reconciling an owner of thousands of pods reads no JSON. The index groups the
 * pods by controller owner UID (those without a controller by namespace, for adoption), by node
 * and by namespace.
 *
 * Who updates it: the controller runner (controllers.c), in the thread of whichever controller
 * first observes a pod event, in revision order (every controller that uses the index observes
 * every pod event in order, so the first to reach an event finds every earlier one applied).
 * Each applied change is also kept in a ring of recent changes, so that the controllers behind
 * get the same (old, new) pair of summaries for the event without parsing it again; one that
 * fell further behind than the ring reads the pair from the event itself. A controller that
 * (re)lists brings the index up to its list revision from the store's watch history, or
 * reloads it from a list when the history no longer reaches back.
 *
 * So the index may be ahead of what a controller has observed so far (as a shared informer's
 * cache is in Kubernetes); it is never behind it. Controllers are level-triggered: reading a
 * newer state in a sync is fine, and the event that made it arrives at their observe() soon
 * after.
 *
 * Thread-safe. Summaries are reference-counted and never change once made: readers get new
 * references (release them with corral_ctrl_pod_unref / corral_ctrl_pods_release) and may use
 * them after the index has moved on.
 */
#ifndef CORRAL_CTRL_PODS_H
#define CORRAL_CTRL_PODS_H

#include "store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define CORRAL_JOB_TRACKING_FINALIZER "batch.kubernetes.io/job-tracking"
#define CORRAL_JOB_INDEX_KEY "batch.kubernetes.io/job-completion-index"
#define CORRAL_CTRL_POD_PREFIX "/registry/pods/"

enum corral_pod_phase {
    CORRAL_POD_PENDING,
    CORRAL_POD_UNKNOWN,
    CORRAL_POD_RUNNING,
    CORRAL_POD_SUCCEEDED,
    CORRAL_POD_FAILED,
};

struct corral_ctrl_pod_links {
    struct corral_ctrl_pod *prev, *next;
};

struct corral_ctrl_pod {
    int refs; /* atomic */
    /* Strings: one allocation with the summary; NULL when absent. */
    const char *key, *ns, *name;
    const char *uid;        /* "" when absent */
    const char *owner_uid;  /* the controller ownerReference's uid, or NULL */
    const char *owner_kind; /* its kind ("ReplicaSet", "Job"), "" when none */
    const char *node;       /* spec.nodeName */
    const char *ip;         /* status.podIP */
    const char *hostname;   /* spec.hostname */
    const char *subdomain;  /* spec.subdomain */
    /* Interned, read-only values (identical ones are stored once): never modify. */
    json_t *labels;      /* an object, maybe empty */
    json_t *ports;       /* [{name, containerPort, protocol}] of named ports, or NULL */
    json_t *tolerations; /* spec.tolerations, or NULL */
    /* A Failed pod's facts a Job's podFailurePolicy reads, or NULL for every other pod:
     * {"exitCodes": [{"container", "exitCode"}] of terminated containers (init ones too),
     *  "conditions": [{"type", "status"}]} */
    json_t *failure;
    time_t created;
    time_t deleting; /* metadata.deletionTimestamp, 0 = not being deleted */
    time_t ready_since; /* the Ready condition's lastTransitionTime */
    int32_t grace;      /* metadata.deletionGracePeriodSeconds */
    int32_t restarts;   /* sum of container restartCounts */
    int32_t completion_index; /* job-completion-index annotation, -1 if none */
    uint8_t phase;            /* enum corral_pod_phase */
    bool ready;
    bool job_tracking; /* carries the Job tracking finalizer */
    bool on_failure;   /* restartPolicy OnFailure */
    /* The index's own, changed and read under its lock while the pod is in it. */
    uint32_t hash;
    struct corral_ctrl_pod_links group; /* owner's pods, or the namespace's orphans */
    struct corral_ctrl_pod_links by_node;
    struct corral_ctrl_pod_links by_ns;
    char str[];
};

struct corral_ctrl_pods;

/* Returns a new, empty index in *out (revision 0). 0 or -ENOMEM. */
int corral_ctrl_pods_new(struct corral_ctrl_pods **out);
/* Frees the index (summaries still referenced elsewhere live on). */
void corral_ctrl_pods_free(struct corral_ctrl_pods *p);

/* ---- for the runner ---- */

/*
 * The change a pod event made: applies ev to the index when it is newer than the index, else
 * takes the pair from the recent changes, else reads it from ev. Sets *old (the summary before;
 * NULL for a new pod) and *now (after; NULL once deleted or unreadable) to new references.
 * Returns 0 or -ENOMEM (both NULL then).
 */
int corral_ctrl_pods_change(struct corral_ctrl_pods *p, const struct corral_store_event *ev,
                            struct corral_ctrl_pod **old, struct corral_ctrl_pod **now);

/*
 * Brings the index up to revision rev at least: applies the pod events after the index's
 * revision from st's watch history, or reloads every pod from st when the history no longer
 * reaches back. Returns 0, or an error from the store (the index is then unchanged).
 */
int corral_ctrl_pods_catch_up(struct corral_ctrl_pods *p, struct corral_store *st, int64_t rev);

/* Empties the index (revision 0), e.g. while no controller runs here. */
void corral_ctrl_pods_drop(struct corral_ctrl_pods *p);

/* ---- for the controllers: each returns new references ---- */

/* The summary of the pod at key, or NULL. */
struct corral_ctrl_pod *corral_ctrl_pods_get(struct corral_ctrl_pods *p, const char *key);

/*
 * The pods whose controller is uid, the pods of namespace ns without a controller, the pods on
 * node, the pods of namespace ns, or every pod: a malloc'd array in *out (release it with
 * corral_ctrl_pods_release). Returns the count or -ENOMEM.
 */
long corral_ctrl_pods_owned(struct corral_ctrl_pods *p, const char *uid,
                            struct corral_ctrl_pod ***out);
long corral_ctrl_pods_orphans(struct corral_ctrl_pods *p, const char *ns,
                              struct corral_ctrl_pod ***out);
long corral_ctrl_pods_on_node(struct corral_ctrl_pods *p, const char *node,
                              struct corral_ctrl_pod ***out);
long corral_ctrl_pods_in_ns(struct corral_ctrl_pods *p, const char *ns,
                            struct corral_ctrl_pod ***out);
long corral_ctrl_pods_all(struct corral_ctrl_pods *p, struct corral_ctrl_pod ***out);

/* Releases the n references of pods and frees the array (n <= 0: the array only). */
void corral_ctrl_pods_release(struct corral_ctrl_pod **pods, long n);

struct corral_ctrl_pod *corral_ctrl_pod_ref(struct corral_ctrl_pod *pod);
void corral_ctrl_pod_unref(struct corral_ctrl_pod *pod);

struct corral_ctrl_pods_stats {
    uint64_t pods;
    uint64_t bytes; /* summaries and their strings, as allocated */
    uint64_t interned;
    int64_t rev;
};

void corral_ctrl_pods_stats(struct corral_ctrl_pods *p, struct corral_ctrl_pods_stats *out);

/* ---- on summaries ---- */

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
