/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctrl: what a built-in controller is, and what the runner (controllers.c) offers it.
 *
 * A controller is a table entry (struct corral_ctrl_def) and a state of its own. The runner
 * gives each controller one thread and drives it like this:
 *
 *   1. relist: reset(), then observe() every object under the controller's prefixes, read
 *      from the store in one pass (pods, for a controller that reads the shared pod index,
 *      from that index: the events then carry no value, see corral_ctrl_pod_change());
 *   2. forever: observe() each store event under those prefixes as it happens (the event
 *      carries the key, the new value and the previous one), and call sync(key) for every key
 *      that observe() or sync() put on the work queue, once it is due.
 *
 * observe() only updates the controller's indexes and enqueues the keys of the objects whose
 * state may have changed (an owner whose pod changed, a service whose pods changed); sync(key)
 * reconciles that one object, reading what it needs through the indexes and the store and
 * writing through corral_objects_* (never to the store directly). The queue holds each key once
 * however often it is enqueued, so a burst of events costs one sync. Before every sync the
 * runner observes every event already committed, so a sync always sees the controller's own
 * earlier writes. A sync that fails (returns < 0, e.g. a write conflict) is retried with
 * exponential back-off; every resync_s seconds resync() re-enqueues everything, and a watch
 * history that has been compacted past the runner triggers a full relist, so nothing is lost.
 *
 * Pods: the controllers that set `pods` in their definition read one pod index shared by all
 * of them (ctrl_pods.h) instead of each keeping its own. The runner keeps it up to date as they
 * observe pod events, and hands each observe() of a pod event the index's summaries of the pod
 * before and after it (corral_ctrl_pod_change()).
 *
 * Everything a controller owns is touched by its thread only; the only shared parts are the
 * store, the pod index, the server-internal write API and the Event recorder, all thread-safe.
 */
#ifndef CORRAL_CTRL_H
#define CORRAL_CTRL_H

#include "ctrl_pods.h"
#include "server.h"
#include "store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct corral_ctrl;

struct corral_ctrl_def {
    const char *name;      /* "replicaset" (logs, thread name) */
    const char *component; /* Event source: "replicaset-controller" */
    const char *prefixes[4];
    unsigned resync_s; /* 0 = never */
    bool pods;         /* reads the shared pod index (its prefixes name CORRAL_CTRL_POD_PREFIX) */
    /* Allocates the controller's state (corral_ctrl_set_state). Returns 0 or -errno. */
    int (*init)(struct corral_ctrl *c);
    /* Frees the state. */
    void (*fini)(struct corral_ctrl *c);
    /* Drops every index before a relist. */
    void (*reset)(struct corral_ctrl *c);
    /* One change under the prefixes (a relist delivers every object as ADDED). */
    void (*observe)(struct corral_ctrl *c, const struct corral_store_event *ev);
    /* Enqueues every key the controller manages. */
    void (*resync)(struct corral_ctrl *c);
    /* Reconciles key. Returns 0, or < 0 to be retried with back-off. */
    int (*sync)(struct corral_ctrl *c, const char *key);
    /* Optional: the relist is over (live events follow). */
    void (*relisted)(struct corral_ctrl *c);
};

/* The controllers the runner starts (defined in ctrl_*.c). */
extern const struct corral_ctrl_def corral_ctrl_replicaset;
extern const struct corral_ctrl_def corral_ctrl_deployment;
extern const struct corral_ctrl_def corral_ctrl_job;
extern const struct corral_ctrl_def corral_ctrl_endpoints;
extern const struct corral_ctrl_def corral_ctrl_nodelifecycle;
extern const struct corral_ctrl_def corral_ctrl_gc;

/* The server the controller runs in (borrowed). */
struct corral_apiserver *corral_ctrl_srv(struct corral_ctrl *c);
void *corral_ctrl_state(struct corral_ctrl *c);
void corral_ctrl_set_state(struct corral_ctrl *c, void *state);
const char *corral_ctrl_name(const struct corral_ctrl *c);

/*
 * Puts key on the work queue, due in delay_ms (0 = now). A key already queued keeps the
 * earlier of the two due times. Returns 0 or -ENOMEM.
 */
int corral_ctrl_enqueue(struct corral_ctrl *c, const char *key, unsigned delay_ms);

/*
 * Records a core/v1 Event about obj (borrowed: kind, apiVersion, namespace, name, uid and
 * resourceVersion are copied now). type is "Normal" or "Warning". Repeats of the same
 * (object, type, reason, message) within the recorder's memory bump count and lastTimestamp of
 * one Event instead of creating another. Never blocks on the store: Events are written by the
 * recorder thread; when its queue is full the Event is dropped with a warning.
 */
void corral_ctrl_event(struct corral_ctrl *c, const json_t *obj, const char *type,
                       const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* The pod index shared by the controllers (borrowed). */
struct corral_ctrl_pods *corral_ctrl_pod_index(struct corral_ctrl *c);

/*
 * In observe() of a pod event, for a controller with `pods` set: the summaries of the pod
 * before (*old; NULL when new) and after the event (*now; NULL once deleted), borrowed until
 * observe() returns. During a relist every pod comes as ADDED with *old NULL.
 */
void corral_ctrl_pod_change(struct corral_ctrl *c, const struct corral_ctrl_pod **old,
                            const struct corral_ctrl_pod **now);

/* Wall-clock seconds now (time(NULL)), the clock of Kubernetes timestamps. */
time_t corral_ctrl_now(void);

#endif
