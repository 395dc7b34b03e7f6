/* SPDX-License-Identifier: Apache-2.0 */
/*
 * authz: may this caller do this? Kubernetes RBAC (rbac.authorization.k8s.io/v1 Role,
 * ClusterRole, RoleBinding, ClusterRoleBinding) evaluated on every request, plus the node
 * restriction that applies to kubelet credentials.
 *
 * Decision order:
 *   1. group system:masters: allowed (the superuser group, as in Kubernetes; it cannot be
 *      locked out by editing RBAC objects);
 *   2. a node's credential (user system:node:<name> in group system:nodes): decided by the node
 *      policy alone, never by RBAC. A node may read nodes, services, endpoints, endpointslices
 *      and namespaces; create and update only its own Node (and its status) and its own Lease
 *      in kube-node-lease; list/watch pods only with fieldSelector spec.nodeName=<itself>; get,
 *      delete and update the status of only the pods bound to it; get a Secret or ConfigMap
 *      only when a pod bound to it refers to it; create events and CSRs. It can never bind or
 *      evict pods, touch another node's Node or Lease, or list Secrets;
 *   3. RBAC: allowed when a ClusterRoleBinding (anywhere) or a RoleBinding (in the request's
 *      namespace) binds a subject matching the caller (User by name, Group by name,
 *      ServiceAccount as system:serviceaccount:<ns>:<name>) to a role with a matching rule
 *      (verbs, apiGroups, resources incl. "res/sub" and "*", resourceNames,
 *      nonResourceURLs with trailing "*").
 * Anything else is denied with the message kube-apiserver gives, e.g.
 *   pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the
 *   namespace "team-b"
 *
 * Built-in roles (corral_authz_bootstrap() creates them in the store when missing):
 *   cluster-admin             everything; bound to group system:masters
 *   edit                      the namespace tenant role: read/write workloads, services,
 *                             config and secrets, bind it with a RoleBinding in the tenant's
 *                             namespace; no RBAC, no nodes, no namespaces
 *   view                      read-only viewer: everything edit reads except Secrets, plus
 *                             nodes and namespaces; bind with a ClusterRoleBinding or
 *                             RoleBinding
 *   system:node               documents the node policy above (enforced in code); bound to
 *                             group system:nodes
 *   system:node-bootstrapper  create and read CSRs; bound to group system:bootstrappers
 *   system:basic-user         self access/rules reviews; bound to system:authenticated
 *   system:discovery          discovery and OpenAPI paths; bound to system:authenticated
 *   system:public-info-viewer /version, /healthz, /readyz, /livez; bound to both
 *                             system:authenticated and system:unauthenticated
 *
 * RBAC objects are read from the store under CORRAL_AUTHZ_PREFIX (keys as
 * corral_resource_key() makes them) and kept in memory; each check first applies the store
 * events since the last one, so a changed binding takes effect on the very next request.
 * Thread-safe.
 */
#ifndef CORRAL_AUTHZ_H
#define CORRAL_AUTHZ_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define CORRAL_AUTHZ_PREFIX "/registry/rbac.authorization.k8s.io/"

struct corral_store;
struct corral_authz;

/* One request, as authorization sees it. Unused strings may be NULL. */
struct corral_authz_attrs {
    const char *user;
    const char *const *groups; /* n_groups entries */
    size_t n_groups;
    const char *verb;           /* get list watch create update patch delete deletecollection */
    const char *api_group;      /* "" for core */
    const char *resource;       /* plural; NULL for a non-resource request */
    const char *subresource;    /* "status", "binding", "log", ... */
    const char *ns;             /* NULL or "" for cluster-scoped or all-namespace requests */
    const char *name;           /* the object's name when the request names one */
    const char *path;           /* non-resource requests: the URL path */
    const char *field_selector; /* list/watch: the raw fieldSelector query value */
    const json_t *object;       /* create/update: the request body (for its metadata.name) */
};

/*
 * Creates an authorizer reading RBAC from st (borrowed; NULL = only objects given to
 * corral_authz_apply(), for tests and tools). Lists the RBAC objects once. Returns 0 and *out,
 * -ENOMEM, or the store's error.
 */
int corral_authz_new(struct corral_store *st, struct corral_authz **out);
void corral_authz_free(struct corral_authz *z);

/*
 * Decides. Returns 0 when allowed, CORRAL_EFORBIDDEN with the Status message in why (see the
 * head), or -EINVAL when attrs lack a user or verb.
 */
int corral_authz_check(struct corral_authz *z, const struct corral_authz_attrs *attrs, char *why,
                       size_t why_len);

/*
 * Answers an access review (borrowed and filled in with status): SelfSubjectAccessReview
 * (about the caller), SubjectAccessReview and LocalSubjectAccessReview (about spec.user /
 * spec.groups; the caller's right to ask is the request path's business), and
 * SelfSubjectRulesReview (the caller's rules in spec.namespace, for `kubectl auth can-i
 * --list`). caller needs only user and groups. Returns 0, or CORRAL_EINVALID with why when
 * the review is malformed.
 */
int corral_authz_review(struct corral_authz *z, const struct corral_authz_attrs *caller,
                        json_t *review, char *why, size_t why_len);

/*
 * Adds, replaces (ADDED/MODIFIED: deleted = false) or removes (deleted = true) one RBAC object
 * in the in-memory view, as the store's watch would. Objects of other kinds are ignored.
 */
void corral_authz_apply(struct corral_authz *z, const json_t *obj, bool deleted);

/* The built-in ClusterRoles and ClusterRoleBindings (a new JSON array; caller decrefs). */
json_t *corral_authz_builtin_objects(void);

/*
 * Creates every built-in object missing from st (existing ones, possibly edited by an admin,
 * are left alone). Returns 0 or the store's error.
 */
int corral_authz_bootstrap(struct corral_store *st);

#endif
