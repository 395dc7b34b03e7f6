/* SPDX-License-Identifier: Apache-2.0 */
/*
 * init: `corral init`, which creates a cluster's credentials in one directory.
 *
 *   corral init --dir DIR [--address ADDR]... [--port 6443] [--force]
 *               [--bootstrap-tokens N] [--token-ttl 24h] [--days 365] [--ca-days 3650]
 *               [--key-type ecdsa|rsa]
 *
 * It writes (keys and tokens 0600, certificates 0644, directories 0700):
 *
 *   DIR/pki/ca.crt, ca.key               the cluster CA (CN=corral-ca)
 *   DIR/pki/apiserver.crt, apiserver.key the API serving certificate: serverAuth, with an IP or
 *                                        DNS subjectAltName for every address (always
 *                                        127.0.0.1 and localhost; 0.0.0.0 / :: expand to every
 *                                        local interface address and the host name)
 *   DIR/pki/admin.crt, admin.key         the admin client certificate (CN=admin,
 *                                        O=system:masters, clientAuth)
 *   DIR/pki/apiserver-kubelet-client.crt, .key
 *                                        what the apiserver shows node agents (pod logs):
 *                                        CN=kube-apiserver-kubelet-client, clientAuth, no
 *                                        groups, so it grants nothing in RBAC
 *   DIR/pki/tokens.json                  the server's token table: SHA-256 hashes only
 *   DIR/admin.token                      the admin bearer token, for the operator
 *   DIR/bootstrap-tokens                 node bootstrap tokens, one "TOKEN EXPIRY" per line
 *   DIR/admin.kubeconfig                 kubectl config: context admin@corral (client
 *                                        certificate, current) and admin-token@corral (token)
 *
 * tokens.json is {"apiVersion":"corral.io/v1","kind":"TokenList","items":[ITEM...]} where ITEM
 * is {"sha256": hex of the whole token, "user": name, "uid": uid, "groups": [...],
 *     "expires": RFC 3339 (optional), "bootstrapId": the 6-char id (bootstrap tokens only)}.
 * The admin token maps to user "admin" in group "system:masters"; a bootstrap token
 * "abcdef.<secret>" to user "system:bootstrap:abcdef" in group "system:bootstrappers".
 *
 * Re-running init when DIR/pki/ca.crt or ca.key exists fails (exit 1, nothing written) unless
 * --force is given, which replaces the CA and everything signed by it. No secret is logged or
 * printed; the summary names files only.
 */
#ifndef CORRAL_INIT_H
#define CORRAL_INIT_H

#include "pki.h"

#include <stdbool.h>
#include <stddef.h>

#define CORRAL_INIT_CA_CERT "pki/ca.crt"
#define CORRAL_INIT_CA_KEY "pki/ca.key"
#define CORRAL_INIT_SERVER_CERT "pki/apiserver.crt"
#define CORRAL_INIT_SERVER_KEY "pki/apiserver.key"
#define CORRAL_INIT_ADMIN_CERT "pki/admin.crt"
#define CORRAL_INIT_ADMIN_KEY "pki/admin.key"
#define CORRAL_INIT_KUBELET_CLIENT_CERT "pki/apiserver-kubelet-client.crt"
#define CORRAL_INIT_KUBELET_CLIENT_KEY "pki/apiserver-kubelet-client.key"
#define CORRAL_INIT_KUBELET_CLIENT_CN "kube-apiserver-kubelet-client"
#define CORRAL_INIT_TOKENS "pki/tokens.json"
#define CORRAL_INIT_ADMIN_TOKEN "admin.token"
#define CORRAL_INIT_BOOTSTRAP_TOKENS "bootstrap-tokens"
#define CORRAL_INIT_KUBECONFIG "admin.kubeconfig"

struct corral_init_opts {
    const char *dir;              /* required */
    const char *const *addresses; /* NULL-terminated; IPs or DNS names (may be NULL) */
    int port;                     /* the apiserver's port for the kubeconfig; 0 = 6443 */
    bool force;                   /* replace an existing CA */
    int bootstrap_tokens;         /* how many node bootstrap tokens (>= 0) */
    long token_ttl_s;             /* bootstrap token lifetime; 0 = 24 h */
    int cert_days;                /* serving and admin certificates; 0 = 365 */
    int ca_days;                  /* 0 = 3650 */
    enum corral_pki_key_type key_type;
    bool quiet; /* no summary on stdout */
};

/*
 * Creates everything described above. Returns 0; -EEXIST when a CA exists and force is not
 * set; -EINVAL for a bad option (logged); -errno for file errors; CORRAL_EINTERNAL.
 */
int corral_init_run(const struct corral_init_opts *opts);

/* The `corral init` subcommand (argv[0] = "init"). Returns the process exit status. */
int corral_init_main(int argc, char **argv);

#endif
