/* SPDX-License-Identifier: Apache-2.0 */
/*
 * routes: the route table and the handlers for the non-resource paths (/version, health,
 * /metrics). Resource paths go to objects.c, discovery and OpenAPI to discovery.c.
 */
#include "routes.h"
#include "corral-config.h"
#include "auth.h"
#include "discovery.h"
#include "error.h"
#include "metrics.h"
#include "objects.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void handle_version(struct corral_request *req)
{
    json_t *v = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "major", "1", "minor",
                          "32", "gitVersion", "v1.32.0+corral-" CORRAL_VERSION, "gitCommit",
                          "", "gitTreeState", "clean", "buildDate", __DATE__, "goVersion",
                          "none (C11)", "compiler", "gcc", "platform", "linux/amd64");
    corral_reply_json(req, 200, v);
}

static void handle_healthz(struct corral_request *req)
{
    corral_reply_text(req, 200, "text/plain; charset=utf-8", "ok", 2);
}

static void handle_readyz(struct corral_request *req)
{
    if (atomic_load(&req->srv->stopping)) {
        corral_reply_text(req, 503, "text/plain; charset=utf-8", "shutting down", 13);
        return;
    }
    corral_reply_text(req, 200, "text/plain; charset=utf-8", "ok", 2);
}

static void handle_metrics(struct corral_request *req)
{
    char *text = corral_metrics_render(req->srv->metrics, req->srv->store);
    if (!text) {
        corral_reply_error(req, -ENOMEM, NULL);
        return;
    }
    corral_reply_text(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text));
    free(text);
}

static void handle_not_found(struct corral_request *req)
{
    corral_reply_error(req, CORRAL_ENOTFOUND, "the server could not find the requested resource");
}

struct route {
    const char *method; /* "*" = any */
    const char *pattern;
    void (*handler)(struct corral_request *req);
};

static const struct route routes[] = {
    {"GET", "/version", handle_version},
    {"GET", "/healthz", handle_healthz},
    {"GET", "/livez", handle_healthz},
    {"GET", "/readyz", handle_readyz},
    {"GET", "/metrics", handle_metrics},
    {"GET", "/api", corral_discovery_api},
    {"GET", "/api/v1", corral_discovery_group_version},
    {"GET", "/apis", corral_discovery_apis},
    {"GET", "/apis/*", corral_discovery_group},
    {"GET", "/apis/*/*", corral_discovery_group_version},
    {"GET", "/openapi/v3", corral_openapi_root},
    {"GET", "/openapi/v3/**", corral_openapi_document},
    {"*", "/api/v1/**", corral_objects_dispatch},
    {"*", "/apis/*/*/**", corral_objects_dispatch},
};

static bool segment_match(const char *pat, size_t plen, const char *seg, size_t slen)
{
    if (plen == 1 && pat[0] == '*')
        return slen > 0;
    return plen == slen && memcmp(pat, seg, plen) == 0;
}

/* Matches url against pattern segment by segment. */
static bool path_match(const char *pattern, const char *url)
{
    const char *p = pattern, *u = url;
    for (;;) {
        while (*p == '/')
            p++;
        while (*u == '/')
            u++;
        if (!*p)
            return !*u;
        const char *pe = strchr(p, '/');
        size_t plen = pe ? (size_t)(pe - p) : strlen(p);
        if (plen == 2 && p[0] == '*' && p[1] == '*')
            return *u != 0;
        if (!*u)
            return false;
        const char *ue = strchr(u, '/');
        size_t ulen = ue ? (size_t)(ue - u) : strlen(u);
        if (!segment_match(p, plen, u, ulen))
            return false;
        p += plen;
        u += ulen;
    }
}

void corral_routes_dispatch(struct corral_request *req)
{
    const struct route *route = NULL;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]) && !route; i++) {
        const struct route *r = &routes[i];
        if ((strcmp(r->method, "*") == 0 || strcmp(r->method, req->method) == 0 ||
             (strcmp(r->method, "GET") == 0 && strcmp(req->method, "HEAD") == 0)) &&
            path_match(r->pattern, req->url))
            route = r;
    }
    if (corral_auth_authenticate(req->srv->auth, req) < 0)
        return; /* answered with 401 */
    if (!route) {
        handle_not_found(req);
        return;
    }
    if (route->handler != corral_objects_dispatch &&
        corral_auth_authorize_path(req->srv->auth, req) < 0)
        return; /* answered with 403 */
    route->handler(req);
}

void corral_routes_foreach(void (*fn)(const char *method, const char *pattern, void *ctx),
                           void *ctx)
{
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        fn(routes[i].method, routes[i].pattern, ctx);
}
