/* SPDX-License-Identifier: Apache-2.0 */
/*
 * controllers: the control-loop runner (see ctrl.h for the contract with each controller).
 *
 * One thread per controller. The thread follows the store's event stream from one cursor
 * (all of "/registry/", filtered by the controller's prefixes, so a single blocking wait covers
 * every kind it follows), hands each event to observe(), and runs sync() for the keys on its
 * work queue as they fall due. The queue is a set of keys (each queued once) ordered by due
 * time in a binary heap; failed syncs come back after an exponential back-off (50 ms doubling
 * to 30 s). Events are always drained before a sync, so a sync sees every write committed
 * before it started, its controller's own included. If the cursor falls out of the store's
 * watch history (410 Gone), the controller relists everything.
 *
 * The controllers that read pods share one pod index (ctrl_pods.h): before such a controller
 * observes a pod event, the runner applies the event to the index (unless another controller
 * already did) and hands observe() the index's summaries of the pod before and after it; a
 * relist first brings the index up to the relist's revision and then feeds the pods from it.
 * While no controller leads here, the index is dropped.
 *
 * The Event recorder (ctrl_events.c) is started with the controllers and stopped after them.
 * When several apiservers share the store, the controllers run only in the one that holds the
 * leader Lease (ctrl_leader.c): the others idle, and a runner that sees the term change drops
 * its queue and indexes and relists. The table of controllers is at the top.
 */
#include "controllers.h"
#include "ctrl.h"
#include "ctrl_events.h"
#include "ctrl_leader.h"
#include "ctrl_map.h"
#include "error.h"
#include "log.h"
#include "meta.h"
#include "server.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EVENT_BATCH 64
#define MAX_WAIT_MS 250
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 30000

struct qitem {
    char *key;
    uint64_t due;
    size_t pos; /* index in the heap */
};

struct corral_ctrl {
    const struct corral_ctrl_def *def;
    struct corral_apiserver *srv;
    struct corral_controllers *all;
    void *state;
    pthread_t thread;
    bool started;
    int64_t cursor;
    struct corral_ctrl_map queued; /* key -> struct qitem */
    struct qitem **heap;
    size_t nheap, capheap;
    struct corral_ctrl_map failures; /* key -> (uintptr_t) consecutive failures */
    uint64_t next_resync;
    uint64_t term; /* leadership term the indexes were built in; 0 = idle */
    struct corral_ctrl_pod *pod_old, *pod_now; /* the pod change being observed (references) */
};

struct corral_controllers {
    struct corral_ctrl *ctrls;
    size_t n;
    atomic_bool stop;
    struct corral_ctrl_recorder *recorder;
    struct corral_ctrl_leader *leader;
    struct corral_ctrl_pods *pods; /* the shared pod index */
    pthread_mutex_t lead_mu;
    unsigned leading; /* controllers acting (in a term); the index is dropped at 0 */
};

static const struct corral_ctrl_def *const controller_table[] = {
    &corral_ctrl_replicaset,
    &corral_ctrl_deployment,
    &corral_ctrl_job,
    &corral_ctrl_endpoints,
    &corral_ctrl_nodelifecycle,
    &corral_ctrl_gc,
    NULL,
};

/* ---- accessors for controllers ---- */

struct corral_apiserver *corral_ctrl_srv(struct corral_ctrl *c)
{
    return c->srv;
}

void *corral_ctrl_state(struct corral_ctrl *c)
{
    return c->state;
}

void corral_ctrl_set_state(struct corral_ctrl *c, void *state)
{
    c->state = state;
}

const char *corral_ctrl_name(const struct corral_ctrl *c)
{
    return c->def->name;
}

time_t corral_ctrl_now(void)
{
    return time(NULL);
}

struct corral_ctrl_pods *corral_ctrl_pod_index(struct corral_ctrl *c)
{
    return c->all->pods;
}

void corral_ctrl_pod_change(struct corral_ctrl *c, const struct corral_ctrl_pod **old,
                            const struct corral_ctrl_pod **now)
{
    *old = c->pod_old;
    *now = c->pod_now;
}

static bool is_pod(const char *key)
{
    return strncmp(key, CORRAL_CTRL_POD_PREFIX, strlen(CORRAL_CTRL_POD_PREFIX)) == 0;
}

/* Observes ev; a pod event of a controller that reads the index comes with its change. */
static void observe(struct corral_ctrl *c, const struct corral_store_event *ev)
{
    if (c->def->pods && is_pod(ev->key) &&
        corral_ctrl_pods_change(c->all->pods, ev, &c->pod_old, &c->pod_now) < 0)
        corral_warn("controllers", "%s: no memory for the change of %s", c->def->name, ev->key);
    c->def->observe(c, ev);
    corral_ctrl_pod_unref(c->pod_old);
    corral_ctrl_pod_unref(c->pod_now);
    c->pod_old = c->pod_now = NULL;
}

void corral_ctrl_event(struct corral_ctrl *c, const json_t *obj, const char *type,
                       const char *reason, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    corral_ctrl_recorder_post(c->all->recorder, c->def->component, obj, type, reason, msg);
}

/* ---- the work queue: a min-heap on due time plus a key -> item map ---- */

static void heap_swap(struct corral_ctrl *c, size_t a, size_t b)
{
    struct qitem *t = c->heap[a];
    c->heap[a] = c->heap[b];
    c->heap[b] = t;
    c->heap[a]->pos = a;
    c->heap[b]->pos = b;
}

static void heap_up(struct corral_ctrl *c, size_t i)
{
    while (i > 0 && c->heap[(i - 1) / 2]->due > c->heap[i]->due) {
        heap_swap(c, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(struct corral_ctrl *c, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < c->nheap && c->heap[l]->due < c->heap[m]->due)
            m = l;
        if (r < c->nheap && c->heap[r]->due < c->heap[m]->due)
            m = r;
        if (m == i)
            return;
        heap_swap(c, i, m);
        i = m;
    }
}

static int enqueue_at(struct corral_ctrl *c, const char *key, uint64_t due)
{
    struct qitem *it = corral_ctrl_map_get(&c->queued, key);
    if (it) {
        if (due < it->due) {
            it->due = due;
            heap_up(c, it->pos);
        }
        return 0;
    }
    if (c->nheap == c->capheap) {
        size_t cap = c->capheap ? c->capheap * 2 : 64;
        struct qitem **h = realloc(c->heap, cap * sizeof(*h));
        if (!h)
            return -ENOMEM;
        c->heap = h;
        c->capheap = cap;
    }
    it = calloc(1, sizeof(*it));
    if (!it || !(it->key = strdup(key)) || corral_ctrl_map_put(&c->queued, key, it) == it) {
        if (it)
            free(it->key);
        free(it);
        return -ENOMEM;
    }
    it->due = due;
    it->pos = c->nheap;
    c->heap[c->nheap++] = it;
    heap_up(c, it->pos);
    return 0;
}

int corral_ctrl_enqueue(struct corral_ctrl *c, const char *key, unsigned delay_ms)
{
    return enqueue_at(c, key, corral_now_ns() + (uint64_t)delay_ms * 1000000ull);
}

/* Removes and returns the first item (caller frees it and its key). */
static struct qitem *dequeue(struct corral_ctrl *c)
{
    struct qitem *it = c->heap[0];
    c->heap[0] = c->heap[--c->nheap];
    c->heap[0]->pos = 0;
    heap_down(c, 0);
    corral_ctrl_map_del(&c->queued, it->key);
    return it;
}

static void queue_clear(struct corral_ctrl *c)
{
    for (size_t i = 0; i < c->nheap; i++) {
        free(c->heap[i]->key);
        free(c->heap[i]);
    }
    free(c->heap);
    c->heap = NULL;
    c->nheap = c->capheap = 0;
    corral_ctrl_map_clear(&c->queued, NULL);
    corral_ctrl_map_clear(&c->failures, NULL);
}

/* ---- the loop ---- */

static bool stopping(const struct corral_ctrl *c)
{
    return atomic_load(&c->all->stop) || atomic_load(&c->srv->stopping);
}

static bool wanted(const struct corral_ctrl *c, const char *key)
{
    for (int i = 0; i < 4 && c->def->prefixes[i]; i++)
        if (strncmp(key, c->def->prefixes[i], strlen(c->def->prefixes[i])) == 0)
            return true;
    return false;
}

/* Feeds every pod of the shared index to the controller, first bringing it up to the cursor. */
static void relist_pods(struct corral_ctrl *c)
{
    int rc = corral_ctrl_pods_catch_up(c->all->pods, c->srv->store, c->cursor);
    if (rc < 0)
        corral_warn("controllers", "%s: pod index: %s", c->def->name, corral_strerror(rc));
    struct corral_ctrl_pod **pods = NULL;
    long n = corral_ctrl_pods_all(c->all->pods, &pods);
    for (long j = 0; j < n && !stopping(c); j++) {
        struct corral_store_event ev = {
            .type = CORRAL_EVENT_ADDED, .rev = c->cursor, .key = (char *)pods[j]->key};
        c->pod_now = pods[j];
        c->def->observe(c, &ev);
        c->pod_now = NULL;
    }
    if (n >= 0)
        corral_ctrl_pods_release(pods, n);
}

/* Rebuilds the controller's indexes from a full read of its prefixes. */
static void relist(struct corral_ctrl *c)
{
    c->def->reset(c);
    c->cursor = corral_store_revision(c->srv->store);
    for (int i = 0; i < 4 && c->def->prefixes[i]; i++) {
        if (c->def->pods && strcmp(c->def->prefixes[i], CORRAL_CTRL_POD_PREFIX) == 0) {
            relist_pods(c);
            continue;
        }
        /* a snapshot: one object at a time as JSON, not all of them at once */
        struct corral_store_list_opts opts = {.prefix = c->def->prefixes[i]};
        struct corral_store_snapshot *snap = NULL;
        if (corral_store_snapshot(c->srv->store, &opts, &snap) < 0) {
            corral_warn("controllers", "%s: cannot list %s", c->def->name, opts.prefix);
            continue;
        }
        size_t n = corral_store_snapshot_count(snap);
        for (size_t j = 0; j < n && !stopping(c); j++) {
            struct corral_store_event ev = {.type = CORRAL_EVENT_ADDED,
                                            .rev = corral_store_snapshot_rev(snap)};
            const char *key;
            if (corral_store_snapshot_item(snap, j, &key, &ev.value) < 0)
                continue;
            ev.key = (char *)key;
            observe(c, &ev);
            corral_blob_unref(ev.value);
        }
        corral_store_snapshot_free(snap);
    }
    if (c->def->relisted)
        c->def->relisted(c);
    corral_debug("controllers", "%s: relisted at revision %lld", c->def->name,
                 (long long)c->cursor);
}

/* Observes the events after the cursor, waiting up to timeout_ms for the first one. */
static void drain(struct corral_ctrl *c, int timeout_ms)
{
    struct corral_store_event evs[EVENT_BATCH];
    for (;;) {
        int64_t seen = c->cursor;
        int n = corral_store_events(c->srv->store, "/registry/", c->cursor, evs, EVENT_BATCH,
                                    timeout_ms, &seen);
        if (n == CORRAL_EGONE) {
            corral_info("controllers", "%s: watch history compacted; relisting", c->def->name);
            relist(c);
            return;
        }
        if (n <= 0) {
            if (n == 0 && seen > c->cursor)
                c->cursor = seen;
            return;
        }
        for (int i = 0; i < n; i++) {
            if (wanted(c, evs[i].key))
                observe(c, &evs[i]);
            c->cursor = evs[i].rev;
            corral_store_event_clear(&evs[i]);
        }
        if (n < EVENT_BATCH)
            return;
        timeout_ms = 0;
    }
}

static void run_sync(struct corral_ctrl *c, struct qitem *it)
{
    int rc = c->def->sync(c, it->key);
    uintptr_t fails = (uintptr_t)corral_ctrl_map_get(&c->failures, it->key);
    if (rc >= 0) {
        if (fails)
            corral_ctrl_map_del(&c->failures, it->key);
        return;
    }
    fails++;
    corral_ctrl_map_put(&c->failures, it->key, (void *)fails);
    unsigned delay = BACKOFF_MIN_MS;
    for (uintptr_t i = 1; i < fails && delay < BACKOFF_MAX_MS; i++)
        delay *= 2;
    delay = delay > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay;
    if (rc != CORRAL_ECONFLICT)
        corral_debug("controllers", "%s: sync %s: %s (retry in %u ms)", c->def->name, it->key,
                     corral_strerror(rc), delay);
    corral_ctrl_enqueue(c, it->key, delay);
}

static int wait_ms(const struct corral_ctrl *c, uint64_t now)
{
    uint64_t until = now + (uint64_t)MAX_WAIT_MS * 1000000ull;
    if (c->nheap && c->heap[0]->due < until)
        until = c->heap[0]->due;
    if (c->def->resync_s && c->next_resync < until)
        until = c->next_resync;
    int ms = until > now ? (int)((until - now + 999999) / 1000000) : 0;
    return ms;
}

/*
 * Follows the leadership: idles while another apiserver leads, drops everything when the lease
 * is lost, relists when a new term starts. Returns true while this controller may act.
 */
/* Counts a controller in or out of acting here; the pod index goes when the last one stops. */
static void note_leading(struct corral_ctrl *c, bool acting)
{
    struct corral_controllers *all = c->all;
    pthread_mutex_lock(&all->lead_mu);
    all->leading = acting ? all->leading + 1 : all->leading - 1;
    if (all->leading == 0)
        corral_ctrl_pods_drop(all->pods);
    pthread_mutex_unlock(&all->lead_mu);
}

static bool follow_leader(struct corral_ctrl *c, uint64_t resync_ns)
{
    uint64_t term = corral_ctrl_leader_term(c->all->leader);
    if (term == c->term)
        return term != 0;
    queue_clear(c);
    c->def->reset(c);
    if (c->def->pods && (c->term != 0) != (term != 0))
        note_leading(c, term != 0);
    c->term = term;
    if (!term)
        return false;
    relist(c);
    c->next_resync = corral_now_ns() + resync_ns;
    return true;
}

static void *runner_main(void *arg)
{
    struct corral_ctrl *c = arg;
    uint64_t resync_ns = (uint64_t)c->def->resync_s * 1000000000ull;
    while (!stopping(c)) {
        if (!follow_leader(c, resync_ns)) {
            usleep(MAX_WAIT_MS * 1000);
            continue;
        }
        drain(c, 0);
        uint64_t now = corral_now_ns();
        if (c->nheap && c->heap[0]->due <= now) {
            struct qitem *it = dequeue(c);
            run_sync(c, it);
            free(it->key);
            free(it);
            continue;
        }
        if (resync_ns && now >= c->next_resync) {
            c->def->resync(c);
            c->next_resync = now + resync_ns;
            continue;
        }
        int ms = wait_ms(c, now);
        if (ms > 0)
            drain(c, ms);
    }
    return NULL;
}

static void ctrl_free(struct corral_ctrl *c)
{
    if (c->state)
        c->def->fini(c);
    c->state = NULL;
    queue_clear(c);
}

int corral_controllers_start(struct corral_apiserver *srv, struct corral_controllers **out)
{
    struct corral_controllers *all = calloc(1, sizeof(*all));
    size_t n = 0;
    while (controller_table[n])
        n++;
    if (!all || !(all->ctrls = calloc(n, sizeof(*all->ctrls))) ||
        corral_ctrl_pods_new(&all->pods) != 0) {
        if (all)
            free(all->ctrls);
        free(all);
        return -ENOMEM;
    }
    pthread_mutex_init(&all->lead_mu, NULL);
    int rc = corral_ctrl_recorder_start(srv, &all->recorder);
    if (rc == 0)
        rc = corral_ctrl_leader_start(srv, &all->leader);
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct corral_ctrl *c = &all->ctrls[i];
        c->def = controller_table[i];
        c->srv = srv;
        c->all = all;
        corral_ctrl_map_init(&c->queued);
        corral_ctrl_map_init(&c->failures);
        all->n++;
        rc = c->def->init(c);
        if (rc == 0 && pthread_create(&c->thread, NULL, runner_main, c) != 0)
            rc = -EAGAIN;
        c->started = rc == 0;
        if (rc == 0)
            pthread_setname_np(c->thread, c->def->name);
    }
    if (rc < 0) {
        corral_error("controllers", "cannot start the controllers: %s", corral_strerror(rc));
        corral_controllers_stop(all);
        return rc;
    }
    *out = all;
    return 0;
}

void corral_controllers_stop(struct corral_controllers *all)
{
    if (!all)
        return;
    atomic_store(&all->stop, true);
    for (size_t i = 0; i < all->n; i++) {
        if (all->ctrls[i].started)
            pthread_join(all->ctrls[i].thread, NULL);
        ctrl_free(&all->ctrls[i]);
    }
    corral_ctrl_leader_stop(all->leader);
    corral_ctrl_recorder_stop(all->recorder);
    corral_ctrl_pods_free(all->pods);
    pthread_mutex_destroy(&all->lead_mu);
    free(all->ctrls);
    free(all);
}
