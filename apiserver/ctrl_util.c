/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctrl_util: helpers shared by the built-in controllers (see ctrl_util.h).
 */
#include "ctrl_util.h"
#include "error.h"
#include "log.h"
#include "meta.h"
#include "objects.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct corral_ctrl_kinds kinds;
static pthread_once_t kinds_once = PTHREAD_ONCE_INIT;

static void kinds_init(void)
{
    kinds.pods = corral_resource_find("", "v1", "pods");
    kinds.nodes = corral_resource_find("", "v1", "nodes");
    kinds.services = corral_resource_find("", "v1", "services");
    kinds.endpoints = corral_resource_find("", "v1", "endpoints");
    kinds.events = corral_resource_find("", "v1", "events");
    kinds.leases = corral_resource_find("coordination.k8s.io", "v1", "leases");
    kinds.replicasets = corral_resource_find("apps", "v1", "replicasets");
    kinds.deployments = corral_resource_find("apps", "v1", "deployments");
    kinds.jobs = corral_resource_find("batch", "v1", "jobs");
}

const struct corral_ctrl_kinds *corral_ctrl_kinds(void)
{
    pthread_once(&kinds_once, kinds_init);
    return &kinds;
}

const char *corral_ctrl_uid(const json_t *obj)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), "uid"));
}

bool corral_ctrl_deleting(const json_t *obj)
{
    return json_object_get(json_object_get(obj, "metadata"), "deletionTimestamp") != NULL;
}

bool corral_ctrl_has_finalizer(const json_t *obj, const char *f)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(json_object_get(obj, "metadata"), "finalizers"), i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), f) == 0)
            return true;
    }
    return false;
}

bool corral_ctrl_remove_finalizer(json_t *obj, const char *f)
{
    json_t *list = json_object_get(json_object_get(obj, "metadata"), "finalizers");
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *v = json_array_get(list, i);
        if (json_is_string(v) && strcmp(json_string_value(v), f) == 0) {
            json_array_remove(list, i);
            return true;
        }
    }
    return false;
}

json_t *corral_ctrl_controller_ref(const json_t *obj)
{
    size_t i;
    json_t *ref;
    json_array_foreach(json_object_get(json_object_get(obj, "metadata"), "ownerReferences"), i, ref)
    {
        if (json_is_true(json_object_get(ref, "controller")))
            return ref;
    }
    return NULL;
}

json_t *corral_ctrl_owner_ref(const json_t *owner, bool controller, bool block)
{
    const char *api = corral_meta_api_version(owner), *kind = corral_meta_kind(owner);
    return json_pack("{s:s, s:s, s:s, s:s, s:b, s:b}", "apiVersion", api ? api : "", "kind",
                     kind ? kind : "", "name", corral_meta_name(owner), "uid",
                     corral_ctrl_uid(owner), "controller", controller, "blockOwnerDeletion", block);
}

const char *corral_ctrl_key(const struct corral_resource *res, const char *ns, const char *name,
                            char *buf)
{
    if (!corral_resource_key(res, res->namespaced ? ns : NULL, name, buf, CORRAL_CTRL_KEY_MAX))
        buf[0] = 0;
    return buf;
}

int corral_ctrl_split_key(const char *key, bool namespaced, char *buf, size_t len, const char **ns,
                          const char **name)
{
    if (snprintf(buf, len, "%s", key) >= (int)len)
        return -EINVAL;
    char *last = strrchr(buf, '/');
    if (!last || !last[1])
        return -EINVAL;
    *last = 0;
    *name = last + 1;
    *ns = NULL;
    if (!namespaced)
        return 0;
    char *prev = strrchr(buf, '/');
    if (!prev)
        return -EINVAL;
    *ns = prev + 1;
    return 0;
}

time_t corral_ctrl_parse_time(const char *s)
{
    struct timespec ts;
    if (!s || corral_meta_parse_time(s, &ts) < 0)
        return 0;
    return ts.tv_sec;
}

time_t corral_ctrl_time_at(const json_t *obj, ...)
{
    va_list ap;
    va_start(ap, obj);
    const json_t *cur = obj;
    const char *k;
    while (cur && (k = va_arg(ap, const char *)))
        cur = json_object_get(cur, k);
    va_end(ap);
    return corral_ctrl_parse_time(json_string_value(cur));
}

const char *corral_ctrl_format_time(time_t t, char out[21])
{
    corral_meta_format_time(t, out);
    return out;
}

json_t *corral_ctrl_condition(const json_t *status, const char *type)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(status, "conditions"), i, c)
    {
        const char *t = json_string_value(json_object_get(c, "type"));
        if (t && strcmp(t, type) == 0)
            return c;
    }
    return NULL;
}

static bool str_field_eq(const json_t *o, const char *k, const char *v)
{
    const char *s = json_string_value(json_object_get(o, k));
    return (!s && !v) || (s && v && strcmp(s, v) == 0);
}

bool corral_ctrl_set_condition(json_t *status, const char *type, const char *cstatus,
                               const char *reason, const char *message, const char *extra_time,
                               time_t now)
{
    json_t *c = corral_ctrl_condition(status, type);
    if (c && str_field_eq(c, "status", cstatus) && str_field_eq(c, "reason", reason) &&
        str_field_eq(c, "message", message))
        return false;
    char ts[21];
    corral_ctrl_format_time(now, ts);
    if (!c) {
        json_t *list = json_object_get(status, "conditions");
        if (!json_is_array(list)) {
            list = json_array();
            json_object_set_new(status, "conditions", list);
        }
        c = json_object();
        json_array_append_new(list, c);
        json_object_set_new(c, "type", json_string(type));
    }
    if (!str_field_eq(c, "status", cstatus) || !json_object_get(c, "lastTransitionTime"))
        json_object_set_new(c, "lastTransitionTime", json_string(ts));
    json_object_set_new(c, "status", json_string(cstatus));
    if (reason)
        json_object_set_new(c, "reason", json_string(reason));
    if (message)
        json_object_set_new(c, "message", json_string(message));
    if (extra_time)
        json_object_set_new(c, extra_time, json_string(ts));
    return true;
}

bool corral_ctrl_remove_condition(json_t *status, const char *type)
{
    json_t *list = json_object_get(status, "conditions");
    for (size_t i = 0; i < json_array_size(list); i++) {
        const char *t = json_string_value(json_object_get(json_array_get(list, i), "type"));
        if (t && strcmp(t, type) == 0) {
            json_array_remove(list, i);
            return true;
        }
    }
    return false;
}

int corral_ctrl_int_or_percent(const json_t *v, int total, bool round_up, int def, int *out)
{
    if (!v || json_is_null(v)) {
        *out = def;
        return 0;
    }
    if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        if (n < 0)
            return -EINVAL;
        *out = (int)n;
        return 0;
    }
    const char *s = json_string_value(v);
    char *end;
    long pct = s ? strtol(s, &end, 10) : -1;
    if (!s || end == s || strcmp(end, "%") != 0 || pct < 0) {
        if (s && *s && strspn(s, "0123456789") == strlen(s)) {
            *out = atoi(s);
            return 0;
        }
        return -EINVAL;
    }
    long long scaled = (long long)pct * total;
    *out = (int)(round_up ? (scaled + 99) / 100 : scaled / 100);
    return 0;
}

long long corral_ctrl_int(const json_t *obj, const char *field, long long def)
{
    json_t *v = json_object_get(obj, field);
    return json_is_integer(v) ? (long long)json_integer_value(v) : def;
}

json_t *corral_ctrl_pod_from_template(const json_t *tmpl, const json_t *owner_ref,
                                      const char *generate_name)
{
    json_t *tmeta = json_object_get(tmpl, "metadata");
    json_t *meta = json_pack("{s:s}", "generateName", generate_name);
    static const char *const copied[] = {"labels", "annotations", "finalizers", NULL};
    for (const char *const *k = copied; *k; k++) {
        json_t *v = json_object_get(tmeta, *k);
        if (v)
            json_object_set_new(meta, *k, json_deep_copy(v));
    }
    if (owner_ref)
        json_object_set_new(meta, "ownerReferences", json_pack("[O]", owner_ref));
    json_t *spec = json_deep_copy(json_object_get(tmpl, "spec"));
    return json_pack("{s:s, s:s, s:o, s:o}", "apiVersion", "v1", "kind", "Pod", "metadata", meta,
                     "spec", spec ? spec : json_object());
}

int corral_ctrl_delete(struct corral_ctrl *c, const struct corral_resource *res, const char *ns,
                       const char *name, const char *uid, long grace, const char *propagation)
{
    struct corral_delete_options o = {.grace = grace, .propagation = propagation, .uid = uid};
    int rc = corral_objects_delete_with(corral_ctrl_srv(c), res, ns, name, &o);
    if (rc == CORRAL_ECONFLICT && uid) {
        /* a precondition failure means the object of that name is another one: ours is gone */
        json_t *cur = NULL;
        if (corral_objects_get(corral_ctrl_srv(c), res, ns, name, &cur) < 0)
            return CORRAL_ENOTFOUND;
        const char *now_uid = corral_ctrl_uid(cur);
        bool other = !now_uid || strcmp(now_uid, uid) != 0;
        json_decref(cur);
        if (other)
            return CORRAL_ENOTFOUND;
    }
    return rc;
}

int corral_ctrl_write_status(struct corral_ctrl *c, const struct corral_resource *res,
                             const json_t *old, json_t *obj)
{
    if (json_equal(json_object_get(old, "status"), json_object_get(obj, "status"))) {
        json_decref(obj);
        return 0;
    }
    return corral_objects_update(corral_ctrl_srv(c), res, obj, true, NULL);
}

int corral_ctrl_adopt(struct corral_ctrl *c, const struct corral_resource *res, const char *ns,
                      const char *name, const char *uid, const json_t *owner, const char *finalizer)
{
    json_t *obj = NULL;
    int rc = corral_objects_get(corral_ctrl_srv(c), res, ns, name, &obj);
    if (rc < 0)
        return rc == CORRAL_ENOTFOUND ? 0 : rc;
    const char *cur = corral_ctrl_uid(obj);
    if (corral_ctrl_controller_ref(obj) || corral_ctrl_deleting(obj) || !cur ||
        strcmp(cur, uid) != 0) {
        json_decref(obj);
        return 0;
    }
    json_t *meta = corral_meta_get(obj, true);
    json_t *refs = json_object_get(meta, "ownerReferences");
    if (!json_is_array(refs)) {
        refs = json_array();
        json_object_set_new(meta, "ownerReferences", refs);
    }
    json_array_append_new(refs, corral_ctrl_owner_ref(owner, true, true));
    if (finalizer && !corral_ctrl_has_finalizer(obj, finalizer)) {
        json_t *list = json_object_get(meta, "finalizers");
        if (!json_is_array(list)) {
            list = json_array();
            json_object_set_new(meta, "finalizers", list);
        }
        json_array_append_new(list, json_string(finalizer));
    }
    return corral_objects_update(corral_ctrl_srv(c), res, obj, false, NULL);
}

int corral_ctrl_release(struct corral_ctrl *c, const struct corral_resource *res, const char *ns,
                        const char *name, const json_t *owner)
{
    json_t *obj = NULL;
    int rc = corral_objects_get(corral_ctrl_srv(c), res, ns, name, &obj);
    if (rc < 0)
        return rc == CORRAL_ENOTFOUND ? 0 : rc;
    json_t *ref = corral_ctrl_controller_ref(obj);
    const char *ref_uid = json_string_value(json_object_get(ref, "uid"));
    if (!ref_uid || strcmp(ref_uid, corral_ctrl_uid(owner)) != 0) {
        json_decref(obj);
        return 0;
    }
    json_t *refs = json_object_get(json_object_get(obj, "metadata"), "ownerReferences");
    for (size_t i = 0; i < json_array_size(refs); i++) {
        if (json_array_get(refs, i) == ref) {
            json_array_remove(refs, i);
            break;
        }
    }
    if (json_array_size(refs) == 0)
        json_object_del(json_object_get(obj, "metadata"), "ownerReferences");
    return corral_objects_update(corral_ctrl_srv(c), res, obj, false, NULL);
}

/* ---- concurrent writes ---- */

#define WRITE_THREADS 16

struct many {
    int (*fn)(void *ctx, size_t i);
    void *ctx;
    int *rcs;
    size_t from, to, step;
};

static void *many_worker(void *arg)
{
    struct many *m = arg;
    for (size_t i = m->from; i < m->to; i += m->step)
        m->rcs[i] = m->fn(m->ctx, i);
    return NULL;
}

/* Runs [from, to) on up to WRITE_THREADS threads. Returns false if one failed. */
static bool run_round(const struct many *proto, size_t from, size_t to)
{
    size_t n = to - from, nt = n < WRITE_THREADS ? n : WRITE_THREADS;
    if (n == 0)
        return true;
    struct many m[WRITE_THREADS] = {{0}};
    pthread_t t[WRITE_THREADS];
    bool started[WRITE_THREADS] = {false};
    for (size_t k = 0; k < nt; k++) {
        m[k] = *proto;
        m[k].from = from + k;
        m[k].to = to;
        m[k].step = nt;
        if (k > 0)
            started[k] = pthread_create(&t[k], NULL, many_worker, &m[k]) == 0;
    }
    many_worker(&m[0]);
    for (size_t k = 1; k < nt; k++) {
        if (started[k])
            pthread_join(t[k], NULL);
        else
            many_worker(&m[k]); /* no thread to be had: do it here */
    }
    bool ok = true;
    for (size_t i = from; i < to; i++)
        ok &= proto->rcs[i] >= 0;
    return ok;
}

size_t corral_ctrl_run_many(size_t n, int (*fn)(void *ctx, size_t i), void *ctx, int *rcs)
{
    struct many proto = {.fn = fn, .ctx = ctx, .rcs = rcs};
    for (size_t i = 0; i < n; i++)
        rcs[i] = -ECANCELED;
    size_t done = 0, round = 1, ok_count = 0;
    bool ok = true;
    while (done < n && ok) {
        size_t to = done + round < n ? done + round : n;
        ok = run_round(&proto, done, to);
        done = to;
        round *= 2;
    }
    for (size_t i = 0; i < n; i++)
        ok_count += rcs[i] >= 0;
    return ok_count;
}
