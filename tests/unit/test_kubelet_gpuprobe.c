/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Live GPU discovery through the dlopen'd driver libraries, on a machine without GPUs: the
 * probes are pointed (CORRAL_LIBNVML, CORRAL_LIBCUDA) at stand-in libraries built for this test
 * (test_kubelet_fakenvml.c: three H100s, NVLink and an NVSwitch, one GPU failing;
 * test_kubelet_fakecuda.c: two RTX 4090s). argv[1] and argv[2] are their paths. What is
 * checked is corral's side: symbol loading, the NVML/CUDA types, the NVLink walk, merging into
 * the live topology, health, the Node that results, and the fallbacks when a library is absent.
 */
#include "cuda.h"
#include "harness.h"
#include "node.h"
#include "nvml.h"
#include "topology.h"

#include <errno.h>
#include <stdlib.h>

static const char *fake_nvml, *fake_cuda;

static void use(const char *nvml, const char *cuda)
{
    setenv("CORRAL_LIBNVML", nvml, 1);
    setenv("CORRAL_LIBCUDA", cuda, 1);
}

static void test_nvml_probe(void)
{
    use(fake_nvml, "/nonexistent/libcuda.so.1");
    struct corral_gpu_probe *p = NULL;
    size_t n = 0;
    char why[200] = "";
    CHECK_INT_EQ(corral_nvml_probe(&p, &n, why, sizeof(why)), 0);
    CHECK_INT_EQ(n, 3);
    CHECK_INT_EQ(p[0].bus, 0x1b);
    CHECK_INT_EQ(p[0].domain, 0);
    CHECK_INT_EQ(p[0].func, 0);
    CHECK_INT_EQ(p[0].device_id, 0x2330);
    CHECK_STR_EQ(p[0].name, "NVIDIA H100 80GB HBM3");
    CHECK_STR_EQ(p[0].uuid, "GPU-11111111-2222-3333-4444-555555555555");
    CHECK_INT_EQ(p[0].memory_mib, 81559);
    CHECK_INT_EQ(p[0].cc_major, 9);
    CHECK_INT_EQ(p[0].cc_minor, 0);
    CHECK(p[0].healthy);
    CHECK_INT_EQ(p[0].nlinks, 2);
    CHECK_INT_EQ(p[0].links[1].bus, 0x43);
    CHECK(!p[0].links[1].to_switch);
    CHECK_INT_EQ(p[0].links[0].bandwidth_mbps, 25000); /* NVLink 4 */
    CHECK(!p[2].healthy);                              /* its memory query fails */
    CHECK(p[2].links[0].to_switch);
    free(p);

    use("/nonexistent/libnvidia-ml.so.1", fake_cuda);
    CHECK_INT_EQ(corral_nvml_probe(&p, &n, why, sizeof(why)), -ENOENT);
    CHECK_STR_CONTAINS(why, "/nonexistent/libnvidia-ml.so.1");
}

static void test_cuda_probe(void)
{
    use("/nonexistent/libnvidia-ml.so.1", fake_cuda);
    struct corral_gpu_probe *p = NULL;
    size_t n = 0;
    char why[200] = "";
    CHECK_INT_EQ(corral_cuda_probe(&p, &n, why, sizeof(why)), 0);
    CHECK_INT_EQ(n, 2);
    CHECK_STR_EQ(p[1].name, "NVIDIA GeForce RTX 4090");
    CHECK_INT_EQ(p[1].bus, 2);
    CHECK_INT_EQ(p[1].memory_mib, 24217);
    CHECK_INT_EQ(p[1].cc_major, 8);
    CHECK_INT_EQ(p[1].cc_minor, 9);
    CHECK_STR_EQ(p[1].uuid, "GPU-10111213-1415-1617-1819-1a1b1c1d1e1f");
    CHECK_INT_EQ(p[1].nlinks, 0);
    free(p);
    unsigned char raw[16] = {0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0xa, 0xb};
    char text[41];
    corral_cuda_format_uuid(raw, text);
    CHECK_STR_EQ(text, "GPU-deadbeef-0001-0203-0405-060708090a0b");
}

/* GPUs this machine's PCI bus has by itself (0 in CI; real ones elsewhere). */
static size_t machine_gpus(void)
{
    use("/nonexistent/libnvidia-ml.so.1", "/nonexistent/libcuda.so.1");
    struct corral_topology *t = NULL;
    char err[512];
    CHECK_INT_EQ(corral_topology_load(NULL, &t, err, sizeof(err)), 0);
    size_t n = t->ngpus;
    corral_topology_free(t);
    return n;
}

static void test_live_topology_with_nvml(void)
{
    size_t base = machine_gpus();
    if (base > 0) {
        fprintf(stderr,
                "this machine has %zu NVIDIA GPUs of its own: the stand-in NVML cannot "
                "describe them; skipped\n",
                base);
        return;
    }
    use(fake_nvml, "/nonexistent/libcuda.so.1");
    struct corral_topology *t = NULL;
    char err[512];
    CHECK_INT_EQ(corral_topology_load(NULL, &t, err, sizeof(err)), 0);
    CHECK_STR_EQ(t->gpu_probe, "nvml: 3 GPUs");
    CHECK_INT_EQ(t->ngpus, 3); /* not on this machine's PCI bus: taken from NVML */
    CHECK_STR_EQ(t->gpus[0].bus_id, "0000:1b:00.0");
    CHECK_STR_EQ(t->gpus[0].db->model, "H100-SXM5-80GB");
    CHECK(t->gpus[0].sources & CORRAL_GPU_SRC_LIVE_NVML);
    CHECK(t->nvlink_recorded);
    CHECK_INT_EQ(t->gpus[0].nlinks, 1);
    CHECK_INT_EQ(t->gpus[0].links[0].peer, 1);
    CHECK_INT_EQ(t->gpus[0].links[0].bandwidth_mbps, 50000); /* two links */
    CHECK_INT_EQ(t->gpus[0].island, 0);
    CHECK_INT_EQ(t->gpus[1].island, 0);
    CHECK_INT_EQ(t->gpus[2].island, 1); /* alone on its switch */
    CHECK(!t->gpus[2].healthy);
    struct corral_node_config cfg = {.name = "live-gpu"};
    json_t *node = corral_node_build(t, &cfg, err, sizeof(err));
    CHECK(node != NULL);
    json_t *status = json_object_get(node, "status");
    CHECK_STR_EQ(
        json_string_value(json_object_get(json_object_get(status, "capacity"), "nvidia.com/gpu")),
        "3");
    CHECK_STR_EQ(json_string_value(
                     json_object_get(json_object_get(status, "allocatable"), "nvidia.com/gpu")),
                 "2"); /* the failing GPU is not offered */
    CHECK_STR_EQ(
        json_string_value(json_object_get(
            json_object_get(json_object_get(node, "metadata"), "labels"), "corral.io/gpu.nvlink")),
        "true");
    json_decref(node);
    corral_topology_free(t);
}

static void test_live_topology_fallbacks(void)
{
    if (machine_gpus() > 0) {
        fprintf(stderr, "this machine has NVIDIA GPUs of its own; skipped\n");
        return;
    }
    use("/nonexistent/libnvidia-ml.so.1", fake_cuda);
    struct corral_topology *t = NULL;
    char err[512];
    CHECK_INT_EQ(corral_topology_load(NULL, &t, err, sizeof(err)), 0);
    CHECK_STR_EQ(t->gpu_probe, "cuda: 2 GPUs");
    CHECK_INT_EQ(t->ngpus, 2);
    CHECK_STR_EQ(t->gpus[0].db->model, "RTX-4090");
    CHECK_INT_EQ(t->gpus[0].cc_minor, 9);
    CHECK(!t->nvlink_recorded); /* CUDA says nothing about NVLink */
    CHECK_INT_EQ(t->gpus[0].island, -1);
    CHECK(t->gpus[0].healthy);
    corral_topology_free(t);

    use("/nonexistent/libnvidia-ml.so.1", "/nonexistent/libcuda.so.1");
    CHECK_INT_EQ(corral_topology_load(NULL, &t, err, sizeof(err)), 0);
    CHECK_STR_CONTAINS(t->gpu_probe, "no NVIDIA driver library");
    corral_topology_free(t);
}

int tests_main(int argc, char **argv);

#define main tests_main
CORRAL_TESTS(CORRAL_TEST(nvml_probe), CORRAL_TEST(cuda_probe), CORRAL_TEST(live_topology_with_nvml),
             CORRAL_TEST(live_topology_fallbacks))
#undef main

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s FAKE-NVML.so FAKE-CUDA.so [TEST]\n", argv[0]);
        return 2;
    }
    fake_nvml = argv[1];
    fake_cuda = argv[2];
    argv[2] = argv[0];
    return tests_main(argc - 2, argv + 2);
}
