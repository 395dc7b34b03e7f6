/* SPDX-License-Identifier: Apache-2.0 */
/*
 * resources: the table of built-in kinds and the CRD-backed additions.
 *
 * The registry is an array of pointers guarded by a rwlock; built-ins point into the static
 * table below, CRD entries are heap-allocated and never freed while the process runs (an
 * unregistered CRD is only marked gone), so a borrowed pointer stays valid for the lifetime of
 * a request even if the CRD is deleted concurrently.
 */
#include "resources.h"
#include "error.h"
#include "log.h"
#include "meta.h"
#include "table.h"
#include "validate.h"

#include <pthread.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUB_POD (CORRAL_SUB_STATUS | CORRAL_SUB_BINDING | CORRAL_SUB_LOG | CORRAL_SUB_EVICTION)
#define SUB_WORKLOAD (CORRAL_SUB_STATUS | CORRAL_SUB_SCALE)

static const struct corral_resource builtin[] = {
    {"", "v1", "Namespace", "NamespaceList", "namespaces", "namespace", {"ns"}, false, false,
     true, true, CORRAL_SUB_STATUS, corral_default_namespace, corral_validate_namespace,
     corral_field_namespace, corral_columns_namespace, corral_row_namespace, NULL, false},
    {"", "v1", "Node", "NodeList", "nodes", "node", {"no"}, false, false, true, true,
     CORRAL_SUB_STATUS, NULL, corral_validate_node, corral_field_node, corral_columns_node,
     corral_row_node, NULL, false},
    {"", "v1", "Pod", "PodList", "pods", "pod", {"po"}, true, true, true, true, SUB_POD,
     corral_default_pod, corral_validate_pod, corral_field_pod, corral_columns_pod,
     corral_row_pod, NULL, false},
    {"", "v1", "Service", "ServiceList", "services", "service", {"svc"}, true, true, true, true,
     CORRAL_SUB_STATUS, corral_default_service, corral_validate_service, corral_field_generic,
     corral_columns_service, corral_row_service, NULL, false},
    {"", "v1", "Endpoints", "EndpointsList", "endpoints", "endpoints", {"ep"}, true, false,
     false, true, CORRAL_SUB_NONE, NULL, corral_validate_generic, corral_field_generic,
     corral_columns_endpoints, corral_row_endpoints, NULL, false},
    {"", "v1", "ConfigMap", "ConfigMapList", "configmaps", "configmap", {"cm"}, true, false,
     false, true, CORRAL_SUB_NONE, NULL, corral_validate_configmap, corral_field_generic,
     corral_columns_configmap, corral_row_configmap, NULL, false},
    {"", "v1", "Secret", "SecretList", "secrets", "secret", {NULL}, true, false, false, true,
     CORRAL_SUB_NONE, corral_default_secret, corral_validate_secret, corral_field_secret,
     corral_columns_secret, corral_row_secret, NULL, false},
    {"", "v1", "Event", "EventList", "events", "event", {"ev"}, true, false, false, true,
     CORRAL_SUB_NONE, NULL, corral_validate_event, corral_field_event, corral_columns_event,
     corral_row_event, NULL, false},
    {"", "v1", "ServiceAccount", "ServiceAccountList", "serviceaccounts", "serviceaccount",
     {"sa"}, true, false, false, true, CORRAL_SUB_NONE, NULL, corral_validate_generic,
     corral_field_generic, corral_columns_serviceaccount, corral_row_serviceaccount, NULL,
     false},
    {"apps", "v1", "Deployment", "DeploymentList", "deployments", "deployment", {"deploy"},
     true, true, true, true, SUB_WORKLOAD, corral_default_deployment,
     corral_validate_deployment, corral_field_generic, corral_columns_deployment,
     corral_row_deployment, NULL, false},
    {"apps", "v1", "ReplicaSet", "ReplicaSetList", "replicasets", "replicaset", {"rs"}, true,
     true, true, true, SUB_WORKLOAD, corral_default_replicaset, corral_validate_replicaset,
     corral_field_generic, corral_columns_replicaset, corral_row_replicaset, NULL, false},
    {"batch", "v1", "Job", "JobList", "jobs", "job", {NULL}, true, true, true, true,
     CORRAL_SUB_STATUS, corral_default_job, corral_validate_job, corral_field_generic,
     corral_columns_job, corral_row_job, NULL, false},
    {"coordination.k8s.io", "v1", "Lease", "LeaseList", "leases", "lease", {NULL}, true, false,
     true, true, CORRAL_SUB_NONE, NULL, corral_validate_generic, corral_field_generic,
     corral_columns_lease, corral_row_lease, NULL, false},
    {"rbac.authorization.k8s.io", "v1", "ClusterRole", "ClusterRoleList", "clusterroles",
     "clusterrole", {NULL}, false, false, false, true, CORRAL_SUB_NONE, NULL,
     corral_validate_rbac, corral_field_generic, corral_columns_crd, corral_row_crd, NULL,
     false},
    {"rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "ClusterRoleBindingList",
     "clusterrolebindings", "clusterrolebinding", {NULL}, false, false, false, true,
     CORRAL_SUB_NONE, NULL, corral_validate_rbac, corral_field_generic,
     corral_columns_rolebinding, corral_row_rolebinding, NULL, false},
    {"rbac.authorization.k8s.io", "v1", "Role", "RoleList", "roles", "role", {NULL}, true,
     false, false, true, CORRAL_SUB_NONE, NULL, corral_validate_rbac, corral_field_generic,
     corral_columns_crd, corral_row_crd, NULL, false},
    {"rbac.authorization.k8s.io", "v1", "RoleBinding", "RoleBindingList", "rolebindings",
     "rolebinding", {NULL}, true, false, false, true, CORRAL_SUB_NONE, NULL,
     corral_validate_rbac, corral_field_generic, corral_columns_rolebinding,
     corral_row_rolebinding, NULL, false},
    {"apiextensions.k8s.io", "v1", "CustomResourceDefinition", "CustomResourceDefinitionList",
     "customresourcedefinitions", "customresourcedefinition", {"crd", "crds"}, false, false,
     true, true, CORRAL_SUB_STATUS, NULL, corral_validate_crd, corral_field_generic,
     corral_columns_crd, corral_row_crd, NULL, false},
    {"authorization.k8s.io", "v1", "SelfSubjectAccessReview", "SelfSubjectAccessReviewList",
     "selfsubjectaccessreviews", "selfsubjectaccessreview", {NULL}, false, false, false, false,
     CORRAL_SUB_NONE, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"authorization.k8s.io", "v1", "SelfSubjectRulesReview", "SelfSubjectRulesReviewList",
     "selfsubjectrulesreviews", "selfsubjectrulesreview", {NULL}, false, false, false, false,
     CORRAL_SUB_NONE, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"authorization.k8s.io", "v1", "SubjectAccessReview", "SubjectAccessReviewList",
     "subjectaccessreviews", "subjectaccessreview", {NULL}, false, false, false, false,
     CORRAL_SUB_NONE, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"authorization.k8s.io", "v1", "LocalSubjectAccessReview", "LocalSubjectAccessReviewList",
     "localsubjectaccessreviews", "localsubjectaccessreview", {NULL}, true, false, false, false,
     CORRAL_SUB_NONE, NULL, NULL, NULL, NULL, NULL, NULL, false},
    {"certificates.k8s.io", "v1", "CertificateSigningRequest", "CertificateSigningRequestList",
     "certificatesigningrequests", "certificatesigningrequest", {"csr"}, false, false, true,
     true, CORRAL_SUB_STATUS, NULL, corral_validate_generic, corral_field_generic,
     corral_columns_csr, corral_row_csr, NULL, false},
    {"scheduling.x-k8s.io", "v1alpha1", "PodGroup", "PodGroupList", "podgroups", "podgroup",
     {"pg"}, true, false, true, true, CORRAL_SUB_STATUS, NULL, corral_validate_podgroup,
     corral_field_generic, corral_columns_podgroup, corral_row_podgroup, NULL, false},
};

#define MAX_RESOURCES 512

static pthread_rwlock_t registry_lock = PTHREAD_RWLOCK_INITIALIZER;
static const struct corral_resource *registry[MAX_RESOURCES];
static size_t n_registry;
/* CRD entries that stopped being served; kept alive for borrowers, freed at shutdown. */
static struct corral_resource **graveyard;
static size_t n_graveyard;

void corral_resources_init(void)
{
    pthread_rwlock_wrlock(&registry_lock);
    if (n_registry == 0)
        for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++)
            registry[n_registry++] = &builtin[i];
    pthread_rwlock_unlock(&registry_lock);
}

static bool same_group(const struct corral_resource *r, const char *group)
{
    return strcmp(r->group, group ? group : "") == 0;
}

const struct corral_resource *corral_resource_find(const char *group, const char *version,
                                                   const char *plural)
{
    const struct corral_resource *found = NULL;
    pthread_rwlock_rdlock(&registry_lock);
    for (size_t i = 0; i < n_registry && !found; i++) {
        const struct corral_resource *r = registry[i];
        if (!r->gone && same_group(r, group) && strcmp(r->version, version) == 0 &&
            strcmp(r->plural, plural) == 0)
            found = r;
    }
    pthread_rwlock_unlock(&registry_lock);
    return found;
}

const struct corral_resource *corral_resource_find_kind(const char *api_version,
                                                        const char *kind)
{
    if (!api_version || !kind)
        return NULL;
    const char *slash = strchr(api_version, '/');
    char group[256] = "";
    const char *version = api_version;
    if (slash) {
        size_t n = (size_t)(slash - api_version);
        if (n >= sizeof(group))
            return NULL;
        memcpy(group, api_version, n);
        group[n] = 0;
        version = slash + 1;
    }
    const struct corral_resource *found = NULL;
    pthread_rwlock_rdlock(&registry_lock);
    for (size_t i = 0; i < n_registry && !found; i++) {
        const struct corral_resource *r = registry[i];
        if (!r->gone && same_group(r, group) && strcmp(r->version, version) == 0 &&
            strcmp(r->kind, kind) == 0)
            found = r;
    }
    pthread_rwlock_unlock(&registry_lock);
    return found;
}

void corral_resources_foreach(void (*fn)(const struct corral_resource *res, void *ctx),
                              void *ctx)
{
    const struct corral_resource *snapshot[MAX_RESOURCES];
    pthread_rwlock_rdlock(&registry_lock);
    size_t n = n_registry;
    memcpy(snapshot, registry, n * sizeof(snapshot[0]));
    pthread_rwlock_unlock(&registry_lock);
    for (size_t i = 0; i < n; i++)
        if (!snapshot[i]->gone)
            fn(snapshot[i], ctx);
}

const char *corral_resource_qualified(const struct corral_resource *res, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s%s", res->plural, *res->group ? "." : "", res->group);
    return buf;
}

const char *corral_resource_api_version(const struct corral_resource *res, char *buf,
                                        size_t len)
{
    if (*res->group)
        snprintf(buf, len, "%s/%s", res->group, res->version);
    else
        snprintf(buf, len, "%s", res->version);
    return buf;
}

const char *corral_resource_key(const struct corral_resource *res, const char *ns,
                                const char *name, char *buf, size_t len)
{
    int n = snprintf(buf, len, "/registry/%s%s%s/", res->group, *res->group ? "/" : "",
                     res->plural);
    if (res->namespaced && ns)
        n += snprintf(buf + n, n < (int)len ? len - (size_t)n : 0, "%s/", ns);
    if (name)
        n += snprintf(buf + n, n < (int)len ? len - (size_t)n : 0, "%s", name);
    return n < (int)len ? buf : NULL;
}

/* ---- CustomResourceDefinitions ---- */

static const struct corral_column *crd_columns(const json_t *version)
{
    json_t *cols = json_object_get(version, "additionalPrinterColumns");
    size_t n = json_array_size(cols);
    struct corral_column *out = calloc(n + 3, sizeof(*out));
    if (!out)
        return NULL;
    size_t k = 0;
    out[k++] = (struct corral_column){"Name", "string", "name", 0, "Name", NULL};
    size_t i;
    json_t *c;
    json_array_foreach(cols, i, c)
    {
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *path = json_string_value(json_object_get(c, "jsonPath"));
        if (!name || !path)
            continue;
        const char *type = json_string_value(json_object_get(c, "type"));
        json_t *prio = json_object_get(c, "priority");
        out[k++] = (struct corral_column){strdup(name), strdup(type ? type : "string"), "",
                                          (int)json_integer_value(prio), strdup(name),
                                          strdup(path)};
    }
    /* Kubernetes adds Age only when the CRD declares no columns of its own */
    if (k == 1)
        out[k++] = (struct corral_column){"Age", "date", "", 0, "Age", NULL};
    return out;
}

static const json_t *crd_served_version(const json_t *spec, size_t idx)
{
    json_t *versions = json_object_get(spec, "versions");
    json_t *v = json_array_get(versions, idx);
    return json_is_true(json_object_get(v, "served")) ? v : NULL;
}

static struct corral_resource *crd_entry(const json_t *crd, const json_t *spec,
                                         const json_t *version)
{
    json_t *names = json_object_get(spec, "names");
    struct corral_resource *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->group = strdup(json_string_value(json_object_get(spec, "group")));
    r->version = strdup(json_string_value(json_object_get(version, "name")));
    r->kind = strdup(json_string_value(json_object_get(names, "kind")));
    const char *list_kind = json_string_value(json_object_get(names, "listKind"));
    char buf[300];
    snprintf(buf, sizeof(buf), "%sList", r->kind);
    r->list_kind = strdup(list_kind ? list_kind : buf);
    r->plural = strdup(json_string_value(json_object_get(names, "plural")));
    const char *singular = json_string_value(json_object_get(names, "singular"));
    r->singular = singular ? strdup(singular) : NULL;
    size_t i;
    json_t *sn;
    json_array_foreach(json_object_get(names, "shortNames"), i, sn)
    {
        if (i < 3 && json_is_string(sn))
            r->short_names[i] = strdup(json_string_value(sn));
    }
    json_array_foreach(json_object_get(names, "categories"), i, sn)
    {
        if (json_is_string(sn) && strcmp(json_string_value(sn), "all") == 0)
            r->in_all_category = true;
    }
    const char *scope = json_string_value(json_object_get(spec, "scope"));
    r->namespaced = !scope || strcmp(scope, "Namespaced") == 0;
    r->has_spec = true;
    r->stored = true;
    json_t *subs = json_object_get(version, "subresources");
    if (json_object_get(subs, "status"))
        r->subresources |= CORRAL_SUB_STATUS;
    if (json_object_get(subs, "scale"))
        r->subresources |= CORRAL_SUB_SCALE;
    r->defaults = corral_default_custom;
    r->validate = corral_validate_custom;
    r->field = corral_field_generic;
    r->columns = crd_columns(version);
    r->row = corral_row_custom;
    r->crd = json_deep_copy(crd);
    return r;
}

/* Moves the entries of CRD name out of the registry into the graveyard. */
static void mark_crd_gone_locked(const char *name)
{
    size_t k = 0;
    for (size_t i = 0; i < n_registry; i++) {
        struct corral_resource *r = (struct corral_resource *)registry[i];
        if (r->crd && strcmp(corral_meta_name(r->crd), name) == 0) {
            struct corral_resource **g = realloc(graveyard, (n_graveyard + 1) * sizeof(*g));
            if (g) {
                graveyard = g;
                graveyard[n_graveyard++] = r;
                r->gone = true;
                continue;
            }
            r->gone = true; /* cannot record it: keep it in place, unserved */
        }
        registry[k++] = r;
    }
    n_registry = k;
}

static void free_crd_entry(struct corral_resource *r)
{
    free((char *)r->group);
    free((char *)r->version);
    free((char *)r->kind);
    free((char *)r->list_kind);
    free((char *)r->plural);
    free((char *)r->singular);
    for (int i = 0; i < 4; i++)
        free((char *)r->short_names[i]);
    for (const struct corral_column *c = r->columns; c && c->name; c++) {
        if (!c->json_path)
            continue;
        free((char *)c->name);
        free((char *)c->type);
        free((char *)c->description);
        free((char *)c->json_path);
    }
    free((void *)r->columns);
    json_decref(r->crd);
    free(r);
}

void corral_resources_shutdown(void)
{
    pthread_rwlock_wrlock(&registry_lock);
    for (size_t i = 0; i < n_registry; i++)
        if (registry[i]->crd)
            free_crd_entry((struct corral_resource *)registry[i]);
    for (size_t i = 0; i < n_graveyard; i++)
        free_crd_entry(graveyard[i]);
    free(graveyard);
    graveyard = NULL;
    n_graveyard = 0;
    n_registry = 0;
    pthread_rwlock_unlock(&registry_lock);
}

int corral_resources_register_crd(const json_t *crd, struct corral_field_errors *fe)
{
    corral_validate_crd(crd, NULL, fe);
    if (corral_field_errors_count(fe) > 0)
        return CORRAL_EINVALID;
    const json_t *spec = json_object_get(crd, "spec");
    int rc = 0;
    pthread_rwlock_wrlock(&registry_lock);
    mark_crd_gone_locked(corral_meta_name(crd));
    for (size_t i = 0; i < json_array_size(json_object_get(spec, "versions")); i++) {
        const json_t *v = crd_served_version(spec, i);
        if (!v)
            continue;
        if (n_registry >= MAX_RESOURCES) {
            rc = -ENOSPC;
            break;
        }
        struct corral_resource *r = crd_entry(crd, spec, v);
        if (!r) {
            rc = -ENOMEM;
            break;
        }
        registry[n_registry++] = r;
    }
    pthread_rwlock_unlock(&registry_lock);
    return rc;
}

void corral_resources_unregister_crd(const char *name)
{
    pthread_rwlock_wrlock(&registry_lock);
    mark_crd_gone_locked(name);
    pthread_rwlock_unlock(&registry_lock);
}
