/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctrl_endpoints: the Endpoints controller. For every Service with a selector it keeps an
 * Endpoints object of the same name whose subsets list the selected pods that have an IP:
 * ready ones in addresses, the others in notReadyAddresses (all in addresses with
 * publishNotReadyAddresses), pods being deleted or finished left out. Each service port's
 * targetPort is resolved per pod (a number, or a named container port of the pod); pods that
 * resolve to the same ports share a subset, addresses sorted by IP; beyond 1000 addresses the
 * object is truncated (ready ones kept first) and annotated
 * endpoints.kubernetes.io/over-capacity=truncated, as in Kubernetes. Services without a
 * selector are left to their users; a deleted Service takes its Endpoints with it.
 *
 * Indexes: pod summaries, each Service's selector and ports, and the membership both ways
 * (service -> selected pod keys, pod -> services). A pod event enqueues only the Services
 * whose membership or view of that pod (IP, readiness, node, ports, deletion) changed.
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

#define SVC_PREFIX "/registry/services/"
#define POD_PREFIX "/registry/pods/"
#define MAX_ADDRESSES 1000
#define OVER_CAPACITY "endpoints.kubernetes.io/over-capacity"

struct ep_svc {
    char *key, *ns, *name;
    struct corral_selector *sel;    /* NULL: no selector, endpoints not managed */
    struct corral_ctrl_map members; /* pod keys */
};

struct ep_state {
    struct corral_ctrl_map svcs;     /* service key -> ep_svc */
    struct corral_ctrl_map by_ns;    /* namespace -> set of service keys */
    struct corral_ctrl_map pod_svcs; /* pod key -> set of service keys */
    bool relisting;                  /* the runner is replaying the whole store */
};

static void svc_free(void *v)
{
    struct ep_svc *s = v;
    if (!s)
        return;
    free(s->key);
    free(s->ns);
    free(s->name);
    corral_selector_free(s->sel);
    corral_ctrl_map_clear(&s->members, NULL);
    free(s);
}

static void ep_reset(struct corral_ctrl *c)
{
    struct ep_state *st = corral_ctrl_state(c);
    corral_ctrl_map_clear(&st->svcs, svc_free);
    corral_ctrl_multimap_clear(&st->by_ns);
    corral_ctrl_multimap_clear(&st->pod_svcs);
    st->relisting = true;
}

static int ep_init(struct corral_ctrl *c)
{
    struct ep_state *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    corral_ctrl_set_state(c, st);
    return 0;
}

static void ep_fini(struct corral_ctrl *c)
{
    ep_reset(c);
    free(corral_ctrl_state(c));
}

static bool selects(const struct ep_svc *s, const struct corral_ctrl_pod *pod)
{
    return s->sel && strcmp(s->ns, pod->ns) == 0 &&
           corral_selector_match_labels(s->sel, pod->labels);
}

static void join(struct ep_state *st, struct ep_svc *s, const char *pod_key)
{
    corral_ctrl_map_put(&s->members, pod_key, CORRAL_CTRL_MAP_PRESENT);
    corral_ctrl_multimap_add(&st->pod_svcs, pod_key, s->key);
}

static void leave(struct ep_state *st, struct ep_svc *s, const char *pod_key)
{
    corral_ctrl_map_del(&s->members, pod_key);
    corral_ctrl_multimap_del(&st->pod_svcs, pod_key, s->key);
}

static void drop_service(struct ep_state *st, const char *key)
{
    struct ep_svc *s = corral_ctrl_map_del(&st->svcs, key);
    if (!s)
        return;
    corral_ctrl_multimap_del(&st->by_ns, s->ns, key);
    size_t pos = 0;
    const char *pod_key;
    while (corral_ctrl_map_next(&s->members, &pos, &pod_key, NULL))
        corral_ctrl_multimap_del(&st->pod_svcs, pod_key, key);
    svc_free(s);
}

static struct ep_svc *parse_service(const json_t *obj, const char *key)
{
    struct ep_svc *s = calloc(1, sizeof(*s));
    const char *ns = corral_meta_namespace(obj), *name = corral_meta_name(obj);
    if (!s || !ns || !name || !(s->key = strdup(key)) || !(s->ns = strdup(ns)) ||
        !(s->name = strdup(name))) {
        svc_free(s);
        return NULL;
    }
    json_t *spec = json_object_get(obj, "spec");
    json_t *sel = json_object_get(spec, "selector");
    const char *type = json_string_value(json_object_get(spec, "type"));
    if (json_object_size(sel) > 0 && !(type && strcmp(type, "ExternalName") == 0) &&
        corral_selector_from_map(sel, &s->sel) < 0)
        s->sel = NULL;
    return s;
}

/* A new or changed Service: records the pods of its namespace it selects. */
static void load_members(struct corral_ctrl *c, struct ep_state *st, struct ep_svc *s)
{
    struct corral_ctrl_pod **pods = NULL;
    long n = corral_ctrl_pods_in_ns(corral_ctrl_pod_index(c), s->ns, &pods);
    for (long i = 0; i < n; i++)
        if (selects(s, pods[i]))
            join(st, s, pods[i]->key);
    corral_ctrl_pods_release(pods, n);
}

static void observe_service(struct corral_ctrl *c, const struct corral_store_event *ev)
{
    struct ep_state *st = corral_ctrl_state(c);
    drop_service(st, ev->key);
    corral_ctrl_enqueue(c, ev->key, 0);
    if (ev->type == CORRAL_EVENT_DELETED)
        return;
    json_t *obj = corral_blob_json(ev->value);
    struct ep_svc *s = obj ? parse_service(obj, ev->key) : NULL;
    json_decref(obj);
    if (!s || corral_ctrl_map_put(&st->svcs, s->key, s) == s) {
        svc_free(s);
        return;
    }
    corral_ctrl_multimap_add(&st->by_ns, s->ns, s->key);
    if (s->sel && !st->relisting)
        load_members(c, st, s);
}

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Whether an Endpoints object could differ between the two views of a pod. */
static bool endpoint_view_changed(const struct corral_ctrl_pod *a, const struct corral_ctrl_pod *b)
{
    if (!a || !b)
        return true;
    return !same_str(a->ip, b->ip) || a->ready != b->ready || !same_str(a->node, b->node) ||
           (a->deleting != 0) != (b->deleting != 0) || a->phase != b->phase ||
           !same_str(a->hostname, b->hostname) || !same_str(a->subdomain, b->subdomain) ||
           !json_equal(a->ports, b->ports) || (!a->ports) != (!b->ports);
}

static void observe_pod(struct corral_ctrl *c, const struct corral_store_event *ev)
{
    struct ep_state *st = corral_ctrl_state(c);
    const struct corral_ctrl_pod *old, *pod;
    corral_ctrl_pod_change(c, &old, &pod);
    bool view = endpoint_view_changed(old, pod);
    /* services that selected it before */
    struct corral_ctrl_map *was = corral_ctrl_multimap_get(&st->pod_svcs, ev->key);
    size_t pos = 0;
    const char *skey;
    while (was && corral_ctrl_map_next(was, &pos, &skey, NULL)) {
        struct ep_svc *s = corral_ctrl_map_get(&st->svcs, skey);
        if (s && (!pod || !selects(s, pod))) {
            corral_ctrl_enqueue(c, skey, 0);
            leave(st, s, ev->key); /* may free was: restart the scan */
            was = corral_ctrl_multimap_get(&st->pod_svcs, ev->key);
            pos = 0;
        } else if (s && view) {
            corral_ctrl_enqueue(c, skey, 0);
        }
    }
    if (!pod)
        return;
    struct corral_ctrl_map *in_ns = corral_ctrl_multimap_get(&st->by_ns, pod->ns);
    pos = 0;
    while (in_ns && corral_ctrl_map_next(in_ns, &pos, &skey, NULL)) {
        struct ep_svc *s = corral_ctrl_map_get(&st->svcs, skey);
        if (!s || !selects(s, pod) || corral_ctrl_map_get(&s->members, ev->key))
            continue;
        join(st, s, ev->key);
        corral_ctrl_enqueue(c, skey, 0);
    }
}

static void ep_observe(struct corral_ctrl *c, const struct corral_store_event *ev)
{
    if (strncmp(ev->key, SVC_PREFIX, strlen(SVC_PREFIX)) == 0)
        observe_service(c, ev);
    else
        observe_pod(c, ev);
}

static void ep_resync(struct corral_ctrl *c)
{
    struct ep_state *st = corral_ctrl_state(c);
    size_t pos = 0;
    const char *key;
    while (corral_ctrl_map_next(&st->svcs, &pos, &key, NULL))
        corral_ctrl_enqueue(c, key, 0);
}

/* ---- building subsets ---- */

/* The ports pod serves for the service (a new array), or NULL when none resolves. */
static json_t *resolve_ports(const json_t *svc_ports, const struct corral_ctrl_pod *pod)
{
    json_t *out = json_array();
    size_t i, j;
    json_t *sp, *cp;
    json_array_foreach(svc_ports, i, sp)
    {
        json_t *target = json_object_get(sp, "targetPort");
        if (!target)
            target = json_object_get(sp, "port");
        const char *proto = json_string_value(json_object_get(sp, "protocol"));
        proto = proto ? proto : "TCP";
        json_t *port = NULL;
        if (json_is_integer(target)) {
            port = json_incref(target);
        } else if (json_is_string(target)) {
            json_array_foreach(pod->ports, j, cp)
            {
                if (strcmp(json_string_value(json_object_get(cp, "name")),
                           json_string_value(target)) == 0 &&
                    strcmp(json_string_value(json_object_get(cp, "protocol")), proto) == 0) {
                    port = json_incref(json_object_get(cp, "containerPort"));
                    break;
                }
            }
        }
        if (!port)
            continue;
        json_t *ep = json_pack("{s:o, s:s}", "port", port, "protocol", proto);
        json_t *name = json_object_get(sp, "name");
        if (json_string_length(name))
            json_object_set(ep, "name", name);
        json_array_append_new(out, ep);
    }
    if (json_array_size(svc_ports) && !json_array_size(out)) {
        json_decref(out);
        return NULL;
    }
    return out;
}

static json_t *address_of(const struct corral_ctrl_pod *pod, const char *svc_name)
{
    json_t *a = json_pack("{s:s, s:{s:s, s:s, s:s, s:s}}", "ip", pod->ip, "targetRef", "kind",
                          "Pod", "namespace", pod->ns, "name", pod->name, "uid", pod->uid);
    if (pod->node)
        json_object_set_new(a, "nodeName", json_string(pod->node));
    if (pod->hostname && pod->subdomain && strcmp(pod->subdomain, svc_name) == 0)
        json_object_set_new(a, "hostname", json_string(pod->hostname));
    return a;
}

/* The subset of subsets whose ports equal ports (created when missing); borrowed. */
static json_t *subset_for(json_t *subsets, json_t *ports)
{
    size_t i;
    json_t *s;
    json_array_foreach(subsets, i, s)
    {
        if (json_equal(json_object_get(s, "ports"), ports))
            return s;
    }
    s = json_object();
    json_object_set_new(s, "addresses", json_array());
    json_object_set_new(s, "notReadyAddresses", json_array());
    json_object_set(s, "ports", ports);
    json_array_append_new(subsets, s);
    return s;
}

static int cmp_ip(const void *a, const void *b)
{
    const char *x = json_string_value(json_object_get(*(json_t *const *)a, "ip"));
    const char *y = json_string_value(json_object_get(*(json_t *const *)b, "ip"));
    return strcmp(x, y);
}

static void sort_addresses(json_t *subset, const char *field)
{
    json_t *arr = json_object_get(subset, field);
    size_t n = json_array_size(arr);
    if (n == 0) {
        json_object_del(subset, field);
        return;
    }
    json_t **items = calloc(n, sizeof(*items));
    if (!items)
        return;
    for (size_t i = 0; i < n; i++)
        items[i] = json_incref(json_array_get(arr, i));
    qsort(items, n, sizeof(*items), cmp_ip);
    json_array_clear(arr);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, items[i]);
    free(items);
}

static json_t *build_subsets(struct corral_ctrl *c, const struct ep_svc *s, const json_t *svc)
{
    json_t *spec = json_object_get(svc, "spec");
    json_t *ports = json_object_get(spec, "ports");
    bool publish = json_is_true(json_object_get(spec, "publishNotReadyAddresses"));
    json_t *subsets = json_array();
    size_t pos = 0;
    const char *key;
    while (corral_ctrl_map_next(&s->members, &pos, &key, NULL)) {
        struct corral_ctrl_pod *pod = corral_ctrl_pods_get(corral_ctrl_pod_index(c), key);
        json_t *pp = NULL;
        if (pod && pod->ip && (!pod->deleting || publish) && pod->phase != CORRAL_POD_SUCCEEDED &&
            pod->phase != CORRAL_POD_FAILED)
            pp = resolve_ports(ports, pod);
        if (pp) {
            json_t *sub = subset_for(subsets, pp);
            json_decref(pp);
            json_array_append_new(
                json_object_get(sub, pod->ready || publish ? "addresses" : "notReadyAddresses"),
                address_of(pod, s->name));
        }
        corral_ctrl_pod_unref(pod);
    }
    size_t i;
    json_t *sub;
    json_array_foreach(subsets, i, sub)
    {
        sort_addresses(sub, "addresses");
        sort_addresses(sub, "notReadyAddresses");
        if (json_array_size(json_object_get(sub, "ports")) == 0)
            json_object_del(sub, "ports");
    }
    return subsets;
}

/*
 * Keeps at most MAX_ADDRESSES addresses, ready ones first, as Kubernetes does since 1.22 (a
 * larger Endpoints object is truncated and annotated; EndpointSlices carry the rest there).
 * Returns true when something was dropped.
 */
static bool truncate_subsets(json_t *subsets)
{
    size_t budget = MAX_ADDRESSES, total = 0, i;
    json_t *sub;
    json_array_foreach(subsets, i, sub) total +=
        json_array_size(json_object_get(sub, "addresses")) +
        json_array_size(json_object_get(sub, "notReadyAddresses"));
    if (total <= MAX_ADDRESSES)
        return false;
    static const char *const fields[] = {"addresses", "notReadyAddresses"};
    for (int f = 0; f < 2; f++) {
        json_array_foreach(subsets, i, sub)
        {
            json_t *arr = json_object_get(sub, fields[f]);
            while (json_array_size(arr) > budget)
                json_array_remove(arr, json_array_size(arr) - 1);
            budget -= json_array_size(arr);
            if (arr && json_array_size(arr) == 0)
                json_object_del(sub, fields[f]);
        }
    }
    for (i = json_array_size(subsets); i-- > 0;) {
        sub = json_array_get(subsets, i);
        if (!json_object_get(sub, "addresses") && !json_object_get(sub, "notReadyAddresses"))
            json_array_remove(subsets, i);
    }
    return true;
}

/* ---- sync ---- */

static json_t *desired_labels(const json_t *svc)
{
    json_t *labels = json_deep_copy(corral_meta_labels(svc));
    if (!json_is_object(labels)) {
        json_decref(labels);
        labels = json_object();
    }
    const char *ip = json_string_value(json_object_get(json_object_get(svc, "spec"), "clusterIP"));
    if (ip && strcmp(ip, "None") == 0)
        json_object_set_new(labels, "service.kubernetes.io/headless", json_string(""));
    return labels;
}

static int write_endpoints(struct corral_ctrl *c, const struct ep_svc *s, json_t *subsets,
                           json_t *labels, bool truncated)
{
    const struct corral_resource *eps = corral_ctrl_kinds()->endpoints;
    json_t *cur = NULL;
    int rc = corral_objects_get(corral_ctrl_srv(c), eps, s->ns, s->name, &cur);
    if (rc < 0 && rc != CORRAL_ENOTFOUND)
        return rc;
    json_t *want = cur ? json_deep_copy(cur)
                       : json_pack("{s:s, s:s, s:{s:s, s:s}}", "apiVersion", "v1", "kind",
                                   "Endpoints", "metadata", "name", s->name, "namespace", s->ns);
    if (json_array_size(subsets))
        json_object_set(want, "subsets", subsets);
    else
        json_object_del(want, "subsets");
    json_t *meta = corral_meta_get(want, true);
    if (json_object_size(labels))
        json_object_set(meta, "labels", labels);
    else
        json_object_del(meta, "labels");
    json_t *ann = json_object_get(meta, "annotations");
    if (truncated) {
        if (!json_is_object(ann)) {
            ann = json_object();
            json_object_set_new(meta, "annotations", ann);
        }
        json_object_set_new(ann, OVER_CAPACITY, json_string("truncated"));
    } else if (ann) {
        json_object_del(ann, OVER_CAPACITY);
        if (json_object_size(ann) == 0)
            json_object_del(meta, "annotations");
    }
    json_t *cmeta = json_object_get(cur, "metadata");
    bool same =
        cur && json_equal(json_object_get(cur, "subsets"), json_object_get(want, "subsets")) &&
        json_equal(json_object_get(cmeta, "labels"), json_object_get(meta, "labels")) &&
        json_equal(json_object_get(cmeta, "annotations"), json_object_get(meta, "annotations"));
    if (same)
        rc = 0;
    else if (cur)
        rc = corral_objects_update(corral_ctrl_srv(c), eps, json_incref(want), false, NULL);
    else
        rc = corral_objects_create(corral_ctrl_srv(c), eps, s->ns, json_incref(want), NULL);
    json_decref(want);
    json_decref(cur);
    return rc;
}

static int ep_sync(struct corral_ctrl *c, const char *key)
{
    struct ep_state *st = corral_ctrl_state(c);
    char buf[CORRAL_CTRL_KEY_MAX];
    const char *ns, *name;
    if (corral_ctrl_split_key(key, true, buf, sizeof(buf), &ns, &name) < 0)
        return 0;
    struct ep_svc *s = corral_ctrl_map_get(&st->svcs, key);
    if (!s) {
        int rc = corral_ctrl_delete(c, corral_ctrl_kinds()->endpoints, ns, name, NULL, 0, NULL);
        return rc == CORRAL_ENOTFOUND ? 0 : rc;
    }
    if (!s->sel)
        return 0;
    json_t *svc = NULL;
    int rc = corral_objects_get(corral_ctrl_srv(c), corral_ctrl_kinds()->services, ns, name, &svc);
    if (rc < 0)
        return rc == CORRAL_ENOTFOUND ? 0 : rc;
    json_t *subsets = build_subsets(c, s, svc);
    json_t *labels = desired_labels(svc);
    bool truncated = truncate_subsets(subsets);
    rc = write_endpoints(c, s, subsets, labels, truncated);
    if (rc == CORRAL_EEXISTS)
        rc = CORRAL_ECONFLICT; /* created meanwhile: retry as an update */
    json_decref(subsets);
    json_decref(labels);
    json_decref(svc);
    return rc;
}

static void ep_relisted(struct corral_ctrl *c)
{
    struct ep_state *st = corral_ctrl_state(c);
    st->relisting = false;
}

const struct corral_ctrl_def corral_ctrl_endpoints = {
    .name = "endpoints",
    .component = "endpoint-controller",
    .prefixes = {SVC_PREFIX, POD_PREFIX},
    .resync_s = 60,
    .pods = true,
    .init = ep_init,
    .fini = ep_fini,
    .reset = ep_reset,
    .observe = ep_observe,
    .resync = ep_resync,
    .sync = ep_sync,
    .relisted = ep_relisted,
};
