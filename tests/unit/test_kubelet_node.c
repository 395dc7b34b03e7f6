/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the GPU model table, the Node object (docs/gpus.md) and `corral kubelet`
 * option parsing.
 */
#include "corral-config.h"
#include "gpudb.h"
#include "harness.h"
#include "kubelet.h"
#include "node.h"
#include "topology.h"

#include <errno.h>
#include <unistd.h>

#define TOPO(file) CORRAL_SHARED_DIR "/hwloc-topologies/" file

/* ---- gpudb ----------------------------------------------------------------------------- */

static void test_gpudb_sorted_and_valid(void)
{
    static const char *const families[] = {"fermi",  "kepler",       "pascal", "volta",    "turing",
                                           "ampere", "ada-lovelace", "hopper", "blackwell"};
    CHECK(corral_gpudb_count() > 50);
    for (size_t i = 0; i < corral_gpudb_count(); i++) {
        const struct corral_gpudb_entry *e = corral_gpudb_at(i);
        if (i > 0)
            CHECK(corral_gpudb_at(i - 1)->device_id < e->device_id);
        CHECK(corral_gpudb_lookup(e->device_id) == e);
        CHECK(corral_gpudb_valid_class(e->gpu_class));
        CHECK(e->memory_mib > 1000);
        CHECK(e->cc_major >= 2);
        bool family_ok = false;
        for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++)
            family_ok |= strcmp(e->family, families[f]) == 0;
        CHECK(family_ok);
        /* RT cores: Turing and later graphics dies; never the compute-only dies */
        bool graphics_gen = strcmp(e->family, "turing") == 0 || strcmp(e->family, "ampere") == 0 ||
                            strcmp(e->family, "ada-lovelace") == 0 ||
                            strcmp(e->family, "blackwell") == 0;
        bool compute_die = e->cc_major == 8 && e->cc_minor == 0;
        compute_die |= strcmp(e->family, "hopper") == 0 || e->cc_major == 10;
        CHECK_INT_EQ(e->rt_cores, graphics_gen && !compute_die);
        char label[64];
        CHECK(corral_gpudb_product_label(e->product, label, sizeof(label)) > 0);
    }
    CHECK(corral_gpudb_lookup(0x0001) == NULL);
    CHECK(corral_gpudb_at(corral_gpudb_count()) == NULL);
}

static void test_gpudb_required_models(void)
{
    static const struct {
        uint16_t id;
        const char *model, *family, *cls;
        bool rt;
    } want[] = {
        {0x2330, "H100-SXM5-80GB", "hopper", "datacenter-training", false},
        {0x2331, "H100-PCIE-80GB", "hopper", "datacenter-training", false},
        {0x2321, "H100-NVL-94GB", "hopper", "datacenter-training", false},
        {0x2335, "H200-SXM-141GB", "hopper", "datacenter-training", false},
        {0x20b0, "A100-SXM4-40GB", "ampere", "datacenter-training", false},
        {0x20b2, "A100-SXM4-80GB", "ampere", "datacenter-training", false},
        {0x20b5, "A100-PCIE-80GB", "ampere", "datacenter-training", false},
        {0x20f1, "A100-PCIE-40GB", "ampere", "datacenter-training", false},
        {0x2236, "A10", "ampere", "datacenter-inference", true},
        {0x20b7, "A30", "ampere", "datacenter-inference", false},
        {0x2235, "A40", "ampere", "datacenter-inference", true},
        {0x27b8, "L4", "ada-lovelace", "datacenter-inference", true},
        {0x26b5, "L40", "ada-lovelace", "datacenter-inference", true},
        {0x26b9, "L40S", "ada-lovelace", "datacenter-inference", true},
        {0x1eb8, "T4", "turing", "datacenter-inference", true},
        {0x1db1, "V100-SXM2-16GB", "volta", "datacenter-training", false},
        {0x1db4, "V100-PCIE-16GB", "volta", "datacenter-training", false},
        {0x1db8, "V100-SXM3-32GB", "volta", "datacenter-training", false},
        {0x15f8, "P100-PCIE-16GB", "pascal", "datacenter-training", false},
        {0x15f9, "P100-SXM2-16GB", "pascal", "datacenter-training", false},
        {0x1023, "K40m", "kepler", "datacenter-training", false},
        {0x102d, "K80", "kepler", "datacenter-training", false},
        {0x1e82, "RTX-2080", "turing", "consumer", true},
        {0x2484, "RTX-3070", "ampere", "consumer", true},
        {0x2206, "RTX-3080", "ampere", "consumer", true},
        {0x2204, "RTX-3090", "ampere", "consumer", true},
        {0x2786, "RTX-4070", "ada-lovelace", "consumer", true},
        {0x2704, "RTX-4080", "ada-lovelace", "consumer", true},
        {0x2684, "RTX-4090", "ada-lovelace", "consumer", true},
        {0x2b85, "RTX-5090", "blackwell", "consumer", true},
        {0x24b0, "RTX-A4000", "ampere", "workstation", true},
        {0x2231, "RTX-A5000", "ampere", "workstation", true},
        {0x2230, "RTX-A6000", "ampere", "workstation", true},
        {0x1b81, "GTX-1070", "pascal", "consumer", false},
        {0x1b80, "GTX-1080", "pascal", "consumer", false},
        {0x1094, "M2075", "fermi", "datacenter-training", false},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const struct corral_gpudb_entry *e = corral_gpudb_lookup(want[i].id);
        CHECK(e != NULL);
        CHECK_STR_EQ(e->model, want[i].model);
        CHECK_STR_EQ(e->family, want[i].family);
        CHECK_STR_EQ(e->gpu_class, want[i].cls);
        CHECK_INT_EQ(e->rt_cores, want[i].rt);
    }
    CHECK_INT_EQ(corral_gpudb_lookup(0x2330)->cc_major, 9);
    CHECK_INT_EQ(corral_gpudb_lookup(0x2684)->cc_minor, 9);
    CHECK_INT_EQ(corral_gpudb_lookup(0x2b85)->cc_major, 12);
}

static void test_gpudb_names(void)
{
    CHECK(corral_gpudb_lookup_name("Tesla T4") == corral_gpudb_lookup(0x1eb8));
    CHECK(corral_gpudb_lookup_name("GeForce GTX 1070") == corral_gpudb_lookup(0x1b81));
    CHECK(corral_gpudb_lookup_name("nvidia geforce rtx 3070") == corral_gpudb_lookup(0x2484));
    CHECK(corral_gpudb_lookup_name("NVIDIA H100 80GB HBM3") == corral_gpudb_lookup(0x2330));
    CHECK(corral_gpudb_lookup_name("Radeon Vega") == NULL);
    CHECK(corral_gpudb_lookup_name("") == NULL);
    CHECK(corral_gpudb_lookup_name(NULL) == NULL);

    char out[64];
    CHECK_INT_EQ(corral_gpudb_product_label("NVIDIA H100 80GB HBM3", out, sizeof(out)), 21);
    CHECK_STR_EQ(out, "NVIDIA-H100-80GB-HBM3");
    corral_gpudb_product_label("  Tesla V100-SXM2-16GB ", out, sizeof(out));
    CHECK_STR_EQ(out, "Tesla-V100-SXM2-16GB");
    corral_gpudb_product_label("GH100 [H200 SXM 141GB]", out, sizeof(out));
    CHECK_STR_EQ(out, "GH100-H200-SXM-141GB");
    corral_gpudb_product_label("-._(x)", out, sizeof(out));
    CHECK_STR_EQ(out, "x");
    CHECK_INT_EQ(corral_gpudb_product_label("[]", out, sizeof(out)), 0);
    char small[8];
    corral_gpudb_product_label("NVIDIA GeForce", small, sizeof(small));
    CHECK_STR_EQ(small, "NVIDIA"); /* cut, and no trailing dash */
    char longname[200];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    CHECK_INT_EQ(corral_gpudb_product_label(longname, out, sizeof(out)), 63);
}

/* ---- the Node -------------------------------------------------------------------------- */

static json_t *build(const char *file, const struct corral_node_config *cfg)
{
    struct corral_topology *t = NULL;
    char err[512] = "";
    CHECK_INT_EQ(corral_topology_load(file, &t, err, sizeof(err)), 0);
    json_t *node = corral_node_build(t, cfg, err, sizeof(err));
    if (!node)
        fprintf(stderr, "build: %s\n", err);
    CHECK(node != NULL);
    corral_topology_free(t);
    return node;
}

static const char *label(json_t *node, const char *key)
{
    return json_string_value(
        json_object_get(json_object_get(json_object_get(node, "metadata"), "labels"), key));
}

static const char *resource(json_t *node, const char *which, const char *key)
{
    return json_string_value(
        json_object_get(json_object_get(json_object_get(node, "status"), which), key));
}

static json_t *gpus_annotation(json_t *node)
{
    const char *text = json_string_value(json_object_get(
        json_object_get(json_object_get(node, "metadata"), "annotations"), "corral.io/gpus"));
    CHECK(text != NULL);
    json_error_t e;
    json_t *arr = json_loads(text, 0, &e);
    CHECK(json_is_array(arr));
    return arr;
}

static void test_node_h100(void)
{
    json_t *taints = json_array(), *labels = json_object(), *taint;
    char err[256];
    CHECK_INT_EQ(corral_node_parse_taint("gpu=h100:NoSchedule", &taint, err, sizeof(err)), 0);
    json_array_append_new(taints, taint);
    CHECK_INT_EQ(corral_node_parse_label("team=ml", labels, err, sizeof(err)), 0);
    struct corral_node_config cfg = {.name = "gpu-node-1",
                                     .provider = "acme-studio",
                                     .zone = "eu-west-1a",
                                     .region = "eu-west-1",
                                     .address = "127.0.0.5",
                                     .port = 10250,
                                     .labels = labels,
                                     .taints = taints,
                                     .reserved_cpu_milli = 500,
                                     .reserved_memory_bytes = 1 << 30};
    json_t *node =
        build(TOPO("dell-xe8640_2xXeon8480_4xH100-SXM5_nvlink_cuda-nvml-opencl.xml"), &cfg);
    CHECK_STR_EQ(json_string_value(json_object_get(node, "kind")), "Node");
    CHECK_STR_EQ(label(node, "nvidia.com/gpu.product"), "NVIDIA-H100-80GB-HBM3");
    CHECK_STR_EQ(label(node, "nvidia.com/gpu.memory"), "81081");
    CHECK_STR_EQ(label(node, "nvidia.com/gpu.count"), "4");
    CHECK_STR_EQ(label(node, "nvidia.com/gpu.family"), "hopper");
    CHECK_STR_EQ(label(node, "nvidia.com/gpu.compute.major"), "9");
    CHECK_STR_EQ(label(node, "nvidia.com/gpu.compute.minor"), "0");
    CHECK_STR_EQ(label(node, "corral.io/gpu.model"), "H100-SXM5-80GB");
    CHECK_STR_EQ(label(node, "corral.io/gpu.rt-cores"), "false");
    CHECK_STR_EQ(label(node, "corral.io/gpu.class"), "datacenter-training");
    CHECK_STR_EQ(label(node, "corral.io/gpu.nvlink"), "true");
    CHECK_STR_EQ(label(node, "corral.io/provider"), "acme-studio");
    CHECK_STR_EQ(label(node, "topology.kubernetes.io/zone"), "eu-west-1a");
    CHECK_STR_EQ(label(node, "topology.kubernetes.io/region"), "eu-west-1");
    CHECK_STR_EQ(label(node, "kubernetes.io/hostname"), "gpu-node-1");
    CHECK_STR_EQ(label(node, "kubernetes.io/os"), "linux");
    CHECK_STR_EQ(label(node, "kubernetes.io/arch"), "amd64");
    CHECK_STR_EQ(label(node, "team"), "ml");
    CHECK_STR_EQ(resource(node, "capacity", "cpu"), "224");
    CHECK_STR_EQ(resource(node, "allocatable", "cpu"), "223500m");
    CHECK_STR_EQ(resource(node, "capacity", "nvidia.com/gpu"), "4");
    CHECK_STR_EQ(resource(node, "capacity", "corral.io/gpu-milli"), "4000");
    CHECK_STR_EQ(resource(node, "allocatable", "nvidia.com/gpu"), "4");
    CHECK_STR_EQ(resource(node, "capacity", "pods"), "110");
    const char *mem = resource(node, "capacity", "memory");
    CHECK(mem && strlen(mem) > 2 && strcmp(mem + strlen(mem) - 2, "Ki") == 0);
    long long cap_ki = atoll(mem), alloc_ki = atoll(resource(node, "allocatable", "memory"));
    CHECK_INT_EQ(cap_ki - alloc_ki, 1024 * 1024);
    json_t *t0 = json_array_get(json_object_get(json_object_get(node, "spec"), "taints"), 0);
    CHECK_STR_EQ(json_string_value(json_object_get(t0, "key")), "gpu");
    CHECK_STR_EQ(json_string_value(json_object_get(t0, "value")), "h100");
    CHECK_STR_EQ(json_string_value(json_object_get(t0, "effect")), "NoSchedule");
    json_t *addr = json_array_get(json_object_get(json_object_get(node, "status"), "addresses"), 0);
    CHECK_STR_EQ(json_string_value(json_object_get(addr, "type")), "InternalIP");
    CHECK_STR_EQ(json_string_value(json_object_get(addr, "address")), "127.0.0.5");

    json_t *gpus = gpus_annotation(node);
    CHECK_INT_EQ(json_array_size(gpus), 4);
    json_t *g0 = json_array_get(gpus, 0);
    CHECK_INT_EQ(json_integer_value(json_object_get(g0, "index")), 0);
    CHECK(json_object_get(g0, "uuid") == NULL); /* zeroed in the export: not published */
    CHECK_STR_EQ(json_string_value(json_object_get(g0, "busId")), "0000:4e:00.0");
    CHECK_STR_EQ(json_string_value(json_object_get(g0, "product")), "NVIDIA-H100-80GB-HBM3");
    CHECK_STR_EQ(json_string_value(json_object_get(g0, "model")), "H100-SXM5-80GB");
    CHECK_STR_EQ(json_string_value(json_object_get(g0, "pciDevice")), "10de:2330");
    CHECK_INT_EQ(json_integer_value(json_object_get(g0, "memoryMiB")), 81081);
    CHECK_STR_EQ(json_string_value(json_object_get(g0, "computeCapability")), "9.0");
    CHECK_STR_EQ(json_string_value(json_object_get(g0, "family")), "hopper");
    CHECK(json_is_false(json_object_get(g0, "rtCores")));
    CHECK_STR_EQ(json_string_value(json_object_get(g0, "class")), "datacenter-training");
    CHECK_INT_EQ(json_integer_value(json_object_get(g0, "numaNode")), 3);
    CHECK_INT_EQ(json_integer_value(json_object_get(g0, "island")), 0);
    CHECK(json_is_true(json_object_get(g0, "healthy")));
    json_t *links = json_object_get(g0, "nvlink");
    CHECK_INT_EQ(json_array_size(links), 3);
    CHECK_INT_EQ(json_integer_value(json_object_get(json_array_get(links, 0), "peer")), 1);
    CHECK_INT_EQ(json_integer_value(json_object_get(json_array_get(links, 0), "bandwidthMBps")),
                 150000);
    json_decref(gpus);
    json_decref(node);
    json_decref(taints);
    json_decref(labels);
}

static void test_node_t4_and_consumer(void)
{
    struct corral_node_config cfg = {.name = "t4-node"};
    json_t *node = build(TOPO("aws-g4dn-metal_2xXeon8259CL_8xT4_cuda-nvml-opencl.xml"), &cfg);
    CHECK_STR_EQ(label(node, "nvidia.com/gpu.product"), "Tesla-T4");
    CHECK_STR_EQ(label(node, "corral.io/gpu.rt-cores"), "true");
    CHECK_STR_EQ(label(node, "corral.io/gpu.class"), "datacenter-inference");
    CHECK_STR_EQ(label(node, "corral.io/gpu.nvlink"), "unknown");
    CHECK_STR_EQ(label(node, "nvidia.com/gpu.count"), "8");
    CHECK(label(node, "corral.io/provider") == NULL);
    CHECK(json_object_get(json_object_get(node, "spec"), "taints") == NULL);
    json_t *gpus = gpus_annotation(node);
    json_t *g7 = json_array_get(gpus, 7);
    CHECK_STR_EQ(json_string_value(json_object_get(g7, "uuid")),
                 "GPU-688323de-3533-d2ca-844c-af1c0f723c87");
    CHECK_INT_EQ(json_integer_value(json_object_get(g7, "island")), -1);
    CHECK(json_object_get(g7, "nvlink") == NULL);
    json_decref(gpus);
    json_decref(node);

    node = build(TOPO("desktop_i5-13600KF_RTX3070_opencl.xml"), &cfg);
    CHECK_STR_EQ(label(node, "nvidia.com/gpu.product"), "NVIDIA-GeForce-RTX-3070");
    CHECK_STR_EQ(label(node, "nvidia.com/gpu.family"), "ampere");
    CHECK_STR_EQ(label(node, "corral.io/gpu.model"), "RTX-3070");
    CHECK_STR_EQ(label(node, "corral.io/gpu.rt-cores"), "true");
    CHECK_STR_EQ(label(node, "corral.io/gpu.class"), "consumer");
    CHECK_STR_EQ(label(node, "nvidia.com/gpu.compute.minor"), "6");
    json_decref(node);
}

static void test_node_without_gpus(void)
{
    struct corral_node_config cfg = {0};
    json_t *node = build(TOPO("AMD-negative_hpe-ex255a_4xMI300A-APU_rsmi.xml"), &cfg);
    /* named after the export's host name */
    CHECK_STR_EQ(json_string_value(json_object_get(json_object_get(node, "metadata"), "name")),
                 "testhost-amd");
    CHECK(label(node, "nvidia.com/gpu.product") == NULL);
    CHECK(label(node, "nvidia.com/gpu.count") == NULL);
    CHECK(label(node, "corral.io/gpu.nvlink") == NULL);
    CHECK_STR_EQ(resource(node, "capacity", "nvidia.com/gpu"), "0");
    CHECK_STR_EQ(resource(node, "capacity", "corral.io/gpu-milli"), "0");
    CHECK_STR_EQ(resource(node, "capacity", "cpu"), "192");
    json_t *gpus = gpus_annotation(node);
    CHECK_INT_EQ(json_array_size(gpus), 0);
    json_decref(gpus);
    json_decref(node);
}

static void test_node_pci_only_and_power(void)
{
    struct corral_node_config cfg = {.name = "n"};
    json_t *node = build(TOPO("lenovo-sd665n-v3_2xEPYC9555_4xH200_pci-only.xml"), &cfg);
    CHECK_STR_EQ(label(node, "corral.io/gpu.nvlink"), "unknown");
    CHECK_STR_EQ(label(node, "nvidia.com/gpu.product"), "NVIDIA-H200");
    CHECK_STR_EQ(label(node, "nvidia.com/gpu.memory"), "143771");
    json_decref(node);
    node = build(TOPO("ibm-power8_2xP8_4xP100-SXM2_nvlink_cuda-nvml-opencl.xml"), &cfg);
    CHECK_STR_EQ(label(node, "kubernetes.io/arch"), "ppc64le");
    CHECK_STR_EQ(label(node, "corral.io/gpu.nvlink"), "true");
    json_t *gpus = gpus_annotation(node);
    CHECK_INT_EQ(json_integer_value(json_object_get(json_array_get(gpus, 3), "island")), 1);
    json_decref(gpus);
    json_decref(node);
}

static void test_node_bad_config(void)
{
    struct corral_topology *t = NULL;
    char err[512] = "";
    CHECK_INT_EQ(
        corral_topology_load(TOPO("desktop_i5-13600KF_RTX3070_opencl.xml"), &t, err, sizeof(err)),
        0);
    struct corral_node_config cfg = {.name = "Bad_Name"};
    CHECK(corral_node_build(t, &cfg, err, sizeof(err)) == NULL);
    CHECK_STR_CONTAINS(err, "Bad_Name");
    cfg.name = "ok";
    cfg.reserved_cpu_milli = 20000; /* the desktop has 20 PUs */
    CHECK(corral_node_build(t, &cfg, err, sizeof(err)) == NULL);
    CHECK_STR_CONTAINS(err, "below capacity");
    cfg.reserved_cpu_milli = 0;
    json_t *labels = json_pack("{s:s}", "bad key!", "v");
    cfg.labels = labels;
    CHECK(corral_node_build(t, &cfg, err, sizeof(err)) == NULL);
    CHECK_STR_CONTAINS(err, "bad key!");
    json_decref(labels);
    corral_topology_free(t);
}

static void test_taints_and_labels(void)
{
    json_t *t = NULL;
    char err[256];
    CHECK_INT_EQ(corral_node_parse_taint("dedicated:NoExecute", &t, err, sizeof(err)), 0);
    CHECK_STR_EQ(json_string_value(json_object_get(t, "key")), "dedicated");
    CHECK(json_object_get(t, "value") == NULL);
    json_decref(t);
    CHECK_INT_EQ(corral_node_parse_taint("a=b", &t, err, sizeof(err)), -EINVAL);
    CHECK_STR_CONTAINS(err, "key[=value]:Effect");
    CHECK_INT_EQ(corral_node_parse_taint("a=b:Sometimes", &t, err, sizeof(err)), -EINVAL);
    CHECK_STR_CONTAINS(err, "NoSchedule");
    CHECK_INT_EQ(corral_node_parse_taint("bad key=b:NoSchedule", &t, err, sizeof(err)), -EINVAL);
    json_t *labels = json_object();
    CHECK_INT_EQ(corral_node_parse_label("corral.io/provider=x", labels, err, sizeof(err)), 0);
    CHECK_INT_EQ(corral_node_parse_label("novalue", labels, err, sizeof(err)), -EINVAL);
    CHECK_INT_EQ(corral_node_parse_label("k=bad value", labels, err, sizeof(err)), -EINVAL);
    CHECK_INT_EQ(json_object_size(labels), 1);
    json_decref(labels);

    char name[64];
    CHECK_INT_EQ(corral_node_name_from_host("Drac-12.Grenoble.grid5000.fr", name, sizeof(name)), 0);
    CHECK_STR_EQ(name, "drac-12.grenoble.grid5000.fr");
    CHECK_INT_EQ(corral_node_name_from_host("_GPU box_", name, sizeof(name)), 0);
    CHECK_STR_EQ(name, "gpu-box");
    CHECK_INT_EQ(corral_node_name_from_host("", name, sizeof(name)), -EINVAL);
    CHECK_STR_EQ(corral_node_goarch("x86_64"), "amd64");
    CHECK_STR_EQ(corral_node_goarch("aarch64"), "arm64");
    CHECK_STR_EQ(corral_node_goarch("ppc64le"), "ppc64le");
}

/* ---- options ----------------------------------------------------------------------------- */

static void test_durations(void)
{
    int64_t ms;
    CHECK_INT_EQ(corral_kubelet_parse_duration("500ms", &ms), 0);
    CHECK_INT_EQ(ms, 500);
    CHECK_INT_EQ(corral_kubelet_parse_duration("10s", &ms), 0);
    CHECK_INT_EQ(ms, 10000);
    CHECK_INT_EQ(corral_kubelet_parse_duration("1m30s", &ms), 0);
    CHECK_INT_EQ(ms, 90000);
    CHECK_INT_EQ(corral_kubelet_parse_duration("1.5s", &ms), 0);
    CHECK_INT_EQ(ms, 1500);
    CHECK_INT_EQ(corral_kubelet_parse_duration("2h", &ms), 0);
    CHECK_INT_EQ(ms, 7200000);
    CHECK_INT_EQ(corral_kubelet_parse_duration("3", &ms), 0);
    CHECK_INT_EQ(ms, 3000);
    CHECK_INT_EQ(corral_kubelet_parse_duration("", &ms), -EINVAL);
    CHECK_INT_EQ(corral_kubelet_parse_duration("5x", &ms), -EINVAL);
    CHECK_INT_EQ(corral_kubelet_parse_duration("1m30", &ms), -EINVAL);
    CHECK_INT_EQ(corral_kubelet_parse_duration("-1s", &ms), -EINVAL);
    CHECK_INT_EQ(corral_kubelet_parse_duration("s", &ms), -EINVAL);
}

static void test_options(void)
{
    struct corral_kubelet_options o;
    char *argv1[] = {"kubelet",
                     "--topology",
                     "t.xml",
                     "--print-node",
                     "--label",
                     "a=b",
                     "--taint",
                     "k=v:NoSchedule",
                     "--reserve-cpu",
                     "250m",
                     "--reserve-memory",
                     "1Gi",
                     "--heartbeat-interval",
                     "1s",
                     "--max-pods",
                     "50",
                     NULL};
    CHECK_INT_EQ(corral_kubelet_parse_args(16, argv1, &o), 0);
    CHECK_STR_EQ(o.topology, "t.xml");
    CHECK(o.print_node);
    CHECK_INT_EQ(json_object_size(o.node.labels), 1);
    CHECK_INT_EQ(json_array_size(o.node.taints), 1);
    CHECK_INT_EQ(o.node.reserved_cpu_milli, 250);
    CHECK_INT_EQ(o.node.reserved_memory_bytes, 1 << 30);
    CHECK_INT_EQ(o.heartbeat_ms, 1000);
    CHECK_INT_EQ(o.node.max_pods, 50);
    CHECK_INT_EQ(o.lease_duration_ms, 40000);
    CHECK_INT_EQ(o.backoff_initial_ms, 10000);
    CHECK_INT_EQ(o.backoff_max_ms, 300000);
    corral_kubelet_options_free(&o);

    char *argv2[] = {"kubelet", "--name", "n1", NULL};
    CHECK_INT_EQ(corral_kubelet_parse_args(3, argv2, &o), -EINVAL); /* no --apiserver */
    corral_kubelet_options_free(&o);
    char *argv3[] = {"kubelet", "--print-node", "--max-pods", "lots", NULL};
    CHECK_INT_EQ(corral_kubelet_parse_args(4, argv3, &o), -EINVAL);
    corral_kubelet_options_free(&o);
    char *argv4[] = {"kubelet", "--print-node", "--bogus", NULL};
    CHECK_INT_EQ(corral_kubelet_parse_args(3, argv4, &o), -EINVAL);
    corral_kubelet_options_free(&o);
    char *argv5[] = {"kubelet",     "--apiserver", "https://127.0.0.1:6443", "--kubeconfig", "k",
                     "--state-dir", "/tmp/x",      "--heartbeat-interval",   "1m",           NULL};
    CHECK_INT_EQ(corral_kubelet_parse_args(9, argv5, &o), -EINVAL); /* heartbeat > lease */
    corral_kubelet_options_free(&o);
}

static char *config_file(const char *text)
{
    char *path = strdup("/tmp/corral-kubelet-config-XXXXXX");
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_config_file(void)
{
    char *path = config_file("# a provider's machine\n"
                             "name: gpu-node-9\n"
                             "stateDir: /var/lib/corral/node\n"
                             "apiserver: https://10.0.0.1:6443\n"
                             "kubeconfig: /etc/corral/bootstrap.kubeconfig\n"
                             "provider: acme-studio\n"
                             "zone: eu-west-1a\n"
                             "labels: {team: render, tier: gold}\n"
                             "taints:\n"
                             "- {key: gpu, value: consumer, effect: NoSchedule}\n"
                             "- 'maintenance:PreferNoSchedule'\n"
                             "maxPods: 30\n"
                             "heartbeatInterval: 2s\n"
                             "reserveMemory: 2Gi\n"
                             "logMaxFiles: 3\n"
                             "cgroups: false\n");
    char arg[300];
    snprintf(arg, sizeof(arg), "--config=%s", path);
    char *argv[] = {"kubelet", arg, "--max-pods", "40", NULL};
    struct corral_kubelet_options o;
    CHECK_INT_EQ(corral_kubelet_parse_args(4, argv, &o), 0);
    CHECK_STR_EQ(o.node.name, "gpu-node-9");
    CHECK_STR_EQ(o.state_dir, "/var/lib/corral/node");
    CHECK_STR_EQ(o.node.provider, "acme-studio");
    CHECK_INT_EQ(o.node.max_pods, 40); /* the command line wins */
    CHECK_INT_EQ(o.heartbeat_ms, 2000);
    CHECK_INT_EQ(o.node.reserved_memory_bytes, 2LL << 30);
    CHECK_INT_EQ(o.log_max_files, 3);
    CHECK(!o.cgroups);
    CHECK_STR_EQ(json_string_value(json_object_get(o.node.labels, "tier")), "gold");
    CHECK_INT_EQ(json_array_size(o.node.taints), 2);
    json_t *t0 = json_array_get(o.node.taints, 0);
    CHECK_STR_EQ(json_string_value(json_object_get(t0, "value")), "consumer");
    CHECK_STR_EQ(json_string_value(json_object_get(json_array_get(o.node.taints, 1), "effect")),
                 "PreferNoSchedule");
    corral_kubelet_options_free(&o);
    unlink(path);
    free(path);

    static const char *const bad[] = {
        "nmae: typo\n",                          /* unknown setting */
        "zone: 12\n",                            /* must be a string */
        "maxPods: lots\n",                       /* not a number */
        "taints: [{key: gpu, effect: Never}]\n", /* bad effect */
        "labels: {'bad key': v}\n",
        "- a list\n",
        "name: [unclosed\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        path = config_file(bad[i]);
        char *argv2[] = {"kubelet", "--print-node", "--config", path, NULL};
        CHECK_INT_EQ(corral_kubelet_parse_args(4, argv2, &o), -EINVAL);
        corral_kubelet_options_free(&o);
        unlink(path);
        free(path);
    }
    char *argv3[] = {"kubelet", "--print-node", "--config", "/nonexistent.yaml", NULL};
    CHECK_INT_EQ(corral_kubelet_parse_args(4, argv3, &o), -EINVAL);
    corral_kubelet_options_free(&o);
}

CORRAL_TESTS(CORRAL_TEST(gpudb_sorted_and_valid), CORRAL_TEST(gpudb_required_models),
             CORRAL_TEST(gpudb_names), CORRAL_TEST(node_h100), CORRAL_TEST(node_t4_and_consumer),
             CORRAL_TEST(node_without_gpus), CORRAL_TEST(node_pci_only_and_power),
             CORRAL_TEST(node_bad_config), CORRAL_TEST(taints_and_labels), CORRAL_TEST(durations),
             CORRAL_TEST(options), CORRAL_TEST(config_file))
