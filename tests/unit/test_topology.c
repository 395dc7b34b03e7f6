/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Discovery tests: one per hwloc export in ../shared/hwloc-topologies, asserting GPU count,
 * model, memory, NUMA node per GPU and NVLink islands (expected values from the files' NOTES
 * and SOURCES, GPUs in PCI bus-id order), plus the loader-warning and bad-file paths.
 */
#include "corral-config.h"
#include "harness.h"
#include "topology.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define TOPO(file) CORRAL_SHARED_DIR "/hwloc-topologies/" file

struct expect {
    const char *file;
    size_t gpus;
    const char *name;  /* driver name of every GPU */
    const char *model; /* table model, NULL if none */
    uint64_t memory_mib;
    int numa[16];
    int islands; /* -1: NVLink not recorded */
    unsigned pus, nnuma;
};

static struct corral_topology *load(const char *path)
{
    struct corral_topology *t = NULL;
    char err[1024] = "";
    int rc = corral_topology_load(path, &t, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "load %s: %d %s\n", path, rc, err);
    CHECK_INT_EQ(rc, 0);
    CHECK_STR_EQ(t->source, path);
    CHECK(t->from_xml);
    return t;
}

/* Loads e->file and checks what every file must get right. Caller frees. */
static struct corral_topology *check(const struct expect *e)
{
    struct corral_topology *t = load(e->file);
    CHECK_INT_EQ(t->ngpus, e->gpus);
    CHECK_INT_EQ(t->pus, e->pus);
    CHECK_INT_EQ(t->nnuma, e->nnuma);
    for (size_t i = 0; i < t->ngpus; i++) {
        const struct corral_gpu *g = &t->gpus[i];
        CHECK_INT_EQ(g->index, i);
        CHECK_INT_EQ(g->vendor_id, 0x10de);
        CHECK_STR_EQ(g->name, e->name);
        if (e->model)
            CHECK_STR_EQ(g->db->model, e->model);
        CHECK_INT_EQ(g->memory_mib, e->memory_mib);
        CHECK_INT_EQ(g->numa_node, e->numa[i]);
        CHECK(g->healthy);
        if (e->islands < 0) {
            CHECK_INT_EQ(g->island, -1);
            CHECK_INT_EQ(g->nlinks, 0);
        }
        if (i > 0)
            CHECK(strcmp(t->gpus[i - 1].bus_id, g->bus_id) < 0);
    }
    CHECK_INT_EQ(t->nvlink_recorded, e->islands >= 0);
    CHECK_INT_EQ(corral_topology_islands(t), e->islands < 0 ? 0 : e->islands);
    return t;
}

static void check_all_linked(const struct corral_topology *t, uint64_t mbps)
{
    for (size_t i = 0; i < t->ngpus; i++) {
        CHECK_INT_EQ(t->gpus[i].island, 0);
        CHECK_INT_EQ(t->gpus[i].nlinks, t->ngpus - 1);
        for (size_t k = 0; k < t->gpus[i].nlinks; k++) {
            CHECK(t->gpus[i].links[k].peer != (int)i);
            CHECK_INT_EQ(t->gpus[i].links[k].bandwidth_mbps, mbps);
        }
    }
}

static void test_h100_xe8640(void)
{
    static const struct expect e = {
        TOPO("dell-xe8640_2xXeon8480_4xH100-SXM5_nvlink_cuda-nvml-opencl.xml"),
        4,
        "NVIDIA H100 80GB HBM3",
        "H100-SXM5-80GB",
        83026944 / 1024,
        {3, 1, 7, 5},
        1,
        224,
        8};
    struct corral_topology *t = check(&e);
    check_all_linked(t, 150000);
    CHECK_STR_EQ(t->gpus[0].bus_id, "0000:4e:00.0"); /* cuda0, though 5f:00.0 comes first */
    CHECK_STR_EQ(t->gpus[1].bus_id, "0000:5f:00.0");
    CHECK_INT_EQ(t->gpus[0].device_id, 0x2330);
    CHECK_INT_EQ(t->gpus[0].cc_major, 9);
    CHECK_INT_EQ(t->gpus[0].cc_minor, 0);
    CHECK_STR_EQ(t->gpus[0].uuid, ""); /* the export zeroed the UUIDs */
    CHECK(t->gpus[0].sources & CORRAL_GPU_SRC_NVML);
    CHECK(t->gpus[0].sources & CORRAL_GPU_SRC_CUDA);
    CHECK_STR_EQ(t->hostname, "testhost-nvidia");
    CHECK_STR_EQ(t->arch, "x86_64");
    CHECK_INT_EQ(t->packages, 2);
    CHECK_INT_EQ(t->cores, 112);
    corral_topology_free(t);
}

static void test_h200_nvml(void)
{
    static const struct expect e = {
        TOPO("lenovo-sd665n-v3_2xEPYC9555_4xH200_nvlink_cuda-nvml-opencl.xml"),
        4,
        "NVIDIA H200",
        "H200-SXM-141GB",
        146593728 / 1024,
        {1, 2, 6, 7},
        1,
        256,
        8};
    struct corral_topology *t = check(&e);
    check_all_linked(t, 150000);
    CHECK_STR_EQ(t->gpus[0].uuid, "GPU-46f77619-68bf-8f9d-7cfb-61fa9c4ca692");
    CHECK(corral_topology_gpu_by_uuid(t, "GPU-81addb77-2337-6f9f-b0dd-696aa82969d1") ==
          &t->gpus[3]);
    CHECK(corral_topology_gpu_by_uuid(t, "GPU-nope") == NULL);
    corral_topology_free(t);
}

static void test_h200_pci_only(void)
{
    static const struct expect e = {TOPO("lenovo-sd665n-v3_2xEPYC9555_4xH200_pci-only.xml"),
                                    4,
                                    "NVIDIA H200",
                                    "H200-SXM-141GB",
                                    143771,
                                    {1, 2, 6, 7},
                                    -1,
                                    256,
                                    8};
    struct corral_topology *t = check(&e);
    CHECK_INT_EQ(t->gpus[0].sources, CORRAL_GPU_SRC_PCI);
    CHECK_STR_EQ(t->gpus[0].uuid, "");
    corral_topology_free(t);
}

static void test_dgx2_nvswitch(void)
{
    static const struct expect e = {TOPO("nvidia-dgx2h_2xXeon_16xV100-SXM3_12xNVSwitch_nvml.xml"),
                                    16,
                                    "Tesla V100-SXM3-32GB-H",
                                    "V100-SXM3-32GB",
                                    32510, /* NVML-only export: no memory size, so the table's */
                                    {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1},
                                    1,
                                    4,
                                    2};
    struct corral_topology *t = check(&e);
    check_all_linked(t, 150000); /* 6 links of 25000 each, through the NVSwitches */
    CHECK_INT_EQ(t->gpus[0].cc_major, 7);
    corral_topology_free(t);
}

static void test_power8_p100(void)
{
    static const struct expect e = {TOPO("ibm-power8_2xP8_4xP100-SXM2_nvlink_cuda-nvml-opencl.xml"),
                                    4,
                                    "Tesla P100-SXM2-16GB",
                                    "P100-SXM2-16GB",
                                    16280,
                                    {0, 0, 1, 1},
                                    2,
                                    16,
                                    2};
    struct corral_topology *t = check(&e);
    CHECK_STR_EQ(t->arch, "ppc64le");
    /* GPU pairs 0-1 and 2-3; the GPU-to-CPU links are not GPU peers */
    static const int island[] = {0, 0, 1, 1}, peer[] = {1, 0, 3, 2};
    for (int i = 0; i < 4; i++) {
        CHECK_INT_EQ(t->gpus[i].island, island[i]);
        CHECK_INT_EQ(t->gpus[i].nlinks, 1);
        CHECK_INT_EQ(t->gpus[i].links[0].peer, peer[i]);
        CHECK_INT_EQ(t->gpus[i].links[0].bandwidth_mbps, 40000);
    }
    corral_topology_free(t);
}

static void test_lassen_v100(void)
{
    static const struct expect e = {TOPO("llnl-lassen_2xPOWER9_4xV100-SXM2_cuda-nvml.xml"),
                                    4,
                                    "Tesla V100-SXM2-16GB",
                                    "V100-SXM2-16GB",
                                    16128,
                                    {0, 0, 8, 8},
                                    -1,
                                    160,
                                    2};
    struct corral_topology *t = check(&e);
    CHECK_INT_EQ(t->numa_nodes[0], 0); /* POWER9 NUMA ids are 0 and 8 */
    CHECK_INT_EQ(t->numa_nodes[1], 8);
    CHECK_STR_EQ(t->gpus[3].uuid,
                 "GPU-94d6ebb6-7f93-d19f-5b24-d8e69b74e4e7"); /* NVML, no subtype */
    corral_topology_free(t);
}

static void test_pascal_p100_pcie(void)
{
    static const struct expect e = {
        TOPO("llnl-pascal_2xXeonE5-2695v4_2xP100-PCIe_cuda-nvml-opencl.xml"),
        2,
        "Tesla P100-PCIE-16GB",
        "P100-PCIE-16GB",
        16280,
        {0, 0},
        -1,
        72,
        2};
    corral_topology_free(check(&e));
}

static void test_g4dn_t4(void)
{
    static const struct expect e = {TOPO("aws-g4dn-metal_2xXeon8259CL_8xT4_cuda-nvml-opencl.xml"),
                                    8,
                                    "Tesla T4",
                                    "T4",
                                    15109,
                                    {0, 0, 0, 0, 1, 1, 1, 1},
                                    -1,
                                    96,
                                    2};
    struct corral_topology *t = check(&e);
    CHECK(t->gpus[0].db->rt_cores); /* a datacenter GPU with RT cores */
    CHECK_STR_EQ(t->gpus[0].db->gpu_class, "datacenter-inference");
    CHECK_STR_EQ(t->gpus[0].db->family, "turing");
    corral_topology_free(t);
}

static void test_jureca_a100(void)
{
    static const struct expect e = {TOPO("jsc-jureca-dc-gpu_2xEPYC7742_4xA100-SXM4_pci-only.xml"),
                                    4,
                                    "NVIDIA A100-SXM4-40GB",
                                    "A100-SXM4-40GB",
                                    40960,
                                    {3, 1, 7, 5},
                                    -1,
                                    256,
                                    8};
    struct corral_topology *t = check(&e);
    CHECK_INT_EQ(t->gpus[0].cc_major, 8);
    CHECK(!t->gpus[0].db->rt_cores);
    corral_topology_free(t);
}

static void test_juwels_booster_a100(void)
{
    static const struct expect e = {TOPO("jsc-juwels-booster_2xEPYC7402_4xA100-SXM4_pci-only.xml"),
                                    4,
                                    "NVIDIA A100-SXM4-40GB",
                                    "A100-SXM4-40GB",
                                    40960,
                                    {3, 1, 7, 5},
                                    -1,
                                    96,
                                    8};
    corral_topology_free(check(&e));
}

static void test_juwels_cluster_v100_v1fmt(void)
{
    static const struct expect e = {
        TOPO("jsc-juwels-cluster-gpu_2xXeon6148_4xV100-SXM2_pci-only_v1fmt.xml"),
        4,
        "Tesla V100-SXM2-16GB",
        "V100-SXM2-16GB",
        16160,
        {0, 0, 1, 1},
        -1,
        80,
        2};
    corral_topology_free(check(&e));
}

static void test_desktop_rtx3070_opencl(void)
{
    static const struct expect e = {TOPO("desktop_i5-13600KF_RTX3070_opencl.xml"),
                                    1,
                                    "NVIDIA GeForce RTX 3070",
                                    "RTX-3070",
                                    8025152 / 1024,
                                    {0},
                                    -1,
                                    20,
                                    1};
    struct corral_topology *t = check(&e);
    CHECK_INT_EQ(t->gpus[0].sources, CORRAL_GPU_SRC_PCI | CORRAL_GPU_SRC_OPENCL);
    CHECK(t->gpus[0].db->rt_cores);
    CHECK_STR_EQ(t->gpus[0].db->gpu_class, "consumer");
    CHECK_INT_EQ(t->gpus[0].cc_major, 8);
    CHECK_INT_EQ(t->gpus[0].cc_minor, 6);
    corral_topology_free(t);
}

static void test_workstation_gtx1070_v1fmt(void)
{
    static const struct expect e = {
        TOPO("workstation_TR2990WX_GTX1070-cuda-nvml_RadeonVegaFE-opencl_v1fmt.xml"),
        1, /* the Radeon Vega is not an NVIDIA GPU */
        "GeForce GTX 1070",
        "GTX-1070",
        8119,
        {0},
        -1,
        64,
        2};
    struct corral_topology *t = check(&e);
    CHECK(!t->gpus[0].db->rt_cores); /* consumer Pascal: no RT cores */
    CHECK_STR_EQ(t->gpus[0].db->gpu_class, "consumer");
    CHECK_STR_EQ(t->gpus[0].uuid, "GPU-4568d7d2-6f64-5ae3-e3c9-a95f595c6082");
    corral_topology_free(t);
}

static void test_edited_k40m_amd(void)
{
    struct corral_topology *t =
        load(TOPO("hwloc-test_2xXeonE5_TeslaK40m-cuda_AMD-opencl_EDITED.xml"));
    /* three NVIDIA PCI devices; the AMD OpenCL device on 84:00.1 is not one of them */
    CHECK_INT_EQ(t->ngpus, 3);
    static const int numa[] = {0, 1, 1};
    for (int i = 0; i < 3; i++) {
        CHECK_INT_EQ(t->gpus[i].numa_node, numa[i]);
        CHECK_INT_EQ(t->gpus[i].device_id, 0x1094);
        CHECK_INT_EQ(t->gpus[i].island, -1);
    }
    CHECK_STR_EQ(t->gpus[0].name, "Tesla M2075"); /* from the table: no OS device */
    CHECK_INT_EQ(t->gpus[0].memory_mib, t->gpus[0].db->memory_mib);
    CHECK_STR_EQ(t->gpus[2].bus_id, "0000:84:00.0");
    CHECK_STR_EQ(t->gpus[2].name, "Tesla K40m"); /* the (edited) CUDA device says so */
    CHECK_INT_EQ(t->gpus[2].memory_mib, 11796032 / 1024);
    CHECK_INT_EQ(t->gpus[2].sources, CORRAL_GPU_SRC_PCI | CORRAL_GPU_SRC_CUDA);
    corral_topology_free(t);
}

static void test_mi300a_negative(void)
{
    struct corral_topology *t = load(TOPO("AMD-negative_hpe-ex255a_4xMI300A-APU_rsmi.xml"));
    CHECK_INT_EQ(t->ngpus, 0);
    CHECK(!t->nvlink_recorded); /* XGMIBandwidth is not NVLink */
    CHECK_INT_EQ(t->pus, 192);
    CHECK_INT_EQ(t->nnuma, 4);
    corral_topology_free(t);
}

/* ---- failure paths --------------------------------------------------------------------- */

static char *write_temp(const char *text)
{
    char *path = strdup("/tmp/corral-topo-XXXXXX");
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void expect_failure(const char *xml, int want, const char *needle)
{
    char *path = write_temp(xml);
    struct corral_topology *t = NULL;
    char err[1024] = "";
    int rc = corral_topology_load(path, &t, err, sizeof(err));
    CHECK_INT_EQ(rc, want);
    CHECK(t == NULL);
    CHECK_STR_CONTAINS(err, path);
    CHECK_STR_CONTAINS(err, needle);
    unlink(path);
    free(path);
}

static void test_loader_warning_is_error(void)
{
    /* Stray text inside an object: hwloc warns and drops it, as with the first RTX 3070 copy */
    expect_failure("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                   "<!DOCTYPE topology SYSTEM \"hwloc2.dtd\">\n"
                   "<topology version=\"2.0\">\n"
                   "  <object type=\"Machine\" os_index=\"0\" cpuset=\"0x00000003\" "
                   "complete_cpuset=\"0x00000003\" allowed_cpuset=\"0x00000003\" "
                   "nodeset=\"0x00000001\" complete_nodeset=\"0x00000001\" "
                   "allowed_nodeset=\"0x00000001\" gp_index=\"1\">\n"
                   "    <object type=\"NUMANode\" os_index=\"0\" cpuset=\"0x00000003\" "
                   "complete_cpuset=\"0x00000003\" nodeset=\"0x00000001\" "
                   "complete_nodeset=\"0x00000001\" gp_index=\"2\" local_memory=\"1000000\"/>"
                   "oops, a comment that leaked into the XML\n"
                   "    <object type=\"PU\" os_index=\"0\" cpuset=\"0x00000001\" "
                   "complete_cpuset=\"0x00000001\" nodeset=\"0x00000001\" "
                   "complete_nodeset=\"0x00000001\" gp_index=\"3\"/>\n"
                   "    <object type=\"PU\" os_index=\"1\" cpuset=\"0x00000002\" "
                   "complete_cpuset=\"0x00000002\" nodeset=\"0x00000001\" "
                   "complete_nodeset=\"0x00000001\" gp_index=\"4\"/>\n"
                   "  </object>\n"
                   "</topology>\n",
                   -EINVAL, "ignoring object text content");
}

static void test_unsupported_version(void)
{
    expect_failure("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                   "<!DOCTYPE topology SYSTEM \"hwloc2.dtd\">\n"
                   "<topology version=\"3.0\">\n"
                   "</topology>\n",
                   -EINVAL, "3.0");
}

static void test_not_xml(void)
{
    expect_failure("this is not an hwloc export\n", -EINVAL, "hwloc");
}

static void test_missing_file(void)
{
    struct corral_topology *t = NULL;
    char err[256] = "";
    CHECK_INT_EQ(corral_topology_load("/nonexistent/topo.xml", &t, err, sizeof(err)), -ENOENT);
    CHECK_STR_CONTAINS(err, "/nonexistent/topo.xml: No such file or directory");
}

static void test_live_machine(void)
{
    struct corral_topology *t = NULL;
    char err[512] = "";
    CHECK_INT_EQ(corral_topology_load(NULL, &t, err, sizeof(err)), 0);
    CHECK(!t->from_xml);
    CHECK_STR_EQ(t->source, "live");
    CHECK(t->pus >= 1);
    CHECK(t->nnuma >= 1);
    CHECK(t->memory_bytes > 0);
    CHECK(t->arch[0] != '\0');
    CHECK(t->gpu_probe[0] != '\0'); /* says what the NVML/CUDA probes found, or why not */
    for (size_t i = 0; i < t->ngpus; i++)
        CHECK_INT_EQ(t->gpus[i].vendor_id, 0x10de);
    corral_topology_free(t);
}

/* ---- probe merging (what NVML reports on a live machine) ---------------------------------- */

static struct corral_gpu_probe probe_gpu(unsigned bus, const char *uuid)
{
    struct corral_gpu_probe p;
    memset(&p, 0, sizeof(p));
    p.bus = bus;
    p.device_id = 0x2330;
    snprintf(p.name, sizeof(p.name), "NVIDIA H100 80GB HBM3");
    snprintf(p.uuid, sizeof(p.uuid), "%s", uuid);
    p.memory_mib = 81559;
    p.cc_major = 9;
    p.cc_minor = 0;
    p.healthy = true;
    return p;
}

static void link_to(struct corral_gpu_probe *p, unsigned bus, bool to_switch)
{
    p->links[p->nlinks].bus = bus;
    p->links[p->nlinks].to_switch = to_switch;
    p->links[p->nlinks].bandwidth_mbps = 25000;
    p->nlinks++;
}

static void test_merge_probe(void)
{
    struct corral_topology *t = load(TOPO("lenovo-sd665n-v3_2xEPYC9555_4xH200_pci-only.xml"));
    /* two GPUs hwloc saw (bus 06 and 16) with two NVLinks between them, one it did not (bus
     * 0x40, switch-attached, like the 4th: bus e6) */
    struct corral_gpu_probe p[4] = {probe_gpu(0x06, "GPU-a"), probe_gpu(0x16, "GPU-b"),
                                    probe_gpu(0x40, "GPU-c"), probe_gpu(0xe6, "GPU-d")};
    link_to(&p[0], 0x16, false);
    link_to(&p[0], 0x16, false);
    link_to(&p[1], 0x06, false);
    link_to(&p[1], 0x06, false);
    link_to(&p[2], 0xff, true);
    link_to(&p[3], 0xff, true);
    CHECK_INT_EQ(corral_topology_merge_probe(t, p, 4, CORRAL_GPU_SRC_LIVE_NVML), 0);
    CHECK_INT_EQ(t->ngpus, 5);
    CHECK(t->nvlink_recorded);
    CHECK_STR_EQ(t->gpus[0].uuid, "GPU-a");
    CHECK_INT_EQ(t->gpus[0].memory_mib, 81559);
    CHECK_INT_EQ(t->gpus[0].numa_node, 1); /* hwloc's locality is kept */
    CHECK_INT_EQ(t->gpus[0].nlinks, 1);
    CHECK_INT_EQ(t->gpus[0].links[0].peer, 1);
    CHECK_INT_EQ(t->gpus[0].links[0].bandwidth_mbps, 50000);
    CHECK_STR_EQ(t->gpus[2].bus_id, "0000:40:00.0");    /* added, in bus order */
    CHECK_INT_EQ(t->gpus[2].island, t->gpus[4].island); /* both on the switch */
    CHECK(t->gpus[2].island != t->gpus[0].island);
    CHECK_INT_EQ(t->gpus[0].island, t->gpus[1].island);
    CHECK_STR_EQ(t->gpus[3].bus_id, "0000:96:00.0"); /* on the bus, silent in NVML */
    CHECK(!t->gpus[3].healthy);
    CHECK_INT_EQ(t->gpus[3].island, -1);
    CHECK(t->gpus[0].healthy);
    CHECK(corral_topology_gpu_by_uuid(t, "GPU-d") == &t->gpus[4]);
    corral_topology_free(t);
}

CORRAL_TESTS(CORRAL_TEST(h100_xe8640), CORRAL_TEST(h200_nvml), CORRAL_TEST(h200_pci_only),
             CORRAL_TEST(dgx2_nvswitch), CORRAL_TEST(power8_p100), CORRAL_TEST(lassen_v100),
             CORRAL_TEST(pascal_p100_pcie), CORRAL_TEST(g4dn_t4), CORRAL_TEST(jureca_a100),
             CORRAL_TEST(juwels_booster_a100), CORRAL_TEST(juwels_cluster_v100_v1fmt),
             CORRAL_TEST(desktop_rtx3070_opencl), CORRAL_TEST(workstation_gtx1070_v1fmt),
             CORRAL_TEST(edited_k40m_amd), CORRAL_TEST(mi300a_negative),
             CORRAL_TEST(loader_warning_is_error), CORRAL_TEST(unsupported_version),
             CORRAL_TEST(not_xml), CORRAL_TEST(missing_file), CORRAL_TEST(live_machine),
             CORRAL_TEST(merge_probe))
