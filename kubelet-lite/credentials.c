/* SPDX-License-Identifier: Apache-2.0 */
/*
 * credentials: node join and serving certificates (see credentials.h).
 */
#include "credentials.h"

#include "error.h"
#include "kubeconfig.h"
#include "log.h"
#include "meta.h"
#include "pki.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SUBSYS "credentials"
#define KUBELET_SIGNER "kubernetes.io/kube-apiserver-client-kubelet"
#define SERVING_DAYS 365
#define RENEW_BEFORE_S (30 * 86400)

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* path = dir/name; returns 0 or -ENAMETOOLONG. */
static int join_path(char *out, size_t len, const char *dir, const char *name)
{
    int n = snprintf(out, len, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* ---- serving certificates ---------------------------------------------------------------- */

void corral_serving_tls_clear(struct corral_serving_tls *t)
{
    free(t->ca_pem);
    free(t->cert_pem);
    corral_pki_free_secret(t->key_pem);
    memset(t, 0, sizeof(*t));
}

static int load_pair(const char *dir, const char *base, char **cert, char **key)
{
    char path[1100];
    char name[64];
    *cert = *key = NULL;
    snprintf(name, sizeof(name), "%s.crt", base);
    if (join_path(path, sizeof(path), dir, name) < 0 || corral_pki_read_file(path, cert, NULL) < 0)
        return -ENOENT;
    snprintf(name, sizeof(name), "%s.key", base);
    if (join_path(path, sizeof(path), dir, name) < 0 || corral_pki_read_file(path, key, NULL) < 0 ||
        !corral_pki_key_matches(*cert, *key)) {
        free(*cert);
        corral_pki_free_secret(*key);
        *cert = *key = NULL;
        return -ENOENT;
    }
    return 0;
}

static int save_pair(const char *dir, const char *base, const char *cert, const char *key)
{
    char path[1100], name[64];
    snprintf(name, sizeof(name), "%s.key", base);
    int rc = join_path(path, sizeof(path), dir, name);
    if (rc == 0)
        rc = corral_pki_write_file(path, key, strlen(key), 0600);
    snprintf(name, sizeof(name), "%s.crt", base);
    if (rc == 0)
        rc = join_path(path, sizeof(path), dir, name);
    if (rc == 0)
        rc = corral_pki_write_file(path, cert, strlen(cert), 0644);
    return rc;
}

/* true when cert is valid for a while longer and names address. */
static bool serving_cert_fits(const char *cert, const char *address)
{
    struct corral_pki_subject s;
    if (corral_pki_cert_subject(cert, &s) < 0)
        return false;
    bool ok = s.not_after - time(NULL) > RENEW_BEFORE_S && (s.usage & CORRAL_PKI_USAGE_SERVER);
    bool named = false;
    for (size_t i = 0; i < s.n_ips; i++)
        named |= strcmp(s.ip_addrs[i], address) == 0;
    corral_pki_subject_clear(&s);
    return ok && named;
}

static int ensure_ca(const char *dir, const char *node, char **ca, char **ca_key)
{
    if (load_pair(dir, "serving-ca", ca, ca_key) == 0)
        return 0;
    char cn[320];
    snprintf(cn, sizeof(cn), "corral-kubelet-serving-ca@%s", node);
    int rc = corral_pki_ca_new(cn, 10 * 365, CORRAL_PKI_KEY_ECDSA_P256, ca, ca_key);
    if (rc == 0)
        rc = save_pair(dir, "serving-ca", *ca, *ca_key);
    return rc;
}

static int issue_serving(const char *dir, const char *node, const char *address, const char *ca,
                         const char *ca_key, struct corral_serving_tls *out)
{
    const char *ips[] = {address, NULL};
    const char *dns[] = {"localhost", NULL};
    struct corral_pki_cert_spec spec = {.cn = node,
                                        .dns_names = dns,
                                        .ip_addrs = ips,
                                        .usage = CORRAL_PKI_USAGE_SERVER,
                                        .days = SERVING_DAYS};
    int rc = corral_pki_issue(ca, ca_key, &spec, NULL, CORRAL_PKI_KEY_ECDSA_P256, &out->cert_pem,
                              &out->key_pem);
    if (rc == 0)
        rc = save_pair(dir, "serving", out->cert_pem, out->key_pem);
    return rc;
}

int corral_credentials_serving(const char *state_dir, const char *node, const char *address,
                               struct corral_serving_tls *out, char *err, size_t errlen)
{
    char dir[1100];
    char *ca = NULL, *ca_key = NULL;
    memset(out, 0, sizeof(*out));
    int rc = join_path(dir, sizeof(dir), state_dir, "pki");
    if (rc == 0 && mkdir(dir, 0700) < 0 && errno != EEXIST)
        rc = -errno;
    if (rc == 0)
        rc = ensure_ca(dir, node, &ca, &ca_key);
    if (rc < 0) {
        set_err(err, errlen, "%s: cannot create the serving CA: %s", dir, corral_strerror(rc));
        goto out;
    }
    if (load_pair(dir, "serving", &out->cert_pem, &out->key_pem) == 0 &&
        !serving_cert_fits(out->cert_pem, address)) {
        free(out->cert_pem);
        corral_pki_free_secret(out->key_pem);
        out->cert_pem = out->key_pem = NULL;
    }
    if (!out->cert_pem && (rc = issue_serving(dir, node, address, ca, ca_key, out)) < 0) {
        set_err(err, errlen, "%s: cannot issue a serving certificate for %s: %s", dir, address,
                corral_strerror(rc));
        goto out;
    }
    out->ca_pem = ca;
    ca = NULL;
out:
    free(ca);
    corral_pki_free_secret(ca_key);
    if (rc < 0)
        corral_serving_tls_clear(out);
    return rc;
}

/* ---- joining ------------------------------------------------------------------------------ */

bool corral_credentials_is_bootstrap_token(const char *token)
{
    if (!token || strlen(token) != 23 || token[6] != '.')
        return false;
    for (int i = 0; i < 23; i++)
        if (i != 6 && !(islower((unsigned char)token[i]) || isdigit((unsigned char)token[i])))
            return false;
    return true;
}

void corral_node_identity_clear(struct corral_node_identity *id)
{
    corral_client_free(id->client);
    free(id->ca_pem);
    free(id->server);
    memset(id, 0, sizeof(*id));
}

/* The cluster CA PEM of kc (inline or from its file), NULL when it names none. */
static char *cluster_ca(const struct corral_kubeconfig *kc)
{
    if (kc->ca_pem)
        return strdup(kc->ca_pem);
    char *pem = NULL;
    if (kc->ca_file && corral_pki_read_file(kc->ca_file, &pem, NULL) == 0)
        return pem;
    return NULL;
}

static json_t *csr_object(const char *node, const char *csr_pem)
{
    char *b64 = corral_pki_base64_encode(csr_pem, strlen(csr_pem));
    char name[300], uid[37];
    corral_meta_new_uid(uid); /* unique: a node may ask again within the same second */
    snprintf(name, sizeof(name), "node-csr-%s-%.8s", node, uid);
    json_t *obj =
        b64 ? json_pack("{s:s, s:s, s:{s:s}, s:{s:s, s:s, s:[s,s,s]}}", "apiVersion",
                        "certificates.k8s.io/v1", "kind", "CertificateSigningRequest", "metadata",
                        "name", name, "spec", "request", b64, "signerName", KUBELET_SIGNER,
                        "usages", "digital signature", "key encipherment", "client auth")
            : NULL;
    free(b64);
    return obj;
}

/* The signed certificate in a CSR's status (PEM, caller frees), NULL while there is none. */
static char *issued_cert(const json_t *csr)
{
    const char *b64 =
        json_string_value(json_object_get(json_object_get(csr, "status"), "certificate"));
    char *pem = NULL;
    size_t len;
    if (!b64 || corral_pki_base64_decode(b64, &pem, &len) < 0)
        return NULL;
    return pem;
}

/* Posts the CSR and waits (up to a minute) for its certificate. */
static int request_cert(struct corral_client *c, const char *node, const char *key, char **cert,
                        char *err, size_t errlen)
{
    const char *orgs[] = {"system:nodes", NULL};
    char cn[300], *csr_pem = NULL;
    snprintf(cn, sizeof(cn), "system:node:%s", node);
    int rc = corral_pki_csr_new(key, cn, orgs, &csr_pem);
    json_t *obj = rc == 0 ? csr_object(node, csr_pem) : NULL, *reply = NULL;
    free(csr_pem);
    if (!obj)
        return rc < 0 ? rc : -ENOMEM;
    const char *path = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
    rc = corral_client_create(c, path, obj, &reply);
    for (int i = 0; rc == 0 && !(*cert = issued_cert(reply)) && i < 60; i++) {
        char *one = corral_client_path(
            "certificates.k8s.io/v1", "certificatesigningrequests", NULL,
            json_string_value(json_object_get(json_object_get(obj, "metadata"), "name")), NULL);
        json_decref(reply);
        reply = NULL;
        corral_client_sleep(c, 1000);
        rc = one ? corral_client_get(c, one, &reply) : -ENOMEM;
        free(one);
    }
    if (rc < 0)
        set_err(err, errlen, "joining as node %s was refused: %s", node, corral_client_error(c));
    else if (!*cert)
        set_err(err, errlen,
                "joining as node %s: the certificate request was not signed within a "
                "minute",
                node);
    json_decref(obj);
    json_decref(reply);
    return rc < 0 ? rc : *cert ? 0 : CORRAL_ETIMEOUT;
}

/* Exchanges kc's bootstrap token for a node certificate; writes path. */
static int join(const struct corral_kubeconfig *kc, const char *server, const char *node,
                const char *path, char *err, size_t errlen)
{
    struct corral_client *c = NULL;
    char *key = NULL, *cert = NULL;
    int rc = corral_kubeconfig_client(kc, server, &c);
    if (rc < 0) {
        set_err(err, errlen, "cannot build a client from the bootstrap kubeconfig");
        return rc;
    }
    rc = corral_pki_key_new(CORRAL_PKI_KEY_ECDSA_P256, &key);
    if (rc == 0)
        rc = request_cert(c, node, key, &cert, err, errlen);
    if (rc == 0) {
        char *ca = cluster_ca(kc);
        struct corral_kubeconfig out = {.context = "corral-node",
                                        .cluster = "corral",
                                        .user = (char *)node,
                                        .server = (char *)server,
                                        .ca_pem = ca,
                                        .insecure = kc->insecure,
                                        .cert_pem = cert,
                                        .key_pem = key};
        const struct corral_kubeconfig *ctx[] = {&out};
        rc = corral_kubeconfig_write(path, ctx, 1);
        if (rc < 0)
            set_err(err, errlen, "%s: cannot write the node credentials: %s", path,
                    corral_strerror(rc));
        free(ca);
    }
    corral_client_free(c);
    corral_pki_free_secret(key);
    free(cert);
    return rc;
}

static int use_kubeconfig(const char *path, const char *server_override,
                          struct corral_node_identity *out, char *err, size_t errlen)
{
    struct corral_kubeconfig kc;
    struct corral_parse_error pe = {0};
    int rc = corral_kubeconfig_load(path, NULL, &kc, &pe);
    if (rc < 0) {
        set_err(err, errlen, "%s", pe.message[0] ? pe.message : corral_strerror(rc));
        return rc;
    }
    rc = corral_kubeconfig_client(&kc, server_override, &out->client);
    if (rc < 0)
        set_err(err, errlen, "%s: cannot build an API client from it", path);
    out->ca_pem = cluster_ca(&kc);
    out->server = strdup(server_override ? server_override : kc.server);
    corral_kubeconfig_clear(&kc);
    return rc;
}

/*
 * A node certificate that expires within RENEW_BEFORE_S is renewed with itself (a node may ask
 * for its own certificate again); failing that, the agent goes on with the old one and says so.
 */
static void renew_if_expiring(const char *path, const char *server_override, const char *node)
{
    struct corral_kubeconfig kc;
    struct corral_parse_error pe = {0};
    if (corral_kubeconfig_load(path, NULL, &kc, &pe) < 0)
        return;
    struct corral_pki_subject s;
    char *cert = kc.cert_pem;
    if (!cert && kc.cert_file)
        corral_pki_read_file(kc.cert_file, &cert, NULL);
    if (cert && corral_pki_cert_subject(cert, &s) == 0) {
        time_t left = s.not_after - time(NULL);
        corral_pki_subject_clear(&s);
        char err[512];
        const char *server = server_override ? server_override : kc.server;
        if (left < RENEW_BEFORE_S) {
            corral_info(SUBSYS, "the node certificate expires in %ld days: renewing it",
                        (long)(left / 86400));
            if (join(&kc, server, node, path, err, sizeof(err)) < 0)
                corral_warn(SUBSYS, "renewing the node certificate: %s", err);
        }
    }
    if (cert != kc.cert_pem)
        free(cert);
    corral_kubeconfig_clear(&kc);
}

int corral_credentials_connect(const char *kubeconfig, const char *server_override,
                               const char *state_dir, const char *node,
                               struct corral_node_identity *out, char *err, size_t errlen)
{
    char own[1100];
    memset(out, 0, sizeof(*out));
    int rc = join_path(own, sizeof(own), state_dir, "kubelet.kubeconfig");
    if (rc < 0) {
        set_err(err, errlen, "state directory path too long");
        return rc;
    }
    if (access(own, R_OK) == 0) {
        renew_if_expiring(own, server_override, node);
        return use_kubeconfig(own, server_override, out, err, errlen);
    }
    struct corral_kubeconfig kc;
    struct corral_parse_error pe = {0};
    rc = corral_kubeconfig_load(kubeconfig, NULL, &kc, &pe);
    if (rc < 0) {
        set_err(err, errlen, "%s", pe.message[0] ? pe.message : corral_strerror(rc));
        return rc;
    }
    bool bootstrap =
        corral_credentials_is_bootstrap_token(kc.token) && !kc.cert_pem && !kc.cert_file;
    if (bootstrap) {
        const char *server = server_override ? server_override : kc.server;
        corral_info(SUBSYS, "joining as node %s with a bootstrap token", node);
        rc = join(&kc, server, node, own, err, errlen);
        corral_kubeconfig_clear(&kc);
        if (rc < 0)
            return rc;
        out->joined_now = true;
        corral_info(SUBSYS, "joined: node credentials saved in %s", own);
        return use_kubeconfig(own, server_override, out, err, errlen);
    }
    corral_kubeconfig_clear(&kc);
    return use_kubeconfig(kubeconfig, server_override, out, err, errlen);
}
