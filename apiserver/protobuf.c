/* SPDX-License-Identifier: Apache-2.0 */
/*
 * protobuf: a bounds-checked reader of protobuf wire format (varints and length-delimited
 * fields are all these messages use) and the field maps of the decoded kinds (see protobuf.h).
 * Field numbers are those of k8s.io/api's generated.proto.
 */
#include "protobuf.h"
#include "error.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pb {
    const unsigned char *p, *end;
    bool bad;
};

struct pb_field {
    unsigned num;
    unsigned wire;
    uint64_t varint;
    const unsigned char *data;
    size_t len;
};

static uint64_t read_varint(struct pb *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) {
            r->bad = true;
            return 0;
        }
        unsigned char b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    r->bad = true;
    return 0;
}

/* Reads the next field; returns false at the end or on malformed input (r->bad set). */
static bool next_field(struct pb *r, struct pb_field *f)
{
    f->data = NULL;
    f->len = 0;
    if (r->p >= r->end || r->bad)
        return false;
    uint64_t key = read_varint(r);
    f->num = (unsigned)(key >> 3);
    f->wire = (unsigned)(key & 7);
    switch (f->wire) {
    case 0:
        f->varint = read_varint(r);
        break;
    case 2: {
        uint64_t n = read_varint(r);
        if (r->bad || n > (uint64_t)(r->end - r->p)) {
            r->bad = true;
            return false;
        }
        f->data = r->p;
        f->len = (size_t)n;
        r->p += n;
        break;
    }
    case 1:
    case 5: {
        size_t n = f->wire == 1 ? 8 : 4;
        if ((size_t)(r->end - r->p) < n) {
            r->bad = true;
            return false;
        }
        r->p += n;
        break;
    }
    default:
        r->bad = true;
        return false;
    }
    return !r->bad;
}

static struct pb sub(const struct pb_field *f)
{
    return (struct pb){f->data, f->data + f->len, false};
}

static json_t *str(const struct pb_field *f)
{
    return json_stringn((const char *)f->data, f->len);
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static json_t *base64(const struct pb_field *f)
{
    char *out = malloc(4 * ((f->len + 2) / 3) + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < f->len; i += 3) {
        unsigned v = f->data[i] << 16 | (i + 1 < f->len ? f->data[i + 1] << 8 : 0) |
                     (i + 2 < f->len ? f->data[i + 2] : 0);
        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = i + 1 < f->len ? b64[v >> 6 & 63] : '=';
        out[o++] = i + 2 < f->len ? b64[v & 63] : '=';
    }
    json_t *s = json_stringn(out, o);
    free(out);
    return s;
}

/* map<string,string|bytes> entry: {1: key, 2: value}. */
static int map_entry(const struct pb_field *f, json_t *map, bool bytes)
{
    struct pb r = sub(f);
    struct pb_field e;
    json_t *key = NULL, *val = NULL;
    while (next_field(&r, &e)) {
        if (e.wire != 2)
            continue;
        json_t **slot = e.num == 1 ? &key : e.num == 2 ? &val : NULL;
        if (slot) {
            json_decref(*slot);
            *slot = e.num == 2 && bytes ? base64(&e) : str(&e);
        }
    }
    if (r.bad || !key) {
        json_decref(key);
        json_decref(val);
        return CORRAL_EBADREQUEST;
    }
    json_object_set_new(map, json_string_value(key), val ? val : json_string(""));
    json_decref(key);
    return 0;
}

static json_t *object_at(json_t *obj, const char *k)
{
    json_t *o = json_object_get(obj, k);
    if (!o) {
        o = json_object();
        json_object_set_new(obj, k, o);
    }
    return o;
}

static int object_meta(const struct pb_field *f, json_t *meta)
{
    static const char *const strings[] = {NULL, "name", "generateName", "namespace", NULL,
                                          "uid", "resourceVersion"};
    struct pb r = sub(f);
    struct pb_field e;
    int rc = 0;
    while (rc == 0 && next_field(&r, &e)) {
        if (e.wire == 2 && e.num >= 1 && e.num <= 6 && strings[e.num] && e.len)
            json_object_set_new(meta, strings[e.num], str(&e));
        else if (e.wire == 2 && e.num == 11)
            rc = map_entry(&e, object_at(meta, "labels"), false);
        else if (e.wire == 2 && e.num == 12)
            rc = map_entry(&e, object_at(meta, "annotations"), false);
        else if (e.wire == 2 && e.num == 14)
            json_array_append_new(json_object_get(meta, "finalizers")
                                      ? json_object_get(meta, "finalizers")
                                      : (json_object_set_new(meta, "finalizers", json_array()),
                                         json_object_get(meta, "finalizers")),
                                  str(&e));
    }
    return r.bad ? CORRAL_EBADREQUEST : rc;
}

static int decode_namespace(struct pb *r, json_t *obj)
{
    struct pb_field f;
    int rc = 0;
    while (rc == 0 && next_field(r, &f)) {
        if (f.wire == 2 && f.num == 1)
            rc = object_meta(&f, object_at(obj, "metadata"));
        else if (f.wire == 2 && f.num == 2) {
            struct pb s = sub(&f);
            struct pb_field e;
            while (next_field(&s, &e))
                if (e.num == 1 && e.wire == 2)
                    json_array_append_new(json_object_get(object_at(obj, "spec"), "finalizers")
                                              ? json_object_get(json_object_get(obj, "spec"),
                                                                "finalizers")
                                              : (json_object_set_new(object_at(obj, "spec"),
                                                                     "finalizers", json_array()),
                                                 json_object_get(json_object_get(obj, "spec"),
                                                                 "finalizers")),
                                          str(&e));
        }
    }
    return r->bad ? CORRAL_EBADREQUEST : rc;
}

static int decode_configmap(struct pb *r, json_t *obj, bool secret)
{
    struct pb_field f;
    int rc = 0;
    while (rc == 0 && next_field(r, &f)) {
        if (f.wire == 2 && f.num == 1)
            rc = object_meta(&f, object_at(obj, "metadata"));
        else if (f.wire == 2 && f.num == 2)
            rc = map_entry(&f, object_at(obj, "data"), secret);
        else if (f.wire == 2 && f.num == 3 && !secret)
            rc = map_entry(&f, object_at(obj, "binaryData"), true);
        else if (f.wire == 2 && f.num == 3 && secret && f.len > 0)
            json_object_set_new(obj, "type", str(&f));
        else if (f.wire == 2 && f.num == 4 && secret)
            rc = map_entry(&f, object_at(obj, "stringData"), false);
        else if (f.wire == 0 && f.num == (secret ? 5u : 4u))
            json_object_set_new(obj, "immutable", json_boolean(f.varint));
    }
    return r->bad ? CORRAL_EBADREQUEST : rc;
}

/* ResourceAttributes / NonResourceAttributes of an access review. */
static void review_attributes(const struct pb_field *f, json_t *out, bool resource)
{
    static const char *const res_fields[] = {NULL, "namespace", "verb", "group", "version",
                                             "resource", "subresource", "name"};
    static const char *const path_fields[] = {NULL, "path", "verb"};
    struct pb r = sub(f);
    struct pb_field e;
    while (next_field(&r, &e)) {
        unsigned max = resource ? 7 : 2;
        if (e.wire == 2 && e.num >= 1 && e.num <= max)
            json_object_set_new(out, resource ? res_fields[e.num] : path_fields[e.num], str(&e));
    }
}

/* SelfSubjectAccessReview, SubjectAccessReview, LocalSubjectAccessReview, SelfSubjectRulesReview */
static int decode_review(struct pb *r, json_t *obj, bool rules)
{
    struct pb_field f;
    int rc = 0;
    while (rc == 0 && next_field(r, &f)) {
        if (f.wire == 2 && f.num == 1) {
            rc = object_meta(&f, object_at(obj, "metadata"));
        } else if (f.wire == 2 && f.num == 2) {
            json_t *spec = object_at(obj, "spec");
            struct pb s = sub(&f);
            struct pb_field e;
            while (next_field(&s, &e)) {
                if (e.wire != 2)
                    continue;
                if (rules && e.num == 1)
                    json_object_set_new(spec, "namespace", str(&e));
                else if (!rules && e.num == 1)
                    review_attributes(&e, object_at(spec, "resourceAttributes"), true);
                else if (!rules && e.num == 2)
                    review_attributes(&e, object_at(spec, "nonResourceAttributes"), false);
                else if (!rules && e.num == 3)
                    json_object_set_new(spec, "user", str(&e));
                else if (!rules && e.num == 4) {
                    if (!json_object_get(spec, "groups"))
                        json_object_set_new(spec, "groups", json_array());
                    json_array_append_new(json_object_get(spec, "groups"), str(&e));
                }
            }
            if (s.bad)
                rc = CORRAL_EBADREQUEST;
        }
    }
    return r->bad ? CORRAL_EBADREQUEST : rc;
}

/* Appends f as a string to the array obj[key] (created when missing). */
static void push_str(json_t *obj, const char *key, const struct pb_field *f)
{
    json_t *arr = json_object_get(obj, key);
    if (!arr) {
        arr = json_array();
        json_object_set_new(obj, key, arr);
    }
    json_array_append_new(arr, str(f));
}

/* Copies the non-empty string fields of a message, names[i] naming field i (NULL = skip). */
static int string_fields(const struct pb_field *f, json_t *obj, const char *const *names,
                         unsigned n)
{
    struct pb r = sub(f);
    struct pb_field e;
    while (next_field(&r, &e))
        if (e.wire == 2 && e.num < n && names[e.num] && e.len)
            json_object_set_new(obj, names[e.num], str(&e));
    return r.bad ? CORRAL_EBADREQUEST : 0;
}

/* rbac/v1 PolicyRule: repeated verbs 1, apiGroups 2, resources 3, resourceNames 4,
 * nonResourceURLs 5 (empty strings kept: apiGroups [""] is the core group). */
static int policy_rule(const struct pb_field *f, json_t *rules)
{
    static const char *const names[] = {NULL, "verbs", "apiGroups", "resources",
                                        "resourceNames", "nonResourceURLs"};
    struct pb r = sub(f);
    struct pb_field e;
    json_t *rule = json_object();
    while (next_field(&r, &e))
        if (e.wire == 2 && e.num >= 1 && e.num <= 5)
            push_str(rule, names[e.num], &e);
    json_array_append_new(rules, rule);
    return r.bad ? CORRAL_EBADREQUEST : 0;
}

/* Role / ClusterRole (metadata 1, rules 2) and RoleBinding / ClusterRoleBinding (metadata 1,
 * subjects 2 {kind, apiGroup, name, namespace}, roleRef 3 {apiGroup, kind, name}). */
static int decode_rbac(struct pb *r, json_t *obj, bool binding)
{
    static const char *const subject[] = {NULL, "kind", "apiGroup", "name", "namespace"};
    static const char *const role_ref[] = {NULL, "apiGroup", "kind", "name"};
    struct pb_field f;
    int rc = 0;
    while (rc == 0 && next_field(r, &f)) {
        if (f.wire != 2)
            continue;
        if (f.num == 1) {
            rc = object_meta(&f, object_at(obj, "metadata"));
        } else if (f.num == 2 && !binding) {
            if (!json_object_get(obj, "rules"))
                json_object_set_new(obj, "rules", json_array());
            rc = policy_rule(&f, json_object_get(obj, "rules"));
        } else if (f.num == 2) {
            json_t *s = json_object();
            if (!json_object_get(obj, "subjects"))
                json_object_set_new(obj, "subjects", json_array());
            json_array_append_new(json_object_get(obj, "subjects"), s);
            rc = string_fields(&f, s, subject, 5);
        } else if (f.num == 3 && binding) {
            rc = string_fields(&f, object_at(obj, "roleRef"), role_ref, 4);
        }
    }
    return r->bad ? CORRAL_EBADREQUEST : rc;
}

int corral_protobuf_decode(const unsigned char *buf, size_t len, json_t **out, char *err,
                           size_t errlen)
{
    if (len < 4 || memcmp(buf, "k8s\0", 4) != 0) {
        snprintf(err, errlen, "the protobuf body lacks the k8s envelope");
        return CORRAL_EBADREQUEST;
    }
    struct pb r = {buf + 4, buf + len, false};
    struct pb_field f;
    json_t *obj = json_object();
    struct pb_field raw = {0};
    while (next_field(&r, &f)) {
        if (f.num == 1 && f.wire == 2) { /* TypeMeta */
            struct pb t = sub(&f);
            struct pb_field e;
            while (next_field(&t, &e))
                if (e.wire == 2 && (e.num == 1 || e.num == 2))
                    json_object_set_new(obj, e.num == 1 ? "apiVersion" : "kind", str(&e));
        } else if (f.num == 2 && f.wire == 2) {
            raw = f;
        }
    }
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    int rc = r.bad || !kind || !raw.data ? CORRAL_EBADREQUEST : 0;
    struct pb body = sub(&raw);
    if (rc == 0 && strcmp(kind, "Namespace") == 0)
        rc = decode_namespace(&body, obj);
    else if (rc == 0 && (strcmp(kind, "ConfigMap") == 0 || strcmp(kind, "Secret") == 0))
        rc = decode_configmap(&body, obj, kind[0] == 'S');
    else if (rc == 0 && (strcmp(kind, "Role") == 0 || strcmp(kind, "ClusterRole") == 0 ||
                         strcmp(kind, "RoleBinding") == 0 ||
                         strcmp(kind, "ClusterRoleBinding") == 0))
        rc = decode_rbac(&body, obj, strstr(kind, "Binding") != NULL);
    else if (rc == 0 && strstr(kind, "AccessReview"))
        rc = decode_review(&body, obj, false);
    else if (rc == 0 && strcmp(kind, "SelfSubjectRulesReview") == 0)
        rc = decode_review(&body, obj, true);
    else if (rc == 0)
        rc = CORRAL_EMEDIATYPE;
    if (rc < 0) {
        snprintf(err, errlen, rc == CORRAL_EMEDIATYPE
                                  ? "protobuf bodies are accepted for Namespace, ConfigMap, "
                                    "Secret, the RBAC kinds and access reviews only; send %s "
                                    "as application/json"
                                  : "malformed protobuf body%s",
                 rc == CORRAL_EMEDIATYPE ? kind : "");
        json_decref(obj);
        return rc;
    }
    *out = obj;
    return 0;
}
