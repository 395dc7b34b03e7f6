/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctrl_events: the controllers' Event recorder (see ctrl_events.h).
 *
 * Posts go into a bounded ring under a mutex; the recorder thread takes them one at a time
 * and writes them with corral_objects_create/update. Aggregation: the recorder remembers, for
 * the last CORRAL_EVENT_MEMORY distinct (object, type, reason, message, source) tuples, the
 * name of the Event it wrote; a repeat reads that Event back and bumps count and
 * lastTimestamp. An Event that vanished (deleted, expired) or was changed concurrently is
 * simply written anew. Events of cluster-scoped objects (Nodes) go to the "default" namespace,
 * as Kubernetes does.
 *
 * Spam filter, as client-go's EventSourceObjectSpamFilter: each (source, object) has a token
 * bucket of SPAM_BURST Events refilled at one per SPAM_REFILL_S; a ReplicaSet creating 10,000
 * pods records its first 25 "Created pod" Events, not 10,000 durable writes.
 */
#include "ctrl_events.h"
#include "ctrl_map.h"
#include "error.h"
#include "log.h"
#include "meta.h"
#include "objects.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUEUE_MAX 4096
#define EVENT_MEMORY 4096
#define MESSAGE_MAX 1024
#define SPAM_BURST 25
#define SPAM_REFILL_S 300

struct bucket {
    double tokens;
    time_t at;
};

struct pending {
    json_t *involved; /* involvedObject */
    char *component, *type, *reason, *message;
};

struct corral_ctrl_recorder {
    struct corral_apiserver *srv;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct pending ring[QUEUE_MAX];
    size_t head, count;
    bool stop;
    unsigned long dropped;
    struct corral_ctrl_map buckets; /* source + object -> struct bucket (under mu) */
    /* recorder thread only: aggregation key -> Event name (char *) */
    struct corral_ctrl_map seen;
    const struct corral_resource *events;
};

static void pending_clear(struct pending *p)
{
    json_decref(p->involved);
    free(p->component);
    free(p->type);
    free(p->reason);
    free(p->message);
    memset(p, 0, sizeof(*p));
}

static json_t *involved_of(const json_t *obj)
{
    json_t *meta = json_object_get(obj, "metadata");
    json_t *ref = json_object();
    static const char *const keys[] = {"namespace", "name", "uid", "resourceVersion", NULL};
    const char *kind = corral_meta_kind(obj), *api = corral_meta_api_version(obj);
    if (kind)
        json_object_set_new(ref, "kind", json_string(kind));
    if (api)
        json_object_set_new(ref, "apiVersion", json_string(api));
    for (const char *const *k = keys; *k; k++) {
        json_t *v = json_object_get(meta, *k);
        if (json_is_string(v))
            json_object_set(ref, *k, v);
    }
    return ref;
}

/* Takes a token from the (source, object) bucket. Called with mu held. */
static bool allowed(struct corral_ctrl_recorder *r, const char *component, const json_t *inv)
{
    char key[1024];
    const char *uid = json_string_value(json_object_get(inv, "uid"));
    const char *name = json_string_value(json_object_get(inv, "name"));
    snprintf(key, sizeof(key), "%s/%s/%s", component, uid ? uid : "", name ? name : "");
    time_t now = time(NULL);
    struct bucket *b = corral_ctrl_map_get(&r->buckets, key);
    if (!b) {
        if (corral_ctrl_map_size(&r->buckets) >= EVENT_MEMORY)
            corral_ctrl_map_clear(&r->buckets, free);
        b = calloc(1, sizeof(*b));
        if (!b || corral_ctrl_map_put(&r->buckets, key, b) == b) {
            free(b);
            return true;
        }
        b->tokens = SPAM_BURST;
        b->at = now;
    }
    b->tokens += (double)(now - b->at) / SPAM_REFILL_S;
    if (b->tokens > SPAM_BURST)
        b->tokens = SPAM_BURST;
    b->at = now;
    if (b->tokens < 1)
        return false;
    b->tokens -= 1;
    return true;
}

void corral_ctrl_recorder_post(struct corral_ctrl_recorder *r, const char *component,
                               const json_t *obj, const char *type, const char *reason,
                               const char *message)
{
    if (!r)
        return;
    struct pending p = {involved_of(obj), strdup(component), strdup(type), strdup(reason),
                        strndup(message, MESSAGE_MAX)};
    if (!p.involved || !p.component || !p.type || !p.reason || !p.message) {
        pending_clear(&p);
        return;
    }
    pthread_mutex_lock(&r->mu);
    if (!allowed(r, component, p.involved)) {
        pthread_mutex_unlock(&r->mu);
        pending_clear(&p);
        return;
    }
    if (r->count == QUEUE_MAX || r->stop) {
        r->dropped++;
        pthread_mutex_unlock(&r->mu);
        pending_clear(&p);
        return;
    }
    r->ring[(r->head + r->count) % QUEUE_MAX] = p;
    r->count++;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static const char *str_at(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static void agg_key(const struct pending *p, char *buf, size_t len)
{
    snprintf(buf, len, "%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s", p->component,
             str_at(p->involved, "kind"), str_at(p->involved, "namespace"),
             str_at(p->involved, "name"), str_at(p->involved, "uid"), p->type, p->reason,
             p->message);
}

static const char *event_namespace(const struct pending *p)
{
    const char *ns = str_at(p->involved, "namespace");
    return *ns ? ns : "default";
}

/* Bumps the Event named name. Returns 0, or an error when it must be written anew. */
static int bump(struct corral_ctrl_recorder *r, const struct pending *p, const char *name,
                const char *now)
{
    json_t *ev = NULL;
    int rc = corral_objects_get(r->srv, r->events, event_namespace(p), name, &ev);
    if (rc < 0)
        return rc;
    json_int_t count = json_integer_value(json_object_get(ev, "count"));
    json_object_set_new(ev, "count", json_integer(count > 0 ? count + 1 : 2));
    json_object_set_new(ev, "lastTimestamp", json_string(now));
    json_object_set(ev, "involvedObject", p->involved);
    return corral_objects_update(r->srv, r->events, ev, false, NULL);
}

static int create(struct corral_ctrl_recorder *r, const struct pending *p, const char *now,
                  char *name_out, size_t len)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    snprintf(name_out, len, "%.200s.%" PRIx64, str_at(p->involved, "name"), ns);
    json_t *ev =
        json_pack("{s:s, s:s, s:{s:s, s:s}, s:O, s:s, s:s, s:{s:s}, s:s, s:s, s:i, "
                  "s:s, s:s, s:s}",
                  "apiVersion", "v1", "kind", "Event", "metadata", "name", name_out, "namespace",
                  event_namespace(p), "involvedObject", p->involved, "reason", p->reason, "message",
                  p->message, "source", "component", p->component, "firstTimestamp", now,
                  "lastTimestamp", now, "count", 1, "type", p->type, "reportingComponent",
                  p->component, "reportingInstance", "corral-apiserver");
    if (!ev)
        return -ENOMEM;
    return corral_objects_create(r->srv, r->events, event_namespace(p), ev, NULL);
}

static void write_one(struct corral_ctrl_recorder *r, const struct pending *p)
{
    char key[2048], now[21], name[300];
    agg_key(p, key, sizeof(key));
    corral_meta_format_time(time(NULL), now);
    const char *prev = corral_ctrl_map_get(&r->seen, key);
    if (prev && bump(r, p, prev, now) == 0)
        return;
    int rc = create(r, p, now, name, sizeof(name));
    if (rc < 0) {
        corral_debug("events", "cannot record %s %s: %s", p->reason, str_at(p->involved, "name"),
                     corral_strerror(rc));
        return;
    }
    if (corral_ctrl_map_size(&r->seen) >= EVENT_MEMORY)
        corral_ctrl_map_clear(&r->seen, free);
    char *copy = strdup(name);
    if (copy)
        free(corral_ctrl_map_put(&r->seen, key, copy)); /* the replaced name, or copy on ENOMEM */
}

static void *recorder_main(void *arg)
{
    struct corral_ctrl_recorder *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (!r->count && !r->stop)
            pthread_cond_wait(&r->cv, &r->mu);
        if (!r->count)
            break;
        struct pending p = r->ring[r->head];
        r->head = (r->head + 1) % QUEUE_MAX;
        r->count--;
        unsigned long dropped = r->dropped;
        r->dropped = 0;
        pthread_mutex_unlock(&r->mu);
        if (dropped)
            corral_warn("events", "event queue full: dropped %lu events", dropped);
        write_one(r, &p);
        pending_clear(&p);
        pthread_mutex_lock(&r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

int corral_ctrl_recorder_start(struct corral_apiserver *srv, struct corral_ctrl_recorder **out)
{
    struct corral_ctrl_recorder *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->srv = srv;
    r->events = corral_resource_find("", "v1", "events");
    corral_ctrl_map_init(&r->seen);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (pthread_create(&r->thread, NULL, recorder_main, r) != 0) {
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cv);
        free(r);
        return -EAGAIN;
    }
    *out = r;
    return 0;
}

void corral_ctrl_recorder_stop(struct corral_ctrl_recorder *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    corral_ctrl_map_clear(&r->seen, free);
    corral_ctrl_map_clear(&r->buckets, free);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}
