/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hooks: kind-specific behaviour (see hooks.h).
 *
 * Service IPs come from 10.96.0.0/12 and node ports from 30000-32767, as in Kubernetes; the
 * allocator is an in-memory set rebuilt from the store at start-up and guarded by one mutex,
 * so two concurrent creates can never receive the same address.
 */
#include "hooks.h"
#include "auth.h"
#include "error.h"
#include "log.h"
#include "meta.h"
#include "nslifecycle.h"
#include "objects.h"
#include "status.h"
#include "structural.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SERVICE_NET 0x0a600000u /* 10.96.0.0 */
#define SERVICE_SIZE (1u << 20)  /* /12 */
#define NODEPORT_MIN 30000
#define NODEPORT_MAX 32767

static pthread_mutex_t alloc_lock = PTHREAD_MUTEX_INITIALIZER;
static json_t *ips_used;   /* "10.96.0.10" -> "ns/name" */
static json_t *ports_used; /* "30080" -> "ns/name" */

static json_t *invalid(const struct corral_resource *res, const json_t *obj, const char *field,
                       const char *msg)
{
    struct corral_field_errors fe;
    corral_field_errors_init(&fe);
    corral_field_error(&fe, "FieldValueInvalid", field, "%s", msg);
    json_t *st = corral_status_invalid(res->group, res->kind, corral_meta_name(obj), &fe);
    corral_field_errors_clear(&fe);
    return st;
}

static bool is_kind(const struct corral_resource *res, const char *group, const char *plural)
{
    return strcmp(res->group, group) == 0 && strcmp(res->plural, plural) == 0;
}

static void owner_id(const json_t *obj, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", corral_meta_namespace(obj) ? corral_meta_namespace(obj) : "",
             corral_meta_name(obj));
}

/* ---- Service IPs and node ports ---- */

static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static int allocate_ip(const json_t *svc, char out[INET_ADDRSTRLEN])
{
    char owner[600];
    owner_id(svc, owner, sizeof(owner));
    uint32_t start = name_hash(owner) % SERVICE_SIZE;
    for (uint32_t i = 0; i < SERVICE_SIZE; i++) {
        uint32_t off = (start + i) % SERVICE_SIZE;
        if (off < 2 || off == SERVICE_SIZE - 1)
            continue; /* network, 10.96.0.1 (reserved), broadcast */
        struct in_addr a = {htonl(SERVICE_NET + off)};
        inet_ntop(AF_INET, &a, out, INET_ADDRSTRLEN);
        if (!json_object_get(ips_used, out)) {
            json_object_set_new(ips_used, out, json_string(owner));
            return 0;
        }
    }
    return -ENOSPC;
}

static bool ip_in_range(const char *ip)
{
    struct in_addr a;
    if (inet_pton(AF_INET, ip, &a) != 1)
        return false;
    uint32_t v = ntohl(a.s_addr);
    return v > SERVICE_NET && v < SERVICE_NET + SERVICE_SIZE - 1;
}

static int reserve_ip(const struct corral_resource *res, json_t *svc, json_t **status)
{
    json_t *spec = json_object_get(svc, "spec");
    const char *type = json_string_value(json_object_get(spec, "type"));
    const char *want = json_string_value(json_object_get(spec, "clusterIP"));
    if ((type && strcmp(type, "ExternalName") == 0) || (want && strcmp(want, "None") == 0))
        return 0;
    char owner[600];
    owner_id(svc, owner, sizeof(owner));
    if (want && *want) {
        if (!ip_in_range(want)) {
            *status = invalid(res, svc, "spec.clusterIP",
                              "Invalid value: provided IP is not in the valid range "
                              "10.96.0.0/12");
            return CORRAL_EINVALID;
        }
        json_t *holder = json_object_get(ips_used, want);
        if (holder && strcmp(json_string_value(holder), owner) != 0) {
            *status = invalid(res, svc, "spec.clusterIP",
                              "Invalid value: provided IP is already allocated");
            return CORRAL_EINVALID;
        }
        json_object_set_new(ips_used, want, json_string(owner));
        return 0;
    }
    char ip[INET_ADDRSTRLEN];
    if (allocate_ip(svc, ip) < 0) {
        *status = invalid(res, svc, "spec.clusterIP", "Internal error: no service IPs left");
        return CORRAL_EINVALID;
    }
    json_object_set_new(spec, "clusterIP", json_string(ip));
    json_object_set_new(spec, "clusterIPs", json_pack("[s]", ip));
    return 0;
}

static int reserve_ports(const struct corral_resource *res, json_t *svc, json_t **status)
{
    json_t *spec = json_object_get(svc, "spec");
    const char *type = json_string_value(json_object_get(spec, "type"));
    if (!type || (strcmp(type, "NodePort") != 0 && strcmp(type, "LoadBalancer") != 0))
        return 0;
    char owner[600];
    owner_id(svc, owner, sizeof(owner));
    size_t i;
    json_t *port;
    json_array_foreach(json_object_get(spec, "ports"), i, port)
    {
        json_int_t np = json_integer_value(json_object_get(port, "nodePort"));
        char key[16];
        if (np) {
            snprintf(key, sizeof(key), "%lld", (long long)np);
            json_t *holder = json_object_get(ports_used, key);
            if (np < NODEPORT_MIN || np > NODEPORT_MAX ||
                (holder && strcmp(json_string_value(holder), owner) != 0)) {
                *status = invalid(res, svc, "spec.ports.nodePort",
                                  "Invalid value: provided port is already allocated or not in "
                                  "30000-32767");
                return CORRAL_EINVALID;
            }
        } else {
            uint32_t start = name_hash(owner) + (uint32_t)i;
            for (int k = 0; k <= NODEPORT_MAX - NODEPORT_MIN && !np; k++) {
                json_int_t cand = NODEPORT_MIN + (json_int_t)((start + (uint32_t)k) %
                                                              (NODEPORT_MAX - NODEPORT_MIN + 1));
                snprintf(key, sizeof(key), "%lld", (long long)cand);
                if (!json_object_get(ports_used, key))
                    np = cand;
            }
            json_object_set_new(port, "nodePort", json_integer(np));
        }
        json_object_set_new(ports_used, key, json_string(owner));
    }
    return 0;
}

static void release_service(const json_t *svc)
{
    char owner[600];
    owner_id(svc, owner, sizeof(owner));
    json_t *spec = json_object_get(svc, "spec");
    const char *ip = json_string_value(json_object_get(spec, "clusterIP"));
    json_t *holder = ip ? json_object_get(ips_used, ip) : NULL;
    if (holder && strcmp(json_string_value(holder), owner) == 0)
        json_object_del(ips_used, ip);
    size_t i;
    json_t *port;
    json_array_foreach(json_object_get(spec, "ports"), i, port)
    {
        char key[16];
        snprintf(key, sizeof(key), "%lld",
                 (long long)json_integer_value(json_object_get(port, "nodePort")));
        holder = json_object_get(ports_used, key);
        if (holder && strcmp(json_string_value(holder), owner) == 0)
            json_object_del(ports_used, key);
    }
}

static int service_create(const struct corral_resource *res, json_t *svc, json_t **status)
{
    pthread_mutex_lock(&alloc_lock);
    int rc = reserve_ip(res, svc, status);
    if (rc == 0)
        rc = reserve_ports(res, svc, status);
    pthread_mutex_unlock(&alloc_lock);
    return rc;
}

static int service_update(const struct corral_resource *res, json_t *svc, const json_t *old,
                          json_t **status)
{
    json_t *spec = json_object_get(svc, "spec"), *ospec = json_object_get(old, "spec");
    static const char *const kept[] = {"clusterIP", "clusterIPs", NULL};
    for (const char *const *k = kept; *k; k++)
        if (!json_object_get(spec, *k) && json_object_get(ospec, *k))
            json_object_set(spec, *k, json_object_get(ospec, *k));
    /* keep allocated node ports for ports that keep their port number */
    size_t i, j;
    json_t *p, *op;
    json_array_foreach(json_object_get(spec, "ports"), i, p)
    {
        json_array_foreach(json_object_get(ospec, "ports"), j, op)
        {
            if (!json_object_get(p, "nodePort") && json_object_get(op, "nodePort") &&
                json_equal(json_object_get(p, "port"), json_object_get(op, "port")))
                json_object_set(p, "nodePort", json_object_get(op, "nodePort"));
        }
    }
    return service_create(res, svc, status);
}

/* ---- Jobs ---- */

static void job_create(json_t *job)
{
    const char *uid = json_string_value(json_object_get(json_object_get(job, "metadata"), "uid"));
    const char *name = corral_meta_name(job);
    json_t *spec = json_object_get(job, "spec");
    if (json_is_true(json_object_get(spec, "manualSelector")))
        return;
    json_t *tmeta = json_object_get(json_object_get(spec, "template"), "metadata");
    if (!json_is_object(tmeta)) {
        tmeta = json_object();
        json_object_set_new(json_object_get(spec, "template"), "metadata", tmeta);
    }
    json_t *labels = json_object_get(tmeta, "labels");
    if (!json_is_object(labels)) {
        labels = json_object();
        json_object_set_new(tmeta, "labels", labels);
    }
    json_object_set_new(labels, "batch.kubernetes.io/controller-uid", json_string(uid));
    json_object_set_new(labels, "batch.kubernetes.io/job-name", json_string(name));
    json_object_set_new(labels, "controller-uid", json_string(uid));
    json_object_set_new(labels, "job-name", json_string(name));
    json_object_set_new(spec, "selector",
                        json_pack("{s:{s:s}}", "matchLabels",
                                  "batch.kubernetes.io/controller-uid", uid));
}

/* ---- namespaces ---- */

static int namespace_delete(struct corral_apiserver *srv, const struct corral_resource *res,
                            const json_t *ns, json_t **status)
{
    const char *name = corral_meta_name(ns);
    static const char *const protected_ns[] = {"default", "kube-system", "kube-public", NULL};
    for (const char *const *p = protected_ns; *p; p++) {
        if (strcmp(name, *p) != 0)
            continue;
        json_t *st = corral_status_from_error(CORRAL_EFORBIDDEN, NULL);
        char msg[300];
        snprintf(msg, sizeof(msg), "namespaces \"%s\" is forbidden: this namespace may not be "
                 "deleted", name);
        json_object_set_new(st, "message", json_string(msg));
        corral_status_set_details(st, "", "namespaces", name);
        *status = st;
        return CORRAL_EFORBIDDEN;
    }
    return 0; /* the content goes later, see nslifecycle.h */
}

/* ---- CustomResourceDefinitions ---- */

static bool is_crd(const struct corral_resource *res)
{
    return is_kind(res, "apiextensions.k8s.io", "customresourcedefinitions");
}

static int crd_check(const struct corral_resource *res, json_t *crd, json_t **status)
{
    const char *group = json_string_value(json_object_get(json_object_get(crd, "spec"), "group"));
    static const char *const builtin_groups[] = {"", "apps", "batch", "coordination.k8s.io",
                                                 "rbac.authorization.k8s.io",
                                                 "apiextensions.k8s.io", "scheduling.x-k8s.io",
                                                 NULL};
    for (const char *const *g = builtin_groups; *g; g++) {
        if (group && strcmp(group, *g) == 0) {
            *status = invalid(res, crd, "spec.group", "Invalid value: the group is served by "
                              "corral itself");
            return CORRAL_EINVALID;
        }
    }
    size_t vi;
    json_t *ver;
    json_array_foreach(json_object_get(json_object_get(crd, "spec"), "versions"), vi, ver)
    {
        char path[1024];
        const char *why = NULL;
        snprintf(path, sizeof(path), "spec.versions[%zu].schema.openAPIV3Schema", vi);
        if (corral_structural_check_patterns(
                json_object_get(json_object_get(ver, "schema"), "openAPIV3Schema"), path,
                sizeof(path), &why) < 0) {
            char msg[1200];
            snprintf(msg, sizeof(msg), "Invalid value: %s", why);
            *status = invalid(res, crd, path, msg);
            return CORRAL_EINVALID;
        }
    }
    json_t *st = json_object_get(crd, "status");
    if (!st) {
        st = json_object();
        json_object_set_new(crd, "status", st);
    }
    json_t *names = json_object_get(json_object_get(crd, "spec"), "names");
    json_object_set(st, "acceptedNames", names);
    char ts[21];
    corral_meta_format_time(time(NULL), ts);
    json_object_set_new(st, "conditions",
                        json_pack("[{s:s, s:s, s:s, s:s, s:s}, {s:s, s:s, s:s, s:s, s:s}]",
                                  "type", "NamesAccepted", "status", "True", "reason",
                                  "NoConflicts", "message", "no conflicts found",
                                  "lastTransitionTime", ts, "type", "Established", "status",
                                  "True", "reason", "InitialNamesAccepted", "message",
                                  "the initial names have been accepted", "lastTransitionTime",
                                  ts));
    json_object_set_new(st, "storedVersions", json_array());
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(json_object_get(crd, "spec"), "versions"), i, v)
    {
        if (json_is_true(json_object_get(v, "storage")))
            json_array_append(json_object_get(st, "storedVersions"), json_object_get(v, "name"));
    }
    return 0;
}

struct cr_sweep {
    struct corral_apiserver *srv;
    const char *crd_name;
};

static void sweep_crs(const struct corral_resource *res, void *ctx)
{
    struct cr_sweep *sw = ctx;
    if (!res->crd || strcmp(corral_meta_name(res->crd), sw->crd_name) != 0)
        return;
    char prefix[1024];
    corral_resource_key(res, NULL, NULL, prefix, sizeof(prefix));
    struct corral_store_list_opts opts = {.prefix = prefix};
    struct corral_store_list l = {0};
    if (corral_store_list(sw->srv->store, &opts, &l) < 0)
        return;
    for (size_t i = 0; i < l.n; i++) {
        json_t *obj = corral_blob_json(l.items[i]);
        corral_objects_delete(sw->srv, res, corral_meta_namespace(obj), corral_meta_name(obj));
        json_decref(obj);
    }
    corral_store_list_clear(&l);
}

/* ---- entry points ---- */

int corral_hooks_before_create(struct corral_apiserver *srv, const struct corral_resource *res,
                               json_t *obj, json_t **status)
{
    if (is_kind(res, "", "services"))
        return service_create(res, obj, status);
    if (is_kind(res, "batch", "jobs"))
        job_create(obj);
    if (is_crd(res))
        return crd_check(res, obj, status);
    return 0;
}

int corral_hooks_before_update(struct corral_apiserver *srv, const struct corral_resource *res,
                               json_t *obj, const json_t *old, json_t **status)
{
    if (is_kind(res, "", "services"))
        return service_update(res, obj, old, status);
    if (is_crd(res))
        return crd_check(res, obj, status);
    return 0;
}

int corral_hooks_before_delete(struct corral_apiserver *srv, const struct corral_resource *res,
                               const json_t *obj, json_t **status)
{
    if (is_kind(res, "", "namespaces"))
        return namespace_delete(srv, res, obj, status);
    if (is_crd(res)) {
        struct cr_sweep sw = {srv, corral_meta_name(obj)};
        corral_resources_foreach(sweep_crs, &sw);
    }
    return 0;
}

void corral_hooks_after_write(struct corral_apiserver *srv, const struct corral_resource *res,
                              const json_t *obj, bool deleted)
{
    if (!obj)
        return;
    if (is_kind(res, "", "namespaces") && !deleted &&
        json_object_get(json_object_get(obj, "metadata"), "deletionTimestamp"))
        corral_nslifecycle_terminate(corral_meta_name(obj));
    if (is_kind(res, "", "services") && deleted) {
        pthread_mutex_lock(&alloc_lock);
        release_service(obj);
        pthread_mutex_unlock(&alloc_lock);
    }
    if (is_crd(res)) {
        if (deleted) {
            corral_resources_unregister_crd(corral_meta_name(obj));
        } else {
            struct corral_field_errors fe;
            corral_field_errors_init(&fe);
            if (corral_resources_register_crd(obj, &fe) < 0)
                corral_warn("crd", "cannot serve %s", corral_meta_name(obj));
            corral_field_errors_clear(&fe);
        }
    }
}

static void load_kind(struct corral_apiserver *srv, const char *group, const char *plural,
                      void (*fn)(const json_t *obj))
{
    const struct corral_resource *res =
        corral_resource_find(group, *group ? "v1" : "v1", plural);
    char prefix[256];
    corral_resource_key(res, NULL, NULL, prefix, sizeof(prefix));
    struct corral_store_list_opts opts = {.prefix = prefix};
    struct corral_store_list l = {0};
    if (corral_store_list(srv->store, &opts, &l) < 0)
        return;
    for (size_t i = 0; i < l.n; i++) {
        json_t *obj = corral_blob_json(l.items[i]);
        if (obj)
            fn(obj);
        json_decref(obj);
    }
    corral_store_list_clear(&l);
}

static void load_service(const json_t *svc)
{
    char owner[600];
    owner_id(svc, owner, sizeof(owner));
    json_t *spec = json_object_get(svc, "spec");
    const char *ip = json_string_value(json_object_get(spec, "clusterIP"));
    if (ip && ip_in_range(ip))
        json_object_set_new(ips_used, ip, json_string(owner));
    size_t i;
    json_t *port;
    json_array_foreach(json_object_get(spec, "ports"), i, port)
    {
        json_int_t np = json_integer_value(json_object_get(port, "nodePort"));
        char key[16];
        snprintf(key, sizeof(key), "%lld", (long long)np);
        if (np)
            json_object_set_new(ports_used, key, json_string(owner));
    }
}

static void load_crd(const json_t *crd)
{
    struct corral_field_errors fe;
    corral_field_errors_init(&fe);
    if (corral_resources_register_crd(crd, &fe) < 0)
        corral_warn("crd", "stored CRD %s is not valid; not serving it", corral_meta_name(crd));
    corral_field_errors_clear(&fe);
}

int corral_hooks_load(struct corral_apiserver *srv)
{
    pthread_mutex_lock(&alloc_lock);
    if (!ips_used)
        ips_used = json_object();
    if (!ports_used)
        ports_used = json_object();
    pthread_mutex_unlock(&alloc_lock);
    load_kind(srv, "", "services", load_service);
    load_kind(srv, "apiextensions.k8s.io", "customresourcedefinitions", load_crd);
    return 0;
}

void corral_hooks_unload(void)
{
    pthread_mutex_lock(&alloc_lock);
    json_decref(ips_used);
    json_decref(ports_used);
    ips_used = ports_used = NULL;
    pthread_mutex_unlock(&alloc_lock);
}

/* ---- binding ---- */

static void set_scheduled_condition(json_t *pod)
{
    json_t *status = json_object_get(pod, "status");
    if (!json_is_object(status)) {
        status = json_object();
        json_object_set_new(pod, "status", status);
    }
    json_t *conds = json_object_get(status, "conditions");
    if (!json_is_array(conds)) {
        conds = json_array();
        json_object_set_new(status, "conditions", conds);
    }
    char ts[21];
    corral_meta_format_time(time(NULL), ts);
    json_t *cond = json_pack("{s:s, s:s, s:n, s:s}", "type", "PodScheduled", "status", "True",
                             "lastProbeTime", "lastTransitionTime", ts);
    size_t i;
    json_t *c;
    json_array_foreach(conds, i, c)
    {
        const char *type = json_string_value(json_object_get(c, "type"));
        if (type && strcmp(type, "PodScheduled") == 0) {
            json_array_set_new(conds, i, cond);
            return;
        }
    }
    json_array_append_new(conds, cond);
}

static json_t *bind_error(int err, const char *name, const char *fmt, const char *a,
                          const char *b)
{
    char msg[512];
    snprintf(msg, sizeof(msg), fmt, a, b);
    json_t *st = corral_status_from_error(err, msg);
    corral_status_set_details(st, "", "pods", name);
    return st;
}

int corral_hooks_bind(struct corral_apiserver *srv, const char *ns, const char *name,
                      const json_t *binding, json_t **status)
{
    const struct corral_resource *pods = corral_resource_find("", "v1", "pods");
    json_t *target = json_object_get(binding, "target");
    const char *node = json_string_value(json_object_get(target, "name"));
    const char *kind = json_string_value(json_object_get(target, "kind"));
    if (!node || !*node || (kind && *kind && strcmp(kind, "Node") != 0)) {
        *status = bind_error(CORRAL_EINVALID, name, "Binding \"%s\" is invalid: target.name: "
                             "Required value%s", name, "");
        return CORRAL_EINVALID;
    }
    int rc = CORRAL_ECONFLICT;
    for (int attempt = 0; attempt < 8 && rc == CORRAL_ECONFLICT; attempt++) {
        json_t *pod;
        if (corral_objects_get(srv, pods, ns, name, &pod) < 0) {
            *status = bind_error(CORRAL_ENOTFOUND, name, "pods \"%s\" not found%s", name, "");
            return CORRAL_ENOTFOUND;
        }
        json_t *spec = json_object_get(pod, "spec");
        const char *cur = json_string_value(json_object_get(spec, "nodeName"));
        if (cur && *cur) {
            *status = bind_error(CORRAL_ECONFLICT, name,
                                 "pod %s is already assigned to node \"%s\"", name, cur);
            json_decref(pod);
            return CORRAL_ECONFLICT;
        }
        if (json_object_get(json_object_get(pod, "metadata"), "deletionTimestamp")) {
            *status = bind_error(CORRAL_ECONFLICT, name, "pod %s is being deleted%s", name, "");
            json_decref(pod);
            return CORRAL_ECONFLICT;
        }
        json_object_set_new(spec, "nodeName", json_string(node));
        json_t *ann = corral_meta_annotations(binding);
        if (json_object_size(ann)) {
            json_t *meta = corral_meta_get(pod, true);
            json_t *pann = json_object_get(meta, "annotations");
            if (!json_is_object(pann)) {
                pann = json_object();
                json_object_set_new(meta, "annotations", pann);
            }
            json_object_update(pann, ann);
        }
        set_scheduled_condition(pod);
        rc = corral_objects_update(srv, pods, pod, false, NULL);
        if (rc == 0) {
            /* status lives behind its own subresource: write the condition there too */
            json_t *again;
            if (corral_objects_get(srv, pods, ns, name, &again) == 0) {
                set_scheduled_condition(again);
                corral_objects_update(srv, pods, again, true, NULL);
            }
        }
    }
    if (rc < 0)
        *status = bind_error(rc, name, "binding pod %s failed: %s", name, corral_strerror(rc));
    return rc;
}

/* ---- pod logs, proxied to the node agent ---- */

struct log_proxy {
    CURL *curl;
    int fd[2];
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    long code;      /* HTTP status from the node agent, 0 until its headers are in */
    bool finished;
    char err[256];
    char *errbody;  /* non-200 body */
    size_t errlen;
    bool joined;
    struct corral_apiserver *srv;
};

static size_t log_write(char *data, size_t size, size_t n, void *ctx)
{
    struct log_proxy *lp = ctx;
    size_t len = size * n;
    pthread_mutex_lock(&lp->lock);
    if (lp->code == 0)
        curl_easy_getinfo(lp->curl, CURLINFO_RESPONSE_CODE, &lp->code);
    long code = lp->code;
    pthread_cond_broadcast(&lp->cond);
    pthread_mutex_unlock(&lp->lock);
    if (code != 200) {
        char *nb = realloc(lp->errbody, lp->errlen + len + 1);
        if (!nb)
            return 0;
        lp->errbody = nb;
        memcpy(nb + lp->errlen, data, len);
        lp->errlen += len;
        nb[lp->errlen] = 0;
        return len;
    }
    for (size_t off = 0; off < len;) {
        ssize_t w = write(lp->fd[1], data + off, len - off);
        if (w <= 0)
            return 0; /* the client went away */
        off += (size_t)w;
    }
    return len;
}

static void *log_thread(void *arg)
{
    struct log_proxy *lp = arg;
    CURLcode cc = curl_easy_perform(lp->curl);
    pthread_mutex_lock(&lp->lock);
    if (cc != CURLE_OK && cc != CURLE_WRITE_ERROR)
        snprintf(lp->err, sizeof(lp->err), "%s", curl_easy_strerror(cc));
    if (lp->code == 0)
        curl_easy_getinfo(lp->curl, CURLINFO_RESPONSE_CODE, &lp->code);
    lp->finished = true;
    pthread_cond_broadcast(&lp->cond);
    pthread_mutex_unlock(&lp->lock);
    close(lp->fd[1]);
    return NULL;
}

static const char *node_address(const json_t *node)
{
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(json_object_get(node, "status"), "addresses"), i, a)
    {
        const char *t = json_string_value(json_object_get(a, "type"));
        if (t && strcmp(t, "InternalIP") == 0)
            return json_string_value(json_object_get(a, "address"));
    }
    return NULL;
}

/* Picks the container: the query's, else the only one, else the default-container annotation. */
static const char *log_container(struct corral_request *req, const json_t *pod)
{
    const char *c = corral_request_query(req, "container");
    if (c && *c)
        return c;
    const char *def = json_string_value(json_object_get(
        corral_meta_annotations(pod), "kubectl.kubernetes.io/default-container"));
    if (def)
        return def;
    json_t *cs = json_object_get(json_object_get(pod, "spec"), "containers");
    return json_string_value(json_object_get(json_array_get(cs, 0), "name"));
}

static bool container_started(const json_t *pod, const char *container)
{
    size_t i;
    json_t *cs;
    json_array_foreach(json_object_get(json_object_get(pod, "status"), "containerStatuses"), i,
                       cs)
    {
        const char *n = json_string_value(json_object_get(cs, "name"));
        if (n && strcmp(n, container) == 0) {
            json_t *state = json_object_get(cs, "state");
            json_t *last = json_object_get(cs, "lastState");
            return json_object_get(state, "running") || json_object_get(state, "terminated") ||
                   json_object_get(last, "terminated");
        }
    }
    return false;
}

static void append_query(char *url, size_t len, struct corral_request *req, const char *key)
{
    const char *v = corral_request_query(req, key);
    if (!v)
        return;
    size_t n = strlen(url);
    char *esc = curl_easy_escape(NULL, v, 0);
    snprintf(url + n, len - n, "%s%s=%s", strchr(url, '?') ? "&" : "?", key, esc ? esc : "");
    curl_free(esc);
}

static int log_url(struct corral_request *req, const json_t *pod, const json_t *node,
                   const char *container, char *url, size_t len)
{
    const char *addr = node_address(node);
    json_int_t port = json_integer_value(json_object_get(
        json_object_get(json_object_get(json_object_get(node, "status"), "daemonEndpoints"),
                        "kubeletEndpoint"),
        "Port"));
    if (!addr || !port)
        return -ENOENT;
    const char *scheme = json_string_value(json_object_get(corral_meta_annotations(node),
                                                           "corral.io/kubelet-scheme"));
    snprintf(url, len, "%s://%s:%lld/containerLogs/%s/%s/%s", scheme ? scheme : "https", addr,
             (long long)port, req->ns, req->name, container);
    static const char *const keys[] = {"follow", "tailLines", "timestamps", "previous",
                                       "sinceSeconds", "sinceTime", "limitBytes", NULL};
    for (const char *const *k = keys; *k; k++)
        append_query(url, len, req, *k);
    return 0;
}

static long pipe_read(void *ctx, char *buf, size_t max)
{
    struct log_proxy *lp = ctx;
    for (;;) {
        struct pollfd p = {lp->fd[0], POLLIN, 0};
        int ready = poll(&p, 1, 1000); /* wake up now and then to notice a shutdown */
        if (atomic_load(&lp->srv->stopping))
            return 0;
        if (ready == 0)
            continue;
        ssize_t n = read(lp->fd[0], buf, max);
        return n < 0 ? -1 : (long)n;
    }
}

static void log_proxy_free(void *ctx)
{
    struct log_proxy *lp = ctx;
    close(lp->fd[0]); /* makes the writer fail, ending curl */
    if (!lp->joined)
        pthread_join(lp->thread, NULL);
    curl_easy_cleanup(lp->curl);
    pthread_mutex_destroy(&lp->lock);
    pthread_cond_destroy(&lp->cond);
    free(lp->errbody);
    free(lp);
}

/*
 * A node agent serves logs with a certificate from a CA of its own and publishes that CA in
 * its Node (annotation corral.io/kubelet-serving-ca, which only the node and admins may
 * write): trust exactly that CA for the node, when it is there.
 */
static void trust_node_ca(CURL *curl, const json_t *node)
{
    const char *ca = json_string_value(
        json_object_get(corral_meta_annotations(node), "corral.io/kubelet-serving-ca"));
    if (!ca)
        return;
    struct curl_blob blob = {(void *)ca, strlen(ca), CURL_BLOB_COPY};
    curl_easy_setopt(curl, CURLOPT_CAINFO_BLOB, &blob);
}

static struct log_proxy *log_proxy_start(struct corral_apiserver *srv, const char *url,
                                         const json_t *node)
{
    struct log_proxy *lp = calloc(1, sizeof(*lp));
    if (!lp || pipe(lp->fd) < 0) {
        free(lp);
        return NULL;
    }
    pthread_mutex_init(&lp->lock, NULL);
    pthread_cond_init(&lp->cond, NULL);
    lp->srv = srv;
    lp->curl = curl_easy_init();
    curl_easy_setopt(lp->curl, CURLOPT_URL, url);
    curl_easy_setopt(lp->curl, CURLOPT_WRITEFUNCTION, log_write);
    curl_easy_setopt(lp->curl, CURLOPT_WRITEDATA, lp);
    curl_easy_setopt(lp->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(lp->curl, CURLOPT_CONNECTTIMEOUT, 5L);
    corral_auth_kubelet_client(srv->auth, lp->curl);
    trust_node_ca(lp->curl, node);
    if (pthread_create(&lp->thread, NULL, log_thread, lp) != 0) {
        close(lp->fd[0]);
        close(lp->fd[1]);
        curl_easy_cleanup(lp->curl);
        free(lp);
        return NULL;
    }
    return lp;
}

static void log_fail(struct corral_request *req, struct log_proxy *lp)
{
    json_t *st = lp->errbody ? json_loads(lp->errbody, 0, NULL) : NULL;
    if (json_is_object(st) && json_object_get(st, "kind")) {
        corral_reply_status(req, st);
        return;
    }
    json_decref(st);
    if (lp->err[0])
        corral_reply_error(req, CORRAL_EUNAVAILABLE, "cannot reach the node agent: %s", lp->err);
    else
        corral_reply_error(req, lp->code == 404 ? CORRAL_ENOTFOUND : CORRAL_EBADREQUEST, "%.*s",
                           (int)lp->errlen, lp->errbody ? lp->errbody : "node agent error");
}

void corral_hooks_pod_log(struct corral_request *req)
{
    const struct corral_resource *nodes = corral_resource_find("", "v1", "nodes");
    json_t *pod = NULL, *node = NULL;
    if (corral_objects_get(req->srv, req->res, req->ns, req->name, &pod) < 0) {
        corral_reply_error(req, CORRAL_ENOTFOUND, "pods \"%s\" not found", req->name);
        return;
    }
    const char *container = log_container(req, pod);
    const char *node_name = json_string_value(json_object_get(json_object_get(pod, "spec"),
                                                              "nodeName"));
    char url[2048];
    if (!container || !node_name || !container_started(pod, container) ||
        corral_objects_get(req->srv, nodes, NULL, node_name, &node) < 0 ||
        log_url(req, pod, node, container, url, sizeof(url)) < 0) {
        corral_reply_error(req, CORRAL_EBADREQUEST,
                           "container \"%s\" in pod \"%s\" is waiting to start: %s",
                           container ? container : "", req->name,
                           node_name ? "ContainerCreating" : "the pod is not scheduled yet");
        goto out;
    }
    struct log_proxy *lp = log_proxy_start(req->srv, url, node);
    if (!lp) {
        corral_reply_error(req, -ENOMEM, NULL);
        goto out;
    }
    pthread_mutex_lock(&lp->lock);
    while (lp->code == 0 && !lp->finished)
        pthread_cond_wait(&lp->cond, &lp->lock);
    long code = lp->code;
    pthread_mutex_unlock(&lp->lock);
    if (code != 200) {
        pthread_join(lp->thread, NULL); /* an error body is short: let it arrive */
        lp->joined = true;
        log_fail(req, lp);
        log_proxy_free(lp);
        goto out;
    }
    corral_reply_stream(req, "text/plain", pipe_read, log_proxy_free, lp);
out:
    json_decref(pod);
    json_decref(node);
}
