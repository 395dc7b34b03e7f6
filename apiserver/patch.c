/* SPDX-License-Identifier: Apache-2.0 */
/*
 * patch: PATCH media types (see patch.h).
 *
 * Strategic merge patch follows the directives kubectl emits (kubectl-compat.md §5.5): maps
 * merge with null deleting a key; lists of objects merge by their merge key (containers, env,
 * volumes: name; container ports: containerPort; service ports: port; volumeMounts: mountPath;
 * conditions: type); `{"$patch": "delete", key: ...}` removes an element; `$setElementOrder/X`
 * orders the merged list; `$retainKeys` keeps only the listed keys; `$patch: replace` replaces
 * a map or list; `$deleteFromPrimitiveList/X` removes values; other primitive lists are
 * replaced, except finalizers, which merge as a set.
 */
#include "patch.h"
#include "apply.h"
#include "error.h"
#include "meta.h"
#include "schema.h"
#include "status.h"
#include "yamljson.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- RFC 7386 ---- */

json_t *corral_patch_merge(const json_t *target, const json_t *patch)
{
    if (!json_is_object(patch))
        return json_deep_copy(patch);
    json_t *out = json_is_object(target) ? json_deep_copy(target) : json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)patch, k, v)
    {
        if (json_is_null(v)) {
            json_object_del(out, k);
            continue;
        }
        json_object_set_new(out, k, corral_patch_merge(json_object_get(out, k), v));
    }
    return out;
}

/* ---- RFC 6902 ---- */

/* Decodes one JSON-pointer token (~1 → '/', ~0 → '~'). */
static void unescape_token(const char *s, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < outlen; i++) {
        if (s[i] == '~' && i + 1 < n && (s[i + 1] == '0' || s[i + 1] == '1')) {
            out[o++] = s[i + 1] == '0' ? '~' : '/';
            i++;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = 0;
}

/* Resolves path to its parent container and final token. Returns 0 or -EINVAL. */
static int resolve_parent(json_t *root, const char *path, json_t **parent, char *last,
                          size_t lastlen)
{
    if (!path || path[0] != '/')
        return -EINVAL;
    json_t *cur = root;
    const char *p = path + 1;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        char tok[512];
        unescape_token(p, n, tok, sizeof(tok));
        if (!slash) {
            *parent = cur;
            snprintf(last, lastlen, "%s", tok);
            return 0;
        }
        if (json_is_object(cur)) {
            cur = json_object_get(cur, tok);
        } else if (json_is_array(cur)) {
            char *end;
            long idx = strtol(tok, &end, 10);
            cur = *end || idx < 0 ? NULL : json_array_get(cur, (size_t)idx);
        } else {
            cur = NULL;
        }
        if (!cur)
            return -EINVAL;
        p = slash + 1;
    }
}

static bool array_index(const json_t *arr, const char *tok, bool allow_end, size_t *idx)
{
    if (allow_end && strcmp(tok, "-") == 0) {
        *idx = json_array_size(arr);
        return true;
    }
    char *end;
    long v = strtol(tok, &end, 10);
    if (!*tok || *end || v < 0)
        return false;
    size_t limit = json_array_size(arr) + (allow_end ? 1 : 0);
    if ((size_t)v >= limit)
        return false;
    *idx = (size_t)v;
    return true;
}

static json_t *pointer_get(json_t *root, const char *path)
{
    if (!path || !*path)
        return root;
    json_t *parent;
    char last[512];
    if (resolve_parent(root, path, &parent, last, sizeof(last)) < 0)
        return NULL;
    if (json_is_object(parent))
        return json_object_get(parent, last);
    size_t idx;
    if (json_is_array(parent) && array_index(parent, last, false, &idx))
        return json_array_get(parent, idx);
    return NULL;
}

static int op_add(json_t *root, const char *path, json_t *value)
{
    json_t *parent;
    char last[512];
    if (resolve_parent(root, path, &parent, last, sizeof(last)) < 0)
        return -EINVAL;
    if (json_is_object(parent))
        return json_object_set(parent, last, value) ? -ENOMEM : 0;
    size_t idx;
    if (json_is_array(parent) && array_index(parent, last, true, &idx))
        return json_array_insert(parent, idx, value) ? -ENOMEM : 0;
    return -EINVAL;
}

static int op_remove(json_t *root, const char *path)
{
    json_t *parent;
    char last[512];
    if (resolve_parent(root, path, &parent, last, sizeof(last)) < 0)
        return -EINVAL;
    if (json_is_object(parent))
        return json_object_del(parent, last) ? -EINVAL : 0;
    size_t idx;
    if (json_is_array(parent) && array_index(parent, last, false, &idx))
        return json_array_remove(parent, idx) ? -EINVAL : 0;
    return -EINVAL;
}

static int json_patch_op(json_t *doc, const json_t *op, char *err, size_t errlen)
{
    const char *name = json_string_value(json_object_get(op, "op"));
    const char *path = json_string_value(json_object_get(op, "path"));
    const char *from = json_string_value(json_object_get(op, "from"));
    json_t *value = json_object_get(op, "value");
    int rc = -EINVAL;
    if (!name || !path) {
        snprintf(err, errlen, "each operation needs \"op\" and \"path\"");
        return CORRAL_EINVALID;
    }
    if (strcmp(name, "add") == 0 && value) {
        rc = op_add(doc, path, value);
    } else if (strcmp(name, "remove") == 0) {
        rc = op_remove(doc, path);
    } else if (strcmp(name, "replace") == 0 && value) {
        rc = pointer_get(doc, path) ? op_remove(doc, path) : -EINVAL;
        if (rc == 0)
            rc = op_add(doc, path, value);
    } else if ((strcmp(name, "move") == 0 || strcmp(name, "copy") == 0) && from) {
        json_t *v = pointer_get(doc, from);
        json_t *copy = v ? json_deep_copy(v) : NULL;
        rc = copy ? 0 : -EINVAL;
        if (rc == 0 && name[0] == 'm')
            rc = op_remove(doc, from);
        if (rc == 0)
            rc = op_add(doc, path, copy);
        json_decref(copy);
    } else if (strcmp(name, "test") == 0) {
        json_t *v = pointer_get(doc, path);
        if (!v || !json_equal(v, value)) {
            snprintf(err, errlen, "testing value %s failed", path);
            return CORRAL_ECONFLICT;
        }
        rc = 0;
    } else {
        snprintf(err, errlen, "unsupported or incomplete operation \"%s\"", name);
        return CORRAL_EINVALID;
    }
    if (rc < 0) {
        snprintf(err, errlen, "cannot %s %s: the path does not exist or is invalid", name, path);
        return CORRAL_EINVALID;
    }
    return 0;
}

int corral_patch_json(const json_t *target, const json_t *ops, json_t **out, char *err,
                      size_t errlen)
{
    if (!json_is_array(ops)) {
        snprintf(err, errlen, "a JSON patch must be a list of operations");
        return CORRAL_EINVALID;
    }
    json_t *doc = json_deep_copy(target);
    size_t i;
    json_t *op;
    json_array_foreach(ops, i, op)
    {
        int rc = json_patch_op(doc, op, err, errlen);
        if (rc < 0) {
            json_decref(doc);
            return rc;
        }
    }
    *out = doc;
    return 0;
}

/* ---- strategic merge patch ---- */

static const char *merge_key_for(const char *field, const json_t *a, const json_t *b)
{
    static const struct {
        const char *field, *key;
    } keys[] = {{"containers", "name"},       {"initContainers", "name"},
                {"ephemeralContainers", "name"}, {"volumes", "name"},
                {"env", "name"},              {"imagePullSecrets", "name"},
                {"volumeMounts", "mountPath"}, {"volumeDevices", "devicePath"},
                {"conditions", "type"},       {"hostAliases", "ip"},
                {"containerStatuses", "name"}, {"initContainerStatuses", "name"},
                {"addresses", "type"},        {"taints", "key"},
                {"ownerReferences", "uid"},   {"subsets", NULL}};
    if (strcmp(field, "ports") == 0) {
        const json_t *probe = json_array_get(b, 0) ? json_array_get(b, 0) : json_array_get(a, 0);
        return json_object_get(probe, "containerPort") ? "containerPort" : "port";
    }
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strcmp(field, keys[i].field) == 0)
            return keys[i].key;
    return NULL;
}

static json_t *smp_value(const json_t *target, const json_t *patch, const char *field, char *err,
                         size_t errlen);

static long find_by_key(const json_t *list, const char *key, const json_t *want)
{
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e) if (json_equal(json_object_get(e, key), want)) return (long)i;
    return -1;
}

/* Orders list by the $setElementOrder hint; elements not named keep their relative order. */
static void apply_order(json_t *list, const json_t *order, const char *key)
{
    json_t *sorted = json_array();
    size_t i;
    json_t *o;
    json_array_foreach(order, i, o)
    {
        json_t *want = key ? json_object_get(o, key) : o;
        long at = key ? find_by_key(list, key, want) : -1;
        if (!key) {
            size_t j;
            json_t *e;
            json_array_foreach(list, j, e) if (json_equal(e, want)) at = (long)j;
        }
        if (at >= 0) {
            json_array_append(sorted, json_array_get(list, (size_t)at));
            json_array_remove(list, (size_t)at);
        }
    }
    json_array_extend(sorted, list);
    json_array_clear(list);
    json_array_extend(list, sorted);
    json_decref(sorted);
}

static json_t *smp_list(const json_t *target, const json_t *patch, const char *field,
                        const json_t *order, char *err, size_t errlen)
{
    /* a list nested directly in a list has no field name and no merge key: it is replaced */
    const char *key = field ? merge_key_for(field, target, patch) : NULL;
    bool set_merge = field && strcmp(field, "finalizers") == 0;
    if (!key && !set_merge)
        return json_deep_copy(patch);
    json_t *out = json_is_array(target) ? json_deep_copy(target) : json_array();
    size_t i;
    json_t *e;
    json_array_foreach(patch, i, e)
    {
        if (set_merge) {
            bool have = false;
            size_t j;
            json_t *x;
            json_array_foreach(out, j, x) have |= json_equal(x, e);
            if (!have)
                json_array_append(out, e);
            continue;
        }
        const char *directive = json_string_value(json_object_get(e, "$patch"));
        json_t *kv = json_object_get(e, key);
        if (directive && strcmp(directive, "replace") == 0) {
            json_decref(out);
            /* the list becomes the patch's other elements; the marker itself goes */
            json_t *copy = json_deep_copy(patch);
            for (size_t j = json_array_size(copy); j-- > 0;) {
                json_t *x = json_array_get(copy, j);
                json_object_del(x, "$patch");
                if (json_is_object(x) && json_object_size(x) == 0)
                    json_array_remove(copy, j);
            }
            return copy;
        }
        long at = kv ? find_by_key(out, key, kv) : -1;
        if (directive && strcmp(directive, "delete") == 0) {
            if (at >= 0)
                json_array_remove(out, (size_t)at);
            continue;
        }
        if (at >= 0) {
            json_t *merged = smp_value(json_array_get(out, (size_t)at), e, NULL, err, errlen);
            if (!merged) {
                json_decref(out);
                return NULL;
            }
            json_array_set_new(out, (size_t)at, merged);
        } else {
            json_t *fresh = smp_value(NULL, e, NULL, err, errlen);
            if (!fresh) {
                json_decref(out);
                return NULL;
            }
            json_array_append_new(out, fresh);
        }
    }
    if (order)
        apply_order(out, order, key);
    return out;
}

static void delete_from_primitive(json_t *obj, const char *field, const json_t *values)
{
    json_t *list = json_object_get(obj, field);
    size_t i;
    json_t *v;
    json_array_foreach(values, i, v)
    {
        for (size_t j = json_array_size(list); j-- > 0;)
            if (json_equal(json_array_get(list, j), v))
                json_array_remove(list, j);
    }
}

static json_t *smp_map(const json_t *target, const json_t *patch, char *err, size_t errlen)
{
    const char *directive = json_string_value(json_object_get(patch, "$patch"));
    if (directive && strcmp(directive, "replace") == 0) {
        json_t *copy = json_deep_copy(patch);
        json_object_del(copy, "$patch");
        return copy;
    }
    if (directive && strcmp(directive, "delete") == 0)
        return NULL;
    json_t *out = json_is_object(target) ? json_deep_copy(target) : json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)patch, k, v)
    {
        if (k[0] == '$') {
            if (strncmp(k, "$deleteFromPrimitiveList/", 25) == 0)
                delete_from_primitive(out, k + 25, v);
            continue;
        }
        if (json_is_null(v)) {
            json_object_del(out, k);
            continue;
        }
        char order_key[300];
        snprintf(order_key, sizeof(order_key), "$setElementOrder/%s", k);
        json_t *order = json_object_get(patch, order_key);
        json_t *merged = json_is_array(v)
                             ? smp_list(json_object_get(out, k), v, k, order, err, errlen)
                             : smp_value(json_object_get(out, k), v, k, err, errlen);
        if (!merged && !err[0] && json_is_object(v) && json_object_get(v, "$patch")) {
            json_object_del(out, k); /* {"$patch": "delete"} on a map */
            continue;
        }
        if (!merged) {
            json_decref(out);
            return NULL;
        }
        json_object_set_new(out, k, merged);
    }
    json_t *retain = json_object_get(patch, "$retainKeys");
    if (retain) {
        size_t i;
        json_t *r;
        bool names = json_is_array(retain);
        json_array_foreach(retain, i, r) names &= json_is_string(r);
        if (!names) {
            snprintf(err, errlen, "$retainKeys must be a list of field names");
            json_decref(out);
            return NULL;
        }
        const char *key;
        void *tmp;
        json_object_foreach_safe(out, tmp, key, v)
        {
            bool keep = false;
            json_array_foreach(retain, i, r) keep |= strcmp(json_string_value(r), key) == 0;
            if (!keep)
                json_object_del(out, key);
        }
    }
    /* $setElementOrder for lists the patch did not touch */
    json_object_foreach((json_t *)patch, k, v)
    {
        if (strncmp(k, "$setElementOrder/", 17) == 0 && !json_object_get(patch, k + 17) &&
            json_is_array(json_object_get(out, k + 17)))
            apply_order(json_object_get(out, k + 17), v,
                        merge_key_for(k + 17, json_object_get(out, k + 17), v));
    }
    return out;
}

static json_t *smp_value(const json_t *target, const json_t *patch, const char *field, char *err,
                         size_t errlen)
{
    if (json_is_object(patch))
        return smp_map(target, patch, err, errlen);
    if (json_is_array(patch) && field)
        return smp_list(target, patch, field, NULL, err, errlen);
    return json_deep_copy(patch);
}

json_t *corral_patch_strategic(const json_t *target, const json_t *patch, char *err,
                               size_t errlen)
{
    if (!json_is_object(patch)) {
        snprintf(err, errlen, "a strategic merge patch must be a JSON object");
        return NULL;
    }
    if (errlen)
        err[0] = 0;
    json_t *out = smp_map(target, patch, err, errlen);
    if (!out && errlen && !err[0])
        snprintf(err, errlen, "a strategic merge patch cannot delete the whole object "
                              "(\"$patch\": \"delete\" at the top level): send DELETE");
    return out;
}

/* ---- request glue ---- */

static bool content_type_is(const char *ct, const char *want)
{
    size_t n = strlen(want);
    return ct && strncasecmp(ct, want, n) == 0 && (ct[n] == 0 || ct[n] == ';');
}

static json_t *bad_request(const char *fmt, const char *arg)
{
    char msg[512];
    snprintf(msg, sizeof(msg), fmt, arg);
    return corral_status_from_error(CORRAL_EBADREQUEST, msg);
}

static int parse_patch_body(struct corral_request *req, json_t **patch, json_t **status)
{
    json_t *docs = NULL;
    struct corral_parse_error perr;
    if (req->body_len == 0 ||
        corral_yaml_load(req->body, req->body_len, &docs, &perr) < 0 || json_array_size(docs) != 1) {
        json_decref(docs);
        *status = bad_request("error decoding patch: %s",
                              req->body_len ? perr.message : "the patch is empty");
        return CORRAL_EBADREQUEST;
    }
    *patch = json_incref(json_array_get(docs, 0));
    json_decref(docs);
    return 0;
}

int corral_patch_apply(struct corral_request *req, const json_t *old, json_t **out,
                       json_t **status)
{
    const char *ct = corral_request_header(req, "Content-Type");
    bool apply = content_type_is(ct, "application/apply-patch+yaml");
    bool smp = content_type_is(ct, "application/strategic-merge-patch+json");
    bool merge = content_type_is(ct, "application/merge-patch+json");
    bool jsonp = content_type_is(ct, "application/json-patch+json");
    if (!apply && !smp && !merge && !jsonp) {
        *status = corral_status_from_error(CORRAL_EMEDIATYPE, NULL);
        char msg[300];
        snprintf(msg, sizeof(msg), "the body of the request was in an unknown format - accepted "
                 "media types include: application/json-patch+json, "
                 "application/merge-patch+json, application/apply-patch+yaml%s",
                 req->res->crd ? "" : ", application/strategic-merge-patch+json");
        json_object_set_new(*status, "message", json_string(msg));
        return CORRAL_EMEDIATYPE;
    }
    if (smp && req->res->crd) {
        *status = bad_request("strategic merge patch is not supported for custom resources%s",
                              "; use application/merge-patch+json");
        json_object_set_new(*status, "code", json_integer(415));
        json_object_set_new(*status, "reason", json_string("UnsupportedMediaType"));
        return CORRAL_EMEDIATYPE;
    }
    json_t *patch = NULL;
    int rc = parse_patch_body(req, &patch, status);
    if (rc < 0)
        return rc;
    if (apply) {
        rc = corral_apply_patch(req, old, patch, out, status);
        json_decref(patch);
        return rc;
    }
    if (!old) {
        json_decref(patch);
        *status = corral_status_from_error(CORRAL_ENOTFOUND, NULL);
        char msg[600], qn[300];
        snprintf(msg, sizeof(msg), "%s \"%s\" not found",
                 corral_resource_qualified(req->res, qn, sizeof(qn)), req->name);
        json_object_set_new(*status, "message", json_string(msg));
        corral_status_set_details(*status, req->res->group, req->res->plural, req->name);
        return CORRAL_ENOTFOUND;
    }
    char err[512] = "";
    if (merge) {
        *out = corral_patch_merge(old, patch);
    } else if (smp) {
        *out = corral_patch_strategic(old, patch, err, sizeof(err));
        rc = *out ? 0 : CORRAL_EBADREQUEST;
    } else {
        rc = corral_patch_json(old, patch, out, err, sizeof(err));
    }
    json_decref(patch);
    if (rc < 0) {
        *status = corral_status_from_error(rc == CORRAL_ECONFLICT ? CORRAL_EINVALID : rc, err);
        return rc;
    }
    rc = corral_schema_check_request(req, *out, status);
    if (rc == 0)
        corral_apply_record_update(req, old, *out);
    else {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

int corral_patch_strict_check(struct corral_request *req, json_t *obj)
{
    json_t *status = NULL;
    int rc = corral_schema_check_request(req, obj, &status);
    if (rc < 0)
        corral_reply_status(req, status);
    return rc;
}

int corral_patch_scale(struct corral_request *req, const json_t *obj, json_t **scale,
                       json_t **status)
{
    json_t *body = NULL;
    int rc = parse_patch_body(req, &body, status);
    if (rc < 0)
        return rc;
    if (strcmp(req->method, "PUT") == 0) {
        *scale = body;
    } else {
        json_t *cur = json_pack("{s:{s:O}}", "spec", "replicas",
                                json_object_get(json_object_get(obj, "spec"), "replicas"));
        const char *ct = corral_request_header(req, "Content-Type");
        char err[256] = "";
        if (content_type_is(ct, "application/json-patch+json"))
            rc = corral_patch_json(cur, body, scale, err, sizeof(err));
        else
            *scale = corral_patch_merge(cur, body);
        json_decref(cur);
        json_decref(body);
        if (rc < 0) {
            *status = corral_status_from_error(CORRAL_EINVALID, err);
            return rc;
        }
    }
    json_t *r = json_object_get(json_object_get(*scale, "spec"), "replicas");
    if (!json_is_integer(r) || json_integer_value(r) < 0) {
        json_decref(*scale);
        *scale = NULL;
        *status = corral_status_from_error(CORRAL_EINVALID,
                                           "Scale.autoscaling \"\" is invalid: spec.replicas: "
                                           "Invalid value: must be greater than or equal to 0");
        return CORRAL_EINVALID;
    }
    return 0;
}
