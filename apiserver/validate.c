/* SPDX-License-Identifier: Apache-2.0 */
/*
 * validate: per-kind defaulting, validation and field-selector fields (see validate.h).
 *
 * Messages follow Kubernetes' wording ("Required value", "Invalid value: ...",
 * "Unsupported value: ...") because users and scripts already know them; the field path is
 * built with a small fixed buffer per level (struct path) so no allocation is needed.
 */
#include "validate.h"
#include "meta.h"
#include "quantity.h"
#include "schema.h"
#include "selector.h"
#include "structural.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char corral_field_unsupported[] = "\x01unsupported";

#define REQUIRED "FieldValueRequired"
#define INVALID "FieldValueInvalid"
#define UNSUPPORTED "FieldValueNotSupported"
#define DUPLICATE "FieldValueDuplicate"
#define FORBIDDEN "FieldValueForbidden"
#define TOOLONG "FieldValueTooLong"

/* Formats a field path into a caller-provided buffer. */
static const char *path(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static const char *path(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    return buf;
}

static bool one_of(const char *s, const char *const *list)
{
    for (; s && *list; list++)
        if (strcmp(s, *list) == 0)
            return true;
    return false;
}

static void require_string(const json_t *parent, const char *key, const char *field,
                           struct corral_field_errors *fe)
{
    json_t *v = json_object_get(parent, key);
    if (!v || (json_is_string(v) && json_string_length(v) == 0))
        corral_field_error(fe, REQUIRED, field, "Required value");
    else if (!json_is_string(v))
        corral_field_error(fe, INVALID, field, "Invalid value: must be a string");
}

static void check_nonneg_int(const json_t *parent, const char *key, const char *field,
                             struct corral_field_errors *fe)
{
    json_t *v = json_object_get(parent, key);
    if (!v || json_is_null(v))
        return;
    if (!json_is_integer(v))
        corral_field_error(fe, INVALID, field, "Invalid value: must be an integer");
    else if (json_integer_value(v) < 0)
        corral_field_error(fe, INVALID, field,
                           "Invalid value: %" JSON_INTEGER_FORMAT
                           ": must be greater than or equal to 0",
                           json_integer_value(v));
}

static void check_string_map(const json_t *map, const char *field, bool label_values,
                             struct corral_field_errors *fe)
{
    char p[512];
    if (!map || json_is_null(map))
        return;
    if (!json_is_object(map)) {
        corral_field_error(fe, INVALID, field, "Invalid value: must be a map of strings");
        return;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)map, k, v)
    {
        const char *why = corral_meta_check_label_key(k);
        if (why)
            corral_field_error(fe, INVALID, field, "Invalid value: \"%s\": %s", k, why);
        if (!json_is_string(v)) {
            corral_field_error(fe, INVALID, path(p, sizeof(p), "%s.%s", field, k),
                               "Invalid value: must be a string");
            continue;
        }
        why = label_values ? corral_meta_check_label_value(json_string_value(v)) : NULL;
        if (why)
            corral_field_error(fe, INVALID, path(p, sizeof(p), "%s.%s", field, k),
                               "Invalid value: \"%s\": %s", json_string_value(v), why);
    }
}

static const char *check_name(const char *name, int rule)
{
    switch (rule) {
    case CORRAL_NAME_LABEL:
        return corral_meta_check_dns_label(name);
    case CORRAL_NAME_DNS1035:
        if (name && *name && !isalpha((unsigned char)*name))
            return "a DNS-1035 label must start with an alphabetic character";
        return corral_meta_check_dns_label(name);
    case CORRAL_NAME_PATH_SEGMENT:
        if (!name || !*name)
            return "must be non-empty";
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strpbrk(name, "/%"))
            return "may not be '.' or '..' and may not contain '/' or '%'";
        return NULL;
    default:
        return corral_meta_check_dns_subdomain(name);
    }
}

void corral_validate_metadata(const json_t *obj, int name_rule, struct corral_field_errors *fe)
{
    json_t *meta = json_object_get(obj, "metadata");
    if (!json_is_object(meta)) {
        corral_field_error(fe, REQUIRED, "metadata", "Required value");
        return;
    }
    const char *name = json_string_value(json_object_get(meta, "name"));
    if (!name || !*name) {
        corral_field_error(fe, REQUIRED, "metadata.name",
                           "Required value: name or generateName is required");
    } else {
        const char *why = check_name(name, name_rule);
        if (why)
            corral_field_error(fe, INVALID, "metadata.name", "Invalid value: \"%s\": %s", name,
                               why);
    }
    check_string_map(json_object_get(meta, "labels"), "metadata.labels", true, fe);
    json_t *ann = json_object_get(meta, "annotations");
    check_string_map(ann, "metadata.annotations", false, fe);
    size_t total = 0;
    const char *k;
    json_t *v;
    json_object_foreach(ann, k, v) total += strlen(k) + json_string_length(v);
    if (total > 256 * 1024)
        corral_field_error(fe, TOOLONG, "metadata.annotations",
                           "Too long: must have at most 262144 bytes");
}

void corral_validate_generic(const json_t *obj, const json_t *old, struct corral_field_errors *fe)
{
    corral_validate_metadata(obj, CORRAL_NAME_SUBDOMAIN, fe);
}

/* ---- quantities and resources ---- */

static bool is_gpu_resource(const char *name)
{
    return strcmp(name, "nvidia.com/gpu") == 0 || strcmp(name, "corral.io/gpu-milli") == 0;
}

/* pod: a container's request (a GPU share is below 1000); else a Node's capacity, where
 * corral.io/gpu-milli is 1000 per GPU (docs/gpus.md). */
static void check_resource_list(const json_t *list, const char *field, bool pod,
                                struct corral_field_errors *fe)
{
    char p[512];
    const char *k;
    json_t *v;
    if (list && !json_is_object(list) && !json_is_null(list)) {
        corral_field_error(fe, INVALID, field, "Invalid value: must be a map of quantities");
        return;
    }
    json_object_foreach((json_t *)list, k, v)
    {
        path(p, sizeof(p), "%s.%s", field, k);
        struct corral_quantity q;
        if (corral_quantity_from_json(v, &q) < 0) {
            const char *text = json_is_string(v) ? json_string_value(v) : "(not a quantity)";
            corral_field_error(fe, INVALID, p, "invalid quantity \"%s\"", text);
            continue;
        }
        if (q.unscaled < 0)
            corral_field_error(fe, INVALID, p, "Invalid value: \"%s\": must be greater than or "
                               "equal to 0", json_is_string(v) ? json_string_value(v) : "");
        if (is_gpu_resource(k) && q.scale < 0)
            corral_field_error(fe, INVALID, p, "Invalid value: must be an integer");
        if (pod && strcmp(k, "corral.io/gpu-milli") == 0 && corral_quantity_value(&q) >= 1000)
            corral_field_error(fe, INVALID, p, "Invalid value: a GPU share must be below 1000 "
                               "(ask for whole GPUs with nvidia.com/gpu)");
        if (!strchr(k, '/') && !one_of(k, (const char *const[]){"cpu", "memory",
                                                                "ephemeral-storage", "pods",
                                                                NULL}) &&
            strncmp(k, "hugepages-", 10) != 0)
            corral_field_error(fe, INVALID, p, "Invalid value: \"%s\": must be a standard "
                               "resource type or fully qualified", k);
    }
}

static void check_requests_within_limits(const json_t *res, const char *field,
                                         struct corral_field_errors *fe)
{
    char p[512];
    json_t *req = json_object_get(res, "requests"), *lim = json_object_get(res, "limits");
    const char *k;
    json_t *v;
    json_object_foreach(req, k, v)
    {
        struct corral_quantity qr, ql;
        json_t *l = json_object_get(lim, k);
        if (!l || corral_quantity_from_json(v, &qr) < 0 || corral_quantity_from_json(l, &ql) < 0)
            continue;
        if (corral_quantity_cmp(&qr, &ql) > 0)
            corral_field_error(fe, INVALID, path(p, sizeof(p), "%s.requests.%s", field, k),
                               "Invalid value: must be less than or equal to %s limit", k);
        else if (is_gpu_resource(k) && corral_quantity_cmp(&qr, &ql) != 0)
            corral_field_error(fe, INVALID, path(p, sizeof(p), "%s.requests.%s", field, k),
                               "Invalid value: must be equal to %s limit", k);
    }
    if (json_object_get(lim, "nvidia.com/gpu") && json_object_get(lim, "corral.io/gpu-milli"))
        corral_field_error(fe, INVALID, path(p, sizeof(p), "%s.limits", field),
                           "Invalid value: ask for whole GPUs (nvidia.com/gpu) or a share of "
                           "one GPU (corral.io/gpu-milli), not both");
}

/* ---- containers ---- */

static void check_probe(const json_t *probe, const char *field, struct corral_field_errors *fe)
{
    if (!probe || json_is_null(probe))
        return;
    int handlers = !!json_object_get(probe, "exec") + !!json_object_get(probe, "httpGet") +
                   !!json_object_get(probe, "tcpSocket") + !!json_object_get(probe, "grpc");
    if (handlers != 1)
        corral_field_error(fe, handlers ? FORBIDDEN : REQUIRED, field,
                           handlers ? "Forbidden: may not specify more than 1 handler type"
                                    : "Required value: must specify a handler type");
    char p[512];
    static const char *const ints[] = {"initialDelaySeconds", "timeoutSeconds", "periodSeconds",
                                       "successThreshold", "failureThreshold", NULL};
    for (const char *const *k = ints; *k; k++)
        check_nonneg_int(probe, *k, path(p, sizeof(p), "%s.%s", field, *k), fe);
}

static void check_port(const json_t *port, const char *field, struct corral_field_errors *fe)
{
    char p[512];
    json_t *cp = json_object_get(port, "containerPort");
    if (!json_is_integer(cp))
        corral_field_error(fe, REQUIRED, path(p, sizeof(p), "%s.containerPort", field),
                           "Required value");
    else if (json_integer_value(cp) < 1 || json_integer_value(cp) > 65535)
        corral_field_error(fe, INVALID, path(p, sizeof(p), "%s.containerPort", field),
                           "Invalid value: %" JSON_INTEGER_FORMAT
                           ": must be between 1 and 65535, inclusive",
                           json_integer_value(cp));
    const char *proto = json_string_value(json_object_get(port, "protocol"));
    if (proto && !one_of(proto, (const char *const[]){"TCP", "UDP", "SCTP", NULL}))
        corral_field_error(fe, UNSUPPORTED, path(p, sizeof(p), "%s.protocol", field),
                           "Unsupported value: \"%s\": supported values: \"SCTP\", \"TCP\", "
                           "\"UDP\"",
                           proto);
}

static void check_env(const json_t *env, const char *field, struct corral_field_errors *fe)
{
    char p[512];
    size_t i;
    json_t *e;
    json_array_foreach(env, i, e)
    {
        path(p, sizeof(p), "%s[%zu].name", field, i);
        require_string(e, "name", p, fe);
        json_t *vf = json_object_get(e, "valueFrom");
        if (vf && json_object_get(e, "value") && json_string_length(json_object_get(e, "value")))
            corral_field_error(fe, INVALID, path(p, sizeof(p), "%s[%zu].valueFrom", field, i),
                               "Invalid value: may not be specified when `value` is not empty");
    }
}

static void check_container(const json_t *c, const char *field, json_t *names,
                            struct corral_field_errors *fe)
{
    char p[512];
    if (!json_is_object(c)) {
        corral_field_error(fe, INVALID, field, "Invalid value: must be an object");
        return;
    }
    const char *name = json_string_value(json_object_get(c, "name"));
    path(p, sizeof(p), "%s.name", field);
    if (!name || !*name) {
        corral_field_error(fe, REQUIRED, p, "Required value");
    } else {
        const char *why = corral_meta_check_dns_label(name);
        if (why)
            corral_field_error(fe, INVALID, p, "Invalid value: \"%s\": %s", name, why);
        if (json_object_get(names, name))
            corral_field_error(fe, DUPLICATE, p, "Duplicate value: \"%s\"", name);
        json_object_set_new(names, name, json_true());
    }
    require_string(c, "image", path(p, sizeof(p), "%s.image", field), fe);
    json_t *res = json_object_get(c, "resources");
    check_resource_list(json_object_get(res, "limits"),
                        path(p, sizeof(p), "%s.resources.limits", field), true, fe);
    check_resource_list(json_object_get(res, "requests"),
                        path(p, sizeof(p), "%s.resources.requests", field), true, fe);
    check_requests_within_limits(res, path(p, sizeof(p), "%s.resources", field), fe);
    size_t i;
    json_t *port;
    json_array_foreach(json_object_get(c, "ports"), i, port)
        check_port(port, path(p, sizeof(p), "%s.ports[%zu]", field, i), fe);
    check_env(json_object_get(c, "env"), path(p, sizeof(p), "%s.env", field), fe);
    static const char *const probes[] = {"livenessProbe", "readinessProbe", "startupProbe",
                                         NULL};
    for (const char *const *k = probes; *k; k++)
        check_probe(json_object_get(c, *k), path(p, sizeof(p), "%s.%s", field, *k), fe);
    json_t *cmd = json_object_get(c, "command"), *args = json_object_get(c, "args");
    if ((cmd && !json_is_array(cmd)) || (args && !json_is_array(args)))
        corral_field_error(fe, INVALID, path(p, sizeof(p), "%s.%s", field,
                                             cmd && !json_is_array(cmd) ? "command" : "args"),
                           "Invalid value: must be a list of strings");
}

static void check_containers(const json_t *list, const char *field, bool required,
                             json_t *names, struct corral_field_errors *fe)
{
    char p[512];
    if (!list || json_is_null(list)) {
        if (required)
            corral_field_error(fe, REQUIRED, field, "Required value");
        return;
    }
    if (!json_is_array(list) || (required && json_array_size(list) == 0)) {
        corral_field_error(fe, REQUIRED, field, "Required value");
        return;
    }
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c)
        check_container(c, path(p, sizeof(p), "%s[%zu]", field, i), names, fe);
}

static void check_tolerations(const json_t *tols, const char *field,
                              struct corral_field_errors *fe)
{
    char p[512];
    size_t i;
    json_t *t;
    json_array_foreach(tols, i, t)
    {
        const char *op = json_string_value(json_object_get(t, "operator"));
        const char *effect = json_string_value(json_object_get(t, "effect"));
        if (op && !one_of(op, (const char *const[]){"Exists", "Equal", NULL}))
            corral_field_error(fe, UNSUPPORTED, path(p, sizeof(p), "%s[%zu].operator", field, i),
                               "Unsupported value: \"%s\": supported values: \"Equal\", "
                               "\"Exists\"",
                               op);
        if (effect && *effect &&
            !one_of(effect, (const char *const[]){"NoSchedule", "PreferNoSchedule", "NoExecute",
                                                  NULL}))
            corral_field_error(fe, UNSUPPORTED, path(p, sizeof(p), "%s[%zu].effect", field, i),
                               "Unsupported value: \"%s\"", effect);
    }
}

void corral_validate_pod_spec(const json_t *spec, const char *prefix,
                              struct corral_field_errors *fe)
{
    char p[512];
    if (!json_is_object(spec)) {
        corral_field_error(fe, REQUIRED, prefix, "Required value");
        return;
    }
    json_t *names = json_object();
    check_containers(json_object_get(spec, "containers"),
                     path(p, sizeof(p), "%s.containers", prefix), true, names, fe);
    check_containers(json_object_get(spec, "initContainers"),
                     path(p, sizeof(p), "%s.initContainers", prefix), false, names, fe);
    json_decref(names);
    const char *rp = json_string_value(json_object_get(spec, "restartPolicy"));
    if (rp && !one_of(rp, (const char *const[]){"Always", "OnFailure", "Never", NULL}))
        corral_field_error(fe, UNSUPPORTED, path(p, sizeof(p), "%s.restartPolicy", prefix),
                           "Unsupported value: \"%s\": supported values: \"Always\", "
                           "\"OnFailure\", \"Never\"",
                           rp);
    check_nonneg_int(spec, "terminationGracePeriodSeconds",
                     path(p, sizeof(p), "%s.terminationGracePeriodSeconds", prefix), fe);
    check_nonneg_int(spec, "activeDeadlineSeconds",
                     path(p, sizeof(p), "%s.activeDeadlineSeconds", prefix), fe);
    check_string_map(json_object_get(spec, "nodeSelector"),
                     path(p, sizeof(p), "%s.nodeSelector", prefix), true, fe);
    check_tolerations(json_object_get(spec, "tolerations"),
                      path(p, sizeof(p), "%s.tolerations", prefix), fe);
    const char *node = json_string_value(json_object_get(spec, "nodeName"));
    if (node && *node && corral_meta_check_dns_subdomain(node))
        corral_field_error(fe, INVALID, path(p, sizeof(p), "%s.nodeName", prefix),
                           "Invalid value: \"%s\": %s", node,
                           corral_meta_check_dns_subdomain(node));
}

/* Pod updates may change only images, activeDeadlineSeconds, tolerations and grace. */
static void check_pod_update(const json_t *obj, const json_t *old, struct corral_field_errors *fe)
{
    json_t *a = json_deep_copy(json_object_get(obj, "spec"));
    json_t *b = json_deep_copy(json_object_get(old, "spec"));
    static const char *const mutable_keys[] = {"activeDeadlineSeconds", "tolerations",
                                               "terminationGracePeriodSeconds", NULL};
    for (const char *const *k = mutable_keys; *k; k++) {
        json_object_del(a, *k);
        json_object_del(b, *k);
    }
    static const char *const lists[] = {"containers", "initContainers", NULL};
    for (const char *const *k = lists; *k; k++) {
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(a, *k), i, c) json_object_del(c, "image");
        json_array_foreach(json_object_get(b, *k), i, c) json_object_del(c, "image");
    }
    /* nodeName moves only through the binding subresource, from empty to a node */
    const char *na = json_string_value(json_object_get(a, "nodeName"));
    const char *nb = json_string_value(json_object_get(b, "nodeName"));
    if ((!nb || !*nb) && na && *na)
        json_object_del(a, "nodeName");
    if (!json_equal(a, b))
        corral_field_error(fe, FORBIDDEN, "spec",
                           "Forbidden: pod updates may not change fields other than "
                           "`spec.containers[*].image`, `spec.initContainers[*].image`, "
                           "`spec.activeDeadlineSeconds`, `spec.tolerations` (only additions "
                           "to existing tolerations), `spec.terminationGracePeriodSeconds`");
    json_decref(a);
    json_decref(b);
}

void corral_validate_pod(const json_t *obj, const json_t *old, struct corral_field_errors *fe)
{
    corral_validate_metadata(obj, CORRAL_NAME_SUBDOMAIN, fe);
    corral_validate_pod_spec(json_object_get(obj, "spec"), "spec", fe);
    if (old)
        check_pod_update(obj, old, fe);
}

/* ---- other kinds ---- */

void corral_validate_namespace(const json_t *obj, const json_t *old,
                               struct corral_field_errors *fe)
{
    corral_validate_metadata(obj, CORRAL_NAME_LABEL, fe);
}

void corral_validate_node(const json_t *obj, const json_t *old, struct corral_field_errors *fe)
{
    char p[512];
    corral_validate_metadata(obj, CORRAL_NAME_SUBDOMAIN, fe);
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(json_object_get(obj, "spec"), "taints"), i, t)
    {
        const char *key = json_string_value(json_object_get(t, "key"));
        const char *effect = json_string_value(json_object_get(t, "effect"));
        if (!key || corral_meta_check_label_key(key))
            corral_field_error(fe, INVALID, path(p, sizeof(p), "spec.taints[%zu].key", i),
                               "Invalid value: \"%s\": %s", key ? key : "",
                               key ? corral_meta_check_label_key(key) : "Required value");
        if (!one_of(effect, (const char *const[]){"NoSchedule", "PreferNoSchedule", "NoExecute",
                                                  NULL}))
            corral_field_error(fe, UNSUPPORTED, path(p, sizeof(p), "spec.taints[%zu].effect", i),
                               "Unsupported value: \"%s\": supported values: \"NoSchedule\", "
                               "\"PreferNoSchedule\", \"NoExecute\"",
                               effect ? effect : "");
    }
    json_t *status = json_object_get(obj, "status");
    check_resource_list(json_object_get(status, "capacity"), "status.capacity", false, fe);
    check_resource_list(json_object_get(status, "allocatable"), "status.allocatable", false, fe);
}

static void check_service_port(const json_t *port, size_t i, json_t *seen,
                               struct corral_field_errors *fe)
{
    char p[512];
    json_t *pt = json_object_get(port, "port");
    if (!json_is_integer(pt) || json_integer_value(pt) < 1 || json_integer_value(pt) > 65535)
        corral_field_error(fe, pt ? INVALID : REQUIRED, path(p, sizeof(p), "spec.ports[%zu].port", i),
                           pt ? "Invalid value: must be between 1 and 65535, inclusive"
                              : "Required value");
    const char *proto = json_string_value(json_object_get(port, "protocol"));
    if (proto && !one_of(proto, (const char *const[]){"TCP", "UDP", "SCTP", NULL}))
        corral_field_error(fe, UNSUPPORTED, path(p, sizeof(p), "spec.ports[%zu].protocol", i),
                           "Unsupported value: \"%s\"", proto);
    json_t *tp = json_object_get(port, "targetPort");
    if (json_is_integer(tp) && (json_integer_value(tp) < 1 || json_integer_value(tp) > 65535))
        corral_field_error(fe, INVALID, path(p, sizeof(p), "spec.ports[%zu].targetPort", i),
                           "Invalid value: must be between 1 and 65535, inclusive");
    const char *name = json_string_value(json_object_get(port, "name"));
    if (name && *name) {
        if (json_object_get(seen, name))
            corral_field_error(fe, DUPLICATE, path(p, sizeof(p), "spec.ports[%zu].name", i),
                               "Duplicate value: \"%s\"", name);
        json_object_set_new(seen, name, json_true());
    }
}

void corral_validate_service(const json_t *obj, const json_t *old, struct corral_field_errors *fe)
{
    corral_validate_metadata(obj, CORRAL_NAME_DNS1035, fe);
    json_t *spec = json_object_get(obj, "spec");
    const char *type = json_string_value(json_object_get(spec, "type"));
    if (type && !one_of(type, (const char *const[]){"ClusterIP", "NodePort", "LoadBalancer",
                                                    "ExternalName", NULL}))
        corral_field_error(fe, UNSUPPORTED, "spec.type",
                           "Unsupported value: \"%s\": supported values: \"ClusterIP\", "
                           "\"ExternalName\", \"LoadBalancer\", \"NodePort\"",
                           type);
    json_t *ports = json_object_get(spec, "ports");
    bool headless = one_of(json_string_value(json_object_get(spec, "clusterIP")),
                           (const char *const[]){"None", NULL});
    if (json_array_size(ports) == 0 && !headless && !one_of(type, (const char *const[]){
                                                                      "ExternalName", NULL}))
        corral_field_error(fe, REQUIRED, "spec.ports", "Required value");
    json_t *seen = json_object();
    size_t i;
    json_t *port;
    json_array_foreach(ports, i, port) check_service_port(port, i, seen, fe);
    json_decref(seen);
    check_string_map(json_object_get(spec, "selector"), "spec.selector", true, fe);
    if (old) {
        const char *a = json_string_value(json_object_get(spec, "clusterIP"));
        const char *b = json_string_value(json_object_get(json_object_get(old, "spec"),
                                                          "clusterIP"));
        if (a && b && *b && strcmp(a, b) != 0)
            corral_field_error(fe, INVALID, "spec.clusterIP",
                               "Invalid value: \"%s\": field is immutable", a);
    }
}

static bool valid_config_key(const char *k)
{
    if (!*k || strlen(k) > 253 || strcmp(k, ".") == 0 || strcmp(k, "..") == 0)
        return false;
    for (const char *p = k; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("-._", *p))
            return false;
    return true;
}

static void check_data_map(const json_t *map, const char *field, bool base64,
                           struct corral_field_errors *fe)
{
    char p[512];
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)map, k, v)
    {
        path(p, sizeof(p), "%s[%s]", field, k);
        if (!valid_config_key(k))
            corral_field_error(fe, INVALID, p,
                               "Invalid value: \"%s\": a valid config key must consist of "
                               "alphanumeric characters, '-', '_' or '.'",
                               k);
        if (!json_is_string(v)) {
            corral_field_error(fe, INVALID, p, "Invalid value: must be a string");
            continue;
        }
        if (base64) {
            const char *s = json_string_value(v);
            size_t n = json_string_length(v);
            bool ok = n % 4 == 0;
            for (size_t i = 0; ok && i < n; i++)
                ok = isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '/' ||
                     (s[i] == '=' && i >= n - 2);
            if (!ok)
                corral_field_error(fe, INVALID, p, "Invalid value: illegal base64 data");
        }
    }
}

void corral_validate_configmap(const json_t *obj, const json_t *old,
                               struct corral_field_errors *fe)
{
    corral_validate_metadata(obj, CORRAL_NAME_SUBDOMAIN, fe);
    check_data_map(json_object_get(obj, "data"), "data", false, fe);
    check_data_map(json_object_get(obj, "binaryData"), "binaryData", true, fe);
}

void corral_validate_secret(const json_t *obj, const json_t *old, struct corral_field_errors *fe)
{
    corral_validate_metadata(obj, CORRAL_NAME_SUBDOMAIN, fe);
    check_data_map(json_object_get(obj, "data"), "data", true, fe);
    if (old) {
        const char *a = json_string_value(json_object_get(obj, "type"));
        const char *b = json_string_value(json_object_get(old, "type"));
        if (a && b && strcmp(a, b) != 0)
            corral_field_error(fe, INVALID, "type", "Invalid value: \"%s\": field is immutable",
                               a);
    }
}

void corral_validate_event(const json_t *obj, const json_t *old, struct corral_field_errors *fe)
{
    corral_validate_metadata(obj, CORRAL_NAME_SUBDOMAIN, fe);
    json_t *io = json_object_get(obj, "involvedObject");
    if (!json_is_object(io))
        corral_field_error(fe, REQUIRED, "involvedObject", "Required value");
    const char *type = json_string_value(json_object_get(obj, "type"));
    if (type && !one_of(type, (const char *const[]){"Normal", "Warning", NULL}))
        corral_field_error(fe, UNSUPPORTED, "type",
                           "Unsupported value: \"%s\": supported values: \"Normal\", "
                           "\"Warning\"",
                           type);
}

/* Selector + template checks shared by Deployment, ReplicaSet and Job. */
static void check_workload(const json_t *obj, bool selector_required, const char *const *policies,
                           struct corral_field_errors *fe)
{
    json_t *spec = json_object_get(obj, "spec");
    if (!json_is_object(spec)) {
        corral_field_error(fe, REQUIRED, "spec", "Required value");
        return;
    }
    check_nonneg_int(spec, "replicas", "spec.replicas", fe);
    json_t *sel = json_object_get(spec, "selector");
    json_t *tmpl = json_object_get(spec, "template");
    json_t *tlabels = corral_meta_labels(tmpl);
    if (selector_required && !json_is_object(sel)) {
        corral_field_error(fe, REQUIRED, "spec.selector", "Required value");
    } else if (json_is_object(sel)) {
        char err[256] = "";
        struct corral_selector *s = NULL;
        if (corral_selector_from_json(sel, &s, err, sizeof(err)) < 0) {
            corral_field_error(fe, INVALID, "spec.selector", "Invalid value: %s", err);
        } else if (corral_selector_is_empty(s)) {
            corral_field_error(fe, INVALID, "spec.selector",
                               "Invalid value: empty selector is invalid for deployment");
        } else if (!corral_selector_match_labels(s, tlabels)) {
            corral_field_error(fe, INVALID, "spec.template.metadata.labels",
                               "Invalid value: `selector` does not match template `labels`");
        }
        corral_selector_free(s);
    }
    check_string_map(tlabels, "spec.template.metadata.labels", true, fe);
    json_t *pspec = json_object_get(tmpl, "spec");
    corral_validate_pod_spec(pspec, "spec.template.spec", fe);
    const char *rp = json_string_value(json_object_get(pspec, "restartPolicy"));
    if (json_is_object(pspec) && !one_of(rp, policies)) {
        char allowed[128] = "";
        for (const char *const *p = policies; *p; p++)
            snprintf(allowed + strlen(allowed), sizeof(allowed) - strlen(allowed), "%s\"%s\"",
                     p == policies ? "" : ", ", *p);
        corral_field_error(fe, rp ? UNSUPPORTED : REQUIRED, "spec.template.spec.restartPolicy",
                           "%s: \"%s\": supported values: %s",
                           rp ? "Unsupported value" : "Required value", rp ? rp : "", allowed);
    }
}

void corral_validate_deployment(const json_t *obj, const json_t *old,
                                struct corral_field_errors *fe)
{
    corral_validate_metadata(obj, CORRAL_NAME_SUBDOMAIN, fe);
    check_workload(obj, true, (const char *const[]){"Always", NULL}, fe);
    if (old && !json_equal(json_object_get(json_object_get(obj, "spec"), "selector"),
                           json_object_get(json_object_get(old, "spec"), "selector")))
        corral_field_error(fe, INVALID, "spec.selector", "Invalid value: field is immutable");
}

void corral_validate_replicaset(const json_t *obj, const json_t *old,
                                struct corral_field_errors *fe)
{
    corral_validate_metadata(obj, CORRAL_NAME_SUBDOMAIN, fe);
    check_workload(obj, true, (const char *const[]){"Always", NULL}, fe);
}

/* spec.podFailurePolicy, with Kubernetes' rules and messages. */
static void check_pod_failure_policy(const json_t *spec, struct corral_field_errors *fe)
{
    const json_t *policy = json_object_get(spec, "podFailurePolicy");
    if (!policy)
        return;
    const char *rp = json_string_value(json_object_get(
        json_object_get(json_object_get(spec, "template"), "spec"), "restartPolicy"));
    if (rp && strcmp(rp, "Never") != 0)
        corral_field_error(fe, INVALID, "spec.template.spec.restartPolicy",
                           "Invalid value: \"%s\": only \"Never\" is supported when "
                           "podFailurePolicy is specified",
                           rp);
    json_t *rules = json_object_get(policy, "rules");
    if (!json_is_array(rules)) {
        corral_field_error(fe, REQUIRED, "spec.podFailurePolicy.rules", "Required value");
        return;
    }
    size_t i;
    json_t *rule;
    json_array_foreach(rules, i, rule)
    {
        char at[128], field[192];
        snprintf(at, sizeof(at), "spec.podFailurePolicy.rules[%zu]", i);
        const char *action = json_string_value(json_object_get(rule, "action"));
        static const char *const actions[] = {"FailJob", "Ignore", "Count", NULL};
        snprintf(field, sizeof(field), "%s.action", at);
        if (!action)
            corral_field_error(fe, REQUIRED, field, "Required value");
        else if (!one_of(action, actions))
            corral_field_error(fe, UNSUPPORTED, field,
                               "Unsupported value: \"%s\": supported values: \"Count\", "
                               "\"FailJob\", \"Ignore\"",
                               action);
        json_t *codes = json_object_get(rule, "onExitCodes");
        json_t *conds = json_object_get(rule, "onPodConditions");
        if ((codes != NULL) == (conds != NULL && json_array_size(conds) > 0)) {
            corral_field_error(fe, INVALID, at,
                               "Invalid value: specifying one of OnExitCodes and "
                               "OnPodConditions is required");
            continue;
        }
        if (codes) {
            const char *op = json_string_value(json_object_get(codes, "operator"));
            snprintf(field, sizeof(field), "%s.onExitCodes.operator", at);
            if (!op || (strcmp(op, "In") != 0 && strcmp(op, "NotIn") != 0))
                corral_field_error(fe, UNSUPPORTED, field,
                                   "Unsupported value: \"%s\": supported values: \"In\", "
                                   "\"NotIn\"",
                                   op ? op : "");
            json_t *values = json_object_get(codes, "values");
            snprintf(field, sizeof(field), "%s.onExitCodes.values", at);
            if (!json_array_size(values))
                corral_field_error(fe, INVALID, field,
                                   "Invalid value: []: at least one value is required");
            size_t j;
            json_t *v;
            json_array_foreach(values, j, v)
            {
                snprintf(field, sizeof(field), "%s.onExitCodes.values[%zu]", at, j);
                if (!json_is_integer(v))
                    corral_field_error(fe, INVALID, field, "Invalid value: must be an integer");
                else if (json_integer_value(v) == 0 && op && strcmp(op, "In") == 0)
                    corral_field_error(fe, INVALID, field,
                                       "Invalid value: 0: must not be 0 for the In operator");
            }
        }
    }
}

/* An index list "0-3,5,7-8": ascending intervals inside [0, completions). */
static bool index_list_ok(const char *text, long completions)
{
    long last = -1;
    const char *p = text;
    if (!*p)
        return false;
    for (;;) {
        char *end;
        if (!isdigit((unsigned char)*p))
            return false;
        long a = strtol(p, &end, 10), b = a;
        if (*end == '-') {
            if (!isdigit((unsigned char)end[1]))
                return false;
            b = strtol(end + 1, &end, 10);
        }
        if (a <= last || b < a || (completions >= 0 && b >= completions))
            return false;
        last = b;
        if (*end == 0)
            return true;
        if (*end != ',')
            return false;
        p = end + 1;
    }
}

/* spec.successPolicy, with Kubernetes' rules. */
static void check_success_policy(const json_t *spec, struct corral_field_errors *fe)
{
    const json_t *policy = json_object_get(spec, "successPolicy");
    if (!policy)
        return;
    const char *mode = json_string_value(json_object_get(spec, "completionMode"));
    if (!mode || strcmp(mode, "Indexed") != 0)
        corral_field_error(fe, INVALID, "spec.successPolicy",
                           "Invalid value: requires indexed completion mode");
    long completions = json_is_integer(json_object_get(spec, "completions"))
                           ? (long)json_integer_value(json_object_get(spec, "completions"))
                           : -1;
    json_t *rules = json_object_get(policy, "rules");
    if (!json_array_size(rules) || json_array_size(rules) > 20) {
        corral_field_error(fe, INVALID, "spec.successPolicy.rules",
                           "Invalid value: must hold between 1 and 20 rules");
        return;
    }
    size_t i;
    json_t *rule;
    json_array_foreach(rules, i, rule)
    {
        char at[128], field[192];
        snprintf(at, sizeof(at), "spec.successPolicy.rules[%zu]", i);
        json_t *set = json_object_get(rule, "succeededIndexes");
        json_t *count = json_object_get(rule, "succeededCount");
        if (!set && !count)
            corral_field_error(fe, REQUIRED, at,
                               "Required value: at least one of succeededCount or "
                               "succeededIndexes must be specified");
        snprintf(field, sizeof(field), "%s.succeededIndexes", at);
        if (set && (!json_is_string(set) || !index_list_ok(json_string_value(set), completions)))
            corral_field_error(fe, INVALID, field,
                               "Invalid value: must be ascending index intervals such as "
                               "\"0-3,5\" below spec.completions");
        snprintf(field, sizeof(field), "%s.succeededCount", at);
        if (count && (!json_is_integer(count) || json_integer_value(count) < 0))
            corral_field_error(fe, INVALID, field,
                               "Invalid value: must be greater than or equal to 0");
        else if (count && completions >= 0 && json_integer_value(count) > completions)
            corral_field_error(fe, INVALID, field,
                               "Invalid value: %lld: must be less than or equal to %ld (the "
                               "number of specified completions)",
                               (long long)json_integer_value(count), completions);
    }
}

void corral_validate_job(const json_t *obj, const json_t *old, struct corral_field_errors *fe)
{
    corral_validate_metadata(obj, CORRAL_NAME_SUBDOMAIN, fe);
    check_workload(obj, false, (const char *const[]){"OnFailure", "Never", NULL}, fe);
    json_t *spec = json_object_get(obj, "spec");
    check_nonneg_int(spec, "completions", "spec.completions", fe);
    check_nonneg_int(spec, "parallelism", "spec.parallelism", fe);
    check_nonneg_int(spec, "backoffLimit", "spec.backoffLimit", fe);
    check_pod_failure_policy(spec, fe);
    check_success_policy(spec, fe);
    if (old && !json_equal(json_object_get(json_object_get(spec, "template"), "spec"),
                           json_object_get(json_object_get(json_object_get(old, "spec"),
                                                           "template"),
                                           "spec")))
        corral_field_error(fe, INVALID, "spec.template", "Invalid value: field is immutable");
}

void corral_validate_rbac(const json_t *obj, const json_t *old, struct corral_field_errors *fe)
{
    char p[512];
    corral_validate_metadata(obj, CORRAL_NAME_PATH_SEGMENT, fe);
    const char *kind = corral_meta_kind(obj);
    bool binding = kind && strstr(kind, "Binding");
    if (binding) {
        json_t *ref = json_object_get(obj, "roleRef");
        require_string(ref, "kind", "roleRef.kind", fe);
        require_string(ref, "name", "roleRef.name", fe);
        size_t i;
        json_t *s;
        json_array_foreach(json_object_get(obj, "subjects"), i, s)
        {
            require_string(s, "kind", path(p, sizeof(p), "subjects[%zu].kind", i), fe);
            require_string(s, "name", path(p, sizeof(p), "subjects[%zu].name", i), fe);
        }
        return;
    }
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(obj, "rules"), i, r)
    {
        if (json_array_size(json_object_get(r, "verbs")) == 0)
            corral_field_error(fe, REQUIRED, path(p, sizeof(p), "rules[%zu].verbs", i),
                               "Required value: verbs must contain at least one value");
    }
}

void corral_validate_crd(const json_t *obj, const json_t *old, struct corral_field_errors *fe)
{
    char p[512];
    corral_validate_metadata(obj, CORRAL_NAME_SUBDOMAIN, fe);
    json_t *spec = json_object_get(obj, "spec");
    const char *group = json_string_value(json_object_get(spec, "group"));
    json_t *names = json_object_get(spec, "names");
    const char *plural = json_string_value(json_object_get(names, "plural"));
    const char *kind = json_string_value(json_object_get(names, "kind"));
    if (!group || !strchr(group, '.'))
        corral_field_error(fe, INVALID, "spec.group",
                           "Invalid value: \"%s\": should be a domain with at least one dot",
                           group ? group : "");
    if (!plural || corral_meta_check_dns_label(plural))
        corral_field_error(fe, INVALID, "spec.names.plural", "Invalid value: \"%s\": %s",
                           plural ? plural : "", "must be a lowercase DNS label");
    if (!kind || !*kind)
        corral_field_error(fe, REQUIRED, "spec.names.kind", "Required value");
    const char *scope = json_string_value(json_object_get(spec, "scope"));
    if (!one_of(scope, (const char *const[]){"Namespaced", "Cluster", NULL}))
        corral_field_error(fe, UNSUPPORTED, "spec.scope",
                           "Unsupported value: \"%s\": supported values: \"Cluster\", "
                           "\"Namespaced\"",
                           scope ? scope : "");
    const char *name = corral_meta_name(obj);
    if (plural && group && name) {
        char want[512];
        snprintf(want, sizeof(want), "%s.%s", plural, group);
        if (strcmp(want, name) != 0)
            corral_field_error(fe, INVALID, "metadata.name",
                               "Invalid value: \"%s\": must be spec.names.plural+\".\"+spec.group",
                               name);
    }
    json_t *versions = json_object_get(spec, "versions");
    if (json_array_size(versions) == 0)
        corral_field_error(fe, REQUIRED, "spec.versions", "Required value");
    size_t i;
    json_t *v;
    json_array_foreach(versions, i, v)
        require_string(v, "name", path(p, sizeof(p), "spec.versions[%zu].name", i), fe);
}

void corral_validate_podgroup(const json_t *obj, const json_t *old,
                              struct corral_field_errors *fe)
{
    corral_validate_metadata(obj, CORRAL_NAME_SUBDOMAIN, fe);
    json_t *min = json_object_get(json_object_get(obj, "spec"), "minMember");
    if (!json_is_integer(min) || json_integer_value(min) < 1)
        corral_field_error(fe, min ? INVALID : REQUIRED, "spec.minMember",
                           min ? "Invalid value: must be at least 1" : "Required value");
}

/* The CRD schema of a custom object's kind (borrowed), or NULL. */
static const json_t *custom_schema(const json_t *obj)
{
    return corral_schema_crd(corral_resource_find_kind(corral_meta_api_version(obj),
                                                       corral_meta_kind(obj)));
}

void corral_validate_custom(const json_t *obj, const json_t *old, struct corral_field_errors *fe)
{
    corral_validate_metadata(obj, CORRAL_NAME_SUBDOMAIN, fe);
    const json_t *schema = custom_schema(obj);
    if (schema)
        corral_structural_validate(schema, obj, fe);
}

void corral_default_custom(json_t *obj)
{
    const json_t *schema = custom_schema(obj);
    if (!schema)
        return;
    corral_structural_prune(schema, obj);
    corral_structural_default(schema, obj);
}

/* ---- defaulting ---- */

static void set_default(json_t *obj, const char *key, json_t *value)
{
    if (!json_is_object(obj) || json_object_get(obj, key))
        json_decref(value);
    else
        json_object_set_new(obj, key, value);
}

static json_t *object_at(json_t *parent, const char *key)
{
    json_t *o = json_object_get(parent, key);
    if (!json_is_object(o) && json_is_object(parent)) {
        o = json_object();
        json_object_set_new(parent, key, o);
    }
    return o;
}

static bool image_has_latest(const char *image)
{
    if (!image)
        return true;
    if (strchr(image, '@'))
        return false;
    const char *slash = strrchr(image, '/');
    const char *colon = strrchr(slash ? slash : image, ':');
    return !colon || strcmp(colon, ":latest") == 0;
}

static void default_container(json_t *c)
{
    const char *image = json_string_value(json_object_get(c, "image"));
    set_default(c, "imagePullPolicy", json_string(image_has_latest(image) ? "Always"
                                                                            : "IfNotPresent"));
    set_default(c, "terminationMessagePath", json_string("/dev/termination-log"));
    set_default(c, "terminationMessagePolicy", json_string("File"));
    size_t i;
    json_t *port;
    json_array_foreach(json_object_get(c, "ports"), i, port)
        set_default(port, "protocol", json_string("TCP"));
    /* requests default to limits, as Kubernetes does */
    json_t *res = json_object_get(c, "resources");
    json_t *lim = json_object_get(res, "limits");
    if (json_object_size(lim) > 0) {
        json_t *req = object_at(res, "requests");
        const char *k;
        json_t *v;
        json_object_foreach(lim, k, v)
        {
            struct corral_quantity q;
            if (corral_quantity_from_json(v, &q) == 0) /* a bad limit is reported once */
                set_default(req, k, json_incref(v));
        }
    }
    if (!res)
        json_object_set_new(c, "resources", json_object());
}

static bool has_toleration(json_t *tols, const char *key)
{
    size_t i;
    json_t *t;
    json_array_foreach(tols, i, t)
    {
        const char *k = json_string_value(json_object_get(t, "key"));
        const char *op = json_string_value(json_object_get(t, "operator"));
        if ((k && strcmp(k, key) == 0) || (!k && op && strcmp(op, "Exists") == 0))
            return true;
    }
    return false;
}

static void default_tolerations(json_t *spec)
{
    json_t *tols = json_object_get(spec, "tolerations");
    if (!json_is_array(tols)) {
        tols = json_array();
        json_object_set_new(spec, "tolerations", tols);
    }
    static const char *const keys[] = {"node.kubernetes.io/not-ready",
                                       "node.kubernetes.io/unreachable", NULL};
    for (const char *const *k = keys; *k; k++)
        if (!has_toleration(tols, *k))
            json_array_append_new(tols, json_pack("{s:s, s:s, s:s, s:i}", "key", *k, "operator",
                                                  "Exists", "effect", "NoExecute",
                                                  "tolerationSeconds",
                                                  CORRAL_DEFAULT_TOLERATION_SECONDS));
}

void corral_default_pod_spec(json_t *spec)
{
    if (!json_is_object(spec))
        return;
    set_default(spec, "restartPolicy", json_string("Always"));
    set_default(spec, "terminationGracePeriodSeconds", json_integer(30));
    set_default(spec, "dnsPolicy", json_string("ClusterFirst"));
    set_default(spec, "schedulerName", json_string("default-scheduler"));
    set_default(spec, "securityContext", json_object());
    set_default(spec, "enableServiceLinks", json_true());
    static const char *const lists[] = {"containers", "initContainers", NULL};
    for (const char *const *k = lists; *k; k++) {
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(spec, *k), i, c) default_container(c);
    }
}

/* QoS class as Kubernetes computes it from cpu/memory requests and limits. */
static const char *qos_class(const json_t *spec)
{
    bool any = false, guaranteed = true;
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(spec, "containers"), i, c)
    {
        json_t *res = json_object_get(c, "resources");
        json_t *req = json_object_get(res, "requests"), *lim = json_object_get(res, "limits");
        static const char *const names[] = {"cpu", "memory", NULL};
        for (const char *const *n = names; *n; n++) {
            json_t *r = json_object_get(req, *n), *l = json_object_get(lim, *n);
            if (r || l)
                any = true;
            if (!l || !r || !json_equal(r, l))
                guaranteed = false;
        }
    }
    return !any ? "BestEffort" : guaranteed ? "Guaranteed" : "Burstable";
}

void corral_default_pod(json_t *obj)
{
    json_t *spec = object_at(obj, "spec");
    corral_default_pod_spec(spec);
    default_tolerations(spec);
    json_t *status = object_at(obj, "status");
    set_default(status, "phase", json_string("Pending"));
    json_object_set_new(status, "qosClass", json_string(qos_class(spec)));
}

void corral_default_namespace(json_t *obj)
{
    json_t *status = object_at(obj, "status");
    set_default(status, "phase", json_string("Active"));
    json_t *spec = object_at(obj, "spec");
    set_default(spec, "finalizers", json_pack("[s]", "kubernetes"));
}

void corral_default_service(json_t *obj)
{
    json_t *spec = object_at(obj, "spec");
    set_default(spec, "type", json_string("ClusterIP"));
    set_default(spec, "sessionAffinity", json_string("None"));
    set_default(spec, "internalTrafficPolicy", json_string("Cluster"));
    size_t i;
    json_t *port;
    json_array_foreach(json_object_get(spec, "ports"), i, port)
    {
        set_default(port, "protocol", json_string("TCP"));
        json_t *p = json_object_get(port, "port");
        if (p)
            set_default(port, "targetPort", json_incref(p));
    }
    set_default(obj, "status", json_pack("{s:{}}", "loadBalancer"));
}

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static json_t *base64_string(const char *s, size_t n)
{
    char *out = malloc((n + 2) / 3 * 4 + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)s[i] << 16;
        if (i + 1 < n)
            v |= (unsigned char)s[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)s[i + 2];
        out[o++] = b64chars[(v >> 18) & 63];
        out[o++] = b64chars[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64chars[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? b64chars[v & 63] : '=';
    }
    json_t *r = json_stringn(out, o);
    free(out);
    return r;
}

void corral_default_secret(json_t *obj)
{
    set_default(obj, "type", json_string("Opaque"));
    json_t *sd = json_object_get(obj, "stringData");
    if (!json_is_object(sd))
        return;
    json_t *data = object_at(obj, "data");
    const char *k;
    json_t *v;
    json_object_foreach(sd, k, v)
    {
        if (json_is_string(v))
            json_object_set_new(data, k, base64_string(json_string_value(v),
                                                       json_string_length(v)));
    }
    json_object_del(obj, "stringData");
}

static void default_template(json_t *spec)
{
    json_t *tmpl = object_at(spec, "template");
    corral_default_pod_spec(object_at(tmpl, "spec"));
}

void corral_default_deployment(json_t *obj)
{
    json_t *spec = object_at(obj, "spec");
    set_default(spec, "replicas", json_integer(1));
    set_default(spec, "revisionHistoryLimit", json_integer(10));
    set_default(spec, "progressDeadlineSeconds", json_integer(600));
    set_default(spec, "strategy",
                json_pack("{s:s, s:{s:s, s:s}}", "type", "RollingUpdate", "rollingUpdate",
                          "maxUnavailable", "25%", "maxSurge", "25%"));
    default_template(spec);
}

void corral_default_replicaset(json_t *obj)
{
    json_t *spec = object_at(obj, "spec");
    set_default(spec, "replicas", json_integer(1));
    default_template(spec);
}

void corral_default_job(json_t *obj)
{
    json_t *spec = object_at(obj, "spec");
    set_default(spec, "parallelism", json_integer(1));
    set_default(spec, "completions", json_integer(1));
    set_default(spec, "backoffLimit", json_integer(6));
    set_default(spec, "completionMode", json_string("NonIndexed"));
    set_default(spec, "suspend", json_false());
    default_template(spec);
}

/* ---- field selectors ---- */

const char *corral_json_path_text(const json_t *obj, const char *dotted, char *buf, size_t len)
{
    const json_t *cur = corral_meta_path(obj, dotted);
    if (!cur)
        return NULL;
    if (json_is_string(cur))
        return json_string_value(cur);
    if (json_is_integer(cur)) {
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(cur));
        return buf;
    }
    if (json_is_boolean(cur))
        return json_is_true(cur) ? "true" : "false";
    if (json_is_real(cur)) {
        snprintf(buf, len, "%g", json_real_value(cur));
        return buf;
    }
    return NULL;
}

static const char *field_from(const json_t *obj, const char *field, const char *const *allowed,
                              char *buf, size_t len)
{
    if (strcmp(field, "metadata.name") != 0 && strcmp(field, "metadata.namespace") != 0 &&
        !one_of(field, allowed))
        return corral_field_unsupported;
    const char *v = corral_json_path_text(obj, field, buf, len);
    return v ? v : "";
}

const char *corral_field_generic(const json_t *obj, const char *field, char *buf, size_t len)
{
    return field_from(obj, field, (const char *const[]){NULL}, buf, len);
}

const char *corral_field_namespace(const json_t *obj, const char *field, char *buf, size_t len)
{
    return field_from(obj, field, (const char *const[]){"status.phase", NULL}, buf, len);
}

const char *corral_field_node(const json_t *obj, const char *field, char *buf, size_t len)
{
    const char *v = field_from(obj, field, (const char *const[]){"spec.unschedulable", NULL},
                               buf, len);
    return strcmp(field, "spec.unschedulable") == 0 && !*v ? "false" : v;
}

const char *corral_field_pod(const json_t *obj, const char *field, char *buf, size_t len)
{
    static const char *const allowed[] = {"spec.nodeName", "spec.restartPolicy",
                                          "spec.schedulerName", "spec.serviceAccountName",
                                          "spec.hostNetwork", "status.phase", "status.podIP",
                                          "status.nominatedNodeName", NULL};
    return field_from(obj, field, allowed, buf, len);
}

const char *corral_field_secret(const json_t *obj, const char *field, char *buf, size_t len)
{
    return field_from(obj, field, (const char *const[]){"type", NULL}, buf, len);
}

const char *corral_field_event(const json_t *obj, const char *field, char *buf, size_t len)
{
    static const char *const allowed[] = {
        "involvedObject.kind",       "involvedObject.namespace", "involvedObject.name",
        "involvedObject.uid",        "involvedObject.apiVersion",
        "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
        "reportingComponent",        "source",                   "type",
        NULL};
    return field_from(obj, field, allowed, buf, len);
}
