/* SPDX-License-Identifier: Apache-2.0 */
/*
 * authz: RBAC and node restriction (see authz.h for the policy).
 *
 * The RBAC objects live in four jansson maps (cluster roles and bindings by name, roles by
 * "ns/name", role bindings by namespace then name) under a rwlock, plus an index of the
 * cluster role bindings by subject ("u:alice", "g:devs"), rebuilt after any of them changes, so
 * a check looks only at the bindings naming the caller or one of its groups. Before each decision
 * the store's events under CORRAL_AUTHZ_PREFIX since the last applied revision are applied (a
 * revision check makes this free when nothing changed anywhere); if the store has compacted
 * past us, the maps are rebuilt from a fresh list. Evaluation takes the read lock only.
 *
 * The node policy is a table of (group, resource, subresource, verbs, condition); conditions
 * that need objects (is this pod bound to the node, does a pod on the node use this Secret)
 * read them from the store.
 */
#include "authz.h"

#include "error.h"
#include "log.h"
#include "meta.h"
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SYNC_BATCH 64

struct rbac {
    json_t *cluster_roles;    /* name -> ClusterRole */
    json_t *roles;            /* "ns/name" -> Role */
    json_t *cluster_bindings; /* name -> ClusterRoleBinding */
    json_t *bindings;         /* ns -> {name -> RoleBinding} */
    json_t *by_subject;       /* "u:USER" / "g:GROUP" -> [ClusterRoleBinding, ...] */
    bool index_stale;         /* cluster_bindings changed since by_subject was built */
};

struct corral_authz {
    struct corral_store *st;
    pthread_rwlock_t lock; /* guards rbac */
    struct rbac rbac;
    pthread_mutex_t sync; /* one thread applies store events at a time */
    _Atomic int64_t seen; /* store revision applied */
};

/* A request with the optional fields made non-NULL. */
struct req {
    const struct corral_authz_attrs *a;
    const char *verb, *group, *resource, *sub, *ns, *name, *path;
};

static void set_why(char *why, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_why(char *why, size_t len, const char *fmt, ...)
{
    if (!why || !len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
}

static const char *str(const char *s)
{
    return s ? s : "";
}

/* ------------------------------------------------------------------------------------------ */
/* The in-memory RBAC view                                                                     */

static int rbac_init(struct rbac *r)
{
    r->cluster_roles = json_object();
    r->roles = json_object();
    r->cluster_bindings = json_object();
    r->bindings = json_object();
    r->by_subject = json_object();
    return r->cluster_roles && r->roles && r->cluster_bindings && r->bindings && r->by_subject
               ? 0
               : -ENOMEM;
}

static void rbac_clear(struct rbac *r)
{
    json_decref(r->cluster_roles);
    json_decref(r->roles);
    json_decref(r->cluster_bindings);
    json_decref(r->bindings);
    json_decref(r->by_subject);
    memset(r, 0, sizeof(*r));
}

static void map_put(json_t *map, const char *key, const json_t *obj, bool deleted)
{
    if (deleted)
        json_object_del(map, key);
    else
        json_object_set(map, key, (json_t *)obj);
}

static void rbac_apply(struct rbac *r, const char *kind, const json_t *obj, bool deleted)
{
    const char *name = corral_meta_name(obj), *ns = str(corral_meta_namespace(obj));
    char key[512];
    if (!kind || !name)
        return;
    if (strcmp(kind, "ClusterRole") == 0) {
        map_put(r->cluster_roles, name, obj, deleted);
    } else if (strcmp(kind, "ClusterRoleBinding") == 0) {
        map_put(r->cluster_bindings, name, obj, deleted);
        r->index_stale = true;
    } else if (strcmp(kind, "Role") == 0) {
        snprintf(key, sizeof(key), "%s/%s", ns, name);
        map_put(r->roles, key, obj, deleted);
    } else if (strcmp(kind, "RoleBinding") == 0) {
        json_t *in_ns = json_object_get(r->bindings, ns);
        if (!in_ns && !deleted) {
            in_ns = json_object();
            json_object_set_new(r->bindings, ns, in_ns);
        }
        map_put(in_ns, name, obj, deleted);
        if (in_ns && json_object_size(in_ns) == 0)
            json_object_del(r->bindings, ns);
    }
}

/* The index key of a subject: "u:" + user name (service accounts as their user), "g:" + group. */
static bool subject_key(const json_t *subj, const char *binding_ns, char *key, size_t len)
{
    const char *kind = json_string_value(json_object_get(subj, "kind"));
    const char *name = json_string_value(json_object_get(subj, "name"));
    const char *ns = json_string_value(json_object_get(subj, "namespace"));
    if (!kind || !name)
        return false;
    if (strcmp(kind, "User") == 0)
        snprintf(key, len, "u:%s", name);
    else if (strcmp(kind, "Group") == 0)
        snprintf(key, len, "g:%s", name);
    else if (strcmp(kind, "ServiceAccount") == 0)
        snprintf(key, len, "u:system:serviceaccount:%s:%s", ns ? ns : binding_ns, name);
    else
        return false;
    return true;
}

static void index_add(json_t *index, const char *key, json_t *binding)
{
    json_t *list = json_object_get(index, key);
    if (!list) {
        list = json_array();
        json_object_set_new(index, key, list);
    }
    json_array_append(list, binding);
}

/* Rebuilds by_subject from cluster_bindings when they changed. Write lock held. */
static void rbac_reindex(struct rbac *r)
{
    const char *name;
    json_t *b, *subj;
    size_t i;
    char key[600];
    if (!r->index_stale)
        return;
    json_object_clear(r->by_subject);
    json_object_foreach(r->cluster_bindings, name, b)
    {
        const char *ns = corral_meta_namespace(b);
        json_array_foreach(json_object_get(b, "subjects"), i, subj)
        {
            if (subject_key(subj, ns ? ns : "", key, sizeof(key)))
                index_add(r->by_subject, key, b);
        }
    }
    r->index_stale = false;
}

void corral_authz_apply(struct corral_authz *z, const json_t *obj, bool deleted)
{
    pthread_rwlock_wrlock(&z->lock);
    rbac_apply(&z->rbac, json_string_value(json_object_get(obj, "kind")), obj, deleted);
    rbac_reindex(&z->rbac);
    pthread_rwlock_unlock(&z->lock);
}

/* The kind stored under key (objects may be stored without kind). */
static const char *kind_of_key(const char *key)
{
    static const struct {
        const char *dir, *kind;
    } dirs[] = {
        {"clusterroles/", "ClusterRole"},
        {"clusterrolebindings/", "ClusterRoleBinding"},
        {"roles/", "Role"},
        {"rolebindings/", "RoleBinding"},
    };
    const char *rest = key + strlen(CORRAL_AUTHZ_PREFIX);
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
        if (strncmp(rest, dirs[i].dir, strlen(dirs[i].dir)) == 0)
            return dirs[i].kind;
    return NULL;
}

/* Rebuilds the view from a full list of the store. */
static int authz_relist(struct corral_authz *z)
{
    struct corral_store_list_opts opts = {.prefix = CORRAL_AUTHZ_PREFIX};
    struct corral_store_list l;
    struct rbac fresh, old;
    int rc = corral_store_list(z->st, &opts, &l);
    if (rc)
        return rc;
    if ((rc = rbac_init(&fresh)) == 0) {
        for (size_t i = 0; i < l.n; i++) {
            json_t *obj = corral_blob_json(l.items[i]);
            rbac_apply(&fresh, kind_of_key(l.keys[i]), obj, false);
            json_decref(obj);
        }
        rbac_reindex(&fresh);
        pthread_rwlock_wrlock(&z->lock);
        old = z->rbac;
        z->rbac = fresh;
        pthread_rwlock_unlock(&z->lock);
        rbac_clear(&old);
        atomic_store(&z->seen, l.rev);
    } else {
        rbac_clear(&fresh);
    }
    corral_store_list_clear(&l);
    return rc;
}

static void apply_events(struct corral_authz *z, struct corral_store_event *ev, int n)
{
    pthread_rwlock_wrlock(&z->lock);
    for (int i = 0; i < n; i++) {
        json_t *obj = ev[i].value ? corral_blob_json(ev[i].value) : NULL;
        if (obj)
            rbac_apply(&z->rbac, kind_of_key(ev[i].key), obj, ev[i].type == CORRAL_EVENT_DELETED);
        json_decref(obj);
    }
    rbac_reindex(&z->rbac);
    pthread_rwlock_unlock(&z->lock);
    for (int i = 0; i < n; i++)
        corral_store_event_clear(&ev[i]);
}

/* Applies the store's RBAC changes since the last call. */
static int authz_sync(struct corral_authz *z)
{
    if (!z->st || corral_store_revision(z->st) == atomic_load(&z->seen))
        return 0;
    struct corral_store_event ev[SYNC_BATCH];
    int rc = 0;
    pthread_mutex_lock(&z->sync);
    for (;;) {
        int64_t after = atomic_load(&z->seen), seen = after;
        int n = corral_store_events(z->st, CORRAL_AUTHZ_PREFIX, after, ev, SYNC_BATCH, 0, &seen);
        if (n == CORRAL_EGONE) {
            rc = authz_relist(z);
            break;
        }
        if (n < 0) {
            rc = n;
            break;
        }
        if (n == SYNC_BATCH)
            seen = ev[n - 1].rev;
        apply_events(z, ev, n);
        atomic_store(&z->seen, seen);
        if (n < SYNC_BATCH)
            break;
    }
    pthread_mutex_unlock(&z->sync);
    if (rc)
        corral_warn("authz", "cannot follow RBAC changes in the store: %s", corral_strerror(rc));
    return rc;
}

int corral_authz_new(struct corral_store *st, struct corral_authz **out)
{
    *out = NULL;
    struct corral_authz *z = calloc(1, sizeof(*z));
    if (!z)
        return -ENOMEM;
    z->st = st;
    pthread_rwlock_init(&z->lock, NULL);
    pthread_mutex_init(&z->sync, NULL);
    atomic_init(&z->seen, 0);
    int rc = rbac_init(&z->rbac);
    if (!rc && st)
        rc = authz_relist(z);
    if (rc) {
        corral_authz_free(z);
        return rc;
    }
    *out = z;
    return 0;
}

void corral_authz_free(struct corral_authz *z)
{
    if (!z)
        return;
    rbac_clear(&z->rbac);
    pthread_rwlock_destroy(&z->lock);
    pthread_mutex_destroy(&z->sync);
    free(z);
}

/* ------------------------------------------------------------------------------------------ */
/* RBAC evaluation                                                                             */

static bool list_has(const json_t *list, const char *s)
{
    size_t i;
    const json_t *v;
    json_array_foreach(list, i, v)
    {
        if (strcmp(str(json_string_value(v)), s) == 0)
            return true;
    }
    return false;
}

static bool subject_matches(const json_t *subj, const struct corral_authz_attrs *a,
                            const char *binding_ns)
{
    const char *kind = str(json_string_value(json_object_get(subj, "kind")));
    const char *name = str(json_string_value(json_object_get(subj, "name")));
    if (strcmp(kind, "User") == 0)
        return strcmp(name, a->user) == 0;
    if (strcmp(kind, "Group") == 0) {
        for (size_t i = 0; i < a->n_groups; i++)
            if (strcmp(a->groups[i], name) == 0)
                return true;
        return false;
    }
    if (strcmp(kind, "ServiceAccount") == 0) {
        const char *ns = json_string_value(json_object_get(subj, "namespace"));
        char sa[512];
        snprintf(sa, sizeof(sa), "system:serviceaccount:%s:%s", ns ? ns : binding_ns, name);
        return strcmp(sa, a->user) == 0;
    }
    return false;
}

static bool binding_matches(const json_t *binding, const struct corral_authz_attrs *a)
{
    const char *ns = str(corral_meta_namespace(binding));
    size_t i;
    const json_t *subj;
    json_array_foreach(json_object_get(binding, "subjects"), i, subj)
    {
        if (subject_matches(subj, a, ns))
            return true;
    }
    return false;
}

static bool resource_matches(const json_t *resources, const struct req *r)
{
    char combined[300];
    size_t i;
    const json_t *v;
    snprintf(combined, sizeof(combined), "%s%s%s", r->resource, r->sub[0] ? "/" : "", r->sub);
    json_array_foreach(resources, i, v)
    {
        const char *s = str(json_string_value(v));
        if (strcmp(s, "*") == 0 || strcmp(s, combined) == 0)
            return true;
        if (r->sub[0] && strncmp(s, "*/", 2) == 0 && strcmp(s + 2, r->sub) == 0)
            return true;
    }
    return false;
}

static bool url_matches(const json_t *urls, const char *path)
{
    size_t i;
    const json_t *v;
    json_array_foreach(urls, i, v)
    {
        const char *s = str(json_string_value(v));
        size_t n = strlen(s);
        if (strcmp(s, path) == 0 || (n > 0 && s[n - 1] == '*' && strncmp(s, path, n - 1) == 0))
            return true;
    }
    return false;
}

static bool rule_allows(const json_t *rule, const struct req *r)
{
    const json_t *verbs = json_object_get(rule, "verbs");
    if (!list_has(verbs, r->verb) && !list_has(verbs, "*"))
        return false;
    if (!r->resource[0])
        return url_matches(json_object_get(rule, "nonResourceURLs"), r->path);
    const json_t *groups = json_object_get(rule, "apiGroups");
    if (!list_has(groups, r->group) && !list_has(groups, "*"))
        return false;
    if (!resource_matches(json_object_get(rule, "resources"), r))
        return false;
    const json_t *names = json_object_get(rule, "resourceNames");
    return json_array_size(names) == 0 || (r->name[0] && list_has(names, r->name));
}

static bool role_allows(const json_t *role, const struct req *r)
{
    size_t i;
    const json_t *rule;
    json_array_foreach(json_object_get(role, "rules"), i, rule)
    {
        if (rule_allows(rule, r))
            return true;
    }
    return false;
}

/* The role a binding refers to (borrowed), or NULL. Lock held. */
static const json_t *role_of(const struct rbac *rb, const json_t *binding)
{
    const json_t *ref = json_object_get(binding, "roleRef");
    const char *kind = str(json_string_value(json_object_get(ref, "kind")));
    const char *name = str(json_string_value(json_object_get(ref, "name")));
    if (strcmp(kind, "ClusterRole") == 0)
        return json_object_get(rb->cluster_roles, name);
    if (strcmp(kind, "Role") != 0)
        return NULL;
    char key[512];
    snprintf(key, sizeof(key), "%s/%s", str(corral_meta_namespace(binding)), name);
    return json_object_get(rb->roles, key);
}

/* Writes which binding allowed the request into how. */
static void describe(const json_t *binding, const char *kind, char *how, size_t len)
{
    const json_t *ref = json_object_get(binding, "roleRef");
    set_why(how, len, "RBAC: allowed by %s \"%s\" of %s \"%s\"", kind,
            str(corral_meta_name(binding)), str(json_string_value(json_object_get(ref, "kind"))),
            str(json_string_value(json_object_get(ref, "name"))));
}

static bool rbac_allows(const struct rbac *rb, const struct req *r, char *how, size_t len)
{
    const char *name;
    const json_t *b;
    json_object_foreach((json_t *)rb->cluster_bindings, name, b)
    {
        const json_t *role = binding_matches(b, r->a) ? role_of(rb, b) : NULL;
        if (role && role_allows(role, r)) {
            describe(b, "ClusterRoleBinding", how, len);
            return true;
        }
    }
    if (!r->ns[0] || !r->resource[0])
        return false;
    json_object_foreach(json_object_get(rb->bindings, r->ns), name, b)
    {
        const json_t *role = binding_matches(b, r->a) ? role_of(rb, b) : NULL;
        if (role && role_allows(role, r)) {
            describe(b, "RoleBinding", how, len);
            return true;
        }
    }
    return false;
}

/* ------------------------------------------------------------------------------------------ */
/* Node restriction                                                                            */

enum node_cond {
    NODE_ANY,
    NODE_SELF,       /* the object is the node's own Node */
    NODE_LEASE,      /* the node's own Lease in kube-node-lease */
    NODE_PODS_FIELD, /* list/watch restricted by fieldSelector spec.nodeName=<node> */
    NODE_POD_BOUND,  /* the pod is bound to the node */
    NODE_POD_REFERS, /* a pod bound to the node refers to this Secret/ConfigMap */
};

struct node_rule {
    const char *group, *resource, *sub, *verbs;
    enum node_cond cond;
};

static const struct node_rule node_rules[] = {
    {"", "nodes", "", " get list watch ", NODE_ANY},
    {"", "nodes", "", " create update patch ", NODE_SELF},
    {"", "nodes", "status", " get update patch ", NODE_SELF},
    {"coordination.k8s.io", "leases", "", " get create update patch ", NODE_LEASE},
    {"", "pods", "", " list watch ", NODE_PODS_FIELD},
    {"", "pods", "", " get delete ", NODE_POD_BOUND},
    {"", "pods", "status", " get update patch ", NODE_POD_BOUND},
    {"", "secrets", "", " get ", NODE_POD_REFERS},
    {"", "configmaps", "", " get ", NODE_POD_REFERS},
    {"", "events", "", " create update patch ", NODE_ANY},
    {"events.k8s.io", "events", "", " create update patch ", NODE_ANY},
    {"", "services", "", " get list watch ", NODE_ANY},
    {"", "endpoints", "", " get list watch ", NODE_ANY},
    {"discovery.k8s.io", "endpointslices", "", " get list watch ", NODE_ANY},
    {"", "namespaces", "", " get ", NODE_ANY},
    {"certificates.k8s.io", "certificatesigningrequests", "", " create get list watch ", NODE_ANY},
    {"authorization.k8s.io", "selfsubjectaccessreviews", "", " create ", NODE_ANY},
    {"authorization.k8s.io", "selfsubjectrulesreviews", "", " create ", NODE_ANY},
};

static bool verb_in(const char *verbs, const char *verb)
{
    char needle[40];
    snprintf(needle, sizeof(needle), " %s ", verb);
    return strstr(verbs, needle) != NULL;
}

/* The name the request acts on: the URL's, else the body's (create). */
static const char *target_name(const struct req *r)
{
    if (r->name[0])
        return r->name;
    return str(r->a->object ? corral_meta_name(r->a->object) : NULL);
}

/* true when the fieldSelector has the term spec.nodeName=<node> (or ==). */
static bool selects_node(const char *selector, const char *node)
{
    char want1[300], want2[300];
    snprintf(want1, sizeof(want1), "spec.nodeName=%s", node);
    snprintf(want2, sizeof(want2), "spec.nodeName==%s", node);
    for (const char *p = selector; p && *p;) {
        size_t n = strcspn(p, ",");
        if ((n == strlen(want1) && strncmp(p, want1, n) == 0) ||
            (n == strlen(want2) && strncmp(p, want2, n) == 0))
            return true;
        p += n + (p[n] == ',');
    }
    return false;
}

static bool pod_on_node(const json_t *pod, const char *node)
{
    const char *bound =
        json_string_value(json_object_get(json_object_get(pod, "spec"), "nodeName"));
    return bound && strcmp(bound, node) == 0;
}

static bool pod_bound(struct corral_authz *z, const struct req *r, const char *node)
{
    char key[600];
    struct corral_store_obj o;
    if (!z->st || !r->ns[0] || !r->name[0])
        return false;
    snprintf(key, sizeof(key), "/registry/pods/%s/%s", r->ns, r->name);
    if (corral_store_get(z->st, key, &o) != 0)
        return false;
    json_t *pod = corral_blob_json(o.value);
    bool ok = pod && pod_on_node(pod, node);
    json_decref(pod);
    corral_blob_unref(o.value);
    return ok;
}

static bool named_in(const json_t *list, const char *field, const char *name)
{
    size_t i;
    const json_t *v;
    json_array_foreach(list, i, v)
    {
        if (strcmp(str(json_string_value(json_object_get(v, field))), name) == 0)
            return true;
    }
    return false;
}

/* Does one container's env or envFrom refer to the Secret (ref = "secretKeyRef"/"secretRef")
 * or ConfigMap (configMapKeyRef/configMapRef) called name? */
static bool container_refers(const json_t *c, bool secret, const char *name)
{
    const char *key_ref = secret ? "secretKeyRef" : "configMapKeyRef";
    const char *from_ref = secret ? "secretRef" : "configMapRef";
    size_t i;
    const json_t *v;
    json_array_foreach(json_object_get(c, "env"), i, v)
    {
        const json_t *ref = json_object_get(json_object_get(v, "valueFrom"), key_ref);
        if (strcmp(str(json_string_value(json_object_get(ref, "name"))), name) == 0)
            return true;
    }
    json_array_foreach(json_object_get(c, "envFrom"), i, v)
    {
        const json_t *ref = json_object_get(v, from_ref);
        if (strcmp(str(json_string_value(json_object_get(ref, "name"))), name) == 0)
            return true;
    }
    return false;
}

static bool pod_refers(const json_t *pod, bool secret, const char *name)
{
    const json_t *spec = json_object_get(pod, "spec"), *v;
    size_t i;
    json_array_foreach(json_object_get(spec, "volumes"), i, v)
    {
        const json_t *src = json_object_get(v, secret ? "secret" : "configMap");
        if (strcmp(str(json_string_value(json_object_get(src, secret ? "secretName" : "name"))),
                   name) == 0)
            return true;
    }
    if (secret && named_in(json_object_get(spec, "imagePullSecrets"), "name", name))
        return true;
    const char *lists[] = {"containers", "initContainers"};
    for (size_t l = 0; l < 2; l++)
        json_array_foreach(json_object_get(spec, lists[l]), i, v)
        {
            if (container_refers(v, secret, name))
                return true;
        }
    return false;
}

static bool pod_on_node_refers(const struct corral_blob *value, void *ctx)
{
    const struct req *r = ((const void **)ctx)[0];
    const char *node = ((const void **)ctx)[1];
    json_t *pod = corral_blob_json(value);
    bool ok = pod && pod_on_node(pod, node) &&
              pod_refers(pod, strcmp(r->resource, "secrets") == 0, r->name);
    json_decref(pod);
    return ok;
}

static bool node_uses(struct corral_authz *z, const struct req *r, const char *node)
{
    char prefix[300];
    const void *ctx[2] = {r, node};
    if (!z->st || !r->ns[0] || !r->name[0])
        return false;
    snprintf(prefix, sizeof(prefix), "/registry/pods/%s/", r->ns);
    struct corral_store_list_opts opts = {
        .prefix = prefix, .limit = 1, .filter = pod_on_node_refers, .filter_ctx = ctx};
    struct corral_store_list l;
    if (corral_store_list(z->st, &opts, &l) != 0)
        return false;
    bool found = l.n > 0;
    corral_store_list_clear(&l);
    return found;
}

/* Checks a rule's condition; on refusal writes the reason. */
static bool node_cond_ok(struct corral_authz *z, const struct node_rule *rule, const struct req *r,
                         const char *node, char *why, size_t len)
{
    switch (rule->cond) {
    case NODE_ANY:
        return true;
    case NODE_SELF:
        if (strcmp(target_name(r), node) == 0)
            return true;
        set_why(why, len, "node \"%s\" may only modify its own Node object", node);
        return false;
    case NODE_LEASE:
        if (strcmp(r->ns, "kube-node-lease") == 0 && strcmp(target_name(r), node) == 0)
            return true;
        set_why(why, len, "node \"%s\" may only use its own Lease in kube-node-lease", node);
        return false;
    case NODE_PODS_FIELD:
        if (selects_node(r->a->field_selector, node))
            return true;
        set_why(why, len,
                "node \"%s\" may only list and watch pods with fieldSelector "
                "spec.nodeName=%s",
                node, node);
        return false;
    case NODE_POD_BOUND:
        if (pod_bound(z, r, node))
            return true;
        set_why(why, len, "node \"%s\" may only act on pods bound to it", node);
        return false;
    case NODE_POD_REFERS:
        if (node_uses(z, r, node))
            return true;
        set_why(why, len, "no relationship found between node \"%s\" and this object", node);
        return false;
    }
    return false;
}

static bool node_allows(struct corral_authz *z, const struct req *r, const char *node, char *why,
                        size_t len)
{
    set_why(why, len, "nodes may not do this");
    for (size_t i = 0; i < sizeof(node_rules) / sizeof(node_rules[0]); i++) {
        const struct node_rule *rule = &node_rules[i];
        if (strcmp(rule->group, r->group) != 0 || strcmp(rule->resource, r->resource) != 0 ||
            strcmp(rule->sub, r->sub) != 0 || !verb_in(rule->verbs, r->verb))
            continue;
        return node_cond_ok(z, rule, r, node, why, len);
    }
    return false;
}

/* The node name for a node credential, else NULL. */
static const char *node_of(const struct corral_authz_attrs *a)
{
    bool in_nodes = false;
    for (size_t i = 0; i < a->n_groups; i++)
        in_nodes = in_nodes || strcmp(a->groups[i], "system:nodes") == 0;
    if (!in_nodes || strncmp(a->user, "system:node:", 12) != 0 || !a->user[12])
        return NULL;
    return a->user + 12;
}

/* ------------------------------------------------------------------------------------------ */
/* Decisions                                                                                   */

static void req_fill(struct req *r, const struct corral_authz_attrs *a)
{
    r->a = a;
    r->verb = str(a->verb);
    r->group = str(a->api_group);
    r->resource = str(a->resource);
    r->sub = str(a->subresource);
    r->ns = str(a->ns);
    r->name = str(a->name);
    r->path = str(a->path);
    /* a Namespace object is "in" itself, so a RoleBinding there grants access to it */
    if (strcmp(r->resource, "namespaces") == 0 && !r->group[0] && !r->ns[0] && r->name[0])
        r->ns = r->name;
}

static bool is_master(const struct corral_authz_attrs *a)
{
    for (size_t i = 0; i < a->n_groups; i++)
        if (strcmp(a->groups[i], "system:masters") == 0)
            return true;
    return false;
}

/* kube-apiserver's wording: `pods "web" is forbidden: User "alice" cannot get resource ...`. */
static void forbidden(const struct req *r, const char *extra, char *why, size_t len)
{
    char what[300], scope[300];
    if (!r->resource[0]) {
        set_why(why, len, "forbidden: User \"%s\" cannot %s path \"%s\"%s%s", r->a->user, r->verb,
                r->path, extra ? ": " : "", str(extra));
        return;
    }
    snprintf(what, sizeof(what), "%s%s%s", r->resource, r->group[0] ? "." : "", r->group);
    if (r->a->ns && r->a->ns[0])
        snprintf(scope, sizeof(scope), "in the namespace \"%s\"", r->a->ns);
    else
        snprintf(scope, sizeof(scope), "at the cluster scope");
    set_why(why, len,
            "%s%s%s%s is forbidden: User \"%s\" cannot %s resource \"%s%s%s\" in API "
            "group \"%s\" %s%s%s",
            what, r->name[0] ? " \"" : "", r->name, r->name[0] ? "\"" : "", r->a->user, r->verb,
            r->resource, r->sub[0] ? "/" : "", r->sub, r->group, scope, extra ? ": " : "",
            str(extra));
}

/* Decides r; how (may be NULL) says why in either case. */
static bool decide(struct corral_authz *z, const struct req *r, char *how, size_t len)
{
    const char *node = node_of(r->a);
    if (is_master(r->a)) {
        set_why(how, len, "allowed: member of system:masters");
        return true;
    }
    if (node && r->resource[0])
        return node_allows(z, r, node, how, len);
    authz_sync(z);
    pthread_rwlock_rdlock(&z->lock);
    bool ok = rbac_allows(&z->rbac, r, how, len);
    pthread_rwlock_unlock(&z->lock);
    return ok;
}

int corral_authz_check(struct corral_authz *z, const struct corral_authz_attrs *attrs, char *why,
                       size_t why_len)
{
    struct req r;
    char how[300] = "";
    if (!attrs->user || !attrs->verb)
        return -EINVAL;
    req_fill(&r, attrs);
    if (decide(z, &r, how, sizeof(how)))
        return 0;
    forbidden(&r, node_of(attrs) && r.resource[0] ? how : NULL, why, why_len);
    return CORRAL_EFORBIDDEN;
}

/* ------------------------------------------------------------------------------------------ */
/* Access reviews                                                                              */

static const char *jstr(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* Fills attrs from spec.resourceAttributes / nonResourceAttributes. */
static int review_attrs(const json_t *spec, struct corral_authz_attrs *a, const char *force_ns)
{
    const json_t *ra = json_object_get(spec, "resourceAttributes");
    const json_t *na = json_object_get(spec, "nonResourceAttributes");
    if (json_is_object(ra)) {
        a->verb = jstr(ra, "verb");
        a->api_group = jstr(ra, "group");
        a->resource = jstr(ra, "resource");
        a->subresource = jstr(ra, "subresource");
        a->ns = force_ns ? force_ns : jstr(ra, "namespace");
        a->name = jstr(ra, "name");
        return a->verb && a->resource ? 0 : CORRAL_EINVALID;
    }
    if (json_is_object(na)) {
        a->verb = jstr(na, "verb");
        a->path = jstr(na, "path");
        return a->verb && a->path ? 0 : CORRAL_EINVALID;
    }
    return CORRAL_EINVALID;
}

/* spec.user/spec.groups of a SubjectAccessReview into a (groups points into g). */
static int review_subject(const json_t *spec, struct corral_authz_attrs *a, const char **g,
                          size_t max)
{
    const json_t *groups = json_object_get(spec, "groups"), *v;
    size_t i;
    a->user = jstr(spec, "user");
    a->n_groups = 0;
    json_array_foreach(groups, i, v)
    {
        if (a->n_groups < max && json_is_string(v))
            g[a->n_groups++] = json_string_value(v);
    }
    a->groups = g;
    return a->user || a->n_groups ? 0 : CORRAL_EINVALID;
}

static int access_review(struct corral_authz *z, const struct corral_authz_attrs *caller,
                         json_t *review, const char *kind, char *why, size_t why_len)
{
    const json_t *spec = json_object_get(review, "spec");
    struct corral_authz_attrs a = *caller;
    const char *groups[32];
    bool self = strcmp(kind, "SelfSubjectAccessReview") == 0;
    const char *force_ns =
        strcmp(kind, "LocalSubjectAccessReview") == 0 ? corral_meta_namespace(review) : NULL;
    a.object = NULL;
    a.field_selector = NULL;
    if ((!self && review_subject(spec, &a, groups, 32)) || review_attrs(spec, &a, force_ns)) {
        set_why(why, why_len,
                "%s: spec needs resourceAttributes (verb, resource) or "
                "nonResourceAttributes (verb, path)%s",
                kind, self ? "" : ", and user or groups");
        return CORRAL_EINVALID;
    }
    if (!a.user)
        a.user = "";
    struct req r;
    char how[300] = "";
    req_fill(&r, &a);
    bool ok = decide(z, &r, how, sizeof(how));
    json_t *status = json_pack("{s:b,s:s}", "allowed", ok, "reason", how);
    if (!ok && !how[0])
        json_object_del(status, "reason");
    return json_object_set_new(review, "status", status) ? -ENOMEM : 0;
}

static void rules_from(const json_t *role, json_t *res_rules, json_t *url_rules)
{
    size_t i;
    const json_t *rule;
    json_array_foreach(json_object_get(role, "rules"), i, rule)
    {
        json_t *copy = json_deep_copy(rule);
        json_array_append_new(json_object_get(rule, "nonResourceURLs") ? url_rules : res_rules,
                              copy);
    }
}

/* Collects the rules of every binding matching a (cluster-wide and in ns). Lock held. */
static void collect_rules(const struct rbac *rb, const struct corral_authz_attrs *a, const char *ns,
                          json_t *res_rules, json_t *url_rules)
{
    const char *name;
    const json_t *b;
    json_object_foreach((json_t *)rb->cluster_bindings, name, b)
    {
        if (binding_matches(b, a))
            rules_from(role_of(rb, b), res_rules, url_rules);
    }
    json_object_foreach(json_object_get(rb->bindings, ns), name, b)
    {
        if (binding_matches(b, a)) {
            json_t *tmp = json_array();
            rules_from(role_of(rb, b), res_rules, tmp);
            json_decref(tmp); /* non-resource rules only count cluster-wide */
        }
    }
}

static int rules_review(struct corral_authz *z, const struct corral_authz_attrs *caller,
                        json_t *review)
{
    const char *ns = str(jstr(json_object_get(review, "spec"), "namespace"));
    json_t *res_rules = json_array(), *url_rules = json_array();
    bool incomplete = false;
    if (is_master(caller)) {
        json_array_append_new(res_rules, json_pack("{s:[s],s:[s],s:[s]}", "verbs", "*", "apiGroups",
                                                   "*", "resources", "*"));
        json_array_append_new(url_rules,
                              json_pack("{s:[s],s:[s]}", "verbs", "*", "nonResourceURLs", "*"));
    } else {
        incomplete = node_of(caller) != NULL; /* node conditions are not expressible */
        authz_sync(z);
        pthread_rwlock_rdlock(&z->lock);
        collect_rules(&z->rbac, caller, ns, res_rules, url_rules);
        pthread_rwlock_unlock(&z->lock);
    }
    json_t *status = json_pack("{s:o,s:o,s:b}", "resourceRules", res_rules, "nonResourceRules",
                               url_rules, "incomplete", incomplete);
    return status && json_object_set_new(review, "status", status) == 0 ? 0 : -ENOMEM;
}

int corral_authz_review(struct corral_authz *z, const struct corral_authz_attrs *caller,
                        json_t *review, char *why, size_t why_len)
{
    const char *kind = str(jstr(review, "kind"));
    if (strcmp(kind, "SelfSubjectRulesReview") == 0)
        return rules_review(z, caller, review);
    if (strcmp(kind, "SelfSubjectAccessReview") == 0 || strcmp(kind, "SubjectAccessReview") == 0 ||
        strcmp(kind, "LocalSubjectAccessReview") == 0)
        return access_review(z, caller, review, kind, why, why_len);
    set_why(why, why_len, "unknown review kind \"%s\"", kind);
    return CORRAL_EINVALID;
}
