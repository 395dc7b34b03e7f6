/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctrl_replicaset: the ReplicaSet controller. Keeps spec.replicas active pods (not finished,
 * not being deleted) for each ReplicaSet, created from spec.template with generateName
 * "<rs>-" and a controller ownerReference (blockOwnerDeletion); deletes the surplus in
 * Kubernetes' order (unscheduled, pending, not ready, newest first); adopts orphan pods its
 * selector matches and releases owned pods it no longer matches; replaces pods that end up
 * Succeeded or Failed; reports replicas, fullyLabeledReplicas, readyReplicas,
 * availableReplicas (ready for minReadySeconds), observedGeneration and the ReplicaFailure
 * condition. Emits SuccessfulCreate / SuccessfulDelete / FailedCreate Events.
 *
 * Indexes (this controller's thread only): pod summaries grouped by controller UID (and the
 * orphans by namespace), and every ReplicaSet's namespace, UID and parsed selector. A pod
 * event enqueues only the ReplicaSet that owns (or may adopt) the pod.
 */
#include "ctrl.h"
#include "ctrl_map.h"
#include "ctrl_pods.h"
#include "ctrl_util.h"
#include "error.h"
#include "log.h"
#include "meta.h"
#include "objects.h"
#include "selector.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BURST 500 /* most pods created or deleted by one sync */

struct rs_ent {
    char *key, *ns, *uid;
    struct corral_selector *sel; /* NULL when the selector is unusable */
};

struct rs_state {
    struct corral_ctrl_map by_key; /* rs key -> struct rs_ent */
    struct corral_ctrl_map by_uid; /* rs uid -> struct rs_ent (borrowed) */
};

static void ent_free(void *v)
{
    struct rs_ent *e = v;
    if (!e)
        return;
    free(e->key);
    free(e->ns);
    free(e->uid);
    corral_selector_free(e->sel);
    free(e);
}

static void rs_reset(struct corral_ctrl *c)
{
    struct rs_state *st = corral_ctrl_state(c);
    corral_ctrl_map_clear(&st->by_uid, NULL);
    corral_ctrl_map_clear(&st->by_key, ent_free);
}

/* Pods a ReplicaSet owns or could adopt; others are no business of this controller. */
static bool keep_pod(const struct corral_ctrl_pod *pod)
{
    return pod && (!pod->owner_uid || corral_ctrl_pod_owned_by(pod, "ReplicaSet"));
}

static int rs_init(struct corral_ctrl *c)
{
    struct rs_state *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    corral_ctrl_map_init(&st->by_key);
    corral_ctrl_map_init(&st->by_uid);
    corral_ctrl_set_state(c, st);
    return 0;
}

static void rs_fini(struct corral_ctrl *c)
{
    rs_reset(c);
    free(corral_ctrl_state(c));
}

static void forget_rs(struct rs_state *st, const char *key)
{
    struct rs_ent *e = corral_ctrl_map_del(&st->by_key, key);
    if (e)
        corral_ctrl_map_del(&st->by_uid, e->uid);
    ent_free(e);
}

static void observe_rs(struct corral_ctrl *c, const struct corral_store_event *ev)
{
    struct rs_state *st = corral_ctrl_state(c);
    forget_rs(st, ev->key);
    if (ev->type == CORRAL_EVENT_DELETED)
        return;
    json_t *obj = corral_blob_json(ev->value);
    struct rs_ent *e = calloc(1, sizeof(*e));
    const char *uid = corral_ctrl_uid(obj), *ns = corral_meta_namespace(obj);
    if (!e || !uid || !ns || !(e->key = strdup(ev->key)) || !(e->ns = strdup(ns)) ||
        !(e->uid = strdup(uid))) {
        ent_free(e);
        json_decref(obj);
        return;
    }
    char err[128];
    if (corral_selector_from_json(json_object_get(json_object_get(obj, "spec"), "selector"),
                                  &e->sel, err, sizeof(err)) < 0)
        e->sel = NULL;
    json_decref(obj);
    if (corral_ctrl_map_put(&st->by_key, e->key, e) == e) {
        ent_free(e);
        return;
    }
    corral_ctrl_map_put(&st->by_uid, e->uid, e);
    corral_ctrl_enqueue(c, ev->key, 0);
}

static bool selects(const struct rs_ent *e, const struct corral_ctrl_pod *pod)
{
    return e->sel && !corral_selector_is_empty(e->sel) && strcmp(e->ns, pod->ns) == 0 &&
           corral_selector_match_labels(e->sel, pod->labels);
}

/* Enqueues the ReplicaSet that owns pod, or every one that could adopt it. */
static void enqueue_for_pod(struct corral_ctrl *c, const struct corral_ctrl_pod *pod)
{
    struct rs_state *st = corral_ctrl_state(c);
    if (pod->owner_uid) {
        struct rs_ent *e = corral_ctrl_map_get(&st->by_uid, pod->owner_uid);
        if (e)
            corral_ctrl_enqueue(c, e->key, 0);
        return;
    }
    if (pod->deleting)
        return;
    size_t pos = 0;
    const char *key;
    void *v;
    while (corral_ctrl_map_next(&st->by_key, &pos, &key, &v))
        if (selects(v, pod))
            corral_ctrl_enqueue(c, key, 0);
}

static void rs_observe(struct corral_ctrl *c, const struct corral_store_event *ev)
{
    if (strncmp(ev->key, "/registry/apps/replicasets/", 27) == 0) {
        observe_rs(c, ev);
        return;
    }
    const struct corral_ctrl_pod *old, *pod;
    corral_ctrl_pod_change(c, &old, &pod);
    if (keep_pod(old))
        enqueue_for_pod(c, old);
    if (keep_pod(pod))
        enqueue_for_pod(c, pod);
}

static void rs_resync(struct corral_ctrl *c)
{
    struct rs_state *st = corral_ctrl_state(c);
    size_t pos = 0;
    const char *key;
    while (corral_ctrl_map_next(&st->by_key, &pos, &key, NULL))
        corral_ctrl_enqueue(c, key, 0);
}

/* ---- sync ---- */

struct rs_sync {
    struct corral_ctrl *c;
    struct rs_state *st;
    json_t *rs;     /* as read */
    const char *ns; /* borrowed from rs */
    const char *name;
    struct rs_ent *ent;
    long replicas, min_ready;
    struct corral_ctrl_pod **pods; /* owned pods after claiming (borrowed from held) */
    size_t npods;
    struct corral_ctrl_pod **held[2]; /* the references claiming took: owned, orphans */
    long nheld[2];
    bool *deleted; /* per pod: deleted by this sync */
    char *create_error;
};

static bool template_labeled(const json_t *tmpl_labels, const json_t *labels)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)tmpl_labels, k, v)
    {
        if (!json_equal(json_object_get(labels, k), v))
            return false;
    }
    return true;
}

/* Adopts matching orphans and releases owned pods the selector no longer matches. */
static int claim_pods(struct rs_sync *s)
{
    const struct corral_resource *pods = corral_ctrl_kinds()->pods;
    struct corral_ctrl_pods *index = corral_ctrl_pod_index(s->c);
    long no = s->nheld[0] = corral_ctrl_pods_owned(index, s->ent->uid, &s->held[0]);
    long nr = s->nheld[1] = corral_ctrl_pods_orphans(index, s->ns, &s->held[1]);
    struct corral_ctrl_pod **owned = s->held[0], **orphans = s->held[1];
    if (no < 0 || nr < 0 || !(s->pods = calloc((size_t)(no + nr) + 1, sizeof(*s->pods))))
        return -ENOMEM;
    bool managing = !corral_ctrl_deleting(s->rs);
    for (long i = 0; i < no; i++) {
        if (managing && !selects(s->ent, owned[i]) && !owned[i]->deleting) {
            corral_ctrl_release(s->c, pods, s->ns, owned[i]->name, s->rs);
            continue;
        }
        s->pods[s->npods++] = owned[i];
    }
    for (long i = 0; i < nr && managing; i++) {
        if (!selects(s->ent, orphans[i]) || orphans[i]->deleting)
            continue;
        if (corral_ctrl_adopt(s->c, pods, s->ns, orphans[i]->name, orphans[i]->uid, s->rs, NULL) ==
            0)
            s->pods[s->npods++] = orphans[i];
    }
    s->deleted = calloc(s->npods + 1, sizeof(*s->deleted));
    return s->deleted ? 0 : -ENOMEM;
}

struct pod_writes {
    struct corral_apiserver *srv;
    const char *ns;
    json_t **objs, **out;             /* creates */
    struct corral_ctrl_pod **victims; /* deletes */
};

static int create_one(void *ctx, size_t i)
{
    struct pod_writes *w = ctx;
    int rc =
        corral_objects_create(w->srv, corral_ctrl_kinds()->pods, w->ns, w->objs[i], &w->out[i]);
    w->objs[i] = NULL;
    return rc;
}

static int create_pods(struct rs_sync *s, long n)
{
    json_t *tmpl = json_object_get(json_object_get(s->rs, "spec"), "template");
    json_t *ref = corral_ctrl_owner_ref(s->rs, true, true);
    char prefix[300];
    snprintf(prefix, sizeof(prefix), "%s-", s->name);
    struct pod_writes w = {.srv = corral_ctrl_srv(s->c),
                           .ns = s->ns,
                           .objs = calloc((size_t)n, sizeof(json_t *)),
                           .out = calloc((size_t)n, sizeof(json_t *))};
    int *rcs = calloc((size_t)n, sizeof(int)), rc = 0;
    if (!w.objs || !w.out || !rcs)
        rc = -ENOMEM;
    for (long i = 0; rc == 0 && i < n; i++)
        w.objs[i] = corral_ctrl_pod_from_template(tmpl, ref, prefix);
    if (rc == 0)
        corral_ctrl_run_many((size_t)n, create_one, &w, rcs);
    for (long i = 0; rc == 0 && i < n; i++) {
        json_decref(w.objs[i]); /* never attempted */
        if (rcs[i] == 0) {
            corral_ctrl_event(s->c, s->rs, "Normal", "SuccessfulCreate", "Created pod: %s",
                              corral_meta_name(w.out[i]));
        } else if (rcs[i] != -ECANCELED && rcs[i] != CORRAL_EEXISTS) {
            char msg[512];
            snprintf(msg, sizeof(msg), "Error creating: pods \"%s\" %s", prefix,
                     corral_strerror(rcs[i]));
            corral_ctrl_event(s->c, s->rs, "Warning", "FailedCreate", "%s", msg);
            free(s->create_error);
            s->create_error = strdup(msg);
        }
        if (rcs[i] < 0 && rcs[i] != -ECANCELED)
            rc = rc < 0 ? rc : rcs[i];
        json_decref(w.out[i]);
    }
    free(w.objs);
    free(w.out);
    free(rcs);
    json_decref(ref);
    return rc;
}

static int delete_one(void *ctx, size_t i)
{
    struct pod_writes *w = ctx;
    struct corral_delete_options o = {.grace = -1, .uid = w->victims[i]->uid};
    int rc = corral_objects_delete_with(w->srv, corral_ctrl_kinds()->pods, w->ns,
                                        w->victims[i]->name, &o);
    return rc == CORRAL_ENOTFOUND || rc == CORRAL_ECONFLICT ? 1 : rc; /* 1: already gone */
}

static int delete_pods(struct rs_sync *s, long n)
{
    struct corral_ctrl_pod **active = calloc(s->npods + 1, sizeof(*active));
    int *rcs = calloc(s->npods + 1, sizeof(int));
    if (!active || !rcs) {
        free(active);
        free(rcs);
        return -ENOMEM;
    }
    size_t na = 0;
    for (size_t i = 0; i < s->npods; i++)
        if (corral_ctrl_pod_active(s->pods[i]))
            active[na++] = s->pods[i];
    qsort(active, na, sizeof(*active), corral_ctrl_pod_delete_order);
    size_t victims = (size_t)n < na ? (size_t)n : na;
    struct pod_writes w = {.srv = corral_ctrl_srv(s->c), .ns = s->ns, .victims = active};
    corral_ctrl_run_many(victims, delete_one, &w, rcs);
    int rc = 0;
    for (size_t i = 0; i < victims; i++) {
        if (rcs[i] < 0) {
            rc = rcs[i] == -ECANCELED || rc < 0 ? rc : rcs[i];
            continue;
        }
        for (size_t j = 0; j < s->npods; j++)
            if (s->pods[j] == active[i])
                s->deleted[j] = true;
        if (rcs[i] == 0)
            corral_ctrl_event(s->c, s->rs, "Normal", "SuccessfulDelete", "Deleted pod: %s",
                              active[i]->name);
    }
    free(active);
    free(rcs);
    return rc;
}

static int manage_replicas(struct rs_sync *s)
{
    long active = 0;
    for (size_t i = 0; i < s->npods; i++)
        active += corral_ctrl_pod_active(s->pods[i]);
    long diff = active - s->replicas;
    if (diff < 0)
        return create_pods(s, -diff > BURST ? BURST : -diff);
    if (diff > 0)
        return delete_pods(s, diff > BURST ? BURST : diff);
    return 0;
}

/* Computes and writes status; returns seconds until a ready pod becomes available (0: none). */
static int update_status(struct rs_sync *s, long *wake)
{
    time_t now = corral_ctrl_now();
    json_t *tmpl_labels =
        corral_meta_labels(json_object_get(json_object_get(s->rs, "spec"), "template"));
    long replicas = 0, labeled = 0, ready = 0, available = 0;
    *wake = 0;
    for (size_t i = 0; i < s->npods; i++) {
        const struct corral_ctrl_pod *p = s->pods[i];
        if (!corral_ctrl_pod_active(p) || s->deleted[i])
            continue;
        replicas++;
        labeled += template_labeled(tmpl_labels, p->labels);
        ready += p->ready;
        if (corral_ctrl_pod_available(p, s->min_ready, now))
            available++;
        else if (p->ready) {
            long left = (long)(p->ready_since + s->min_ready - now);
            *wake = *wake == 0 || left < *wake ? (left > 0 ? left : 1) : *wake;
        }
    }
    json_t *obj = json_deep_copy(s->rs);
    json_t *status = json_object_get(obj, "status");
    if (!json_is_object(status)) {
        status = json_object();
        json_object_set_new(obj, "status", status);
    }
    json_object_set_new(status, "replicas", json_integer(replicas));
    json_object_set_new(status, "fullyLabeledReplicas", json_integer(labeled));
    json_object_set_new(status, "readyReplicas", json_integer(ready));
    json_object_set_new(status, "availableReplicas", json_integer(available));
    json_object_set_new(
        status, "observedGeneration",
        json_integer(corral_ctrl_int(json_object_get(obj, "metadata"), "generation", 1)));
    if (s->create_error)
        corral_ctrl_set_condition(status, "ReplicaFailure", "True", "FailedCreate", s->create_error,
                                  NULL, now);
    else
        corral_ctrl_remove_condition(status, "ReplicaFailure");
    if (json_array_size(json_object_get(status, "conditions")) == 0)
        json_object_del(status, "conditions");
    return corral_ctrl_write_status(s->c, corral_ctrl_kinds()->replicasets, s->rs, obj);
}

static int rs_sync(struct corral_ctrl *c, const char *key)
{
    struct rs_sync s = {.c = c, .st = corral_ctrl_state(c)};
    s.ent = corral_ctrl_map_get(&s.st->by_key, key);
    if (!s.ent)
        return 0; /* deleted meanwhile: the garbage collector removes its pods */
    char buf[CORRAL_CTRL_KEY_MAX];
    const char *ns, *name;
    if (corral_ctrl_split_key(key, true, buf, sizeof(buf), &ns, &name) < 0)
        return 0;
    int rc =
        corral_objects_get(corral_ctrl_srv(c), corral_ctrl_kinds()->replicasets, ns, name, &s.rs);
    if (rc < 0)
        return rc == CORRAL_ENOTFOUND ? 0 : rc;
    s.ns = corral_meta_namespace(s.rs);
    s.name = corral_meta_name(s.rs);
    json_t *spec = json_object_get(s.rs, "spec");
    s.replicas = (long)corral_ctrl_int(spec, "replicas", 1);
    s.min_ready = (long)corral_ctrl_int(spec, "minReadySeconds", 0);
    rc = claim_pods(&s);
    int mrc = 0;
    if (rc == 0 && !corral_ctrl_deleting(s.rs))
        mrc = manage_replicas(&s);
    long wake = 0;
    if (rc == 0)
        rc = update_status(&s, &wake);
    if (wake > 0)
        corral_ctrl_enqueue(c, key, (unsigned)wake * 1000u);
    free(s.pods);
    corral_ctrl_pods_release(s.held[0], s.nheld[0]);
    corral_ctrl_pods_release(s.held[1], s.nheld[1]);
    free(s.deleted);
    free(s.create_error);
    json_decref(s.rs);
    return rc < 0 ? rc : mrc;
}

const struct corral_ctrl_def corral_ctrl_replicaset = {
    .name = "replicaset",
    .component = "replicaset-controller",
    .prefixes = {"/registry/apps/replicasets/", "/registry/pods/"},
    .pods = true,
    .resync_s = 60,
    .init = rs_init,
    .fini = rs_fini,
    .reset = rs_reset,
    .observe = rs_observe,
    .resync = rs_resync,
    .sync = rs_sync,
};
