/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pod: reading a Pod object into the scheduler's view (see pod.h). Requests are summed in
 * milli units for every resource and converted once at the end, so "500m" CPU and "1.5Gi"
 * memory stay exact. Every rejection names the field, e.g.
 * "spec.containers[0].resources.limits[corral.io/gpu-milli]: must be between 1 and 999".
 */
#include "pod.h"

#include "error.h"
#include "meta.h"
#include "quantity.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RES_GPU_NAME "nvidia.com/gpu"
#define RES_GPU_MILLI_NAME "corral.io/gpu-milli"

static const char *const std_names[CORRAL_RES_COUNT] = {
    [CORRAL_RES_CPU] = "cpu",
    [CORRAL_RES_MEMORY] = "memory",
    [CORRAL_RES_PODS] = "pods",
    [CORRAL_RES_GPU] = RES_GPU_NAME,
    [CORRAL_RES_GPU_MILLI] = RES_GPU_MILLI_NAME,
    [CORRAL_RES_EPHEMERAL] = "ephemeral-storage",
};

uint64_t corral_pod_hash(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* Milli-valued totals keyed by resource name while reading containers. */
struct totals {
    json_t *milli; /* object: name -> integer milli */
};

static int64_t total_get(const struct totals *t, const char *name)
{
    return json_integer_value(json_object_get(t->milli, name));
}

static int total_set(struct totals *t, const char *name, int64_t v)
{
    return json_object_set_new(t->milli, name, json_integer(v)) == 0 ? 0 : -ENOMEM;
}

static int64_t sat_add(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b)
        return INT64_MAX;
    return a + b;
}

/* requests[name], defaulting to limits[name] as Kubernetes does. */
static int container_resources(const json_t *c, const char *where, struct totals *out, char *err,
                               size_t errlen)
{
    json_t *res = json_object_get(c, "resources");
    json_t *req = json_object_get(res, "requests");
    json_t *lim = json_object_get(res, "limits");
    json_t *maps[2] = {lim, req};
    const char *map_names[2] = {"limits", "requests"};
    for (int m = 0; m < 2; m++) {
        if (maps[m] && !json_is_object(maps[m])) {
            snprintf(err, errlen, "%s.resources.%s: must be an object", where, map_names[m]);
            return CORRAL_EINVALID;
        }
        const char *k;
        json_t *v;
        json_object_foreach(maps[m], k, v)
        {
            if (m == 0 && json_object_get(req, k))
                continue; /* requests win over limits */
            struct corral_quantity q;
            if (corral_quantity_from_json(v, &q) < 0) {
                snprintf(err, errlen, "%s.resources.%s[%s]: not a valid quantity", where,
                         map_names[m], k);
                return CORRAL_EINVALID;
            }
            int64_t milli = corral_quantity_milli(&q);
            if (milli < 0) {
                snprintf(err, errlen, "%s.resources.%s[%s]: must not be negative", where,
                         map_names[m], k);
                return CORRAL_EINVALID;
            }
            if (total_set(out, k, milli) < 0)
                return -ENOMEM;
        }
    }
    return 0;
}

/* dst[k] = combine(dst[k], src[k]) for every k in src; combine is sum or max. */
static int merge_totals(struct totals *dst, const struct totals *src, bool sum)
{
    const char *k;
    json_t *v;
    json_object_foreach(src->milli, k, v)
    {
        int64_t a = total_get(dst, k), b = json_integer_value(v);
        int64_t r = sum ? sat_add(a, b) : (a > b ? a : b);
        if (total_set(dst, k, r) < 0)
            return -ENOMEM;
    }
    return 0;
}

static int read_container_list(const json_t *list, const char *field, bool init,
                               struct totals *sum, struct totals *init_max, char *err,
                               size_t errlen)
{
    if (list && !json_is_array(list)) {
        snprintf(err, errlen, "spec.%s: must be a list", field);
        return CORRAL_EINVALID;
    }
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c)
    {
        char where[64];
        snprintf(where, sizeof(where), "spec.%s[%zu]", field, i);
        struct totals one = {json_object()};
        if (!one.milli)
            return -ENOMEM;
        int rc = container_resources(c, where, &one, err, errlen);
        const char *rp = json_string_value(json_object_get(c, "restartPolicy"));
        bool sidecar = init && rp && strcmp(rp, "Always") == 0;
        if (rc == 0)
            rc = merge_totals(init && !sidecar ? init_max : sum, &one, init && !sidecar ? false
                                                                                        : true);
        json_decref(one.milli);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int check_gpu(const struct totals *t, char *err, size_t errlen)
{
    int64_t gpu = total_get(t, RES_GPU_NAME), share = total_get(t, RES_GPU_MILLI_NAME);
    if (gpu % 1000 != 0) {
        snprintf(err, errlen, "resources[%s]: must be a whole number of GPUs", RES_GPU_NAME);
        return CORRAL_EINVALID;
    }
    if (share % 1000 != 0) {
        snprintf(err, errlen, "resources[%s]: must be an integer", RES_GPU_MILLI_NAME);
        return CORRAL_EINVALID;
    }
    if (share != 0 && gpu != 0) {
        snprintf(err, errlen, "resources: %s and %s cannot be requested together",
                 RES_GPU_NAME, RES_GPU_MILLI_NAME);
        return CORRAL_EINVALID;
    }
    if (share != 0 && (share < 1000 || share > 999000)) {
        snprintf(err, errlen,
                 "resources[%s]: must be between 1 and 999 (use %s for whole GPUs)",
                 RES_GPU_MILLI_NAME, RES_GPU_NAME);
        return CORRAL_EINVALID;
    }
    if (gpu / 1000 > CORRAL_MAX_GPUS_PER_NODE) {
        snprintf(err, errlen, "resources[%s]: more than %d GPUs cannot fit on one node",
                 RES_GPU_NAME, CORRAL_MAX_GPUS_PER_NODE);
        return CORRAL_EINVALID;
    }
    return 0;
}

static int std_index(const char *name)
{
    for (int i = 0; i < CORRAL_RES_COUNT; i++)
        if (strcmp(name, std_names[i]) == 0)
            return i;
    return -1;
}

static int store_requests(struct corral_pod *pod, const struct totals *t)
{
    size_t n = json_object_size(t->milli);
    pod->ext = n ? calloc(n, sizeof(*pod->ext)) : NULL;
    if (n && !pod->ext)
        return -ENOMEM;
    const char *k;
    json_t *v;
    json_object_foreach(t->milli, k, v)
    {
        int64_t milli = json_integer_value(v);
        int idx = std_index(k);
        if (idx == CORRAL_RES_CPU) {
            pod->req[idx] = milli;
        } else if (idx >= 0) {
            if (idx != CORRAL_RES_PODS)
                pod->req[idx] = milli / 1000 + (milli % 1000 != 0);
        } else if (milli > 0) {
            pod->ext[pod->n_ext].name = strdup(k);
            if (!pod->ext[pod->n_ext].name)
                return -ENOMEM;
            pod->ext[pod->n_ext++].value = milli / 1000 + (milli % 1000 != 0);
        }
    }
    pod->req[CORRAL_RES_PODS] = 1;
    return 0;
}

static int read_requests(struct corral_pod *pod, char *err, size_t errlen)
{
    json_t *spec = json_object_get(pod->obj, "spec");
    struct totals sum = {json_object()}, init = {json_object()};
    int rc = (!sum.milli || !init.milli) ? -ENOMEM : 0;
    if (rc == 0)
        rc = read_container_list(json_object_get(spec, "containers"), "containers", false, &sum,
                                 &init, err, errlen);
    if (rc == 0)
        rc = read_container_list(json_object_get(spec, "initContainers"), "initContainers",
                                 true, &sum, &init, err, errlen);
    if (rc == 0)
        rc = merge_totals(&sum, &init, false);
    if (rc == 0 && json_object_get(spec, "overhead")) {
        struct totals over = {json_object()};
        json_t *fake = json_pack("{s:{s:O}}", "resources", "requests",
                                 json_object_get(spec, "overhead"));
        rc = (!over.milli || !fake) ? -ENOMEM
                                    : container_resources(fake, "spec.overhead", &over, err, errlen);
        if (rc == 0)
            rc = merge_totals(&sum, &over, true);
        json_decref(fake);
        json_decref(over.milli);
    }
    if (rc == 0)
        rc = check_gpu(&sum, err, errlen);
    if (rc == 0)
        rc = store_requests(pod, &sum);
    json_decref(sum.milli);
    json_decref(init.milli);
    return rc;
}

static bool signature_ignores(const char *annotation)
{
    return strncmp(annotation, "corral.io/assigned-", 19) == 0 ||
           strcmp(annotation, "kubectl.kubernetes.io/last-applied-configuration") == 0;
}

static int build_signature(struct corral_pod *pod)
{
    json_t *spec = json_deep_copy(json_object_get(pod->obj, "spec"));
    json_t *ann = json_object();
    json_t *sig = json_object();
    int rc = -ENOMEM;
    if (!ann || !sig)
        goto out;
    if (spec)
        json_object_del(spec, "nodeName");
    const char *k;
    json_t *v;
    json_object_foreach(pod->annotations, k, v)
        if (!signature_ignores(k))
            json_object_set(ann, k, v);
    json_object_set_new(sig, "ns", json_string(pod->ns ? pod->ns : ""));
    json_object_set(sig, "labels", pod->labels ? pod->labels : json_null());
    json_object_set(sig, "annotations", ann);
    json_object_set(sig, "spec", spec ? spec : json_null());
    pod->sig = json_dumps(sig, JSON_COMPACT | JSON_SORT_KEYS);
    if (!pod->sig)
        goto out;
    pod->sig_len = strlen(pod->sig);
    pod->sig_hash = corral_pod_hash(pod->sig, pod->sig_len);
    rc = 0;
out:
    json_decref(spec);
    json_decref(ann);
    json_decref(sig);
    return rc;
}

static int read_priority(struct corral_pod *pod, char *err, size_t errlen)
{
    json_t *p = json_object_get(json_object_get(pod->obj, "spec"), "priority");
    if (!p)
        return 0;
    if (!json_is_integer(p) || json_integer_value(p) < INT32_MIN ||
        json_integer_value(p) > INT32_MAX) {
        snprintf(err, errlen, "spec.priority: must be a 32-bit integer");
        return CORRAL_EINVALID;
    }
    pod->priority = (int32_t)json_integer_value(p);
    return 0;
}

/* True when a container or init container of spec asks for a host port. */
static bool uses_host_ports(json_t *spec)
{
    static const char *const lists[] = {"containers", "initContainers"};
    for (size_t l = 0; l < sizeof(lists) / sizeof(lists[0]); l++) {
        size_t i, j;
        json_t *c, *port;
        json_array_foreach(json_object_get(spec, lists[l]), i, c)
        {
            json_array_foreach(json_object_get(c, "ports"), j, port)
            {
                json_t *hp = json_object_get(port, "hostPort");
                if (hp && !(json_is_integer(hp) && json_integer_value(hp) == 0))
                    return true;
            }
        }
    }
    return false;
}

int corral_pod_new(json_t *obj, struct corral_pod **out, char *err, size_t errlen)
{
    if (!json_is_object(obj)) {
        json_decref(obj);
        snprintf(err, errlen, "a Pod must be a JSON object");
        return CORRAL_EINVALID;
    }
    struct corral_pod *pod = calloc(1, sizeof(*pod));
    if (!pod) {
        json_decref(obj);
        return -ENOMEM;
    }
    pod->obj = obj;
    pod->node = CORRAL_NO_NODE;
    pod->nominated = CORRAL_NO_NODE;
    pod->profile = -1;
    pod->name = corral_meta_name(obj);
    pod->ns = corral_meta_namespace(obj);
    if (!pod->ns)
        pod->ns = "default";
    pod->uid = json_string_value(json_object_get(json_object_get(obj, "metadata"), "uid"));
    pod->labels = corral_meta_labels(obj);
    pod->annotations = corral_meta_annotations(obj);
    pod->scheduler_name =
        json_string_value(json_object_get(json_object_get(obj, "spec"), "schedulerName"));
    if (!pod->scheduler_name)
        pod->scheduler_name = "default-scheduler";
    pod->host_ports = uses_host_ports(json_object_get(obj, "spec"));
    int rc = 0;
    if (!pod->name) {
        snprintf(err, errlen, "metadata.name: Required value");
        rc = CORRAL_EINVALID;
    }
    if (rc == 0)
        rc = read_requests(pod, err, errlen);
    if (rc == 0)
        rc = read_priority(pod, err, errlen);
    if (rc == 0)
        rc = build_signature(pod);
    if (rc < 0) {
        corral_pod_free(pod);
        return rc;
    }
    *out = pod;
    return 0;
}

void corral_pod_free(struct corral_pod *pod)
{
    if (!pod)
        return;
    for (uint32_t i = 0; i < pod->n_ext; i++)
        free(pod->ext[i].name);
    free(pod->ext);
    free(pod->sig);
    free(pod->message);
    json_decref(pod->obj);
    free(pod);
}

bool corral_pod_wants_gpu(const struct corral_pod *pod)
{
    return pod->req[CORRAL_RES_GPU] > 0 || pod->req[CORRAL_RES_GPU_MILLI] > 0;
}

int64_t corral_pod_gpu_demand(const struct corral_pod *pod)
{
    return pod->req[CORRAL_RES_GPU] * 1000 + pod->req[CORRAL_RES_GPU_MILLI];
}

int corral_pod_set_message(struct corral_pod *pod, const char *msg)
{
    char *copy = NULL;
    if (msg && !(copy = strdup(msg)))
        return -ENOMEM;
    free(pod->message);
    pod->message = copy;
    return 0;
}
