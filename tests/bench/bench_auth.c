/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_auth: the per-request costs of authentication and authorization, and the HTTP client.
 *
 *   authn_token_ns        bearer token among 1000 table entries (hash + constant-time scan)
 *   authn_cert_us         client certificate: DER parse + chain verification + subject
 *   authz_allow_ns        RBAC allow via a RoleBinding, 1000 tenant namespaces + 100
 *                         ClusterRoleBindings in the view
 *   authz_deny_ns         RBAC deny (every binding examined)
 *   authz_node_ns         node restriction on a Node update (no store access)
 *   client_get_rps        sequential GETs over one keep-alive connection to a local server
 *   curl_easy_get_rps     the same loop on a bare libcurl easy handle (the baseline)
 *
 * The authn/authz figures are CPU time per operation (CLOCK_THREAD_CPUTIME_ID); the client
 * figures are wall-clock rates. Each is printed as `name=value unit`; on a shared machine they
 * are rough.
 */
#include "authn.h"
#include "authz.h"
#include "client.h"
#include "harness.h"
#include "meta.h"
#include "pki.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define TOKENS 1000
#define TENANTS 1000

/* CPU time of this thread: the in-process figures are CPU costs, which stay meaningful on a
 * busy shared machine where wall-clock time mostly measures waiting for a core. */
static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double per_op_ns(uint64_t start, int n)
{
    return (double)(cpu_ns() - start) / n;
}

static void bench_tokens(const char *dir)
{
    char path[256], hash[65], tok[32];
    json_t *items = json_array();
    for (int i = 0; i < TOKENS; i++) {
        char user[32];
        snprintf(tok, sizeof(tok), "token-%06d", i);
        snprintf(user, sizeof(user), "user-%d", i);
        corral_pki_sha256_hex(tok, strlen(tok), hash);
        json_array_append_new(
            items, json_pack("{s:s,s:s,s:[s]}", "sha256", hash, "user", user, "groups", "devs"));
    }
    json_t *table = json_pack("{s:o}", "items", items);
    snprintf(path, sizeof(path), "%s/tokens.json", dir);
    CHECK_INT_EQ(json_dump_file(table, path, 0), 0);
    json_decref(table);
    struct corral_authn_config cfg = {.tokens_file = path};
    struct corral_authn *a;
    CHECK_INT_EQ(corral_authn_new(&cfg, &a), 0);
    struct corral_identity id;
    char header[64], why[128];
    snprintf(header, sizeof(header), "Bearer token-%06d", TOKENS - 1);
    int n = 20000;
    uint64_t t0 = cpu_ns();
    for (int i = 0; i < n; i++)
        CHECK_INT_EQ(corral_authn_request(a, header, NULL, 0, &id, why, sizeof(why)), 0);
    printf("authn_token_ns=%.0f ns\n", per_op_ns(t0, n));
    corral_authn_free(a);
}

static void bench_certs(void)
{
    char *ca, *ca_key, *cert, *key;
    CHECK_INT_EQ(corral_pki_ca_new("bench", 1, CORRAL_PKI_KEY_ECDSA_P256, &ca, &ca_key), 0);
    const char *orgs[] = {"devs", NULL};
    struct corral_pki_cert_spec spec = {
        .cn = "alice", .orgs = orgs, .usage = CORRAL_PKI_USAGE_CLIENT, .days = 1};
    CHECK_INT_EQ(corral_pki_issue(ca, ca_key, &spec, NULL, 0, &cert, &key), 0);
    BIO *b = BIO_new_mem_buf(cert, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    unsigned char *der = NULL;
    int len = i2d_X509(x, &der);
    struct corral_authn_config cfg = {.client_ca_pem = ca};
    struct corral_authn *a;
    CHECK_INT_EQ(corral_authn_new(&cfg, &a), 0);
    struct corral_identity id;
    char why[128];
    int n = 2000;
    uint64_t t0 = cpu_ns();
    for (int i = 0; i < n; i++)
        CHECK_INT_EQ(corral_authn_request(a, NULL, der, (size_t)len, &id, why, sizeof(why)), 0);
    printf("authn_cert_us=%.1f us\n", per_op_ns(t0, n) / 1000);
    corral_authn_free(a);
    OPENSSL_free(der);
    X509_free(x);
    BIO_free(b);
    free(ca);
    free(cert);
    corral_pki_free_secret(ca_key);
    corral_pki_free_secret(key);
}

static struct corral_authz *authz_with_tenants(void)
{
    struct corral_authz *z;
    CHECK_INT_EQ(corral_authz_new(NULL, &z), 0);
    json_t *all = corral_authz_builtin_objects(), *obj;
    size_t i;
    json_array_foreach(all, i, obj)
    {
        corral_authz_apply(z, obj, false);
    }
    json_decref(all);
    for (int t = 0; t < TENANTS; t++) {
        char ns[32], user[32];
        snprintf(ns, sizeof(ns), "ns-%d", t);
        snprintf(user, sizeof(user), "tenant-%d", t);
        json_t *rb =
            json_pack("{s:s,s:{s:s,s:s},s:{s:s,s:s},s:[{s:s,s:s}]}", "kind", "RoleBinding",
                      "metadata", "name", "edit", "namespace", ns, "roleRef", "kind", "ClusterRole",
                      "name", "edit", "subjects", "kind", "User", "name", user);
        corral_authz_apply(z, rb, false);
        json_decref(rb);
    }
    for (int c = 0; c < 100; c++) {
        char name[32], user[32];
        snprintf(name, sizeof(name), "viewer-%d", c);
        snprintf(user, sizeof(user), "viewer-%d", c);
        json_t *crb =
            json_pack("{s:s,s:{s:s},s:{s:s,s:s},s:[{s:s,s:s}]}", "kind", "ClusterRoleBinding",
                      "metadata", "name", name, "roleRef", "kind", "ClusterRole", "name", "view",
                      "subjects", "kind", "User", "name", user);
        corral_authz_apply(z, crb, false);
        json_decref(crb);
    }
    return z;
}

static void bench_authz(void)
{
    struct corral_authz *z = authz_with_tenants();
    const char *groups[] = {"system:authenticated"};
    struct corral_authz_attrs a = {.user = "tenant-500",
                                   .groups = groups,
                                   .n_groups = 1,
                                   .verb = "create",
                                   .api_group = "",
                                   .resource = "pods",
                                   .ns = "ns-500"};
    char why[512];
    int n = 20000;
    uint64_t t0 = cpu_ns();
    for (int i = 0; i < n; i++)
        CHECK_INT_EQ(corral_authz_check(z, &a, why, sizeof(why)), 0);
    printf("authz_allow_ns=%.0f ns\n", per_op_ns(t0, n));
    a.ns = "ns-501";
    t0 = cpu_ns();
    for (int i = 0; i < n; i++)
        CHECK(corral_authz_check(z, &a, why, sizeof(why)) != 0);
    printf("authz_deny_ns=%.0f ns\n", per_op_ns(t0, n));
    const char *node_groups[] = {"system:nodes", "system:authenticated"};
    struct corral_authz_attrs na = {.user = "system:node:gpu-1",
                                    .groups = node_groups,
                                    .n_groups = 2,
                                    .verb = "update",
                                    .api_group = "",
                                    .resource = "nodes",
                                    .name = "gpu-1"};
    t0 = cpu_ns();
    for (int i = 0; i < n; i++)
        CHECK_INT_EQ(corral_authz_check(z, &na, why, sizeof(why)), 0);
    printf("authz_node_ns=%.0f ns\n", per_op_ns(t0, n));
    corral_authz_free(z);
}

static enum MHD_Result ok_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **con_cls)
{
    static const char body[] = "{\"kind\":\"Status\",\"status\":\"Success\"}";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    return size * n;
}

static void bench_client(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL,
                         NULL, ok_handler, NULL, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_END);
    CHECK(d != NULL);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d",
             MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port);
    struct corral_client_config cfg = {.server = url};
    struct corral_client *c;
    CHECK_INT_EQ(corral_client_new(&cfg, &c), 0);
    int n = 5000;
    uint64_t t0 = corral_now_ns();
    for (int i = 0; i < n; i++)
        CHECK_INT_EQ(corral_client_get(c, "/x", NULL), 0);
    printf("client_get_rps=%.0f req/s\n", n / ((double)(corral_now_ns() - t0) / 1e9));
    corral_client_free(c);
    /* the same loop on a bare libcurl easy handle, for comparison */
    CURL *e = curl_easy_init();
    char full[96];
    snprintf(full, sizeof(full), "%s/x", url);
    curl_easy_setopt(e, CURLOPT_URL, full);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    t0 = corral_now_ns();
    for (int i = 0; i < n; i++)
        CHECK_INT_EQ(curl_easy_perform(e), CURLE_OK);
    printf("curl_easy_get_rps=%.0f req/s\n", n / ((double)(corral_now_ns() - t0) / 1e9));
    curl_easy_cleanup(e);
    MHD_stop_daemon(d);
}

int main(void)
{
    char dir[] = "/tmp/corral-bench-auth-XXXXXX", cmd[128];
    CHECK(mkdtemp(dir) != NULL);
    bench_tokens(dir);
    bench_certs();
    bench_authz();
    bench_client();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
