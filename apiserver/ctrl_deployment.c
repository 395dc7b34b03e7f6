/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctrl_deployment: the Deployment controller.
 *
 * A Deployment owns ReplicaSets named "<deployment>-<pod-template-hash>": the hash (FNV-1a of
 * the pod template plus status.collisionCount, encoded as Kubernetes encodes it) is added as
 * the pod-template-hash label to the ReplicaSet's selector, template and labels. The
 * ReplicaSet whose template equals the Deployment's (ignoring that label) is the new one;
 * the others are old. Rollouts:
 *
 *   RollingUpdate: the new ReplicaSet grows while the total stays within replicas + maxSurge;
 *   old ones shrink (unhealthy replicas first, then oldest first) while the available total
 *   stays at least replicas - maxUnavailable (percentages: surge rounds up, unavailable down;
 *   both 0 means maxUnavailable 1), exactly as kube-controller-manager computes it.
 *   Recreate: old ReplicaSets go to 0, and the new one is scaled up only once none of their
 *   pods is left running.
 *
 * A paused Deployment only scales. The deployment.kubernetes.io/revision annotation (on the
 * Deployment and each ReplicaSet) numbers the templates; old ReplicaSets beyond
 * revisionHistoryLimit that are scaled to 0 are deleted. Status: replicas, updatedReplicas,
 * readyReplicas, availableReplicas, unavailableReplicas, observedGeneration, collisionCount
 * and the Available and Progressing conditions (with progressDeadlineSeconds), which is what
 * `kubectl get deploy` and `kubectl rollout status` read. Events: ScalingReplicaSet.
 *
 * Indexes: each Deployment's UID and selector, each ReplicaSet's controller UID and labels,
 * and, for Recreate, the number of unfinished pods per ReplicaSet UID.
 */
#include "ctrl.h"
#include "ctrl_extract.h"
#include "ctrl_map.h"
#include "ctrl_util.h"
#include "error.h"
#include "log.h"
#include "meta.h"
#include "objects.h"
#include "selector.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HASH_LABEL "pod-template-hash"
#define REVISION "deployment.kubernetes.io/revision"
#define DESIRED "deployment.kubernetes.io/desired-replicas"
#define MAX_REPLICAS "deployment.kubernetes.io/max-replicas"

struct dep_ent {
    char *key, *ns, *uid;
    struct corral_selector *sel;
};

struct rs_link {
    char *key, *ns, *uid;
    char *owner; /* controller uid or NULL */
    json_t *labels;
};

struct pod_link {
    char *rs_uid;
    bool running; /* not Succeeded/Failed (terminating pods still run) */
};

struct dep_state {
    struct corral_ctrl_map deps;       /* deployment key -> dep_ent */
    struct corral_ctrl_map dep_by_uid; /* uid -> dep_ent (borrowed) */
    struct corral_ctrl_map rses;       /* rs key -> rs_link */
    struct corral_ctrl_map rs_by_uid;  /* rs uid -> rs_link (borrowed) */
    struct corral_ctrl_map rs_owned;   /* deployment uid -> set of rs keys */
    struct corral_ctrl_map rs_orphans; /* namespace -> set of rs keys */
    struct corral_ctrl_map pods;       /* pod key -> pod_link */
    struct corral_ctrl_map running;    /* rs uid -> (uintptr_t) running pods */
};

/* ---- indexes ---- */

static void dep_ent_free(void *v)
{
    struct dep_ent *e = v;
    if (!e)
        return;
    free(e->key);
    free(e->ns);
    free(e->uid);
    corral_selector_free(e->sel);
    free(e);
}

static void rs_link_free(void *v)
{
    struct rs_link *l = v;
    if (!l)
        return;
    free(l->key);
    free(l->ns);
    free(l->uid);
    free(l->owner);
    json_decref(l->labels);
    free(l);
}

static void pod_link_free(void *v)
{
    struct pod_link *l = v;
    if (l)
        free(l->rs_uid);
    free(l);
}

static void dep_reset(struct corral_ctrl *c)
{
    struct dep_state *st = corral_ctrl_state(c);
    corral_ctrl_map_clear(&st->dep_by_uid, NULL);
    corral_ctrl_map_clear(&st->deps, dep_ent_free);
    corral_ctrl_map_clear(&st->rs_by_uid, NULL);
    corral_ctrl_map_clear(&st->rses, rs_link_free);
    corral_ctrl_multimap_clear(&st->rs_owned);
    corral_ctrl_multimap_clear(&st->rs_orphans);
    corral_ctrl_map_clear(&st->pods, pod_link_free);
    corral_ctrl_map_clear(&st->running, NULL);
}

static int dep_init(struct corral_ctrl *c)
{
    struct dep_state *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    corral_ctrl_set_state(c, st);
    return 0;
}

static void dep_fini(struct corral_ctrl *c)
{
    dep_reset(c);
    free(corral_ctrl_state(c));
}

static void observe_deployment(struct corral_ctrl *c, const struct corral_store_event *ev)
{
    struct dep_state *st = corral_ctrl_state(c);
    struct dep_ent *old = corral_ctrl_map_del(&st->deps, ev->key);
    if (old)
        corral_ctrl_map_del(&st->dep_by_uid, old->uid);
    dep_ent_free(old);
    if (ev->type == CORRAL_EVENT_DELETED)
        return;
    json_t *obj = corral_blob_json(ev->value);
    struct dep_ent *e = calloc(1, sizeof(*e));
    const char *uid = corral_ctrl_uid(obj), *ns = corral_meta_namespace(obj);
    char err[128];
    if (!e || !uid || !ns || !(e->key = strdup(ev->key)) || !(e->ns = strdup(ns)) ||
        !(e->uid = strdup(uid)) ||
        corral_selector_from_json(json_object_get(json_object_get(obj, "spec"), "selector"),
                                  &e->sel, err, sizeof(err)) < 0 ||
        corral_ctrl_map_put(&st->deps, e->key, e) == e) {
        dep_ent_free(e);
        json_decref(obj);
        return;
    }
    json_decref(obj);
    corral_ctrl_map_put(&st->dep_by_uid, e->uid, e);
    corral_ctrl_enqueue(c, ev->key, 0);
}

/* Enqueues the Deployment owning l, or those that could adopt it. */
static void enqueue_for_rs(struct corral_ctrl *c, const struct rs_link *l)
{
    struct dep_state *st = corral_ctrl_state(c);
    if (l->owner) {
        struct dep_ent *e = corral_ctrl_map_get(&st->dep_by_uid, l->owner);
        if (e)
            corral_ctrl_enqueue(c, e->key, 0);
        return;
    }
    size_t pos = 0;
    const char *key;
    void *v;
    while (corral_ctrl_map_next(&st->deps, &pos, &key, &v)) {
        struct dep_ent *e = v;
        if (strcmp(e->ns, l->ns) == 0 && !corral_selector_is_empty(e->sel) &&
            corral_selector_match_labels(e->sel, l->labels))
            corral_ctrl_enqueue(c, key, 0);
    }
}

static void unlink_rs(struct dep_state *st, struct rs_link *l)
{
    corral_ctrl_map_del(&st->rs_by_uid, l->uid);
    if (l->owner)
        corral_ctrl_multimap_del(&st->rs_owned, l->owner, l->key);
    else
        corral_ctrl_multimap_del(&st->rs_orphans, l->ns, l->key);
}

static struct rs_link *parse_rs_link(const json_t *obj, const char *key)
{
    struct rs_link *l = calloc(1, sizeof(*l));
    const char *uid = corral_ctrl_uid(obj), *ns = corral_meta_namespace(obj);
    const char *owner = json_string_value(json_object_get(corral_ctrl_controller_ref(obj), "uid"));
    json_t *labels = corral_meta_labels(obj);
    if (!l || !uid || !ns || !(l->key = strdup(key)) || !(l->ns = strdup(ns)) ||
        !(l->uid = strdup(uid)) || (owner && !(l->owner = strdup(owner)))) {
        rs_link_free(l);
        return NULL;
    }
    l->labels = json_is_object(labels) ? json_deep_copy(labels) : json_object();
    return l;
}

static void observe_rs(struct corral_ctrl *c, const struct corral_store_event *ev)
{
    struct dep_state *st = corral_ctrl_state(c);
    struct rs_link *old = corral_ctrl_map_del(&st->rses, ev->key), *l = NULL;
    if (old) {
        unlink_rs(st, old);
        enqueue_for_rs(c, old);
    }
    rs_link_free(old);
    if (ev->type == CORRAL_EVENT_DELETED)
        return;
    json_t *obj = corral_blob_json(ev->value);
    l = obj ? parse_rs_link(obj, ev->key) : NULL;
    json_decref(obj);
    if (!l || corral_ctrl_map_put(&st->rses, l->key, l) == l) {
        rs_link_free(l);
        return;
    }
    corral_ctrl_map_put(&st->rs_by_uid, l->uid, l);
    if (l->owner)
        corral_ctrl_multimap_add(&st->rs_owned, l->owner, l->key);
    else
        corral_ctrl_multimap_add(&st->rs_orphans, l->ns, l->key);
    enqueue_for_rs(c, l);
}

static void count_running(struct dep_state *st, const struct pod_link *l, int delta)
{
    if (!l || !l->running || !l->rs_uid)
        return;
    uintptr_t n = (uintptr_t)corral_ctrl_map_get(&st->running, l->rs_uid);
    n = delta > 0 ? n + 1 : (n ? n - 1 : 0);
    if (n)
        corral_ctrl_map_put(&st->running, l->rs_uid, (void *)n);
    else
        corral_ctrl_map_del(&st->running, l->rs_uid);
}

static const char *const pod_fields[] = {"metadata.ownerReferences", "status.phase", NULL};

/* Pods matter only to Recreate, which waits until no old pod runs. */
static void observe_pod(struct corral_ctrl *c, const struct corral_store_event *ev)
{
    struct dep_state *st = corral_ctrl_state(c);
    struct pod_link *old = corral_ctrl_map_del(&st->pods, ev->key), *l = NULL;
    count_running(st, old, -1);
    if (ev->type != CORRAL_EVENT_DELETED) {
        json_t *obj = corral_ctrl_extract_blob(ev->value, pod_fields);
        const char *owner =
            json_string_value(json_object_get(corral_ctrl_controller_ref(obj), "uid"));
        const char *phase =
            json_string_value(json_object_get(json_object_get(obj, "status"), "phase"));
        if (owner && (l = calloc(1, sizeof(*l))) && (l->rs_uid = strdup(owner))) {
            l->running =
                !phase || (strcmp(phase, "Succeeded") != 0 && strcmp(phase, "Failed") != 0);
            if (corral_ctrl_map_put(&st->pods, ev->key, l) == l) {
                pod_link_free(l);
                l = NULL;
            }
        } else if (l) {
            pod_link_free(l);
            l = NULL;
        }
        json_decref(obj);
    }
    count_running(st, l, +1);
    /* an old ReplicaSet's pod finished or went away: a Recreate rollout may go on */
    const char *rs_uid = old ? old->rs_uid : NULL;
    bool changed = !l || (old && old->running != l->running);
    struct rs_link *rl = rs_uid && changed ? corral_ctrl_map_get(&st->rs_by_uid, rs_uid) : NULL;
    if (rl && rl->owner) {
        struct dep_ent *e = corral_ctrl_map_get(&st->dep_by_uid, rl->owner);
        if (e)
            corral_ctrl_enqueue(c, e->key, 0);
    }
    pod_link_free(old);
}

static void dep_observe(struct corral_ctrl *c, const struct corral_store_event *ev)
{
    if (strncmp(ev->key, "/registry/apps/deployments/", 27) == 0)
        observe_deployment(c, ev);
    else if (strncmp(ev->key, "/registry/apps/replicasets/", 27) == 0)
        observe_rs(c, ev);
    else
        observe_pod(c, ev);
}

static void dep_resync(struct corral_ctrl *c)
{
    struct dep_state *st = corral_ctrl_state(c);
    size_t pos = 0;
    const char *key;
    while (corral_ctrl_map_next(&st->deps, &pos, &key, NULL))
        corral_ctrl_enqueue(c, key, 0);
}

/* ---- the pod template hash ---- */

/* Drops null members (a client's "creationTimestamp": null means absent), recursively. */
static void strip_nulls(json_t *v)
{
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) strip_nulls(e);
        return;
    }
    if (!json_is_object(v))
        return;
    const char *k;
    json_t *e, *tmp;
    json_object_foreach_safe(v, tmp, k, e)
    {
        if (json_is_null(e))
            json_object_del(v, k);
        else
            strip_nulls(e);
    }
}

/* The template as compared and hashed: no nulls, no pod-template-hash label. */
static json_t *normalized_template(const json_t *tmpl)
{
    json_t *copy = json_deep_copy(tmpl);
    strip_nulls(copy);
    json_t *meta = json_object_get(copy, "metadata");
    json_t *labels = json_object_get(meta, "labels");
    json_object_del(labels, HASH_LABEL);
    if (labels && json_object_size(labels) == 0)
        json_object_del(meta, "labels");
    if (meta && json_object_size(meta) == 0)
        json_object_del(copy, "metadata");
    return copy;
}

/* As Kubernetes' ComputeHash + rand.SafeEncodeString. out holds at least 11 bytes. */
static void template_hash(const json_t *tmpl, json_int_t collisions, char out[16])
{
    json_t *copy = normalized_template(tmpl);
    char *text = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(copy);
    uint32_t h = 2166136261u;
    for (const char *p = text ? text : ""; *p; p++) {
        h ^= (unsigned char)*p;
        h *= 16777619u;
    }
    free(text);
    if (collisions > 0) {
        uint32_t v = (uint32_t)collisions; /* little-endian bytes, as binary.LittleEndian */
        for (int i = 0; i < 4; i++) {
            h ^= (v >> (8 * i)) & 0xff;
            h *= 16777619u;
        }
    }
    static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
    char digits[16];
    snprintf(digits, sizeof(digits), "%" PRIu32, h);
    size_t i = 0;
    for (; digits[i]; i++)
        out[i] = alphabet[(unsigned char)digits[i] % (sizeof(alphabet) - 1)];
    out[i] = 0;
}

static bool same_template(const json_t *rs_tmpl, const json_t *dep_tmpl)
{
    json_t *a = normalized_template(rs_tmpl), *b = normalized_template(dep_tmpl);
    bool eq = json_equal(a, b);
    json_decref(a);
    json_decref(b);
    return eq;
}

/* ---- sync ---- */

struct rs_view {
    json_t *obj; /* owned, current */
    long spec, replicas, ready, available;
    long revision;
    bool deleting;
};

struct dep_sync {
    struct corral_ctrl *c;
    struct dep_state *st;
    struct dep_ent *ent;
    json_t *d; /* the Deployment as last read or written */
    const char *ns;
    char name[256];
    long replicas, min_ready, max_surge, max_unavailable;
    bool recreate, paused;
    struct rs_view *all; /* every owned ReplicaSet */
    size_t n;
    struct rs_view *new_rs; /* points into all, or NULL */
    json_int_t collisions;
    json_t *status; /* the status being built (conditions set along the way) */
};

static long annotation_long(const json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(corral_meta_annotations(obj), key));
    return v ? atol(v) : 0;
}

static void view_refresh(struct rs_view *v)
{
    json_t *spec = json_object_get(v->obj, "spec"), *st = json_object_get(v->obj, "status");
    v->spec = (long)corral_ctrl_int(spec, "replicas", 1);
    v->replicas = (long)corral_ctrl_int(st, "replicas", 0);
    v->ready = (long)corral_ctrl_int(st, "readyReplicas", 0);
    v->available = (long)corral_ctrl_int(st, "availableReplicas", 0);
    /* a status not yet caught up with a scale-down must not count pods being removed */
    long gen = (long)corral_ctrl_int(json_object_get(v->obj, "metadata"), "generation", 1);
    if ((long)corral_ctrl_int(st, "observedGeneration", 0) < gen) {
        if (v->available > v->spec)
            v->available = v->spec;
        if (v->ready > v->spec)
            v->ready = v->spec;
    }
    v->revision = annotation_long(v->obj, REVISION);
    v->deleting = corral_ctrl_deleting(v->obj);
}

static int load_rses(struct dep_sync *s)
{
    const struct corral_resource *rsres = corral_ctrl_kinds()->replicasets;
    struct corral_ctrl_map *owned = corral_ctrl_multimap_get(&s->st->rs_owned, s->ent->uid);
    struct corral_ctrl_map *orphans = corral_ctrl_multimap_get(&s->st->rs_orphans, s->ns);
    size_t cap = (owned ? corral_ctrl_map_size(owned) : 0) +
                 (orphans ? corral_ctrl_map_size(orphans) : 0) + 1;
    s->all = calloc(cap, sizeof(*s->all));
    if (!s->all)
        return -ENOMEM;
    bool managing = !corral_ctrl_deleting(s->d);
    for (int pass = 0; pass < 2; pass++) {
        struct corral_ctrl_map *set = pass == 0 ? owned : orphans;
        size_t pos = 0;
        const char *key;
        while (set && corral_ctrl_map_next(set, &pos, &key, NULL)) {
            struct rs_link *l = corral_ctrl_map_get(&s->st->rses, key);
            bool match = l && corral_selector_match_labels(s->ent->sel, l->labels);
            char buf[CORRAL_CTRL_KEY_MAX];
            const char *ns, *name;
            if (!l || corral_ctrl_split_key(key, true, buf, sizeof(buf), &ns, &name) < 0)
                continue;
            if (pass == 0 && !match && managing) {
                corral_ctrl_release(s->c, rsres, ns, name, s->d);
                continue;
            }
            if (pass == 1 && (!match || !managing ||
                              corral_ctrl_adopt(s->c, rsres, ns, name, l->uid, s->d, NULL) < 0))
                continue;
            json_t *obj = NULL;
            if (corral_objects_get(corral_ctrl_srv(s->c), rsres, ns, name, &obj) < 0)
                continue;
            s->all[s->n].obj = obj;
            view_refresh(&s->all[s->n]);
            s->n++;
        }
    }
    return 0;
}

static void find_new_rs(struct dep_sync *s)
{
    json_t *tmpl = json_object_get(json_object_get(s->d, "spec"), "template");
    s->new_rs = NULL;
    for (size_t i = 0; i < s->n; i++) {
        json_t *t = json_object_get(json_object_get(s->all[i].obj, "spec"), "template");
        if (!s->all[i].deleting && same_template(t, tmpl) &&
            (!s->new_rs ||
             corral_ctrl_time_at(s->all[i].obj, "metadata", "creationTimestamp", NULL) <
                 corral_ctrl_time_at(s->new_rs->obj, "metadata", "creationTimestamp", NULL)))
            s->new_rs = &s->all[i];
    }
}

static long max_old_revision(const struct dep_sync *s)
{
    long max = 0;
    for (size_t i = 0; i < s->n; i++)
        if (&s->all[i] != s->new_rs && s->all[i].revision > max)
            max = s->all[i].revision;
    return max;
}

static void set_annotation(json_t *obj, const char *key, const char *value)
{
    json_t *meta = corral_meta_get(obj, true);
    json_t *ann = json_object_get(meta, "annotations");
    if (!json_is_object(ann)) {
        ann = json_object();
        json_object_set_new(meta, "annotations", ann);
    }
    json_object_set_new(ann, key, json_string(value));
}

static void set_annotation_long(json_t *obj, const char *key, long v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%ld", v);
    set_annotation(obj, key, buf);
}

/* Writes rs (stolen) and refreshes the view from the stored result. */
static int write_rs(struct dep_sync *s, struct rs_view *v, json_t *rs)
{
    json_t *out = NULL;
    int rc = corral_objects_update(corral_ctrl_srv(s->c), corral_ctrl_kinds()->replicasets, rs,
                                   false, &out);
    if (rc < 0)
        return rc;
    json_decref(v->obj);
    v->obj = out;
    view_refresh(v);
    return 0;
}

/* Sets v's replicas to n (and its annotations), recording a ScalingReplicaSet Event. */
static int scale_rs(struct dep_sync *s, struct rs_view *v, long n)
{
    if (v->spec == n && annotation_long(v->obj, DESIRED) == s->replicas)
        return 0;
    long from = v->spec;
    json_t *rs = json_deep_copy(v->obj);
    json_object_set_new(json_object_get(rs, "spec"), "replicas", json_integer(n));
    set_annotation_long(rs, DESIRED, s->replicas);
    set_annotation_long(rs, MAX_REPLICAS, s->replicas + s->max_surge);
    int rc = write_rs(s, v, rs);
    if (rc == 0 && from != n)
        corral_ctrl_event(s->c, s->d, "Normal", "ScalingReplicaSet",
                          "Scaled %s replica set %s from %ld to %ld", n > from ? "up" : "down",
                          corral_meta_name(v->obj), from, n);
    return rc;
}

static long total_spec(const struct dep_sync *s)
{
    long n = 0;
    for (size_t i = 0; i < s->n; i++)
        n += s->all[i].spec;
    return n;
}

static long total_available(const struct dep_sync *s)
{
    long n = 0;
    for (size_t i = 0; i < s->n; i++)
        n += s->all[i].available;
    return n;
}

static void copy_annotations(const json_t *d, json_t *rs)
{
    const char *k;
    json_t *v;
    json_object_foreach(corral_meta_annotations(d), k, v)
    {
        if (strcmp(k, "kubectl.kubernetes.io/last-applied-configuration") == 0 ||
            strncmp(k, "deployment.kubernetes.io/", 25) == 0 || !json_is_string(v))
            continue;
        set_annotation(rs, k, json_string_value(v));
    }
}

static json_t *new_rs_object(struct dep_sync *s, const char *hash, long replicas, long rev)
{
    json_t *spec = json_object_get(s->d, "spec");
    json_t *tmpl = json_deep_copy(json_object_get(spec, "template"));
    json_t *tmeta = corral_meta_get(tmpl, true);
    json_t *labels = json_object_get(tmeta, "labels");
    if (!json_is_object(labels)) {
        labels = json_object();
        json_object_set_new(tmeta, "labels", labels);
    }
    json_object_set_new(labels, HASH_LABEL, json_string(hash));
    json_t *sel = json_deep_copy(json_object_get(spec, "selector"));
    json_t *ml = json_object_get(sel, "matchLabels");
    if (!json_is_object(ml)) {
        ml = json_object();
        json_object_set_new(sel, "matchLabels", ml);
    }
    json_object_set_new(ml, HASH_LABEL, json_string(hash));
    char name[300];
    snprintf(name, sizeof(name), "%s-%s", s->name, hash);
    json_t *rs =
        json_pack("{s:s, s:s, s:{s:s, s:s, s:O, s:[o]}, s:{s:I, s:I, s:o, s:o}}", "apiVersion",
                  "apps/v1", "kind", "ReplicaSet", "metadata", "name", name, "namespace", s->ns,
                  "labels", labels, "ownerReferences", corral_ctrl_owner_ref(s->d, true, true),
                  "spec", "replicas", (json_int_t)replicas, "minReadySeconds",
                  (json_int_t)s->min_ready, "selector", sel, "template", tmpl);
    copy_annotations(s->d, rs);
    set_annotation_long(rs, REVISION, rev);
    set_annotation_long(rs, DESIRED, s->replicas);
    set_annotation_long(rs, MAX_REPLICAS, s->replicas + s->max_surge);
    return rs;
}

static int bump_collisions(struct dep_sync *s)
{
    json_t *d = json_deep_copy(s->d);
    json_t *st = json_object_get(d, "status");
    if (!json_is_object(st)) {
        st = json_object();
        json_object_set_new(d, "status", st);
    }
    json_object_set_new(st, "collisionCount", json_integer(s->collisions + 1));
    int rc = corral_objects_update(corral_ctrl_srv(s->c), corral_ctrl_kinds()->deployments, d, true,
                                   NULL);
    return rc < 0 ? rc : CORRAL_ECONFLICT; /* retry with the new hash */
}

static void set_progressing(struct dep_sync *s, const char *reason, const char *fmt,
                            const char *rs_name);

static int create_new_rs(struct dep_sync *s)
{
    long initial = s->replicas;
    if (!s->recreate) {
        long room = s->replicas + s->max_surge - total_spec(s);
        initial = room < 0 ? 0 : room < s->replicas ? room : s->replicas;
    }
    char hash[16];
    template_hash(json_object_get(json_object_get(s->d, "spec"), "template"), s->collisions, hash);
    json_t *out = NULL;
    int rc = corral_objects_create(corral_ctrl_srv(s->c), corral_ctrl_kinds()->replicasets, s->ns,
                                   new_rs_object(s, hash, initial, max_old_revision(s) + 1), &out);
    if (rc == CORRAL_EEXISTS)
        return bump_collisions(s); /* a ReplicaSet of that name with another template */
    if (rc < 0)
        return rc;
    s->all[s->n].obj = out;
    view_refresh(&s->all[s->n]);
    s->new_rs = &s->all[s->n++];
    corral_ctrl_event(s->c, s->d, "Normal", "ScalingReplicaSet",
                      "Scaled up replica set %s from 0 to %ld", corral_meta_name(out), initial);
    set_progressing(s, "NewReplicaSetCreated", "Created new replica set \"%s\"",
                    corral_meta_name(out));
    return 0;
}

/*
 * Keeps the new ReplicaSet's revision newest, its minReadySeconds and annotations (such as
 * kubernetes.io/change-cause) those of the Deployment, and the Deployment's revision
 * annotation equal to it.
 */
static int sync_revision(struct dep_sync *s)
{
    if (!s->new_rs)
        return 0;
    long rev = max_old_revision(s) + 1;
    json_t *rs = json_deep_copy(s->new_rs->obj);
    if (s->new_rs->revision < rev)
        set_annotation_long(rs, REVISION, rev);
    else
        rev = s->new_rs->revision;
    json_object_set_new(json_object_get(rs, "spec"), "minReadySeconds", json_integer(s->min_ready));
    copy_annotations(s->d, rs);
    int rc = 0;
    if (!json_equal(rs, s->new_rs->obj))
        rc = write_rs(s, s->new_rs, rs);
    else
        json_decref(rs);
    if (rc == 0 && annotation_long(s->d, REVISION) != rev) {
        json_t *d = json_deep_copy(s->d), *out = NULL;
        set_annotation_long(d, REVISION, rev);
        rc = corral_objects_update(corral_ctrl_srv(s->c), corral_ctrl_kinds()->deployments, d,
                                   false, &out);
        if (rc == 0) {
            json_decref(s->d);
            s->d = out;
        }
    }
    return rc;
}

/* ---- rolling update (kube-controller-manager's rolling.go) ---- */

static int reconcile_new(struct dep_sync *s, bool *scaled)
{
    struct rs_view *nr = s->new_rs;
    *scaled = false;
    if (!nr || nr->spec == s->replicas)
        return 0;
    long target = s->replicas;
    if (nr->spec < s->replicas) {
        long room = s->replicas + s->max_surge - total_spec(s);
        if (room <= 0)
            return 0;
        long up = s->replicas - nr->spec;
        target = nr->spec + (room < up ? room : up);
    }
    *scaled = true;
    return scale_rs(s, nr, target);
}

static int cmp_created(const void *a, const void *b)
{
    const struct rs_view *x = *(struct rs_view *const *)a, *y = *(struct rs_view *const *)b;
    time_t tx = corral_ctrl_time_at(x->obj, "metadata", "creationTimestamp", NULL);
    time_t ty = corral_ctrl_time_at(y->obj, "metadata", "creationTimestamp", NULL);
    if (tx != ty)
        return tx < ty ? -1 : 1;
    return strcmp(corral_meta_name(x->obj), corral_meta_name(y->obj));
}

/* Old ReplicaSets, oldest first (borrowed views). */
static size_t old_sorted(struct dep_sync *s, struct rs_view **out)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++)
        if (&s->all[i] != s->new_rs)
            out[n++] = &s->all[i];
    qsort(out, n, sizeof(*out), cmp_created);
    return n;
}

static int reconcile_old(struct dep_sync *s, struct rs_view **old, size_t nold, bool *scaled)
{
    *scaled = false;
    long old_pods = 0;
    for (size_t i = 0; i < nold; i++)
        old_pods += old[i]->spec;
    if (old_pods == 0)
        return 0;
    long min_available = s->replicas - s->max_unavailable;
    long new_unavailable = s->new_rs ? s->new_rs->spec - s->new_rs->available : 0;
    long max_down = total_spec(s) - min_available - new_unavailable;
    if (max_down <= 0)
        return 0;
    int rc = 0;
    long cleaned = 0;
    for (size_t i = 0; i < nold && rc == 0 && cleaned < max_down; i++) {
        struct rs_view *v = old[i];
        if (v->spec == 0 || v->spec <= v->available)
            continue;
        long down = v->spec - v->available;
        if (down > max_down - cleaned)
            down = max_down - cleaned;
        rc = scale_rs(s, v, v->spec - down);
        cleaned += down;
    }
    long avail = total_available(s), done = 0;
    if (rc == 0 && avail > min_available) {
        long want = avail - min_available;
        for (size_t i = 0; i < nold && rc == 0 && done < want; i++) {
            struct rs_view *v = old[i];
            if (v->spec == 0)
                continue;
            long down = v->spec < want - done ? v->spec : want - done;
            rc = scale_rs(s, v, v->spec - down);
            done += down;
        }
    }
    *scaled = cleaned + done > 0;
    return rc;
}

static int rolling_update(struct dep_sync *s, struct rs_view **old, size_t nold)
{
    bool scaled;
    int rc = reconcile_new(s, &scaled);
    if (rc < 0 || scaled)
        return rc;
    return reconcile_old(s, old, nold, &scaled);
}

/* ---- recreate ---- */

static bool old_pods_running(const struct dep_sync *s, struct rs_view **old, size_t nold)
{
    for (size_t i = 0; i < nold; i++) {
        const char *uid = corral_ctrl_uid(old[i]->obj);
        if (old[i]->replicas > 0 || (uid && corral_ctrl_map_get(&s->st->running, uid)))
            return true;
    }
    return false;
}

static int recreate(struct dep_sync *s, struct rs_view **old, size_t nold, bool *waiting)
{
    int rc = 0;
    bool scaled = false;
    *waiting = false;
    for (size_t i = 0; i < nold && rc == 0; i++) {
        if (old[i]->spec > 0) {
            rc = scale_rs(s, old[i], 0);
            scaled = true;
        }
    }
    if (rc < 0 || scaled || old_pods_running(s, old, nold)) {
        *waiting = true;
        return rc;
    }
    if (!s->new_rs)
        return 0;
    return scale_rs(s, s->new_rs, s->replicas);
}

/* ---- paused: scaling only ---- */

static int scale_paused(struct dep_sync *s)
{
    long delta = s->replicas - total_spec(s);
    struct rs_view *target = s->new_rs;
    for (size_t i = 0; i < s->n && !target; i++)
        if (s->all[i].spec > 0 && (!target || s->all[i].revision > target->revision))
            target = &s->all[i];
    if (!target && s->n)
        target = &s->all[0];
    if (!target || delta == 0)
        return 0;
    long n = target->spec + delta;
    return scale_rs(s, target, n < 0 ? 0 : n);
}

/* ---- history and status ---- */

static int cmp_revision(const void *a, const void *b)
{
    const struct rs_view *x = *(struct rs_view *const *)a, *y = *(struct rs_view *const *)b;
    return x->revision < y->revision ? -1 : x->revision > y->revision;
}

static int cleanup_history(struct dep_sync *s, struct rs_view **old, size_t nold)
{
    long limit = (long)corral_ctrl_int(json_object_get(s->d, "spec"), "revisionHistoryLimit", 10);
    struct rs_view **cand = calloc(nold + 1, sizeof(*cand));
    if (!cand)
        return -ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < nold; i++) {
        struct rs_view *v = old[i];
        long gen = (long)corral_ctrl_int(json_object_get(v->obj, "metadata"), "generation", 1);
        long seen =
            (long)corral_ctrl_int(json_object_get(v->obj, "status"), "observedGeneration", 0);
        if (v->spec == 0 && v->replicas == 0 && seen >= gen && !v->deleting)
            cand[n++] = v;
    }
    qsort(cand, n, sizeof(*cand), cmp_revision);
    int rc = 0;
    for (size_t i = 0; (long)n - limit > 0 && i < n - (size_t)limit; i++) {
        int drc = corral_ctrl_delete(s->c, corral_ctrl_kinds()->replicasets, s->ns,
                                     corral_meta_name(cand[i]->obj), corral_ctrl_uid(cand[i]->obj),
                                     -1, NULL);
        if (drc < 0 && drc != CORRAL_ENOTFOUND)
            rc = drc;
    }
    free(cand);
    return rc;
}

static json_t *status_of(struct dep_sync *s)
{
    json_t *st = json_deep_copy(s->status);
    long replicas = 0, ready = 0, available = 0;
    for (size_t i = 0; i < s->n; i++) {
        replicas += s->all[i].replicas;
        ready += s->all[i].ready;
        available += s->all[i].available;
    }
    long unavailable = total_spec(s) - available;
    json_object_set_new(
        st, "observedGeneration",
        json_integer(corral_ctrl_int(json_object_get(s->d, "metadata"), "generation", 1)));
    json_object_set_new(st, "replicas", json_integer(replicas));
    json_object_set_new(st, "updatedReplicas", json_integer(s->new_rs ? s->new_rs->replicas : 0));
    json_object_set_new(st, "readyReplicas", json_integer(ready));
    json_object_set_new(st, "availableReplicas", json_integer(available));
    json_object_set_new(st, "unavailableReplicas", json_integer(unavailable > 0 ? unavailable : 0));
    bool enough = available >= s->replicas - s->max_unavailable;
    corral_ctrl_set_condition(st, "Available", enough ? "True" : "False",
                              enough ? "MinimumReplicasAvailable" : "MinimumReplicasUnavailable",
                              enough ? "Deployment has minimum availability."
                                     : "Deployment does not have minimum availability.",
                              "lastUpdateTime", corral_ctrl_now());
    return st;
}

static void set_progressing(struct dep_sync *s, const char *reason, const char *fmt,
                            const char *rs_name)
{
    char msg[512];
    snprintf(msg, sizeof(msg), fmt, rs_name);
    corral_ctrl_set_condition(s->status, "Progressing", "True", reason, msg, "lastUpdateTime",
                              corral_ctrl_now());
}

static bool complete(const struct dep_sync *s, const json_t *st)
{
    return corral_ctrl_int(st, "updatedReplicas", 0) == s->replicas &&
           corral_ctrl_int(st, "replicas", 0) == s->replicas &&
           corral_ctrl_int(st, "availableReplicas", 0) == s->replicas;
}

static bool progressed(const json_t *old, const json_t *st)
{
    long oo =
        (long)(corral_ctrl_int(old, "replicas", 0) - corral_ctrl_int(old, "updatedReplicas", 0));
    long no =
        (long)(corral_ctrl_int(st, "replicas", 0) - corral_ctrl_int(st, "updatedReplicas", 0));
    return corral_ctrl_int(st, "updatedReplicas", 0) > corral_ctrl_int(old, "updatedReplicas", 0) ||
           no < oo ||
           corral_ctrl_int(st, "readyReplicas", 0) > corral_ctrl_int(old, "readyReplicas", 0) ||
           corral_ctrl_int(st, "availableReplicas", 0) >
               corral_ctrl_int(old, "availableReplicas", 0);
}

/* The Progressing condition; returns seconds until the deadline (0 = none pending). */
static long progress(struct dep_sync *s, json_t *st)
{
    long deadline =
        (long)corral_ctrl_int(json_object_get(s->d, "spec"), "progressDeadlineSeconds", 600);
    const char *rs = s->new_rs ? corral_meta_name(s->new_rs->obj) : "";
    char msg[512];
    time_t now = corral_ctrl_now();
    json_t *cond = corral_ctrl_condition(st, "Progressing");
    const char *reason = json_string_value(json_object_get(cond, "reason"));
    if (s->paused) {
        corral_ctrl_set_condition(st, "Progressing", "Unknown", "DeploymentPaused",
                                  "Deployment is paused", "lastUpdateTime", now);
        return 0;
    }
    if (reason && strcmp(reason, "DeploymentPaused") == 0)
        corral_ctrl_set_condition(st, "Progressing", "Unknown", "DeploymentResumed",
                                  "Deployment is resumed", "lastUpdateTime", now);
    if (complete(s, st)) {
        snprintf(msg, sizeof(msg), "ReplicaSet \"%s\" has successfully progressed.", rs);
        corral_ctrl_set_condition(st, "Progressing", "True", "NewReplicaSetAvailable", msg,
                                  "lastUpdateTime", now);
        return 0;
    }
    if (progressed(json_object_get(s->d, "status"), st) || !cond) {
        snprintf(msg, sizeof(msg), "ReplicaSet \"%s\" is progressing.", rs);
        corral_ctrl_set_condition(st, "Progressing", "True", "ReplicaSetUpdated", msg, NULL, now);
        char ts[21];
        json_object_set_new(corral_ctrl_condition(st, "Progressing"), "lastUpdateTime",
                            json_string(corral_ctrl_format_time(now, ts)));
        return deadline;
    }
    cond = corral_ctrl_condition(st, "Progressing");
    reason = json_string_value(json_object_get(cond, "reason"));
    if (reason && strcmp(reason, "ProgressDeadlineExceeded") == 0)
        return 0;
    time_t since = corral_ctrl_time_at(cond, "lastUpdateTime", NULL);
    if (since && since + deadline <= now) {
        snprintf(msg, sizeof(msg), "ReplicaSet \"%s\" has timed out progressing.", rs);
        corral_ctrl_set_condition(st, "Progressing", "False", "ProgressDeadlineExceeded", msg,
                                  "lastUpdateTime", now);
        corral_ctrl_event(s->c, s->d, "Warning", "ProgressDeadlineExceeded", "%s", msg);
        return 0;
    }
    return since ? (long)(since + deadline - now) : deadline;
}

static int write_status(struct dep_sync *s, long *wake)
{
    json_t *st = status_of(s);
    *wake = progress(s, st);
    json_t *d = json_deep_copy(s->d);
    json_object_set_new(d, "status", st);
    return corral_ctrl_write_status(s->c, corral_ctrl_kinds()->deployments, s->d, d);
}

static int read_strategy(struct dep_sync *s)
{
    json_t *spec = json_object_get(s->d, "spec");
    json_t *strategy = json_object_get(spec, "strategy");
    const char *type = json_string_value(json_object_get(strategy, "type"));
    s->recreate = type && strcmp(type, "Recreate") == 0;
    s->paused = json_is_true(json_object_get(spec, "paused"));
    s->replicas = (long)corral_ctrl_int(spec, "replicas", 1);
    s->min_ready = (long)corral_ctrl_int(spec, "minReadySeconds", 0);
    s->collisions =
        (json_int_t)corral_ctrl_int(json_object_get(s->d, "status"), "collisionCount", 0);
    s->max_surge = s->max_unavailable = 0;
    if (s->recreate)
        return 0;
    json_t *ru = json_object_get(strategy, "rollingUpdate");
    int surge, unavail;
    if (corral_ctrl_int_or_percent(json_object_get(ru, "maxSurge"), (int)s->replicas, true,
                                   (int)((s->replicas * 25 + 99) / 100), &surge) < 0 ||
        corral_ctrl_int_or_percent(json_object_get(ru, "maxUnavailable"), (int)s->replicas, false,
                                   (int)(s->replicas * 25 / 100), &unavail) < 0)
        return -EINVAL;
    if (surge == 0 && unavail == 0)
        unavail = 1;
    s->max_surge = surge;
    s->max_unavailable = unavail > s->replicas ? s->replicas : unavail;
    return 0;
}

static int rollout(struct dep_sync *s)
{
    struct rs_view **old = calloc(s->n + 2, sizeof(*old));
    if (!old)
        return -ENOMEM;
    int rc = 0;
    bool waiting = false;
    if (s->paused) {
        rc = scale_paused(s);
    } else {
        if (!s->new_rs && !s->recreate)
            rc = create_new_rs(s);
        size_t nold = old_sorted(s, old);
        if (rc == 0 && s->recreate) {
            rc = recreate(s, old, nold, &waiting);
            if (rc == 0 && !waiting && !s->new_rs) {
                rc = create_new_rs(s);
                nold = old_sorted(s, old);
            }
        } else if (rc == 0) {
            rc = rolling_update(s, old, nold);
        }
        if (rc == 0 && complete(s, json_object_get(s->d, "status")))
            rc = cleanup_history(s, old, nold);
    }
    free(old);
    return rc;
}

static void sync_free(struct dep_sync *s)
{
    for (size_t i = 0; i < s->n; i++)
        json_decref(s->all[i].obj);
    free(s->all);
    json_decref(s->d);
    json_decref(s->status);
}

static int dep_sync(struct corral_ctrl *c, const char *key)
{
    struct dep_sync s = {.c = c, .st = corral_ctrl_state(c)};
    s.ent = corral_ctrl_map_get(&s.st->deps, key);
    char buf[CORRAL_CTRL_KEY_MAX];
    const char *ns, *name;
    if (!s.ent || corral_ctrl_split_key(key, true, buf, sizeof(buf), &ns, &name) < 0)
        return 0;
    int rc =
        corral_objects_get(corral_ctrl_srv(c), corral_ctrl_kinds()->deployments, ns, name, &s.d);
    if (rc < 0)
        return rc == CORRAL_ENOTFOUND ? 0 : rc;
    s.ns = s.ent->ns;
    snprintf(s.name, sizeof(s.name), "%s", name);
    s.status = json_deep_copy(json_object_get(s.d, "status"));
    if (!json_is_object(s.status)) {
        json_decref(s.status);
        s.status = json_object();
    }
    if (read_strategy(&s) < 0) {
        corral_ctrl_event(c, s.d, "Warning", "InvalidStrategy",
                          "maxSurge and maxUnavailable must be integers or percentages");
        sync_free(&s);
        return 0;
    }
    rc = load_rses(&s);
    if (rc == 0)
        find_new_rs(&s);
    if (rc == 0 && !corral_ctrl_deleting(s.d)) {
        rc = sync_revision(&s);
        if (rc == 0)
            rc = rollout(&s);
    }
    long wake = 0;
    int src = write_status(&s, &wake);
    if (wake > 0)
        corral_ctrl_enqueue(c, key, (unsigned)(wake > 3600 ? 3600 : wake) * 1000u + 100);
    sync_free(&s);
    return rc < 0 ? rc : src;
}

const struct corral_ctrl_def corral_ctrl_deployment = {
    .name = "deployment",
    .component = "deployment-controller",
    .prefixes = {"/registry/apps/deployments/", "/registry/apps/replicasets/", "/registry/pods/"},
    .resync_s = 60,
    .init = dep_init,
    .fini = dep_fini,
    .reset = dep_reset,
    .observe = dep_observe,
    .resync = dep_resync,
    .sync = dep_sync,
};
