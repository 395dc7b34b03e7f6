/* SPDX-License-Identifier: Apache-2.0 */
/*
 * discovery: discovery documents built from the resource registry on each request (they are
 * small, and CRDs change them at run time).
 */
#include "discovery.h"
#include "error.h"
#include "schema.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AGG_V2 "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
#define AGG_V2BETA1 "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"

static const char *const verbs_all[] = {"create", "delete", "deletecollection", "get", "list",
                                        "patch", "update", "watch", NULL};

static json_t *string_array(const char *const *list)
{
    json_t *a = json_array();
    for (; list && *list; list++)
        json_array_append_new(a, json_string(*list));
    return a;
}

static json_t *short_names(const struct corral_resource *res)
{
    json_t *a = json_array();
    for (int i = 0; i < 4 && res->short_names[i]; i++)
        json_array_append_new(a, json_string(res->short_names[i]));
    return a;
}

static json_t *response_kind(const struct corral_resource *res, const char *kind)
{
    return json_pack("{s:s, s:s, s:s}", "group", res->group, "version", res->version, "kind",
                     kind);
}

static json_t *agg_subresources(const struct corral_resource *res)
{
    static const struct {
        unsigned flag;
        const char *name, *kind;
        const char *const verbs[4];
    } subs[] = {{CORRAL_SUB_STATUS, "status", NULL, {"get", "patch", "update", NULL}},
                {CORRAL_SUB_BINDING, "binding", "Binding", {"create", NULL}},
                {CORRAL_SUB_LOG, "log", NULL, {"get", NULL}},
                {CORRAL_SUB_EVICTION, "eviction", "Eviction", {"create", NULL}},
                {CORRAL_SUB_SCALE, "scale", "Scale", {"get", "patch", "update", NULL}}};
    json_t *a = json_array();
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        if (!(res->subresources & subs[i].flag))
            continue;
        json_t *rk = subs[i].flag == CORRAL_SUB_SCALE
                         ? json_pack("{s:s, s:s, s:s}", "group", "autoscaling", "version", "v1",
                                     "kind", "Scale")
                         : response_kind(res, subs[i].kind ? subs[i].kind : res->kind);
        json_array_append_new(a, json_pack("{s:s, s:o, s:o}", "subresource", subs[i].name,
                                           "responseKind", rk, "verbs",
                                           string_array(subs[i].verbs)));
    }
    return a;
}

static const char *const verbs_create[] = {"create", NULL};

static json_t *agg_resource(const struct corral_resource *res)
{
    json_t *r = json_pack("{s:s, s:o, s:s, s:s, s:o, s:o}", "resource", res->plural,
                          "responseKind", response_kind(res, res->kind), "scope",
                          res->namespaced ? "Namespaced" : "Cluster", "singularResource",
                          res->singular ? res->singular : "", "verbs",
                          string_array(res->stored ? verbs_all : verbs_create), "subresources",
                          agg_subresources(res));
    if (res->short_names[0])
        json_object_set_new(r, "shortNames", short_names(res));
    if (res->in_all_category)
        json_object_set_new(r, "categories", json_pack("[s]", "all"));
    return r;
}

struct collect {
    json_t *groups;      /* {"group": {"version": [resources]}} in registration order */
    json_t *order;       /* [group names] */
    bool legacy;
};

static void collect_fn(const struct corral_resource *res, void *ctx)
{
    struct collect *c = ctx;
    json_t *g = json_object_get(c->groups, res->group);
    if (!g) {
        g = json_object();
        json_object_set_new(c->groups, res->group, g);
        json_array_append_new(c->order, json_string(res->group));
    }
    json_t *v = json_object_get(g, res->version);
    if (!v) {
        v = json_array();
        json_object_set_new(g, res->version, v);
    }
    json_array_append_new(v, json_pack("{s:s}", "ptr", ""));
    /* keep a pointer to the entry: JSON integers hold it portably enough for a request */
    json_object_set_new(json_array_get(v, json_array_size(v) - 1), "ptr",
                        json_integer((json_int_t)(intptr_t)res));
}

static struct collect collect_all(void)
{
    struct collect c = {json_object(), json_array(), false};
    corral_resources_foreach(collect_fn, &c);
    return c;
}

static const struct corral_resource *entry_res(const json_t *e)
{
    return (const struct corral_resource *)(intptr_t)json_integer_value(json_object_get(e, "ptr"));
}

static json_t *agg_group(const char *group, const json_t *versions)
{
    json_t *vlist = json_array();
    const char *ver;
    json_t *entries;
    json_object_foreach((json_t *)versions, ver, entries)
    {
        json_t *resources = json_array();
        size_t i;
        json_t *e;
        json_array_foreach(entries, i, e) json_array_append_new(resources, agg_resource(entry_res(e)));
        json_array_append_new(vlist, json_pack("{s:s, s:s, s:o}", "version", ver, "freshness",
                                               "Current", "resources", resources));
    }
    return json_pack("{s:{s:s}, s:o}", "metadata", "name", group, "versions", vlist);
}

static const char *aggregated_type(struct corral_request *req)
{
    const char *accept = corral_request_header(req, "Accept");
    if (!accept || !strstr(accept, "as=APIGroupDiscoveryList"))
        return NULL;
    return strstr(accept, "v=v2;") || strstr(accept, "v=v2,") ? AGG_V2 : AGG_V2BETA1;
}

static void reply_typed(struct corral_request *req, const char *type, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text) {
        corral_reply_error(req, -ENOMEM, NULL);
        return;
    }
    corral_reply_text(req, 200, type, text, strlen(text));
    free(text);
}

static void reply_aggregated(struct corral_request *req, const char *type, bool core)
{
    struct collect c = collect_all();
    json_t *items = json_array();
    size_t i;
    json_t *g;
    json_array_foreach(c.order, i, g)
    {
        const char *name = json_string_value(g);
        if ((*name == 0) == core)
            json_array_append_new(items, agg_group(name, json_object_get(c.groups, name)));
    }
    json_decref(c.groups);
    json_decref(c.order);
    const char *api = strstr(type, "v2beta1") ? "apidiscovery.k8s.io/v2beta1"
                                              : "apidiscovery.k8s.io/v2";
    reply_typed(req, type, json_pack("{s:s, s:s, s:{}, s:o}", "kind", "APIGroupDiscoveryList",
                                     "apiVersion", api, "metadata", "items", items));
}

void corral_discovery_api(struct corral_request *req)
{
    const char *agg = aggregated_type(req);
    if (agg) {
        reply_aggregated(req, agg, true);
        return;
    }
    const char *host = corral_request_header(req, "Host");
    corral_reply_json(req, 200,
                      json_pack("{s:s, s:[s], s:[{s:s, s:s}]}", "kind", "APIVersions", "versions",
                                "v1", "serverAddressByClientCIDRs", "clientCIDR", "0.0.0.0/0",
                                "serverAddress", host ? host : ""));
}

static json_t *group_doc(const char *name, const json_t *versions)
{
    json_t *vlist = json_array();
    const char *ver;
    json_t *entries;
    char gv[300];
    json_object_foreach((json_t *)versions, ver, entries)
    {
        snprintf(gv, sizeof(gv), "%s/%s", name, ver);
        json_array_append_new(vlist, json_pack("{s:s, s:s}", "groupVersion", gv, "version", ver));
    }
    json_t *preferred = json_incref(json_array_get(vlist, 0));
    return json_pack("{s:s, s:o, s:o}", "name", name, "versions", vlist, "preferredVersion",
                     preferred);
}

void corral_discovery_apis(struct corral_request *req)
{
    const char *agg = aggregated_type(req);
    if (agg) {
        reply_aggregated(req, agg, false);
        return;
    }
    struct collect c = collect_all();
    json_t *groups = json_array();
    size_t i;
    json_t *g;
    json_array_foreach(c.order, i, g)
    {
        const char *name = json_string_value(g);
        if (*name)
            json_array_append_new(groups, group_doc(name, json_object_get(c.groups, name)));
    }
    json_decref(c.groups);
    json_decref(c.order);
    corral_reply_json(req, 200, json_pack("{s:s, s:s, s:o}", "kind", "APIGroupList", "apiVersion",
                                          "v1", "groups", groups));
}

void corral_discovery_group(struct corral_request *req)
{
    const char *name = req->url + strlen("/apis/");
    struct collect c = collect_all();
    json_t *versions = json_object_get(c.groups, name);
    if (!versions || !*name) {
        corral_reply_error(req, CORRAL_ENOTFOUND, "the server could not find the requested "
                           "resource");
    } else {
        json_t *doc = group_doc(name, versions);
        json_object_set_new(doc, "kind", json_string("APIGroup"));
        json_object_set_new(doc, "apiVersion", json_string("v1"));
        corral_reply_json(req, 200, doc);
    }
    json_decref(c.groups);
    json_decref(c.order);
}

static json_t *legacy_resources(const json_t *entries)
{
    static const struct {
        unsigned flag;
        const char *name;
    } subs[] = {{CORRAL_SUB_STATUS, "status"}, {CORRAL_SUB_BINDING, "binding"},
                {CORRAL_SUB_LOG, "log"},       {CORRAL_SUB_EVICTION, "eviction"},
                {CORRAL_SUB_SCALE, "scale"}};
    json_t *list = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e)
    {
        const struct corral_resource *res = entry_res(e);
        json_t *r = json_pack("{s:s, s:s, s:b, s:s, s:o}", "name", res->plural, "singularName",
                              res->singular ? res->singular : "", "namespaced", res->namespaced,
                              "kind", res->kind, "verbs",
                              string_array(res->stored ? verbs_all : verbs_create));
        if (res->short_names[0])
            json_object_set_new(r, "shortNames", short_names(res));
        if (res->in_all_category)
            json_object_set_new(r, "categories", json_pack("[s]", "all"));
        json_array_append_new(list, r);
        for (size_t k = 0; k < sizeof(subs) / sizeof(subs[0]); k++) {
            if (!(res->subresources & subs[k].flag))
                continue;
            char name[300];
            snprintf(name, sizeof(name), "%s/%s", res->plural, subs[k].name);
            json_array_append_new(list, json_pack("{s:s, s:s, s:b, s:s, s:[s]}", "name", name,
                                                  "singularName", "", "namespaced",
                                                  res->namespaced, "kind", res->kind, "verbs",
                                                  "get"));
        }
    }
    return list;
}

void corral_discovery_group_version(struct corral_request *req)
{
    char group[256] = "", version[64] = "";
    if (strncmp(req->url, "/api/", 5) == 0)
        snprintf(version, sizeof(version), "%s", req->url + 5);
    else if (sscanf(req->url, "/apis/%255[^/]/%63s", group, version) != 2)
        version[0] = 0;
    struct collect c = collect_all();
    json_t *entries = json_object_get(json_object_get(c.groups, group), version);
    if (!entries) {
        corral_reply_error(req, CORRAL_ENOTFOUND, "the server could not find the requested "
                           "resource");
    } else {
        char gv[400];
        snprintf(gv, sizeof(gv), "%s%s%s", group, *group ? "/" : "", version);
        corral_reply_json(req, 200, json_pack("{s:s, s:s, s:s, s:o}", "kind", "APIResourceList",
                                              "apiVersion", "v1", "groupVersion", gv,
                                              "resources", legacy_resources(entries)));
    }
    json_decref(c.groups);
    json_decref(c.order);
}

/* ---- OpenAPI v3 ---- */

static unsigned long fnv(const char *s)
{
    unsigned long h = 1469598103934665603ul;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ul;
    return h;
}

static json_t *openapi_gv_doc(const char *group, const char *version, const json_t *entries);

void corral_openapi_root(struct corral_request *req)
{
    struct collect c = collect_all();
    json_t *paths = json_object();
    const char *group;
    json_t *versions;
    json_object_foreach(c.groups, group, versions)
    {
        const char *ver;
        json_t *entries;
        json_object_foreach(versions, ver, entries)
        {
            json_t *doc = openapi_gv_doc(group, ver, entries);
            char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
            json_decref(doc);
            char key[400], url[600];
            if (*group)
                snprintf(key, sizeof(key), "apis/%s/%s", group, ver);
            else
                snprintf(key, sizeof(key), "api/%s", ver);
            snprintf(url, sizeof(url), "/openapi/v3/%s?hash=%016lX", key, fnv(text ? text : ""));
            free(text);
            json_object_set_new(paths, key, json_pack("{s:s}", "serverRelativeURL", url));
        }
    }
    json_decref(c.groups);
    json_decref(c.order);
    corral_reply_json(req, 200, json_pack("{s:o}", "paths", paths));
}

static json_t *patch_operation(const struct corral_resource *res)
{
    json_t *params = json_pack("[{s:s, s:s, s:{s:s}}, {s:s, s:s, s:{s:s}}, {s:s, s:s, s:{s:s}}, "
                               "{s:s, s:s, s:{s:s}}]",
                               "name", "dryRun", "in", "query", "schema", "type", "string",
                               "name", "fieldManager", "in", "query", "schema", "type",
                               "string", "name", "fieldValidation", "in", "query", "schema",
                               "type", "string", "name", "force", "in", "query", "schema",
                               "type", "boolean");
    char ref[512];
    snprintf(ref, sizeof(ref), "#/components/schemas/%s.%s.%s", *res->group ? res->group : "core",
             res->version, res->kind);
    return json_pack("{s:s, s:o, s:o, s:{s:{s:s, s:{s:{s:{s:s}}}}}}", "operationId", "patch",
                     "x-kubernetes-group-version-kind", response_kind(res, res->kind),
                     "parameters", params, "responses", "200", "description", "OK", "content",
                     "application/json", "schema", "$ref", ref);
}

static json_t *openapi_gv_doc(const char *group, const char *version, const json_t *entries)
{
    json_t *paths = json_object(), *schemas = json_object();
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e)
    {
        const struct corral_resource *res = entry_res(e);
        char path[600], name[512];
        const char *base = *group ? "/apis/" : "/api/";
        snprintf(path, sizeof(path), "%s%s%s%s%s/%s/{name}", base, group, *group ? "/" : "",
                 version, res->namespaced ? "/namespaces/{namespace}" : "", res->plural);
        json_object_set_new(paths, path, json_pack("{s:o}", "patch", patch_operation(res)));
        snprintf(name, sizeof(name), "%s.%s.%s", *group ? group : "core", version, res->kind);
        json_t *schema = corral_schema_openapi(res);
        json_object_set_new(schema, "x-kubernetes-group-version-kind",
                            json_pack("[o]", response_kind(res, res->kind)));
        json_object_set_new(schemas, name, schema);
    }
    return json_pack("{s:s, s:{s:s, s:s}, s:o, s:{s:o}}", "openapi", "3.0.0", "info", "title",
                     "corral", "version", "v1.32.0", "paths", paths, "components", "schemas",
                     schemas);
}

void corral_openapi_document(struct corral_request *req)
{
    char group[256] = "", version[64] = "";
    const char *p = req->url + strlen("/openapi/v3/");
    if (strncmp(p, "api/", 4) == 0)
        snprintf(version, sizeof(version), "%s", p + 4);
    else if (sscanf(p, "apis/%255[^/]/%63s", group, version) != 2)
        version[0] = 0;
    struct collect c = collect_all();
    json_t *entries = json_object_get(json_object_get(c.groups, group), version);
    if (!entries)
        corral_reply_error(req, CORRAL_ENOTFOUND, "the server could not find the requested "
                           "resource");
    else
        corral_reply_json(req, 200, openapi_gv_doc(group, version, entries));
    json_decref(c.groups);
    json_decref(c.order);
}
