/* SPDX-License-Identifier: Apache-2.0 */
/*
 * protobuf: a bounds-checked reader of protobuf wire format (varints and length-delimited
 * fields are all these messages use) and the field maps of the decoded kinds (see protobuf.h).
 * Field numbers are those of k8s.io/api's generated.proto.
 */
#include "protobuf.h"
#include "error.h"

#include <errno.h>
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
    if (!f->data) /* a field that never came: an empty message */
        return (struct pb){NULL, NULL, false};
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

/* ---- described messages: Deployment, Job, Service, ServiceAccount ----
 *
 * These kinds nest deeply (a Deployment holds a pod template), so they are decoded from
 * descriptor tables instead of by hand: each message lists its fields (number, JSON name,
 * type). Go's protobuf encoder writes every non-pointer field, zero values included; as Go's
 * JSON encoder omits them, so does this decoder, except for the pointer fields (marked
 * KEEP_ZERO), whose presence is meaningful (replicas: 0). A field the tables do not know is
 * accepted only when it holds a zero value; anything else is refused with a message naming
 * it, so no data the client sent is ever dropped silently.
 */

enum pbt {
    PBT_STRING,
    PBT_INT,
    PBT_BOOL,
    PBT_MSG,
    PBT_MAP,      /* map<string, string> */
    PBT_QUANTITY, /* map<string, Quantity>: a ResourceList */
    PBT_INTSTR,   /* IntOrString {type 1, intVal 2, strVal 3} */
    PBT_SKIP,     /* status: never read on create */
};

#define REPEATED 1u
#define KEEP_ZERO 2u

struct pb_desc;

struct pb_desc_field {
    unsigned num;
    const char *name;
    enum pbt type;
    unsigned flags;
    const struct pb_desc *msg;
};

struct pb_desc {
    const char *name;
    const struct pb_desc_field *fields; /* ends with num == 0 */
};

#define MSG(n) static const struct pb_desc n
MSG(pbd_meta);
MSG(pbd_owner_ref);
MSG(pbd_selector);
MSG(pbd_selector_req);
MSG(pbd_template);
MSG(pbd_pod_spec);
MSG(pbd_container);
MSG(pbd_container_port);
MSG(pbd_env);
MSG(pbd_resources);
MSG(pbd_local_ref);
MSG(pbd_object_ref);
MSG(pbd_toleration);
MSG(pbd_strategy);
MSG(pbd_rolling);
MSG(pbd_deployment_spec);
MSG(pbd_job_spec);
MSG(pbd_service_spec);
MSG(pbd_service_port);
MSG(pbd_deployment);
MSG(pbd_job);
MSG(pbd_service);
MSG(pbd_service_account);

/* one field per line reads best in these tables */
/* clang-format off */
/* k8s.io/apimachinery meta/v1 */
static const struct pb_desc_field meta_fields[] = {
    {1, "name", PBT_STRING, 0, NULL},
    {2, "generateName", PBT_STRING, 0, NULL},
    {3, "namespace", PBT_STRING, 0, NULL},
    {11, "labels", PBT_MAP, 0, NULL},
    {12, "annotations", PBT_MAP, 0, NULL},
    {13, "ownerReferences", PBT_MSG, REPEATED, &pbd_owner_ref},
    {14, "finalizers", PBT_STRING, REPEATED, NULL},
    {0, NULL, 0, 0, NULL}};
static const struct pb_desc pbd_meta = {"ObjectMeta", meta_fields};
static const struct pb_desc_field owner_ref_fields[] = {
    {1, "kind", PBT_STRING, 0, NULL},
    {3, "name", PBT_STRING, 0, NULL},
    {4, "uid", PBT_STRING, 0, NULL},
    {5, "apiVersion", PBT_STRING, 0, NULL},
    {6, "controller", PBT_BOOL, KEEP_ZERO, NULL},
    {7, "blockOwnerDeletion", PBT_BOOL, KEEP_ZERO, NULL},
    {0, NULL, 0, 0, NULL}};
static const struct pb_desc pbd_owner_ref = {"OwnerReference", owner_ref_fields};
static const struct pb_desc_field selector_fields[] = {
    {1, "matchLabels", PBT_MAP, 0, NULL},
    {2, "matchExpressions", PBT_MSG, REPEATED, &pbd_selector_req},
    {0, NULL, 0, 0, NULL}};
static const struct pb_desc pbd_selector = {"LabelSelector", selector_fields};
static const struct pb_desc_field selector_req_fields[] = {
    {1, "key", PBT_STRING, 0, NULL},
    {2, "operator", PBT_STRING, 0, NULL},
    {3, "values", PBT_STRING, REPEATED, NULL},
    {0, NULL, 0, 0, NULL}};
static const struct pb_desc pbd_selector_req = {"LabelSelectorRequirement", selector_req_fields};

/* k8s.io/api core/v1 */
static const struct pb_desc_field template_fields[] = {
    {1, "metadata", PBT_MSG, 0, &pbd_meta},
    {2, "spec", PBT_MSG, 0, &pbd_pod_spec},
    {0, NULL, 0, 0, NULL}};
static const struct pb_desc pbd_template = {"PodTemplateSpec", template_fields};
static const struct pb_desc_field pod_spec_fields[] = {
    {2, "containers", PBT_MSG, REPEATED, &pbd_container},
    {3, "restartPolicy", PBT_STRING, 0, NULL},
    {4, "terminationGracePeriodSeconds", PBT_INT, KEEP_ZERO, NULL},
    {5, "activeDeadlineSeconds", PBT_INT, KEEP_ZERO, NULL},
    {6, "dnsPolicy", PBT_STRING, 0, NULL},
    {7, "nodeSelector", PBT_MAP, 0, NULL},
    {8, "serviceAccountName", PBT_STRING, 0, NULL},
    {9, "serviceAccount", PBT_STRING, 0, NULL},
    {10, "nodeName", PBT_STRING, 0, NULL},
    {11, "hostNetwork", PBT_BOOL, 0, NULL},
    {12, "hostPID", PBT_BOOL, 0, NULL},
    {13, "hostIPC", PBT_BOOL, 0, NULL},
    {15, "imagePullSecrets", PBT_MSG, REPEATED, &pbd_local_ref},
    {16, "hostname", PBT_STRING, 0, NULL},
    {17, "subdomain", PBT_STRING, 0, NULL},
    {19, "schedulerName", PBT_STRING, 0, NULL},
    {20, "initContainers", PBT_MSG, REPEATED, &pbd_container},
    {21, "automountServiceAccountToken", PBT_BOOL, KEEP_ZERO, NULL},
    {22, "tolerations", PBT_MSG, REPEATED, &pbd_toleration},
    {24, "priorityClassName", PBT_STRING, 0, NULL},
    {0, NULL, 0, 0, NULL}};
static const struct pb_desc pbd_pod_spec = {"PodSpec", pod_spec_fields};
static const struct pb_desc_field container_fields[] = {
    {1, "name", PBT_STRING, 0, NULL},
    {2, "image", PBT_STRING, 0, NULL},
    {3, "command", PBT_STRING, REPEATED, NULL},
    {4, "args", PBT_STRING, REPEATED, NULL},
    {5, "workingDir", PBT_STRING, 0, NULL},
    {6, "ports", PBT_MSG, REPEATED, &pbd_container_port},
    {7, "env", PBT_MSG, REPEATED, &pbd_env},
    {8, "resources", PBT_MSG, 0, &pbd_resources},
    {13, "terminationMessagePath", PBT_STRING, 0, NULL},
    {14, "imagePullPolicy", PBT_STRING, 0, NULL},
    {16, "stdin", PBT_BOOL, 0, NULL},
    {17, "stdinOnce", PBT_BOOL, 0, NULL},
    {18, "tty", PBT_BOOL, 0, NULL},
    {20, "terminationMessagePolicy", PBT_STRING, 0, NULL},
    {0, NULL, 0, 0, NULL}};
static const struct pb_desc pbd_container = {"Container", container_fields};
static const struct pb_desc_field container_port_fields[] = {
    {1, "name", PBT_STRING, 0, NULL},
    {2, "hostPort", PBT_INT, 0, NULL},
    {3, "containerPort", PBT_INT, 0, NULL},
    {4, "protocol", PBT_STRING, 0, NULL},
    {5, "hostIP", PBT_STRING, 0, NULL},
    {0, NULL, 0, 0, NULL}};
static const struct pb_desc pbd_container_port = {"ContainerPort", container_port_fields};
static const struct pb_desc_field env_fields[] = {
    {1, "name", PBT_STRING, 0, NULL},
    {2, "value", PBT_STRING, 0, NULL},
    {0, NULL, 0, 0, NULL}};
static const struct pb_desc pbd_env = {"EnvVar", env_fields};
static const struct pb_desc_field resources_fields[] = {
    {1, "limits", PBT_QUANTITY, 0, NULL},
    {2, "requests", PBT_QUANTITY, 0, NULL},
    {0, NULL, 0, 0, NULL}};
static const struct pb_desc pbd_resources = {"ResourceRequirements", resources_fields};
static const struct pb_desc_field local_ref_fields[] = {
    {1, "name", PBT_STRING, 0, NULL},
    {0, NULL, 0, 0, NULL}};
static const struct pb_desc pbd_local_ref = {"LocalObjectReference", local_ref_fields};
static const struct pb_desc_field object_ref_fields[] = {
    {1, "kind", PBT_STRING, 0, NULL},
    {2, "namespace", PBT_STRING, 0, NULL},
    {3, "name", PBT_STRING, 0, NULL},
    {4, "uid", PBT_STRING, 0, NULL},
    {5, "apiVersion", PBT_STRING, 0, NULL},
    {6, "resourceVersion", PBT_STRING, 0, NULL},
    {7, "fieldPath", PBT_STRING, 0, NULL},
    {0, NULL, 0, 0, NULL}};
static const struct pb_desc pbd_object_ref = {"ObjectReference", object_ref_fields};
static const struct pb_desc_field toleration_fields[] = {
    {1, "key", PBT_STRING, 0, NULL},
    {2, "operator", PBT_STRING, 0, NULL},
    {3, "value", PBT_STRING, 0, NULL},
    {4, "effect", PBT_STRING, 0, NULL},
    {5, "tolerationSeconds", PBT_INT, KEEP_ZERO, NULL},
    {0, NULL, 0, 0, NULL}};
static const struct pb_desc pbd_toleration = {"Toleration", toleration_fields};
static const struct pb_desc_field service_spec_fields[] = {
    {1, "ports", PBT_MSG, REPEATED, &pbd_service_port},
    {2, "selector", PBT_MAP, 0, NULL},
    {3, "clusterIP", PBT_STRING, 0, NULL},
    {4, "type", PBT_STRING, 0, NULL},
    {5, "externalIPs", PBT_STRING, REPEATED, NULL},
    {7, "sessionAffinity", PBT_STRING, 0, NULL},
    {8, "loadBalancerIP", PBT_STRING, 0, NULL},
    {9, "loadBalancerSourceRanges", PBT_STRING, REPEATED, NULL},
    {10, "externalName", PBT_STRING, 0, NULL},
    {11, "externalTrafficPolicy", PBT_STRING, 0, NULL},
    {12, "healthCheckNodePort", PBT_INT, 0, NULL},
    {13, "publishNotReadyAddresses", PBT_BOOL, 0, NULL},
    {0, NULL, 0, 0, NULL}};
static const struct pb_desc pbd_service_spec = {"ServiceSpec", service_spec_fields};
static const struct pb_desc_field service_port_fields[] = {
    {1, "name", PBT_STRING, 0, NULL},
    {2, "protocol", PBT_STRING, 0, NULL},
    {3, "port", PBT_INT, 0, NULL},
    {4, "targetPort", PBT_INTSTR, 0, NULL},
    {5, "nodePort", PBT_INT, 0, NULL},
    {6, "appProtocol", PBT_STRING, 0, NULL},
    {0, NULL, 0, 0, NULL}};
static const struct pb_desc pbd_service_port = {"ServicePort", service_port_fields};
static const struct pb_desc_field service_fields[] = {
    {1, "metadata", PBT_MSG, 0, &pbd_meta},
    {2, "spec", PBT_MSG, 0, &pbd_service_spec},
    {3, "status", PBT_SKIP, 0, NULL},
    {0, NULL, 0, 0, NULL}};
static const struct pb_desc pbd_service = {"Service", service_fields};
static const struct pb_desc_field service_account_fields[] = {
    {1, "metadata", PBT_MSG, 0, &pbd_meta},
    {2, "secrets", PBT_MSG, REPEATED, &pbd_object_ref},
    {3, "imagePullSecrets", PBT_MSG, REPEATED, &pbd_local_ref},
    {4, "automountServiceAccountToken", PBT_BOOL, KEEP_ZERO, NULL},
    {0, NULL, 0, 0, NULL}};
static const struct pb_desc pbd_service_account = {"ServiceAccount", service_account_fields};

/* k8s.io/api apps/v1 and batch/v1 */
static const struct pb_desc_field deployment_fields[] = {
    {1, "metadata", PBT_MSG, 0, &pbd_meta},
    {2, "spec", PBT_MSG, 0, &pbd_deployment_spec},
    {3, "status", PBT_SKIP, 0, NULL},
    {0, NULL, 0, 0, NULL}};
static const struct pb_desc pbd_deployment = {"Deployment", deployment_fields};
static const struct pb_desc_field deployment_spec_fields[] = {
    {1, "replicas", PBT_INT, KEEP_ZERO, NULL},
    {2, "selector", PBT_MSG, 0, &pbd_selector},
    {3, "template", PBT_MSG, 0, &pbd_template},
    {4, "strategy", PBT_MSG, 0, &pbd_strategy},
    {5, "minReadySeconds", PBT_INT, 0, NULL},
    {6, "revisionHistoryLimit", PBT_INT, KEEP_ZERO, NULL},
    {7, "paused", PBT_BOOL, 0, NULL},
    {9, "progressDeadlineSeconds", PBT_INT, KEEP_ZERO, NULL},
    {0, NULL, 0, 0, NULL}};
static const struct pb_desc pbd_deployment_spec = {"DeploymentSpec", deployment_spec_fields};
static const struct pb_desc_field strategy_fields[] = {
    {1, "type", PBT_STRING, 0, NULL},
    {2, "rollingUpdate", PBT_MSG, 0, &pbd_rolling},
    {0, NULL, 0, 0, NULL}};
static const struct pb_desc pbd_strategy = {"DeploymentStrategy", strategy_fields};
static const struct pb_desc_field rolling_fields[] = {
    {1, "maxUnavailable", PBT_INTSTR, 0, NULL},
    {2, "maxSurge", PBT_INTSTR, 0, NULL},
    {0, NULL, 0, 0, NULL}};
static const struct pb_desc pbd_rolling = {"RollingUpdateDeployment", rolling_fields};
static const struct pb_desc_field job_fields[] = {
    {1, "metadata", PBT_MSG, 0, &pbd_meta},
    {2, "spec", PBT_MSG, 0, &pbd_job_spec},
    {3, "status", PBT_SKIP, 0, NULL},
    {0, NULL, 0, 0, NULL}};
static const struct pb_desc pbd_job = {"Job", job_fields};
static const struct pb_desc_field job_spec_fields[] = {
    {1, "parallelism", PBT_INT, KEEP_ZERO, NULL},
    {2, "completions", PBT_INT, KEEP_ZERO, NULL},
    {3, "activeDeadlineSeconds", PBT_INT, KEEP_ZERO, NULL},
    {4, "selector", PBT_MSG, 0, &pbd_selector},
    {5, "manualSelector", PBT_BOOL, KEEP_ZERO, NULL},
    {6, "template", PBT_MSG, 0, &pbd_template},
    {7, "backoffLimit", PBT_INT, KEEP_ZERO, NULL},
    {8, "ttlSecondsAfterFinished", PBT_INT, KEEP_ZERO, NULL},
    {9, "completionMode", PBT_STRING, 0, NULL},
    {10, "suspend", PBT_BOOL, KEEP_ZERO, NULL},
    {0, NULL, 0, 0, NULL}};
static const struct pb_desc pbd_job_spec = {"JobSpec", job_spec_fields};

/* clang-format on */

static int described(const struct pb_desc *d, const struct pb_field *f, json_t **out, char *err,
                     size_t errlen);

static const struct pb_desc_field *field_of(const struct pb_desc *d, unsigned num)
{
    for (const struct pb_desc_field *x = d->fields; x->num; x++)
        if (x->num == num)
            return x;
    return NULL;
}

/* True when a field holds its type's zero value (what Go writes for an unset field). */
static bool zero_field(const struct pb_field *f)
{
    return f->wire == 0 ? f->varint == 0 : f->wire == 2 ? f->len == 0 : false;
}

/* map<string, Quantity> entry {1: key, 2: Quantity {1: string}} into map. */
static int quantity_entry(const struct pb_field *f, json_t *map)
{
    struct pb r = sub(f);
    struct pb_field e, key = {0}, q = {0};
    bool have_key = false;
    while (next_field(&r, &e)) {
        if (e.wire == 2 && e.num == 1) {
            key = e;
            have_key = true;
        } else if (e.wire == 2 && e.num == 2) {
            q = e;
        }
    }
    if (r.bad || !have_key)
        return CORRAL_EBADREQUEST;
    struct pb qr = sub(&q);
    json_t *val = NULL;
    while (next_field(&qr, &e)) {
        if (e.wire == 2 && e.num == 1) {
            json_decref(val);
            val = str(&e);
        }
    }
    char *k = strndup((const char *)key.data, key.len);
    if (qr.bad || !k) {
        free(k);
        json_decref(val);
        return qr.bad ? CORRAL_EBADREQUEST : -ENOMEM;
    }
    json_object_set_new(map, k, val ? val : json_string("0"));
    free(k);
    return 0;
}

/* IntOrString {1: type (0 int, 1 string), 2: intVal, 3: strVal}. New reference. */
static json_t *int_or_string(const struct pb_field *f)
{
    struct pb r = sub(f);
    struct pb_field e;
    uint64_t type = 0, ival = 0;
    struct pb_field sval = {0};
    while (next_field(&r, &e)) {
        if (e.wire == 0 && e.num == 1)
            type = e.varint;
        else if (e.wire == 0 && e.num == 2)
            ival = e.varint;
        else if (e.wire == 2 && e.num == 3)
            sval = e;
    }
    if (type == 1)
        return sval.data ? str(&sval) : json_string("");
    return json_integer((int32_t)ival);
}

/* Stores value under name in obj (appended to an array for repeated fields). */
static void put(json_t *obj, const struct pb_desc_field *x, json_t *value)
{
    if (!(x->flags & REPEATED)) {
        json_object_set_new(obj, x->name, value);
        return;
    }
    json_t *arr = json_object_get(obj, x->name);
    if (!json_is_array(arr)) {
        arr = json_array();
        json_object_set_new(obj, x->name, arr);
    }
    json_array_append_new(arr, value);
}

static json_t *map_at(json_t *obj, const char *name)
{
    json_t *m = json_object_get(obj, name);
    if (!json_is_object(m)) {
        m = json_object();
        json_object_set_new(obj, name, m);
    }
    return m;
}

/* Decodes one field f described by x into obj. Returns 0 or an error (err explains). */
static int described_field(const struct pb_desc_field *x, const struct pb_field *f, json_t *obj,
                           char *err, size_t errlen)
{
    bool keep = (x->flags & (KEEP_ZERO | REPEATED)) != 0;
    unsigned want = x->type == PBT_INT || x->type == PBT_BOOL ? 0 : 2;
    if (f->wire != want) {
        snprintf(err, errlen, "field %s has the wrong protobuf wire type", x->name);
        return CORRAL_EBADREQUEST;
    }
    if (x->type == PBT_SKIP || (!keep && zero_field(f) && x->type != PBT_MSG))
        return 0;
    int rc;
    json_t *value;
    switch (x->type) {
    case PBT_STRING:
    case PBT_INTSTR:
        value = x->type == PBT_STRING ? str(f) : int_or_string(f);
        if (!value) {
            snprintf(err, errlen, "field %s is not valid UTF-8", x->name);
            return CORRAL_EBADREQUEST;
        }
        put(obj, x, value);
        return 0;
    case PBT_INT:
        put(obj, x, json_integer((int64_t)f->varint));
        return 0;
    case PBT_BOOL:
        put(obj, x, json_boolean(f->varint != 0));
        return 0;
    case PBT_MAP:
    case PBT_QUANTITY:
        rc = x->type == PBT_MAP ? map_entry(f, map_at(obj, x->name), false)
                                : quantity_entry(f, map_at(obj, x->name));
        if (rc == CORRAL_EBADREQUEST)
            snprintf(err, errlen, "malformed protobuf map entry in field %s", x->name);
        return rc;
    case PBT_MSG: {
        json_t *child = NULL;
        rc = described(x->msg, f, &child, err, errlen);
        if (rc < 0)
            return rc;
        if (json_object_size(child) == 0 && !keep)
            json_decref(child); /* an unset message, as Go's omitempty leaves it out */
        else
            put(obj, x, child);
        return 0;
    }
    case PBT_SKIP:
        return 0;
    }
    return 0;
}

/* Decodes message f (of type d) into *out, a new JSON object. */
static int described(const struct pb_desc *d, const struct pb_field *f, json_t **out, char *err,
                     size_t errlen)
{
    struct pb r = sub(f);
    struct pb_field e;
    json_t *obj = json_object();
    int rc = 0;
    while (rc == 0 && next_field(&r, &e)) {
        const struct pb_desc_field *x = field_of(d, e.num);
        if (x) {
            rc = described_field(x, &e, obj, err, errlen);
        } else if (!zero_field(&e)) {
            snprintf(err, errlen,
                     "field %u of %s is not supported in protobuf bodies; send "
                     "the object as application/json (kubectl apply -f, or create -f)",
                     e.num, d->name);
            rc = CORRAL_EMEDIATYPE;
        }
    }
    if (rc == 0 && r.bad) {
        snprintf(err, errlen, "malformed protobuf body in %s", d->name);
        rc = CORRAL_EBADREQUEST;
    }
    if (rc < 0) {
        json_decref(obj);
        return rc;
    }
    *out = obj;
    return 0;
}

/* The descriptor of a top-level kind decoded from tables, or NULL. */
static const struct pb_desc *described_kind(const char *kind)
{
    static const struct pb_desc *const kinds[] = {&pbd_deployment, &pbd_job, &pbd_service,
                                                  &pbd_service_account, NULL};
    for (const struct pb_desc *const *k = kinds; *k; k++)
        if (strcmp((*k)->name, kind) == 0)
            return *k;
    return NULL;
}

/*
 * Decodes raw (the object bytes of runtime.Unknown) of a described kind into obj (which holds
 * apiVersion and kind); on success *out takes obj. Returns 0 or an error explained in err.
 */
static int finish_described(const struct pb_desc *d, const struct pb_field *raw, json_t *obj,
                            json_t **out, char *err, size_t errlen)
{
    json_t *body = NULL;
    int rc = described(d, raw, &body, err, errlen);
    if (rc < 0) {
        json_decref(obj);
        return rc;
    }
    json_object_update(obj, body);
    json_decref(body);
    *out = obj;
    return 0;
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
    else if (rc == 0 && described_kind(kind))
        return finish_described(described_kind(kind), &raw, obj, out, err, errlen);
    else if (rc == 0)
        rc = CORRAL_EMEDIATYPE;
    if (rc < 0) {
        snprintf(err, errlen, rc == CORRAL_EMEDIATYPE
                                  ? "protobuf bodies are accepted for Namespace, ConfigMap, "
                                    "Secret, ServiceAccount, Service, Deployment, Job, the "
                                    "RBAC kinds and access reviews only; send %s as "
                                    "application/json"
                                  : "malformed protobuf body%s",
                 rc == CORRAL_EMEDIATYPE ? kind : "");
        json_decref(obj);
        return rc;
    }
    *out = obj;
    return 0;
}
