/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The tests build on each other (run in order: tenants exist before nodes join, the audit
 * log is read last).
 *
 * Integration test for issue #6 end to end: `corral init` credentials, the real `corral
 * apiserver` serving HTTPS on a loopback port it picks, and clients of every kind reaching it
 * through common/client.h: anonymous, the admin (certificate and token), a tenant with a
 * CA-signed certificate, a node that joins with a bootstrap token (CSR signed by the
 * apiserver), and impersonation. Checks 401/403 (with kube-apiserver's wording), RBAC changes,
 * node restriction, access reviews and the audit log; and `kubectl auth can-i` when kubectl
 * is installed.
 */
#include "client.h"
#include "daemon.h"
#include "error.h"
#include "harness.h"
#include "init.h"
#include "kubeconfig.h"
#include "pki.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[512], data_dir[600];
static struct corral_daemon api;
static char *ca_cert, *ca_key;

static char *slurp(const char *rel)
{
    char path[700], *data;
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    CHECK_INT_EQ(corral_pki_read_file(path, &data, NULL), 0);
    return data;
}

static void cleanup(void)
{
    free(ca_cert);
    corral_pki_free_secret(ca_key);
}

static void start(void)
{
    snprintf(dir, sizeof(dir), "%s/cluster", corral_test_tmpdir());
    snprintf(data_dir, sizeof(data_dir), "%s/data", corral_test_tmpdir());
    struct corral_init_opts o = {.dir = dir, .bootstrap_tokens = 1, .port = 1, .quiet = true};
    CHECK_INT_EQ(corral_init_run(&o), 0);
    char audit[700];
    snprintf(audit, sizeof(audit), "%s/audit.log", data_dir);
    const char *argv[] = {"apiserver",     "--listen", "127.0.0.1:0",      "--data-dir", data_dir,
                          "--cluster-dir", dir,        "--audit-log-path", audit,        NULL};
    CHECK(corral_daemon_start(&api, argv, 20000) == 0);
    CHECK(strncmp(api.url, "https://", 8) == 0);
    ca_cert = slurp(CORRAL_INIT_CA_CERT);
    ca_key = slurp(CORRAL_INIT_CA_KEY);
    atexit(cleanup);
}

/* A client trusting the cluster CA, with optional credentials and extra headers. */
static struct corral_client *client(const char *token, const char *cert, const char *key,
                                    const char *const *headers)
{
    struct corral_client_config cfg = {.server = api.url,
                                       .ca_pem = ca_cert,
                                       .token = token,
                                       .cert_pem = cert,
                                       .key_pem = key,
                                       .timeout_ms = 10000,
                                       .extra_headers = headers};
    struct corral_client *c;
    CHECK_INT_EQ(corral_client_new(&cfg, &c), 0);
    return c;
}

static struct corral_client *admin(const char *context)
{
    char path[700];
    struct corral_kubeconfig kc;
    struct corral_parse_error err = {0};
    struct corral_client *c;
    snprintf(path, sizeof(path), "%s/%s", dir, CORRAL_INIT_KUBECONFIG);
    CHECK_INT_EQ(corral_kubeconfig_load(path, context, &kc, &err), 0);
    CHECK_INT_EQ(corral_kubeconfig_client(&kc, api.url, &c), 0);
    corral_kubeconfig_clear(&kc);
    return c;
}

/* A user certificate signed by the cluster CA. */
static struct corral_client *user(const char *cn, const char *group)
{
    const char *orgs[] = {group, NULL};
    struct corral_pki_cert_spec spec = {
        .cn = cn, .orgs = group ? orgs : NULL, .usage = CORRAL_PKI_USAGE_CLIENT, .days = 1};
    char *cert, *key;
    CHECK_INT_EQ(corral_pki_issue(ca_cert, ca_key, &spec, NULL, 0, &cert, &key), 0);
    struct corral_client *c = client(NULL, cert, key, NULL);
    free(cert);
    corral_pki_free_secret(key);
    return c;
}

static int create(struct corral_client *c, const char *path, const char *json)
{
    json_t *obj = json_loads(json, 0, NULL);
    CHECK(obj != NULL);
    int rc = corral_client_create(c, path, obj, NULL);
    json_decref(obj);
    return rc;
}

static int patch(struct corral_client *c, const char *path, const char *json)
{
    json_t *obj = json_loads(json, 0, NULL);
    int rc = corral_client_patch(c, path, CORRAL_PATCH_MERGE, obj, NULL);
    json_decref(obj);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */

static void test_anonymous_and_bad_credentials(void)
{
    struct corral_client *anon = client(NULL, NULL, NULL, NULL);
    json_t *out;
    CHECK_INT_EQ(corral_client_get(anon, "/version", &out), 0);
    json_decref(out);
    struct corral_response r;
    CHECK_INT_EQ(corral_client_request(anon, "GET", "/healthz", NULL, NULL, 0, &r), 0);
    CHECK_INT_EQ(r.status, 200);
    corral_response_clear(&r);
    CHECK_INT_EQ(corral_client_get(anon, "/api/v1/namespaces", NULL), CORRAL_EUNAUTHORIZED);
    CHECK_INT_EQ(create(anon, "/api/v1/namespaces", "{\"metadata\":{\"name\":\"evil\"}}"),
                 CORRAL_EUNAUTHORIZED);
    CHECK_INT_EQ(corral_client_get(anon, "/api", NULL), CORRAL_EUNAUTHORIZED);
    corral_client_free(anon);
    struct corral_client *bad = client("not-a-token", NULL, NULL, NULL);
    CHECK_INT_EQ(corral_client_get(bad, "/version", NULL), CORRAL_EUNAUTHORIZED);
    CHECK_STR_CONTAINS(corral_client_error(bad), "invalid bearer token");
    corral_client_free(bad);
    /* a certificate from another CA is refused, not downgraded to anonymous */
    char *ca2, *key2, *cert, *key;
    CHECK_INT_EQ(corral_pki_ca_new("evil", 1, CORRAL_PKI_KEY_ECDSA_P256, &ca2, &key2), 0);
    const char *orgs[] = {"system:masters", NULL};
    struct corral_pki_cert_spec spec = {
        .cn = "admin", .orgs = orgs, .usage = CORRAL_PKI_USAGE_CLIENT, .days = 1};
    CHECK_INT_EQ(corral_pki_issue(ca2, key2, &spec, NULL, 0, &cert, &key), 0);
    struct corral_client *forged = client(NULL, cert, key, NULL);
    int rc = corral_client_get(forged, "/version", NULL);
    /* the TLS layer may already refuse the handshake; either way nothing is served */
    CHECK(rc == CORRAL_EUNAUTHORIZED || rc == -EPROTO || rc == CORRAL_EUNAVAILABLE);
    corral_client_free(forged);
    free(ca2);
    free(cert);
    corral_pki_free_secret(key2);
    corral_pki_free_secret(key);
}

static void test_admin_and_tenant(void)
{
    struct corral_client *adm = admin("admin@corral"), *tok = admin("admin-token@corral");
    CHECK_INT_EQ(create(adm, "/api/v1/namespaces", "{\"metadata\":{\"name\":\"team-a\"}}"), 0);
    CHECK_INT_EQ(create(tok, "/api/v1/namespaces", "{\"metadata\":{\"name\":\"team-b\"}}"), 0);
    struct corral_client *alice = user("alice", "devs");
    const char *pod = "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"web\"},"
                      "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"nginx\"}]}}";
    CHECK_INT_EQ(create(alice, "/api/v1/namespaces/team-a/pods", pod), CORRAL_EFORBIDDEN);
    CHECK_STR_EQ(corral_client_error(alice), "pods is forbidden: User \"alice\" cannot create "
                                             "resource \"pods\" in API group \"\" in the "
                                             "namespace \"team-a\"");
    CHECK_INT_EQ(create(adm, "/apis/rbac.authorization.k8s.io/v1/namespaces/team-a/rolebindings",
                        "{\"apiVersion\":\"rbac.authorization.k8s.io/v1\",\"kind\":"
                        "\"RoleBinding\",\"metadata\":{\"name\":\"devs-edit\"},\"roleRef\":{"
                        "\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\","
                        "\"name\":\"edit\"},\"subjects\":[{\"apiGroup\":"
                        "\"rbac.authorization.k8s.io\",\"kind\":\"Group\",\"name\":\"devs\"}]}"),
                 0);
    CHECK_INT_EQ(create(alice, "/api/v1/namespaces/team-a/pods", pod), 0);
    CHECK_INT_EQ(create(alice, "/api/v1/namespaces/team-b/pods", pod), CORRAL_EFORBIDDEN);
    CHECK_INT_EQ(corral_client_get(alice, "/api/v1/nodes", NULL), CORRAL_EFORBIDDEN);
    CHECK_INT_EQ(corral_client_get(alice, "/api/v1/namespaces/team-a/pods", NULL), 0);
    CHECK_INT_EQ(corral_client_get(alice, "/apis", NULL), 0); /* discovery */
    CHECK_INT_EQ(corral_client_get(alice, "/metrics", NULL), CORRAL_EFORBIDDEN);
    /* what kubectl auth can-i asks */
    json_t *review = json_loads("{\"apiVersion\":\"authorization.k8s.io/v1\",\"kind\":"
                                "\"SelfSubjectAccessReview\",\"spec\":{\"resourceAttributes\":{"
                                "\"namespace\":\"team-b\",\"verb\":\"create\",\"resource\":"
                                "\"pods\"}}}",
                                0, NULL),
           *out;
    CHECK_INT_EQ(corral_client_create(
                     alice, "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", review, &out),
                 0);
    CHECK(json_is_false(json_object_get(json_object_get(out, "status"), "allowed")));
    json_decref(out);
    json_decref(review);
    corral_client_free(alice);
    corral_client_free(adm);
    corral_client_free(tok);
}

static void test_impersonation(void)
{
    const char *as_alice[] = {"Impersonate-User: alice", "Impersonate-Group: devs", NULL};
    struct corral_kubeconfig kc;
    struct corral_parse_error err = {0};
    char kpath[700];
    snprintf(kpath, sizeof(kpath), "%s/%s", dir, CORRAL_INIT_KUBECONFIG);
    CHECK_INT_EQ(corral_kubeconfig_load(kpath, NULL, &kc, &err), 0);
    struct corral_client *as = client(NULL, kc.cert_pem, kc.key_pem, as_alice);
    corral_kubeconfig_clear(&kc);
    CHECK_INT_EQ(corral_client_get(as, "/api/v1/namespaces/team-a/pods", NULL), 0);
    CHECK_INT_EQ(corral_client_get(as, "/api/v1/namespaces/team-b/pods", NULL), CORRAL_EFORBIDDEN);
    CHECK_STR_CONTAINS(corral_client_error(as), "User \"alice\"");
    CHECK_INT_EQ(create(as, "/api/v1/namespaces/team-a/configmaps",
                        "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{"
                        "\"name\":\"made-as-alice\"},\"data\":{\"k\":\"v\"}}"),
                 0);
    /* alice may not impersonate anyone */
    const char *as_admin[] = {"Impersonate-User: admin", "Impersonate-Group: system:masters", NULL};
    const char *orgs[] = {"devs", NULL};
    struct corral_pki_cert_spec spec = {
        .cn = "alice", .orgs = orgs, .usage = CORRAL_PKI_USAGE_CLIENT, .days = 1};
    char *cert, *key;
    CHECK_INT_EQ(corral_pki_issue(ca_cert, ca_key, &spec, NULL, 0, &cert, &key), 0);
    struct corral_client *escalate = client(NULL, cert, key, as_admin);
    CHECK_INT_EQ(corral_client_get(escalate, "/api/v1/nodes", NULL), CORRAL_EFORBIDDEN);
    CHECK_STR_CONTAINS(corral_client_error(escalate), "cannot impersonate");
    free(cert);
    corral_pki_free_secret(key);
    corral_client_free(escalate);
    corral_client_free(as);
}

/* Joins a node with the bootstrap token: returns a client holding the node's certificate. */
static struct corral_client *join(const char *node, int *rc_out)
{
    char *boot_file = slurp(CORRAL_INIT_BOOTSTRAP_TOKENS), token[32], cn[128], *key, *csr;
    CHECK_INT_EQ(sscanf(strchr(boot_file, '\n') + 1, "%31s", token), 1);
    corral_pki_free_secret(boot_file);
    const char *orgs[] = {"system:nodes", NULL};
    snprintf(cn, sizeof(cn), "system:node:%s", node);
    CHECK_INT_EQ(corral_pki_key_new(CORRAL_PKI_KEY_ECDSA_P256, &key), 0);
    CHECK_INT_EQ(corral_pki_csr_new(key, cn, orgs, &csr), 0);
    char *b64 = corral_pki_base64_encode(csr, strlen(csr));
    json_t *obj = json_pack("{s:s,s:s,s:{s:s},s:{s:s,s:s,s:[s,s]}}", "apiVersion",
                            "certificates.k8s.io/v1", "kind", "CertificateSigningRequest",
                            "metadata", "name", node, "spec", "request", b64, "signerName",
                            "kubernetes.io/kube-apiserver-client-kubelet", "usages",
                            "digital signature", "client auth"),
           *out = NULL;
    struct corral_client *boot = client(token, NULL, NULL, NULL);
    *rc_out = corral_client_create(boot, "/apis/certificates.k8s.io/v1/certificatesigningrequests",
                                   obj, &out);
    struct corral_client *c = NULL;
    if (*rc_out == 0) {
        char *cert;
        size_t len;
        const char *b =
            json_string_value(json_object_get(json_object_get(out, "status"), "certificate"));
        CHECK(b != NULL);
        CHECK_INT_EQ(corral_pki_base64_decode(b, &cert, &len), 0);
        c = client(NULL, cert, key, NULL);
        free(cert);
    } else {
        fprintf(stderr, "join %s: %s\n", node, corral_client_error(boot));
    }
    json_decref(out);
    json_decref(obj);
    corral_client_free(boot);
    free(b64);
    free(csr);
    corral_pki_free_secret(key);
    return c;
}

static void test_node_join_and_restriction(void)
{
    int rc;
    struct corral_client *node = join("gpu-1", &rc), *adm = admin("admin@corral");
    CHECK_INT_EQ(rc, 0);
    const char *mine =
        "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"gpu-1\"}}";
    const char *other =
        "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"gpu-2\"}}";
    CHECK_INT_EQ(create(node, "/api/v1/nodes", mine), 0);
    CHECK_INT_EQ(create(node, "/api/v1/nodes", other), CORRAL_EFORBIDDEN);
    CHECK_STR_CONTAINS(corral_client_error(node), "may only modify its own Node");
    CHECK_INT_EQ(create(adm, "/api/v1/nodes", other), 0);
    CHECK_INT_EQ(patch(node, "/api/v1/nodes/gpu-1/status", "{\"status\":{\"phase\":\"Running\"}}"),
                 0);
    CHECK_INT_EQ(patch(node, "/api/v1/nodes/gpu-2/status", "{\"status\":{\"phase\":\"Running\"}}"),
                 CORRAL_EFORBIDDEN);
    CHECK_INT_EQ(create(node, "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
                        "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\","
                        "\"metadata\":{\"name\":\"gpu-1\"},\"spec\":{\"holderIdentity\":"
                        "\"gpu-1\"}}"),
                 0);
    /* pods: only its own, only with the node field selector */
    const char *bound = "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\"},"
                        "\"spec\":{\"nodeName\":\"%s\",\"containers\":[{\"name\":\"c\","
                        "\"image\":\"x\"}]}}";
    char body[512];
    snprintf(body, sizeof(body), bound, "on-1", "gpu-1");
    CHECK_INT_EQ(create(adm, "/api/v1/namespaces/team-a/pods", body), 0);
    snprintf(body, sizeof(body), bound, "on-2", "gpu-2");
    CHECK_INT_EQ(create(adm, "/api/v1/namespaces/team-a/pods", body), 0);
    CHECK_INT_EQ(corral_client_get(node, "/api/v1/pods", NULL), CORRAL_EFORBIDDEN);
    CHECK_INT_EQ(corral_client_get(node, "/api/v1/pods?fieldSelector=spec.nodeName%3Dgpu-1", NULL),
                 0);
    CHECK_INT_EQ(patch(node, "/api/v1/namespaces/team-a/pods/on-1/status",
                       "{\"status\":{\"phase\":\"Running\"}}"),
                 0);
    CHECK_INT_EQ(patch(node, "/api/v1/namespaces/team-a/pods/on-2/status",
                       "{\"status\":{\"phase\":\"Running\"}}"),
                 CORRAL_EFORBIDDEN);
    CHECK_INT_EQ(create(node, "/api/v1/namespaces/team-a/pods/on-2/binding",
                        "{\"apiVersion\":\"v1\",\"kind\":\"Binding\",\"metadata\":{\"name\":"
                        "\"on-2\"},\"target\":{\"kind\":\"Node\",\"name\":\"gpu-1\"}}"),
                 CORRAL_EFORBIDDEN);
    CHECK_INT_EQ(corral_client_get(node, "/api/v1/namespaces/team-a/secrets", NULL),
                 CORRAL_EFORBIDDEN);
    /* the bootstrap token cannot take over a node that exists */
    struct corral_client *again = join("gpu-1", &rc);
    CHECK_INT_EQ(rc, CORRAL_EFORBIDDEN);
    CHECK(again == NULL);
    corral_client_free(node);
    corral_client_free(adm);
}

static void test_audit_log(void)
{
    char path[700], *text;
    snprintf(path, sizeof(path), "%s/audit.log", data_dir);
    CHECK_INT_EQ(corral_pki_read_file(path, &text, NULL), 0);
    bool anon_401 = false, alice_403 = false, alice_201 = false, csr = false;
    int lines = 0;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        json_t *e = json_loads(line, 0, NULL);
        CHECK(e != NULL);
        lines++;
        const char *who =
            json_string_value(json_object_get(json_object_get(e, "user"), "username"));
        const char *verb = json_string_value(json_object_get(e, "verb"));
        const char *uri = json_string_value(json_object_get(e, "requestURI"));
        int code =
            (int)json_integer_value(json_object_get(json_object_get(e, "responseStatus"), "code"));
        CHECK(strcmp(verb, "get") != 0 && strcmp(verb, "list") != 0); /* reads are not logged */
        /* the anonymous POST of a namespace in anonymous_and_bad_credentials */
        anon_401 |= code == 401 && uri && strcmp(uri, "/api/v1/namespaces") == 0;
        alice_403 |= strcmp(who, "alice") == 0 && code == 403 && strcmp(verb, "create") == 0;
        alice_201 |= strcmp(who, "alice") == 0 && code == 201;
        csr |= strncmp(who, "system:bootstrap:", 17) == 0 && code == 201;
        json_decref(e);
    }
    CHECK(lines > 5);
    CHECK(anon_401 && alice_403 && alice_201 && csr);
    free(text);
}

/* Runs `kubectl ARGS` as the admin; returns its exit status. */
static int kubectl(const char *args, const char *out)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "HOME=%s KUBECONFIG= timeout 60 /usr/bin/kubectl --kubeconfig %s/%s --server %s %s "
             ">%s 2>&1",
             corral_test_tmpdir(), dir, CORRAL_INIT_KUBECONFIG, api.url, args, out);
    return system(cmd);
}

static void test_kubectl_auth_can_i(void)
{
    if (access("/usr/bin/kubectl", X_OK) != 0) {
        fprintf(stderr, "skipped: /usr/bin/kubectl is not installed\n");
        return;
    }
    char cmd[2048], out[700];
    snprintf(out, sizeof(out), "%s/kubectl.out", corral_test_tmpdir());
    /* RBAC objects made by kubectl's typed client (protobuf bodies) */
    CHECK_INT_EQ(kubectl("create clusterrole cm-reader --verb=get --resource=configmaps "
                         "--resource-name=cfg",
                         out),
                 0);
    CHECK_INT_EQ(kubectl("create rolebinding carol-cm -n team-a --clusterrole=cm-reader "
                         "--user=carol",
                         out),
                 0);
    CHECK_INT_EQ(kubectl("create clusterrolebinding bob-view --clusterrole=view --user=bob", out),
                 0);
    const char *checks[][2] = {
        {"create pods -n team-a --as=alice --as-group=devs", "yes"},
        {"create pods -n team-b --as=alice --as-group=devs", "no"},
        {"list secrets -n team-a --as=system:node:gpu-1 --as-group=system:nodes", "no"},
        {"update nodes/gpu-1 --as=system:node:gpu-1 --as-group=system:nodes", "yes"},
        {"update nodes/gpu-2 --as=system:node:gpu-1 --as-group=system:nodes", "no"},
        {"get configmaps/cfg -n team-a --as=carol", "yes"},
        {"get configmaps/other -n team-a --as=carol", "no"},
        {"get configmaps/cfg -n team-b --as=carol", "no"},
        {"list pods -A --as=bob", "yes"},
        {"delete pods -n team-a --as=bob", "no"},
    };
    for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
        snprintf(cmd, sizeof(cmd),
                 "HOME=%s KUBECONFIG= timeout 60 /usr/bin/kubectl --kubeconfig %s/%s --server %s "
                 "auth can-i %s >%s 2>/dev/null",
                 corral_test_tmpdir(), dir, CORRAL_INIT_KUBECONFIG, api.url, checks[i][0], out);
        if (system(cmd) < 0)
            CHECK(!"cannot run kubectl");
        char *text;
        CHECK_INT_EQ(corral_pki_read_file(out, &text, NULL), 0);
        if (strncmp(text, checks[i][1], strlen(checks[i][1])) != 0)
            fprintf(stderr, "kubectl auth can-i %s: %s\n", checks[i][0], text);
        CHECK(strncmp(text, checks[i][1], strlen(checks[i][1])) == 0);
        free(text);
    }
}

int main(int argc, char **argv)
{
    if (argc > 1)
        corral_test_set_exe(argv[1]);
    start();
    static const struct corral_test tests[] = {CORRAL_TEST(anonymous_and_bad_credentials),
                                               CORRAL_TEST(admin_and_tenant),
                                               CORRAL_TEST(impersonation),
                                               CORRAL_TEST(node_join_and_restriction),
                                               CORRAL_TEST(audit_log),
                                               CORRAL_TEST(kubectl_auth_can_i)};
    for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
        fprintf(stderr, "-- %s\n", tests[i].name);
        tests[i].fn();
        fprintf(stderr, "ok %s\n", tests[i].name);
    }
    return 0;
}
