/* SPDX-License-Identifier: Apache-2.0 */
/*
 * auth: the request-path side of authentication, authorization and audit (see auth.h). The
 * decisions themselves live in authn.c and authz.c; this file gathers what they need from a
 * libmicrohttpd connection (Authorization header, the TLS peer certificate via GnuTLS, the
 * request's target) and turns a refusal into a 401/403 Status.
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
#include "status.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct corral_auth {
    bool insecure_http;
    char *cert_pem;
    char *key_pem;
    char *ca_pem;
    char *kubelet_cert_pem; /* client certificate for node agents */
    char *kubelet_key_pem;
    struct corral_authn *authn;
    struct corral_authz *authz;
    struct corral_audit *audit;
};

static char *read_file(const char *path, int *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        *err = -errno;
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = (len + 4096 + 1) * 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                *err = -ENOMEM;
                return NULL;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, 4096, f);
        len += n;
        if (n == 0)
            break;
    }
    fclose(f);
    buf[len] = 0;
    return buf;
}

/* Reads explicit_path, or dir/name; logs and returns -errno on failure. */
static int load_pem(const char *explicit_path, const char *dir, const char *name, char **out)
{
    char path[4096];
    if (explicit_path)
        snprintf(path, sizeof(path), "%s", explicit_path);
    else if (dir)
        snprintf(path, sizeof(path), "%s/%s", dir, name);
    else
        return -ENOENT;
    int err = 0;
    *out = read_file(path, &err);
    if (!*out)
        corral_error("auth", "cannot read %s: %s", path, corral_strerror(err));
    return *out ? 0 : err;
}

/* Issues the apiserver's own client certificate for reaching node agents. */
static void issue_kubelet_client(struct corral_auth *a, const char *dir)
{
    char path[4096];
    int err = 0;
    snprintf(path, sizeof(path), "%s/%s", dir, CORRAL_INIT_CA_KEY);
    char *ca_key = read_file(path, &err);
    if (!ca_key || !a->ca_pem) {
        corral_warn("auth", "no CA key in %s: `kubectl logs` cannot reach node agents", dir);
        corral_pki_free_secret(ca_key);
        return;
    }
    static const char *const orgs[] = {"system:masters", NULL};
    struct corral_pki_cert_spec spec = {.cn = "corral-apiserver", .orgs = orgs,
                                        .usage = CORRAL_PKI_USAGE_CLIENT, .days = 365};
    if (corral_pki_issue(a->ca_pem, ca_key, &spec, NULL, CORRAL_PKI_KEY_ECDSA_P256,
                         &a->kubelet_cert_pem, &a->kubelet_key_pem) < 0)
        corral_warn("auth", "cannot issue the kubelet client certificate");
    corral_pki_free_secret(ca_key);
}

static int load_secure(struct corral_auth *a, const struct corral_auth_config *cfg,
                       struct corral_apiserver *srv)
{
    const char *dir = cfg->cluster_dir;
    char pki[4096];
    snprintf(pki, sizeof(pki), "%s/pki", dir ? dir : ".");
    int rc = load_pem(cfg->tls_cert_file, dir ? pki : NULL, "apiserver.crt", &a->cert_pem);
    if (rc == 0)
        rc = load_pem(cfg->tls_key_file, dir ? pki : NULL, "apiserver.key", &a->key_pem);
    if (rc == 0)
        rc = load_pem(cfg->client_ca_file, dir ? pki : NULL, "ca.crt", &a->ca_pem);
    if (rc < 0)
        return rc;
    if (!dir) {
        corral_error("auth", "--cluster-dir is required with TLS: it holds the token table "
                     "and the CA that `corral init` created");
        return -ENOENT;
    }
    rc = corral_authn_new_from_dir(dir, &a->authn);
    if (rc < 0)
        return rc;
    issue_kubelet_client(a, dir);
    return 0;
}

int corral_auth_new(const struct corral_auth_config *cfg, struct corral_apiserver *srv,
                    struct corral_auth **out)
{
    struct corral_auth *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    a->insecure_http = cfg->insecure_http;
    int rc = cfg->insecure_http ? 0 : load_secure(a, cfg, srv);
    if (rc == 0)
        rc = corral_authz_bootstrap(srv->store);
    if (rc == 0)
        rc = corral_authz_new(srv->store, &a->authz);
    if (rc == 0 && cfg->audit_log)
        rc = corral_audit_open(cfg->audit_log, &a->audit);
    if (rc < 0) {
        corral_auth_free(a);
        return rc;
    }
    *out = a;
    return 0;
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

/* ---- authentication ---- */

static void set_user(struct corral_request *req, const char *name, const char *group)
{
    snprintf(req->user.name, sizeof(req->user.name), "%s", name);
    req->user.n_groups = 0;
    if (group)
        snprintf(req->user.groups[req->user.n_groups++], sizeof(req->user.groups[0]), "%s",
                 group);
}

static void copy_identity(struct corral_request *req, const struct corral_identity *id)
{
    snprintf(req->user.name, sizeof(req->user.name), "%s", id->name);
    int n = id->n_groups < 8 ? id->n_groups : 8;
    for (int i = 0; i < n; i++)
        snprintf(req->user.groups[i], sizeof(req->user.groups[i]), "%s", id->groups[i]);
    req->user.n_groups = n;
}

/* The TLS client certificate (DER) of req's connection, if any. */
static const gnutls_datum_t *peer_certificate(struct corral_request *req)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (!ci || !ci->tls_session)
        return NULL;
    unsigned n = 0;
    const gnutls_datum_t *peers = gnutls_certificate_get_peers(ci->tls_session, &n);
    return n > 0 ? &peers[0] : NULL;
}

struct impersonation {
    const char *groups[8];
    int n;
};

static enum MHD_Result collect_group(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    struct impersonation *im = cls;
    if (strcasecmp(key, "Impersonate-Group") == 0 && im->n < 7)
        im->groups[im->n++] = value;
    return MHD_YES;
}

static int may_impersonate(struct corral_auth *auth, struct corral_request *req,
                           const char *resource, const char *name)
{
    const char *groups[8];
    for (int i = 0; i < req->user.n_groups; i++)
        groups[i] = req->user.groups[i];
    struct corral_authz_attrs a = {.user = req->user.name, .groups = groups,
                                   .n_groups = (size_t)req->user.n_groups, .verb = "impersonate",
                                   .api_group = "", .resource = resource, .name = name};
    char why[512] = "";
    if (corral_authz_check(auth->authz, &a, why, sizeof(why)) == 0)
        return 0;
    corral_reply_error(req, CORRAL_EFORBIDDEN, "%s", why);
    return CORRAL_EFORBIDDEN;
}

/* Impersonate-User / Impersonate-Group (kubectl --as / --as-group), when the caller may. */
static int impersonate(struct corral_auth *auth, struct corral_request *req)
{
    const char *user = corral_request_header(req, "Impersonate-User");
    if (!user)
        return 0;
    struct impersonation im = {.n = 0};
    MHD_get_connection_values(req->conn, MHD_HEADER_KIND, collect_group, &im);
    int rc = may_impersonate(auth, req, "users", user);
    for (int i = 0; rc == 0 && i < im.n; i++)
        rc = may_impersonate(auth, req, "groups", im.groups[i]);
    if (rc < 0)
        return rc;
    req->impersonator.active = true;
    req->impersonator.real = req->user;
    snprintf(req->user.name, sizeof(req->user.name), "%s", user);
    req->user.n_groups = 0;
    for (int i = 0; i < im.n; i++)
        snprintf(req->user.groups[req->user.n_groups++], sizeof(req->user.groups[0]), "%s",
                 im.groups[i]);
    snprintf(req->user.groups[req->user.n_groups++], sizeof(req->user.groups[0]), "%s",
             "system:authenticated");
    return 0;
}

int corral_auth_authenticate(struct corral_auth *auth, struct corral_request *req)
{
    if (auth->insecure_http) {
        set_user(req, "system:admin", "system:masters");
        return 0;
    }
    set_user(req, "system:anonymous", "system:unauthenticated"); /* until proven otherwise */
    const gnutls_datum_t *cert = peer_certificate(req);
    struct corral_identity id;
    char why[256] = "";
    int rc = corral_authn_request(auth->authn, corral_request_header(req, "Authorization"),
                                  cert ? cert->data : NULL, cert ? cert->size : 0, &id, why,
                                  sizeof(why));
    if (rc == 0 && id.method == CORRAL_AUTHN_ANONYMOUS &&
        !corral_authn_anonymous_allowed(req->method, req->url))
        rc = CORRAL_EUNAUTHORIZED;
    if (rc < 0) {
        corral_debug("auth", "%s %s: 401 %s", req->method, req->url, why);
        corral_reply_error(req, CORRAL_EUNAUTHORIZED, "Unauthorized%s%s", why[0] ? ": " : "",
                           why);
        return CORRAL_EUNAUTHORIZED;
    }
    copy_identity(req, &id);
    return impersonate(auth, req);
}

/* ---- authorization ---- */

static void fill_attrs(const struct corral_request *req, struct corral_authz_attrs *a,
                       const char **groups)
{
    for (int i = 0; i < req->user.n_groups; i++)
        groups[i] = req->user.groups[i];
    *a = (struct corral_authz_attrs){
        .user = req->user.name,
        .groups = groups,
        .n_groups = (size_t)req->user.n_groups,
    };
}

static bool is_node(const struct corral_request *req)
{
    return strncmp(req->user.name, "system:node:", 12) == 0;
}

static int deny(struct corral_request *req, const char *why)
{
    json_t *st = corral_status_from_error(CORRAL_EFORBIDDEN, why);
    if (req->res)
        corral_status_set_details(st, req->res->group, req->res->plural,
                                  *req->name ? req->name : NULL);
    corral_reply_status(req, st);
    return CORRAL_EFORBIDDEN;
}

int corral_auth_authorize(struct corral_auth *auth, struct corral_request *req)
{
    const char *groups[8];
    struct corral_authz_attrs a;
    fill_attrs(req, &a, groups);
    a.verb = req->verb;
    a.api_group = req->res->group;
    a.resource = req->res->plural;
    a.subresource = *req->sub ? req->sub : NULL;
    a.ns = *req->ns ? req->ns : NULL;
    a.name = *req->name ? req->name : NULL;
    a.field_selector = corral_request_query(req, "fieldSelector");
    json_t *body = NULL;
    if (is_node(req) && req->body_len > 0)
        body = json_loadb(req->body, req->body_len, 0, NULL); /* node restriction reads it */
    a.object = body;
    char why[512] = "";
    int rc = corral_authz_check(auth->authz, &a, why, sizeof(why));
    json_decref(body);
    return rc == 0 ? 0 : deny(req, why[0] ? why : "forbidden");
}

int corral_auth_authorize_path(struct corral_auth *auth, struct corral_request *req)
{
    const char *groups[8];
    struct corral_authz_attrs a;
    fill_attrs(req, &a, groups);
    a.verb = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0 ? "get"
                                                                                  : "post";
    a.path = req->url;
    char why[512] = "";
    int rc = corral_authz_check(auth->authz, &a, why, sizeof(why));
    return rc == 0 ? 0 : deny(req, why[0] ? why : "forbidden");
}

void corral_auth_review(struct corral_request *req)
{
    json_t *review;
    if (corral_request_body_object(req, &review) < 0)
        return;
    const char *groups[8];
    struct corral_authz_attrs caller;
    fill_attrs(req, &caller, groups);
    char why[512] = "";
    int rc = corral_authz_review(req->srv->auth->authz, &caller, review, why, sizeof(why));
    if (rc < 0) {
        json_decref(review);
        corral_reply_error(req, rc, "%s", why);
        return;
    }
    corral_reply_json(req, 201, review);
}

int corral_auth_sign_csr(struct corral_request *req, json_t *obj, json_t **status)
{
    struct corral_auth *auth = req->srv->auth;
    if (auth->insecure_http || !auth->authn) {
        *status = corral_status_from_error(CORRAL_EFORBIDDEN,
                                           "node join needs the TLS listener and the cluster "
                                           "CA key (corral init)");
        return CORRAL_EFORBIDDEN;
    }
    struct corral_identity who = {0};
    snprintf(who.name, sizeof(who.name), "%s", req->user.name);
    for (int i = 0; i < req->user.n_groups && i < CORRAL_AUTHN_MAX_GROUPS; i++)
        snprintf(who.groups[i], sizeof(who.groups[i]), "%s", req->user.groups[i]);
    who.n_groups = req->user.n_groups;
    char node[256], key[600], why[512] = "";
    bool exists = false;
    if (corral_authn_csr_node(obj, node, sizeof(node)) == 0) {
        snprintf(key, sizeof(key), "/registry/nodes/%s", node);
        struct corral_store_obj o;
        exists = corral_store_get(req->srv->store, key, &o) == 0;
        if (exists)
            corral_blob_unref(o.value);
    }
    int rc = corral_authn_sign_csr(auth->authn, &who, obj, exists, why, sizeof(why));
    if (rc < 0)
        *status = corral_status_from_error(rc == -ENOTSUP ? CORRAL_EFORBIDDEN : rc, why);
    return rc < 0 ? (rc == -ENOTSUP ? CORRAL_EFORBIDDEN : rc) : 0;
}

/* ---- audit ---- */

static void client_ip(const struct corral_request *req, char *buf, size_t len)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    buf[0] = 0;
    if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, buf,
                  (socklen_t)len);
}

void corral_auth_audit(struct corral_auth *auth, const struct corral_request *req)
{
    if (!auth || !auth->audit || !req->verb || !corral_audit_wants(req->verb))
        return;
    /* the audit user is who authenticated; whom they impersonated is recorded beside it */
    const struct corral_user *who = req->impersonator.active ? &req->impersonator.real
                                                             : &req->user;
    const char *groups[8], *as_groups[8];
    for (int i = 0; i < who->n_groups; i++)
        groups[i] = who->groups[i];
    for (int i = 0; i < req->user.n_groups; i++)
        as_groups[i] = req->user.groups[i];
    char ip[64];
    client_ip(req, ip, sizeof(ip));
    struct corral_audit_event ev = {
        .user = who->name,
        .groups = groups,
        .n_groups = (size_t)who->n_groups,
        .impersonated_user = req->impersonator.active ? req->user.name : NULL,
        .impersonated_groups = as_groups,
        .n_impersonated_groups = req->impersonator.active ? (size_t)req->user.n_groups : 0,
        .verb = req->verb,
        .request_uri = req->url,
        .api_group = req->res ? req->res->group : NULL,
        .api_version = req->res ? req->res->version : NULL,
        .resource = req->res ? req->res->plural : NULL,
        .subresource = *req->sub ? req->sub : NULL,
        .ns = *req->ns ? req->ns : NULL,
        .name = *req->name ? req->name : NULL,
        .source_ip = ip,
        .user_agent = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "User-Agent"),
        .code = req->code,
        .received_ns = req->received_ns,
    };
    corral_audit_log(auth->audit, &ev);
}

/* ---- node agents ---- */

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
