/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kubeconfig: read and write kubectl's client configuration files, and build a corral client
 * from one.
 *
 * Reading resolves one context (the file's current-context unless another is named) to its
 * cluster (server, certificate-authority or certificate-authority-data,
 * insecure-skip-tls-verify) and its user (token or tokenFile, client-certificate(-data) and
 * client-key(-data)), with the namespace of the context. Relative file paths are resolved
 * against the kubeconfig's directory, as kubectl does. Fields corral does not implement
 * (exec and auth-provider plugins, username/password) are refused with a clear error rather
 * than ignored, so a user never silently runs unauthenticated.
 *
 * Writing produces a file kubectl reads as is: clusters, users and contexts lists, the
 * certificate-authority-data / client-*-data fields base64-encoded, written atomically 0600.
 */
#ifndef CORRAL_KUBECONFIG_H
#define CORRAL_KUBECONFIG_H

#include "client.h"
#include "yamljson.h"

#include <stdbool.h>
#include <stddef.h>

/* One resolved context. All strings malloc'd (NULL = not set); the PEM fields are the decoded
 * *-data values. kubeconfig_clear() wipes the secrets before freeing. */
struct corral_kubeconfig {
    char *context;   /* context name */
    char *cluster;   /* cluster name */
    char *user;      /* user (authInfo) name */
    char *ns;        /* the context's namespace, NULL if none */
    char *server;    /* cluster server URL */
    char *ca_file;   /* certificate-authority (absolute path) */
    char *ca_pem;    /* certificate-authority-data, decoded */
    bool insecure;   /* insecure-skip-tls-verify */
    char *token;     /* token, or the contents of tokenFile */
    char *cert_file; /* client-certificate (absolute path) */
    char *key_file;  /* client-key (absolute path) */
    char *cert_pem;  /* client-certificate-data, decoded */
    char *key_pem;   /* client-key-data, decoded */
};

void corral_kubeconfig_clear(struct corral_kubeconfig *kc);

/*
 * The file kubectl would read: the first entry of $KUBECONFIG (colon-separated) when set, else
 * $HOME/.kube/config. Returns a malloc'd path (caller frees) or NULL (ENOMEM, or no HOME).
 */
char *corral_kubeconfig_default_path(void);

/*
 * Reads path and resolves context (NULL = current-context). Returns 0 and fills *out (caller
 * clears it); -errno when the file cannot be read; CORRAL_EPARSE for YAML errors;
 * CORRAL_EINVALID when the context, cluster or user is missing or unusable. err (may be NULL)
 * receives a message naming the file and the problem, and the line for YAML errors.
 */
int corral_kubeconfig_load(const char *path, const char *context, struct corral_kubeconfig *out,
                           struct corral_parse_error *err);

/*
 * A client for kc; server_override (NULL = none) replaces the cluster's server URL, which is
 * how `--apiserver URL --kubeconfig FILE` combine. Returns 0 and *out, or corral_client_new()'s
 * errors.
 */
int corral_kubeconfig_client(const struct corral_kubeconfig *kc, const char *server_override,
                             struct corral_client **out);

/*
 * One-step form for daemons: load path's current context (path NULL = the default path) and
 * build a client. Errors are logged with their reason. Returns 0 and *out, or as above.
 */
int corral_kubeconfig_client_from_file(const char *path, const char *server_override,
                                       struct corral_client **out);

/*
 * Renders contexts[0..n) as one kubeconfig document (contexts[0] becomes current-context).
 * Each entry needs context, cluster, user and server; entries may share a cluster. PEM fields
 * become *-data (base64), file fields stay paths. Returns malloc'd YAML (free with
 * corral_pki_free_secret: it holds credentials) or NULL when an entry is incomplete or on ENOMEM.
 */
char *corral_kubeconfig_render(const struct corral_kubeconfig *const *contexts, size_t n);

/* Renders as above and writes path atomically with mode 0600. Returns 0, -EINVAL, -errno. */
int corral_kubeconfig_write(const char *path, const struct corral_kubeconfig *const *contexts,
                            size_t n);

#endif
