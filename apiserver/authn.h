/* SPDX-License-Identifier: Apache-2.0 */
/*
 * authn: who is asking. The apiserver's request path calls corral_authn_request() with the
 * request's Authorization header and the TLS peer certificate (DER, as GnuTLS hands it out via
 * gnutls_certificate_get_peers()), and gets an identity back.
 *
 * Credentials, tried in this order (as kube-apiserver's union authenticator does):
 *   1. a client certificate signed by the cluster CA, valid now, with extendedKeyUsage
 *      clientAuth: user = subject CN, groups = subject O entries;
 *   2. a bearer token: its SHA-256 is compared, in constant time and against every entry, with
 *      the hashes in the token table (DIR/pki/tokens.json written by `corral init`, see
 *      init.h); entries with "expires" in the past (bootstrap tokens) no longer authenticate.
 * Every authenticated identity also gets the group system:authenticated. A request with no
 * credential at all is system:anonymous in group system:unauthenticated; such a request may
 * only read /version, /healthz, /readyz and /livez (corral_authn_anonymous_allowed()); the
 * caller answers 401 for anything else. A credential that is presented but does not verify is
 * always 401, never anonymous.
 *
 * Node join (kubeadm-style): a kubelet holding a bootstrap token POSTs a
 * CertificateSigningRequest (certificates.k8s.io/v1, signerName
 * kubernetes.io/kube-apiserver-client-kubelet) whose PKCS#10 request names
 * CN=system:node:<name>, O=system:nodes; corral_authn_sign_csr() approves and signs it at once,
 * filling status.certificate. The node then uses that certificate.
 *
 * Thread-safe: any number of request threads may call in; corral_authn_reload_tokens() swaps
 * the token table under a lock.
 */
#ifndef CORRAL_AUTHN_H
#define CORRAL_AUTHN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define CORRAL_AUTHN_MAX_GROUPS 8

enum corral_authn_method {
    CORRAL_AUTHN_ANONYMOUS = 0,
    CORRAL_AUTHN_CERT,
    CORRAL_AUTHN_TOKEN,
};

/* An authenticated (or anonymous) caller. Plain arrays: nothing to free. */
struct corral_identity {
    char name[256];
    char uid[64]; /* token table uid; "" for certificates and anonymous */
    char groups[CORRAL_AUTHN_MAX_GROUPS][128];
    int n_groups;
    enum corral_authn_method method;
};

bool corral_identity_in_group(const struct corral_identity *id, const char *group);

/*
 * The node name when id is a node's credential (user system:node:<name> in group
 * system:nodes), else NULL. Borrowed from id.
 */
const char *corral_identity_node(const struct corral_identity *id);

struct corral_authn;

struct corral_authn_config {
    const char *client_ca_pem; /* CA(s) whose client certificates are accepted; NULL = none */
    const char *tokens_file;   /* token table (init.h format); NULL = no tokens */
    const char *ca_cert_pem;   /* CA used to sign node CSRs; NULL = node join disabled */
    const char *ca_key_pem;
    int node_cert_days; /* validity of node certificates; 0 = 365 */
};

/*
 * Builds an authenticator. Returns 0 and *out, -EINVAL (a PEM or the token table does not
 * parse; logged), -errno (the token file cannot be read), -ENOMEM.
 */
int corral_authn_new(const struct corral_authn_config *cfg, struct corral_authn **out);

/*
 * The same from a directory written by `corral init`: DIR/pki/ca.crt for client certificates,
 * DIR/pki/tokens.json, DIR/pki/ca.key (when readable) for node join.
 */
int corral_authn_new_from_dir(const char *dir, struct corral_authn **out);

void corral_authn_free(struct corral_authn *a);

/* Re-reads the token table (after `corral init` or an operator changed it). Returns 0 or as
 * corral_authn_new(); on failure the old table stays in force. */
int corral_authn_reload_tokens(struct corral_authn *a);

/*
 * Authenticates one request. authorization is the Authorization header (NULL if none);
 * peer_der/peer_len the TLS client certificate (NULL/0 if none). Returns 0 and fills *out
 * (anonymous when no credential was presented), or CORRAL_EUNAUTHORIZED with a reason in why
 * ("certificate has expired", "invalid bearer token", "token expired") that is safe to log and
 * to send (it never contains the token).
 */
int corral_authn_request(struct corral_authn *a, const char *authorization,
                         const unsigned char *peer_der, size_t peer_len,
                         struct corral_identity *out, char *why, size_t why_len);

/* true for the requests an anonymous caller may make: GET or HEAD of /version, /healthz,
 * /readyz, /livez (a query string is ignored). */
bool corral_authn_anonymous_allowed(const char *method, const char *path);

/*
 * Approves and signs a node's CertificateSigningRequest object (borrowed and filled in:
 * status.conditions gets Approved, status.certificate the base64 PEM). Allowed callers: group
 * system:bootstrappers (a joining node), the node itself (renewal: the CSR must name the
 * caller's own node), and system:masters. node_exists says whether a Node object with the
 * requested name exists already; bootstrappers may not take over an existing node.
 * Returns 0; CORRAL_EFORBIDDEN (caller not allowed) or CORRAL_EINVALID (malformed request,
 * wrong signer or subject, weak key) with the reason in why; -ENOTSUP when node join is
 * disabled (no CA key); -ENOMEM.
 */
int corral_authn_sign_csr(struct corral_authn *a, const struct corral_identity *who, json_t *csr,
                          bool node_exists, char *why, size_t why_len);

/*
 * The node name a CertificateSigningRequest object asks for (from its PKCS#10 subject CN
 * system:node:<name>), copied into name. Returns 0 or CORRAL_EINVALID. Lets the caller look up
 * whether that Node exists before corral_authn_sign_csr().
 */
int corral_authn_csr_node(const json_t *csr, char *name, size_t len);

#endif
