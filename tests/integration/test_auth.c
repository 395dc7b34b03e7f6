/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Integration tests for "nothing unauthenticated mutates": `corral init`, then the real
 * apiserver serving HTTPS with the generated PKI. Every route the server advertises (every
 * kind in discovery, every collection, object and subresource path) is swept with every
 * mutating method: without credentials each must answer 401, with a viewer's certificate 403.
 * Then node restriction over the wire, node join with a bootstrap token, bearer tokens, the
 * anonymous allow-list, a client that trusts the wrong CA, and the audit log.
 */
#include "client.h"
#include "daemon.h"
#include "error.h"
#include "harness.h"
#include "pki.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char cluster[512], url[256];
static char *ca_pem, *ca_key;
static struct corral_daemon api;

static char *slurp(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    fclose(f);
    buf[n] = 0;
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = 0;
    return buf;
}

static void run_init(int port)
{
    char port_s[16];
    snprintf(port_s, sizeof(port_s), "%d", port);
    pid_t pid = fork();
    if (pid == 0) {
        execl(corral_test_exe(), corral_test_exe(), "init", "--dir", cluster, "--address",
              "127.0.0.1", "--port", port_s, (char *)NULL);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void start_cluster(void)
{
    snprintf(cluster, sizeof(cluster), "%s/cluster", corral_test_tmpdir());
    int port = corral_test_free_port();
    run_init(port);
    char listen[64], data[600], audit[600];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    snprintf(data, sizeof(data), "%s/data", corral_test_tmpdir());
    snprintf(audit, sizeof(audit), "%s/audit.log", corral_test_tmpdir());
    const char *argv[] = {"apiserver", "--listen", listen, "--data-dir", data, "--cluster-dir",
                          cluster, "--audit-log-path", audit, NULL};
    CHECK(corral_daemon_start(&api, argv, 20000) == 0);
    snprintf(url, sizeof(url), "%s", api.url);
    CHECK(strncmp(url, "https://", 8) == 0);
    char pki[600];
    snprintf(pki, sizeof(pki), "%s/pki", cluster);
    ca_pem = slurp(pki, "ca.crt");
    ca_key = slurp(pki, "ca.key");
}

/* A client presenting a certificate for cn/orgs signed by the cluster CA. */
static struct corral_client *cert_client(const char *cn, const char *const *orgs)
{
    struct corral_pki_cert_spec spec = {.cn = cn, .orgs = orgs,
                                        .usage = CORRAL_PKI_USAGE_CLIENT, .days = 1};
    char *cert, *key;
    CHECK(corral_pki_issue(ca_pem, ca_key, &spec, NULL, CORRAL_PKI_KEY_ECDSA_P256, &cert,
                           &key) == 0);
    struct corral_client_config cfg = {.server = url, .ca_pem = ca_pem, .cert_pem = cert,
                                       .key_pem = key};
    struct corral_client *c;
    CHECK(corral_client_new(&cfg, &c) == 0);
    free(cert);
    corral_pki_free_secret(key);
    return c;
}

static struct corral_client *token_client(const char *token)
{
    struct corral_client_config cfg = {.server = url, .ca_pem = ca_pem, .token = token};
    struct corral_client *c;
    CHECK(corral_client_new(&cfg, &c) == 0);
    return c;
}

static long status_of(struct corral_client *c, const char *method, const char *path,
                      const char *body)
{
    struct corral_response r;
    int rc = corral_client_request(c, method, path, body ? "application/json" : NULL, body,
                                   body ? strlen(body) : 0, &r);
    if (rc != 0) {
        fprintf(stderr, "%s %s: %s (%d)\n", method, path, corral_client_error(c), rc);
        if (api.pid > 0 && kill(api.pid, 0) < 0)
            fprintf(stderr, "the apiserver died\n");
        corral_daemon_dump(&api);
    }
    CHECK(rc == 0);
    long s = r.status;
    corral_response_clear(&r);
    return s;
}

/* Adds "METHOD PATH" for every mutating method on every resource of one APIResourceList. */
static void add_paths(json_t *out, const char *prefix, const json_t *resources)
{
    static const char *const mutating[] = {"POST", "PUT", "PATCH", "DELETE", NULL};
    size_t i;
    json_t *r;
    json_array_foreach(resources, i, r)
    {
        const char *name = json_string_value(json_object_get(r, "name"));
        bool ns = json_is_true(json_object_get(r, "namespaced"));
        bool stored = false;
        size_t k;
        json_t *verb;
        json_array_foreach(json_object_get(r, "verbs"), k, verb)
            stored |= strcmp(json_string_value(verb), "get") == 0;
        if (!stored)
            continue; /* access reviews: answered for any authenticated caller, never stored */
        char plural[128], path[800];
        const char *slash = strchr(name, '/');
        snprintf(plural, sizeof(plural), "%.*s", (int)(slash ? slash - name : (long)strlen(name)),
                 name);
        const char *base = ns ? "/namespaces/default" : "";
        for (const char *const *m = mutating; *m; m++) {
            if (slash) {
                snprintf(path, sizeof(path), "%s %s%s/%s/probe%s", *m, prefix, base, plural, slash);
                json_array_append_new(out, json_string(path));
                continue;
            }
            snprintf(path, sizeof(path), "%s %s%s/%s", *m, prefix, base, plural);
            json_array_append_new(out, json_string(path));
            snprintf(path, sizeof(path), "%s %s%s/%s/probe", *m, prefix, base, plural);
            json_array_append_new(out, json_string(path));
        }
    }
}

static json_t *get_json(struct corral_client *c, const char *path)
{
    json_t *out = NULL;
    CHECK(corral_client_get(c, path, &out) == 0);
    return out;
}

/* Every resource the server advertises, from the discovery documents. */
static json_t *discovered_paths(struct corral_client *admin)
{
    json_t *paths = json_array();
    json_t *core = get_json(admin, "/api/v1");
    add_paths(paths, "/api/v1", json_object_get(core, "resources"));
    json_decref(core);
    json_t *groups = get_json(admin, "/apis");
    size_t i, j;
    json_t *g, *v;
    json_array_foreach(json_object_get(groups, "groups"), i, g)
    {
        json_array_foreach(json_object_get(g, "versions"), j, v)
        {
            char prefix[300];
            snprintf(prefix, sizeof(prefix), "/apis/%s",
                     json_string_value(json_object_get(v, "groupVersion")));
            json_t *list = get_json(admin, prefix);
            add_paths(paths, prefix, json_object_get(list, "resources"));
            json_decref(list);
        }
    }
    json_decref(groups);
    return paths;
}

static struct corral_client *admin_client(void)
{
    static const char *const masters[] = {"system:masters", NULL};
    return cert_client("admin", masters);
}

static void test_every_mutating_route(void)
{
    struct corral_client *admin = admin_client();
    json_t *paths = discovered_paths(admin);
    CHECK(json_array_size(paths) > 200);
    /* a viewer: bound to the built-in read-only role */
    const char *binding = "{\"apiVersion\":\"rbac.authorization.k8s.io/v1\","
                          "\"kind\":\"ClusterRoleBinding\",\"metadata\":{\"name\":\"viewer\"},"
                          "\"subjects\":[{\"kind\":\"User\",\"name\":\"viewer\","
                          "\"apiGroup\":\"rbac.authorization.k8s.io\"}],\"roleRef\":{"
                          "\"kind\":\"ClusterRole\",\"name\":\"view\",\"apiGroup\":"
                          "\"rbac.authorization.k8s.io\"}}";
    CHECK_INT_EQ(status_of(admin, "POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
                           binding),
                 201);
    struct corral_client_config anon_cfg = {.server = url, .ca_pem = ca_pem};
    struct corral_client *anon, *viewer = cert_client("viewer", NULL);
    CHECK(corral_client_new(&anon_cfg, &anon) == 0);
    size_t i;
    json_t *p;
    int checked = 0;
    json_array_foreach(paths, i, p)
    {
        char method[16], path[800];
        CHECK(sscanf(json_string_value(p), "%15s %799s", method, path) == 2);
        long a = status_of(anon, method, path, "{}");
        long v = status_of(viewer, method, path, "{}");
        if (a != 401 || v != 403)
            fprintf(stderr, "%s %s: anonymous %ld, viewer %ld\n", method, path, a, v);
        CHECK_INT_EQ(a, 401);
        CHECK_INT_EQ(v, 403);
        checked++;
    }
    fprintf(stderr, "%d mutating method/path pairs: 401 anonymous, 403 viewer\n", checked);
    /* the viewer can read, the anonymous caller only the public paths */
    CHECK_INT_EQ(status_of(viewer, "GET", "/api/v1/namespaces/default/pods", NULL), 200);
    CHECK_INT_EQ(status_of(viewer, "GET", "/api/v1/namespaces/default/secrets", NULL), 403);
    CHECK_INT_EQ(status_of(anon, "GET", "/api/v1/namespaces/default/pods", NULL), 401);
    CHECK_INT_EQ(status_of(anon, "GET", "/api", NULL), 401);
    CHECK_INT_EQ(status_of(anon, "GET", "/version", NULL), 200);
    CHECK_INT_EQ(status_of(anon, "GET", "/healthz", NULL), 200);
    CHECK_INT_EQ(status_of(anon, "GET", "/readyz", NULL), 200);
    json_decref(paths);
    corral_client_free(anon);
    corral_client_free(viewer);
    corral_client_free(admin);
}

static json_t *node_object(const char *name)
{
    return json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "Node", "metadata",
                     "name", name);
}

static void test_node_restriction(void)
{
    struct corral_client *admin = admin_client();
    static const char *const nodes[] = {"system:nodes", NULL};
    struct corral_client *a = cert_client("system:node:node-a", nodes);
    json_t *na = node_object("node-a"), *nb = node_object("node-b");
    CHECK(corral_client_create(a, "/api/v1/nodes", na, NULL) == 0);
    CHECK(corral_client_create(a, "/api/v1/nodes", nb, NULL) == CORRAL_EFORBIDDEN);
    CHECK(corral_client_create(admin, "/api/v1/nodes", nb, NULL) == 0);
    json_t *patch = json_pack("{s:{s:{s:s}}}", "metadata", "labels", "owned", "yes");
    CHECK(corral_client_patch(a, "/api/v1/nodes/node-a", CORRAL_PATCH_MERGE, patch, NULL) == 0);
    CHECK(corral_client_patch(a, "/api/v1/nodes/node-b", CORRAL_PATCH_MERGE, patch, NULL) ==
          CORRAL_EFORBIDDEN);
    CHECK(corral_client_delete(a, "/api/v1/nodes/node-b", NULL, NULL) == CORRAL_EFORBIDDEN);
    /* a pod bound to node-b: node-a may not touch its status, nor bind anything */
    json_t *pod = json_pack("{s:s, s:s, s:{s:s}, s:{s:s, s:[{s:s, s:s}]}}", "apiVersion", "v1",
                            "kind", "Pod", "metadata", "name", "on-b", "spec", "nodeName",
                            "node-b", "containers", "name", "c", "image", "busybox");
    CHECK(corral_client_create(admin, "/api/v1/namespaces/default/pods", pod, NULL) == 0);
    json_t *st = json_pack("{s:{s:s}}", "status", "phase", "Running");
    CHECK(corral_client_patch(a, "/api/v1/namespaces/default/pods/on-b/status",
                              CORRAL_PATCH_MERGE, st, NULL) == CORRAL_EFORBIDDEN);
    json_t *unbound = json_pack("{s:s, s:s, s:{s:s}, s:{s:[{s:s, s:s}]}}", "apiVersion", "v1",
                                "kind", "Pod", "metadata", "name", "free", "spec", "containers",
                                "name", "c", "image", "busybox");
    CHECK(corral_client_create(admin, "/api/v1/namespaces/default/pods", unbound, NULL) == 0);
    const char *bind = "{\"apiVersion\":\"v1\",\"kind\":\"Binding\",\"metadata\":{\"name\":"
                       "\"free\"},\"target\":{\"kind\":\"Node\",\"name\":\"node-a\"}}";
    CHECK_INT_EQ(status_of(a, "POST", "/api/v1/namespaces/default/pods/free/binding", bind), 403);
    CHECK_INT_EQ(status_of(a, "GET", "/api/v1/namespaces/default/secrets", NULL), 403);
    CHECK_INT_EQ(status_of(a, "GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-a", NULL),
                 200);
    CHECK_INT_EQ(status_of(a, "GET", "/api/v1/pods", NULL), 403);
    /* the scheduler's way, as the admin: works */
    CHECK_INT_EQ(status_of(admin, "POST", "/api/v1/namespaces/default/pods/free/binding", bind),
                 201);
    json_decref(na);
    json_decref(nb);
    json_decref(patch);
    json_decref(pod);
    json_decref(st);
    json_decref(unbound);
    corral_client_free(a);
    corral_client_free(admin);
}

static json_t *csr_for(const char *node, char **key_out)
{
    char cn[128], *key, *csr;
    const char *orgs[] = {"system:nodes", NULL};
    snprintf(cn, sizeof(cn), "system:node:%s", node);
    CHECK(corral_pki_key_new(CORRAL_PKI_KEY_ECDSA_P256, &key) == 0);
    CHECK(corral_pki_csr_new(key, cn, orgs, &csr) == 0);
    char *b64 = corral_pki_base64_encode(csr, strlen(csr));
    json_t *obj = json_pack("{s:s, s:s, s:{s:s}, s:{s:s, s:s, s:[s, s]}}", "apiVersion",
                            "certificates.k8s.io/v1", "kind", "CertificateSigningRequest",
                            "metadata", "name", node, "spec", "request", b64, "signerName",
                            "kubernetes.io/kube-apiserver-client-kubelet", "usages",
                            "digital signature", "client auth");
    free(b64);
    free(csr);
    *key_out = key;
    return obj;
}

static void test_node_join_and_tokens(void)
{
    char *tokens = slurp(cluster, "bootstrap-tokens");
    char boot[128] = "";
    for (char *line = strtok(tokens, "\n"); line && !boot[0]; line = strtok(NULL, "\n"))
        if (line[0] != '#')
            CHECK(sscanf(line, "%127s", boot) == 1);
    free(tokens);
    CHECK(boot[0] != 0);
    struct corral_client *b = token_client(boot);
    /* the bootstrap token may ask for a certificate, nothing else */
    CHECK_INT_EQ(status_of(b, "GET", "/api/v1/namespaces/default/pods", NULL), 403);
    char *key;
    json_t *csr = csr_for("joiner", &key), *signed_csr = NULL;
    CHECK(corral_client_create(b, "/apis/certificates.k8s.io/v1/certificatesigningrequests", csr,
                               &signed_csr) == 0);
    const char *b64 = json_string_value(json_object_get(json_object_get(signed_csr, "status"),
                                                        "certificate"));
    CHECK(b64 != NULL);
    char *cert;
    size_t len;
    CHECK(corral_pki_base64_decode(b64, &cert, &len) == 0);
    struct corral_client_config cfg = {.server = url, .ca_pem = ca_pem, .cert_pem = cert,
                                       .key_pem = key};
    struct corral_client *node;
    CHECK(corral_client_new(&cfg, &node) == 0);
    json_t *n = node_object("joiner");
    CHECK(corral_client_create(node, "/api/v1/nodes", n, NULL) == 0);
    json_decref(n);
    /* admin token works, a wrong token is 401 (never anonymous) */
    char *admin_token = slurp(cluster, "admin.token");
    struct corral_client *t = token_client(admin_token), *bad = token_client("nope.nope");
    CHECK_INT_EQ(status_of(t, "GET", "/api/v1/namespaces", NULL), 200);
    CHECK_INT_EQ(status_of(bad, "GET", "/version", NULL), 401);
    /* a client that trusts another CA refuses the server */
    char *other_ca, *other_key;
    CHECK(corral_pki_ca_new("someone-else", 1, CORRAL_PKI_KEY_ECDSA_P256, &other_ca,
                            &other_key) == 0);
    struct corral_client_config wrong = {.server = url, .ca_pem = other_ca, .token = admin_token};
    struct corral_client *w;
    CHECK(corral_client_new(&wrong, &w) == 0);
    struct corral_response r;
    CHECK(corral_client_request(w, "GET", "/version", NULL, NULL, 0, &r) == -EPROTO);
    free(admin_token);
    free(other_ca);
    corral_pki_free_secret(other_key);
    free(cert);
    corral_pki_free_secret(key);
    json_decref(csr);
    json_decref(signed_csr);
    corral_client_free(b);
    corral_client_free(node);
    corral_client_free(t);
    corral_client_free(bad);
    corral_client_free(w);
}

static void test_audit_log(void)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/audit.log", corral_test_tmpdir());
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    char line[8192];
    int lines = 0, denied = 0, created_node = 0;
    while (fgets(line, sizeof(line), f)) {
        json_t *ev = json_loads(line, 0, NULL);
        CHECK(ev != NULL);
        CHECK_STR_EQ(json_string_value(json_object_get(ev, "apiVersion")), "audit.k8s.io/v1");
        json_int_t code = json_integer_value(json_object_get(json_object_get(ev, "responseStatus"),
                                                             "code"));
        const char *user = json_string_value(json_object_get(json_object_get(ev, "user"),
                                                             "username"));
        denied += code == 401 || code == 403;
        created_node += code == 201 && user && strcmp(user, "system:node:joiner") == 0;
        CHECK(!strstr(line, "Bearer")); /* no credential ever reaches the log */
        json_decref(ev);
        lines++;
    }
    fclose(f);
    CHECK(lines > 400);
    CHECK(denied > 400);
    CHECK_INT_EQ(created_node, 1);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        corral_test_set_exe(argv[1]);
    start_cluster();
    static const struct corral_test tests[] = {
        CORRAL_TEST(every_mutating_route), CORRAL_TEST(node_restriction),
        CORRAL_TEST(node_join_and_tokens), CORRAL_TEST(audit_log)};
    for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
        fprintf(stderr, "-- %s\n", tests[i].name);
        tests[i].fn();
        fprintf(stderr, "ok %s\n", tests[i].name);
    }
    CHECK_INT_EQ(corral_daemon_stop(&api, SIGTERM), 0);
    free(ca_pem);
    corral_pki_free_secret(ca_key);
    return 0;
}
