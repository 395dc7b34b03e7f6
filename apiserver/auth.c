/* SPDX-License-Identifier: Apache-2.0 */
/*
 * auth: the request-path side of authentication and authorization (see auth.h). Loads the
 * serving certificate and builds the authenticator (authn.h), authorizer (authz.h, with the
 * built-in roles bootstrapped into the store) and audit log (audit.h) at start-up; then, per
 * request, identifies the caller from the TLS peer certificate and the Authorization header,
 * refuses what RBAC and the node policy do not allow, and logs every mutating request.
 */
#include "auth.h"

#include "audit.h"
#include "authn.h"
#include "authz.h"
#include "error.h"
#include "init.h"
#include "log.h"
#include "meta.h"
#include "pki.h"
#include "server.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <limits.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

struct corral_auth {
    bool insecure_http;
    char *cert_pem;
    char *key_pem;
    char *ca_pem;
    char *kubelet_cert_pem; /* client certificate for node agents */
    char *kubelet_key_pem;
    struct corral_store *store;  /* borrowed from the server */
    struct corral_authn *authn;  /* NULL on the insecure listener */
    struct corral_authz *authz;
    struct corral_audit *audit;
};

static int load_pem(const char *explicit_path, const char *dir, const char *name, char **out)
{
    char path[PATH_MAX];
    if (explicit_path)
        snprintf(path, sizeof(path), "%s", explicit_path);
    else if (dir)
        snprintf(path, sizeof(path), "%s/%s", dir, name);
    else
        return -ENOENT;
    int err = corral_pki_read_file(path, out, NULL);
    if (err)
        corral_error("auth", "cannot read %s: %s", path, corral_strerror(err));
    return err;
}

/* The token table and (for node join) the CA key, both optional, from the pki directory. */
static int make_authn(struct corral_auth *a, const struct corral_auth_config *cfg)
{
    char tokens[PATH_MAX], key_path[PATH_MAX], *ca_key = NULL;
    bool have_tokens = false;
    if (cfg->pki_dir) {
        snprintf(tokens, sizeof(tokens), "%s/tokens.json", cfg->pki_dir);
        snprintf(key_path, sizeof(key_path), "%s/ca.key", cfg->pki_dir);
        have_tokens = access(tokens, F_OK) == 0;
        if (access(key_path, R_OK) == 0 && corral_pki_read_file(key_path, &ca_key, NULL) != 0)
            ca_key = NULL;
    }
    struct corral_authn_config ac = {.client_ca_pem = a->ca_pem,
                                     .tokens_file = have_tokens ? tokens : NULL,
                                     .ca_cert_pem = a->ca_pem,
                                     .ca_key_pem = ca_key};
    int rc = corral_authn_new(&ac, &a->authn);
    corral_pki_free_secret(ca_key);
    if (rc == 0 && !have_tokens)
        corral_warn("auth", "no token table (%s/tokens.json): bearer tokens are not accepted",
                    cfg->pki_dir ? cfg->pki_dir : "--pki-dir not given");
    return rc;
}

static int load_tls(struct corral_auth *a, const struct corral_auth_config *cfg)
{
    int rc = load_pem(cfg->tls_cert_file, cfg->pki_dir, "apiserver.crt", &a->cert_pem);
    if (rc == 0)
        rc = load_pem(cfg->tls_key_file, cfg->pki_dir, "apiserver.key", &a->key_pem);
    if (rc == 0 && (cfg->client_ca_file || cfg->pki_dir))
        rc = load_pem(cfg->client_ca_file, cfg->pki_dir, "ca.crt", &a->ca_pem);
    return rc;
}

/* The client certificate the apiserver shows node agents, and the CA to trust them by. */
static void load_kubelet_client(struct corral_auth *a, const char *pki_dir)
{
    char path[PATH_MAX];
    if (!pki_dir)
        return;
    snprintf(path, sizeof(path), "%s/%s", pki_dir, "apiserver-kubelet-client.crt");
    if (corral_pki_read_file(path, &a->kubelet_cert_pem, NULL) != 0)
        a->kubelet_cert_pem = NULL;
    snprintf(path, sizeof(path), "%s/%s", pki_dir, "apiserver-kubelet-client.key");
    if (corral_pki_read_file(path, &a->kubelet_key_pem, NULL) != 0)
        a->kubelet_key_pem = NULL;
    snprintf(path, sizeof(path), "%s/ca.crt", pki_dir);
    if (!a->ca_pem && corral_pki_read_file(path, &a->ca_pem, NULL) != 0)
        a->ca_pem = NULL;
}

static int open_audit(struct corral_auth *a, const struct corral_apiserver *srv)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/audit.log", srv->cfg.data_dir);
    return corral_audit_open(path, &a->audit);
}

int corral_auth_new(const struct corral_auth_config *cfg, struct corral_apiserver *srv,
                    struct corral_auth **out)
{
    struct corral_auth *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    a->insecure_http = cfg->insecure_http;
    a->store = srv->store;
    int rc = 0;
    if (!cfg->insecure_http && ((rc = load_tls(a, cfg)) || (rc = make_authn(a, cfg))))
        goto err_free;
    load_kubelet_client(a, cfg->pki_dir);
    if ((rc = corral_authz_bootstrap(srv->store)) || (rc = corral_authz_new(srv->store, &a->authz)))
        goto err_free;
    if ((rc = open_audit(a, srv)))
        goto err_free;
    *out = a;
    return 0;
err_free:
    corral_auth_free(a);
    return rc < 0 ? rc : -EINVAL;
}

void corral_auth_free(struct corral_auth *auth)
{
    if (!auth)
        return;
    free(auth->cert_pem);
    corral_pki_free_secret(auth->key_pem);
    free(auth->ca_pem);
    free(auth->kubelet_cert_pem);
    corral_pki_free_secret(auth->kubelet_key_pem);
    corral_authn_free(auth->authn);
    corral_authz_free(auth->authz);
    corral_audit_close(auth->audit);
    free(auth);
}

int corral_auth_tls_options(struct corral_auth *auth, struct corral_tls_options *out)
{
    if (!auth || !auth->cert_pem || !auth->key_pem)
        return -ENOENT;
    out->cert = auth->cert_pem;
    out->key = auth->key_pem;
    out->trust = auth->ca_pem;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Authentication                                                                              */

static void set_user(struct corral_request *req, const char *name, const char *group)
{
    snprintf(req->user.name, sizeof(req->user.name), "%s", name);
    req->user.n_groups = 0;
    if (group)
        snprintf(req->user.groups[req->user.n_groups++], sizeof(req->user.groups[0]), "%s",
                 group);
}

static void set_identity(struct corral_request *req, const struct corral_identity *id)
{
    snprintf(req->user.name, sizeof(req->user.name), "%s", id->name);
    req->user.n_groups = 0;
    for (int i = 0; i < id->n_groups && i < 8; i++)
        snprintf(req->user.groups[req->user.n_groups++], sizeof(req->user.groups[0]), "%s",
                 id->groups[i]);
}

/* The TLS client certificate (leaf, DER) of the connection, or NULL. Borrowed. */
static const gnutls_datum_t *peer_certificate(struct corral_request *req)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    unsigned int n = 0;
    const gnutls_datum_t *peers =
        ci && ci->tls_session ? gnutls_certificate_get_peers(ci->tls_session, &n) : NULL;
    return peers && n > 0 ? &peers[0] : NULL;
}

static void caller_attrs(struct corral_request *req, struct corral_authz_attrs *a,
                         const char *groups[8]);
static int deny(struct corral_request *req, const char *why);

/* Impersonation headers of a request (kubectl --as / --as-group). */
struct impersonation {
    const char *user;
    const char *groups[7];
    int n_groups;
    bool unsupported; /* Impersonate-Uid or Impersonate-Extra-* */
    bool too_many;
};

static enum MHD_Result impersonation_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                            const char *value)
{
    struct impersonation *im = cls;
    if (strcasecmp(key, "Impersonate-User") == 0)
        im->user = value;
    else if (strcasecmp(key, "Impersonate-Group") == 0 && im->n_groups < 7)
        im->groups[im->n_groups++] = value;
    else if (strcasecmp(key, "Impersonate-Group") == 0)
        im->too_many = true;
    else if (strcasecmp(key, "Impersonate-Uid") == 0 ||
             strncasecmp(key, "Impersonate-Extra-", 18) == 0)
        im->unsupported = true;
    return MHD_YES;
}

/* May the caller impersonate resource/name (users, groups, serviceaccounts)? */
static int may_impersonate(struct corral_request *req, const char *resource, const char *ns,
                           const char *name)
{
    const char *groups[8];
    struct corral_authz_attrs a;
    char why[512];
    caller_attrs(req, &a, groups);
    a.verb = "impersonate";
    a.api_group = "";
    a.resource = resource;
    a.ns = ns;
    a.name = name;
    return corral_authz_check(req->srv->auth->authz, &a, why, sizeof(why)) == 0 ? 0
                                                                                : deny(req, why);
}

/* A service account user "system:serviceaccount:NS:NAME" is impersonated as that object. */
static int may_impersonate_user(struct corral_request *req, const char *user)
{
    char ns[256];
    const char *p = strncmp(user, "system:serviceaccount:", 22) == 0 ? user + 22 : NULL;
    const char *colon = p ? strchr(p, ':') : NULL;
    if (!colon || (size_t)(colon - p) >= sizeof(ns))
        return may_impersonate(req, "users", NULL, user);
    snprintf(ns, sizeof(ns), "%.*s", (int)(colon - p), p);
    return may_impersonate(req, "serviceaccounts", ns, colon + 1);
}

/* Applies Impersonate-* headers after authentication. Returns 0 or an error (answered). */
static int impersonate(struct corral_request *req)
{
    struct impersonation im = {0};
    MHD_get_connection_values(req->conn, MHD_HEADER_KIND, impersonation_header, &im);
    if (!im.user && !im.n_groups && !im.unsupported)
        return 0;
    if (!im.user || im.unsupported || im.too_many || strlen(im.user) >= sizeof(req->user.name)) {
        corral_reply_error(req, CORRAL_EBADREQUEST,
                           "impersonation needs Impersonate-User, at most 7 Impersonate-Group "
                           "headers, and no Impersonate-Uid or Impersonate-Extra-*");
        return CORRAL_EBADREQUEST;
    }
    int rc = may_impersonate_user(req, im.user);
    for (int i = 0; rc == 0 && i < im.n_groups; i++)
        rc = strlen(im.groups[i]) < sizeof(req->user.groups[0])
                 ? may_impersonate(req, "groups", NULL, im.groups[i])
                 : deny(req, "group name too long");
    if (rc)
        return rc;
    snprintf(req->user.impersonator, sizeof(req->user.impersonator), "%s", req->user.name);
    snprintf(req->user.name, sizeof(req->user.name), "%s", im.user);
    req->user.n_groups = 0;
    for (int i = 0; i < im.n_groups; i++)
        snprintf(req->user.groups[req->user.n_groups++], sizeof(req->user.groups[0]), "%s",
                 im.groups[i]);
    if (strcmp(im.user, "system:anonymous") != 0)
        snprintf(req->user.groups[req->user.n_groups++], sizeof(req->user.groups[0]), "%s",
                 "system:authenticated");
    return 0;
}

int corral_auth_authenticate(struct corral_auth *auth, struct corral_request *req,
                             bool anonymous_ok)
{
    req->user.impersonator[0] = '\0';
    if (auth && auth->insecure_http) {
        set_user(req, "system:admin", "system:masters");
        return 0;
    }
    set_user(req, "system:anonymous", "system:unauthenticated");
    if (!auth || !auth->authn) {
        corral_reply_error(req, CORRAL_EUNAUTHORIZED, "Unauthorized");
        return CORRAL_EUNAUTHORIZED;
    }
    const gnutls_datum_t *peer = peer_certificate(req);
    struct corral_identity id;
    char why[200] = "";
    int rc = corral_authn_request(auth->authn, corral_request_header(req, "Authorization"),
                                  peer ? peer->data : NULL, peer ? peer->size : 0, &id, why,
                                  sizeof(why));
    set_identity(req, &id);
    if (rc == 0 && id.method != CORRAL_AUTHN_ANONYMOUS)
        return impersonate(req);
    if (rc == 0 && anonymous_ok && corral_authn_anonymous_allowed(req->method, req->url))
        return 0;
    corral_reply_error(req, CORRAL_EUNAUTHORIZED, "Unauthorized%s%s", why[0] ? ": " : "", why);
    return CORRAL_EUNAUTHORIZED;
}

/* ------------------------------------------------------------------------------------------ */
/* Authorization                                                                               */

/* attrs for req's caller; groups points into req. */
static void caller_attrs(struct corral_request *req, struct corral_authz_attrs *a,
                         const char *groups[8])
{
    memset(a, 0, sizeof(*a));
    for (int i = 0; i < req->user.n_groups && i < 8; i++)
        groups[i] = req->user.groups[i];
    a->user = req->user.name;
    a->groups = groups;
    a->n_groups = (size_t)req->user.n_groups;
}

/* The request body as JSON, for a node's create (its name is checked); NULL otherwise. */
static json_t *node_create_body(const struct corral_request *req)
{
    if (!req->verb || strcmp(req->verb, "create") != 0 || !req->body || !req->body_len ||
        strncmp(req->user.name, "system:node:", 12) != 0)
        return NULL;
    return json_loadb(req->body, req->body_len, 0, NULL);
}

static int deny(struct corral_request *req, const char *why)
{
    corral_reply_error(req, CORRAL_EFORBIDDEN, "%s", why);
    return CORRAL_EFORBIDDEN;
}

int corral_auth_authorize(struct corral_auth *auth, struct corral_request *req)
{
    const char *groups[8];
    struct corral_authz_attrs a;
    char why[512];
    caller_attrs(req, &a, groups);
    a.verb = req->verb ? req->verb : "";
    a.api_group = req->res ? req->res->group : "";
    a.resource = req->res ? req->res->plural : "";
    a.subresource = req->sub;
    a.ns = req->ns;
    a.name = req->name;
    a.field_selector = corral_request_query(req, "fieldSelector");
    json_t *body = node_create_body(req);
    a.object = body;
    int rc = corral_authz_check(auth->authz, &a, why, sizeof(why));
    json_decref(body);
    return rc == 0 ? 0 : deny(req, why);
}

/* Non-resource verbs are the lower-cased HTTP method, with HEAD read as get. */
static const char *path_verb(const char *method, char *buf, size_t len)
{
    if (strcmp(method, "HEAD") == 0)
        return "get";
    size_t i = 0;
    for (; method[i] && i + 1 < len; i++)
        buf[i] = (char)(method[i] >= 'A' && method[i] <= 'Z' ? method[i] + 32 : method[i]);
    buf[i] = '\0';
    return buf;
}

int corral_auth_authorize_path(struct corral_auth *auth, struct corral_request *req)
{
    const char *groups[8];
    struct corral_authz_attrs a;
    char why[512], verb[16], path[1024];
    caller_attrs(req, &a, groups);
    snprintf(path, sizeof(path), "%.*s", (int)strcspn(req->url, "?"), req->url);
    a.verb = path_verb(req->method, verb, sizeof(verb));
    a.path = path;
    return corral_authz_check(auth->authz, &a, why, sizeof(why)) == 0 ? 0 : deny(req, why);
}

/* ------------------------------------------------------------------------------------------ */
/* Audit                                                                                       */

static const char *method_verb(const char *method)
{
    static const char *const map[][2] = {
        {"POST", "create"}, {"PUT", "update"}, {"PATCH", "patch"}, {"DELETE", "delete"}};
    for (size_t i = 0; method && i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(method, map[i][0]) == 0)
            return map[i][1];
    return NULL;
}

static void client_ip(struct corral_request *req, char *buf, size_t len)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    buf[0] = '\0';
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)len);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, (socklen_t)len);
}

/* When the request arrived, on the wall clock (start_ns is monotonic). */
static uint64_t received_realtime(const struct corral_request *req)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    uint64_t age = corral_now_ns() - req->start_ns;
    return age < now ? now - age : now;
}

void corral_auth_audit(struct corral_auth *auth, struct corral_request *req)
{
    const char *verb = req->verb ? req->verb : method_verb(req->method);
    if (!auth || !auth->audit || !corral_audit_wants(verb))
        return;
    const char *groups[8];
    char ip[64], version[64] = "";
    for (int i = 0; i < req->user.n_groups && i < 8; i++)
        groups[i] = req->user.groups[i];
    client_ip(req, ip, sizeof(ip));
    if (req->res)
        corral_resource_api_version(req->res, version, sizeof(version));
    bool imp = req->user.impersonator[0] != '\0';
    struct corral_audit_event ev = {
        .user = imp ? req->user.impersonator : req->user.name,
        .groups = imp ? NULL : groups,
        .n_groups = imp ? 0 : (size_t)req->user.n_groups,
        .impersonated_user = imp ? req->user.name : NULL,
        .impersonated_groups = imp ? groups : NULL,
        .n_impersonated_groups = imp ? (size_t)req->user.n_groups : 0,
        .verb = verb,
        .request_uri = req->url,
        .api_group = req->res ? req->res->group : NULL,
        .api_version = req->res ? version : NULL,
        .resource = req->res ? req->res->plural : NULL,
        .subresource = req->sub,
        .ns = req->ns,
        .name = req->name,
        .source_ip = ip[0] ? ip : NULL,
        .user_agent = corral_request_header(req, "User-Agent"),
        .code = req->code,
        .received_ns = received_realtime(req),
    };
    corral_audit_log(auth->audit, &ev);
}

/* ------------------------------------------------------------------------------------------ */
/* Access reviews and node CSRs                                                                */

/* Authorizes `create` of resource in group (the handlers below authorize themselves). */
static int authorize_create(struct corral_request *req, const char *group, const char *resource,
                            const char *ns)
{
    const char *groups[8];
    struct corral_authz_attrs a;
    char why[512];
    caller_attrs(req, &a, groups);
    a.verb = "create";
    a.api_group = group;
    a.resource = resource;
    a.ns = ns;
    return corral_authz_check(req->srv->auth->authz, &a, why, sizeof(why)) == 0 ? 0
                                                                                : deny(req, why);
}

/* The last path segment ("selfsubjectaccessreviews") and, for local reviews, the namespace. */
static const char *review_resource(const char *url, char *ns, size_t len)
{
    const char *last = strrchr(url, '/');
    const char *p = strstr(url, "/namespaces/");
    ns[0] = '\0';
    if (p) {
        p += strlen("/namespaces/");
        snprintf(ns, len, "%.*s", (int)strcspn(p, "/"), p);
    }
    return last ? last + 1 : "";
}

void corral_auth_handle_review(struct corral_request *req)
{
    char ns[256], why[512];
    const char *resource = review_resource(req->url, ns, sizeof(ns));
    req->verb = "create";
    if (authorize_create(req, "authorization.k8s.io", resource, ns) < 0)
        return;
    json_t *review;
    if (corral_request_body_object(req, &review) < 0)
        return;
    if (ns[0])
        json_object_set_new(corral_meta_get(review, true), "namespace", json_string(ns));
    const char *groups[8];
    struct corral_authz_attrs caller;
    caller_attrs(req, &caller, groups);
    int rc = corral_authz_review(req->srv->auth->authz, &caller, review, why, sizeof(why));
    if (rc)
        corral_reply_error(req, rc, "%s", why);
    else
        corral_reply_json(req, 201, json_incref(review));
    json_decref(review);
}

static bool node_exists(struct corral_store *st, const char *name)
{
    char key[300];
    struct corral_store_obj o;
    snprintf(key, sizeof(key), "/registry/nodes/%s", name);
    if (corral_store_get(st, key, &o) != 0)
        return false;
    corral_blob_unref(o.value);
    return true;
}

static void csr_stamp(json_t *csr)
{
    char uid[37], now[21];
    json_t *meta = corral_meta_get(csr, true);
    corral_meta_new_uid(uid);
    corral_meta_format_time(time(NULL), now);
    json_object_set_new(meta, "uid", json_string(uid));
    json_object_set_new(meta, "creationTimestamp", json_string(now));
}

void corral_auth_handle_csr(struct corral_request *req)
{
    struct corral_auth *auth = req->srv->auth;
    char node[256], why[512] = "";
    struct corral_identity who = {0};
    req->verb = "create";
    if (authorize_create(req, "certificates.k8s.io", "certificatesigningrequests", NULL) < 0)
        return;
    json_t *csr;
    if (corral_request_body_object(req, &csr) < 0)
        return;
    snprintf(who.name, sizeof(who.name), "%s", req->user.name);
    for (int i = 0; i < req->user.n_groups && i < CORRAL_AUTHN_MAX_GROUPS; i++)
        snprintf(who.groups[who.n_groups++], sizeof(who.groups[0]), "%s", req->user.groups[i]);
    int rc = !auth->authn ? -ENOTSUP : corral_authn_csr_node(csr, node, sizeof(node));
    if (rc == 0)
        rc = corral_authn_sign_csr(auth->authn, &who, csr, node_exists(auth->store, node), why,
                                   sizeof(why));
    if (rc == 0) {
        csr_stamp(csr);
        corral_reply_json(req, 201, json_incref(csr));
    } else if (rc == -ENOTSUP) {
        corral_reply_error(req, CORRAL_EBADREQUEST, "node join is disabled on this apiserver%s%s",
                           why[0] ? ": " : "", why);
    } else {
        corral_reply_error(req, rc, "%s", why[0] ? why : "the certificate request is invalid");
    }
    json_decref(csr);
}

/* ------------------------------------------------------------------------------------------ */
/* Talking to node agents                                                                      */

static void set_blob(CURL *curl, CURLoption opt, const char *pem)
{
    struct curl_blob blob = {(void *)pem, strlen(pem), CURL_BLOB_COPY};
    curl_easy_setopt(curl, opt, &blob);
}

void corral_auth_kubelet_client(struct corral_auth *auth, void *handle)
{
    CURL *curl = handle;
    if (!auth)
        return;
    if (auth->ca_pem)
        set_blob(curl, CURLOPT_CAINFO_BLOB, auth->ca_pem);
    if (auth->kubelet_cert_pem && auth->kubelet_key_pem) {
        set_blob(curl, CURLOPT_SSLCERT_BLOB, auth->kubelet_cert_pem);
        set_blob(curl, CURLOPT_SSLKEY_BLOB, auth->kubelet_key_pem);
    }
}
