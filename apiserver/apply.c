/* SPDX-License-Identifier: Apache-2.0 */
/*
 * apply: server-side apply (see apply.h).
 *
 * Field sets are FieldsV1 trees; a leaf is an empty object. Lists whose elements carry a merge
 * key (containers by name, ports by containerPort, ...) are addressed per element; any other
 * list is one leaf, as Kubernetes treats atomic lists. Merging the configuration into the
 * live object reuses the strategic merge patch, so apply and kubectl's client-side apply agree
 * on list semantics.
 */
#include "apply.h"
#include "error.h"
#include "meta.h"
#include "patch.h"
#include "schema.h"
#include "status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const list_keys[][2] = {
    {"containers", "name"},   {"initContainers", "name"}, {"volumes", "name"},
    {"env", "name"},          {"volumeMounts", "mountPath"}, {"imagePullSecrets", "name"},
    {"conditions", "type"},   {"tolerations", NULL},      {NULL, NULL}};

static const char *key_for(const char *field, const json_t *list)
{
    if (strcmp(field, "ports") == 0)
        return json_object_get(json_array_get(list, 0), "containerPort") ? "containerPort"
                                                                           : "port";
    for (int i = 0; list_keys[i][0]; i++)
        if (strcmp(field, list_keys[i][0]) == 0)
            return list_keys[i][1];
    return NULL;
}

static char *element_token(const json_t *elem, const char *key)
{
    json_t *id = json_pack("{s:O}", key, json_object_get(elem, key));
    char *text = json_dumps(id, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(id);
    if (!text)
        return NULL;
    size_t n = strlen(text) + 3;
    char *tok = malloc(n);
    if (tok)
        snprintf(tok, n, "k:%s", text);
    free(text);
    return tok;
}

static json_t *fieldset_of(const json_t *value);

static json_t *fieldset_list(const json_t *list, const char *key)
{
    json_t *set = json_object();
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        if (!json_object_get(e, key))
            continue;
        char *tok = element_token(e, key);
        if (tok) {
            json_t *child = fieldset_of(e);
            json_object_set_new(child, ".", json_object());
            json_object_set_new(set, tok, child);
        }
        free(tok);
    }
    return set;
}

static json_t *fieldset_of(const json_t *value)
{
    json_t *set = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)value, k, v)
    {
        char tok[300];
        snprintf(tok, sizeof(tok), "f:%s", k);
        const char *mk = json_is_array(v) ? key_for(k, v) : NULL;
        if (json_is_object(v) && json_object_size(v) > 0)
            json_object_set_new(set, tok, fieldset_of(v));
        else if (mk && json_array_size(v) > 0)
            json_object_set_new(set, tok, fieldset_list(v, mk));
        else
            json_object_set_new(set, tok, json_object());
    }
    return set;
}

json_t *corral_apply_fieldset(const json_t *value)
{
    json_t *copy = json_deep_copy(value);
    json_t *meta = json_object_get(copy, "metadata");
    /* identity and server-owned metadata are never "managed" */
    static const char *const skip[] = {"name", "namespace", "uid", "resourceVersion",
                                       "creationTimestamp", "generation", "managedFields",
                                       "deletionTimestamp", "deletionGracePeriodSeconds", NULL};
    for (const char *const *s = skip; *s; s++)
        json_object_del(meta, *s);
    if (json_object_size(meta) == 0)
        json_object_del(copy, "metadata");
    json_object_del(copy, "apiVersion");
    json_object_del(copy, "kind");
    json_t *set = fieldset_of(copy);
    json_decref(copy);
    return set;
}

/* ---- walking field sets ---- */

/* Value at a token path inside obj, or NULL. */
static const json_t *value_at(const json_t *obj, json_t *const *path, size_t depth)
{
    const json_t *cur = obj;
    for (size_t i = 0; i < depth && cur; i++) {
        const char *tok = json_string_value(path[i]);
        if (strncmp(tok, "f:", 2) == 0) {
            cur = json_object_get(cur, tok + 2);
        } else if (strncmp(tok, "k:", 2) == 0) {
            json_t *id = json_loads(tok + 2, 0, NULL);
            const json_t *found = NULL;
            size_t j;
            json_t *e;
            json_array_foreach(cur, j, e)
            {
                const char *k;
                json_t *v;
                bool all = true;
                json_object_foreach(id, k, v) all &= json_equal(json_object_get(e, k), v);
                if (all && !found)
                    found = e;
            }
            json_decref(id);
            cur = found;
        } else {
            return cur; /* "." marks the element itself */
        }
    }
    return cur;
}

typedef void (*leaf_fn)(json_t *const *path, size_t depth, void *ctx);

static void walk_leaves(const json_t *set, json_t **path, size_t depth, leaf_fn fn, void *ctx)
{
    if (json_object_size(set) == 0) {
        fn(path, depth, ctx);
        return;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)set, k, v)
    {
        if (strcmp(k, ".") == 0 || depth >= 31)
            continue;
        path[depth] = json_string(k);
        walk_leaves(v, path, depth + 1, fn, ctx);
        json_decref(path[depth]);
    }
}

static bool set_has(const json_t *set, json_t *const *path, size_t depth)
{
    const json_t *cur = set;
    for (size_t i = 0; i < depth && cur; i++)
        cur = json_object_get(cur, json_string_value(path[i]));
    return cur != NULL;
}

static void set_remove(json_t *set, json_t *const *path, size_t depth)
{
    if (depth == 0)
        return;
    json_t *parents[32];
    json_t *cur = set;
    for (size_t i = 0; i + 1 < depth && cur; i++) {
        parents[i] = cur;
        cur = json_object_get(cur, json_string_value(path[i]));
    }
    if (!cur)
        return;
    json_object_del(cur, json_string_value(path[depth - 1]));
    /* prune parents left empty */
    for (size_t i = depth - 1; i-- > 0;) {
        json_t *child = json_object_get(parents[i], json_string_value(path[i]));
        if (json_object_size(child) == 0 ||
            (json_object_size(child) == 1 && json_object_get(child, ".")))
            json_object_del(parents[i], json_string_value(path[i]));
        else
            break;
    }
}

/* Writes a list element's key as Kubernetes prints it: [name="web"], [containerPort=80]. */
static size_t key_text(const char *json_key, char *buf, size_t len)
{
    json_t *id = json_loads(json_key, 0, NULL);
    size_t n = (size_t)snprintf(buf, len, "[");
    const char *k;
    json_t *v;
    bool first = true;
    json_object_foreach(id, k, v)
    {
        char *val = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        if (n < len)
            n += (size_t)snprintf(buf + n, len - n, "%s%s=%s", first ? "" : ",", k,
                                  val ? val : "?");
        free(val);
        first = false;
    }
    json_decref(id);
    if (n < len)
        n += (size_t)snprintf(buf + n, len - n, "]");
    return n;
}

/* The field a token path names, as in ".spec.containers[name=\"web\"].image". */
static void path_text(json_t *const *path, size_t depth, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = 0;
    for (size_t i = 0; i < depth && n + 1 < len; i++) {
        const char *tok = json_string_value(path[i]);
        if (strncmp(tok, "f:", 2) == 0)
            n += (size_t)snprintf(buf + n, len - n, ".%s", tok + 2);
        else if (strncmp(tok, "k:", 2) == 0)
            n += key_text(tok + 2, buf + n, len - n);
    }
}

/* ---- managedFields bookkeeping ---- */

static json_t *managed_fields(json_t *obj)
{
    json_t *meta = corral_meta_get(obj, true);
    json_t *mf = json_object_get(meta, "managedFields");
    if (!json_is_array(mf)) {
        mf = json_array();
        json_object_set_new(meta, "managedFields", mf);
    }
    return mf;
}

static json_t *entry_for(json_t *mf, const char *manager, const char *operation)
{
    size_t i;
    json_t *e;
    json_array_foreach(mf, i, e)
    {
        const char *m = json_string_value(json_object_get(e, "manager"));
        const char *op = json_string_value(json_object_get(e, "operation"));
        if (m && op && strcmp(m, manager) == 0 && strcmp(op, operation) == 0)
            return e;
    }
    return NULL;
}

static void set_entry(json_t *obj, const char *manager, const char *operation, json_t *fields,
                      const char *subresource)
{
    json_t *mf = managed_fields(obj);
    json_t *e = entry_for(mf, manager, operation);
    char ts[21];
    corral_meta_format_time(time(NULL), ts);
    if (json_object_size(fields) == 0) {
        json_decref(fields);
        for (size_t i = json_array_size(mf); e && i-- > 0;)
            if (json_array_get(mf, i) == e)
                json_array_remove(mf, i);
        return;
    }
    if (!e) {
        e = json_object();
        json_array_append_new(mf, e);
    }
    json_object_set_new(e, "manager", json_string(manager));
    json_object_set_new(e, "operation", json_string(operation));
    json_object_set(e, "apiVersion", json_object_get(obj, "apiVersion"));
    json_object_set_new(e, "time", json_string(ts));
    json_object_set_new(e, "fieldsType", json_string("FieldsV1"));
    json_object_set_new(e, "fieldsV1", fields);
    if (subresource && *subresource)
        json_object_set_new(e, "subresource", json_string(subresource));
}

struct strip_ctx {
    json_t *mf;
    const json_t *except; /* the entry that keeps its fields */
};

static void strip_leaf(json_t *const *path, size_t depth, void *vctx)
{
    struct strip_ctx *c = vctx;
    size_t i;
    json_t *e;
    json_array_foreach(c->mf, i, e)
    {
        if (e != c->except)
            set_remove(json_object_get(e, "fieldsV1"), path, depth);
    }
}

/* Removes entries whose field sets became empty. */
static void drop_empty_entries(json_t *mf)
{
    for (size_t i = json_array_size(mf); i-- > 0;)
        if (json_object_size(json_object_get(json_array_get(mf, i), "fieldsV1")) == 0)
            json_array_remove(mf, i);
}

static const char *manager_of(struct corral_request *req, const char *fallback)
{
    const char *m = corral_request_query(req, "fieldManager");
    if (m && *m)
        return m;
    const char *ua = corral_request_header(req, "User-Agent");
    static __thread char buf[128];
    if (ua) {
        size_t n = strcspn(ua, "/ ");
        snprintf(buf, sizeof(buf), "%.*s", (int)(n < 127 ? n : 127), ua);
        return buf;
    }
    return fallback;
}

/* ---- update recording ---- */

struct diff_ctx {
    const json_t *old, *obj;
    json_t *changed;
};

static void set_add(json_t *set, json_t *const *path, size_t depth)
{
    json_t *cur = set;
    for (size_t i = 0; i < depth; i++) {
        json_t *next = json_object_get(cur, json_string_value(path[i]));
        if (!next) {
            next = json_object();
            json_object_set_new(cur, json_string_value(path[i]), next);
        }
        cur = next;
    }
}

static void diff_leaf(json_t *const *path, size_t depth, void *vctx)
{
    struct diff_ctx *c = vctx;
    if (!json_equal((json_t *)value_at(c->old, path, depth), (json_t *)value_at(c->obj, path, depth)))
        set_add(c->changed, path, depth);
}

void corral_apply_record_update(struct corral_request *req, const json_t *old, json_t *obj)
{
    json_t *mf_old = json_object_get(json_object_get(old, "metadata"), "managedFields");
    json_t *meta = corral_meta_get(obj, true);
    if (!json_is_array(json_object_get(meta, "managedFields")))
        json_object_set_new(meta, "managedFields",
                            mf_old ? json_deep_copy(mf_old) : json_array());
    json_t *set = corral_apply_fieldset(obj);
    struct diff_ctx dc = {old, obj, json_object()};
    json_t *path[32];
    walk_leaves(set, path, 0, diff_leaf, &dc);
    json_decref(set);
    if (json_object_size(dc.changed) == 0) {
        json_decref(dc.changed);
        return;
    }
    json_t *mf = managed_fields(obj);
    const char *manager = manager_of(req, "unknown");
    json_t *mine = entry_for(mf, manager, "Update");
    json_t *merged = mine ? json_deep_copy(json_object_get(mine, "fieldsV1")) : json_object();
    json_t *tmp = corral_patch_merge(merged, dc.changed);
    json_decref(merged);
    set_entry(obj, manager, "Update", tmp, req->sub);
    struct strip_ctx sc = {mf, entry_for(mf, manager, "Update")};
    walk_leaves(dc.changed, path, 0, strip_leaf, &sc);
    drop_empty_entries(mf);
    json_decref(dc.changed);
}

/* ---- apply ---- */

struct conflict_ctx {
    const json_t *live, *config;
    json_t *mf;
    const char *manager;
    json_t *causes;
    json_t *contested; /* field set of the leaves named in causes */
};

/*
 * "conflict with MANAGER" as Kubernetes words it: `"kubectl" with subresource "scale" using
 * apps/v1 at 2026-01-01T00:00:00Z` (subresource, version and time only where they apply).
 */
static void manager_text(const json_t *entry, char *buf, size_t len)
{
    const char *m = json_string_value(json_object_get(entry, "manager"));
    const char *op = json_string_value(json_object_get(entry, "operation"));
    const char *sub = json_string_value(json_object_get(entry, "subresource"));
    const char *av = json_string_value(json_object_get(entry, "apiVersion"));
    const char *t = json_string_value(json_object_get(entry, "time"));
    size_t n = (size_t)snprintf(buf, len, "conflict with \"%s\"", m ? m : "");
    if (sub && *sub && n < len)
        n += (size_t)snprintf(buf + n, len - n, " with subresource \"%s\"", sub);
    if (op && strcmp(op, "Update") == 0 && n < len)
        n += (size_t)snprintf(buf + n, len - n, " using %s", av ? av : "");
    if (op && strcmp(op, "Update") == 0 && t && n < len)
        snprintf(buf + n, len - n, " at %s", t);
}

/*
 * A leaf conflicts when the applier would change a value that another manager owns. Applying
 * the value already there is no conflict: the field becomes shared, as in Kubernetes.
 */
static void conflict_leaf(json_t *const *path, size_t depth, void *vctx)
{
    struct conflict_ctx *c = vctx;
    const json_t *want = value_at(c->config, path, depth);
    const json_t *have = value_at(c->live, path, depth);
    if (!have || json_equal((json_t *)want, (json_t *)have))
        return;
    size_t i;
    json_t *e;
    json_array_foreach(c->mf, i, e)
    {
        const char *m = json_string_value(json_object_get(e, "manager"));
        const char *op = json_string_value(json_object_get(e, "operation"));
        if (!m || (strcmp(m, c->manager) == 0 && op && strcmp(op, "Apply") == 0))
            continue;
        if (!set_has(json_object_get(e, "fieldsV1"), path, depth))
            continue;
        char field[512], msg[700];
        path_text(path, depth, field, sizeof(field));
        manager_text(e, msg, sizeof(msg));
        json_array_append_new(c->causes, json_pack("{s:s, s:s, s:s}", "reason",
                                                   "FieldManagerConflict", "message", msg,
                                                   "field", field));
        set_add(c->contested, path, depth);
    }
}

struct prune_ctx {
    json_t *obj;
    const json_t *new_set;
    json_t *mf;
    const json_t *mine;
};

static void remove_value(json_t *obj, json_t *const *path, size_t depth)
{
    if (depth == 0)
        return;
    json_t *parent = (json_t *)value_at(obj, path, depth - 1);
    const char *tok = json_string_value(path[depth - 1]);
    if (strncmp(tok, "f:", 2) == 0 && json_is_object(parent)) {
        json_object_del(parent, tok + 2);
    } else if (strncmp(tok, "k:", 2) == 0 && json_is_array(parent)) {
        const json_t *elem = value_at(obj, path, depth);
        for (size_t i = json_array_size(parent); elem && i-- > 0;)
            if (json_array_get(parent, i) == elem)
                json_array_remove(parent, i);
    }
}

static bool owned_by_others(const struct prune_ctx *c, json_t *const *path, size_t depth)
{
    size_t i;
    json_t *e;
    json_array_foreach(c->mf, i, e)
    {
        if (e != c->mine && set_has(json_object_get(e, "fieldsV1"), path, depth))
            return true;
    }
    return false;
}

/*
 * Removes what the applier owned at path (its node mine_node) and no longer applies. A leaf,
 * or a list element the applier owned as a whole ("."), goes entirely unless the new
 * configuration or another manager still holds something under it; otherwise the walk goes
 * down, and a map left empty by the removals below it goes too.
 */
static void prune_node(struct prune_ctx *c, const json_t *mine_node, json_t **path, size_t depth)
{
    bool whole = json_object_size(mine_node) == 0 || json_object_get(mine_node, ".");
    if (depth > 0 && !set_has(c->new_set, path, depth) && !owned_by_others(c, path, depth) &&
        whole) {
        remove_value(c->obj, path, depth);
        return;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)mine_node, k, v)
    {
        if (strcmp(k, ".") == 0 || depth >= 31)
            continue;
        path[depth] = json_string(k);
        prune_node(c, v, path, depth + 1);
        json_decref(path[depth]);
    }
    const json_t *value = depth > 0 ? value_at(c->obj, path, depth) : NULL;
    if (json_is_object(value) && json_object_size(value) == 0 && json_object_size(mine_node) > 0 &&
        !set_has(c->new_set, path, depth) && !owned_by_others(c, path, depth))
        remove_value(c->obj, path, depth);
}

static json_t *conflict_status(struct corral_request *req, json_t *causes)
{
    char msg[2048];
    int n = snprintf(msg, sizeof(msg), "Apply failed with %zu conflict%s: ",
                     json_array_size(causes), json_array_size(causes) == 1 ? "" : "s");
    size_t i;
    json_t *c;
    json_array_foreach(causes, i, c)
    {
        if (n >= (int)sizeof(msg))
            break;
        n += snprintf(msg + n, sizeof(msg) - (size_t)n, "%s%s: %s", i ? "\n" : "",
                      json_string_value(json_object_get(c, "message")),
                      json_string_value(json_object_get(c, "field")));
    }
    json_t *st = corral_status_from_error(CORRAL_ECONFLICT, msg);
    corral_status_set_details(st, req->res->group, req->res->plural, req->name);
    json_object_set(json_object_get(st, "details"), "causes", causes);
    return st;
}

static int check_config(struct corral_request *req, json_t *config, json_t **status)
{
    char api[128];
    corral_resource_api_version(req->res, api, sizeof(api));
    const char *kind = corral_meta_kind(config), *av = corral_meta_api_version(config);
    const char *name = corral_meta_name(config);
    if (!kind || !av || strcmp(kind, req->res->kind) != 0 || strcmp(av, api) != 0) {
        *status = corral_status_from_error(CORRAL_EBADREQUEST,
                                           "apply configuration must set apiVersion and kind "
                                           "matching the request path");
        return CORRAL_EBADREQUEST;
    }
    if (name && strcmp(name, req->name) != 0) {
        *status = corral_status_from_error(CORRAL_EBADREQUEST,
                                           "the name of the object does not match the name on "
                                           "the URL");
        return CORRAL_EBADREQUEST;
    }
    return corral_schema_check_request(req, config, status);
}

int corral_apply_patch(struct corral_request *req, const json_t *old, const json_t *config,
                       json_t **out, json_t **status)
{
    const char *manager = corral_request_query(req, "fieldManager");
    if (!manager || !*manager) {
        *status = corral_status_from_error(CORRAL_EBADREQUEST,
                                           "PATCH, application/apply-patch+yaml requests must "
                                           "set fieldManager");
        return CORRAL_EBADREQUEST;
    }
    json_t *cfg = json_deep_copy(config); /* unknown fields may be dropped from it */
    int rc = check_config(req, cfg, status);
    if (rc < 0) {
        json_decref(cfg);
        return rc;
    }
    const char *force = corral_request_query(req, "force");
    bool forced = force && strcmp(force, "true") == 0;
    json_t *meta = corral_meta_get(cfg, true);
    json_object_set_new(meta, "name", json_string(req->name));
    if (req->res->namespaced)
        json_object_set_new(meta, "namespace", json_string(req->ns));
    json_object_del(meta, "managedFields");
    json_t *new_set = corral_apply_fieldset(cfg);
    json_t *base = old ? json_deep_copy(old) : json_object();
    json_t *mf = managed_fields(base);
    json_t *path[32];
    json_t *contested = json_object();
    if (old) {
        struct conflict_ctx cc = {old, cfg, mf, manager, json_array(), contested};
        walk_leaves(new_set, path, 0, conflict_leaf, &cc);
        if (json_array_size(cc.causes) > 0 && !forced) {
            *status = conflict_status(req, cc.causes);
            json_decref(cc.causes);
            rc = CORRAL_ECONFLICT;
            goto out;
        }
        json_decref(cc.causes);
    }
    char err[256] = "";
    json_t *merged = req->res->crd ? corral_patch_merge(base, cfg)
                                   : corral_patch_strategic(base, cfg, err, sizeof(err));
    if (!merged) {
        *status = corral_status_from_error(CORRAL_EBADREQUEST, err);
        rc = CORRAL_EBADREQUEST;
        goto out;
    }
    json_t *mmf = managed_fields(merged);
    json_t *mine = entry_for(mmf, manager, "Apply");
    if (mine) {
        struct prune_ctx pc = {merged, new_set, mmf, mine};
        prune_node(&pc, json_object_get(mine, "fieldsV1"), path, 0);
    }
    /* force: the applier takes the contested fields away from their other managers */
    struct strip_ctx sc = {mmf, mine};
    if (json_object_size(contested) > 0)
        walk_leaves(contested, path, 0, strip_leaf, &sc);
    set_entry(merged, manager, "Apply", json_incref(new_set), req->sub);
    drop_empty_entries(managed_fields(merged));
    *out = merged;
out:
    json_decref(contested);
    json_decref(new_set);
    json_decref(base);
    json_decref(cfg);
    return rc;
}
