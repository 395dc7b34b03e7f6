/* SPDX-License-Identifier: Apache-2.0 */
/*
 * auth: where the request path meets authentication (authn.h), authorization (authz.h) and
 * the audit log (audit.h).
 *
 * The HTTP layer calls corral_auth_authenticate() for every request and
 * corral_auth_authorize*() once it knows what is being asked; both answer the request
 * themselves (401 / 403 Status) when they refuse, so nothing unauthenticated reaches a
 * handler. corral_auth_audit() records every mutating request when it completes.
 *
 * The plain-HTTP listener exists only for development on loopback (kubectl sends no
 * credentials over http, kubectl-compat.md §0.2): there every request acts as the cluster
 * admin, and server.c refuses to listen on plain HTTP anywhere but 127.0.0.0/8.
 */
#ifndef CORRAL_AUTH_H
#define CORRAL_AUTH_H

#include <jansson.h>
#include <stdbool.h>

struct corral_auth;
struct corral_request;
struct corral_apiserver;

/* PEM texts for the TLS listener (borrowed from the auth context). */
struct corral_tls_options {
    const char *cert;
    const char *key;
    const char *trust; /* CA for client certificates; NULL = no client-certificate auth */
};

struct corral_auth_config {
    bool insecure_http;
    const char *cluster_dir;    /* the directory `corral init --dir` wrote */
    const char *tls_cert_file;  /* overrides cluster_dir/pki/apiserver.crt */
    const char *tls_key_file;   /* overrides cluster_dir/pki/apiserver.key */
    const char *client_ca_file; /* overrides cluster_dir/pki/ca.crt */
    const char *audit_log;      /* JSON-lines audit log path; NULL = none */
};

/*
 * Loads certificates, the token table and RBAC (from srv->store, creating the built-in roles
 * when missing). Returns 0 and *out, or -errno with a log line saying what is missing.
 */
int corral_auth_new(const struct corral_auth_config *cfg, struct corral_apiserver *srv,
                    struct corral_auth **out);
void corral_auth_free(struct corral_auth *auth);

/* Fills *out with the serving certificate. Returns 0 or -ENOENT when none is configured. */
int corral_auth_tls_options(struct corral_auth *auth, struct corral_tls_options *out);

/*
 * Identifies the caller into req->user. Anonymous callers may only read /version, /healthz,
 * /readyz and /livez. Returns 0, or CORRAL_EUNAUTHORIZED after answering 401.
 */
int corral_auth_authenticate(struct corral_auth *auth, struct corral_request *req);

/*
 * Authorizes req (its verb, resource, subresource, namespace and name are set). body is the
 * parsed request body when the handler has one (NULL otherwise). Returns 0, or
 * CORRAL_EFORBIDDEN after answering 403.
 */
int corral_auth_authorize(struct corral_auth *auth, struct corral_request *req);

/* Authorizes a non-resource path (discovery, /metrics). Same contract. */
int corral_auth_authorize_path(struct corral_auth *auth, struct corral_request *req);

/*
 * Answers an access review (SelfSubjectAccessReview, SelfSubjectRulesReview,
 * SubjectAccessReview, LocalSubjectAccessReview) posted in req's body.
 */
void corral_auth_review(struct corral_request *req);

/*
 * Signs a node's CertificateSigningRequest (obj, about to be stored) when the caller may
 * join or renew. Returns 0, or an error with *status set.
 */
int corral_auth_sign_csr(struct corral_request *req, json_t *obj, json_t **status);

/* Records a finished mutating request in the audit log (no-op without one). */
void corral_auth_audit(struct corral_auth *auth, const struct corral_request *req);

/*
 * Configures a libcurl handle (a CURL *) to reach a node agent: trust the cluster CA and
 * present the apiserver's kubelet-client certificate (CN=corral-apiserver,
 * O=system:masters), issued at start-up from the cluster CA.
 */
void corral_auth_kubelet_client(struct corral_auth *auth, void *curl);

#endif
