/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests for `corral init` (apiserver/init.h): the files and their modes, the certificates
 * checked by the openssl command line and by OpenSSL's verifier, the hashed token table,
 * refusal to replace a CA without --force, option errors, and the admin kubeconfig used as is
 * by common/client.h and by the real kubectl (/usr/bin/kubectl, when installed) against an
 * HTTPS server started here with the generated serving certificate.
 */
#include "client.h"
#include "error.h"
#include "harness.h"
#include "test_scratch.h"
#include "init.h"
#include "kubeconfig.h"
#include "pki.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

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

static char *slurp(const char *dir, const char *rel)
{
    char path[512], *data;
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    CHECK_INT_EQ(corral_pki_read_file(path, &data, NULL), 0);
    return data;
}

static int mode_of(const char *dir, const char *rel)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    CHECK_INT_EQ(stat(path, &st), 0);
    return (int)(st.st_mode & 0777);
}

static bool has(char **v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

static void init_dir(const char *dir, const char *const *addresses, bool force, int expect)
{
    struct corral_init_opts o = {
        .dir = dir, .addresses = addresses, .force = force, .bootstrap_tokens = 2, .quiet = true};
    CHECK_INT_EQ(corral_init_run(&o), expect);
}

/* ------------------------------------------------------------------------------------------ */

static void test_files_and_modes(void)
{
    char *dir = tmpdir();
    const char *addrs[] = {"10.20.30.40", "api.corral.test", "fd00::5", NULL};
    init_dir(dir, addrs, false, 0);
    CHECK_INT_EQ(mode_of(dir, "."), 0700);
    CHECK_INT_EQ(mode_of(dir, "pki"), 0700);
    CHECK_INT_EQ(mode_of(dir, CORRAL_INIT_CA_KEY), 0600);
    CHECK_INT_EQ(mode_of(dir, CORRAL_INIT_SERVER_KEY), 0600);
    CHECK_INT_EQ(mode_of(dir, CORRAL_INIT_ADMIN_KEY), 0600);
    CHECK_INT_EQ(mode_of(dir, CORRAL_INIT_KUBELET_CLIENT_KEY), 0600);
    CHECK_INT_EQ(mode_of(dir, CORRAL_INIT_TOKENS), 0600);
    CHECK_INT_EQ(mode_of(dir, CORRAL_INIT_ADMIN_TOKEN), 0600);
    CHECK_INT_EQ(mode_of(dir, CORRAL_INIT_BOOTSTRAP_TOKENS), 0600);
    CHECK_INT_EQ(mode_of(dir, CORRAL_INIT_KUBECONFIG), 0600);
    CHECK_INT_EQ(mode_of(dir, CORRAL_INIT_CA_CERT), 0644);

    /* the openssl command line agrees with us about the chain */
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "openssl verify -CAfile %s/pki/ca.crt %s/pki/apiserver.crt %s/pki/admin.crt "
             ">/dev/null",
             dir, dir, dir);
    CHECK_INT_EQ(system(cmd), 0);
    snprintf(cmd, sizeof(cmd),
             "openssl verify -purpose sslserver -CAfile %s/pki/ca.crt %s/pki/admin.crt "
             ">/dev/null 2>&1",
             dir, dir);
    CHECK(system(cmd) != 0); /* the admin certificate is not a server certificate */

    char *srv = slurp(dir, CORRAL_INIT_SERVER_CERT), *adm = slurp(dir, CORRAL_INIT_ADMIN_CERT);
    struct corral_pki_subject s;
    CHECK_INT_EQ(corral_pki_cert_subject(srv, &s), 0);
    CHECK_INT_EQ(s.usage, CORRAL_PKI_USAGE_SERVER);
    CHECK(has(s.ip_addrs, s.n_ips, "127.0.0.1"));
    CHECK(has(s.ip_addrs, s.n_ips, "10.20.30.40"));
    CHECK(has(s.ip_addrs, s.n_ips, "fd00::5"));
    CHECK(has(s.dns_names, s.n_dns, "localhost"));
    CHECK(has(s.dns_names, s.n_dns, "api.corral.test"));
    CHECK(s.not_after - time(NULL) > 360 * 86400);
    corral_pki_subject_clear(&s);
    CHECK_INT_EQ(corral_pki_cert_subject(adm, &s), 0);
    CHECK_STR_EQ(s.cn, "admin");
    CHECK_INT_EQ(s.n_orgs, 1);
    CHECK_STR_EQ(s.orgs[0], "system:masters");
    CHECK_INT_EQ(s.usage, CORRAL_PKI_USAGE_CLIENT);
    corral_pki_subject_clear(&s);
    char *kcl = slurp(dir, CORRAL_INIT_KUBELET_CLIENT_CERT);
    CHECK_INT_EQ(corral_pki_cert_subject(kcl, &s), 0);
    CHECK_STR_EQ(s.cn, CORRAL_INIT_KUBELET_CLIENT_CN);
    CHECK_INT_EQ(s.n_orgs, 0);
    CHECK_INT_EQ(s.usage, CORRAL_PKI_USAGE_CLIENT);
    corral_pki_subject_clear(&s);
    free(kcl);
    char *srv_key = slurp(dir, CORRAL_INIT_SERVER_KEY);
    CHECK(corral_pki_key_matches(srv, srv_key));
    corral_pki_free_secret(srv_key);
    free(srv);
    free(adm);
    rmtree(dir);
    free(dir);
}

static void test_tokens_hashed(void)
{
    char *dir = tmpdir();
    init_dir(dir, NULL, false, 0);
    char *admin = slurp(dir, CORRAL_INIT_ADMIN_TOKEN), *table = slurp(dir, CORRAL_INIT_TOKENS);
    char *boot = slurp(dir, CORRAL_INIT_BOOTSTRAP_TOKENS);
    CHECK_INT_EQ(strlen(admin), 32);
    /* the plaintext never appears in the server's table, only its hash */
    CHECK(strstr(table, admin) == NULL);
    char hash[65];
    corral_pki_sha256_hex(admin, strlen(admin), hash);
    json_t *t = json_loads(table, 0, NULL), *items = json_object_get(t, "items");
    CHECK_INT_EQ(json_array_size(items), 3); /* admin + 2 bootstrap */
    json_t *a = json_array_get(items, 0);
    CHECK_STR_EQ(json_string_value(json_object_get(a, "sha256")), hash);
    CHECK_STR_EQ(json_string_value(json_object_get(a, "user")), "admin");
    CHECK_STR_EQ(json_string_value(json_array_get(json_object_get(a, "groups"), 0)),
                 "system:masters");
    /* bootstrap tokens: id.secret, hashed, with an expiry about a day away */
    char tok[64], expires[32];
    const char *line = strchr(boot, '\n') + 1;
    CHECK_INT_EQ(sscanf(line, "%63s %31s", tok, expires), 2);
    CHECK_INT_EQ(strlen(tok), 23);
    CHECK(strstr(table, tok) == NULL);
    corral_pki_sha256_hex(tok, strlen(tok), hash);
    json_t *b = json_array_get(items, 1);
    CHECK_STR_EQ(json_string_value(json_object_get(b, "sha256")), hash);
    char user[64];
    snprintf(user, sizeof(user), "system:bootstrap:%.6s", tok);
    CHECK_STR_EQ(json_string_value(json_object_get(b, "user")), user);
    CHECK_STR_EQ(json_string_value(json_object_get(b, "expires")), expires);
    CHECK_STR_EQ(json_string_value(json_array_get(json_object_get(b, "groups"), 0)),
                 "system:bootstrappers");
    json_decref(t);
    corral_pki_free_secret(admin);
    corral_pki_free_secret(table);
    corral_pki_free_secret(boot);
    rmtree(dir);
    free(dir);
}

static void test_reinit_refused_without_force(void)
{
    char *dir = tmpdir();
    init_dir(dir, NULL, false, 0);
    char *ca1 = slurp(dir, CORRAL_INIT_CA_CERT), *key1 = slurp(dir, CORRAL_INIT_CA_KEY);
    char *tok1 = slurp(dir, CORRAL_INIT_ADMIN_TOKEN);
    init_dir(dir, NULL, false, -EEXIST);
    char *ca2 = slurp(dir, CORRAL_INIT_CA_CERT), *key2 = slurp(dir, CORRAL_INIT_CA_KEY);
    char *tok2 = slurp(dir, CORRAL_INIT_ADMIN_TOKEN);
    CHECK_STR_EQ(ca1, ca2);
    CHECK_STR_EQ(key1, key2);
    CHECK_STR_EQ(tok1, tok2);
    /* the key alone is enough to refuse */
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, CORRAL_INIT_CA_CERT);
    CHECK_INT_EQ(unlink(path), 0);
    init_dir(dir, NULL, false, -EEXIST);
    /* through the command line: exit status 1 */
    char *argv[] = {"init", "--dir", dir, NULL};
    CHECK_INT_EQ(corral_init_main(3, argv), 1);
    init_dir(dir, NULL, true, 0);
    char *ca3 = slurp(dir, CORRAL_INIT_CA_CERT), *key3 = slurp(dir, CORRAL_INIT_CA_KEY);
    CHECK(strcmp(ca1, ca3) != 0);
    CHECK(strcmp(key1, key3) != 0);
    free(ca1);
    free(ca2);
    free(ca3);
    corral_pki_free_secret(key1);
    corral_pki_free_secret(key2);
    corral_pki_free_secret(key3);
    corral_pki_free_secret(tok1);
    corral_pki_free_secret(tok2);
    rmtree(dir);
    free(dir);
}

static void test_command_line(void)
{
    char *dir = tmpdir(), sub[512];
    snprintf(sub, sizeof(sub), "%s/cluster", dir);
    char *bad_addr[] = {"init", "--dir", sub, "--address", "not_a_host!", NULL};
    CHECK_INT_EQ(corral_init_main(5, bad_addr), 1);
    char *bad_ttl[] = {"init", "--dir", sub, "--token-ttl", "soon", NULL};
    CHECK_INT_EQ(corral_init_main(5, bad_ttl), 2);
    char *no_dir[] = {"init", NULL};
    CHECK_INT_EQ(corral_init_main(1, no_dir), 1);
    char *extra[] = {"init", "--dir", sub, "stray", NULL};
    CHECK_INT_EQ(corral_init_main(4, extra), 2);
    char *help[] = {"init", "--help", NULL};
    CHECK_INT_EQ(corral_init_main(2, help), 0);
    char *ok[] = {"init",
                  "--dir",
                  sub,
                  "--address",
                  "10.0.0.9,node.example",
                  "--port",
                  "7443",
                  "--bootstrap-tokens",
                  "0",
                  "--token-ttl",
                  "2h",
                  "--key-type",
                  "rsa",
                  NULL};
    CHECK_INT_EQ(corral_init_main(13, ok), 0);
    struct corral_kubeconfig kc;
    struct corral_parse_error err = {0};
    snprintf(sub, sizeof(sub), "%s/cluster/%s", dir, CORRAL_INIT_KUBECONFIG);
    CHECK_INT_EQ(corral_kubeconfig_load(sub, NULL, &kc, &err), 0);
    CHECK_STR_EQ(kc.server, "https://10.0.0.9:7443");
    corral_kubeconfig_clear(&kc);
    rmtree(dir);
    free(dir);
}

static void test_any_address_expands(void)
{
    char *dir = tmpdir();
    const char *addrs[] = {"0.0.0.0", NULL};
    init_dir(dir, addrs, false, 0);
    char *srv = slurp(dir, CORRAL_INIT_SERVER_CERT);
    struct corral_pki_subject s;
    CHECK_INT_EQ(corral_pki_cert_subject(srv, &s), 0);
    CHECK(!has(s.ip_addrs, s.n_ips, "0.0.0.0"));
    CHECK(has(s.ip_addrs, s.n_ips, "127.0.0.1"));
    corral_pki_subject_clear(&s);
    free(srv);
    rmtree(dir);
    free(dir);
}

/* ------------------------------------------------------------------------------------------ */
/* The kubeconfig against a real HTTPS server                                                  */

struct server {
    struct MHD_Daemon *d;
    int port;
    struct corral_pki_verifier *v;
    char admin_hash[65];
    char seen[256]; /* identities seen, space-separated */
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned code, const char *body)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return ret;
}

/* Serves /version to whoever proves to be admin: client certificate or the admin token. */
static enum MHD_Result version(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *ver, const char *data, size_t *size,
                               void **con_cls)
{
    struct server *srv = cls;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    unsigned int n = 0;
    const gnutls_datum_t *peers = gnutls_certificate_get_peers(ci->tls_session, &n);
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    const char *who = NULL;
    struct corral_pki_subject s = {0};
    if (n > 0 && corral_pki_verify_der(srv->v, peers[0].data, peers[0].size, 0,
                                       CORRAL_PKI_USAGE_CLIENT, &s, NULL, 0) == 0)
        who = strcmp(s.cn, "admin") == 0 ? "cert:admin" : NULL;
    if (!who && auth && strncmp(auth, "Bearer ", 7) == 0) {
        char h[65];
        corral_pki_sha256_hex(auth + 7, strlen(auth + 7), h);
        who = corral_pki_equal(h, 64, srv->admin_hash, 64) ? "token:admin" : NULL;
    }
    corral_pki_subject_clear(&s);
    if (!who)
        return reply(conn, 401,
                     "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
                     "\"reason\":\"Unauthorized\",\"code\":401}");
    if (!strstr(srv->seen, who) && strlen(srv->seen) + strlen(who) + 2 < sizeof(srv->seen)) {
        strcat(srv->seen, who);
        strcat(srv->seen, " ");
    }
    return reply(conn, 200,
                 "{\"major\":\"1\",\"minor\":\"32\",\"gitVersion\":\"v1.32.0\","
                 "\"platform\":\"linux/amd64\"}");
}

static void server_start(struct server *srv, const char *dir)
{
    char *cert = slurp(dir, CORRAL_INIT_SERVER_CERT), *key = slurp(dir, CORRAL_INIT_SERVER_KEY);
    char *ca = slurp(dir, CORRAL_INIT_CA_CERT), *tok = slurp(dir, CORRAL_INIT_ADMIN_TOKEN);
    memset(srv, 0, sizeof(*srv));
    corral_pki_sha256_hex(tok, strlen(tok), srv->admin_hash);
    CHECK_INT_EQ(corral_pki_verifier_new(ca, &srv->v), 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    srv->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                                  MHD_USE_TLS | MHD_USE_ERROR_LOG,
                              0, NULL, NULL, version, srv, MHD_OPTION_SOCK_ADDR, &sa,
                              MHD_OPTION_HTTPS_MEM_CERT, cert, MHD_OPTION_HTTPS_MEM_KEY, key,
                              MHD_OPTION_HTTPS_MEM_TRUST, ca, MHD_OPTION_END);
    CHECK(srv->d != NULL);
    srv->port = MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_BIND_PORT)->port;
    free(cert);
    corral_pki_free_secret(key);
    free(ca);
    corral_pki_free_secret(tok);
}

static void server_stop(struct server *srv)
{
    MHD_stop_daemon(srv->d);
    corral_pki_verifier_free(srv->v);
}

static void init_for_port(const char *dir, int port)
{
    struct corral_init_opts o = {.dir = dir, .port = port, .bootstrap_tokens = 1, .quiet = true};
    CHECK_INT_EQ(corral_init_run(&o), 0);
}

static void test_kubeconfig_with_client(void)
{
    char *dir = tmpdir(), path[512];
    struct server srv;
    init_for_port(dir, 1); /* port fixed up below, once the server has one */
    server_start(&srv, dir);
    snprintf(path, sizeof(path), "%s/%s", dir, CORRAL_INIT_KUBECONFIG);
    char url[64];
    snprintf(url, sizeof(url), "https://127.0.0.1:%d", srv.port);
    const char *contexts[] = {"admin@corral", "admin-token@corral"};
    for (int i = 0; i < 2; i++) {
        struct corral_kubeconfig kc;
        struct corral_parse_error err = {0};
        struct corral_client *c;
        json_t *out;
        CHECK_INT_EQ(corral_kubeconfig_load(path, contexts[i], &kc, &err), 0);
        CHECK_INT_EQ(corral_kubeconfig_client(&kc, url, &c), 0);
        CHECK_INT_EQ(corral_client_get(c, "/version", &out), 0);
        CHECK_STR_EQ(json_string_value(json_object_get(out, "minor")), "32");
        json_decref(out);
        corral_client_free(c);
        corral_kubeconfig_clear(&kc);
    }
    CHECK_STR_EQ(srv.seen, "cert:admin token:admin ");
    server_stop(&srv);
    rmtree(dir);
    free(dir);
}

/* Rewrites the kubeconfig's server to the test server's port (the file is otherwise as is). */
static void point_kubeconfig_at(const char *dir, int port)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "sed -i 's#https://127.0.0.1:1$#https://127.0.0.1:%d#' %s/%s", port,
             dir, CORRAL_INIT_KUBECONFIG);
    CHECK_INT_EQ(system(cmd), 0);
}

static void test_real_kubectl_accepts_kubeconfig(void)
{
    if (access("/usr/bin/kubectl", X_OK) != 0) {
        fprintf(stderr, "skipped: /usr/bin/kubectl is not installed\n");
        return;
    }
    char *dir = tmpdir(), cmd[2048], *out;
    struct server srv;
    init_for_port(dir, 1);
    server_start(&srv, dir);
    point_kubeconfig_at(dir, srv.port);
    const char *contexts[] = {"admin@corral", "admin-token@corral"};
    for (int i = 0; i < 2; i++) {
        snprintf(cmd, sizeof(cmd),
                 "cd %s && HOME=%s KUBECONFIG= timeout 60 /usr/bin/kubectl --kubeconfig "
                 "%s/%s --context %s version -o json >%s/out.json 2>%s/err.txt",
                 dir, dir, dir, CORRAL_INIT_KUBECONFIG, contexts[i], dir, dir);
        int rc = system(cmd);
        if (rc != 0) {
            char *err = slurp(dir, "err.txt");
            fprintf(stderr, "kubectl failed: %s\n", err);
            free(err);
        }
        CHECK_INT_EQ(rc, 0);
        out = slurp(dir, "out.json");
        CHECK_STR_CONTAINS(out, "\"serverVersion\"");
        CHECK_STR_CONTAINS(out, "\"gitVersion\": \"v1.32.0\"");
        free(out);
    }
    CHECK_STR_CONTAINS(srv.seen, "cert:admin");
    CHECK_STR_CONTAINS(srv.seen, "token:admin");
    server_stop(&srv);
    rmtree(dir);
    free(dir);
}

CORRAL_TESTS(CORRAL_TEST(files_and_modes), CORRAL_TEST(tokens_hashed),
             CORRAL_TEST(reinit_refused_without_force), CORRAL_TEST(command_line),
             CORRAL_TEST(any_address_expands), CORRAL_TEST(kubeconfig_with_client),
             CORRAL_TEST(real_kubectl_accepts_kubeconfig))
