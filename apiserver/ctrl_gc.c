/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctrl_gc: the garbage collector for owned objects (metadata.ownerReferences), with the three
 * propagation policies of a DELETE:
 *
 *   Background (the default): the owner goes at once; its dependents are then deleted.
 *   Foreground: the apiserver keeps the owner (deletionTimestamp + the foregroundDeletion
 *     finalizer); the collector deletes its dependents (in foreground too when they own
 *     objects themselves) and removes the finalizer once no dependent with
 *     blockOwnerDeletion is left, which deletes the owner.
 *   Orphan: the owner is kept with the orphan finalizer until the collector has removed the
 *     owner's references from every dependent; then the finalizer goes and so does the owner.
 *
 * A dependent is deleted only when none of its owners still exists (an owner counts as
 * existing when an object of that kind, name and UID is there); references to owners that are
 * gone are removed while other owners remain. Owners of kinds the server does not know are
 * treated as existing. Pods are deleted gracefully, like any client's DELETE.
 *
 * The collector follows every key under /registry/ but parses an object only when its bytes
 * mention ownerReferences or a deletion finalizer, or when it is deleted. Indexes: owner UID ->
 * dependents (with their blockOwnerDeletion), dependent -> owner UIDs, and the owners waiting
 * in a Foreground/Orphan deletion. It also expires Events an hour after their last occurrence,
 * as kube-apiserver's --event-ttl does.
 *
 * Work items: "D<key>" verifies a dependent's owners, "O<key>" processes an owner in a
 * Foreground/Orphan deletion, "events" sweeps expired Events.
 */
#include "ctrl.h"
#include "ctrl_extract.h"
#include "ctrl_map.h"
#include "ctrl_util.h"
#include "error.h"
#include "log.h"
#include "meta.h"
#include "objects.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVENT_PREFIX "/registry/events/"
#define EVENT_TTL_S 3600
#define EVENT_SWEEP_MS 60000
#define FG "foregroundDeletion"
#define ORPHAN "orphan"

struct gc_owner {
    struct corral_ctrl_map deps; /* dependent key -> (uintptr_t) 1 + blockOwnerDeletion */
};

struct gc_dep {
    size_t n;
    char **uids;
};

struct gc_state {
    struct corral_ctrl_map owners;  /* owner uid -> gc_owner */
    struct corral_ctrl_map deps;    /* dependent key -> gc_dep */
    struct corral_ctrl_map waiting; /* uid -> key of an owner in Foreground/Orphan deletion */
    struct corral_ctrl_map events;  /* Event key -> (uintptr_t) last timestamp */
};

static void owner_free(void *v)
{
    struct gc_owner *o = v;
    if (o)
        corral_ctrl_map_clear(&o->deps, NULL);
    free(o);
}

static void dep_free(void *v)
{
    struct gc_dep *d = v;
    for (size_t i = 0; d && i < d->n; i++)
        free(d->uids[i]);
    if (d)
        free(d->uids);
    free(d);
}

static void gc_reset(struct corral_ctrl *c)
{
    struct gc_state *st = corral_ctrl_state(c);
    corral_ctrl_map_clear(&st->owners, owner_free);
    corral_ctrl_map_clear(&st->deps, dep_free);
    corral_ctrl_map_clear(&st->waiting, free);
    corral_ctrl_map_clear(&st->events, NULL);
    corral_ctrl_enqueue(c, "events", EVENT_SWEEP_MS);
}

static int gc_init(struct corral_ctrl *c)
{
    struct gc_state *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    corral_ctrl_set_state(c, st);
    return 0;
}

static void gc_fini(struct corral_ctrl *c)
{
    gc_reset(c);
    free(corral_ctrl_state(c));
}

static void enqueue2(struct corral_ctrl *c, char kind, const char *key)
{
    char item[CORRAL_CTRL_KEY_MAX + 2];
    snprintf(item, sizeof(item), "%c%s", kind, key);
    corral_ctrl_enqueue(c, item, 0);
}

/* ---- the dependents index ---- */

static void unlink_dep(struct gc_state *st, const char *key)
{
    struct gc_dep *d = corral_ctrl_map_del(&st->deps, key);
    for (size_t i = 0; d && i < d->n; i++) {
        struct gc_owner *o = corral_ctrl_map_get(&st->owners, d->uids[i]);
        if (!o)
            continue;
        corral_ctrl_map_del(&o->deps, key);
        if (corral_ctrl_map_size(&o->deps) == 0)
            owner_free(corral_ctrl_map_del(&st->owners, d->uids[i]));
    }
    dep_free(d);
}

static void link_dep(struct gc_state *st, const char *key, const json_t *refs)
{
    size_t n = json_array_size(refs), i;
    struct gc_dep *d = calloc(1, sizeof(*d));
    if (!d || !(d->uids = calloc(n + 1, sizeof(*d->uids)))) {
        free(d);
        return;
    }
    json_t *ref;
    json_array_foreach(refs, i, ref)
    {
        const char *uid = json_string_value(json_object_get(ref, "uid"));
        if (!uid || !(d->uids[d->n] = strdup(uid)))
            continue;
        d->n++;
        struct gc_owner *o = corral_ctrl_map_get(&st->owners, uid);
        if (!o && (o = calloc(1, sizeof(*o))) && corral_ctrl_map_put(&st->owners, uid, o) == o) {
            free(o);
            o = NULL;
        }
        if (o)
            corral_ctrl_map_put(
                &o->deps, key,
                (void *)(uintptr_t)(1 + json_is_true(json_object_get(ref, "blockOwnerDeletion"))));
    }
    if (corral_ctrl_map_put(&st->deps, key, d) == d)
        dep_free(d);
}

static bool same_owners(const struct gc_dep *d, const json_t *refs)
{
    if (!d || d->n != json_array_size(refs))
        return false;
    for (size_t i = 0; i < d->n; i++) {
        const char *uid = json_string_value(json_object_get(json_array_get(refs, i), "uid"));
        if (!uid || strcmp(uid, d->uids[i]) != 0)
            return false;
    }
    return true;
}

/* Owners of key that are waiting for their dependents get another look. */
static void poke_waiting_owners(struct corral_ctrl *c, const char *key)
{
    struct gc_state *st = corral_ctrl_state(c);
    struct gc_dep *d = corral_ctrl_map_get(&st->deps, key);
    for (size_t i = 0; d && i < d->n; i++) {
        const char *okey = corral_ctrl_map_get(&st->waiting, d->uids[i]);
        if (okey)
            enqueue2(c, 'O', okey);
    }
}

static void enqueue_dependents(struct corral_ctrl *c, const char *uid)
{
    struct gc_state *st = corral_ctrl_state(c);
    struct gc_owner *o = corral_ctrl_map_get(&st->owners, uid);
    size_t pos = 0;
    const char *key;
    while (o && corral_ctrl_map_next(&o->deps, &pos, &key, NULL))
        enqueue2(c, 'D', key);
}

static const char *const owner_fields[] = {"metadata.uid", "metadata.ownerReferences",
                                           "metadata.finalizers", "metadata.deletionTimestamp",
                                           NULL};
static const char *const uid_field[] = {"metadata.uid", NULL};
static const char *const event_fields[] = {"lastTimestamp", "metadata.creationTimestamp", NULL};

static void observe_event_object(struct corral_ctrl *c, const struct corral_store_event *ev)
{
    struct gc_state *st = corral_ctrl_state(c);
    if (ev->type == CORRAL_EVENT_DELETED) {
        corral_ctrl_map_del(&st->events, ev->key);
        return;
    }
    json_t *obj = corral_ctrl_extract_blob(ev->value, event_fields);
    time_t t = corral_ctrl_time_at(obj, "lastTimestamp", NULL);
    if (!t)
        t = corral_ctrl_time_at(obj, "metadata", "creationTimestamp", NULL);
    json_decref(obj);
    corral_ctrl_map_put(&st->events, ev->key, (void *)(uintptr_t)(t ? t : corral_ctrl_now()));
}

static void observe_deleted(struct corral_ctrl *c, const struct corral_store_event *ev)
{
    struct gc_state *st = corral_ctrl_state(c);
    json_t *obj = corral_ctrl_extract_blob(ev->value, uid_field);
    const char *uid = corral_ctrl_uid(obj);
    if (uid) {
        enqueue_dependents(c, uid);
        free(corral_ctrl_map_del(&st->waiting, uid));
    }
    json_decref(obj);
    poke_waiting_owners(c, ev->key);
    unlink_dep(st, ev->key);
}

static bool mentions(const struct corral_blob *b, const char *s)
{
    return b && strstr(b->data, s) != NULL;
}

static void gc_observe(struct corral_ctrl *c, const struct corral_store_event *ev)
{
    struct gc_state *st = corral_ctrl_state(c);
    if (strncmp(ev->key, EVENT_PREFIX, strlen(EVENT_PREFIX)) == 0) {
        observe_event_object(c, ev);
        return;
    }
    if (ev->type == CORRAL_EVENT_DELETED) {
        observe_deleted(c, ev);
        return;
    }
    struct gc_dep *known = corral_ctrl_map_get(&st->deps, ev->key);
    bool refs_here = mentions(ev->value, "\"ownerReferences\"");
    bool fin = mentions(ev->value, "\"" FG "\"") || mentions(ev->value, "\"" ORPHAN "\"");
    if (!known && !refs_here && !fin)
        return;
    json_t *obj = corral_ctrl_extract_blob(ev->value, owner_fields);
    if (!obj)
        return;
    json_t *refs = json_object_get(json_object_get(obj, "metadata"), "ownerReferences");
    if (!same_owners(known, refs)) {
        unlink_dep(st, ev->key);
        if (json_array_size(refs)) {
            link_dep(st, ev->key, refs);
            enqueue2(c, 'D', ev->key);
        }
    }
    const char *uid = corral_ctrl_uid(obj);
    if (uid && corral_ctrl_deleting(obj) &&
        (corral_ctrl_has_finalizer(obj, FG) || corral_ctrl_has_finalizer(obj, ORPHAN))) {
        char *copy = strdup(ev->key);
        if (copy)
            free(corral_ctrl_map_put(&st->waiting, uid, copy));
        enqueue2(c, 'O', ev->key);
    }
    if (corral_ctrl_deleting(obj))
        poke_waiting_owners(c, ev->key);
    json_decref(obj);
}

static void gc_resync(struct corral_ctrl *c)
{
    struct gc_state *st = corral_ctrl_state(c);
    size_t pos = 0;
    const char *uid;
    void *okey;
    while (corral_ctrl_map_next(&st->waiting, &pos, &uid, &okey))
        enqueue2(c, 'O', okey);
}

/* ---- resolving keys and owner references ---- */

struct key_lookup {
    const char *key;
    const struct corral_resource *res;
    size_t best;
};

static void match_prefix(const struct corral_resource *res, void *ctx)
{
    struct key_lookup *kl = ctx;
    char prefix[CORRAL_CTRL_KEY_MAX];
    if (!res->stored || !corral_resource_key(res, NULL, NULL, prefix, sizeof(prefix)))
        return;
    size_t n = strlen(prefix);
    if (n > kl->best && strncmp(kl->key, prefix, n) == 0) {
        kl->res = res;
        kl->best = n;
    }
}

/* The kind stored at key, and its namespace and name (in buf). */
static const struct corral_resource *resolve_key(const char *key, char *buf, size_t len,
                                                 const char **ns, const char **name)
{
    struct key_lookup kl = {.key = key};
    corral_resources_foreach(match_prefix, &kl);
    if (!kl.res || corral_ctrl_split_key(key, kl.res->namespaced, buf, len, ns, name) < 0)
        return NULL;
    return kl.res;
}

enum owner_state { OWNER_SOLID, OWNER_DANGLING, OWNER_WAITING };

static enum owner_state classify(struct corral_ctrl *c, const json_t *ref, const char *dep_ns)
{
    const struct corral_resource *res =
        corral_resource_find_kind(json_string_value(json_object_get(ref, "apiVersion")),
                                  json_string_value(json_object_get(ref, "kind")));
    const char *name = json_string_value(json_object_get(ref, "name"));
    const char *uid = json_string_value(json_object_get(ref, "uid"));
    if (!res || !name || !uid || (res->namespaced && !dep_ns))
        return OWNER_SOLID; /* cannot tell (or an invalid reference): never delete on a guess */
    json_t *owner = NULL;
    int rc =
        corral_objects_get(corral_ctrl_srv(c), res, res->namespaced ? dep_ns : NULL, name, &owner);
    if (rc == CORRAL_ENOTFOUND)
        return OWNER_DANGLING;
    if (rc < 0)
        return OWNER_SOLID;
    const char *cur = corral_ctrl_uid(owner);
    enum owner_state s = !cur || strcmp(cur, uid) != 0 ? OWNER_DANGLING
                         : corral_ctrl_deleting(owner) && corral_ctrl_has_finalizer(owner, FG)
                             ? OWNER_WAITING
                             : OWNER_SOLID;
    json_decref(owner);
    return s;
}

/* ---- dependents ---- */

static int remove_refs(struct corral_ctrl *c, const struct corral_resource *res, json_t *obj,
                       const bool *drop)
{
    json_t *refs = json_object_get(json_object_get(obj, "metadata"), "ownerReferences");
    for (size_t i = json_array_size(refs); i-- > 0;)
        if (drop[i])
            json_array_remove(refs, i);
    if (json_array_size(refs) == 0)
        json_object_del(json_object_get(obj, "metadata"), "ownerReferences");
    int rc = corral_objects_update(corral_ctrl_srv(c), res, json_incref(obj), false, NULL);
    return rc == CORRAL_ENOTFOUND ? 0 : rc;
}

static const char *policy_for(struct gc_state *st, const json_t *obj, bool waiting_owner)
{
    const char *uid = corral_ctrl_uid(obj);
    bool has_deps = uid && corral_ctrl_map_get(&st->owners, uid);
    if (waiting_owner && has_deps)
        return "Foreground";
    if (corral_ctrl_has_finalizer(obj, ORPHAN))
        return "Orphan";
    if (corral_ctrl_has_finalizer(obj, FG))
        return "Foreground";
    return "Background";
}

static int attempt_delete(struct corral_ctrl *c, const char *key)
{
    struct gc_state *st = corral_ctrl_state(c);
    char buf[CORRAL_CTRL_KEY_MAX];
    const char *ns, *name;
    const struct corral_resource *res = resolve_key(key, buf, sizeof(buf), &ns, &name);
    json_t *obj = NULL;
    if (!res || corral_objects_get(corral_ctrl_srv(c), res, ns, name, &obj) < 0)
        return 0;
    json_t *refs = json_object_get(json_object_get(obj, "metadata"), "ownerReferences");
    size_t n = json_array_size(refs), solid = 0, dangling = 0, waiting = 0;
    bool *drop = calloc(n + 1, sizeof(*drop));
    int rc = drop ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        enum owner_state s = classify(c, json_array_get(refs, i), ns);
        solid += s == OWNER_SOLID;
        waiting += s == OWNER_WAITING;
        dangling += s == OWNER_DANGLING;
        drop[i] = s == OWNER_DANGLING;
    }
    if (rc < 0 || n == 0) {
        /* nothing to decide */
    } else if (solid > 0) {
        if (dangling > 0)
            rc = remove_refs(c, res, obj, drop);
    } else if (!corral_ctrl_deleting(obj)) {
        const char *policy = policy_for(st, obj, waiting > 0);
        corral_debug("gc", "deleting %s (%s): its owners are %s", key, policy,
                     waiting ? "being deleted in foreground" : "gone");
        rc = corral_ctrl_delete(c, res, ns, name, corral_ctrl_uid(obj), -1, policy);
        rc = rc == CORRAL_ENOTFOUND ? 0 : rc;
    }
    free(drop);
    json_decref(obj);
    return rc;
}

/* ---- owners in Foreground / Orphan deletion ---- */

static int drop_finalizer(struct corral_ctrl *c, const struct corral_resource *res, json_t *owner,
                          const char *f)
{
    json_t *copy = json_deep_copy(owner);
    corral_ctrl_remove_finalizer(copy, f);
    if (json_array_size(json_object_get(json_object_get(copy, "metadata"), "finalizers")) == 0)
        json_object_del(json_object_get(copy, "metadata"), "finalizers");
    int rc = corral_objects_update(corral_ctrl_srv(c), res, copy, false, NULL);
    return rc == CORRAL_ENOTFOUND ? 0 : rc;
}

static int orphan_dependents(struct corral_ctrl *c, const char *uid)
{
    struct gc_state *st = corral_ctrl_state(c);
    struct gc_owner *o = corral_ctrl_map_get(&st->owners, uid);
    size_t pos = 0;
    const char *key;
    int rc = 0;
    while (o && corral_ctrl_map_next(&o->deps, &pos, &key, NULL)) {
        char buf[CORRAL_CTRL_KEY_MAX];
        const char *ns, *name;
        const struct corral_resource *res = resolve_key(key, buf, sizeof(buf), &ns, &name);
        json_t *obj = NULL;
        if (!res || corral_objects_get(corral_ctrl_srv(c), res, ns, name, &obj) < 0)
            continue;
        json_t *refs = json_object_get(json_object_get(obj, "metadata"), "ownerReferences");
        size_t n = json_array_size(refs);
        bool *drop = calloc(n + 1, sizeof(*drop)), any = false;
        for (size_t i = 0; drop && i < n; i++) {
            const char *u = json_string_value(json_object_get(json_array_get(refs, i), "uid"));
            drop[i] = u && strcmp(u, uid) == 0;
            any |= drop[i];
        }
        int r = !drop ? -ENOMEM : any ? remove_refs(c, res, obj, drop) : 0;
        if (r < 0)
            rc = r;
        free(drop);
        json_decref(obj);
    }
    return rc;
}

/* Deletes the dependents of uid; returns how many blocking ones are still there. */
static size_t delete_dependents(struct corral_ctrl *c, const char *uid)
{
    struct gc_state *st = corral_ctrl_state(c);
    struct gc_owner *o = corral_ctrl_map_get(&st->owners, uid);
    size_t pos = 0, blocking = 0;
    const char *key;
    void *flags;
    while (o && corral_ctrl_map_next(&o->deps, &pos, &key, &flags)) {
        enqueue2(c, 'D', key);
        if ((uintptr_t)flags == 2)
            blocking++;
    }
    return blocking;
}

static int process_owner(struct corral_ctrl *c, const char *key)
{
    char buf[CORRAL_CTRL_KEY_MAX];
    const char *ns, *name;
    const struct corral_resource *res = resolve_key(key, buf, sizeof(buf), &ns, &name);
    json_t *owner = NULL;
    if (!res || corral_objects_get(corral_ctrl_srv(c), res, ns, name, &owner) < 0)
        return 0;
    int rc = 0;
    const char *uid = corral_ctrl_uid(owner);
    if (!corral_ctrl_deleting(owner) || !uid) {
        /* not being deleted (any more) */
    } else if (corral_ctrl_has_finalizer(owner, ORPHAN)) {
        rc = orphan_dependents(c, uid);
        if (rc == 0)
            rc = drop_finalizer(c, res, owner, ORPHAN);
    } else if (corral_ctrl_has_finalizer(owner, FG)) {
        if (delete_dependents(c, uid) == 0)
            rc = drop_finalizer(c, res, owner, FG);
    }
    json_decref(owner);
    return rc;
}

/* ---- Event expiry ---- */

static int sweep_events(struct corral_ctrl *c)
{
    struct gc_state *st = corral_ctrl_state(c);
    time_t now = corral_ctrl_now();
    size_t pos = 0;
    const char *key;
    void *v;
    char **expired = NULL;
    size_t n = 0, cap = 0;
    while (corral_ctrl_map_next(&st->events, &pos, &key, &v)) {
        if ((time_t)(uintptr_t)v + EVENT_TTL_S > now)
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            char **e = realloc(expired, nc * sizeof(*e));
            if (!e)
                break;
            expired = e;
            cap = nc;
        }
        if ((expired[n] = strdup(key)))
            n++;
    }
    for (size_t i = 0; i < n; i++) {
        char buf[CORRAL_CTRL_KEY_MAX];
        const char *ns, *name;
        if (corral_ctrl_split_key(expired[i], true, buf, sizeof(buf), &ns, &name) == 0)
            corral_ctrl_delete(c, corral_ctrl_kinds()->events, ns, name, NULL, 0, NULL);
        corral_ctrl_map_del(&st->events, expired[i]);
        free(expired[i]);
    }
    free(expired);
    corral_ctrl_enqueue(c, "events", EVENT_SWEEP_MS);
    return 0;
}

static int gc_sync(struct corral_ctrl *c, const char *item)
{
    if (strcmp(item, "events") == 0)
        return sweep_events(c);
    if (item[0] == 'D')
        return attempt_delete(c, item + 1);
    if (item[0] == 'O')
        return process_owner(c, item + 1);
    return 0;
}

const struct corral_ctrl_def corral_ctrl_gc = {
    .name = "gc",
    .component = "garbage-collector-controller",
    .prefixes = {"/registry/"},
    .resync_s = 60,
    .init = gc_init,
    .fini = gc_fini,
    .reset = gc_reset,
    .observe = gc_observe,
    .resync = gc_resync,
    .sync = gc_sync,
};
