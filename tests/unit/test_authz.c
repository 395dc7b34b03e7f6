/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests for apiserver/authz.h against the real embedded store (SQLite in a temporary
 * directory): built-in roles, the tenant (edit) and viewer roles, Roles with resourceNames,
 * subjects of each kind, non-resource paths, RBAC changes taking effect on the next request
 * (also across a compaction), node restriction, and access reviews as `kubectl auth can-i`
 * sends them.
 */
#include "authz.h"
#include "error.h"
#include "harness.h"
#include "test_scratch.h"
#include "store.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static char dir[64];
static struct corral_store *st;
static struct corral_authz *z;

static void teardown(void)
{
    char cmd[128];
    corral_authz_free(z);
    corral_store_close(st);
    z = NULL;
    st = NULL;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

static void setup(void)
{
    if (z)
        return;
    char *d = test_scratch_dir();
    snprintf(dir, sizeof(dir), "%s", d);
    free(d);
    CHECK_INT_EQ(corral_store_open_sqlite(dir, &st), 0);
    CHECK_INT_EQ(corral_authz_bootstrap(st), 0);
    CHECK_INT_EQ(corral_authz_bootstrap(st), 0); /* idempotent */
    CHECK_INT_EQ(corral_authz_new(st, &z), 0);
    atexit(teardown);
}

static void put(const char *key, const char *json)
{
    json_error_t err;
    json_t *obj = json_loads(json, 0, &err);
    if (!obj)
        fprintf(stderr, "bad test JSON: %s\n", err.text);
    CHECK(obj != NULL);
    CHECK_INT_EQ(corral_store_create(st, key, obj, NULL), 0);
}

static void del(const char *key)
{
    CHECK_INT_EQ(corral_store_delete(st, key, 0, NULL), 0);
}

struct who {
    const char *user;
    const char *groups[4];
};

static const struct who ALICE = {"alice", {"system:authenticated"}};
static const struct who BOB = {"bob", {"viewers", "system:authenticated"}};
static const struct who ANON = {"system:anonymous", {"system:unauthenticated"}};
static const struct who NODE1 = {"system:node:gpu-1", {"system:nodes", "system:authenticated"}};
static const struct who ADMIN = {"admin", {"system:masters", "system:authenticated"}};

static size_t n_groups(const struct who *w)
{
    size_t n = 0;
    while (n < 4 && w->groups[n])
        n++;
    return n;
}

static char why[512];

/* verb group resource[/sub] ns name: 0 or CORRAL_EFORBIDDEN. */
static int can(const struct who *w, const char *verb, const char *group, const char *resource,
               const char *ns, const char *name)
{
    char res[64], *sub = NULL;
    snprintf(res, sizeof(res), "%s", resource);
    if ((sub = strchr(res, '/')))
        *sub++ = '\0';
    struct corral_authz_attrs a = {.user = w->user,
                                   .groups = w->groups,
                                   .n_groups = n_groups(w),
                                   .verb = verb,
                                   .api_group = group,
                                   .resource = res,
                                   .subresource = sub,
                                   .ns = ns,
                                   .name = name};
    why[0] = '\0';
    return corral_authz_check(z, &a, why, sizeof(why));
}

static int can_path(const struct who *w, const char *verb, const char *path)
{
    struct corral_authz_attrs a = {
        .user = w->user, .groups = w->groups, .n_groups = n_groups(w), .verb = verb, .path = path};
    return corral_authz_check(z, &a, why, sizeof(why));
}

#define FORBIDDEN CORRAL_EFORBIDDEN

/* ------------------------------------------------------------------------------------------ */

static void test_builtins(void)
{
    setup();
    json_t *all = corral_authz_builtin_objects();
    CHECK(all != NULL);
    CHECK(json_array_size(all) >= 14);
    json_decref(all);
    struct corral_store_obj o;
    CHECK_INT_EQ(corral_store_get(st, CORRAL_AUTHZ_PREFIX "clusterroles/cluster-admin", &o), 0);
    corral_blob_unref(o.value);
    CHECK_INT_EQ(can(&ADMIN, "delete", "", "nodes", NULL, "gpu-9"), 0);
    CHECK_INT_EQ(can_path(&ADMIN, "get", "/metrics"), 0);
    CHECK_INT_EQ(can(&ALICE, "list", "", "pods", "default", NULL), FORBIDDEN);
    CHECK_STR_EQ(why, "pods is forbidden: User \"alice\" cannot list resource \"pods\" in API "
                      "group \"\" in the namespace \"default\"");
    CHECK_INT_EQ(can(&ALICE, "get", "apps", "deployments", "default", "web"), FORBIDDEN);
    CHECK_STR_EQ(why, "deployments.apps \"web\" is forbidden: User \"alice\" cannot get resource "
                      "\"deployments\" in API group \"apps\" in the namespace \"default\"");
    CHECK_INT_EQ(can(&ALICE, "list", "", "nodes", NULL, NULL), FORBIDDEN);
    CHECK_STR_CONTAINS(why, "at the cluster scope");
    /* discovery for everyone authenticated; only public info for anonymous */
    CHECK_INT_EQ(can_path(&ALICE, "get", "/apis/apps/v1"), 0);
    CHECK_INT_EQ(can_path(&ALICE, "get", "/metrics"), FORBIDDEN);
    CHECK_STR_EQ(why, "forbidden: User \"alice\" cannot get path \"/metrics\"");
    CHECK_INT_EQ(can_path(&ANON, "get", "/version"), 0);
    CHECK_INT_EQ(can_path(&ANON, "get", "/api"), FORBIDDEN);
    CHECK_INT_EQ(
        can(&ANON, "create", "authorization.k8s.io", "selfsubjectaccessreviews", NULL, NULL),
        FORBIDDEN);
    CHECK_INT_EQ(
        can(&ALICE, "create", "authorization.k8s.io", "selfsubjectaccessreviews", NULL, NULL), 0);
    const struct who boot = {"system:bootstrap:abcdef",
                             {"system:bootstrappers", "system:authenticated"}};
    CHECK_INT_EQ(
        can(&boot, "create", "certificates.k8s.io", "certificatesigningrequests", NULL, NULL), 0);
    CHECK_INT_EQ(can(&boot, "list", "", "pods", NULL, NULL), FORBIDDEN);
}

static void test_tenant_edit(void)
{
    setup();
    const char *key = CORRAL_AUTHZ_PREFIX "rolebindings/team-a/alice-edit";
    put(key, "{\"kind\":\"RoleBinding\",\"apiVersion\":\"rbac.authorization.k8s.io/v1\","
             "\"metadata\":{\"name\":\"alice-edit\",\"namespace\":\"team-a\"},"
             "\"roleRef\":{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\","
             "\"name\":\"edit\"},\"subjects\":[{\"kind\":\"User\",\"name\":\"alice\"}]}");
    /* takes effect on the very next request */
    CHECK_INT_EQ(can(&ALICE, "create", "", "pods", "team-a", NULL), 0);
    CHECK_INT_EQ(can(&ALICE, "delete", "apps", "deployments", "team-a", "web"), 0);
    CHECK_INT_EQ(can(&ALICE, "update", "apps", "deployments/scale", "team-a", "web"), 0);
    CHECK_INT_EQ(can(&ALICE, "get", "", "secrets", "team-a", "db"), 0);
    CHECK_INT_EQ(can(&ALICE, "get", "", "pods/log", "team-a", "web-0"), 0);
    CHECK_INT_EQ(can(&ALICE, "update", "", "pods/status", "team-a", "web-0"), FORBIDDEN);
    CHECK_INT_EQ(can(&ALICE, "create", "", "pods/binding", "team-a", "web-0"), FORBIDDEN);
    CHECK_INT_EQ(can(&ALICE, "create", "", "pods", "team-b", NULL), FORBIDDEN);
    CHECK_INT_EQ(can(&ALICE, "list", "", "pods", NULL, NULL), FORBIDDEN); /* all namespaces */
    CHECK_INT_EQ(can(&ALICE, "create", "rbac.authorization.k8s.io", "rolebindings", "team-a", NULL),
                 FORBIDDEN);
    CHECK_INT_EQ(can(&ALICE, "list", "", "nodes", NULL, NULL), FORBIDDEN);
    /* her own namespace object, read-only */
    CHECK_INT_EQ(can(&ALICE, "get", "", "namespaces", NULL, "team-a"), 0);
    CHECK_INT_EQ(can(&ALICE, "delete", "", "namespaces", NULL, "team-a"), FORBIDDEN);
    CHECK_INT_EQ(can(&ALICE, "get", "", "namespaces", NULL, "team-b"), FORBIDDEN);
    del(key);
    CHECK_INT_EQ(can(&ALICE, "create", "", "pods", "team-a", NULL), FORBIDDEN);
}

static void test_viewer_groups_and_service_accounts(void)
{
    setup();
    put(CORRAL_AUTHZ_PREFIX "clusterrolebindings/viewers",
        "{\"kind\":\"ClusterRoleBinding\",\"metadata\":{\"name\":\"viewers\"},"
        "\"roleRef\":{\"kind\":\"ClusterRole\",\"name\":\"view\"},"
        "\"subjects\":[{\"kind\":\"Group\",\"name\":\"viewers\"},"
        "{\"kind\":\"ServiceAccount\",\"name\":\"builder\",\"namespace\":\"ci\"}]}");
    CHECK_INT_EQ(can(&BOB, "list", "", "pods", NULL, NULL), 0);
    CHECK_INT_EQ(can(&BOB, "watch", "", "nodes", NULL, NULL), 0);
    CHECK_INT_EQ(can(&BOB, "get", "apps", "deployments", "team-z", "x"), 0);
    CHECK_INT_EQ(can(&BOB, "get", "", "secrets", "team-a", "db"), FORBIDDEN);
    CHECK_INT_EQ(can(&BOB, "create", "", "pods", "team-a", NULL), FORBIDDEN);
    CHECK_INT_EQ(can(&BOB, "update", "", "nodes", NULL, "gpu-1"), FORBIDDEN);
    const struct who sa = {"system:serviceaccount:ci:builder", {"system:authenticated"}};
    const struct who sa2 = {"system:serviceaccount:other:builder", {"system:authenticated"}};
    CHECK_INT_EQ(can(&sa, "list", "", "pods", "team-a", NULL), 0);
    CHECK_INT_EQ(can(&sa2, "list", "", "pods", "team-a", NULL), FORBIDDEN);
}

static void test_role_resource_names(void)
{
    setup();
    put(CORRAL_AUTHZ_PREFIX "roles/team-c/cfg-reader",
        "{\"kind\":\"Role\",\"metadata\":{\"name\":\"cfg-reader\",\"namespace\":\"team-c\"},"
        "\"rules\":[{\"apiGroups\":[\"\"],\"resources\":[\"configmaps\"],"
        "\"resourceNames\":[\"cfg\"],\"verbs\":[\"get\"]},"
        "{\"apiGroups\":[\"\"],\"resources\":[\"*/status\"],\"verbs\":[\"get\"]}]}");
    put(CORRAL_AUTHZ_PREFIX "rolebindings/team-c/carol",
        "{\"kind\":\"RoleBinding\",\"metadata\":{\"name\":\"carol\",\"namespace\":\"team-c\"},"
        "\"roleRef\":{\"kind\":\"Role\",\"name\":\"cfg-reader\"},"
        "\"subjects\":[{\"kind\":\"User\",\"name\":\"carol\"}]}");
    const struct who carol = {"carol", {"system:authenticated"}};
    CHECK_INT_EQ(can(&carol, "get", "", "configmaps", "team-c", "cfg"), 0);
    CHECK_INT_EQ(can(&carol, "get", "", "configmaps", "team-c", "other"), FORBIDDEN);
    CHECK_INT_EQ(can(&carol, "list", "", "configmaps", "team-c", NULL), FORBIDDEN);
    CHECK_INT_EQ(can(&carol, "get", "", "configmaps", "team-d", "cfg"), FORBIDDEN);
    CHECK_INT_EQ(can(&carol, "get", "", "pods/status", "team-c", "p"), 0);
    CHECK_INT_EQ(can(&carol, "get", "", "pods", "team-c", "p"), FORBIDDEN);
    /* a Role rebound elsewhere does not leak: a RoleBinding in team-d cannot use team-c's Role */
    put(CORRAL_AUTHZ_PREFIX "rolebindings/team-d/carol",
        "{\"kind\":\"RoleBinding\",\"metadata\":{\"name\":\"carol\",\"namespace\":\"team-d\"},"
        "\"roleRef\":{\"kind\":\"Role\",\"name\":\"cfg-reader\"},"
        "\"subjects\":[{\"kind\":\"User\",\"name\":\"carol\"}]}");
    CHECK_INT_EQ(can(&carol, "get", "", "configmaps", "team-d", "cfg"), FORBIDDEN);
}

static void test_changes_across_compaction(void)
{
    setup();
    const struct who dave = {"dave", {"system:authenticated"}};
    CHECK_INT_EQ(can(&dave, "list", "", "nodes", NULL, NULL), FORBIDDEN);
    put(CORRAL_AUTHZ_PREFIX "clusterrolebindings/dave-view",
        "{\"kind\":\"ClusterRoleBinding\",\"metadata\":{\"name\":\"dave-view\"},"
        "\"roleRef\":{\"kind\":\"ClusterRole\",\"name\":\"view\"},"
        "\"subjects\":[{\"kind\":\"User\",\"name\":\"dave\"}]}");
    /* the history holding that change is gone before authz looks: it must re-list */
    CHECK_INT_EQ(corral_store_compact(st, corral_store_revision(st)), 0);
    CHECK_INT_EQ(can(&dave, "list", "", "nodes", NULL, NULL), 0);
    del(CORRAL_AUTHZ_PREFIX "clusterrolebindings/dave-view");
    CHECK_INT_EQ(corral_store_compact(st, corral_store_revision(st)), 0);
    CHECK_INT_EQ(can(&dave, "list", "", "nodes", NULL, NULL), FORBIDDEN);
}

static void put_pods(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    put("/registry/pods/ml/p1",
        "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p1\",\"namespace\":\"ml\"},\"spec\":{"
        "\"nodeName\":\"gpu-1\",\"volumes\":[{\"name\":\"v\",\"secret\":{\"secretName\":\"s1\"}}],"
        "\"containers\":[{\"name\":\"c\",\"env\":[{\"name\":\"X\",\"valueFrom\":{"
        "\"configMapKeyRef\":{\"name\":\"cm1\",\"key\":\"k\"}}}]}]}}");
    put("/registry/pods/ml/p2",
        "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p2\",\"namespace\":\"ml\"},\"spec\":{"
        "\"nodeName\":\"gpu-2\",\"containers\":[{\"name\":\"c\",\"envFrom\":[{\"secretRef\":{"
        "\"name\":\"s2\"}}]}]}}");
    put("/registry/pods/ml/p3",
        "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p3\",\"namespace\":\"ml\"},\"spec\":{"
        "\"containers\":[{\"name\":\"c\"}],\"imagePullSecrets\":[{\"name\":\"s3\"}]}}");
}

static int node_can(const char *verb, const char *group, const char *resource, const char *ns,
                    const char *name, const char *selector, const json_t *body)
{
    char res[64], *sub;
    snprintf(res, sizeof(res), "%s", resource);
    if ((sub = strchr(res, '/')))
        *sub++ = '\0';
    struct corral_authz_attrs a = {.user = NODE1.user,
                                   .groups = NODE1.groups,
                                   .n_groups = 2,
                                   .verb = verb,
                                   .api_group = group,
                                   .resource = res,
                                   .subresource = sub,
                                   .ns = ns,
                                   .name = name,
                                   .field_selector = selector,
                                   .object = body};
    why[0] = '\0';
    return corral_authz_check(z, &a, why, sizeof(why));
}

static void test_node_restriction(void)
{
    setup();
    put_pods();
    /* its own Node and Lease only */
    CHECK_INT_EQ(node_can("get", "", "nodes", NULL, "gpu-2", NULL, NULL), 0);
    CHECK_INT_EQ(node_can("list", "", "nodes", NULL, NULL, NULL, NULL), 0);
    CHECK_INT_EQ(node_can("update", "", "nodes", NULL, "gpu-1", NULL, NULL), 0);
    CHECK_INT_EQ(node_can("patch", "", "nodes/status", NULL, "gpu-1", NULL, NULL), 0);
    CHECK_INT_EQ(node_can("update", "", "nodes", NULL, "gpu-2", NULL, NULL), FORBIDDEN);
    CHECK_STR_CONTAINS(why, "nodes \"gpu-2\" is forbidden: User \"system:node:gpu-1\" cannot "
                            "update resource \"nodes\"");
    CHECK_STR_CONTAINS(why, "may only modify its own Node");
    CHECK_INT_EQ(node_can("patch", "", "nodes/status", NULL, "gpu-2", NULL, NULL), FORBIDDEN);
    CHECK_INT_EQ(node_can("delete", "", "nodes", NULL, "gpu-1", NULL, NULL), FORBIDDEN);
    json_t *mine = json_pack("{s:{s:s}}", "metadata", "name", "gpu-1");
    json_t *theirs = json_pack("{s:{s:s}}", "metadata", "name", "gpu-2");
    CHECK_INT_EQ(node_can("create", "", "nodes", NULL, NULL, NULL, mine), 0);
    CHECK_INT_EQ(node_can("create", "", "nodes", NULL, NULL, NULL, theirs), FORBIDDEN);
    CHECK_INT_EQ(
        node_can("create", "coordination.k8s.io", "leases", "kube-node-lease", NULL, NULL, mine),
        0);
    CHECK_INT_EQ(
        node_can("update", "coordination.k8s.io", "leases", "kube-node-lease", "gpu-1", NULL, NULL),
        0);
    CHECK_INT_EQ(
        node_can("update", "coordination.k8s.io", "leases", "kube-node-lease", "gpu-2", NULL, NULL),
        FORBIDDEN);
    CHECK_INT_EQ(
        node_can("update", "coordination.k8s.io", "leases", "default", "gpu-1", NULL, NULL),
        FORBIDDEN);
    json_decref(mine);
    json_decref(theirs);
    /* pods: only its own, only through the field selector */
    CHECK_INT_EQ(node_can("watch", "", "pods", NULL, NULL, "spec.nodeName=gpu-1", NULL), 0);
    CHECK_INT_EQ(
        node_can("list", "", "pods", NULL, NULL, "status.phase=Running,spec.nodeName=gpu-1", NULL),
        0);
    CHECK_INT_EQ(node_can("list", "", "pods", NULL, NULL, NULL, NULL), FORBIDDEN);
    CHECK_STR_CONTAINS(why, "fieldSelector spec.nodeName=gpu-1");
    CHECK_INT_EQ(node_can("list", "", "pods", NULL, NULL, "spec.nodeName=gpu-2", NULL), FORBIDDEN);
    CHECK_INT_EQ(node_can("list", "", "pods", NULL, NULL, "spec.nodeName=gpu-10", NULL), FORBIDDEN);
    CHECK_INT_EQ(node_can("get", "", "pods", "ml", "p1", NULL, NULL), 0);
    CHECK_INT_EQ(node_can("update", "", "pods/status", "ml", "p1", NULL, NULL), 0);
    CHECK_INT_EQ(node_can("delete", "", "pods", "ml", "p1", NULL, NULL), 0);
    CHECK_INT_EQ(node_can("get", "", "pods", "ml", "p2", NULL, NULL), FORBIDDEN);
    CHECK_INT_EQ(node_can("patch", "", "pods/status", "ml", "p2", NULL, NULL), FORBIDDEN);
    CHECK_INT_EQ(node_can("update", "", "pods/status", "ml", "nope", NULL, NULL), FORBIDDEN);
    CHECK_INT_EQ(node_can("create", "", "pods/binding", "ml", "p3", NULL, NULL), FORBIDDEN);
    CHECK_INT_EQ(node_can("create", "", "pods/eviction", "ml", "p2", NULL, NULL), FORBIDDEN);
    CHECK_INT_EQ(node_can("create", "", "pods", "ml", NULL, NULL, NULL), FORBIDDEN);
    CHECK_INT_EQ(node_can("update", "", "pods", "ml", "p1", NULL, NULL), FORBIDDEN);
    /* secrets and configmaps only through a pod bound to it */
    CHECK_INT_EQ(node_can("get", "", "secrets", "ml", "s1", NULL, NULL), 0);
    CHECK_INT_EQ(node_can("get", "", "configmaps", "ml", "cm1", NULL, NULL), 0);
    CHECK_INT_EQ(node_can("get", "", "secrets", "ml", "s2", NULL, NULL), FORBIDDEN);
    CHECK_STR_CONTAINS(why, "no relationship found");
    CHECK_INT_EQ(node_can("get", "", "secrets", "ml", "s3", NULL, NULL), FORBIDDEN);
    CHECK_INT_EQ(node_can("list", "", "secrets", "ml", NULL, NULL, NULL), FORBIDDEN);
    CHECK_INT_EQ(node_can("get", "", "secrets", "other", "s1", NULL, NULL), FORBIDDEN);
    /* what else it needs */
    CHECK_INT_EQ(node_can("create", "", "events", "ml", NULL, NULL, NULL), 0);
    CHECK_INT_EQ(node_can("watch", "", "services", NULL, NULL, NULL, NULL), 0);
    CHECK_INT_EQ(node_can("create", "certificates.k8s.io", "certificatesigningrequests", NULL, NULL,
                          NULL, NULL),
                 0);
    CHECK_INT_EQ(node_can("list", "", "configmaps", "ml", NULL, NULL, NULL), FORBIDDEN);
    CHECK_INT_EQ(node_can("create", "rbac.authorization.k8s.io", "clusterrolebindings", NULL, NULL,
                          NULL, NULL),
                 FORBIDDEN);
    /* RBAC cannot widen a node: even bound to cluster-admin, gpu-1 cannot touch gpu-2 */
    put(CORRAL_AUTHZ_PREFIX "clusterrolebindings/oops",
        "{\"kind\":\"ClusterRoleBinding\",\"metadata\":{\"name\":\"oops\"},"
        "\"roleRef\":{\"kind\":\"ClusterRole\",\"name\":\"cluster-admin\"},"
        "\"subjects\":[{\"kind\":\"User\",\"name\":\"system:node:gpu-1\"}]}");
    CHECK_INT_EQ(node_can("update", "", "nodes", NULL, "gpu-2", NULL, NULL), FORBIDDEN);
    CHECK_INT_EQ(node_can("create", "", "pods/binding", "ml", "p3", NULL, NULL), FORBIDDEN);
    del(CORRAL_AUTHZ_PREFIX "clusterrolebindings/oops");
    /* a user merely named like a node, without the group, gets no node rights */
    const struct who fake = {"system:node:gpu-1", {"system:authenticated"}};
    CHECK_INT_EQ(can(&fake, "update", "", "nodes", NULL, "gpu-1"), FORBIDDEN);
}

/* ------------------------------------------------------------------------------------------ */
/* Reviews                                                                                     */

static json_t *review(const struct who *w, const char *json)
{
    json_t *r = json_loads(json, 0, NULL);
    CHECK(r != NULL);
    struct corral_authz_attrs caller = {
        .user = w->user, .groups = w->groups, .n_groups = n_groups(w)};
    CHECK_INT_EQ(corral_authz_review(z, &caller, r, why, sizeof(why)), 0);
    return r;
}

static bool allowed(const json_t *r)
{
    return json_is_true(json_object_get(json_object_get(r, "status"), "allowed"));
}

static void test_reviews(void)
{
    setup();
    put(CORRAL_AUTHZ_PREFIX "rolebindings/team-r/erin",
        "{\"kind\":\"RoleBinding\",\"metadata\":{\"name\":\"erin\",\"namespace\":\"team-r\"},"
        "\"roleRef\":{\"kind\":\"ClusterRole\",\"name\":\"edit\"},"
        "\"subjects\":[{\"kind\":\"User\",\"name\":\"erin\"}]}");
    const struct who erin = {"erin", {"system:authenticated"}};
    /* what `kubectl auth can-i create pods -n team-r` sends */
    json_t *r = review(&erin, "{\"kind\":\"SelfSubjectAccessReview\",\"apiVersion\":"
                              "\"authorization.k8s.io/v1\",\"metadata\":{},\"spec\":{"
                              "\"resourceAttributes\":{\"namespace\":\"team-r\",\"verb\":"
                              "\"create\",\"resource\":\"pods\"}}}");
    CHECK(allowed(r));
    CHECK_STR_CONTAINS(json_string_value(json_object_get(json_object_get(r, "status"), "reason")),
                       "RoleBinding \"erin\"");
    json_decref(r);
    r = review(&erin, "{\"kind\":\"SelfSubjectAccessReview\",\"spec\":{\"resourceAttributes\":{"
                      "\"namespace\":\"team-x\",\"verb\":\"create\",\"resource\":\"pods\"}}}");
    CHECK(!allowed(r));
    json_decref(r);
    r = review(&erin, "{\"kind\":\"SelfSubjectAccessReview\",\"spec\":{"
                      "\"nonResourceAttributes\":{\"path\":\"/api\",\"verb\":\"get\"}}}");
    CHECK(allowed(r));
    json_decref(r);
    /* an admin asking about someone else */
    r = review(&ADMIN, "{\"kind\":\"SubjectAccessReview\",\"spec\":{\"user\":\"erin\","
                       "\"groups\":[\"system:authenticated\"],\"resourceAttributes\":{"
                       "\"namespace\":\"team-r\",\"verb\":\"delete\",\"group\":\"apps\","
                       "\"resource\":\"deployments\",\"name\":\"web\"}}}");
    CHECK(allowed(r));
    json_decref(r);
    r = review(&ADMIN, "{\"kind\":\"LocalSubjectAccessReview\",\"metadata\":{\"namespace\":"
                       "\"team-q\"},\"spec\":{\"user\":\"erin\",\"resourceAttributes\":{"
                       "\"namespace\":\"team-r\",\"verb\":\"get\",\"resource\":\"pods\"}}}");
    CHECK(!allowed(r)); /* the review's namespace wins */
    json_decref(r);
    /* `kubectl auth can-i --list -n team-r` */
    r = review(&erin, "{\"kind\":\"SelfSubjectRulesReview\",\"spec\":{\"namespace\":"
                      "\"team-r\"}}");
    const json_t *status = json_object_get(r, "status");
    CHECK(json_array_size(json_object_get(status, "resourceRules")) >= 5);
    CHECK(json_array_size(json_object_get(status, "nonResourceRules")) >= 1);
    CHECK(json_is_false(json_object_get(status, "incomplete")));
    json_decref(r);
    /* malformed */
    json_t *bad = json_loads("{\"kind\":\"SelfSubjectAccessReview\",\"spec\":{}}", 0, NULL);
    struct corral_authz_attrs caller = {.user = "erin"};
    CHECK_INT_EQ(corral_authz_review(z, &caller, bad, why, sizeof(why)), CORRAL_EINVALID);
    json_object_set_new(bad, "kind", json_string("Nope"));
    CHECK_INT_EQ(corral_authz_review(z, &caller, bad, why, sizeof(why)), CORRAL_EINVALID);
    json_decref(bad);
}

static void test_without_store(void)
{
    struct corral_authz *mem;
    CHECK_INT_EQ(corral_authz_new(NULL, &mem), 0);
    json_t *all = corral_authz_builtin_objects(), *obj;
    size_t i;
    json_array_foreach(all, i, obj)
    {
        corral_authz_apply(mem, obj, false);
    }
    json_t *rb =
        json_pack("{s:s,s:{s:s,s:s},s:{s:s,s:s},s:[{s:s,s:s}]}", "kind", "RoleBinding", "metadata",
                  "name", "x", "namespace", "ns1", "roleRef", "kind", "ClusterRole", "name", "view",
                  "subjects", "kind", "User", "name", "frank");
    corral_authz_apply(mem, rb, false);
    const char *groups[] = {"system:authenticated"};
    struct corral_authz_attrs a = {.user = "frank",
                                   .groups = groups,
                                   .n_groups = 1,
                                   .verb = "list",
                                   .api_group = "",
                                   .resource = "pods",
                                   .ns = "ns1"};
    CHECK_INT_EQ(corral_authz_check(mem, &a, why, sizeof(why)), 0);
    corral_authz_apply(mem, rb, true);
    CHECK_INT_EQ(corral_authz_check(mem, &a, why, sizeof(why)), FORBIDDEN);
    a.verb = NULL;
    CHECK_INT_EQ(corral_authz_check(mem, &a, why, sizeof(why)), -EINVAL);
    json_decref(rb);
    json_decref(all);
    corral_authz_free(mem);
}

CORRAL_TESTS(CORRAL_TEST(builtins), CORRAL_TEST(tenant_edit),
             CORRAL_TEST(viewer_groups_and_service_accounts), CORRAL_TEST(role_resource_names),
             CORRAL_TEST(changes_across_compaction), CORRAL_TEST(node_restriction),
             CORRAL_TEST(reviews), CORRAL_TEST(without_store))
