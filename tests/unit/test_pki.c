/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests for common/pki.h and common/kubeconfig.h: certificates checked by OpenSSL's verifier,
 * SANs/EKU/usages, node CSR signing and refusals, expiry, tokens, files; then real TLS:
 * a libmicrohttpd HTTPS server (GnuTLS) with a certificate issued here, reached through
 * common/client.h, with the server reading the client certificate from the TLS session the way
 * the apiserver does (gnutls_certificate_get_peers -> corral_pki_verify_der).
 */
#include "client.h"
#include "error.h"
#include "harness.h"
#include "test_scratch.h"
#include "kubeconfig.h"
#include "pki.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char *ca_cert, *ca_key;

static void free_ca(void)
{
    free(ca_cert);
    corral_pki_free_secret(ca_key);
    ca_cert = ca_key = NULL;
}

/* One CA for the whole run (freed at exit, so running a single test leaks nothing). */
static void make_ca(void)
{
    if (ca_cert)
        return;
    CHECK_INT_EQ(corral_pki_ca_new("test-ca", 30, CORRAL_PKI_KEY_ECDSA_P256, &ca_cert, &ca_key), 0);
    atexit(free_ca);
}

static bool has(char **v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

static void issue_server(const char *const *dns, const char *const *ips,
                         enum corral_pki_key_type type, char **cert, char **key)
{
    struct corral_pki_cert_spec spec = {.cn = "corral-apiserver",
                                        .dns_names = dns,
                                        .ip_addrs = ips,
                                        .usage = CORRAL_PKI_USAGE_SERVER,
                                        .days = 10};
    CHECK_INT_EQ(corral_pki_issue(ca_cert, ca_key, &spec, NULL, type, cert, key), 0);
}

static void issue_client(const char *cn, const char *const *orgs, char **cert, char **key)
{
    struct corral_pki_cert_spec spec = {
        .cn = cn, .orgs = orgs, .usage = CORRAL_PKI_USAGE_CLIENT, .days = 10};
    CHECK_INT_EQ(corral_pki_issue(ca_cert, ca_key, &spec, NULL, 0, cert, key), 0);
}

static const char *const local_dns[] = {"localhost", NULL};
static const char *const local_ips[] = {"127.0.0.1", "::1", NULL};
static const char *const admin_orgs[] = {"system:masters", NULL};

/* ------------------------------------------------------------------------------------------ */

static void test_ca_and_server_cert(void)
{
    make_ca();
    struct corral_pki_subject s;
    CHECK_INT_EQ(corral_pki_cert_subject(ca_cert, &s), 0);
    CHECK_STR_EQ(s.cn, "test-ca");
    CHECK(s.is_ca);
    CHECK(s.not_after - s.not_before >= 30 * 86400);
    corral_pki_subject_clear(&s);
    CHECK(corral_pki_key_matches(ca_cert, ca_key));

    char *cert, *key;
    issue_server(local_dns, local_ips, CORRAL_PKI_KEY_ECDSA_P256, &cert, &key);
    CHECK_STR_CONTAINS(key, "-----BEGIN PRIVATE KEY-----");
    CHECK(corral_pki_key_matches(cert, key));
    CHECK(!corral_pki_key_matches(cert, ca_key));
    CHECK_INT_EQ(corral_pki_cert_subject(cert, &s), 0);
    CHECK_STR_EQ(s.cn, "corral-apiserver");
    CHECK(!s.is_ca);
    CHECK_INT_EQ(s.usage, CORRAL_PKI_USAGE_SERVER);
    CHECK(has(s.dns_names, s.n_dns, "localhost"));
    CHECK(has(s.ip_addrs, s.n_ips, "127.0.0.1"));
    CHECK(has(s.ip_addrs, s.n_ips, "::1"));
    CHECK(s.not_before <= time(NULL) - 200); /* backdated for clock skew */
    corral_pki_subject_clear(&s);

    struct corral_pki_verifier *v;
    char why[128] = "";
    CHECK_INT_EQ(corral_pki_verifier_new(ca_cert, &v), 0);
    CHECK_INT_EQ(corral_pki_verify_pem(v, cert, 0, CORRAL_PKI_USAGE_SERVER, NULL, why, 128), 0);
    /* a serving certificate is not a client certificate */
    CHECK_INT_EQ(corral_pki_verify_pem(v, cert, 0, CORRAL_PKI_USAGE_CLIENT, NULL, why, 128),
                 CORRAL_EUNAUTHORIZED);
    CHECK_STR_CONTAINS(why, "purpose");
    /* the CA certificate itself never identifies a user */
    CHECK_INT_EQ(corral_pki_verify_pem(v, ca_cert, 0, 0, NULL, why, 128), CORRAL_EUNAUTHORIZED);
    CHECK_STR_CONTAINS(why, "CA certificate");
    corral_pki_verifier_free(v);
    free(cert);
    corral_pki_free_secret(key);
}

static void test_bad_specs(void)
{
    make_ca();
    char *cert = (char *)1, *key = (char *)1;
    const char *bad_ip[] = {"300.1.1.1", NULL};
    const char *bad_dns[] = {"not a name", NULL};
    struct corral_pki_cert_spec spec = {.cn = "x", .usage = CORRAL_PKI_USAGE_SERVER, .days = 1};
    spec.ip_addrs = bad_ip;
    CHECK_INT_EQ(corral_pki_issue(ca_cert, ca_key, &spec, NULL, 0, &cert, &key), -EINVAL);
    CHECK(cert == NULL && key == NULL);
    spec.ip_addrs = NULL;
    spec.dns_names = bad_dns;
    CHECK_INT_EQ(corral_pki_issue(ca_cert, ca_key, &spec, NULL, 0, &cert, &key), -EINVAL);
    spec.dns_names = NULL;
    spec.usage = 0;
    CHECK_INT_EQ(corral_pki_issue(ca_cert, ca_key, &spec, NULL, 0, &cert, &key), -EINVAL);
    spec.usage = CORRAL_PKI_USAGE_CLIENT;
    spec.cn = NULL;
    CHECK_INT_EQ(corral_pki_issue(ca_cert, ca_key, &spec, NULL, 0, &cert, &key), -EINVAL);
    spec.cn = "x";
    /* a CA key that does not belong to the CA certificate */
    char *other_key;
    CHECK_INT_EQ(corral_pki_key_new(CORRAL_PKI_KEY_ECDSA_P256, &other_key), 0);
    CHECK_INT_EQ(corral_pki_issue(ca_cert, other_key, &spec, NULL, 0, &cert, &key), -EINVAL);
    CHECK_INT_EQ(corral_pki_issue("garbage", ca_key, &spec, NULL, 0, &cert, &key), -EINVAL);
    /* an existing key: the certificate is for it and no key comes back */
    CHECK_INT_EQ(corral_pki_issue(ca_cert, ca_key, &spec, other_key, 0, &cert, NULL), 0);
    CHECK(corral_pki_key_matches(cert, other_key));
    free(cert);
    corral_pki_free_secret(other_key);
    CHECK_INT_EQ(corral_pki_key_new((enum corral_pki_key_type)9, &other_key), -EINVAL);
}

static void test_verify_chain_and_expiry(void)
{
    make_ca();
    char *cert, *key, *ca2, *ca2_key, why[128];
    issue_client("alice", NULL, &cert, &key);
    CHECK_INT_EQ(corral_pki_ca_new("other-ca", 30, CORRAL_PKI_KEY_RSA_2048, &ca2, &ca2_key), 0);
    struct corral_pki_verifier *v, *v2, *both;
    CHECK_INT_EQ(corral_pki_verifier_new(ca_cert, &v), 0);
    CHECK_INT_EQ(corral_pki_verifier_new(ca2, &v2), 0);
    char bundle[8192];
    snprintf(bundle, sizeof(bundle), "%s%s", ca2, ca_cert);
    CHECK_INT_EQ(corral_pki_verifier_new(bundle, &both), 0);
    struct corral_pki_subject s;
    CHECK_INT_EQ(corral_pki_verify_pem(v, cert, 0, CORRAL_PKI_USAGE_CLIENT, &s, why, 128), 0);
    CHECK_STR_EQ(s.cn, "alice");
    CHECK_INT_EQ(s.n_orgs, 0);
    time_t not_after = s.not_after, not_before = s.not_before;
    corral_pki_subject_clear(&s);
    CHECK_INT_EQ(corral_pki_verify_pem(both, cert, 0, CORRAL_PKI_USAGE_CLIENT, NULL, why, 128), 0);
    /* signed by another CA */
    CHECK_INT_EQ(corral_pki_verify_pem(v2, cert, 0, CORRAL_PKI_USAGE_CLIENT, NULL, why, 128),
                 CORRAL_EUNAUTHORIZED);
    CHECK_STR_CONTAINS(why, "issuer");
    /* expired, and not yet valid */
    CHECK_INT_EQ(corral_pki_verify_pem(v, cert, not_after + 60, 0, NULL, why, 128),
                 CORRAL_EUNAUTHORIZED);
    CHECK_STR_CONTAINS(why, "expired");
    CHECK_INT_EQ(corral_pki_verify_pem(v, cert, not_before - 60, 0, NULL, why, 128),
                 CORRAL_EUNAUTHORIZED);
    CHECK_STR_CONTAINS(why, "not yet valid");
    CHECK_INT_EQ(corral_pki_verify_pem(v, "junk", 0, 0, NULL, why, 128), -EINVAL);
    CHECK_INT_EQ(corral_pki_verify_der(v, (const unsigned char *)"junk", 4, 0, 0, NULL, why, 128),
                 -EINVAL);
    struct corral_pki_verifier *none;
    CHECK_INT_EQ(corral_pki_verifier_new("no certificates here", &none), -EINVAL);
    corral_pki_verifier_free(v);
    corral_pki_verifier_free(v2);
    corral_pki_verifier_free(both);
    free(cert);
    corral_pki_free_secret(key);
    free(ca2);
    corral_pki_free_secret(ca2_key);
}

static char *rsa_key_pem(int bits)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    BIO *b = BIO_new(BIO_s_mem());
    CHECK(k && b && PEM_write_bio_PKCS8PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) == 1);
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *s = strndup(data, (size_t)n);
    BIO_free(b);
    EVP_PKEY_free(k);
    return s;
}

static void test_node_csr(void)
{
    make_ca();
    char *key, *csr, *cert, why[160] = "";
    const char *nodes[] = {"system:nodes", NULL};
    CHECK_INT_EQ(corral_pki_key_new(CORRAL_PKI_KEY_ECDSA_P256, &key), 0);
    CHECK_INT_EQ(corral_pki_csr_new(key, "system:node:gpu-1", nodes, &csr), 0);
    CHECK_STR_CONTAINS(csr, "BEGIN CERTIFICATE REQUEST");
    CHECK_INT_EQ(corral_pki_sign_node_csr(ca_cert, ca_key, csr, "gpu-1", 5, &cert, why, 160), 0);
    struct corral_pki_verifier *v;
    struct corral_pki_subject s;
    CHECK_INT_EQ(corral_pki_verifier_new(ca_cert, &v), 0);
    CHECK_INT_EQ(corral_pki_verify_pem(v, cert, 0, CORRAL_PKI_USAGE_CLIENT, &s, why, 160), 0);
    CHECK_STR_EQ(s.cn, "system:node:gpu-1");
    CHECK_INT_EQ(s.n_orgs, 1);
    CHECK_STR_EQ(s.orgs[0], "system:nodes");
    CHECK_INT_EQ(s.usage, CORRAL_PKI_USAGE_CLIENT);
    CHECK(s.not_after - s.not_before <= 5 * 86400 + 400);
    corral_pki_subject_clear(&s);
    CHECK(corral_pki_key_matches(cert, key));
    free(cert);
    /* the CSR names another node */
    CHECK_INT_EQ(corral_pki_sign_node_csr(ca_cert, ca_key, csr, "gpu-2", 5, &cert, why, 160),
                 CORRAL_EINVALID);
    CHECK_STR_CONTAINS(why, "CN=system:node:");
    CHECK(cert == NULL);
    free(csr);
    /* asking for system:masters on top */
    const char *greedy[] = {"system:nodes", "system:masters", NULL};
    CHECK_INT_EQ(corral_pki_csr_new(key, "system:node:gpu-1", greedy, &csr), 0);
    CHECK_INT_EQ(corral_pki_sign_node_csr(ca_cert, ca_key, csr, "gpu-1", 5, &cert, why, 160),
                 CORRAL_EINVALID);
    free(csr);
    /* tampered with after signing: the subject no longer matches the signature */
    CHECK_INT_EQ(corral_pki_csr_new(key, "system:node:gpu-1", nodes, &csr), 0);
    char *mid = csr + strlen(csr) / 2;
    *mid = *mid == 'A' ? 'B' : 'A';
    CHECK_INT_EQ(corral_pki_sign_node_csr(ca_cert, ca_key, csr, "gpu-1", 5, &cert, why, 160),
                 CORRAL_EINVALID);
    free(csr);
    /* a weak key */
    char *weak = rsa_key_pem(1024);
    CHECK_INT_EQ(corral_pki_csr_new(weak, "system:node:gpu-1", nodes, &csr), 0);
    CHECK_INT_EQ(corral_pki_sign_node_csr(ca_cert, ca_key, csr, "gpu-1", 5, &cert, why, 160),
                 CORRAL_EINVALID);
    CHECK_STR_CONTAINS(why, "2048");
    free(csr);
    free(weak);
    /* a bad node name */
    CHECK_INT_EQ(corral_pki_sign_node_csr(ca_cert, ca_key, "x", "GPU_1", 5, &cert, why, 160),
                 CORRAL_EINVALID);
    corral_pki_verifier_free(v);
    corral_pki_free_secret(key);
}

static void test_tokens_and_encoding(void)
{
    char *t, id[7];
    CHECK_INT_EQ(corral_pki_token_new(32, &t), 0);
    CHECK_INT_EQ(strlen(t), 32);
    CHECK_INT_EQ(strspn(t, "abcdefghijklmnopqrstuvwxyz0123456789"), 32);
    char *t2;
    CHECK_INT_EQ(corral_pki_token_new(32, &t2), 0);
    CHECK(strcmp(t, t2) != 0);
    CHECK(corral_pki_equal(t, 32, t, 32));
    CHECK(!corral_pki_equal(t, 32, t2, 32));
    CHECK(!corral_pki_equal(t, 32, t, 31));
    corral_pki_free_secret(t);
    corral_pki_free_secret(t2);
    CHECK_INT_EQ(corral_pki_token_new(0, &t), -EINVAL);
    CHECK_INT_EQ(corral_pki_bootstrap_token_new(&t, id), 0);
    CHECK_INT_EQ(strlen(t), 23);
    CHECK(t[6] == '.');
    CHECK(strncmp(t, id, 6) == 0);
    corral_pki_free_secret(t);
    char hex[65];
    corral_pki_sha256_hex("abc", 3, hex);
    CHECK_STR_EQ(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    char *b64 = corral_pki_base64_encode("hello, corral", 13), *dec;
    size_t len;
    CHECK_STR_EQ(b64, "aGVsbG8sIGNvcnJhbA==");
    CHECK_INT_EQ(corral_pki_base64_decode("aGVsbG8s\nIGNvcnJh bA==", &dec, &len), 0);
    CHECK_INT_EQ(len, 13);
    CHECK_STR_EQ(dec, "hello, corral");
    free(dec);
    free(b64);
    CHECK_INT_EQ(corral_pki_base64_decode("abc", &dec, &len), -EINVAL);
    CHECK_INT_EQ(corral_pki_base64_decode("ab!d", &dec, &len), -EINVAL);
    CHECK_INT_EQ(corral_pki_base64_decode("", &dec, &len), 0);
    CHECK_INT_EQ(len, 0);
    free(dec);
}

static char *tmpdir(void)
{
    return test_scratch_dir();
}

static void rmtree(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK_INT_EQ(system(cmd), 0);
}

static void test_files(void)
{
    char *dir = tmpdir(), path[256], *data;
    size_t len;
    struct stat st;
    snprintf(path, sizeof(path), "%s/secret", dir);
    CHECK_INT_EQ(corral_pki_write_file(path, "one", 3, 0600), 0);
    CHECK_INT_EQ(corral_pki_write_file(path, "two!", 4, 0600), 0);
    CHECK_INT_EQ(stat(path, &st), 0);
    CHECK_INT_EQ(st.st_mode & 0777, 0600);
    CHECK_INT_EQ(corral_pki_read_file(path, &data, &len), 0);
    CHECK_INT_EQ(len, 4);
    CHECK_STR_EQ(data, "two!");
    free(data);
    snprintf(path, sizeof(path), "%s/public", dir);
    CHECK_INT_EQ(corral_pki_write_file(path, "x", 1, 0644), 0);
    CHECK_INT_EQ(stat(path, &st), 0);
    CHECK_INT_EQ(st.st_mode & 0777, 0644);
    CHECK_INT_EQ(corral_pki_read_file("/nonexistent/x", &data, &len), -ENOENT);
    snprintf(path, sizeof(path), "%s/missing-dir/x", dir);
    CHECK_INT_EQ(corral_pki_write_file(path, "x", 1, 0600), -ENOENT);
    rmtree(dir);
    free(dir);
}

/* ------------------------------------------------------------------------------------------ */
/* kubeconfig                                                                                  */

static void write_text(const char *path, const char *text)
{
    CHECK_INT_EQ(corral_pki_write_file(path, text, strlen(text), 0600), 0);
}

static void test_kubeconfig_roundtrip(void)
{
    make_ca();
    char *dir = tmpdir(), path[256];
    char *cert, *key;
    issue_client("admin", admin_orgs, &cert, &key);
    struct corral_kubeconfig a = {.context = "admin@c",
                                  .cluster = "c",
                                  .user = "admin",
                                  .server = "https://127.0.0.1:6443",
                                  .ca_pem = ca_cert,
                                  .cert_pem = cert,
                                  .key_pem = key,
                                  .ns = "team-a"};
    struct corral_kubeconfig b = {.context = "tok@c",
                                  .cluster = "c",
                                  .user = "tok",
                                  .server = "https://127.0.0.1:6443",
                                  .ca_pem = ca_cert,
                                  .token = "abc123"};
    const struct corral_kubeconfig *ctxs[] = {&a, &b};
    snprintf(path, sizeof(path), "%s/config", dir);
    CHECK_INT_EQ(corral_kubeconfig_write(path, ctxs, 2), 0);
    struct stat st;
    CHECK_INT_EQ(stat(path, &st), 0);
    CHECK_INT_EQ(st.st_mode & 0777, 0600);

    struct corral_kubeconfig kc;
    struct corral_parse_error err = {0};
    CHECK_INT_EQ(corral_kubeconfig_load(path, NULL, &kc, &err), 0);
    CHECK_STR_EQ(kc.context, "admin@c");
    CHECK_STR_EQ(kc.server, "https://127.0.0.1:6443");
    CHECK_STR_EQ(kc.ns, "team-a");
    CHECK_STR_EQ(kc.ca_pem, ca_cert);
    CHECK_STR_EQ(kc.cert_pem, cert);
    CHECK_STR_EQ(kc.key_pem, key);
    CHECK(kc.token == NULL);
    corral_kubeconfig_clear(&kc);
    CHECK_INT_EQ(corral_kubeconfig_load(path, "tok@c", &kc, &err), 0);
    CHECK_STR_EQ(kc.token, "abc123");
    CHECK(kc.cert_pem == NULL);
    corral_kubeconfig_clear(&kc);
    CHECK_INT_EQ(corral_kubeconfig_load(path, "nope", &kc, &err), CORRAL_EINVALID);
    CHECK_STR_CONTAINS(err.message, "context \"nope\" not found");
    CHECK_STR_CONTAINS(err.message, path);
    free(cert);
    corral_pki_free_secret(key);
    rmtree(dir);
    free(dir);
}

static void test_kubeconfig_files_and_errors(void)
{
    char *dir = tmpdir(), path[256], tok[256];
    snprintf(tok, sizeof(tok), "%s/token", dir);
    write_text(tok, "filetoken\n");
    snprintf(path, sizeof(path), "%s/config", dir);
    write_text(path, "apiVersion: v1\nkind: Config\ncurrent-context: dev\n"
                     "clusters:\n- name: dev\n  cluster:\n    server: https://10.0.0.1:6443\n"
                     "    certificate-authority: pki/ca.crt\n    insecure-skip-tls-verify: true\n"
                     "users:\n- name: me\n  user:\n    tokenFile: token\n"
                     "    client-certificate: /abs/me.crt\n    client-key: me.key\n"
                     "contexts:\n- name: dev\n  context: {cluster: dev, user: me}\n");
    struct corral_kubeconfig kc;
    struct corral_parse_error err = {0};
    CHECK_INT_EQ(corral_kubeconfig_load(path, NULL, &kc, &err), 0);
    char want[300];
    snprintf(want, sizeof(want), "%s/pki/ca.crt", dir);
    CHECK_STR_EQ(kc.ca_file, want);
    CHECK(kc.insecure);
    CHECK_STR_EQ(kc.token, "filetoken");
    CHECK_STR_EQ(kc.cert_file, "/abs/me.crt");
    snprintf(want, sizeof(want), "%s/me.key", dir);
    CHECK_STR_EQ(kc.key_file, want);
    corral_kubeconfig_clear(&kc);

    /* a relative path handed to the writer is relative to the working directory: it is
     * stored absolute, so that reading the file (relative to its own directory) finds it */
    char cwd[200], sub[300], written[300];
    CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
    snprintf(sub, sizeof(sub), "%s/sub", dir);
    CHECK(mkdir(sub, 0700) == 0);
    snprintf(written, sizeof(written), "%s/sub/config", dir);
    CHECK(chdir(dir) == 0);
    struct corral_kubeconfig rel = {.context = "c", .cluster = "c", .user = "u",
                                    .server = "https://127.0.0.1:1", .ca_file = "./pki/ca.crt",
                                    .cert_file = "sub/u.crt", .key_file = "sub/u.key"};
    const struct corral_kubeconfig *rels[] = {&rel};
    CHECK_INT_EQ(corral_kubeconfig_write("sub/config", rels, 1), 0);
    CHECK(chdir(cwd) == 0);
    CHECK_INT_EQ(corral_kubeconfig_load(written, NULL, &kc, &err), 0);
    snprintf(want, sizeof(want), "%s/pki/ca.crt", dir);
    CHECK_STR_EQ(kc.ca_file, want);
    snprintf(want, sizeof(want), "%s/sub/u.key", dir);
    CHECK_STR_EQ(kc.key_file, want);
    corral_kubeconfig_clear(&kc);

    write_text(path, "current-context: dev\nclusters: [{name: dev, cluster: {server: "
                     "https://x}}]\nusers: [{name: me, user: {exec: {command: aws}}}]\n"
                     "contexts: [{name: dev, context: {cluster: dev, user: me}}]\n");
    CHECK_INT_EQ(corral_kubeconfig_load(path, NULL, &kc, &err), CORRAL_EINVALID);
    CHECK_STR_CONTAINS(err.message, "\"exec\" is not supported");
    write_text(path, "current-context: dev\nclusters: [{name: dev, cluster: {}}]\n"
                     "contexts: [{name: dev, context: {cluster: dev}}]\n");
    CHECK_INT_EQ(corral_kubeconfig_load(path, NULL, &kc, &err), CORRAL_EINVALID);
    CHECK_STR_CONTAINS(err.message, "has no server");
    write_text(path, "clusters: [\n  {name: dev,\n  - x\n");
    CHECK_INT_EQ(corral_kubeconfig_load(path, NULL, &kc, &err), CORRAL_EPARSE);
    CHECK(err.line > 0);
    CHECK_STR_CONTAINS(err.message, path);
    write_text(path, "users: [{name: me, user: {client-key-data: '!!!'}}]\ncurrent-context: d\n"
                     "clusters: [{name: dev, cluster: {server: https://x}}]\n"
                     "contexts: [{name: d, context: {cluster: dev, user: me}}]\n");
    CHECK_INT_EQ(corral_kubeconfig_load(path, NULL, &kc, &err), CORRAL_EINVALID);
    CHECK_STR_CONTAINS(err.message, "base64");
    snprintf(path, sizeof(path), "%s/none", dir);
    CHECK_INT_EQ(corral_kubeconfig_load(path, NULL, &kc, &err), -ENOENT);
    setenv("KUBECONFIG", "/a/b:/c/d", 1);
    char *def = corral_kubeconfig_default_path();
    CHECK_STR_EQ(def, "/a/b");
    free(def);
    unsetenv("KUBECONFIG");
    rmtree(dir);
    free(dir);
}

/* ------------------------------------------------------------------------------------------ */
/* Real TLS                                                                                    */

struct tls_server {
    struct MHD_Daemon *d;
    int port;
    struct corral_pki_verifier *v;
};

/* Replies {"user":..., "groups":[...]} from the verified client certificate, or anonymous. */
static enum MHD_Result whoami(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *size, void **con_cls)
{
    struct tls_server *srv = cls;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    unsigned int n = 0;
    const gnutls_datum_t *peers = ci ? gnutls_certificate_get_peers(ci->tls_session, &n) : NULL;
    json_t *reply = json_pack("{s:s}", "user", "system:anonymous");
    if (peers && n > 0) {
        struct corral_pki_subject s;
        char why[128];
        if (corral_pki_verify_der(srv->v, peers[0].data, peers[0].size, 0, CORRAL_PKI_USAGE_CLIENT,
                                  &s, why, sizeof(why)) == 0) {
            json_t *groups = json_array();
            for (size_t i = 0; i < s.n_orgs; i++)
                json_array_append_new(groups, json_string(s.orgs[i]));
            json_object_set_new(reply, "user", json_string(s.cn));
            json_object_set_new(reply, "groups", groups);
            corral_pki_subject_clear(&s);
        } else {
            json_object_set_new(reply, "why", json_string(why));
        }
    }
    char *text = json_dumps(reply, JSON_COMPACT);
    json_decref(reply);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static void tls_start(struct tls_server *srv, const char *cert, const char *key)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_INT_EQ(corral_pki_verifier_new(ca_cert, &srv->v), 0);
    srv->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                                  MHD_USE_TLS | MHD_USE_ERROR_LOG,
                              0, NULL, NULL, whoami, srv, MHD_OPTION_SOCK_ADDR, &sa,
                              MHD_OPTION_HTTPS_MEM_CERT, cert, MHD_OPTION_HTTPS_MEM_KEY, key,
                              MHD_OPTION_HTTPS_MEM_TRUST, ca_cert, MHD_OPTION_END);
    CHECK(srv->d != NULL);
    srv->port = MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_BIND_PORT)->port;
}

static void tls_stop(struct tls_server *srv)
{
    MHD_stop_daemon(srv->d);
    corral_pki_verifier_free(srv->v);
}

/* GET /whoami through a client built from cfg; returns the rc and the user (or ""). */
static int ask(struct corral_client_config *cfg, char *user, size_t len)
{
    struct corral_client *c;
    json_t *out = NULL;
    CHECK_INT_EQ(corral_client_new(cfg, &c), 0);
    int rc = corral_client_get(c, "/whoami", &out);
    snprintf(user, len, "%s", out ? json_string_value(json_object_get(out, "user")) : "");
    if (out && json_array_size(json_object_get(out, "groups")) > 0) {
        size_t n = strlen(user);
        snprintf(user + n, len - n, "/%s",
                 json_string_value(json_array_get(json_object_get(out, "groups"), 0)));
    }
    if (rc)
        fprintf(stderr, "client: %s\n", corral_client_error(c));
    json_decref(out);
    corral_client_free(c);
    return rc;
}

static void tls_scenarios(enum corral_pki_key_type type)
{
    make_ca();
    char *srv_cert, *srv_key, *adm_cert, *adm_key, url[64], user[128];
    issue_server(local_dns, local_ips, type, &srv_cert, &srv_key);
    issue_client("admin", admin_orgs, &adm_cert, &adm_key);
    struct tls_server srv;
    tls_start(&srv, srv_cert, srv_key);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d", srv.port);
    struct corral_client_config cfg = {.server = url, .ca_pem = ca_cert, .timeout_ms = 5000};
    CHECK_INT_EQ(ask(&cfg, user, sizeof(user)), 0);
    CHECK_STR_EQ(user, "system:anonymous");
    cfg.cert_pem = adm_cert;
    cfg.key_pem = adm_key;
    CHECK_INT_EQ(ask(&cfg, user, sizeof(user)), 0);
    CHECK_STR_EQ(user, "admin/system:masters");
    /* by DNS name too */
    char url2[64];
    snprintf(url2, sizeof(url2), "https://localhost:%d", srv.port);
    cfg.server = url2;
    CHECK_INT_EQ(ask(&cfg, user, sizeof(user)), 0);
    cfg.server = url;
    /* a client that trusts another CA refuses the server, unless told to skip verification */
    char *ca2, *ca2_key;
    CHECK_INT_EQ(corral_pki_ca_new("other", 1, CORRAL_PKI_KEY_ECDSA_P256, &ca2, &ca2_key), 0);
    cfg.ca_pem = ca2;
    CHECK_INT_EQ(ask(&cfg, user, sizeof(user)), -EPROTO);
    cfg.insecure_skip_verify = true;
    CHECK_INT_EQ(ask(&cfg, user, sizeof(user)), 0);
    cfg.insecure_skip_verify = false;
    cfg.ca_pem = ca_cert;
    free(ca2);
    corral_pki_free_secret(ca2_key);
    tls_stop(&srv);
    free(srv_cert);
    corral_pki_free_secret(srv_key);
    free(adm_cert);
    corral_pki_free_secret(adm_key);
}

static void test_tls_ecdsa(void)
{
    tls_scenarios(CORRAL_PKI_KEY_ECDSA_P256);
}

static void test_tls_rsa(void)
{
    tls_scenarios(CORRAL_PKI_KEY_RSA_2048);
}

static void test_tls_name_mismatch(void)
{
    make_ca();
    char *cert, *key, url[64], user[64];
    const char *dns[] = {"api.example.com", NULL};
    issue_server(dns, NULL, CORRAL_PKI_KEY_ECDSA_P256, &cert, &key);
    struct tls_server srv;
    tls_start(&srv, cert, key);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d", srv.port);
    struct corral_client_config cfg = {.server = url, .ca_pem = ca_cert, .timeout_ms = 5000};
    CHECK_INT_EQ(ask(&cfg, user, sizeof(user)), -EPROTO); /* no IP SAN for 127.0.0.1 */
    tls_stop(&srv);
    free(cert);
    corral_pki_free_secret(key);
}

static void test_tls_node_join_and_kubeconfig(void)
{
    make_ca();
    char *srv_cert, *srv_key, *key, *csr, *cert, why[128], url[64], user[128], path[256];
    const char *nodes[] = {"system:nodes", NULL};
    issue_server(local_dns, local_ips, CORRAL_PKI_KEY_ECDSA_P256, &srv_cert, &srv_key);
    struct tls_server srv;
    tls_start(&srv, srv_cert, srv_key);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d", srv.port);
    /* the node makes a key and a CSR, the CA signs it, the node uses it via a kubeconfig file */
    CHECK_INT_EQ(corral_pki_key_new(CORRAL_PKI_KEY_ECDSA_P256, &key), 0);
    CHECK_INT_EQ(corral_pki_csr_new(key, "system:node:gpu-7", nodes, &csr), 0);
    CHECK_INT_EQ(corral_pki_sign_node_csr(ca_cert, ca_key, csr, "gpu-7", 1, &cert, why, 128), 0);
    char *dir = tmpdir();
    struct corral_kubeconfig kc = {.context = "node",
                                   .cluster = "c",
                                   .user = "node",
                                   .server = "https://127.0.0.1:1",
                                   .ca_pem = ca_cert,
                                   .cert_pem = cert,
                                   .key_pem = key};
    const struct corral_kubeconfig *ctxs[] = {&kc};
    snprintf(path, sizeof(path), "%s/node.kubeconfig", dir);
    CHECK_INT_EQ(corral_kubeconfig_write(path, ctxs, 1), 0);
    struct corral_client *c;
    json_t *out;
    CHECK_INT_EQ(corral_kubeconfig_client_from_file(path, url, &c), 0); /* --apiserver wins */
    CHECK_INT_EQ(corral_client_get(c, "/whoami", &out), 0);
    snprintf(user, sizeof(user), "%s", json_string_value(json_object_get(out, "user")));
    CHECK_STR_EQ(user, "system:node:gpu-7");
    json_decref(out);
    corral_client_free(c);
    rmtree(dir);
    free(dir);
    tls_stop(&srv);
    free(csr);
    free(cert);
    corral_pki_free_secret(key);
    free(srv_cert);
    corral_pki_free_secret(srv_key);
}

CORRAL_TESTS(CORRAL_TEST(ca_and_server_cert), CORRAL_TEST(bad_specs),
             CORRAL_TEST(verify_chain_and_expiry), CORRAL_TEST(node_csr),
             CORRAL_TEST(tokens_and_encoding), CORRAL_TEST(files),
             CORRAL_TEST(kubeconfig_roundtrip), CORRAL_TEST(kubeconfig_files_and_errors),
             CORRAL_TEST(tls_ecdsa), CORRAL_TEST(tls_rsa), CORRAL_TEST(tls_name_mismatch),
             CORRAL_TEST(tls_node_join_and_kubeconfig))
