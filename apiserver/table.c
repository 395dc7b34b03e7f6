/* SPDX-License-Identifier: Apache-2.0 */
/*
 * table: column definitions and row printers for `kubectl get` (see table.h). Cell text
 * follows what the real apiserver prints ("1/1", "Running", "80/TCP", "<none>") so that
 * corral's output is what users expect from Kubernetes.
 */
#include "table.h"
#include "meta.h"
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NAME_COL {"Name", "string", "name", 0, "Name must be unique within a namespace.", NULL}
#define AGE_COL {"Age", "string", "", 0, "Time since the object was created.", NULL}
#define COL(n, p) {n, "string", "", p, n, NULL}
#define END_COL {NULL, NULL, NULL, 0, NULL, NULL}

const struct corral_column corral_columns_namespace[] = {NAME_COL, COL("Status", 0), AGE_COL,
                                                         END_COL};
const struct corral_column corral_columns_node[] = {
    NAME_COL,         COL("Status", 0),         COL("Roles", 0),         COL("GPUs", 0),
    COL("GPU-Model", 0), AGE_COL,              COL("Version", 0),       COL("Internal-IP", 1),
    COL("External-IP", 1), COL("OS-Image", 1), COL("Kernel-Version", 1),
    COL("Container-Runtime", 1), END_COL};
const struct corral_column corral_columns_pod[] = {
    NAME_COL,          COL("Ready", 0),  COL("Status", 0),          COL("Restarts", 0),
    AGE_COL,           COL("IP", 1),     COL("Node", 1),            COL("Nominated Node", 1),
    COL("Readiness Gates", 1), COL("GPUs", 1), END_COL};
const struct corral_column corral_columns_service[] = {
    NAME_COL, COL("Type", 0), COL("Cluster-IP", 0), COL("External-IP", 0), COL("Port(s)", 0),
    AGE_COL,  COL("Selector", 1), END_COL};
const struct corral_column corral_columns_endpoints[] = {NAME_COL, COL("Endpoints", 0), AGE_COL,
                                                         END_COL};
const struct corral_column corral_columns_configmap[] = {NAME_COL, COL("Data", 0), AGE_COL,
                                                         END_COL};
const struct corral_column corral_columns_secret[] = {NAME_COL, COL("Type", 0), COL("Data", 0),
                                                      AGE_COL, END_COL};
const struct corral_column corral_columns_event[] = {
    COL("Last Seen", 0), COL("Type", 0), COL("Reason", 0), COL("Object", 0),
    COL("Message", 0),   {"Name", "string", "name", 1, "Name", NULL}, END_COL};
const struct corral_column corral_columns_deployment[] = {
    NAME_COL, COL("Ready", 0), COL("Up-to-date", 0), COL("Available", 0), AGE_COL,
    COL("Containers", 1), COL("Images", 1), COL("Selector", 1), END_COL};
const struct corral_column corral_columns_replicaset[] = {
    NAME_COL, COL("Desired", 0), COL("Current", 0), COL("Ready", 0), AGE_COL,
    COL("Containers", 1), COL("Images", 1), COL("Selector", 1), END_COL};
const struct corral_column corral_columns_job[] = {
    NAME_COL, COL("Status", 0), COL("Completions", 0), COL("Duration", 0), AGE_COL,
    COL("Containers", 1), COL("Images", 1), COL("Selector", 1), END_COL};
const struct corral_column corral_columns_lease[] = {NAME_COL, COL("Holder", 0), AGE_COL,
                                                     END_COL};
const struct corral_column corral_columns_serviceaccount[] = {NAME_COL, COL("Secrets", 0),
                                                              AGE_COL, END_COL};
const struct corral_column corral_columns_rolebinding[] = {
    NAME_COL,         COL("Role", 0),   AGE_COL, COL("Users", 1), COL("Groups", 1),
    COL("ServiceAccounts", 1), END_COL};
const struct corral_column corral_columns_csr[] = {
    NAME_COL,           AGE_COL, COL("SignerName", 0), COL("Requestor", 0),
    COL("RequestedDuration", 0), COL("Condition", 0), END_COL};
const struct corral_column corral_columns_crd[] = {
    NAME_COL, {"Created At", "date", "", 0, "Time the object was created.", NULL}, END_COL};
const struct corral_column corral_columns_podgroup[] = {
    NAME_COL, COL("Min-Member", 0), COL("Phase", 0), AGE_COL, END_COL};

static const struct corral_column default_columns[] = {NAME_COL, AGE_COL, END_COL};

/* ---- helpers ---- */

static json_t *get(const json_t *obj, const char *dotted)
{
    return corral_meta_path(obj, dotted);
}

static const char *str_or(const json_t *obj, const char *dotted, const char *fallback)
{
    const char *s = json_string_value(get(obj, dotted));
    return s && *s ? s : fallback;
}

static long long int_or(const json_t *obj, const char *dotted, long long fallback)
{
    json_t *v = get(obj, dotted);
    return json_is_integer(v) ? (long long)json_integer_value(v) : fallback;
}

static void add_str(json_t *cells, const char *s)
{
    json_array_append_new(cells, json_string(s ? s : ""));
}

static void add_int(json_t *cells, long long v)
{
    json_array_append_new(cells, json_integer(v));
}

static void add_fmt(json_t *cells, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_fmt(json_t *cells, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    add_str(cells, buf);
}

static void add_age_of(json_t *cells, const char *ts, long now)
{
    struct timespec t;
    if (!ts || corral_meta_parse_time(ts, &t) < 0) {
        add_str(cells, "<unknown>");
        return;
    }
    char buf[32];
    corral_meta_format_age(now - t.tv_sec, buf, sizeof(buf));
    add_str(cells, buf);
}

static void add_name(json_t *cells, const json_t *obj)
{
    add_str(cells, corral_meta_name(obj));
}

static void add_age(json_t *cells, const json_t *obj, long now)
{
    add_age_of(cells, str_or(obj, "metadata.creationTimestamp", NULL), now);
}

/* Joins the values of key from each element of array (at most 3, then "+ N more..."). */
static void add_joined(json_t *cells, const json_t *array, const char *key)
{
    char buf[512] = "";
    size_t i;
    json_t *e;
    json_array_foreach(array, i, e)
    {
        const char *v = json_string_value(json_object_get(e, key));
        size_t n = strlen(buf);
        snprintf(buf + n, sizeof(buf) - n, "%s%s", n ? "," : "", v ? v : "");
    }
    add_str(cells, *buf ? buf : "<none>");
}

static void add_selector(json_t *cells, const json_t *sel)
{
    char buf[512] = "";
    json_t *ml = json_object_get(sel, "matchLabels");
    const json_t *map = ml ? ml : sel;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)map, k, v)
    {
        if (!json_is_string(v))
            continue;
        size_t n = strlen(buf);
        snprintf(buf + n, sizeof(buf) - n, "%s%s=%s", n ? "," : "", k, json_string_value(v));
    }
    add_str(cells, *buf ? buf : "<none>");
}

static void add_template_wide(json_t *cells, const json_t *obj)
{
    const json_t *containers = get(obj, "spec.template.spec.containers");
    add_joined(cells, containers, "name");
    add_joined(cells, containers, "image");
    add_selector(cells, get(obj, "spec.selector"));
}

/* ---- kinds ---- */

void corral_row_default(const struct corral_resource *res, const json_t *obj, long now,
                        json_t *cells)
{
    add_name(cells, obj);
    add_age(cells, obj, now);
}

void corral_row_namespace(const struct corral_resource *res, const json_t *obj, long now,
                          json_t *cells)
{
    add_name(cells, obj);
    add_str(cells, get(obj, "metadata.deletionTimestamp") ? "Terminating"
                                                           : str_or(obj, "status.phase",
                                                                    "Active"));
    add_age(cells, obj, now);
}

static const char *node_ready(const json_t *obj)
{
    size_t i;
    json_t *c;
    json_array_foreach(get(obj, "status.conditions"), i, c)
    {
        const char *type = json_string_value(json_object_get(c, "type"));
        if (!type || strcmp(type, "Ready") != 0)
            continue;
        const char *st = json_string_value(json_object_get(c, "status"));
        return st && strcmp(st, "True") == 0 ? "Ready"
               : st && strcmp(st, "False") == 0 ? "NotReady"
                                                : "Unknown";
    }
    return "Unknown";
}

static void add_node_roles(json_t *cells, const json_t *obj)
{
    char buf[256] = "";
    const char *k;
    json_t *v;
    json_object_foreach(corral_meta_labels(obj), k, v)
    {
        const char *prefix = "node-role.kubernetes.io/";
        if (strncmp(k, prefix, strlen(prefix)) != 0)
            continue;
        size_t n = strlen(buf);
        snprintf(buf + n, sizeof(buf) - n, "%s%s", n ? "," : "", k + strlen(prefix));
    }
    add_str(cells, *buf ? buf : "<none>");
}

static const char *node_address(const json_t *obj, const char *type)
{
    size_t i;
    json_t *a;
    json_array_foreach(get(obj, "status.addresses"), i, a)
    {
        const char *t = json_string_value(json_object_get(a, "type"));
        if (t && strcmp(t, type) == 0)
            return json_string_value(json_object_get(a, "address"));
    }
    return "<none>";
}

void corral_row_node(const struct corral_resource *res, const json_t *obj, long now,
                     json_t *cells)
{
    add_name(cells, obj);
    bool unsched = json_is_true(get(obj, "spec.unschedulable"));
    add_fmt(cells, "%s%s", node_ready(obj), unsched ? ",SchedulingDisabled" : "");
    add_node_roles(cells, obj);
    json_t *gpus = json_object_get(get(obj, "status.capacity"), "nvidia.com/gpu");
    add_str(cells, json_is_string(gpus) ? json_string_value(gpus) : "0");
    json_t *labels = corral_meta_labels(obj);
    const char *model = json_string_value(json_object_get(labels, "corral.io/gpu.model"));
    add_str(cells, model ? model : "<none>");
    add_age(cells, obj, now);
    add_str(cells, str_or(obj, "status.nodeInfo.kubeletVersion", ""));
    add_str(cells, node_address(obj, "InternalIP"));
    add_str(cells, node_address(obj, "ExternalIP"));
    add_str(cells, str_or(obj, "status.nodeInfo.osImage", "<unknown>"));
    add_str(cells, str_or(obj, "status.nodeInfo.kernelVersion", "<unknown>"));
    add_str(cells, str_or(obj, "status.nodeInfo.containerRuntimeVersion", "<unknown>"));
}

/* The STATUS cell: a container's waiting/terminated reason wins over the phase. */
static const char *pod_status(const json_t *obj, char *buf, size_t len)
{
    if (get(obj, "metadata.deletionTimestamp"))
        return "Terminating";
    const char *reason = str_or(obj, "status.reason", NULL);
    if (reason)
        return reason;
    size_t i;
    json_t *cs;
    json_array_foreach(get(obj, "status.initContainerStatuses"), i, cs)
    {
        const char *w = str_or(cs, "state.waiting.reason", NULL);
        if (w && strcmp(w, "PodInitializing") != 0) {
            snprintf(buf, len, "Init:%s", w);
            return buf;
        }
    }
    const char *phase = str_or(obj, "status.phase", "Pending");
    json_array_foreach(get(obj, "status.containerStatuses"), i, cs)
    {
        const char *w = str_or(cs, "state.waiting.reason", NULL);
        const char *t = str_or(cs, "state.terminated.reason", NULL);
        if (w && strcmp(w, "ContainerCreating") != 0)
            return w;
        if (t && strcmp(phase, "Running") != 0)
            return t;
    }
    if (strcmp(phase, "Pending") == 0 && !str_or(obj, "spec.nodeName", NULL))
        return "Pending";
    return phase;
}

void corral_row_pod(const struct corral_resource *res, const json_t *obj, long now,
                    json_t *cells)
{
    add_name(cells, obj);
    size_t total = json_array_size(get(obj, "spec.containers")), ready = 0;
    long long restarts = 0;
    size_t i;
    json_t *cs;
    json_array_foreach(get(obj, "status.containerStatuses"), i, cs)
    {
        ready += json_is_true(json_object_get(cs, "ready"));
        restarts += int_or(cs, "restartCount", 0);
    }
    add_fmt(cells, "%zu/%zu", ready, total);
    char buf[128];
    add_str(cells, pod_status(obj, buf, sizeof(buf)));
    add_fmt(cells, "%lld", restarts);
    add_age(cells, obj, now);
    add_str(cells, str_or(obj, "status.podIP", "<none>"));
    add_str(cells, str_or(obj, "spec.nodeName", "<none>"));
    add_str(cells, str_or(obj, "status.nominatedNodeName", "<none>"));
    add_str(cells, "<none>");
    json_t *ann = corral_meta_annotations(obj);
    const char *gpus = json_string_value(json_object_get(ann, "corral.io/assigned-gpus"));
    const char *milli = json_string_value(json_object_get(ann, "corral.io/assigned-gpu-milli"));
    if (gpus && milli)
        add_fmt(cells, "%s (%sm)", gpus, milli);
    else
        add_str(cells, gpus && *gpus ? gpus : "<none>");
}

static void add_service_ports(json_t *cells, const json_t *obj)
{
    char buf[512] = "";
    size_t i;
    json_t *p;
    json_array_foreach(get(obj, "spec.ports"), i, p)
    {
        size_t n = strlen(buf);
        long long port = int_or(p, "port", 0), node_port = int_or(p, "nodePort", 0);
        const char *proto = str_or(p, "protocol", "TCP");
        if (node_port)
            snprintf(buf + n, sizeof(buf) - n, "%s%lld:%lld/%s", n ? "," : "", port, node_port,
                     proto);
        else
            snprintf(buf + n, sizeof(buf) - n, "%s%lld/%s", n ? "," : "", port, proto);
    }
    add_str(cells, *buf ? buf : "<none>");
}

void corral_row_service(const struct corral_resource *res, const json_t *obj, long now,
                        json_t *cells)
{
    add_name(cells, obj);
    add_str(cells, str_or(obj, "spec.type", "ClusterIP"));
    add_str(cells, str_or(obj, "spec.clusterIP", "<none>"));
    json_t *ing = get(obj, "status.loadBalancer.ingress");
    if (json_array_size(ing))
        add_joined(cells, ing, "ip");
    else
        add_str(cells, "<none>");
    add_service_ports(cells, obj);
    add_age(cells, obj, now);
    add_selector(cells, get(obj, "spec.selector"));
}

void corral_row_endpoints(const struct corral_resource *res, const json_t *obj, long now,
                          json_t *cells)
{
    add_name(cells, obj);
    char buf[512] = "";
    int shown = 0, total = 0;
    size_t i, j, k;
    json_t *subset, *addr, *port;
    json_array_foreach(get(obj, "subsets"), i, subset)
    {
        json_array_foreach(json_object_get(subset, "addresses"), j, addr)
        {
            json_array_foreach(json_object_get(subset, "ports"), k, port)
            {
                total++;
                if (shown >= 3)
                    continue;
                size_t n = strlen(buf);
                snprintf(buf + n, sizeof(buf) - n, "%s%s:%lld", n ? "," : "",
                         str_or(addr, "ip", ""), int_or(port, "port", 0));
                shown++;
            }
        }
    }
    if (total > shown) {
        size_t n = strlen(buf);
        snprintf(buf + n, sizeof(buf) - n, " + %d more...", total - shown);
    }
    add_str(cells, *buf ? buf : "<none>");
    add_age(cells, obj, now);
}

void corral_row_configmap(const struct corral_resource *res, const json_t *obj, long now,
                          json_t *cells)
{
    add_name(cells, obj);
    add_int(cells, (long long)(json_object_size(json_object_get(obj, "data")) +
                               json_object_size(json_object_get(obj, "binaryData"))));
    add_age(cells, obj, now);
}

void corral_row_secret(const struct corral_resource *res, const json_t *obj, long now,
                       json_t *cells)
{
    add_name(cells, obj);
    add_str(cells, str_or(obj, "type", "Opaque"));
    add_int(cells, (long long)json_object_size(json_object_get(obj, "data")));
    add_age(cells, obj, now);
}

void corral_row_event(const struct corral_resource *res, const json_t *obj, long now,
                      json_t *cells)
{
    const char *last = str_or(obj, "lastTimestamp", NULL);
    if (!last)
        last = str_or(obj, "eventTime", NULL);
    if (!last)
        last = str_or(obj, "metadata.creationTimestamp", NULL);
    add_age_of(cells, last, now);
    add_str(cells, str_or(obj, "type", "Normal"));
    add_str(cells, str_or(obj, "reason", ""));
    char kind[64];
    snprintf(kind, sizeof(kind), "%s", str_or(obj, "involvedObject.kind", ""));
    for (char *p = kind; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    add_fmt(cells, "%s/%s", kind, str_or(obj, "involvedObject.name", ""));
    add_str(cells, str_or(obj, "message", ""));
    add_name(cells, obj);
}

void corral_row_deployment(const struct corral_resource *res, const json_t *obj, long now,
                           json_t *cells)
{
    add_name(cells, obj);
    add_fmt(cells, "%lld/%lld", int_or(obj, "status.readyReplicas", 0),
            int_or(obj, "spec.replicas", 1));
    add_int(cells, int_or(obj, "status.updatedReplicas", 0));
    add_int(cells, int_or(obj, "status.availableReplicas", 0));
    add_age(cells, obj, now);
    add_template_wide(cells, obj);
}

void corral_row_replicaset(const struct corral_resource *res, const json_t *obj, long now,
                           json_t *cells)
{
    add_name(cells, obj);
    add_int(cells, int_or(obj, "spec.replicas", 1));
    add_int(cells, int_or(obj, "status.replicas", 0));
    add_int(cells, int_or(obj, "status.readyReplicas", 0));
    add_age(cells, obj, now);
    add_template_wide(cells, obj);
}

static bool has_condition(const json_t *obj, const char *type)
{
    size_t i;
    json_t *c;
    json_array_foreach(get(obj, "status.conditions"), i, c)
    {
        if (strcmp(str_or(c, "type", ""), type) == 0 &&
            strcmp(str_or(c, "status", ""), "True") == 0)
            return true;
    }
    return false;
}

static void add_job_duration(json_t *cells, const json_t *obj, long now)
{
    struct timespec start, end;
    if (corral_meta_parse_time(str_or(obj, "status.startTime", NULL), &start) < 0) {
        add_str(cells, "");
        return;
    }
    long stop = now;
    if (corral_meta_parse_time(str_or(obj, "status.completionTime", NULL), &end) == 0)
        stop = end.tv_sec;
    char buf[32];
    corral_meta_format_age(stop - start.tv_sec, buf, sizeof(buf));
    add_str(cells, buf);
}

void corral_row_job(const struct corral_resource *res, const json_t *obj, long now,
                    json_t *cells)
{
    add_name(cells, obj);
    const char *status = has_condition(obj, "Complete")   ? "Complete"
                         : has_condition(obj, "Failed")    ? "Failed"
                         : has_condition(obj, "Suspended") ? "Suspended"
                                                           : "Running";
    add_str(cells, status);
    add_fmt(cells, "%lld/%lld", int_or(obj, "status.succeeded", 0),
            int_or(obj, "spec.completions", 1));
    add_job_duration(cells, obj, now);
    add_age(cells, obj, now);
    add_template_wide(cells, obj);
}

void corral_row_lease(const struct corral_resource *res, const json_t *obj, long now,
                      json_t *cells)
{
    add_name(cells, obj);
    add_str(cells, str_or(obj, "spec.holderIdentity", ""));
    add_age(cells, obj, now);
}

void corral_row_podgroup(const struct corral_resource *res, const json_t *obj, long now,
                         json_t *cells)
{
    add_name(cells, obj);
    add_int(cells, int_or(obj, "spec.minMember", 0));
    add_str(cells, str_or(obj, "status.phase", "Pending"));
    add_age(cells, obj, now);
}

void corral_row_serviceaccount(const struct corral_resource *res, const json_t *obj, long now,
                               json_t *cells)
{
    add_name(cells, obj);
    add_int(cells, (long long)json_array_size(get(obj, "secrets")));
    add_age(cells, obj, now);
}

/* The subjects of a binding of one kind, "a, b" (ServiceAccounts as namespace/name). */
static void add_subjects(json_t *cells, const json_t *obj, const char *kind)
{
    char buf[512] = "";
    size_t i;
    json_t *s;
    json_array_foreach(get(obj, "subjects"), i, s)
    {
        const char *k = str_or(s, "kind", ""), *name = str_or(s, "name", "");
        if (strcmp(k, kind) != 0)
            continue;
        size_t n = strlen(buf);
        if (strcmp(kind, "ServiceAccount") == 0)
            snprintf(buf + n, sizeof(buf) - n, "%s%s/%s", n ? ", " : "",
                     str_or(s, "namespace", ""), name);
        else
            snprintf(buf + n, sizeof(buf) - n, "%s%s", n ? ", " : "", name);
    }
    add_str(cells, buf);
}

void corral_row_rolebinding(const struct corral_resource *res, const json_t *obj, long now,
                            json_t *cells)
{
    add_name(cells, obj);
    add_fmt(cells, "%s/%s", str_or(obj, "roleRef.kind", ""), str_or(obj, "roleRef.name", ""));
    add_age(cells, obj, now);
    add_subjects(cells, obj, "User");
    add_subjects(cells, obj, "Group");
    add_subjects(cells, obj, "ServiceAccount");
}

/* CertificateSigningRequest: the CONDITION cell joins the condition types, "Pending" if none. */
void corral_row_csr(const struct corral_resource *res, const json_t *obj, long now,
                    json_t *cells)
{
    add_name(cells, obj);
    add_age(cells, obj, now);
    add_str(cells, str_or(obj, "spec.signerName", ""));
    add_str(cells, str_or(obj, "spec.username", ""));
    json_t *secs = get(obj, "spec.expirationSeconds");
    char dur[32] = "<none>";
    if (json_is_integer(secs))
        corral_meta_format_age((long)json_integer_value(secs), dur, sizeof(dur));
    add_str(cells, dur);
    char cond[128] = "";
    size_t i;
    json_t *c;
    json_array_foreach(get(obj, "status.conditions"), i, c)
    {
        size_t n = strlen(cond);
        snprintf(cond + n, sizeof(cond) - n, "%s%s", n ? "," : "", str_or(c, "type", ""));
    }
    add_str(cells, *cond ? cond : "Pending");
}

void corral_row_crd(const struct corral_resource *res, const json_t *obj, long now,
                    json_t *cells)
{
    add_name(cells, obj);
    add_str(cells, str_or(obj, "metadata.creationTimestamp", ""));
}

void corral_row_custom(const struct corral_resource *res, const json_t *obj, long now,
                       json_t *cells)
{
    for (const struct corral_column *c = res->columns; c && c->name; c++) {
        if (!c->json_path) {
            if (strcmp(c->name, "Name") == 0)
                add_name(cells, obj);
            else
                add_age(cells, obj, now);
            continue;
        }
        char buf[64];
        const char *p = c->json_path[0] == '.' ? c->json_path + 1 : c->json_path;
        json_t *v = get(obj, p);
        if (strcmp(c->type, "date") == 0 && json_is_string(v))
            add_age_of(cells, json_string_value(v), now); /* shown as an age, e.g. "5m" */
        else if (json_is_integer(v) || json_is_real(v) || json_is_boolean(v))
            json_array_append(cells, v);
        else
            add_str(cells, corral_json_path_text(obj, p, buf, sizeof(buf)));
    }
}

json_t *corral_table_columns(const struct corral_resource *res)
{
    json_t *cols = json_array();
    for (const struct corral_column *c = res->columns ? res->columns : default_columns; c->name;
         c++)
        json_array_append_new(cols, json_pack("{s:s, s:s, s:s, s:s, s:i}", "name", c->name,
                                              "type", c->type, "format", c->format,
                                              "description", c->description, "priority",
                                              c->priority));
    return cols;
}

static json_t *partial_metadata(const json_t *obj)
{
    json_t *meta = json_deep_copy(json_object_get(obj, "metadata"));
    if (!meta)
        meta = json_object();
    json_object_del(meta, "managedFields");
    return json_pack("{s:s, s:s, s:o}", "kind", "PartialObjectMetadata", "apiVersion",
                     "meta.k8s.io/v1", "metadata", meta);
}

json_t *corral_table_row(const struct corral_resource *res, const json_t *obj, long now,
                         int include_object)
{
    json_t *cells = json_array();
    if (res->row)
        res->row(res, obj, now, cells);
    else
        corral_row_default(res, obj, now, cells);
    json_t *object = include_object ? json_deep_copy(obj) : partial_metadata(obj);
    return json_pack("{s:o, s:o}", "cells", cells, "object", object);
}
