/* SPDX-License-Identifier: Apache-2.0 */
/*
 * node: the Node object (see node.h and docs/gpus.md).
 *
 * Capacity counts logical CPUs and total memory (in Ki, as the kubelet writes it); allocatable
 * subtracts the configured reservations. A GPU that a live probe reported unhealthy stays in
 * the per-GPU annotation (with "healthy": false) but is not allocatable. A node with several
 * GPU models publishes the labels of GPU 0; the annotation is authoritative.
 */
#include "node.h"

#include "meta.h"
#include "quantity.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

const char *corral_node_goarch(const char *machine)
{
    static const struct {
        const char *uname, *go;
    } map[] = {{"x86_64", "amd64"},    {"amd64", "amd64"},     {"aarch64", "arm64"},
               {"arm64", "arm64"},     {"ppc64le", "ppc64le"}, {"s390x", "s390x"},
               {"riscv64", "riscv64"}, {"i686", "386"},        {"armv7l", "arm"}};
    for (size_t i = 0; machine && i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(machine, map[i].uname) == 0)
            return map[i].go;
    return "unknown";
}

int corral_node_name_from_host(const char *host, char *out, size_t len)
{
    size_t n = 0;
    for (const char *p = host ? host : ""; *p && n + 1 < len && n < 63; p++) {
        char c = (char)tolower((unsigned char)*p);
        out[n++] = (isalnum((unsigned char)c) || c == '.' || c == '-') ? c : '-';
    }
    out[n] = '\0';
    while (n > 0 && !isalnum((unsigned char)out[n - 1]))
        out[--n] = '\0';
    size_t skip = 0;
    while (out[skip] && !isalnum((unsigned char)out[skip]))
        skip++;
    memmove(out, out + skip, n - skip + 1);
    return out[0] && !corral_meta_check_dns_subdomain(out) ? 0 : -EINVAL;
}

/* ---- labels ---------------------------------------------------------------------------- */

static void set_str(json_t *obj, const char *key, const char *value)
{
    json_object_set_new(obj, key, json_string(value));
}

static void set_int_label(json_t *labels, const char *key, long long v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%lld", v);
    set_str(labels, key, buf);
}

static const char *nvlink_state(const struct corral_gpu *g)
{
    if (g->island < 0)
        return "unknown";
    return g->nlinks > 0 ? "true" : "false";
}

static void gpu_labels(const struct corral_topology *topo, json_t *labels)
{
    if (topo->ngpus == 0)
        return;
    const struct corral_gpu *g = &topo->gpus[0];
    char product[64];
    if (corral_gpudb_product_label(g->name, product, sizeof(product)) > 0)
        set_str(labels, "nvidia.com/gpu.product", product);
    if (g->memory_mib)
        set_int_label(labels, "nvidia.com/gpu.memory", (long long)g->memory_mib);
    set_int_label(labels, "nvidia.com/gpu.count", (long long)topo->ngpus);
    if (g->db)
        set_str(labels, "nvidia.com/gpu.family", g->db->family);
    if (g->cc_major >= 0) {
        set_int_label(labels, "nvidia.com/gpu.compute.major", g->cc_major);
        set_int_label(labels, "nvidia.com/gpu.compute.minor", g->cc_minor);
    }
    if (g->db) {
        set_str(labels, "corral.io/gpu.model", g->db->model);
        set_str(labels, "corral.io/gpu.rt-cores", g->db->rt_cores ? "true" : "false");
        set_str(labels, "corral.io/gpu.class", g->db->gpu_class);
    }
    set_str(labels, "corral.io/gpu.nvlink", nvlink_state(g));
}

static int node_labels(const struct corral_topology *topo, const struct corral_node_config *cfg,
                       const char *name, json_t *labels, char *err, size_t errlen)
{
    gpu_labels(topo, labels);
    if (cfg->provider)
        set_str(labels, "corral.io/provider", cfg->provider);
    if (cfg->zone)
        set_str(labels, "topology.kubernetes.io/zone", cfg->zone);
    if (cfg->region)
        set_str(labels, "topology.kubernetes.io/region", cfg->region);
    set_str(labels, "kubernetes.io/hostname", name);
    set_str(labels, "kubernetes.io/os", "linux");
    set_str(labels, "kubernetes.io/arch", corral_node_goarch(topo->arch));
    const char *key;
    json_t *v;
    json_object_foreach(cfg->labels, key, v)
    {
        json_object_set(labels, key, v);
    }
    json_object_foreach(labels, key, v)
    {
        const char *why = corral_meta_check_label_key(key);
        if (!why && !json_is_string(v))
            why = "value must be a string";
        if (!why)
            why = corral_meta_check_label_value(json_string_value(v));
        if (why) {
            set_err(err, errlen, "node label %s: %s", key, why);
            return -EINVAL;
        }
    }
    return 0;
}

/* ---- the per-GPU annotation ------------------------------------------------------------ */

static json_t *links_json(const struct corral_gpu *g)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < g->nlinks; i++)
        json_array_append_new(arr,
                              json_pack("{s:i, s:I}", "peer", g->links[i].peer, "bandwidthMBps",
                                        (json_int_t)g->links[i].bandwidth_mbps));
    return arr;
}

static json_t *gpu_json(const struct corral_gpu *g)
{
    char product[64], pci[16], cc[16];
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "index", json_integer(g->index));
    if (g->uuid[0])
        set_str(o, "uuid", g->uuid);
    set_str(o, "busId", g->bus_id);
    if (corral_gpudb_product_label(g->name, product, sizeof(product)) > 0)
        set_str(o, "product", product);
    if (g->db)
        set_str(o, "model", g->db->model);
    snprintf(pci, sizeof(pci), "%04x:%04x", g->vendor_id, g->device_id);
    set_str(o, "pciDevice", pci);
    if (g->memory_mib)
        json_object_set_new(o, "memoryMiB", json_integer((json_int_t)g->memory_mib));
    if (g->cc_major >= 0) {
        snprintf(cc, sizeof(cc), "%d.%d", g->cc_major, g->cc_minor);
        set_str(o, "computeCapability", cc);
    }
    if (g->db) {
        set_str(o, "family", g->db->family);
        json_object_set_new(o, "rtCores", json_boolean(g->db->rt_cores));
        set_str(o, "class", g->db->gpu_class);
    }
    json_object_set_new(o, "numaNode", json_integer(g->numa_node));
    json_object_set_new(o, "island", json_integer(g->island));
    if (g->nlinks)
        json_object_set_new(o, "nvlink", links_json(g));
    json_object_set_new(o, "healthy", json_boolean(g->healthy));
    return o;
}

json_t *corral_node_gpus_json(const struct corral_topology *topo)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < topo->ngpus; i++) {
        json_t *g = gpu_json(&topo->gpus[i]);
        if (!g || json_array_append_new(arr, g) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

/* ---- resources ------------------------------------------------------------------------- */

static void set_quantity(json_t *obj, const char *key, struct corral_quantity q)
{
    char buf[32];
    if (corral_quantity_format(&q, buf, sizeof(buf)) > 0)
        set_str(obj, key, buf);
}

static void set_count(json_t *obj, const char *key, long long v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%lld", v);
    set_str(obj, key, buf);
}

static void set_memory(json_t *obj, int64_t bytes)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%" PRId64 "Ki", bytes / 1024);
    set_str(obj, "memory", buf);
}

static size_t healthy_gpus(const struct corral_topology *topo)
{
    size_t n = 0;
    for (size_t i = 0; i < topo->ngpus; i++)
        n += topo->gpus[i].healthy;
    return n;
}

static int resources(const struct corral_topology *topo, const struct corral_node_config *cfg,
                     json_t *status, char *err, size_t errlen)
{
    int64_t cpu_milli = (int64_t)topo->pus * 1000;
    int64_t mem = (int64_t)topo->memory_bytes;
    if (cfg->reserved_cpu_milli < 0 || cfg->reserved_cpu_milli >= cpu_milli ||
        cfg->reserved_memory_bytes < 0 || cfg->reserved_memory_bytes >= mem) {
        set_err(err, errlen,
                "reservations (cpu %" PRId64 "m, memory %" PRId64
                " bytes) must be below capacity (cpu %" PRId64 "m, memory %" PRId64 " bytes)",
                cfg->reserved_cpu_milli, cfg->reserved_memory_bytes, cpu_milli, mem);
        return -EINVAL;
    }
    int pods = cfg->max_pods > 0 ? cfg->max_pods : CORRAL_NODE_DEFAULT_MAX_PODS;
    json_t *cap = json_object(), *alloc = json_object();
    set_count(cap, "cpu", topo->pus);
    set_memory(cap, mem);
    set_count(cap, "pods", pods);
    set_count(cap, "nvidia.com/gpu", (long long)topo->ngpus);
    set_count(cap, "corral.io/gpu-milli", (long long)topo->ngpus * 1000);
    set_quantity(alloc, "cpu", corral_quantity_from_milli(cpu_milli - cfg->reserved_cpu_milli));
    set_memory(alloc, mem - cfg->reserved_memory_bytes);
    set_count(alloc, "pods", pods);
    set_count(alloc, "nvidia.com/gpu", (long long)healthy_gpus(topo));
    set_count(alloc, "corral.io/gpu-milli", (long long)healthy_gpus(topo) * 1000);
    json_object_set_new(status, "capacity", cap);
    json_object_set_new(status, "allocatable", alloc);
    return 0;
}

/* ---- status.nodeInfo and addresses ------------------------------------------------------- */

static void read_first_line(const char *path, char *out, size_t len)
{
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    if (fgets(out, (int)len, f))
        out[strcspn(out, "\n")] = '\0';
    fclose(f);
}

static void os_image(char *out, size_t len)
{
    char line[256];
    snprintf(out, len, "Linux");
    FILE *f = fopen("/etc/os-release", "r");
    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "PRETTY_NAME=", 12) != 0)
            continue;
        char *v = line + 12;
        v[strcspn(v, "\n")] = '\0';
        size_t n = strlen(v);
        if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
            v[n - 1] = '\0';
            v++;
        }
        snprintf(out, len, "%s", v);
    }
    fclose(f);
}

static json_t *node_info(const struct corral_topology *topo)
{
    char machine_id[64], boot_id[64], image[256];
    struct utsname u;
    if (uname(&u) != 0)
        memset(&u, 0, sizeof(u));
    read_first_line("/etc/machine-id", machine_id, sizeof(machine_id));
    read_first_line("/proc/sys/kernel/random/boot_id", boot_id, sizeof(boot_id));
    os_image(image, sizeof(image));
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "architecture",
                     corral_node_goarch(topo->arch), "operatingSystem", "linux", "kernelVersion",
                     u.release, "osImage", image, "kubeletVersion", CORRAL_KUBELET_VERSION,
                     "kubeProxyVersion", "", "containerRuntimeVersion",
                     "corral-process://" CORRAL_VERSION, "machineID", machine_id, "systemUUID",
                     machine_id, "bootID", boot_id);
}

static json_t *addresses(const struct corral_node_config *cfg, const char *name)
{
    json_t *arr = json_array();
    if (cfg->address)
        json_array_append_new(
            arr, json_pack("{s:s, s:s}", "type", "InternalIP", "address", cfg->address));
    json_array_append_new(arr, json_pack("{s:s, s:s}", "type", "Hostname", "address", name));
    return arr;
}

/* ---- the Node -------------------------------------------------------------------------- */

static int resolve_name(const struct corral_topology *topo, const struct corral_node_config *cfg,
                        char *name, size_t len, char *err, size_t errlen)
{
    if (cfg->name) {
        const char *why = corral_meta_check_dns_subdomain(cfg->name);
        if (why) {
            set_err(err, errlen, "node name \"%s\": %s", cfg->name, why);
            return -EINVAL;
        }
        snprintf(name, len, "%s", cfg->name);
        return 0;
    }
    char host[256] = "";
    if (topo->hostname[0])
        snprintf(host, sizeof(host), "%s", topo->hostname);
    else if (!topo->from_xml)
        gethostname(host, sizeof(host) - 1);
    if (corral_node_name_from_host(host, name, len) < 0) {
        set_err(err, errlen, "no usable host name in %s: give the node a name with --name",
                topo->source);
        return -EINVAL;
    }
    return 0;
}

static json_t *metadata(const struct corral_topology *topo, const char *name, json_t *labels)
{
    json_t *gpus = corral_node_gpus_json(topo);
    char *gpus_text = gpus ? json_dumps(gpus, JSON_COMPACT) : NULL;
    json_decref(gpus);
    if (!gpus_text)
        return NULL;
    char source[600];
    snprintf(source, sizeof(source), "%s%s", topo->from_xml ? "hwloc-xml:" : "",
             topo->from_xml ? topo->source : "live");
    json_t *annotations =
        json_pack("{s:s, s:s}", "corral.io/gpus", gpus_text, "corral.io/topology-source", source);
    free(gpus_text);
    return json_pack("{s:s, s:O, s:o}", "name", name, "labels", labels, "annotations", annotations);
}

json_t *corral_node_build(const struct corral_topology *topo, const struct corral_node_config *cfg,
                          char *err, size_t errlen)
{
    char name[254];
    if (resolve_name(topo, cfg, name, sizeof(name), err, errlen) < 0)
        return NULL;
    json_t *labels = json_object(), *status = json_object(), *node = NULL;
    if (!labels || !status)
        goto out;
    if (node_labels(topo, cfg, name, labels, err, errlen) < 0 ||
        resources(topo, cfg, status, err, errlen) < 0)
        goto out;
    json_object_set_new(status, "nodeInfo", node_info(topo));
    json_object_set_new(status, "addresses", addresses(cfg, name));
    json_object_set_new(status, "daemonEndpoints",
                        json_pack("{s:{s:i}}", "kubeletEndpoint", "Port", cfg->port));
    json_t *spec = json_object();
    if (json_array_size(cfg->taints) > 0)
        json_object_set(spec, "taints", cfg->taints);
    node = json_pack("{s:s, s:s, s:o, s:o, s:O}", "apiVersion", "v1", "kind", "Node", "metadata",
                     metadata(topo, name, labels), "spec", spec, "status", status);
    if (!node)
        set_err(err, errlen, "out of memory building the Node");
out:
    json_decref(labels);
    json_decref(status);
    return node;
}

/* ---- taints and labels from the command line ------------------------------------------- */

int corral_node_parse_taint(const char *spec, json_t **taint, char *err, size_t errlen)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", spec);
    char *effect = strrchr(buf, ':');
    if (!effect) {
        set_err(err, errlen, "taint \"%s\": expected key[=value]:Effect", spec);
        return -EINVAL;
    }
    *effect++ = '\0';
    if (strcmp(effect, "NoSchedule") != 0 && strcmp(effect, "PreferNoSchedule") != 0 &&
        strcmp(effect, "NoExecute") != 0) {
        set_err(err, errlen,
                "taint \"%s\": effect must be NoSchedule, PreferNoSchedule or "
                "NoExecute",
                spec);
        return -EINVAL;
    }
    char *value = strchr(buf, '=');
    if (value)
        *value++ = '\0';
    const char *why = corral_meta_check_label_key(buf);
    if (!why && value)
        why = corral_meta_check_label_value(value);
    if (why) {
        set_err(err, errlen, "taint \"%s\": %s", spec, why);
        return -EINVAL;
    }
    *taint = json_pack("{s:s, s:s}", "key", buf, "effect", effect);
    if (*taint && value && *value)
        set_str(*taint, "value", value);
    return *taint ? 0 : -ENOMEM;
}

int corral_node_parse_label(const char *spec, json_t *labels, char *err, size_t errlen)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", spec);
    char *value = strchr(buf, '=');
    if (!value) {
        set_err(err, errlen, "label \"%s\": expected key=value", spec);
        return -EINVAL;
    }
    *value++ = '\0';
    const char *why = corral_meta_check_label_key(buf);
    if (!why)
        why = corral_meta_check_label_value(value);
    if (why) {
        set_err(err, errlen, "label \"%s\": %s", spec, why);
        return -EINVAL;
    }
    set_str(labels, buf, value);
    return 0;
}
