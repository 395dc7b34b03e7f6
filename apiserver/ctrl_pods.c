/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctrl_pods: pod summaries and the shared pod index (see ctrl_pods.h).
 *
 * Layout. A summary is one allocation: the fixed fields, then its strings. The index is a
 * hash table of summary pointers keyed by the summary's own key (no copy of it), and three
 * kinds of groups, each a doubly linked list threaded through the summaries' link fields with
 * its head in a small map by group name: the pods of one controller owner UID or the orphans of
 * one namespace (a pod is in exactly one of the two), the pods of one node, the pods of one
 * namespace. So a pod costs its summary, one table slot and three pairs of links, whatever the
 * number of controllers that read it.
 *
 * Locking: one rwlock over the table, the groups, the revision and the ring of recent changes;
 * the intern table has a mutex of its own (a laggard parses and interns outside the rwlock).
 * Summaries are freed by their last reference, from any thread: interned values are jansson
 * values with atomic reference counts, and the intern sweep only drops values nobody else holds
 * (only the intern table takes new references to them).
 *
 * Invariants (lock held): every summary in the table is linked in exactly the groups its fields
 * name and holds a reference owned by the table; rev is the newest pod event applied, and every
 * pod event at or below it has been applied (or was covered by a reload); a ring slot whose rev
 * names an applied event holds that event's (old, now) pair.
 */
#include "ctrl_pods.h"
#include "ctrl_extract.h"
#include "ctrl_map.h"
#include "ctrl_util.h"
#include "error.h"
#include "log.h"
#include "meta.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SWEEP_EVERY 4096
#define CHANGE_SLOTS 4096 /* a power of two */
#define CATCH_UP_BATCH 256

struct change {
    int64_t rev;
    struct corral_ctrl_pod *old, *now; /* references */
};

struct group {
    struct corral_ctrl_pod *head;
    size_t n;
};

enum group_kind { G_OWNER, G_ORPHANS, G_NODE, G_NS, G_KINDS };

struct corral_ctrl_pods {
    pthread_rwlock_t lock;
    struct corral_ctrl_pod **slots; /* NULL = empty, TOMB = deleted */
    size_t cap, n, used;
    struct corral_ctrl_map groups[G_KINDS]; /* name -> struct group */
    int64_t rev;
    uint64_t bytes;
    struct change *ring; /* CHANGE_SLOTS */

    pthread_mutex_t intern_mu;
    struct corral_ctrl_map interned; /* compact JSON -> the shared json_t */
    unsigned applies;                /* since the last sweep of interned values */
};

static struct corral_ctrl_pod tomb_marker;
#define TOMB (&tomb_marker)

/* ---- summaries ---------------------------------------------------------------------------- */

struct corral_ctrl_pod *corral_ctrl_pod_ref(struct corral_ctrl_pod *pod)
{
    if (pod)
        __atomic_add_fetch(&pod->refs, 1, __ATOMIC_RELAXED);
    return pod;
}

void corral_ctrl_pod_unref(struct corral_ctrl_pod *pod)
{
    if (!pod || __atomic_sub_fetch(&pod->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    json_decref(pod->labels);
    json_decref(pod->ports);
    json_decref(pod->tolerations);
    json_decref(pod->failure);
    free(pod);
}

void corral_ctrl_pods_release(struct corral_ctrl_pod **pods, long n)
{
    for (long i = 0; i < n; i++)
        corral_ctrl_pod_unref(pods[i]);
    free(pods);
}

/* Drops interned values no summary uses any more (intern_mu held). */
static void sweep_interned(struct corral_ctrl_pods *p)
{
    size_t pos = 0;
    const char *key;
    void *v;
    while (corral_ctrl_map_next(&p->interned, &pos, &key, &v)) {
        if (__atomic_load_n(&((json_t *)v)->refcount, __ATOMIC_ACQUIRE) > 1)
            continue;
        corral_ctrl_map_del(&p->interned, key);
        json_decref(v);
    }
}

/* The shared copy of v (a new reference); steals v. */
static json_t *intern(struct corral_ctrl_pods *p, json_t *v)
{
    if (!v)
        return NULL;
    char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (!text)
        return v;
    pthread_mutex_lock(&p->intern_mu);
    json_t *shared = corral_ctrl_map_get(&p->interned, text);
    if (shared) {
        json_decref(v);
        v = json_incref(shared);
    } else if (!corral_ctrl_map_put(&p->interned, text, v)) {
        json_incref(v); /* one reference for the table, one for the caller */
    }
    pthread_mutex_unlock(&p->intern_mu);
    free(text);
    return v;
}

static enum corral_pod_phase parse_phase(const char *s)
{
    if (!s)
        return CORRAL_POD_PENDING;
    if (strcmp(s, "Running") == 0)
        return CORRAL_POD_RUNNING;
    if (strcmp(s, "Succeeded") == 0)
        return CORRAL_POD_SUCCEEDED;
    if (strcmp(s, "Failed") == 0)
        return CORRAL_POD_FAILED;
    if (strcmp(s, "Unknown") == 0)
        return CORRAL_POD_UNKNOWN;
    return CORRAL_POD_PENDING;
}

static json_t *named_ports(const json_t *spec)
{
    json_t *out = NULL;
    size_t i, j;
    json_t *c, *port;
    json_array_foreach(json_object_get(spec, "containers"), i, c)
    {
        json_array_foreach(json_object_get(c, "ports"), j, port)
        {
            const char *name = json_string_value(json_object_get(port, "name"));
            if (!name || !json_is_integer(json_object_get(port, "containerPort")))
                continue;
            if (!out)
                out = json_array();
            const char *proto = json_string_value(json_object_get(port, "protocol"));
            json_array_append_new(out, json_pack("{s:s, s:O, s:s}", "name", name, "containerPort",
                                                 json_object_get(port, "containerPort"), "protocol",
                                                 proto ? proto : "TCP"));
        }
    }
    return out;
}

/* What a Job's podFailurePolicy needs to know of a Failed pod (see corral_ctrl_pod.failure). */
static json_t *failure_facts(const json_t *status)
{
    json_t *codes = json_array(), *conds = json_array();
    static const char *const lists[] = {"initContainerStatuses", "containerStatuses"};
    for (int l = 0; l < 2; l++) {
        size_t i;
        json_t *cs;
        json_array_foreach(json_object_get(status, lists[l]), i, cs)
        {
            json_t *term = json_object_get(json_object_get(cs, "state"), "terminated");
            json_t *code = json_object_get(term, "exitCode");
            const char *name = json_string_value(json_object_get(cs, "name"));
            if (json_is_integer(code) && name)
                json_array_append_new(codes, json_pack("{s:s, s:O}", "container", name,
                                                       "exitCode", code));
        }
    }
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(status, "conditions"), i, c)
    {
        const char *type = json_string_value(json_object_get(c, "type"));
        const char *st = json_string_value(json_object_get(c, "status"));
        if (type && st)
            json_array_append_new(conds, json_pack("{s:s, s:s}", "type", type, "status", st));
    }
    return json_pack("{s:o, s:o}", "exitCodes", codes, "conditions", conds);
}

/* The strings of a summary, before they are copied into it. */
enum { S_KEY, S_NS, S_NAME, S_UID, S_OWNER_UID, S_OWNER_KIND, S_NODE, S_IP, S_HOST, S_SUB, S_N };

static const char *nonempty(const char *s)
{
    return s && *s ? s : NULL;
}

static void gather_strings(const json_t *obj, const char *key, const char *s[S_N])
{
    const json_t *spec = json_object_get(obj, "spec");
    json_t *ref = corral_ctrl_controller_ref(obj);
    s[S_KEY] = key;
    s[S_NS] = corral_meta_namespace(obj) ? corral_meta_namespace(obj) : "";
    s[S_NAME] = corral_meta_name(obj) ? corral_meta_name(obj) : "";
    s[S_UID] = corral_ctrl_uid(obj) ? corral_ctrl_uid(obj) : "";
    s[S_OWNER_UID] = nonempty(json_string_value(json_object_get(ref, "uid")));
    const char *kind = json_string_value(json_object_get(ref, "kind"));
    s[S_OWNER_KIND] = s[S_OWNER_UID] && kind ? kind : "";
    s[S_NODE] = nonempty(json_string_value(json_object_get(spec, "nodeName")));
    s[S_IP] = nonempty(
        json_string_value(json_object_get(json_object_get(obj, "status"), "podIP")));
    s[S_HOST] = nonempty(json_string_value(json_object_get(spec, "hostname")));
    s[S_SUB] = nonempty(json_string_value(json_object_get(spec, "subdomain")));
}

/* Allocates a summary with room for the strings and points its fields at their copies. */
static struct corral_ctrl_pod *pod_alloc(const char *s[S_N])
{
    size_t len[S_N], total = 0;
    for (int i = 0; i < S_N; i++)
        total += s[i] ? (len[i] = strlen(s[i])) + 1 : 0;
    struct corral_ctrl_pod *pod = calloc(1, sizeof(*pod) + total);
    if (!pod)
        return NULL;
    const char **field[S_N] = {&pod->key,       &pod->ns,         &pod->name, &pod->uid,
                               &pod->owner_uid, &pod->owner_kind, &pod->node, &pod->ip,
                               &pod->hostname,  &pod->subdomain};
    char *at = pod->str;
    for (int i = 0; i < S_N; i++) {
        if (!s[i])
            continue;
        memcpy(at, s[i], len[i] + 1);
        *field[i] = at;
        at += len[i] + 1;
    }
    pod->refs = 1;
    return pod;
}

static void parse_status(struct corral_ctrl_pod *pod, const json_t *status)
{
    pod->phase = (uint8_t)parse_phase(json_string_value(json_object_get(status, "phase")));
    json_t *ready = corral_ctrl_condition(status, "Ready");
    const char *rs = json_string_value(json_object_get(ready, "status"));
    pod->ready = rs && strcmp(rs, "True") == 0;
    pod->ready_since = corral_ctrl_time_at(ready, "lastTransitionTime", NULL);
    size_t i;
    json_t *cs;
    json_array_foreach(json_object_get(status, "containerStatuses"), i, cs) pod->restarts +=
        (int32_t)corral_ctrl_int(cs, "restartCount", 0);
}

static struct corral_ctrl_pod *parse(struct corral_ctrl_pods *p, const json_t *obj, const char *key)
{
    const char *s[S_N];
    gather_strings(obj, key, s);
    struct corral_ctrl_pod *pod = pod_alloc(s);
    if (!pod)
        return NULL;
    json_t *meta = json_object_get(obj, "metadata"), *spec = json_object_get(obj, "spec");
    const char *rp = json_string_value(json_object_get(spec, "restartPolicy"));
    pod->on_failure = rp && strcmp(rp, "OnFailure") == 0;
    json_t *labels = json_object_get(meta, "labels");
    pod->labels = intern(p, json_is_object(labels) ? json_deep_copy(labels) : json_object());
    pod->ports = intern(p, named_ports(spec));
    json_t *tol = json_object_get(spec, "tolerations");
    if (json_array_size(tol))
        pod->tolerations = intern(p, json_deep_copy(tol));
    pod->created = corral_ctrl_time_at(meta, "creationTimestamp", NULL);
    pod->deleting = corral_ctrl_time_at(meta, "deletionTimestamp", NULL);
    if (json_object_get(meta, "deletionTimestamp") && !pod->deleting)
        pod->deleting = 1;
    pod->grace = (int32_t)corral_ctrl_int(meta, "deletionGracePeriodSeconds", 0);
    pod->job_tracking = corral_ctrl_has_finalizer(obj, CORRAL_JOB_TRACKING_FINALIZER);
    const char *idx = json_string_value(
        json_object_get(json_object_get(meta, "annotations"), CORRAL_JOB_INDEX_KEY));
    pod->completion_index =
        idx && *idx && strspn(idx, "0123456789") == strlen(idx) ? atoi(idx) : -1;
    parse_status(pod, json_object_get(obj, "status"));
    if (pod->phase == CORRAL_POD_FAILED)
        pod->failure = intern(p, failure_facts(json_object_get(obj, "status")));
    return pod;
}

/* Reads from the stored pod only the members a summary is made of. */
static struct corral_ctrl_pod *parse_blob(struct corral_ctrl_pods *p, const char *key,
                                          const struct corral_blob *b)
{
    static const char *const paths[] = {"metadata.name",
                                        "metadata.namespace",
                                        "metadata.uid",
                                        "metadata.ownerReferences",
                                        "metadata.creationTimestamp",
                                        "metadata.deletionTimestamp",
                                        "metadata.deletionGracePeriodSeconds",
                                        "metadata.finalizers",
                                        "metadata.labels",
                                        "metadata.annotations",
                                        "spec.nodeName",
                                        "spec.restartPolicy",
                                        "spec.containers",
                                        "spec.tolerations",
                                        "spec.hostname",
                                        "spec.subdomain",
                                        "status.phase",
                                        "status.podIP",
                                        "status.conditions",
                                        "status.containerStatuses",
                                        "status.initContainerStatuses",
                                        NULL};
    if (!b)
        return NULL;
    json_t *obj = corral_ctrl_extract_blob(b, paths);
    struct corral_ctrl_pod *pod = obj ? parse(p, obj, key) : NULL;
    json_decref(obj);
    return pod;
}

static size_t pod_bytes(const struct corral_ctrl_pod *pod)
{
    size_t n = sizeof(*pod);
    const char *last = pod->str;
    const char *const fields[] = {pod->key, pod->ns,   pod->name,     pod->uid,
                                  pod->owner_uid, pod->owner_kind, pod->node, pod->ip,
                                  pod->hostname,  pod->subdomain};
    for (size_t i = 0; i < sizeof(fields) / sizeof(*fields); i++)
        if (fields[i] && fields[i] + strlen(fields[i]) + 1 > last)
            last = fields[i] + strlen(fields[i]) + 1;
    return n + (size_t)(last - pod->str);
}

/* ---- the table ---------------------------------------------------------------------------- */

static uint32_t hash_key(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* Slot of key, or the first free one on its path (found tells which). */
static size_t table_find(const struct corral_ctrl_pods *p, const char *key, uint32_t h,
                         bool *found)
{
    size_t mask = p->cap - 1, i = h & mask, free_at = SIZE_MAX;
    *found = false;
    for (;;) {
        struct corral_ctrl_pod *s = p->slots[i];
        if (!s)
            return free_at != SIZE_MAX ? free_at : i;
        if (s == TOMB) {
            if (free_at == SIZE_MAX)
                free_at = i;
        } else if (s->hash == h && strcmp(s->key, key) == 0) {
            *found = true;
            return i;
        }
        i = (i + 1) & mask;
    }
}

static int table_grow(struct corral_ctrl_pods *p)
{
    size_t cap = p->cap ? p->cap : 64;
    while (p->n * 2 >= cap)
        cap *= 2;
    struct corral_ctrl_pod **slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return -ENOMEM;
    for (size_t i = 0; i < p->cap; i++) {
        struct corral_ctrl_pod *s = p->slots[i];
        if (!s || s == TOMB)
            continue;
        size_t j = s->hash & (cap - 1);
        while (slots[j])
            j = (j + 1) & (cap - 1);
        slots[j] = s;
    }
    free(p->slots);
    p->slots = slots;
    p->cap = cap;
    p->used = p->n;
    return 0;
}

static struct corral_ctrl_pod *table_get(const struct corral_ctrl_pods *p, const char *key)
{
    if (!p->n)
        return NULL;
    bool found;
    size_t i = table_find(p, key, hash_key(key), &found);
    return found ? p->slots[i] : NULL;
}

/* ---- groups ------------------------------------------------------------------------------- */

static const char *group_name(const struct corral_ctrl_pod *pod, enum group_kind k)
{
    switch (k) {
    case G_OWNER:
        return pod->owner_uid;
    case G_ORPHANS:
        return pod->owner_uid ? NULL : pod->ns;
    case G_NODE:
        return pod->node;
    default:
        return pod->ns;
    }
}

static struct corral_ctrl_pod_links *links_of(struct corral_ctrl_pod *pod, enum group_kind k)
{
    return k == G_NODE ? &pod->by_node : k == G_NS ? &pod->by_ns : &pod->group;
}

static int group_add(struct corral_ctrl_pods *p, struct corral_ctrl_pod *pod, enum group_kind k)
{
    const char *name = group_name(pod, k);
    if (!name)
        return 0;
    struct group *g = corral_ctrl_map_get(&p->groups[k], name);
    if (!g) {
        if (!(g = calloc(1, sizeof(*g))))
            return -ENOMEM;
        if (corral_ctrl_map_put(&p->groups[k], name, g) == g) {
            free(g);
            return -ENOMEM;
        }
    }
    struct corral_ctrl_pod_links *l = links_of(pod, k);
    l->prev = NULL;
    l->next = g->head;
    if (g->head)
        links_of(g->head, k)->prev = pod;
    g->head = pod;
    g->n++;
    return 0;
}

static void group_del(struct corral_ctrl_pods *p, struct corral_ctrl_pod *pod, enum group_kind k)
{
    const char *name = group_name(pod, k);
    struct group *g = name ? corral_ctrl_map_get(&p->groups[k], name) : NULL;
    if (!g)
        return;
    struct corral_ctrl_pod_links *l = links_of(pod, k);
    if (l->prev)
        links_of(l->prev, k)->next = l->next;
    else
        g->head = l->next;
    if (l->next)
        links_of(l->next, k)->prev = l->prev;
    l->prev = l->next = NULL;
    if (--g->n == 0)
        free(corral_ctrl_map_del(&p->groups[k], name));
}

/* Takes pod (the table's reference) out of the table and its groups (lock held). */
static void index_remove(struct corral_ctrl_pods *p, struct corral_ctrl_pod *pod)
{
    bool found;
    size_t i = table_find(p, pod->key, pod->hash, &found);
    if (!found || p->slots[i] != pod)
        return;
    p->slots[i] = TOMB;
    p->n--;
    p->bytes -= pod_bytes(pod);
    for (int k = 0; k < G_KINDS; k++)
        group_del(p, pod, (enum group_kind)k);
}

/* Puts pod (the table's reference, stolen) in; the key must be absent. Returns 0 or -ENOMEM. */
static int index_insert(struct corral_ctrl_pods *p, struct corral_ctrl_pod *pod)
{
    if ((p->used + 1) * 4 >= p->cap * 3 && table_grow(p) < 0)
        return -ENOMEM;
    pod->hash = hash_key(pod->key);
    bool found;
    size_t i = table_find(p, pod->key, pod->hash, &found);
    int k = 0, rc = 0;
    for (; k < G_KINDS && rc == 0; k++)
        rc = group_add(p, pod, (enum group_kind)k);
    if (rc != 0) {
        while (--k > 0)
            group_del(p, pod, (enum group_kind)(k - 1));
        return rc;
    }
    if (!p->slots[i])
        p->used++;
    p->slots[i] = pod;
    p->n++;
    p->bytes += pod_bytes(pod);
    return 0;
}

/* ---- applying changes --------------------------------------------------------------------- */

static void clear_groups(struct corral_ctrl_pods *p)
{
    for (int k = 0; k < G_KINDS; k++)
        corral_ctrl_map_clear(&p->groups[k], free);
}

/* Empties the table, releasing its references (lock held or no other thread). */
static void table_clear(struct corral_ctrl_pods *p)
{
    for (size_t i = 0; i < p->cap; i++)
        if (p->slots[i] && p->slots[i] != TOMB)
            corral_ctrl_pod_unref(p->slots[i]);
    free(p->slots);
    p->slots = NULL;
    p->cap = p->n = p->used = 0;
    p->bytes = 0;
    clear_groups(p);
}

static void ring_put(struct corral_ctrl_pods *p, int64_t rev, struct corral_ctrl_pod *old,
                     struct corral_ctrl_pod *now)
{
    struct change *c = &p->ring[(uint64_t)rev & (CHANGE_SLOTS - 1)];
    corral_ctrl_pod_unref(c->old);
    corral_ctrl_pod_unref(c->now);
    *c = (struct change){rev, corral_ctrl_pod_ref(old), corral_ctrl_pod_ref(now)};
}

/*
 * Applies ev with its parsed summary now (borrowed; the table and the ring take references of
 * their own; NULL when the pod is gone) under the lock. Returns the summary it replaced (a
 * reference) through *old.
 */
static void apply_locked(struct corral_ctrl_pods *p, const struct corral_store_event *ev,
                         struct corral_ctrl_pod *now, struct corral_ctrl_pod **old)
{
    *old = table_get(p, ev->key);
    if (*old)
        index_remove(p, *old); /* the table's reference becomes the caller's */
    if (now && index_insert(p, corral_ctrl_pod_ref(now)) != 0) {
        corral_warn("controllers", "pod index: no memory for %s", ev->key);
        corral_ctrl_pod_unref(now); /* the table's */
    }
    ring_put(p, ev->rev, *old, now);
    p->rev = ev->rev;
}

static void maybe_sweep(struct corral_ctrl_pods *p)
{
    pthread_mutex_lock(&p->intern_mu);
    if (++p->applies >= SWEEP_EVERY) {
        p->applies = 0;
        sweep_interned(p);
    }
    pthread_mutex_unlock(&p->intern_mu);
}

/* Looks ev up among the recent changes (lock held). Returns true and the pair when found. */
static bool ring_get(struct corral_ctrl_pods *p, int64_t rev, struct corral_ctrl_pod **old,
                     struct corral_ctrl_pod **now)
{
    struct change *c = &p->ring[(uint64_t)rev & (CHANGE_SLOTS - 1)];
    if (c->rev != rev)
        return false;
    *old = corral_ctrl_pod_ref(c->old);
    *now = corral_ctrl_pod_ref(c->now);
    return true;
}

int corral_ctrl_pods_change(struct corral_ctrl_pods *p, const struct corral_store_event *ev,
                            struct corral_ctrl_pod **old, struct corral_ctrl_pod **now)
{
    *old = *now = NULL;
    /* Parse before taking the lock: only the thread that applies needs it, and parsing under
     * the write lock would hold up every reader. A laggard throws it away. */
    pthread_rwlock_rdlock(&p->lock);
    bool applied = ev->rev <= p->rev;
    bool found = applied && ring_get(p, ev->rev, old, now);
    pthread_rwlock_unlock(&p->lock);
    if (found)
        return 0;
    struct corral_ctrl_pod *parsed =
        ev->type == CORRAL_EVENT_DELETED ? NULL : parse_blob(p, ev->key, ev->value);
    if (applied) { /* too far behind for the ring: the event says it all */
        *now = parsed;
        *old = ev->prev ? parse_blob(p, ev->key, ev->prev) : NULL;
        return 0;
    }
    pthread_rwlock_wrlock(&p->lock);
    if (ev->rev > p->rev) {
        apply_locked(p, ev, parsed, old);
        *now = parsed;
        pthread_rwlock_unlock(&p->lock);
        maybe_sweep(p);
        return 0;
    }
    found = ring_get(p, ev->rev, old, now); /* another controller applied it meanwhile */
    pthread_rwlock_unlock(&p->lock);
    if (found) {
        corral_ctrl_pod_unref(parsed);
        return 0;
    }
    *now = parsed;
    *old = ev->prev ? parse_blob(p, ev->key, ev->prev) : NULL;
    return 0;
}

/* Applies one event from the store's history (catching up). */
static void catch_up_one(struct corral_ctrl_pods *p, const struct corral_store_event *ev)
{
    struct corral_ctrl_pod *now =
        ev->type == CORRAL_EVENT_DELETED ? NULL : parse_blob(p, ev->key, ev->value), *old = NULL;
    pthread_rwlock_wrlock(&p->lock);
    if (ev->rev > p->rev)
        apply_locked(p, ev, now, &old);
    pthread_rwlock_unlock(&p->lock);
    corral_ctrl_pod_unref(old);
    corral_ctrl_pod_unref(now);
    maybe_sweep(p);
}

/* Replaces the whole index with the pods listed from st (history lost). */
static int reload(struct corral_ctrl_pods *p, struct corral_store *st)
{
    struct corral_store_list_opts opts = {.prefix = CORRAL_CTRL_POD_PREFIX};
    struct corral_store_snapshot *snap = NULL;
    int rc = corral_store_snapshot(st, &opts, &snap);
    if (rc < 0)
        return rc;
    struct corral_ctrl_pods fresh = {0};
    size_t n = corral_store_snapshot_count(snap);
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *key;
        struct corral_blob *b = NULL;
        rc = corral_store_snapshot_item(snap, i, &key, &b);
        struct corral_ctrl_pod *pod = rc == 0 ? parse_blob(p, key, b) : NULL;
        corral_blob_unref(b);
        if (pod && index_insert(&fresh, pod) != 0) {
            corral_ctrl_pod_unref(pod);
            rc = -ENOMEM;
        }
    }
    int64_t rev = corral_store_snapshot_rev(snap);
    corral_store_snapshot_free(snap);
    pthread_rwlock_wrlock(&p->lock);
    if (rc == 0 && rev > p->rev) { /* else someone was quicker: keep theirs */
        struct corral_ctrl_pods old = *p;
        p->slots = fresh.slots;
        p->cap = fresh.cap;
        p->n = fresh.n;
        p->used = fresh.used;
        p->bytes = fresh.bytes;
        memcpy(p->groups, fresh.groups, sizeof(p->groups));
        p->rev = rev;
        fresh.slots = old.slots;
        fresh.cap = old.cap;
        memcpy(fresh.groups, old.groups, sizeof(fresh.groups));
    }
    pthread_rwlock_unlock(&p->lock);
    table_clear(&fresh);
    corral_debug("controllers", "pod index reloaded from a list");
    return rc;
}

int corral_ctrl_pods_catch_up(struct corral_ctrl_pods *p, struct corral_store *st, int64_t rev)
{
    struct corral_store_event evs[CATCH_UP_BATCH];
    for (;;) {
        pthread_rwlock_rdlock(&p->lock);
        int64_t after = p->rev;
        pthread_rwlock_unlock(&p->lock);
        if (after >= rev)
            return 0;
        int64_t seen = after;
        int n = corral_store_events(st, CORRAL_CTRL_POD_PREFIX, after, evs, CATCH_UP_BATCH, 0,
                                    &seen);
        if (n == CORRAL_EGONE)
            return reload(p, st);
        if (n < 0)
            return n;
        for (int i = 0; i < n; i++) {
            catch_up_one(p, &evs[i]);
            corral_store_event_clear(&evs[i]);
        }
        if (n == 0) { /* no pod event up to seen */
            pthread_rwlock_wrlock(&p->lock);
            if (seen > p->rev)
                p->rev = seen;
            pthread_rwlock_unlock(&p->lock);
            if (seen < rev)
                return 0; /* rev is not committed yet: nothing more to apply */
        }
    }
}

void corral_ctrl_pods_drop(struct corral_ctrl_pods *p)
{
    pthread_rwlock_wrlock(&p->lock);
    table_clear(p);
    for (size_t i = 0; i < CHANGE_SLOTS; i++) {
        corral_ctrl_pod_unref(p->ring[i].old);
        corral_ctrl_pod_unref(p->ring[i].now);
        p->ring[i] = (struct change){0};
    }
    p->rev = 0;
    pthread_rwlock_unlock(&p->lock);
    pthread_mutex_lock(&p->intern_mu);
    sweep_interned(p);
    pthread_mutex_unlock(&p->intern_mu);
}

/* ---- reading ------------------------------------------------------------------------------ */

struct corral_ctrl_pod *corral_ctrl_pods_get(struct corral_ctrl_pods *p, const char *key)
{
    pthread_rwlock_rdlock(&p->lock);
    struct corral_ctrl_pod *pod = corral_ctrl_pod_ref(table_get(p, key));
    pthread_rwlock_unlock(&p->lock);
    return pod;
}

static long collect(struct corral_ctrl_pods *p, enum group_kind k, const char *name,
                    struct corral_ctrl_pod ***out)
{
    pthread_rwlock_rdlock(&p->lock);
    struct group *g = name ? corral_ctrl_map_get(&p->groups[k], name) : NULL;
    size_t n = g ? g->n : 0, i = 0;
    *out = calloc(n ? n : 1, sizeof(**out));
    if (*out)
        for (struct corral_ctrl_pod *pod = g ? g->head : NULL; pod && i < n;
             pod = links_of(pod, k)->next)
            (*out)[i++] = corral_ctrl_pod_ref(pod);
    pthread_rwlock_unlock(&p->lock);
    return *out ? (long)i : -ENOMEM;
}

long corral_ctrl_pods_owned(struct corral_ctrl_pods *p, const char *uid,
                            struct corral_ctrl_pod ***out)
{
    return collect(p, G_OWNER, uid, out);
}

long corral_ctrl_pods_orphans(struct corral_ctrl_pods *p, const char *ns,
                              struct corral_ctrl_pod ***out)
{
    return collect(p, G_ORPHANS, ns, out);
}

long corral_ctrl_pods_on_node(struct corral_ctrl_pods *p, const char *node,
                              struct corral_ctrl_pod ***out)
{
    return collect(p, G_NODE, node, out);
}

long corral_ctrl_pods_in_ns(struct corral_ctrl_pods *p, const char *ns,
                            struct corral_ctrl_pod ***out)
{
    return collect(p, G_NS, ns, out);
}

long corral_ctrl_pods_all(struct corral_ctrl_pods *p, struct corral_ctrl_pod ***out)
{
    pthread_rwlock_rdlock(&p->lock);
    size_t k = 0;
    *out = calloc(p->n ? p->n : 1, sizeof(**out));
    for (size_t i = 0; *out && i < p->cap; i++)
        if (p->slots[i] && p->slots[i] != TOMB)
            (*out)[k++] = corral_ctrl_pod_ref(p->slots[i]);
    pthread_rwlock_unlock(&p->lock);
    return *out ? (long)k : -ENOMEM;
}

void corral_ctrl_pods_stats(struct corral_ctrl_pods *p, struct corral_ctrl_pods_stats *out)
{
    pthread_rwlock_rdlock(&p->lock);
    out->pods = p->n;
    out->bytes = p->bytes + p->cap * sizeof(*p->slots);
    out->rev = p->rev;
    pthread_rwlock_unlock(&p->lock);
    pthread_mutex_lock(&p->intern_mu);
    out->interned = corral_ctrl_map_size(&p->interned);
    pthread_mutex_unlock(&p->intern_mu);
}

/* ---- the index ---------------------------------------------------------------------------- */

int corral_ctrl_pods_new(struct corral_ctrl_pods **out)
{
    struct corral_ctrl_pods *p = calloc(1, sizeof(*p));
    if (!p || !(p->ring = calloc(CHANGE_SLOTS, sizeof(*p->ring)))) {
        free(p);
        return -ENOMEM;
    }
    pthread_rwlock_init(&p->lock, NULL);
    pthread_mutex_init(&p->intern_mu, NULL);
    *out = p;
    return 0;
}

static void free_json(void *v)
{
    json_decref(v);
}

void corral_ctrl_pods_free(struct corral_ctrl_pods *p)
{
    if (!p)
        return;
    corral_ctrl_pods_drop(p);
    free(p->ring);
    corral_ctrl_map_clear(&p->interned, free_json);
    pthread_rwlock_destroy(&p->lock);
    pthread_mutex_destroy(&p->intern_mu);
    free(p);
}

/* ---- on summaries ------------------------------------------------------------------------- */

bool corral_ctrl_pod_owned_by(const struct corral_ctrl_pod *pod, const char *kind)
{
    return pod->owner_uid && strcmp(pod->owner_kind, kind) == 0;
}

bool corral_ctrl_pod_active(const struct corral_ctrl_pod *pod)
{
    return !pod->deleting && pod->phase != CORRAL_POD_SUCCEEDED && pod->phase != CORRAL_POD_FAILED;
}

bool corral_ctrl_pod_available(const struct corral_ctrl_pod *pod, long min_ready, time_t now)
{
    if (!pod->ready)
        return false;
    return min_ready <= 0 || (pod->ready_since && pod->ready_since + min_ready <= now);
}

static int cmp_int(long long a, long long b)
{
    return a < b ? -1 : a > b;
}

int corral_ctrl_pod_delete_order(const void *pa, const void *pb)
{
    const struct corral_ctrl_pod *a = *(struct corral_ctrl_pod *const *)pa;
    const struct corral_ctrl_pod *b = *(struct corral_ctrl_pod *const *)pb;
    int r;
    if ((r = cmp_int(a->node != NULL, b->node != NULL)))
        return r;
    if ((r = cmp_int(a->phase, b->phase)))
        return r;
    if ((r = cmp_int(a->ready, b->ready)))
        return r;
    if (a->ready && b->ready && (r = cmp_int(b->ready_since, a->ready_since)))
        return r; /* ready more recently first */
    if ((r = cmp_int(b->restarts, a->restarts)))
        return r;
    if ((r = cmp_int(b->created, a->created)))
        return r;
    return strcmp(b->name, a->name);
}
