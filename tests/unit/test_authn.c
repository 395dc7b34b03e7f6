/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests for apiserver/authn.h (tokens, client certificates, anonymous access, node join) and
 * apiserver/audit.h (JSON lines, concurrency, file mode), on credentials made by `corral init`
 * in a temporary directory.
 */
#include "audit.h"
#include "authn.h"
#include "error.h"
#include "harness.h"
#include "test_scratch.h"
#include "init.h"
#include "pki.h"

#include <errno.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];
static struct corral_authn *authn;

static void rmtree(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

static void teardown(void)
{
    corral_authn_free(authn);
    authn = NULL;
    rmtree();
}

/* A cluster made by `corral init`, shared by the tests and removed at exit. */
static void setup(void)
{
    if (authn)
        return;
    char *d = test_scratch_dir();
    snprintf(dir, sizeof(dir), "%s", d);
    free(d);
    struct corral_init_opts o = {.dir = dir, .bootstrap_tokens = 1, .quiet = true};
    CHECK_INT_EQ(corral_init_run(&o), 0);
    CHECK_INT_EQ(corral_authn_new_from_dir(dir, &authn), 0);
    atexit(teardown);
}

static char *slurp(const char *rel)
{
    char path[256], *data;
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    CHECK_INT_EQ(corral_pki_read_file(path, &data, NULL), 0);
    return data;
}

/* The first bootstrap token in DIR/bootstrap-tokens. */
static void boot_token(char out[32])
{
    char *text = slurp(CORRAL_INIT_BOOTSTRAP_TOKENS);
    CHECK_INT_EQ(sscanf(strchr(text, '\n') + 1, "%31s", out), 1);
    corral_pki_free_secret(text);
}

static unsigned char *pem_to_der(const char *pem, size_t *len)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    CHECK(x != NULL);
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    CHECK(n > 0);
    *len = (size_t)n;
    X509_free(x);
    BIO_free(b);
    return der;
}

static int auth_header(const char *header, struct corral_identity *id, char *why)
{
    return corral_authn_request(authn, header, NULL, 0, id, why, 160);
}

/* ------------------------------------------------------------------------------------------ */

static void test_tokens(void)
{
    setup();
    struct corral_identity id;
    char why[160], header[128], boot[32];
    char *admin = slurp(CORRAL_INIT_ADMIN_TOKEN);
    snprintf(header, sizeof(header), "Bearer %s", admin);
    CHECK_INT_EQ(auth_header(header, &id, why), 0);
    CHECK_STR_EQ(id.name, "admin");
    CHECK_INT_EQ(id.method, CORRAL_AUTHN_TOKEN);
    CHECK(corral_identity_in_group(&id, "system:masters"));
    CHECK(corral_identity_in_group(&id, "system:authenticated"));
    CHECK(id.uid[0] != '\0');
    CHECK(corral_identity_node(&id) == NULL);
    snprintf(header, sizeof(header), "bearer   %s  ", admin); /* scheme is case-insensitive */
    CHECK_INT_EQ(auth_header(header, &id, why), 0);
    /* one character off */
    header[strlen(header) - 3] ^= 1;
    CHECK_INT_EQ(auth_header(header, &id, why), CORRAL_EUNAUTHORIZED);
    CHECK_STR_EQ(why, "invalid bearer token");
    CHECK(strstr(why, admin) == NULL);
    CHECK_STR_EQ(id.name, "system:anonymous"); /* never the admin on failure */
    CHECK_INT_EQ(auth_header("Basic YWRtaW46eA==", &id, why), CORRAL_EUNAUTHORIZED);
    CHECK_STR_CONTAINS(why, "only Bearer");
    CHECK_INT_EQ(auth_header("Bearer ", &id, why), CORRAL_EUNAUTHORIZED);
    boot_token(boot);
    snprintf(header, sizeof(header), "Bearer %s", boot);
    CHECK_INT_EQ(auth_header(header, &id, why), 0);
    char want[64];
    snprintf(want, sizeof(want), "system:bootstrap:%.6s", boot);
    CHECK_STR_EQ(id.name, want);
    CHECK(corral_identity_in_group(&id, "system:bootstrappers"));
    CHECK(!corral_identity_in_group(&id, "system:masters"));
    corral_pki_free_secret(admin);
}

static void test_token_expiry_and_reload(void)
{
    setup();
    char path[256], hash_old[65], hash_new[65], table[1024], why[160];
    struct corral_identity id;
    corral_pki_sha256_hex("old-token", 9, hash_old);
    corral_pki_sha256_hex("new-token", 9, hash_new);
    snprintf(table, sizeof(table),
             "{\"items\":[{\"sha256\":\"%s\",\"user\":\"system:bootstrap:aaaaaa\","
             "\"groups\":[\"system:bootstrappers\"],\"expires\":\"2001-01-01T00:00:00Z\"},"
             "{\"sha256\":\"%s\",\"user\":\"carol\",\"groups\":[\"devs\"],"
             "\"expires\":\"2999-01-01T00:00:00Z\"}]}",
             hash_old, hash_new);
    snprintf(path, sizeof(path), "%s/alt-tokens.json", dir);
    CHECK_INT_EQ(corral_pki_write_file(path, table, strlen(table), 0600), 0);
    struct corral_authn *a;
    struct corral_authn_config cfg = {.tokens_file = path};
    CHECK_INT_EQ(corral_authn_new(&cfg, &a), 0);
    CHECK_INT_EQ(corral_authn_request(a, "Bearer old-token", NULL, 0, &id, why, 160),
                 CORRAL_EUNAUTHORIZED);
    CHECK_STR_EQ(why, "token expired");
    CHECK_INT_EQ(corral_authn_request(a, "Bearer new-token", NULL, 0, &id, why, 160), 0);
    CHECK_STR_EQ(id.name, "carol");
    CHECK_INT_EQ(id.n_groups, 2); /* devs + system:authenticated */
    /* a broken table is refused and the old one stays in force */
    const char *broken = "{\"items\":[{\"user\":\"x\"}]}";
    CHECK_INT_EQ(corral_pki_write_file(path, broken, strlen(broken), 0600), 0);
    CHECK_INT_EQ(corral_authn_reload_tokens(a), -EINVAL);
    CHECK_INT_EQ(corral_authn_request(a, "Bearer new-token", NULL, 0, &id, why, 160), 0);
    /* a good one replaces it */
    snprintf(table, sizeof(table), "{\"items\":[{\"sha256\":\"%s\",\"user\":\"dave\"}]}", hash_old);
    CHECK_INT_EQ(corral_pki_write_file(path, table, strlen(table), 0600), 0);
    CHECK_INT_EQ(corral_authn_reload_tokens(a), 0);
    CHECK_INT_EQ(corral_authn_request(a, "Bearer new-token", NULL, 0, &id, why, 160),
                 CORRAL_EUNAUTHORIZED);
    CHECK_INT_EQ(corral_authn_request(a, "Bearer old-token", NULL, 0, &id, why, 160), 0);
    CHECK_STR_EQ(id.name, "dave");
    corral_authn_free(a);
    cfg.tokens_file = "/nonexistent/tokens.json";
    CHECK_INT_EQ(corral_authn_new(&cfg, &a), -ENOENT);
}

static void test_certificates(void)
{
    setup();
    struct corral_identity id;
    char why[160];
    char *pem = slurp(CORRAL_INIT_ADMIN_CERT);
    size_t len;
    unsigned char *der = pem_to_der(pem, &len);
    CHECK_INT_EQ(corral_authn_request(authn, NULL, der, len, &id, why, 160), 0);
    CHECK_STR_EQ(id.name, "admin");
    CHECK_INT_EQ(id.method, CORRAL_AUTHN_CERT);
    /* the second time comes from the verification cache: same identity */
    struct corral_identity again;
    CHECK_INT_EQ(corral_authn_request(authn, NULL, der, len, &again, why, 160), 0);
    CHECK_STR_EQ(again.name, "admin");
    CHECK_INT_EQ(again.n_groups, id.n_groups);
    CHECK_STR_EQ(again.groups[0], id.groups[0]);
    CHECK(corral_identity_in_group(&id, "system:masters"));
    CHECK(corral_identity_in_group(&id, "system:authenticated"));
    /* a good certificate wins over a bad token (tried first) */
    CHECK_INT_EQ(corral_authn_request(authn, "Bearer nope", der, len, &id, why, 160), 0);
    CHECK_STR_EQ(id.name, "admin");
    OPENSSL_free(der);
    free(pem);
    /* the serving certificate is not a client certificate */
    pem = slurp(CORRAL_INIT_SERVER_CERT);
    der = pem_to_der(pem, &len);
    CHECK_INT_EQ(corral_authn_request(authn, NULL, der, len, &id, why, 160), CORRAL_EUNAUTHORIZED);
    CHECK_STR_CONTAINS(why, "purpose");
    /* ... but a valid token with it still authenticates */
    char *admin = slurp(CORRAL_INIT_ADMIN_TOKEN), header[64];
    snprintf(header, sizeof(header), "Bearer %s", admin);
    CHECK_INT_EQ(corral_authn_request(authn, header, der, len, &id, why, 160), 0);
    CHECK_STR_EQ(id.name, "admin");
    CHECK_INT_EQ(id.method, CORRAL_AUTHN_TOKEN);
    corral_pki_free_secret(admin);
    OPENSSL_free(der);
    free(pem);
    /* signed by a stranger */
    char *ca2, *key2, *cert, *ckey;
    CHECK_INT_EQ(corral_pki_ca_new("evil", 1, CORRAL_PKI_KEY_ECDSA_P256, &ca2, &key2), 0);
    const char *orgs[] = {"system:masters", NULL};
    struct corral_pki_cert_spec spec = {
        .cn = "admin", .orgs = orgs, .usage = CORRAL_PKI_USAGE_CLIENT, .days = 1};
    CHECK_INT_EQ(corral_pki_issue(ca2, key2, &spec, NULL, 0, &cert, &ckey), 0);
    der = pem_to_der(cert, &len);
    CHECK_INT_EQ(corral_authn_request(authn, NULL, der, len, &id, why, 160), CORRAL_EUNAUTHORIZED);
    CHECK_STR_CONTAINS(why, "issuer");
    CHECK_STR_EQ(id.name, "system:anonymous");
    OPENSSL_free(der);
    free(ca2);
    free(cert);
    corral_pki_free_secret(key2);
    corral_pki_free_secret(ckey);
}

static void test_anonymous(void)
{
    setup();
    struct corral_identity id;
    char why[160];
    CHECK_INT_EQ(corral_authn_request(authn, NULL, NULL, 0, &id, why, 160), 0);
    CHECK_STR_EQ(id.name, "system:anonymous");
    CHECK_INT_EQ(id.method, CORRAL_AUTHN_ANONYMOUS);
    CHECK(corral_identity_in_group(&id, "system:unauthenticated"));
    CHECK(!corral_identity_in_group(&id, "system:authenticated"));
    CHECK(corral_authn_anonymous_allowed("GET", "/version"));
    CHECK(corral_authn_anonymous_allowed("GET", "/version?timeout=5s"));
    CHECK(corral_authn_anonymous_allowed("HEAD", "/healthz"));
    CHECK(corral_authn_anonymous_allowed("GET", "/readyz/ping"));
    CHECK(corral_authn_anonymous_allowed("GET", "/livez"));
    CHECK(!corral_authn_anonymous_allowed("POST", "/version"));
    CHECK(!corral_authn_anonymous_allowed("PUT", "/healthz"));
    CHECK(!corral_authn_anonymous_allowed("GET", "/api"));
    CHECK(!corral_authn_anonymous_allowed("GET", "/api/v1/pods"));
    CHECK(!corral_authn_anonymous_allowed("GET", "/versions"));
    CHECK(!corral_authn_anonymous_allowed("GET", "/version/x"));
    CHECK(!corral_authn_anonymous_allowed("GET", "/healthz/../api/v1/secrets"));
}

/* A CertificateSigningRequest object for a new key asking for node name. */
static json_t *csr_object(const char *node, const char *signer, char **key_out)
{
    char *key, *csr, cn[128];
    const char *orgs[] = {"system:nodes", NULL};
    snprintf(cn, sizeof(cn), "system:node:%s", node);
    CHECK_INT_EQ(corral_pki_key_new(CORRAL_PKI_KEY_ECDSA_P256, &key), 0);
    CHECK_INT_EQ(corral_pki_csr_new(key, cn, orgs, &csr), 0);
    char *b64 = corral_pki_base64_encode(csr, strlen(csr));
    json_t *obj =
        json_pack("{s:s,s:s,s:{s:s},s:{s:s,s:s,s:[s,s]}}", "apiVersion", "certificates.k8s.io/v1",
                  "kind", "CertificateSigningRequest", "metadata", "name", node, "spec", "request",
                  b64, "signerName", signer, "usages", "digital signature", "client auth");
    free(b64);
    free(csr);
    if (key_out)
        *key_out = key;
    else
        corral_pki_free_secret(key);
    return obj;
}

static void bootstrapper(struct corral_identity *id)
{
    char boot[32], header[64], why[160];
    boot_token(boot);
    snprintf(header, sizeof(header), "Bearer %s", boot);
    CHECK_INT_EQ(auth_header(header, id, why), 0);
}

static void test_node_join(void)
{
    setup();
    struct corral_identity boot, node, other;
    char why[200], *key;
    bootstrapper(&boot);
    const char *signer = "kubernetes.io/kube-apiserver-client-kubelet";
    json_t *csr = csr_object("gpu-1", signer, &key);
    char name[64];
    CHECK_INT_EQ(corral_authn_csr_node(csr, name, sizeof(name)), 0);
    CHECK_STR_EQ(name, "gpu-1");
    /* a bootstrapper may not take over an existing node */
    CHECK_INT_EQ(corral_authn_sign_csr(authn, &boot, csr, true, why, sizeof(why)),
                 CORRAL_EFORBIDDEN);
    CHECK_STR_CONTAINS(why, "exists already");
    CHECK_INT_EQ(corral_authn_sign_csr(authn, &boot, csr, false, why, sizeof(why)), 0);
    const json_t *status = json_object_get(csr, "status");
    CHECK_STR_EQ(json_string_value(json_object_get(
                     json_array_get(json_object_get(status, "conditions"), 0), "type")),
                 "Approved");
    CHECK_STR_EQ(json_string_value(json_object_get(json_object_get(csr, "spec"), "username")),
                 boot.name);
    /* the certificate in status authenticates as the node */
    char *cert;
    size_t len;
    CHECK_INT_EQ(corral_pki_base64_decode(json_string_value(json_object_get(status, "certificate")),
                                          &cert, &len),
                 0);
    CHECK(corral_pki_key_matches(cert, key));
    unsigned char *der = pem_to_der(cert, &len);
    CHECK_INT_EQ(corral_authn_request(authn, NULL, der, len, &node, why, 160), 0);
    CHECK_STR_EQ(node.name, "system:node:gpu-1");
    CHECK_STR_EQ(corral_identity_node(&node), "gpu-1");
    OPENSSL_free(der);
    free(cert);
    corral_pki_free_secret(key);
    json_decref(csr);
    /* the node renews its own certificate, but cannot get another node's */
    csr = csr_object("gpu-1", signer, NULL);
    CHECK_INT_EQ(corral_authn_sign_csr(authn, &node, csr, true, why, sizeof(why)), 0);
    json_decref(csr);
    csr = csr_object("gpu-2", signer, NULL);
    CHECK_INT_EQ(corral_authn_sign_csr(authn, &node, csr, false, why, sizeof(why)),
                 CORRAL_EFORBIDDEN);
    /* an ordinary user cannot ask at all */
    memset(&other, 0, sizeof(other));
    snprintf(other.name, sizeof(other.name), "mallory");
    CHECK_INT_EQ(corral_authn_sign_csr(authn, &other, csr, false, why, sizeof(why)),
                 CORRAL_EFORBIDDEN);
    json_decref(csr);
    /* wrong signer; a request that is not a CSR */
    csr = csr_object("gpu-3", "kubernetes.io/kube-apiserver-client", NULL);
    CHECK_INT_EQ(corral_authn_sign_csr(authn, &boot, csr, false, why, sizeof(why)),
                 CORRAL_EINVALID);
    CHECK_STR_CONTAINS(why, "signerName");
    json_object_set_new(json_object_get(csr, "spec"), "signerName", json_string(signer));
    json_object_set_new(json_object_get(csr, "spec"), "request", json_string("bm9wZQ=="));
    CHECK_INT_EQ(corral_authn_sign_csr(authn, &boot, csr, false, why, sizeof(why)),
                 CORRAL_EINVALID);
    json_decref(csr);
    /* server auth is not something a node gets this way */
    csr = csr_object("gpu-4", signer, NULL);
    json_array_append_new(json_object_get(json_object_get(csr, "spec"), "usages"),
                          json_string("server auth"));
    CHECK_INT_EQ(corral_authn_sign_csr(authn, &boot, csr, false, why, sizeof(why)),
                 CORRAL_EINVALID);
    json_decref(csr);
    /* without the CA key, join is off */
    struct corral_authn *nokey;
    struct corral_authn_config cfg = {0};
    CHECK_INT_EQ(corral_authn_new(&cfg, &nokey), 0);
    csr = csr_object("gpu-5", signer, NULL);
    CHECK_INT_EQ(corral_authn_sign_csr(nokey, &boot, csr, false, why, sizeof(why)), -ENOTSUP);
    json_decref(csr);
    corral_authn_free(nokey);
}

/* ------------------------------------------------------------------------------------------ */
/* Audit                                                                                       */

struct writer {
    struct corral_audit *a;
    int id;
};

static void *audit_writer(void *arg)
{
    struct writer *w = arg;
    const char *groups[] = {"team-a", "system:authenticated"};
    char name[32];
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof(name), "pod-%d-%d", w->id, i);
        struct corral_audit_event ev = {.user = "alice",
                                        .groups = groups,
                                        .n_groups = 2,
                                        .verb = "create",
                                        .request_uri = "/api/v1/namespaces/team-a/pods",
                                        .api_group = "",
                                        .api_version = "v1",
                                        .resource = "pods",
                                        .ns = "team-a",
                                        .name = name,
                                        .source_ip = "127.0.0.1",
                                        .user_agent = "test",
                                        .code = 201};
        CHECK_INT_EQ(corral_audit_log(w->a, &ev), 0);
    }
    return NULL;
}

static void test_audit(void)
{
    setup();
    char path[256];
    snprintf(path, sizeof(path), "%s/audit.log", dir);
    struct corral_audit *a;
    CHECK_INT_EQ(corral_audit_open(path, &a), 0);
    CHECK(corral_audit_wants("create") && corral_audit_wants("patch") &&
          corral_audit_wants("deletecollection"));
    CHECK(!corral_audit_wants("get") && !corral_audit_wants("list") &&
          !corral_audit_wants("watch") && !corral_audit_wants(NULL));
    pthread_t th[4];
    struct writer w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct writer){a, i};
        CHECK_INT_EQ(pthread_create(&th[i], NULL, audit_writer, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    struct corral_audit_event denied = {.user = "mallory",
                                        .verb = "update",
                                        .resource = "nodes",
                                        .name = "gpu-1",
                                        .code = 403,
                                        .subresource = "status",
                                        .api_group = ""};
    CHECK_INT_EQ(corral_audit_log(a, &denied), 0);
    corral_audit_close(a);
    struct stat st;
    CHECK_INT_EQ(stat(path, &st), 0);
    CHECK_INT_EQ(st.st_mode & 0777, 0600);
    char *text;
    CHECK_INT_EQ(corral_pki_read_file(path, &text, NULL), 0);
    int lines = 0;
    json_t *last = NULL;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        json_decref(last);
        last = json_loads(line, 0, NULL);
        CHECK(last != NULL); /* every line is whole JSON: no interleaving */
        CHECK_STR_EQ(json_string_value(json_object_get(last, "apiVersion")), "audit.k8s.io/v1");
        lines++;
    }
    CHECK_INT_EQ(lines, 801);
    CHECK_STR_EQ(json_string_value(json_object_get(json_object_get(last, "user"), "username")),
                 "mallory");
    const json_t *ref = json_object_get(last, "objectRef");
    CHECK_STR_EQ(json_string_value(json_object_get(ref, "resource")), "nodes");
    CHECK_STR_EQ(json_string_value(json_object_get(ref, "name")), "gpu-1");
    CHECK_STR_EQ(json_string_value(json_object_get(ref, "subresource")), "status");
    CHECK(json_object_get(ref, "namespace") == NULL);
    CHECK_INT_EQ(
        json_integer_value(json_object_get(json_object_get(last, "responseStatus"), "code")), 403);
    json_decref(last);
    free(text);
    CHECK_INT_EQ(corral_audit_open("/nonexistent/dir/audit.log", &a), -ENOENT);
}

CORRAL_TESTS(CORRAL_TEST(tokens), CORRAL_TEST(token_expiry_and_reload), CORRAL_TEST(certificates),
             CORRAL_TEST(anonymous), CORRAL_TEST(node_join), CORRAL_TEST(audit))
