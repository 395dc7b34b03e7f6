/* SPDX-License-Identifier: Apache-2.0 */
/*
 * objects: REST verbs on stored kinds (see objects.h).
 *
 * The write paths (create_object, update_object, delete_object) are shared by the HTTP
 * handlers and the controllers. They report failure as a corral error code plus, through
 * *status, the Kubernetes Status that explains it; HTTP handlers reply with that Status,
 * controllers log it.
 */
#include "objects.h"
#include "apply.h"
#include "auth.h"
#include "error.h"
#include "hooks.h"
#include "log.h"
#include "meta.h"
#include "patch.h"
#include "selector.h"
#include "status.h"
#include "table.h"
#include "validate.h"
#include "watch.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define KEY_MAX 1024
#define MAX_WRITE_RETRIES 8

/* ---- small helpers ---- */

static json_t *blob_json(const struct corral_blob *b)
{
    return corral_blob_json(b);
}

static int64_t parse_rv(const char *s)
{
    if (!s || !*s)
        return 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    return *end || v <= 0 ? -1 : (int64_t)v;
}

static void now_string(char out[21])
{
    corral_meta_format_time(time(NULL), out);
}

static const char *object_key(const struct corral_resource *res, const char *ns,
                              const char *name, char *buf)
{
    return corral_resource_key(res, res->namespaced ? ns : NULL, name, buf, KEY_MAX);
}

static json_t *status_of(int err, const struct corral_resource *res, const char *name,
                         const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static json_t *status_of(int err, const struct corral_resource *res, const char *name,
                         const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *st = corral_status_from_error(err, msg);
    if (res)
        corral_status_set_details(st, res->group, res->plural, name);
    return st;
}

static json_t *not_found(const struct corral_resource *res, const char *name)
{
    char qn[300];
    return status_of(CORRAL_ENOTFOUND, res, name, "%s \"%s\" not found",
                     corral_resource_qualified(res, qn, sizeof(qn)), name);
}

static json_t *conflict(const struct corral_resource *res, const char *name)
{
    char qn[300];
    return status_of(CORRAL_ECONFLICT, res, name,
                     "Operation cannot be fulfilled on %s \"%s\": the object has been modified; "
                     "please apply your changes to the latest version and try again",
                     corral_resource_qualified(res, qn, sizeof(qn)), name);
}

/* ---- target parsing ---- */

struct segments {
    char s[8][256];
    int n;
};

static int split_path(const char *url, struct segments *out)
{
    out->n = 0;
    const char *p = url;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (out->n == 8 || n >= sizeof(out->s[0]))
            return -EINVAL;
        memcpy(out->s[out->n], p, n);
        out->s[out->n][n] = 0;
        out->n++;
        p += n;
    }
    return 0;
}

/* Reads [namespaces/NS/]plural[/name[/sub]] from seg[i..]. */
static int parse_rest(struct corral_request *req, const char *group, const char *version,
                      struct segments *sg, int i)
{
    const struct corral_resource *res = NULL;
    if (sg->n - i >= 3 && strcmp(sg->s[i], "namespaces") == 0) {
        res = corral_resource_find(group, version, sg->s[i + 2]);
        if (res && res->namespaced) {
            snprintf(req->ns, sizeof(req->ns), "%s", sg->s[i + 1]);
            i += 2;
        } else {
            res = NULL;
        }
    }
    if (!res && i < sg->n)
        res = corral_resource_find(group, version, sg->s[i]);
    if (!res || sg->n - i > 3)
        return CORRAL_ENOTFOUND;
    req->res = res;
    req->shape = CORRAL_TARGET_COLLECTION;
    if (sg->n - i >= 2) {
        snprintf(req->name, sizeof(req->name), "%s", sg->s[i + 1]);
        req->shape = CORRAL_TARGET_OBJECT;
    }
    if (sg->n - i == 3) {
        snprintf(req->sub, sizeof(req->sub), "%s", sg->s[i + 2]);
        req->shape = CORRAL_TARGET_SUBRESOURCE;
    }
    return 0;
}

int corral_objects_parse_target(struct corral_request *req)
{
    struct segments sg;
    if (split_path(req->url, &sg) < 0 || sg.n < 2)
        return CORRAL_ENOTFOUND;
    if (strcmp(sg.s[0], "api") == 0 && strcmp(sg.s[1], "v1") == 0)
        return parse_rest(req, "", "v1", &sg, 2);
    if (strcmp(sg.s[0], "apis") == 0 && sg.n >= 4)
        return parse_rest(req, sg.s[1], sg.s[2], &sg, 3);
    return CORRAL_ENOTFOUND;
}

/* ---- replies ---- */

static void reply_table(struct corral_request *req, json_t *objs, int64_t rev,
                        const char *cont)
{
    long now = (long)time(NULL);
    json_t *rows = json_array();
    size_t i;
    json_t *o;
    json_array_foreach(objs, i, o) json_array_append_new(rows, corral_table_row(req->res, o, now, 0));
    char rv[32];
    snprintf(rv, sizeof(rv), "%" PRId64, rev);
    json_t *meta = json_pack("{s:s}", "resourceVersion", rv);
    if (cont)
        json_object_set_new(meta, "continue", json_string(cont));
    json_t *table = json_pack("{s:s, s:s, s:o, s:o, s:o}", "kind", "Table", "apiVersion",
                              "meta.k8s.io/v1", "metadata", meta, "columnDefinitions",
                              corral_table_columns(req->res), "rows", rows);
    char *text = json_dumps(table, JSON_COMPACT);
    json_decref(table);
    if (!text) {
        corral_reply_error(req, -ENOMEM, NULL);
        return;
    }
    corral_reply_text(req, 200, "application/json;as=Table;v=v1;g=meta.k8s.io", text,
                      strlen(text));
    free(text);
}

/* Replies with one stored object (as a Table when asked). Steals o->value. */
static void reply_stored(struct corral_request *req, int code, struct corral_store_obj *o)
{
    if (corral_request_wants_table(req) && code == 200) {
        json_t *obj = blob_json(o->value);
        json_t *objs = json_pack("[o]", obj);
        reply_table(req, objs, o->mod_rev, NULL);
        json_decref(objs);
        corral_blob_unref(o->value);
        return;
    }
    corral_reply_blob(req, code, o->value);
}

static void reply_object(struct corral_request *req, int code, json_t *obj)
{
    corral_reply_json(req, code, obj);
}

/* ---- namespaces ---- */

static int check_namespace(struct corral_apiserver *srv, const char *ns, json_t **status)
{
    const struct corral_resource *nsres = corral_resource_find("", "v1", "namespaces");
    char key[KEY_MAX];
    struct corral_store_obj o;
    if (corral_store_get(srv->store, object_key(nsres, NULL, ns, key), &o) < 0) {
        *status = not_found(nsres, ns);
        return CORRAL_ENOTFOUND;
    }
    json_t *obj = blob_json(o.value);
    corral_blob_unref(o.value);
    bool terminating = json_object_get(json_object_get(obj, "metadata"), "deletionTimestamp");
    json_decref(obj);
    if (terminating) {
        *status = status_of(CORRAL_EFORBIDDEN, nsres, ns,
                            "unable to create new content in namespace %s because it is being "
                            "terminated",
                            ns);
        return CORRAL_EFORBIDDEN;
    }
    return 0;
}

/* ---- create ---- */

static void generate_name(json_t *meta)
{
    const char *prefix = json_string_value(json_object_get(meta, "generateName"));
    if (!prefix || json_string_length(json_object_get(meta, "name")))
        return;
    static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
    unsigned char rnd[5];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        memset(rnd, 7, sizeof(rnd));
    char name[300];
    int n = snprintf(name, sizeof(name) - 6, "%.*s", 58, prefix);
    for (int i = 0; i < 5; i++)
        name[n + i] = alphabet[rnd[i] % (sizeof(alphabet) - 1)];
    name[n + 5] = 0;
    json_object_set_new(meta, "name", json_string(name));
}

/* Checks kind/apiVersion of a request body against the target kind; fills them when absent. */
static int check_type(const struct corral_resource *res, json_t *obj, json_t **status)
{
    char api[128];
    corral_resource_api_version(res, api, sizeof(api));
    const char *kind = corral_meta_kind(obj), *av = corral_meta_api_version(obj);
    if ((kind && strcmp(kind, res->kind) != 0) || (av && strcmp(av, api) != 0)) {
        *status = status_of(CORRAL_EBADREQUEST, res, corral_meta_name(obj),
                            "%s in version \"%s\" cannot be handled as a %s: the kind or "
                            "apiVersion of the object does not match the request path",
                            kind ? kind : "object", av ? av : "", res->kind);
        return CORRAL_EBADREQUEST;
    }
    json_object_set_new(obj, "kind", json_string(res->kind));
    json_object_set_new(obj, "apiVersion", json_string(api));
    return 0;
}

static int check_placement(const struct corral_resource *res, const char *ns, json_t *obj,
                           json_t **status)
{
    json_t *meta = corral_meta_get(obj, true);
    const char *body_ns = json_string_value(json_object_get(meta, "namespace"));
    if (!res->namespaced) {
        json_object_del(meta, "namespace");
        return 0;
    }
    if (body_ns && *body_ns && ns && *ns && strcmp(body_ns, ns) != 0) {
        *status = status_of(CORRAL_EBADREQUEST, res, corral_meta_name(obj),
                            "the namespace of the provided object does not match the namespace "
                            "sent on the request");
        return CORRAL_EBADREQUEST;
    }
    const char *use = ns && *ns ? ns : body_ns;
    if (!use || !*use) {
        *status = status_of(CORRAL_EBADREQUEST, res, corral_meta_name(obj),
                            "the object has no namespace and the request names none");
        return CORRAL_EBADREQUEST;
    }
    json_object_set_new(meta, "namespace", json_string(use));
    return 0;
}

static void stamp_new(const struct corral_resource *res, json_t *obj)
{
    json_t *meta = corral_meta_get(obj, true);
    char uid[37], ts[21];
    corral_meta_new_uid(uid);
    now_string(ts);
    json_object_set_new(meta, "uid", json_string(uid));
    json_object_set_new(meta, "creationTimestamp", json_string(ts));
    json_object_del(meta, "deletionTimestamp");
    json_object_del(meta, "deletionGracePeriodSeconds");
    json_object_del(meta, "resourceVersion");
    json_object_del(meta, "selfLink");
    if (res->has_spec)
        json_object_set_new(meta, "generation", json_integer(1));
    if ((res->subresources & CORRAL_SUB_STATUS) && strcmp(res->plural, "nodes") != 0)
        json_object_del(obj, "status");
}

static int validate_object(const struct corral_resource *res, json_t *obj, const json_t *old,
                           json_t **status)
{
    struct corral_field_errors fe;
    corral_field_errors_init(&fe);
    if (res->validate)
        res->validate(obj, old, &fe);
    int rc = 0;
    if (corral_field_errors_count(&fe) > 0) {
        *status = corral_status_invalid(res->group, res->kind, corral_meta_name(obj), &fe);
        rc = CORRAL_EINVALID;
    }
    corral_field_errors_clear(&fe);
    return rc;
}

struct write_opts {
    bool dry_run;
    bool status_only;
    int64_t expect_rev; /* update: 0 = take it from the body or the stored object */
    /* create: a last step before the object is stored (signing a CSR) */
    int (*before_store)(struct corral_request *req, json_t *obj, json_t **status);
    /* the HTTP request doing the write: its manager's fields are recorded in managedFields */
    struct corral_request *req;
};

static int create_object(struct corral_apiserver *srv, const struct corral_resource *res,
                         const char *ns, json_t *obj, const struct write_opts *wo,
                         struct corral_store_obj *out, json_t **status)
{
    int rc = check_type(res, obj, status);
    if (rc == 0)
        rc = check_placement(res, ns, obj, status);
    if (rc < 0)
        goto out_free;
    json_t *meta = corral_meta_get(obj, true);
    if (json_string_length(json_object_get(meta, "resourceVersion")) > 0) {
        *status = status_of(CORRAL_EBADREQUEST, res, corral_meta_name(obj),
                            "resourceVersion should not be set on objects to be created");
        rc = CORRAL_EBADREQUEST;
        goto out_free;
    }
    generate_name(meta);
    stamp_new(res, obj);
    if (wo->req)
        corral_apply_record_update(wo->req, NULL, obj);
    if (res->defaults)
        res->defaults(obj);
    rc = validate_object(res, obj, NULL, status);
    if (rc == 0 && res->namespaced)
        rc = check_namespace(srv, corral_meta_namespace(obj), status);
    if (rc == 0)
        rc = corral_hooks_before_create(srv, res, obj, status);
    if (rc == 0 && wo->before_store && !wo->dry_run)
        rc = wo->before_store(wo->req, obj, status);
    if (rc < 0)
        goto out_free;
    if (wo->dry_run) {
        char *text = json_dumps(obj, JSON_COMPACT);
        out->value = text ? corral_blob_new(text, strlen(text)) : NULL;
        free(text);
        json_decref(obj);
        return out->value ? 0 : -ENOMEM;
    }
    char key[KEY_MAX], name[256], qn[300];
    snprintf(name, sizeof(name), "%s", corral_meta_name(obj));
    object_key(res, corral_meta_namespace(obj), name, key);
    json_t *copy = res->crd || strcmp(res->plural, "customresourcedefinitions") == 0
                       ? json_incref(obj)
                       : NULL;
    rc = corral_store_create(srv->store, key, obj, out);
    if (rc == CORRAL_EEXISTS)
        *status = status_of(rc, res, name, "%s \"%s\" already exists",
                            corral_resource_qualified(res, qn, sizeof(qn)), name);
    else if (rc < 0)
        *status = status_of(rc, res, name, "storage error: %s", corral_strerror(rc));
    else
        corral_hooks_after_write(srv, res, copy ? copy : NULL, false);
    json_decref(copy);
    return rc;
out_free:
    json_decref(obj);
    return rc;
}

/* ---- update ---- */

static int get_stored(struct corral_apiserver *srv, const struct corral_resource *res,
                      const char *ns, const char *name, struct corral_store_obj *o, json_t **obj)
{
    char key[KEY_MAX];
    int rc = corral_store_get(srv->store, object_key(res, ns, name, key), o);
    if (rc < 0)
        return rc;
    *obj = blob_json(o->value);
    if (!*obj) {
        corral_blob_unref(o->value);
        return CORRAL_EINTERNAL;
    }
    return 0;
}

/* Copies what an update may not change from old into obj. */
static void keep_system_fields(const struct corral_resource *res, json_t *obj, const json_t *old,
                               bool status_only)
{
    json_t *meta = corral_meta_get(obj, true), *ometa = json_object_get(old, "metadata");
    static const char *const kept[] = {"uid", "creationTimestamp", "deletionTimestamp",
                                       "deletionGracePeriodSeconds", "generation", "namespace",
                                       "name", NULL};
    for (const char *const *k = kept; *k; k++) {
        json_t *v = json_object_get(ometa, *k);
        if (v)
            json_object_set(meta, *k, v);
        else
            json_object_del(meta, *k);
    }
    if (!(res->subresources & CORRAL_SUB_STATUS))
        return;
    if (status_only) {
        json_t *status = json_incref(json_object_get(obj, "status"));
        json_object_clear(obj);
        json_object_update(obj, (json_t *)old);
        json_object_set_new(obj, "metadata", json_deep_copy(ometa));
        if (status)
            json_object_set_new(obj, "status", status);
    } else {
        json_t *st = json_object_get(old, "status");
        if (st)
            json_object_set(obj, "status", st);
        else
            json_object_del(obj, "status");
    }
}

static void bump_generation(const struct corral_resource *res, json_t *obj, const json_t *old)
{
    if (!res->has_spec)
        return;
    json_t *meta = corral_meta_get(obj, true);
    json_int_t gen = json_integer_value(json_object_get(json_object_get(old, "metadata"),
                                                        "generation"));
    bool changed = !json_equal(json_object_get(obj, "spec"), json_object_get(old, "spec"));
    json_object_set_new(meta, "generation", json_integer(changed || gen == 0 ? gen + 1 : gen));
}

/* Drops what a write always changes: resourceVersion and the managedFields timestamps. */
static void strip_volatile(json_t *obj)
{
    json_t *meta = json_object_get(obj, "metadata");
    json_object_del(meta, "resourceVersion");
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(meta, "managedFields"), i, e) json_object_del(e, "time");
}

/*
 * True when obj and old differ in anything but resourceVersion and managedFields times (a
 * write that only moves a timestamp is a no-op, as in Kubernetes).
 */
static bool differs(const json_t *obj, const json_t *old)
{
    json_t *a = json_deep_copy(obj), *b = json_deep_copy(old);
    strip_volatile(a);
    strip_volatile(b);
    bool d = !json_equal(a, b);
    json_decref(a);
    json_decref(b);
    return d;
}

static bool is_namespace(const struct corral_resource *res)
{
    return !res->group[0] && strcmp(res->plural, "namespaces") == 0;
}

/*
 * True while finalizers hold obj: metadata.finalizers, and for a namespace also
 * spec.finalizers (its content is being deleted, see nslifecycle.h).
 */
static bool held_by_finalizers(const struct corral_resource *res, const json_t *obj)
{
    if (json_array_size(json_object_get(json_object_get(obj, "metadata"), "finalizers")) > 0)
        return true;
    return is_namespace(res) &&
           json_array_size(json_object_get(json_object_get(obj, "spec"), "finalizers")) > 0;
}

static int finish_if_finalized(struct corral_apiserver *srv, const struct corral_resource *res,
                               const json_t *obj, const char *key, int64_t rev,
                               struct corral_store_obj *out, json_t **status);

static int update_object(struct corral_apiserver *srv, const struct corral_resource *res,
                         json_t *obj, const struct write_opts *wo, struct corral_store_obj *out,
                         json_t **status)
{
    /* copies: keep_system_fields() replaces the strings these would point into */
    char name[256], ns[256];
    snprintf(name, sizeof(name), "%s", corral_meta_name(obj) ? corral_meta_name(obj) : "");
    snprintf(ns, sizeof(ns), "%s", corral_meta_namespace(obj) ? corral_meta_namespace(obj) : "");
    struct corral_store_obj cur;
    json_t *old = NULL;
    int rc = get_stored(srv, res, ns, name, &cur, &old);
    if (rc < 0) {
        *status = not_found(res, name);
        json_decref(obj);
        return rc;
    }
    corral_blob_unref(cur.value);
    int64_t want = wo->expect_rev ? wo->expect_rev
                                  : parse_rv(json_string_value(json_object_get(
                                        json_object_get(obj, "metadata"), "resourceVersion")));
    if (want < 0 || (want > 0 && want != cur.mod_rev)) {
        rc = CORRAL_ECONFLICT;
        *status = conflict(res, name);
        goto out;
    }
    keep_system_fields(res, obj, old, wo->status_only);
    if (wo->req)
        corral_apply_record_update(wo->req, old, obj);
    if (res->defaults && !wo->status_only)
        res->defaults(obj);
    bump_generation(res, obj, old);
    rc = validate_object(res, obj, old, status);
    if (rc == 0)
        rc = corral_hooks_before_update(srv, res, obj, old, status);
    if (rc < 0)
        goto out;
    char key[KEY_MAX];
    object_key(res, ns, name, key);
    if (wo->dry_run || !differs(obj, old)) {
        char *text = json_dumps(wo->dry_run ? obj : old, JSON_COMPACT);
        out->value = text ? corral_blob_new(text, strlen(text)) : NULL;
        out->mod_rev = cur.mod_rev;
        free(text);
        rc = out->value ? 0 : -ENOMEM;
        goto out;
    }
    if (json_object_get(corral_meta_get(obj, false), "deletionTimestamp") &&
        !held_by_finalizers(res, obj) &&
        json_integer_value(json_object_get(corral_meta_get(obj, false),
                                           "deletionGracePeriodSeconds")) == 0) {
        /* the last finalizer is gone and no graceful termination is pending: delete now (a
           pod still terminating is deleted by its kubelet once it has stopped) */
        rc = finish_if_finalized(srv, res, obj, key, cur.mod_rev, out, status);
        goto out;
    }
    json_t *copy = json_incref(obj);
    rc = corral_store_update(srv->store, key, obj, cur.mod_rev, out);
    obj = NULL;
    if (rc == CORRAL_ECONFLICT)
        *status = conflict(res, name);
    else if (rc == CORRAL_ENOTFOUND)
        *status = not_found(res, name);
    else if (rc < 0)
        *status = status_of(rc, res, name, "storage error: %s", corral_strerror(rc));
    else
        corral_hooks_after_write(srv, res, copy, false);
    json_decref(copy);
out:
    json_decref(old);
    json_decref(obj);
    return rc;
}

/* ---- delete ---- */

struct delete_opts {
    long grace; /* -1 = the object's default */
    const char *propagation;
    const char *uid;
    const char *rv;
    bool dry_run;
};

static int finish_if_finalized(struct corral_apiserver *srv, const struct corral_resource *res,
                               const json_t *obj, const char *key, int64_t rev,
                               struct corral_store_obj *out, json_t **status)
{
    int rc = corral_store_delete(srv->store, key, rev, out);
    if (rc == CORRAL_ECONFLICT)
        *status = conflict(res, corral_meta_name(obj));
    else if (rc < 0)
        *status = not_found(res, corral_meta_name(obj));
    else
        corral_hooks_after_write(srv, res, obj, true);
    return rc;
}

static bool pod_is_terminal(const json_t *pod)
{
    const char *phase = json_string_value(json_object_get(json_object_get(pod, "status"),
                                                          "phase"));
    return phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0);
}

/* Seconds a graceful delete of obj should wait (0 = delete now). */
static long grace_for(const struct corral_resource *res, const json_t *obj,
                      const struct delete_opts *dopts)
{
    if (strcmp(res->plural, "pods") != 0 || res->group[0])
        return 0;
    json_t *spec = json_object_get(obj, "spec");
    const char *node = json_string_value(json_object_get(spec, "nodeName"));
    if (!node || !*node || pod_is_terminal(obj))
        return 0;
    if (dopts->grace >= 0)
        return dopts->grace;
    json_t *g = json_object_get(spec, "terminationGracePeriodSeconds");
    return json_is_integer(g) ? (long)json_integer_value(g) : 30;
}

static void add_finalizer(json_t *meta, const char *f)
{
    json_t *list = json_object_get(meta, "finalizers");
    if (!json_is_array(list)) {
        list = json_array();
        json_object_set_new(meta, "finalizers", list);
    }
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) if (json_is_string(v) && strcmp(json_string_value(v), f) == 0)
        return;
    json_array_append_new(list, json_string(f));
}

/* Marks obj for deletion (graceful or finalizer-held). Returns 1 if marked, 0 if it must go now. */
static int mark_deleting(const struct corral_resource *res, json_t *obj,
                         const struct delete_opts *dopts)
{
    json_t *meta = corral_meta_get(obj, true);
    long grace = grace_for(res, obj, dopts);
    if (dopts->propagation && strcmp(dopts->propagation, "Foreground") == 0)
        add_finalizer(meta, "foregroundDeletion");
    else if (dopts->propagation && strcmp(dopts->propagation, "Orphan") == 0)
        add_finalizer(meta, "orphan");
    bool held = held_by_finalizers(res, obj);
    json_t *existing = json_object_get(meta, "deletionTimestamp");
    if (!held && grace == 0)
        return 0;
    if (is_namespace(res))
        json_object_set_new(json_object_get(obj, "status"), "phase", json_string("Terminating"));
    if (existing) {
        json_int_t old = json_integer_value(json_object_get(meta, "deletionGracePeriodSeconds"));
        if (grace >= old)
            return 1; /* already terminating with a shorter or equal grace: never lengthen */
    }
    char ts[21];
    corral_meta_format_time(time(NULL) + grace, ts);
    json_object_set_new(meta, "deletionTimestamp", json_string(ts));
    json_object_set_new(meta, "deletionGracePeriodSeconds", json_integer(grace));
    return 1;
}

static int check_preconditions(const struct corral_resource *res, const json_t *obj,
                               int64_t rev, const struct delete_opts *dopts, json_t **status)
{
    const char *uid = json_string_value(json_object_get(json_object_get(obj, "metadata"), "uid"));
    if (dopts->uid && *dopts->uid && (!uid || strcmp(uid, dopts->uid) != 0)) {
        *status = status_of(CORRAL_ECONFLICT, res, corral_meta_name(obj),
                            "Precondition failed: UID in precondition: %s, UID in object meta: %s",
                            dopts->uid, uid ? uid : "");
        return CORRAL_ECONFLICT;
    }
    if (dopts->rv && *dopts->rv && parse_rv(dopts->rv) != rev) {
        *status = status_of(CORRAL_ECONFLICT, res, corral_meta_name(obj),
                            "Precondition failed: ResourceVersion in precondition: %s, "
                            "ResourceVersion in object meta: %" PRId64,
                            dopts->rv, rev);
        return CORRAL_ECONFLICT;
    }
    return 0;
}

static int delete_once(struct corral_apiserver *srv, const struct corral_resource *res,
                       const char *ns, const char *name, const struct delete_opts *dopts,
                       struct corral_store_obj *out, bool *gone, json_t **status)
{
    struct corral_store_obj cur;
    json_t *obj = NULL;
    int rc = get_stored(srv, res, ns, name, &cur, &obj);
    if (rc < 0) {
        *status = not_found(res, name);
        return rc;
    }
    corral_blob_unref(cur.value);
    rc = check_preconditions(res, obj, cur.mod_rev, dopts, status);
    if (rc == 0)
        rc = corral_hooks_before_delete(srv, res, obj, status);
    char key[KEY_MAX];
    object_key(res, ns, name, key);
    if (rc < 0 || dopts->dry_run) {
        if (rc == 0) {
            char *text = json_dumps(obj, JSON_COMPACT);
            out->value = corral_blob_new(text, strlen(text));
            free(text);
        }
        json_decref(obj);
        return rc;
    }
    if (mark_deleting(res, obj, dopts)) {
        *gone = false;
        json_t *copy = json_incref(obj);
        rc = corral_store_update(srv->store, key, obj, cur.mod_rev, out);
        if (rc == 0)
            corral_hooks_after_write(srv, res, copy, false);
        json_decref(copy);
        if (rc == CORRAL_ECONFLICT)
            *status = conflict(res, name);
        return rc;
    }
    *gone = true;
    rc = finish_if_finalized(srv, res, obj, key, cur.mod_rev, out, status);
    json_decref(obj);
    return rc;
}

static int delete_object(struct corral_apiserver *srv, const struct corral_resource *res,
                         const char *ns, const char *name, const struct delete_opts *dopts,
                         struct corral_store_obj *out, bool *gone, json_t **status)
{
    int rc = CORRAL_ECONFLICT;
    for (int attempt = 0; attempt < MAX_WRITE_RETRIES && rc == CORRAL_ECONFLICT; attempt++) {
        if (*status) {
            json_decref(*status);
            *status = NULL;
        }
        rc = delete_once(srv, res, ns, name, dopts, out, gone, status);
        bool precondition = *status && strstr(json_string_value(json_object_get(*status,
                                                                                "message")),
                                              "Precondition");
        if (precondition)
            break;
    }
    return rc;
}

/* ---- handlers ---- */

static bool dry_run(const struct corral_request *req)
{
    const char *d = corral_request_query(req, "dryRun");
    return d && strcmp(d, "All") == 0;
}

static void reply_write(struct corral_request *req, int rc, int code,
                        struct corral_store_obj *out, json_t *status)
{
    if (rc < 0) {
        if (!status)
            status = status_of(rc, req->res, req->name, "%s", corral_strerror(rc));
        corral_reply_status(req, status);
        return;
    }
    json_decref(status);
    corral_reply_blob(req, code, out->value);
}

static void handle_get(struct corral_request *req)
{
    struct corral_store_obj o;
    char key[KEY_MAX];
    if (corral_store_get(req->srv->store, object_key(req->res, req->ns, req->name, key), &o) <
        0) {
        corral_reply_status(req, not_found(req->res, req->name));
        return;
    }
    reply_stored(req, 200, &o);
}

static void handle_create(struct corral_request *req)
{
    json_t *obj;
    if (corral_request_body_object(req, &obj) < 0)
        return;
    if (corral_patch_strict_check(req, obj) < 0) {
        json_decref(obj);
        return;
    }
    struct write_opts wo = {.dry_run = dry_run(req), .req = req};
    if (strcmp(req->res->group, "certificates.k8s.io") == 0)
        wo.before_store = corral_auth_sign_csr;
    struct corral_store_obj out = {0};
    json_t *status = NULL;
    int rc = create_object(req->srv, req->res, req->ns, obj, &wo, &out, &status);
    reply_write(req, rc, 201, &out, status);
}

static int check_body_name(struct corral_request *req, json_t *obj)
{
    json_t *meta = corral_meta_get(obj, true);
    const char *name = json_string_value(json_object_get(meta, "name"));
    if (name && strcmp(name, req->name) != 0) {
        corral_reply_error(req, CORRAL_EBADREQUEST,
                           "the name of the object (%s) does not match the name on the URL (%s)",
                           name, req->name);
        return CORRAL_EBADREQUEST;
    }
    json_object_set_new(meta, "name", json_string(req->name));
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    if (req->res->namespaced && ns && *ns && strcmp(ns, req->ns) != 0) {
        corral_reply_error(req, CORRAL_EBADREQUEST,
                           "the namespace of the provided object does not match the namespace "
                           "sent on the request");
        return CORRAL_EBADREQUEST;
    }
    if (req->res->namespaced)
        json_object_set_new(meta, "namespace", json_string(req->ns));
    return 0;
}

static void handle_update(struct corral_request *req)
{
    json_t *obj, *status = NULL;
    if (corral_request_body_object(req, &obj) < 0)
        return;
    if (check_body_name(req, obj) < 0 || corral_patch_strict_check(req, obj) < 0) {
        json_decref(obj);
        return;
    }
    json_t *tstatus = NULL;
    if (check_type(req->res, obj, &tstatus) < 0) {
        json_decref(obj);
        corral_reply_status(req, tstatus);
        return;
    }
    struct write_opts wo = {.dry_run = dry_run(req), .status_only = !strcmp(req->sub, "status"),
                            .req = req};
    struct corral_store_obj out = {0};
    int rc = update_object(req->srv, req->res, obj, &wo, &out, &status);
    reply_write(req, rc, 200, &out, status);
}

/* Applies a patch to the stored object and writes the result, retrying on races. */
static void handle_patch(struct corral_request *req)
{
    int rc = CORRAL_ECONFLICT;
    json_t *status = NULL;
    struct corral_store_obj out = {0};
    int code = 200;
    for (int attempt = 0; attempt < MAX_WRITE_RETRIES && rc == CORRAL_ECONFLICT; attempt++) {
        json_decref(status);
        status = NULL;
        struct corral_store_obj cur = {0};
        json_t *old = NULL, *patched = NULL;
        int grc = get_stored(req->srv, req->res, req->ns, req->name, &cur, &old);
        if (grc == 0)
            corral_blob_unref(cur.value);
        rc = corral_patch_apply(req, grc == 0 ? old : NULL, &patched, &status);
        if (rc < 0) {
            json_decref(old);
            break;
        }
        struct write_opts wo = {.dry_run = dry_run(req), .status_only = !strcmp(req->sub, "status")};
        if (!old) {
            code = 201;
            rc = create_object(req->srv, req->res, req->ns, patched, &wo, &out, &status);
        } else {
            bool pinned = parse_rv(json_string_value(json_object_get(
                              json_object_get(patched, "metadata"), "resourceVersion"))) > 0 &&
                          !json_equal(json_object_get(json_object_get(patched, "metadata"),
                                                      "resourceVersion"),
                                      json_object_get(json_object_get(old, "metadata"),
                                                      "resourceVersion"));
            wo.expect_rev = pinned ? 0 : cur.mod_rev;
            rc = update_object(req->srv, req->res, patched, &wo, &out, &status);
            if (pinned)
                attempt = MAX_WRITE_RETRIES; /* the client asked for that revision */
        }
        json_decref(old);
    }
    reply_write(req, rc, code, &out, status);
}

static void read_delete_options(struct corral_request *req, struct delete_opts *d, json_t **body)
{
    d->grace = -1;
    *body = NULL;
    if (req->body_len > 0) {
        *body = json_loadb(req->body, req->body_len, 0, NULL);
        json_t *g = json_object_get(*body, "gracePeriodSeconds");
        if (json_is_integer(g))
            d->grace = (long)json_integer_value(g);
        d->propagation = json_string_value(json_object_get(*body, "propagationPolicy"));
        json_t *pre = json_object_get(*body, "preconditions");
        d->uid = json_string_value(json_object_get(pre, "uid"));
        d->rv = json_string_value(json_object_get(pre, "resourceVersion"));
        json_t *dr = json_object_get(*body, "dryRun");
        d->dry_run = json_array_size(dr) > 0;
    }
    const char *g = corral_request_query(req, "gracePeriodSeconds");
    if (g)
        d->grace = strtol(g, NULL, 10);
    const char *p = corral_request_query(req, "propagationPolicy");
    if (p)
        d->propagation = p;
    if (dry_run(req))
        d->dry_run = true;
}

static void handle_delete(struct corral_request *req)
{
    struct delete_opts d = {0};
    json_t *body, *status = NULL;
    read_delete_options(req, &d, &body);
    struct corral_store_obj out = {0};
    bool gone = true;
    int rc = delete_object(req->srv, req->res, req->ns, req->name, &d, &out, &gone, &status);
    (void)gone;
    reply_write(req, rc, 200, &out, status);
    json_decref(body);
}

/* ---- list and deletecollection ---- */

struct list_filter {
    const struct corral_resource *res;
    struct corral_selector *labels;
    struct corral_selector *fields;
};

struct field_ctx {
    const struct corral_resource *res;
    const json_t *obj;
    char buf[128];
};

static const char *field_lookup(const char *key, void *ctx)
{
    struct field_ctx *fc = ctx;
    return fc->res->field ? fc->res->field(fc->obj, key, fc->buf, sizeof(fc->buf))
                          : corral_field_generic(fc->obj, key, fc->buf, sizeof(fc->buf));
}

bool corral_objects_match(const struct corral_resource *res, struct corral_selector *labels,
                          struct corral_selector *fields, const json_t *obj);
bool corral_objects_match(const struct corral_resource *res, struct corral_selector *labels,
                          struct corral_selector *fields, const json_t *obj)
{
    if (!corral_selector_match_labels(labels, corral_meta_labels(obj)))
        return false;
    struct field_ctx fc = {.res = res, .obj = obj};
    return corral_selector_match(fields, field_lookup, &fc);
}

static bool list_filter_fn(const struct corral_blob *value, void *ctx)
{
    struct list_filter *lf = ctx;
    json_t *obj = blob_json(value);
    bool ok = obj && corral_objects_match(lf->res, lf->labels, lf->fields, obj);
    json_decref(obj);
    return ok;
}

/* Checks every field-selector key is supported for the kind. */
static int check_fields(struct corral_request *req, const struct corral_selector *fields)
{
    json_t *empty = json_object();
    int rc = 0;
    for (size_t i = 0; fields && i < fields->n_reqs && rc == 0; i++) {
        char buf[64];
        const char *v = req->res->field
                            ? req->res->field(empty, fields->reqs[i].key, buf, sizeof(buf))
                            : corral_field_generic(empty, fields->reqs[i].key, buf, sizeof(buf));
        if (v == corral_field_unsupported) {
            corral_reply_error(req, CORRAL_EBADREQUEST,
                               "field label not supported: %s", fields->reqs[i].key);
            rc = CORRAL_EBADREQUEST;
        }
    }
    json_decref(empty);
    return rc;
}

int corral_objects_parse_selectors(struct corral_request *req, struct corral_selector **labels,
                                   struct corral_selector **fields);
int corral_objects_parse_selectors(struct corral_request *req, struct corral_selector **labels,
                                   struct corral_selector **fields)
{
    char err[256];
    *labels = *fields = NULL;
    if (corral_selector_parse(corral_request_query(req, "labelSelector"), labels, err,
                              sizeof(err)) < 0) {
        corral_reply_error(req, CORRAL_EBADREQUEST, "unable to parse requirement: %s", err);
        return CORRAL_EBADREQUEST;
    }
    if (corral_field_selector_parse(corral_request_query(req, "fieldSelector"), fields, err,
                                    sizeof(err)) < 0 ||
        check_fields(req, *fields) < 0) {
        if (!req->answered)
            corral_reply_error(req, CORRAL_EBADREQUEST, "invalid field selector: %s", err);
        corral_selector_free(*labels);
        corral_selector_free(*fields);
        *labels = *fields = NULL;
        return CORRAL_EBADREQUEST;
    }
    return 0;
}

/* Continue tokens are base64url of "REV/KEY". */
static char *encode_continue(int64_t rev, const char *key)
{
    char raw[KEY_MAX + 32];
    int n = snprintf(raw, sizeof(raw), "%" PRId64 "/%s", rev, key);
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *out = malloc((size_t)n / 3 * 4 + 8);
    if (!out)
        return NULL;
    size_t o = 0;
    for (int i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)raw[i] << 16 | (i + 1 < n ? (unsigned char)raw[i + 1] << 8 : 0) |
                     (i + 2 < n ? (unsigned char)raw[i + 2] : 0);
        out[o++] = tbl[v >> 18 & 63];
        out[o++] = tbl[v >> 12 & 63];
        if (i + 1 < n)
            out[o++] = tbl[v >> 6 & 63];
        if (i + 2 < n)
            out[o++] = tbl[v & 63];
    }
    out[o] = 0;
    return out;
}

static int decode_continue(const char *tok, int64_t *rev, char *key, size_t keylen)
{
    char raw[KEY_MAX + 32];
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (const char *p = tok; *p; p++) {
        const char *tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        const char *at = strchr(tbl, *p);
        if (!at || !*p)
            return -EINVAL;
        acc = acc << 6 | (unsigned)(at - tbl);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o + 1 >= sizeof(raw))
                return -EINVAL;
            raw[o++] = (char)(acc >> bits & 0xff);
        }
    }
    raw[o] = 0;
    char *slash = strchr(raw, '/');
    if (!slash)
        return -EINVAL;
    *slash = 0;
    *rev = parse_rv(raw);
    if (*rev <= 0 || strlen(slash + 1) >= keylen)
        return -EINVAL;
    snprintf(key, keylen, "%s", slash + 1);
    return 0;
}

static size_t page_limit(struct corral_request *req)
{
    const char *l = corral_request_query(req, "limit");
    long v = l ? strtol(l, NULL, 10) : 0;
    size_t max = req->srv->cfg.max_list;
    if (v <= 0 || (size_t)v > max)
        return max;
    return (size_t)v;
}

static void reply_list_page(struct corral_request *req, struct corral_store_list *l,
                            int64_t list_rev, const char *cont)
{
    if (corral_request_wants_table(req)) {
        json_t *objs = json_array();
        for (size_t i = 0; i < l->n; i++)
            json_array_append_new(objs, blob_json(l->items[i]));
        reply_table(req, objs, list_rev, cont);
        json_decref(objs);
        return;
    }
    char api[128], prefix[512];
    snprintf(prefix, sizeof(prefix),
             "{\"kind\":\"%s\",\"apiVersion\":\"%s\",\"metadata\":{\"resourceVersion\":\"%" PRId64
             "\"%s%s%s},\"items\":[",
             req->res->list_kind, corral_resource_api_version(req->res, api, sizeof(api)),
             list_rev, cont ? ",\"continue\":\"" : "", cont ? cont : "", cont ? "\"" : "");
    corral_reply_list(req, prefix, l->items, l->n, "]}");
    for (size_t i = 0; i < l->n; i++)
        l->items[i] = NULL; /* the reply owns the references now */
}

static void handle_list(struct corral_request *req)
{
    struct list_filter lf = {.res = req->res};
    if (corral_objects_parse_selectors(req, &lf.labels, &lf.fields) < 0)
        return;
    char prefix[KEY_MAX], start[KEY_MAX];
    corral_resource_key(req->res, req->res->namespaced && *req->ns ? req->ns : NULL, NULL,
                        prefix, sizeof(prefix));
    int64_t cont_rev = 0;
    const char *cont = corral_request_query(req, "continue");
    if (cont && *cont && decode_continue(cont, &cont_rev, start, sizeof(start)) < 0) {
        corral_reply_error(req, CORRAL_EBADREQUEST, "invalid continue token");
        goto out;
    }
    struct corral_store_list_opts opts = {
        .prefix = prefix, .start_after = cont_rev ? start : NULL, .limit = page_limit(req)};
    if (lf.labels->n_reqs || lf.fields->n_reqs) {
        opts.filter = list_filter_fn;
        opts.filter_ctx = &lf;
    }
    struct corral_store_list l = {0};
    int rc = corral_store_list(req->srv->store, &opts, &l);
    if (rc < 0) {
        corral_reply_error(req, rc, "list failed: %s", corral_strerror(rc));
        goto out;
    }
    int64_t list_rev = cont_rev ? cont_rev : l.rev;
    char *next = l.more && l.n ? encode_continue(list_rev, l.keys[l.n - 1]) : NULL;
    reply_list_page(req, &l, list_rev, next);
    free(next);
    corral_store_list_clear(&l);
out:
    corral_selector_free(lf.labels);
    corral_selector_free(lf.fields);
}

static void handle_delete_collection(struct corral_request *req)
{
    struct list_filter lf = {.res = req->res};
    if (corral_objects_parse_selectors(req, &lf.labels, &lf.fields) < 0)
        return;
    char prefix[KEY_MAX];
    corral_resource_key(req->res, req->res->namespaced && *req->ns ? req->ns : NULL, NULL,
                        prefix, sizeof(prefix));
    struct corral_store_list_opts opts = {.prefix = prefix, .filter = list_filter_fn,
                                          .filter_ctx = &lf};
    struct corral_store_list l = {0};
    corral_store_list(req->srv->store, &opts, &l);
    struct delete_opts d = {0};
    json_t *body;
    read_delete_options(req, &d, &body);
    json_t *items = json_array();
    for (size_t i = 0; i < l.n; i++) {
        json_t *obj = blob_json(l.items[i]), *status = NULL;
        struct corral_store_obj out = {0};
        bool gone;
        if (delete_object(req->srv, req->res, corral_meta_namespace(obj), corral_meta_name(obj),
                          &d, &out, &gone, &status) == 0) {
            json_array_append_new(items, blob_json(out.value));
            corral_blob_unref(out.value);
        }
        json_decref(status);
        json_decref(obj);
    }
    corral_store_list_clear(&l);
    json_decref(body);
    char api[128];
    reply_object(req, 200, json_pack("{s:s, s:s, s:{}, s:o}", "kind", req->res->list_kind,
                                     "apiVersion",
                                     corral_resource_api_version(req->res, api, sizeof(api)),
                                     "metadata", "items", items));
    corral_selector_free(lf.labels);
    corral_selector_free(lf.fields);
}

/* ---- subresources ---- */

static void handle_binding(struct corral_request *req)
{
    json_t *binding, *status = NULL;
    if (corral_request_body_object(req, &binding) < 0)
        return;
    int rc = corral_hooks_bind(req->srv, req->ns, req->name, binding, &status);
    json_decref(binding);
    if (rc < 0) {
        corral_reply_status(req, status);
        return;
    }
    json_decref(status);
    json_t *ok = corral_status_success();
    json_object_set_new(ok, "code", json_integer(201));
    corral_reply_json(req, 201, ok);
}

static void handle_eviction(struct corral_request *req)
{
    struct delete_opts d = {.grace = -1};
    json_t *ev = NULL, *status = NULL;
    if (req->body_len)
        ev = json_loadb(req->body, req->body_len, 0, NULL);
    json_t *g = json_object_get(json_object_get(ev, "deleteOptions"), "gracePeriodSeconds");
    if (json_is_integer(g))
        d.grace = (long)json_integer_value(g);
    struct corral_store_obj out = {0};
    bool gone;
    int rc = delete_object(req->srv, req->res, req->ns, req->name, &d, &out, &gone, &status);
    json_decref(ev);
    if (rc < 0) {
        corral_reply_status(req, status);
        return;
    }
    corral_blob_unref(out.value);
    json_decref(status);
    json_t *ok = corral_status_success();
    json_object_set_new(ok, "code", json_integer(201));
    corral_reply_json(req, 201, ok);
}

static json_t *scale_of(const struct corral_resource *res, const json_t *obj)
{
    json_t *spec = json_object_get(obj, "spec"), *st = json_object_get(obj, "status");
    json_t *meta = json_deep_copy(json_object_get(obj, "metadata"));
    json_object_del(meta, "labels");
    json_object_del(meta, "annotations");
    json_object_del(meta, "managedFields");
    char selector[512] = "";
    json_t *ml = json_object_get(json_object_get(spec, "selector"), "matchLabels");
    const char *k;
    json_t *v;
    json_object_foreach(ml, k, v)
    {
        size_t n = strlen(selector);
        snprintf(selector + n, sizeof(selector) - n, "%s%s=%s", n ? "," : "", k,
                 json_string_value(v));
    }
    return json_pack("{s:s, s:s, s:o, s:{s:I}, s:{s:I, s:s}}", "kind", "Scale", "apiVersion",
                     "autoscaling/v1", "metadata", meta, "spec", "replicas",
                     json_integer_value(json_object_get(spec, "replicas")), "status", "replicas",
                     json_integer_value(json_object_get(st, "replicas")), "selector", selector);
}

static void handle_scale(struct corral_request *req)
{
    struct corral_store_obj cur;
    json_t *obj = NULL, *status = NULL;
    if (get_stored(req->srv, req->res, req->ns, req->name, &cur, &obj) < 0) {
        corral_reply_status(req, not_found(req->res, req->name));
        return;
    }
    corral_blob_unref(cur.value);
    if (strcmp(req->method, "GET") == 0) {
        reply_object(req, 200, scale_of(req->res, obj));
        json_decref(obj);
        return;
    }
    json_t *scale = NULL;
    int rc = corral_patch_scale(req, obj, &scale, &status);
    if (rc == 0) {
        json_object_set(json_object_get(obj, "spec"), "replicas",
                        json_object_get(json_object_get(scale, "spec"), "replicas"));
        struct write_opts wo = {.dry_run = dry_run(req), .expect_rev = cur.mod_rev,
                                .req = req};
        struct corral_store_obj out = {0};
        rc = update_object(req->srv, req->res, json_incref(obj), &wo, &out, &status);
        if (rc == 0) {
            json_t *stored = blob_json(out.value);
            corral_blob_unref(out.value);
            reply_object(req, 200, scale_of(req->res, stored));
            json_decref(stored);
        }
    }
    if (rc < 0)
        corral_reply_status(req, status ? status : status_of(rc, req->res, req->name, "%s",
                                                             corral_strerror(rc)));
    else
        json_decref(status);
    json_decref(scale);
    json_decref(obj);
}

/* ---- dispatch ---- */

struct object_route {
    const char *method;
    enum corral_target_shape shape;
    const char *sub;
    unsigned needs; /* subresource flag the kind must have */
    const char *verb;
    void (*handler)(struct corral_request *req);
};

static const struct object_route object_routes[] = {
    {"GET", CORRAL_TARGET_COLLECTION, NULL, 0, "list", handle_list},
    {"POST", CORRAL_TARGET_COLLECTION, NULL, 0, "create", handle_create},
    {"DELETE", CORRAL_TARGET_COLLECTION, NULL, 0, "deletecollection", handle_delete_collection},
    {"GET", CORRAL_TARGET_OBJECT, NULL, 0, "get", handle_get},
    {"PUT", CORRAL_TARGET_OBJECT, NULL, 0, "update", handle_update},
    {"PATCH", CORRAL_TARGET_OBJECT, NULL, 0, "patch", handle_patch},
    {"DELETE", CORRAL_TARGET_OBJECT, NULL, 0, "delete", handle_delete},
    {"GET", CORRAL_TARGET_SUBRESOURCE, "status", CORRAL_SUB_STATUS, "get", handle_get},
    {"PUT", CORRAL_TARGET_SUBRESOURCE, "status", CORRAL_SUB_STATUS, "update", handle_update},
    {"PATCH", CORRAL_TARGET_SUBRESOURCE, "status", CORRAL_SUB_STATUS, "patch", handle_patch},
    {"POST", CORRAL_TARGET_SUBRESOURCE, "binding", CORRAL_SUB_BINDING, "create",
     handle_binding},
    {"POST", CORRAL_TARGET_SUBRESOURCE, "eviction", CORRAL_SUB_EVICTION, "create",
     handle_eviction},
    {"GET", CORRAL_TARGET_SUBRESOURCE, "log", CORRAL_SUB_LOG, "get", corral_hooks_pod_log},
    {"GET", CORRAL_TARGET_SUBRESOURCE, "scale", CORRAL_SUB_SCALE, "get", handle_scale},
    {"PUT", CORRAL_TARGET_SUBRESOURCE, "scale", CORRAL_SUB_SCALE, "update", handle_scale},
    {"PATCH", CORRAL_TARGET_SUBRESOURCE, "scale", CORRAL_SUB_SCALE, "patch", handle_scale},
};

static bool is_watch(const struct corral_request *req)
{
    const char *w = corral_request_query(req, "watch");
    return w && (strcmp(w, "true") == 0 || strcmp(w, "1") == 0);
}

/* Finds the object route for req; *path_known says whether any method serves the path. */
static const struct object_route *find_route(struct corral_request *req, bool *path_known)
{
    const char *method = strcmp(req->method, "HEAD") == 0 ? "GET" : req->method;
    *path_known = false;
    for (size_t i = 0; i < sizeof(object_routes) / sizeof(object_routes[0]); i++) {
        const struct object_route *r = &object_routes[i];
        if (r->shape != req->shape || (r->sub && strcmp(r->sub, req->sub) != 0) ||
            (r->needs && !(req->res->subresources & r->needs)))
            continue;
        *path_known = true;
        if (strcmp(r->method, method) == 0)
            return r;
    }
    return NULL;
}

/* The Kubernetes verb a method implies, for requests no route serves. */
static const char *verb_for_method(const struct corral_request *req)
{
    static const struct {
        const char *method, *verb;
    } verbs[] = {{"POST", "create"}, {"PUT", "update"}, {"PATCH", "patch"},
                 {"DELETE", "delete"}, {"GET", "get"}, {"HEAD", "get"}};
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        if (strcmp(req->method, verbs[i].method) == 0)
            return req->shape == CORRAL_TARGET_COLLECTION && verbs[i].verb[0] == 'd'
                       ? "deletecollection"
                       : verbs[i].verb;
    return "unknown";
}

int corral_objects_classify(struct corral_request *req)
{
    bool known;
    if (corral_objects_parse_target(req) < 0)
        return CORRAL_ENOTFOUND;
    const struct object_route *route = find_route(req, &known);
    if (route)
        req->verb = route->handler == handle_list && is_watch(req) ? "watch" : route->verb;
    else
        req->verb = verb_for_method(req);
    return 0;
}

void corral_objects_dispatch(struct corral_request *req)
{
    if (corral_objects_parse_target(req) < 0) {
        corral_reply_error(req, CORRAL_ENOTFOUND,
                           "the server could not find the requested resource");
        return;
    }
    bool path_known;
    const struct object_route *route = find_route(req, &path_known);
    if (!route) {
        /* authorize first, so that a caller without rights learns nothing more than 403 */
        req->verb = verb_for_method(req);
        if (corral_auth_authorize(req->srv->auth, req) < 0)
            return;
        corral_reply_error(req, path_known ? CORRAL_EMETHOD : CORRAL_ENOTFOUND,
                           path_known ? "the server does not allow this method on the requested "
                                        "resource"
                                      : "the server could not find the requested resource");
        return;
    }
    req->verb = route->handler == handle_list && is_watch(req) ? "watch" : route->verb;
    if (!req->res->stored && strcmp(req->verb, "create") != 0) {
        corral_reply_error(req, CORRAL_EMETHOD, "%s only accept create", req->res->plural);
        return;
    }
    if (corral_auth_authorize(req->srv->auth, req) < 0)
        return;
    if (!req->res->stored) {
        corral_auth_review(req);
        return;
    }
    if (strcmp(req->verb, "watch") == 0)
        corral_watch_serve(req);
    else
        route->handler(req);
}

/* ---- server-internal API for controllers ---- */

static void log_status(const char *what, json_t *status)
{
    if (status)
        corral_debug("objects", "%s: %s", what,
                     json_string_value(json_object_get(status, "message")));
    json_decref(status);
}

int corral_objects_create(struct corral_apiserver *srv, const struct corral_resource *res,
                          const char *ns, json_t *obj, json_t **out)
{
    struct write_opts wo = {0};
    struct corral_store_obj o = {0};
    json_t *status = NULL;
    int rc = create_object(srv, res, ns, obj, &wo, &o, &status);
    log_status("create", status);
    if (rc == 0) {
        if (out)
            *out = blob_json(o.value);
        corral_blob_unref(o.value);
    }
    return rc;
}

int corral_objects_update(struct corral_apiserver *srv, const struct corral_resource *res,
                          json_t *obj, bool status_only, json_t **out)
{
    struct write_opts wo = {.status_only = status_only};
    struct corral_store_obj o = {0};
    json_t *status = NULL;
    int rc = update_object(srv, res, obj, &wo, &o, &status);
    log_status("update", status);
    if (rc == 0) {
        if (out)
            *out = blob_json(o.value);
        corral_blob_unref(o.value);
    }
    return rc;
}

int corral_objects_delete(struct corral_apiserver *srv, const struct corral_resource *res,
                          const char *ns, const char *name)
{
    struct delete_opts d = {.grace = 0};
    struct corral_store_obj o = {0};
    json_t *status = NULL;
    bool gone;
    int rc = delete_object(srv, res, ns, name, &d, &o, &gone, &status);
    log_status("delete", status);
    if (rc == 0)
        corral_blob_unref(o.value);
    return rc;
}

int corral_objects_delete_with(struct corral_apiserver *srv, const struct corral_resource *res,
                               const char *ns, const char *name,
                               const struct corral_delete_options *opts)
{
    struct delete_opts d = {.grace = opts->grace, .propagation = opts->propagation,
                            .uid = opts->uid};
    struct corral_store_obj o = {0};
    json_t *status = NULL;
    bool gone;
    int rc = delete_object(srv, res, ns, name, &d, &o, &gone, &status);
    log_status("delete", status);
    if (rc == 0)
        corral_blob_unref(o.value);
    return rc;
}

int corral_objects_get(struct corral_apiserver *srv, const struct corral_resource *res,
                       const char *ns, const char *name, json_t **out)
{
    struct corral_store_obj o;
    int rc = get_stored(srv, res, ns, name, &o, out);
    if (rc == 0)
        corral_blob_unref(o.value);
    return rc;
}

int corral_objects_bootstrap(struct corral_apiserver *srv)
{
    const struct corral_resource *nsres = corral_resource_find("", "v1", "namespaces");
    static const char *const names[] = {"default", "kube-system", "kube-public",
                                        "kube-node-lease", NULL};
    for (const char *const *n = names; *n; n++) {
        json_t *tmp;
        if (corral_objects_get(srv, nsres, NULL, *n, &tmp) == 0) {
            json_decref(tmp);
            continue;
        }
        json_t *ns = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "Namespace",
                               "metadata", "name", *n);
        int rc = corral_objects_create(srv, nsres, NULL, ns, NULL);
        if (rc < 0 && rc != CORRAL_EEXISTS)
            return rc;
    }
    return 0;
}
