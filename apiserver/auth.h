/* SPDX-License-Identifier: Apache-2.0 */
/*
 * auth: where the request path meets authentication and authorization.
 *
 * The HTTP layer calls corral_auth_authenticate() for every request and
 * corral_auth_authorize_*() once it knows what is being asked; both answer the request
 * themselves (401 / 403 Status) when they refuse. The decisions come from authn.h (tokens, client
 * certificates), authz.h (RBAC, node restriction) and every mutating request is written to the
 * audit log (audit.h, DATA_DIR/audit.log). On the plain-HTTP loopback listener (a
 * development mode that kubectl reaches without credentials, see kubectl-compat.md §0.2) every
 * request acts as the cluster admin; the server refuses to listen on plain HTTP anywhere else.
 */
#ifndef CORRAL_AUTH_H
#define CORRAL_AUTH_H

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
    const char *tls_cert_file;
    const char *tls_key_file;
    const char *client_ca_file;
    const char *pki_dir; /* directory written by `corral init` (defaults for the three above) */
};

/* Loads certificates and credentials. Returns 0 and *out, or -errno with a log line. */
int corral_auth_new(const struct corral_auth_config *cfg, struct corral_apiserver *srv,
                    struct corral_auth **out);
void corral_auth_free(struct corral_auth *auth);

/* Fills *out with the serving certificate. Returns 0 or -ENOENT when none is configured. */
int corral_auth_tls_options(struct corral_auth *auth, struct corral_tls_options *out);

/*
 * Identifies the caller into req->user. anonymous_ok says whether the route may be read without
 * credentials. Returns 0, or CORRAL_EUNAUTHORIZED after answering 401.
 */
int corral_auth_authenticate(struct corral_auth *auth, struct corral_request *req,
                             bool anonymous_ok);

/*
 * Authorizes req (its verb, resource, subresource, namespace and name are set). Returns 0, or
 * CORRAL_EFORBIDDEN after answering 403.
 */
int corral_auth_authorize(struct corral_auth *auth, struct corral_request *req);

/*
 * Configures a libcurl handle (a CURL *) to reach a node agent: trust the cluster CA and
 * present the apiserver's kubelet-client certificate when the PKI directory has one.
 */
void corral_auth_kubelet_client(struct corral_auth *auth, void *curl);

/* Authorizes a non-resource path (discovery, /metrics). Same contract. */
int corral_auth_authorize_path(struct corral_auth *auth, struct corral_request *req);

/* Writes req to the audit log when it was a mutating request (called once it is answered). */
void corral_auth_audit(struct corral_auth *auth, struct corral_request *req);

/*
 * Route handlers that authorize themselves (the route table must not apply path
 * authorization to them):
 *   POST /apis/authorization.k8s.io/v1/{selfsubjectaccessreviews,selfsubjectrulesreviews,
 *        subjectaccessreviews} and .../namespaces/NS/localsubjectaccessreviews
 *        (`kubectl auth can-i`), answered at once, never stored;
 *   POST /apis/certificates.k8s.io/v1/certificatesigningrequests: node join, the CSR is
 *        approved and signed in the reply (status.certificate), never stored.
 */
void corral_auth_handle_review(struct corral_request *req);
void corral_auth_handle_csr(struct corral_request *req);

#endif
