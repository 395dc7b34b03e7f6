/* SPDX-License-Identifier: Apache-2.0 */
/*
 * schema: declared fields of the built-in kinds (see schema.h).
 *
 * Each definition is "Type" → "field:type field:type ...", where a type is a primitive
 * (string, int, bool, number, quantity, intstr, any), another definition, "[T]" (a list of T)
 * or "map<T>". The table is parsed once into JSON ({"Type": {"field": "type"}}) on first use.
 */
#include "schema.h"
#include "error.h"
#include "meta.h"
#include "status.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const definitions[][2] = {
    {"ObjectMeta",
     "name:string generateName:string namespace:string selfLink:string uid:string "
     "resourceVersion:string generation:int creationTimestamp:string deletionTimestamp:string "
     "deletionGracePeriodSeconds:int labels:map<string> annotations:map<string> "
     "ownerReferences:[OwnerReference] finalizers:[string] managedFields:[any]"},
    {"OwnerReference",
     "apiVersion:string kind:string name:string uid:string controller:bool "
     "blockOwnerDeletion:bool"},
    {"LabelSelector", "matchLabels:map<string> matchExpressions:[SelectorRequirement]"},
    {"SelectorRequirement", "key:string operator:string values:[string]"},
    {"PodTemplateSpec", "metadata:ObjectMeta spec:PodSpec"},
    {"PodSpec",
     "containers:[Container] initContainers:[Container] ephemeralContainers:[any] "
     "volumes:[any] restartPolicy:string terminationGracePeriodSeconds:int "
     "activeDeadlineSeconds:int dnsPolicy:string nodeSelector:map<string> "
     "serviceAccountName:string serviceAccount:string automountServiceAccountToken:bool "
     "nodeName:string hostNetwork:bool hostPID:bool hostIPC:bool shareProcessNamespace:bool "
     "securityContext:any imagePullSecrets:[any] hostname:string subdomain:string affinity:any "
     "schedulerName:string tolerations:[Toleration] hostAliases:[any] "
     "priorityClassName:string priority:int dnsConfig:any readinessGates:[any] "
     "runtimeClassName:string enableServiceLinks:bool preemptionPolicy:string overhead:any "
     "topologySpreadConstraints:[any] setHostnameAsFQDN:bool os:any hostUsers:bool "
     "schedulingGates:[any] resourceClaims:[any] resources:any"},
    {"Container",
     "name:string image:string command:[string] args:[string] workingDir:string "
     "ports:[ContainerPort] envFrom:[any] env:[EnvVar] resources:ResourceRequirements "
     "resizePolicy:[any] restartPolicy:string volumeMounts:[any] volumeDevices:[any] "
     "livenessProbe:Probe readinessProbe:Probe startupProbe:Probe lifecycle:any "
     "terminationMessagePath:string terminationMessagePolicy:string imagePullPolicy:string "
     "securityContext:any stdin:bool stdinOnce:bool tty:bool"},
    {"ContainerPort",
     "name:string hostPort:int containerPort:int protocol:string hostIP:string"},
    {"EnvVar", "name:string value:string valueFrom:any"},
    {"ResourceRequirements", "limits:map<quantity> requests:map<quantity> claims:[any]"},
    {"Probe",
     "exec:any httpGet:any tcpSocket:any grpc:any initialDelaySeconds:int timeoutSeconds:int "
     "periodSeconds:int successThreshold:int failureThreshold:int "
     "terminationGracePeriodSeconds:int"},
    {"Toleration", "key:string operator:string value:string effect:string tolerationSeconds:int"},
    {"Pod", "apiVersion:string kind:string metadata:ObjectMeta spec:PodSpec status:any"},
    {"DeploymentSpec",
     "replicas:int selector:LabelSelector template:PodTemplateSpec strategy:any "
     "minReadySeconds:int revisionHistoryLimit:int paused:bool progressDeadlineSeconds:int"},
    {"Deployment",
     "apiVersion:string kind:string metadata:ObjectMeta spec:DeploymentSpec status:any"},
    {"ReplicaSetSpec",
     "replicas:int minReadySeconds:int selector:LabelSelector template:PodTemplateSpec"},
    {"ReplicaSet",
     "apiVersion:string kind:string metadata:ObjectMeta spec:ReplicaSetSpec status:any"},
    {"JobSpec",
     "parallelism:int completions:int activeDeadlineSeconds:int podFailurePolicy:any "
     "successPolicy:any backoffLimit:int backoffLimitPerIndex:int maxFailedIndexes:int "
     "selector:LabelSelector manualSelector:bool template:PodTemplateSpec "
     "ttlSecondsAfterFinished:int completionMode:string suspend:bool "
     "podReplacementPolicy:string managedBy:string"},
    {"Job", "apiVersion:string kind:string metadata:ObjectMeta spec:JobSpec status:any"},
    {"ServicePort",
     "name:string protocol:string appProtocol:string port:int targetPort:intstr nodePort:int"},
    {"ServiceSpec",
     "ports:[ServicePort] selector:map<string> clusterIP:string clusterIPs:[string] type:string "
     "externalIPs:[string] sessionAffinity:string loadBalancerIP:string "
     "loadBalancerSourceRanges:[string] externalName:string externalTrafficPolicy:string "
     "healthCheckNodePort:int publishNotReadyAddresses:bool sessionAffinityConfig:any "
     "ipFamilies:[string] ipFamilyPolicy:string allocateLoadBalancerNodePorts:bool "
     "loadBalancerClass:string internalTrafficPolicy:string trafficDistribution:string"},
    {"Service", "apiVersion:string kind:string metadata:ObjectMeta spec:ServiceSpec status:any"},
    {"Namespace", "apiVersion:string kind:string metadata:ObjectMeta spec:any status:any"},
    {"ConfigMap",
     "apiVersion:string kind:string metadata:ObjectMeta data:map<string> "
     "binaryData:map<string> immutable:bool"},
    {"Secret",
     "apiVersion:string kind:string metadata:ObjectMeta data:map<string> "
     "stringData:map<string> type:string immutable:bool"},
    {"Node", "apiVersion:string kind:string metadata:ObjectMeta spec:any status:any"},
    {"Event",
     "apiVersion:string kind:string metadata:ObjectMeta involvedObject:any reason:string "
     "message:string source:any firstTimestamp:string lastTimestamp:string count:int "
     "type:string eventTime:any series:any action:string related:any "
     "reportingComponent:string reportingInstance:string"},
    {"Endpoints", "apiVersion:string kind:string metadata:ObjectMeta subsets:[any]"},
    {"ServiceAccount",
     "apiVersion:string kind:string metadata:ObjectMeta secrets:[any] imagePullSecrets:[any] "
     "automountServiceAccountToken:bool"},
    {"Lease", "apiVersion:string kind:string metadata:ObjectMeta spec:any"},
    {"ClusterRole",
     "apiVersion:string kind:string metadata:ObjectMeta rules:[any] aggregationRule:any"},
    {"Role", "apiVersion:string kind:string metadata:ObjectMeta rules:[any]"},
    {"ClusterRoleBinding",
     "apiVersion:string kind:string metadata:ObjectMeta subjects:[any] roleRef:any"},
    {"RoleBinding", "apiVersion:string kind:string metadata:ObjectMeta subjects:[any] roleRef:any"},
    {"CustomResourceDefinition",
     "apiVersion:string kind:string metadata:ObjectMeta spec:any status:any"},
    {"PodGroup", "apiVersion:string kind:string metadata:ObjectMeta spec:any status:any"},
};

static pthread_once_t parse_once = PTHREAD_ONCE_INIT;
static json_t *types; /* {"Type": {"field": "typeexpr"}} — lives for the process */

static void parse_definitions(void)
{
    types = json_object();
    for (size_t i = 0; i < sizeof(definitions) / sizeof(definitions[0]); i++) {
        json_t *fields = json_object();
        char *copy = strdup(definitions[i][1]), *save = NULL;
        for (char *tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
            char *colon = strchr(tok, ':');
            if (!colon)
                continue;
            *colon = 0;
            json_object_set_new(fields, tok, json_string(colon + 1));
        }
        free(copy);
        json_object_set_new(types, definitions[i][0], fields);
    }
}

static const json_t *type_fields(const char *name)
{
    pthread_once(&parse_once, parse_definitions);
    return json_object_get(types, name);
}

struct walk {
    json_t *unknown;
    bool prune; /* remove unknown fields as they are found */
    char path[1024];
};

static void check_value(struct walk *w, const json_t *v, const char *type);

static void check_object(struct walk *w, const json_t *v, const json_t *fields)
{
    if (!json_is_object(v))
        return;
    size_t base = strlen(w->path);
    const char *k;
    json_t *child;
    void *tmp;
    json_object_foreach_safe((json_t *)v, tmp, k, child)
    {
        snprintf(w->path + base, sizeof(w->path) - base, "%s%s", base ? "." : "", k);
        const char *t = json_string_value(json_object_get(fields, k));
        if (t) {
            check_value(w, child, t);
            continue;
        }
        json_array_append_new(w->unknown, json_string(w->path));
        if (w->prune)
            json_object_del((json_t *)v, k);
    }
    w->path[base] = 0;
}

static void check_value(struct walk *w, const json_t *v, const char *type)
{
    size_t n = strlen(type);
    if (type[0] == '[' && n > 2 && json_is_array(v)) {
        char inner[64];
        snprintf(inner, sizeof(inner), "%.*s", (int)(n - 2), type + 1);
        size_t base = strlen(w->path);
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            snprintf(w->path + base, sizeof(w->path) - base, "[%zu]", i);
            check_value(w, e, inner);
        }
        w->path[base] = 0;
        return;
    }
    const json_t *fields = type_fields(type);
    if (fields)
        check_object(w, v, fields);
}

/* CRD: walk openAPIV3Schema properties (respecting x-kubernetes-preserve-unknown-fields). */
static void check_openapi(struct walk *w, const json_t *v, const json_t *schema)
{
    if (!schema || json_is_true(json_object_get(schema, "x-kubernetes-preserve-unknown-fields")))
        return;
    size_t base = strlen(w->path);
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            snprintf(w->path + base, sizeof(w->path) - base, "[%zu]", i);
            check_openapi(w, e, json_object_get(schema, "items"));
        }
        w->path[base] = 0;
        return;
    }
    json_t *props = json_object_get(schema, "properties");
    json_t *extra = json_object_get(schema, "additionalProperties");
    if (!json_is_object(v) || (!props && !json_is_false(extra)))
        return;
    const char *k;
    json_t *child;
    void *tmp;
    json_object_foreach_safe((json_t *)v, tmp, k, child)
    {
        snprintf(w->path + base, sizeof(w->path) - base, "%s%s", base ? "." : "", k);
        json_t *ps = json_object_get(props, k);
        if (ps) {
            check_openapi(w, child, ps);
        } else if (json_is_object(extra)) {
            check_openapi(w, child, extra);
        } else if (!(base == 0 && (strcmp(k, "apiVersion") == 0 || strcmp(k, "kind") == 0 ||
                                   strcmp(k, "metadata") == 0))) {
            json_array_append_new(w->unknown, json_string(w->path));
            if (w->prune)
                json_object_del((json_t *)v, k);
        }
    }
    w->path[base] = 0;
}

const json_t *corral_schema_crd(const struct corral_resource *res)
{
    if (!res || !res->crd)
        return NULL;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(json_object_get(res->crd, "spec"), "versions"), i, v)
    {
        const char *name = json_string_value(json_object_get(v, "name"));
        if (name && strcmp(name, res->version) == 0)
            return json_object_get(json_object_get(v, "schema"), "openAPIV3Schema");
    }
    return NULL;
}

/* Collects (and with prune, removes) the unknown fields of obj. Returns how many. */
static size_t unknown_fields(const struct corral_resource *res, const json_t *obj,
                             json_t *unknown, bool prune)
{
    struct walk w = {.unknown = unknown, .prune = prune};
    size_t before = json_array_size(unknown);
    if (res->crd) {
        check_openapi(&w, obj, corral_schema_crd(res));
        w.path[0] = 0;
        check_value(&w, json_object_get(obj, "metadata"), "ObjectMeta");
    } else {
        check_value(&w, obj, res->kind);
    }
    return json_array_size(unknown) - before;
}

size_t corral_schema_unknown_fields(const struct corral_resource *res, const json_t *obj,
                                    json_t *unknown)
{
    return unknown_fields(res, obj, unknown, false);
}

/*
 * Fields the API stores (they are part of the Kubernetes schema, and manifests carry them)
 * but no corral controller acts on yet. Writing one gets a warning, which kubectl prints, so
 * nobody relies on a policy that is not enforced.
 */
static const struct {
    const char *group, *plural, *field, *consequence;
} not_acted_on[] = {
    {"batch", "jobs", "backoffLimitPerIndex", "failures count against spec.backoffLimit"},
    {"batch", "jobs", "maxFailedIndexes", "failures count against spec.backoffLimit"},
};

static void warn_not_acted_on(struct corral_request *req, const json_t *obj)
{
    const json_t *spec = json_object_get(obj, "spec");
    for (size_t i = 0; i < sizeof(not_acted_on) / sizeof(not_acted_on[0]); i++) {
        if (strcmp(req->res->group, not_acted_on[i].group) != 0 ||
            strcmp(req->res->plural, not_acted_on[i].plural) != 0)
            continue;
        const json_t *v = json_object_get(spec, not_acted_on[i].field);
        if (v && !json_is_null(v))
            corral_request_warn(req, "spec.%s is stored but not acted on by corral: %s",
                                not_acted_on[i].field, not_acted_on[i].consequence);
    }
}

int corral_schema_check_request(struct corral_request *req, json_t *obj, json_t **status)
{
    if (req->res && !req->res->crd)
        warn_not_acted_on(req, obj);
    const char *mode = corral_request_query(req, "fieldValidation");
    bool strict = mode && strcmp(mode, "Strict") == 0;
    json_t *unknown = json_array();
    if (unknown_fields(req->res, obj, unknown, !strict) == 0 || !strict) {
        size_t i;
        json_t *u;
        bool warn = !mode || strcmp(mode, "Ignore") != 0; /* Warn is the default */
        json_array_foreach(unknown, i, u)
        {
            if (warn)
                corral_request_warn(req, "unknown field \"%s\"", json_string_value(u));
        }
        json_decref(unknown);
        return 0;
    }
    char msg[2048];
    int n = snprintf(msg, sizeof(msg), "%s in version \"%s\" cannot be handled as a %s: strict "
                     "decoding error: ",
                     req->res->kind, req->res->version, req->res->kind);
    size_t i;
    json_t *u;
    json_array_foreach(unknown, i, u)
    {
        if (n >= (int)sizeof(msg))
            break;
        n += snprintf(msg + n, sizeof(msg) - (size_t)n, "%sunknown field \"%s\"", i ? ", " : "",
                      json_string_value(u));
    }
    json_decref(unknown);
    *status = corral_status_from_error(CORRAL_EBADREQUEST, msg);
    return CORRAL_EBADREQUEST;
}

/* ---- OpenAPI ---- */

static json_t *openapi_type(const char *type, int depth);

static json_t *openapi_object(const json_t *fields, int depth)
{
    json_t *props = json_object();
    const char *k;
    json_t *t;
    json_object_foreach((json_t *)fields, k, t)
        json_object_set_new(props, k, openapi_type(json_string_value(t), depth + 1));
    return json_pack("{s:s, s:o}", "type", "object", "properties", props);
}

static json_t *openapi_type(const char *type, int depth)
{
    size_t n = strlen(type);
    if (strcmp(type, "string") == 0)
        return json_pack("{s:s}", "type", "string");
    if (strcmp(type, "int") == 0)
        return json_pack("{s:s, s:s}", "type", "integer", "format", "int64");
    if (strcmp(type, "bool") == 0)
        return json_pack("{s:s}", "type", "boolean");
    if (strcmp(type, "number") == 0)
        return json_pack("{s:s}", "type", "number");
    if (strcmp(type, "quantity") == 0 || strcmp(type, "intstr") == 0)
        return json_pack("{s:b}", "x-kubernetes-int-or-string", 1);
    if (type[0] == '[' && n > 2) {
        char inner[64];
        snprintf(inner, sizeof(inner), "%.*s", (int)(n - 2), type + 1);
        return json_pack("{s:s, s:o}", "type", "array", "items", openapi_type(inner, depth));
    }
    if (strncmp(type, "map<", 4) == 0 && n > 5) {
        char inner[64];
        snprintf(inner, sizeof(inner), "%.*s", (int)(n - 5), type + 4);
        return json_pack("{s:s, s:o}", "type", "object", "additionalProperties",
                         openapi_type(inner, depth));
    }
    const json_t *fields = type_fields(type);
    if (fields && depth < 12)
        return openapi_object(fields, depth);
    return json_pack("{s:s, s:b}", "type", "object", "x-kubernetes-preserve-unknown-fields", 1);
}

json_t *corral_schema_openapi(const struct corral_resource *res)
{
    if (res->crd) {
        const json_t *s = corral_schema_crd(res);
        return s ? json_deep_copy(s)
                 : json_pack("{s:s, s:b}", "type", "object",
                             "x-kubernetes-preserve-unknown-fields", 1);
    }
    return openapi_type(res->kind, 0);
}
