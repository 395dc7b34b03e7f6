/* SPDX-License-Identifier: Apache-2.0 */
/*
 * credentials: the node agent's identities.
 *
 * Client side (talking to the API server): the kubeconfig given with --kubeconfig, or, when
 * that holds a bootstrap token ("abcdef.0123456789abcdef"), the node's own client
 * certificate obtained by joining: a new key, a CSR for CN=system:node:<name>, O=system:nodes
 * (signer kubernetes.io/kube-apiserver-client-kubelet), and the signed certificate written with
 * the key into <state-dir>/kubelet.kubeconfig (0600). Later starts use that file (renewing the
 * certificate, with itself, when it expires within 30 days); the bootstrap token is needed once.
 *
 * Server side (the HTTPS log endpoint the API server proxies to): a serving certificate for the
 * agent's address, issued by a CA of the node's own (<state-dir>/pki, keys 0600) whose
 * certificate the node publishes in its Node object (annotation corral.io/kubelet-serving-ca)
 * for the API server to verify against. Only the node (and cluster admins) can write that
 * annotation, so the pin is as trustworthy as the node's credentials. Both survive restarts.
 */
#ifndef CORRAL_KUBELET_CREDENTIALS_H
#define CORRAL_KUBELET_CREDENTIALS_H

#include "client.h"

#include <stdbool.h>
#include <stddef.h>

#define CORRAL_SERVING_CA_ANNOTATION "corral.io/kubelet-serving-ca"

struct corral_serving_tls {
    char *ca_pem;   /* the node's serving CA certificate (published) */
    char *cert_pem; /* serving certificate (serverAuth, IP SAN = the address) */
    char *key_pem;  /* its key (secret) */
};

/*
 * Loads the serving certificate for node/address from state_dir/pki, issuing (and saving) a
 * new one when missing, expiring within 30 days or not valid for address; the CA is created
 * once. Returns 0 and fills *out (clear with corral_serving_tls_clear), or -errno / a corral
 * code with the reason in err.
 */
int corral_credentials_serving(const char *state_dir, const char *node, const char *address,
                               struct corral_serving_tls *out, char *err, size_t errlen);

void corral_serving_tls_clear(struct corral_serving_tls *t);

/* The API server connection the agent uses. */
struct corral_node_identity {
    struct corral_client *client; /* owned */
    char *ca_pem;                 /* the cluster CA (PEM), NULL when the server is plain HTTP */
    char *server;                 /* the API server URL */
    bool joined_now;              /* a bootstrap token was exchanged during this start */
};

/*
 * Builds the agent's client: state_dir/kubelet.kubeconfig when a previous join left one, else
 * kubeconfig (server_override, when not NULL, replaces its server URL); a bootstrap token in it
 * is exchanged for a node certificate first (see the head comment). Returns 0 and fills *out
 * (clear with corral_node_identity_clear), or an error with the reason in err: the API server's
 * own words when it refuses the join.
 */
int corral_credentials_connect(const char *kubeconfig, const char *server_override,
                               const char *state_dir, const char *node,
                               struct corral_node_identity *out, char *err, size_t errlen);

void corral_node_identity_clear(struct corral_node_identity *id);

/* true when token has the bootstrap token shape [a-z0-9]{6}.[a-z0-9]{16}. */
bool corral_credentials_is_bootstrap_token(const char *token);

#endif
