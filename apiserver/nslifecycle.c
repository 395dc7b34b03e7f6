/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nslifecycle: namespace teardown (see nslifecycle.h).
 *
 * One thread and a queue of namespace names, each with the time its next sweep is due; the
 * queue lives under one mutex and a condition variable wakes the thread when a name is added
 * or the server stops. A sweep deletes every object left in the namespace (through
 * corral_objects_delete, so hooks and finalizers apply) and comes back RETRY_MS later until
 * nothing is left; then it drops the "kubernetes" finalizer, and the update deletes the
 * namespace. Sweeps run without the mutex held.
 */
#include "nslifecycle.h"
#include "error.h"
#include "log.h"
#include "meta.h"
#include "objects.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETRY_MS 200

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER; /* waits on CLOCK_REALTIME */
static json_t *queue;                                  /* name -> due time (ms, CLOCK_MONOTONIC) */
static pthread_t thread;
static bool running, stopping;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Queues name due at due_ms unless it is queued earlier already. Call with lock held. */
static void enqueue_locked(const char *name, int64_t due_ms)
{
    if (!queue)
        queue = json_object();
    json_t *cur = json_object_get(queue, name);
    if (cur && json_integer_value(cur) <= due_ms)
        return;
    json_object_set_new(queue, name, json_integer(due_ms));
    pthread_cond_signal(&wake);
}

void corral_nslifecycle_terminate(const char *name)
{
    pthread_mutex_lock(&lock);
    enqueue_locked(name, now_ms() + CORRAL_NS_SWEEP_DELAY_MS);
    pthread_mutex_unlock(&lock);
}

/* ---- one sweep ---- */

struct sweep {
    struct corral_apiserver *srv;
    const char *ns;
    size_t left; /* objects seen in the namespace */
};

static void sweep_kind(const struct corral_resource *res, void *ctx)
{
    struct sweep *sw = ctx;
    if (!res->namespaced || !res->stored)
        return;
    char prefix[1024];
    if (!corral_resource_key(res, sw->ns, NULL, prefix, sizeof(prefix)))
        return;
    struct corral_store_list_opts opts = {.prefix = prefix};
    struct corral_store_list l = {0};
    if (corral_store_list(sw->srv->store, &opts, &l) < 0) {
        sw->left++; /* try again later */
        return;
    }
    for (size_t i = 0; i < l.n; i++) {
        json_t *obj = corral_blob_json(l.items[i]);
        if (obj && !json_object_get(corral_meta_get(obj, false), "deletionTimestamp"))
            corral_objects_delete(sw->srv, res, sw->ns, corral_meta_name(obj));
        json_decref(obj);
        sw->left++;
    }
    corral_store_list_clear(&l);
}

/* Drops the "kubernetes" finalizer of a Terminating namespace. Returns 0 or an error. */
static int finalize(struct corral_apiserver *srv, const struct corral_resource *nsres, json_t *ns)
{
    json_t *fins = json_object_get(json_object_get(ns, "spec"), "finalizers");
    for (size_t i = json_array_size(fins); i-- > 0;) {
        const char *f = json_string_value(json_array_get(fins, i));
        if (f && strcmp(f, "kubernetes") == 0)
            json_array_remove(fins, i);
    }
    return corral_objects_update(srv, nsres, json_incref(ns), false, NULL);
}

/* Returns true when the namespace is gone or needs nothing more; false to come back. */
static bool sweep_namespace(struct corral_apiserver *srv, const char *name)
{
    const struct corral_resource *nsres = corral_resource_find("", "v1", "namespaces");
    json_t *ns = NULL;
    if (corral_objects_get(srv, nsres, NULL, name, &ns) < 0)
        return true;
    bool done = true;
    if (json_object_get(corral_meta_get(ns, false), "deletionTimestamp")) {
        struct sweep sw = {srv, name, 0};
        corral_resources_foreach(sweep_kind, &sw);
        done = sw.left == 0 && finalize(srv, nsres, ns) == 0;
        if (sw.left == 0 && !done)
            corral_warn("namespaces", "cannot finish deleting namespace %s; retrying", name);
    }
    json_decref(ns);
    return done;
}

/* ---- the thread ---- */

/* The queued name due first, copied into buf; returns its due time, or -1 if none. */
static int64_t next_locked(char *buf, size_t len)
{
    int64_t best = -1;
    const char *k;
    json_t *v;
    json_object_foreach(queue, k, v)
    {
        if (best < 0 || json_integer_value(v) < best) {
            best = json_integer_value(v);
            snprintf(buf, len, "%s", k);
        }
    }
    return best;
}

static void wait_until_locked(int64_t due_ms)
{
    if (due_ms < 0) {
        pthread_cond_wait(&wake, &lock);
        return;
    }
    int64_t delay = due_ms - now_ms();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ns = (int64_t)ts.tv_nsec + (delay > 0 ? delay : 0) * 1000000;
    ts.tv_sec += (time_t)(ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    pthread_cond_timedwait(&wake, &lock, &ts);
}

static void *run(void *arg)
{
    struct corral_apiserver *srv = arg;
    char name[256];
    pthread_mutex_lock(&lock);
    while (!stopping) {
        int64_t due = next_locked(name, sizeof(name));
        if (due < 0 || due > now_ms()) {
            wait_until_locked(due);
            continue;
        }
        json_object_del(queue, name);
        pthread_mutex_unlock(&lock);
        bool done = sweep_namespace(srv, name);
        pthread_mutex_lock(&lock);
        if (!done)
            enqueue_locked(name, now_ms() + RETRY_MS);
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

static void queue_terminating(struct corral_apiserver *srv)
{
    const struct corral_resource *nsres = corral_resource_find("", "v1", "namespaces");
    char prefix[256];
    corral_resource_key(nsres, NULL, NULL, prefix, sizeof(prefix));
    struct corral_store_list_opts opts = {.prefix = prefix};
    struct corral_store_list l = {0};
    if (corral_store_list(srv->store, &opts, &l) < 0)
        return;
    for (size_t i = 0; i < l.n; i++) {
        json_t *ns = corral_blob_json(l.items[i]);
        if (ns && json_object_get(corral_meta_get(ns, false), "deletionTimestamp"))
            corral_nslifecycle_terminate(corral_meta_name(ns));
        json_decref(ns);
    }
    corral_store_list_clear(&l);
}

int corral_nslifecycle_start(struct corral_apiserver *srv)
{
    stopping = false;
    int rc = pthread_create(&thread, NULL, run, srv);
    if (rc != 0)
        return -rc;
    running = true;
    queue_terminating(srv);
    return 0;
}

void corral_nslifecycle_stop(void)
{
    if (!running)
        return;
    pthread_mutex_lock(&lock);
    stopping = true;
    pthread_cond_signal(&wake);
    pthread_mutex_unlock(&lock);
    pthread_join(thread, NULL);
    running = false;
    pthread_mutex_lock(&lock);
    json_decref(queue);
    queue = NULL;
    pthread_mutex_unlock(&lock);
}
