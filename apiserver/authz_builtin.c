/* SPDX-License-Identifier: Apache-2.0 */
/*
 * authz_builtin: the built-in ClusterRoles and ClusterRoleBindings (see authz.h), kept as one
 * JSON document so that what each role grants reads as plainly as `kubectl get clusterrole -o
 * yaml` would show it. corral_authz_bootstrap() writes the missing ones into the store.
 */
#include "authz.h"

#include "error.h"
#include "log.h"
#include "meta.h"
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define ALL_VERBS                                                                                  \
    "\"create\",\"delete\",\"deletecollection\",\"get\",\"list\",\"patch\","                       \
    "\"update\",\"watch\""
#define READ_VERBS "\"get\",\"list\",\"watch\""
#define CORE_WORKLOADS                                                                             \
    "\"pods\",\"pods/log\",\"services\",\"endpoints\",\"configmaps\",\"persistentvolumeclaims\","  \
    "\"replicationcontrollers\",\"serviceaccounts\""
#define APPS_WORKLOADS                                                                             \
    "\"deployments\",\"deployments/scale\",\"replicasets\",\"replicasets/scale\","                 \
    "\"statefulsets\",\"statefulsets/scale\",\"daemonsets\""

static const char builtin_json[] =
    "["
    /* cluster-admin */
    "{\"kind\":\"ClusterRole\",\"metadata\":{\"name\":\"cluster-admin\"},\"rules\":["
    "{\"apiGroups\":[\"*\"],\"resources\":[\"*\"],\"verbs\":[\"*\"]},"
    "{\"nonResourceURLs\":[\"*\"],\"verbs\":[\"*\"]}]},"
    /* edit: the namespace tenant role */
    "{\"kind\":\"ClusterRole\",\"metadata\":{\"name\":\"edit\"},\"rules\":["
    "{\"apiGroups\":[\"\"],\"resources\":[" CORE_WORKLOADS ",\"secrets\"],\"verbs\":[" ALL_VERBS
    "]},"
    "{\"apiGroups\":[\"\"],\"resources\":[\"pods/status\",\"events\",\"resourcequotas\","
    "\"limitranges\",\"namespaces\"],\"verbs\":[" READ_VERBS "]},"
    "{\"apiGroups\":[\"apps\"],\"resources\":[" APPS_WORKLOADS "],\"verbs\":[" ALL_VERBS "]},"
    "{\"apiGroups\":[\"batch\"],\"resources\":[\"jobs\",\"cronjobs\"],\"verbs\":[" ALL_VERBS "]},"
    "{\"apiGroups\":[\"discovery.k8s.io\"],\"resources\":[\"endpointslices\"],\"verbs\":"
    "[" READ_VERBS "]}]},"
    /* view: read-only viewer */
    "{\"kind\":\"ClusterRole\",\"metadata\":{\"name\":\"view\"},\"rules\":["
    "{\"apiGroups\":[\"\"],\"resources\":[" CORE_WORKLOADS ",\"pods/status\",\"events\","
    "\"resourcequotas\",\"limitranges\",\"namespaces\",\"nodes\",\"nodes/"
    "status\"],\"verbs\":[" READ_VERBS "]},"
    "{\"apiGroups\":[\"apps\"],\"resources\":[" APPS_WORKLOADS "],\"verbs\":[" READ_VERBS "]},"
    "{\"apiGroups\":[\"batch\"],\"resources\":[\"jobs\",\"cronjobs\"],\"verbs\":[" READ_VERBS "]},"
    "{\"apiGroups\":[\"discovery.k8s.io\"],\"resources\":[\"endpointslices\"],\"verbs\":"
    "[" READ_VERBS "]},"
    "{\"apiGroups\":[\"coordination.k8s.io\"],\"resources\":[\"leases\"],\"verbs\":[" READ_VERBS
    "]}]},"
    /* system:node: what the node policy allows, for reading; enforced in authz.c */
    "{\"kind\":\"ClusterRole\",\"metadata\":{\"name\":\"system:node\",\"annotations\":{"
    "\"corral.io/enforced-by\":\"node restriction in the apiserver; these rules are only a "
    "description\"}},\"rules\":["
    "{\"apiGroups\":[\"\"],\"resources\":[\"nodes\"],\"verbs\":[\"get\",\"list\",\"watch\","
    "\"create\",\"update\",\"patch\"]},"
    "{\"apiGroups\":[\"\"],\"resources\":[\"nodes/status\"],\"verbs\":[\"get\",\"update\","
    "\"patch\"]},"
    "{\"apiGroups\":[\"coordination.k8s.io\"],\"resources\":[\"leases\"],\"verbs\":[\"get\","
    "\"create\",\"update\",\"patch\"]},"
    "{\"apiGroups\":[\"\"],\"resources\":[\"pods\"],\"verbs\":[\"get\",\"list\",\"watch\","
    "\"delete\"]},"
    "{\"apiGroups\":[\"\"],\"resources\":[\"pods/status\"],\"verbs\":[\"get\",\"update\","
    "\"patch\"]},"
    "{\"apiGroups\":[\"\"],\"resources\":[\"secrets\",\"configmaps\"],\"verbs\":[\"get\"]},"
    "{\"apiGroups\":[\"\",\"events.k8s.io\"],\"resources\":[\"events\"],\"verbs\":[\"create\","
    "\"update\",\"patch\"]},"
    "{\"apiGroups\":[\"\"],\"resources\":[\"services\",\"endpoints\"],\"verbs\":[" READ_VERBS "]},"
    "{\"apiGroups\":[\"discovery.k8s.io\"],\"resources\":[\"endpointslices\"],\"verbs\":"
    "[" READ_VERBS "]},"
    "{\"apiGroups\":[\"\"],\"resources\":[\"namespaces\"],\"verbs\":[\"get\"]},"
    "{\"apiGroups\":[\"certificates.k8s.io\"],\"resources\":[\"certificatesigningrequests\"],"
    "\"verbs\":[\"create\",\"get\",\"list\",\"watch\"]}]},"
    /* system:node-bootstrapper */
    "{\"kind\":\"ClusterRole\",\"metadata\":{\"name\":\"system:node-bootstrapper\"},\"rules\":["
    "{\"apiGroups\":[\"certificates.k8s.io\"],\"resources\":[\"certificatesigningrequests\"],"
    "\"verbs\":[\"create\",\"get\",\"list\",\"watch\"]}]},"
    /* system:basic-user */
    "{\"kind\":\"ClusterRole\",\"metadata\":{\"name\":\"system:basic-user\"},\"rules\":["
    "{\"apiGroups\":[\"authorization.k8s.io\"],\"resources\":[\"selfsubjectaccessreviews\","
    "\"selfsubjectrulesreviews\"],\"verbs\":[\"create\"]}]},"
    /* system:discovery */
    "{\"kind\":\"ClusterRole\",\"metadata\":{\"name\":\"system:discovery\"},\"rules\":["
    "{\"nonResourceURLs\":[\"/api\",\"/api/*\",\"/apis\",\"/apis/*\",\"/openapi\","
    "\"/openapi/*\",\"/version\",\"/version/\",\"/healthz\",\"/livez\",\"/readyz\"],"
    "\"verbs\":[\"get\"]}]},"
    /* system:public-info-viewer */
    "{\"kind\":\"ClusterRole\",\"metadata\":{\"name\":\"system:public-info-viewer\"},\"rules\":["
    "{\"nonResourceURLs\":[\"/version\",\"/version/\",\"/healthz\",\"/livez\",\"/readyz\"],"
    "\"verbs\":[\"get\"]}]},"
    /* bindings */
    "{\"kind\":\"ClusterRoleBinding\",\"metadata\":{\"name\":\"cluster-admin\"},"
    "\"roleRef\":{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\","
    "\"name\":\"cluster-admin\"},\"subjects\":[{\"apiGroup\":\"rbac.authorization.k8s.io\","
    "\"kind\":\"Group\",\"name\":\"system:masters\"}]},"
    "{\"kind\":\"ClusterRoleBinding\",\"metadata\":{\"name\":\"system:node\"},"
    "\"roleRef\":{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\","
    "\"name\":\"system:node\"},\"subjects\":[{\"apiGroup\":\"rbac.authorization.k8s.io\","
    "\"kind\":\"Group\",\"name\":\"system:nodes\"}]},"
    "{\"kind\":\"ClusterRoleBinding\",\"metadata\":{\"name\":\"system:node-bootstrapper\"},"
    "\"roleRef\":{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\","
    "\"name\":\"system:node-bootstrapper\"},\"subjects\":[{\"apiGroup\":"
    "\"rbac.authorization.k8s.io\",\"kind\":\"Group\",\"name\":\"system:bootstrappers\"}]},"
    "{\"kind\":\"ClusterRoleBinding\",\"metadata\":{\"name\":\"system:basic-user\"},"
    "\"roleRef\":{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\","
    "\"name\":\"system:basic-user\"},\"subjects\":[{\"apiGroup\":\"rbac.authorization.k8s.io\","
    "\"kind\":\"Group\",\"name\":\"system:authenticated\"}]},"
    "{\"kind\":\"ClusterRoleBinding\",\"metadata\":{\"name\":\"system:discovery\"},"
    "\"roleRef\":{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\","
    "\"name\":\"system:discovery\"},\"subjects\":[{\"apiGroup\":\"rbac.authorization.k8s.io\","
    "\"kind\":\"Group\",\"name\":\"system:authenticated\"}]},"
    "{\"kind\":\"ClusterRoleBinding\",\"metadata\":{\"name\":\"system:public-info-viewer\"},"
    "\"roleRef\":{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\","
    "\"name\":\"system:public-info-viewer\"},\"subjects\":[{\"apiGroup\":"
    "\"rbac.authorization.k8s.io\",\"kind\":\"Group\",\"name\":\"system:authenticated\"},"
    "{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"Group\","
    "\"name\":\"system:unauthenticated\"}]}"
    "]";

json_t *corral_authz_builtin_objects(void)
{
    json_error_t err;
    json_t *all = json_loads(builtin_json, 0, &err), *obj;
    size_t i;
    if (!all) { /* a defect in the literal above; the unit tests load it */
        corral_error("authz", "built-in roles: %s at %d", err.text, err.position);
        return NULL;
    }
    json_array_foreach(all, i, obj)
    {
        json_t *meta = json_object_get(obj, "metadata");
        json_object_set_new(obj, "apiVersion", json_string("rbac.authorization.k8s.io/v1"));
        json_object_set_new(meta, "labels",
                            json_pack("{s:s}", "kubernetes.io/bootstrapping", "rbac-defaults"));
    }
    return all;
}

/* Store key of a built-in (cluster-scoped) object. */
static void builtin_key(const json_t *obj, char *key, size_t len)
{
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    snprintf(key, len, "%s%s/%s", CORRAL_AUTHZ_PREFIX,
             strcmp(kind, "ClusterRole") == 0 ? "clusterroles" : "clusterrolebindings",
             corral_meta_name(obj));
}

/* Gives obj the metadata the apiserver's create path would. */
static void stamp(json_t *obj)
{
    char uid[37], now[21];
    json_t *meta = corral_meta_get(obj, true);
    corral_meta_new_uid(uid);
    corral_meta_format_time(time(NULL), now);
    json_object_set_new(meta, "uid", json_string(uid));
    json_object_set_new(meta, "creationTimestamp", json_string(now));
}

int corral_authz_bootstrap(struct corral_store *st)
{
    json_t *all = corral_authz_builtin_objects(), *obj;
    size_t i;
    int rc = all ? 0 : CORRAL_EINTERNAL, created = 0;
    json_array_foreach(all, i, obj)
    {
        char key[256];
        builtin_key(obj, key, sizeof(key));
        json_t *copy = json_deep_copy(obj);
        if (!copy) {
            rc = -ENOMEM;
            break;
        }
        stamp(copy);
        int r = corral_store_create(st, key, copy, NULL);
        if (r == 0)
            created++;
        else if (r != CORRAL_EEXISTS) {
            rc = r;
            corral_error("authz", "cannot create %s: %s", key, corral_strerror(r));
            break;
        }
    }
    json_decref(all);
    if (created)
        corral_info("authz", "created %d built-in RBAC objects", created);
    return rc;
}
