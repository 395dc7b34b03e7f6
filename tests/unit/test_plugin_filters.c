/* SPDX-License-Identifier: Apache-2.0 */
/* Filter plugins: ResourceFit, NodeAffinity, TaintToleration, GpuMatch, GpuClass. */
#include "sched_helpers.h"

static const char profile[] =
    "profiles:\n"
    "- schedulerName: default-scheduler\n"
    "  tieBreak: first\n"
    "  plugins:\n"
    "    multiPoint:\n"
    "      enabled: [{name: TaintToleration}, {name: NodeAffinity}, {name: GpuMatch},\n"
    "                {name: GpuClass}, {name: ResourceFit}]\n";

#define NODE(name, labels, extra, alloc)                                                           \
    "{\"metadata\":{\"name\":\"" name "\",\"labels\":{" labels "}" extra "},"                     \
    "\"status\":{\"allocatable\":{" alloc "}}}"

static struct corral_pod *add(struct sched_fixture *fx, const char *name, int cpu,
                              const char *gpu, const char *ann, const char *spec)
{
    char buf[4096];
    return sched_add(fx, pod_json(buf, sizeof(buf), name, cpu, gpu, ann, spec));
}

static void test_resourcefit(void)
{
    struct sched_fixture fx;
    sched_fixture_init(&fx, profile,
                       "[" NODE("small", "", "", "\"cpu\":\"2\",\"memory\":\"2Gi\",\"pods\":\"2\","
                                                 "\"example.com/fpga\":\"1\"") "]");
    CHECK_STR_EQ(sched_node_of(&fx, add(&fx, "a", 3000, NULL, NULL, NULL)), "");
    CHECK_STR_EQ(fx.last_message, "0/1 nodes are available: 1 Insufficient cpu.");
    CHECK_STR_EQ(sched_node_of(&fx, add(&fx, "b", 500, "\"example.com/fpga\":\"2\"", NULL,
                                        NULL)), "");
    CHECK_STR_EQ(fx.last_message, "0/1 nodes are available: 1 Insufficient example.com/fpga.");
    CHECK_STR_EQ(sched_node_of(&fx, add(&fx, "c", 500, "\"example.com/fpga\":\"1\"", NULL,
                                        NULL)), "small");
    CHECK_STR_EQ(sched_node_of(&fx, add(&fx, "d", 500, NULL, NULL, NULL)), "small");
    CHECK_STR_EQ(sched_node_of(&fx, add(&fx, "e", 100, NULL, NULL, NULL)), "");
    CHECK_STR_EQ(fx.last_message, "0/1 nodes are available: 1 Too many pods.");
    CHECK_STR_EQ(sched_node_of(&fx, add(&fx, "f", 0, "\"nvidia.com/gpu\":1", NULL, NULL)), "");
    sched_fixture_free(&fx);

    sched_fixture_init(&fx, profile, "[" NODE("n", "", "", "\"cpu\":\"8\",\"memory\":\"2Gi\"") "]");
    CHECK_STR_EQ(sched_node_of(&fx, add(&fx, "mem", 100, NULL, NULL, NULL)), "n");
    CHECK_STR_EQ(sched_node_of(&fx, add(&fx, "mem2", 100, NULL, NULL, NULL)), "n");
    CHECK_STR_EQ(sched_node_of(&fx, add(&fx, "mem3", 100, NULL, NULL, NULL)), "");
    CHECK_STR_EQ(fx.last_message, "0/1 nodes are available: 1 Insufficient memory.");
    sched_fixture_free(&fx);
}

static void test_host_ports(void)
{
    struct sched_fixture fx;
    static const char ports[] =
        "\"containers\":[{\"name\":\"c\",\"ports\":[{\"containerPort\":80,\"hostPort\":8080}],"
        "\"resources\":{\"requests\":{\"cpu\":\"100m\"}}}]";
    char a[1024], b[1024];
    snprintf(a, sizeof(a), "{\"metadata\":{\"name\":\"p1\"},\"spec\":{%s}}", ports);
    snprintf(b, sizeof(b), "{\"metadata\":{\"name\":\"p2\"},\"spec\":{%s}}", ports);
    sched_fixture_init(&fx, profile, "[" NODE("n", "", "", "\"cpu\":\"8\",\"memory\":\"8Gi\"") "]");
    CHECK_STR_EQ(sched_node_of(&fx, sched_add(&fx, a)), "n");
    CHECK_STR_EQ(sched_node_of(&fx, sched_add(&fx, b)), "");
    CHECK_STR_EQ(fx.last_message, "0/1 nodes are available: 1 node(s) didn't have free ports "
                                  "for the requested pod ports.");
    sched_fixture_free(&fx);
}

static void test_node_affinity(void)
{
    struct sched_fixture fx;
    sched_fixture_init(&fx, profile,
                       "[" NODE("z1", "\"zone\":\"a\",\"cores\":\"64\"", "", "\"cpu\":\"8\",\"memory\":\"8Gi\"") ","
                       NODE("z2", "\"zone\":\"b\",\"cores\":\"16\"", "", "\"cpu\":\"8\",\"memory\":\"8Gi\"") "]");
    CHECK_STR_EQ(sched_node_of(&fx, add(&fx, "sel", 1, NULL, NULL,
                                        "\"nodeSelector\":{\"zone\":\"b\"}")), "z2");
    CHECK_STR_EQ(sched_node_of(&fx, add(&fx, "gt", 1, NULL, NULL,
                                        "\"affinity\":{\"nodeAffinity\":{"
                                        "\"requiredDuringSchedulingIgnoredDuringExecution\":{"
                                        "\"nodeSelectorTerms\":[{\"matchExpressions\":[{\"key\":"
                                        "\"cores\",\"operator\":\"Gt\",\"values\":[\"32\"]}]}]}}}")),
                 "z1");
    CHECK_STR_EQ(sched_node_of(&fx, add(&fx, "field", 1, NULL, NULL,
                                        "\"affinity\":{\"nodeAffinity\":{"
                                        "\"requiredDuringSchedulingIgnoredDuringExecution\":{"
                                        "\"nodeSelectorTerms\":[{\"matchFields\":[{\"key\":"
                                        "\"metadata.name\",\"operator\":\"In\",\"values\":"
                                        "[\"z2\"]}]}]}}}")), "z2");
    CHECK_STR_EQ(sched_node_of(&fx, add(&fx, "none", 1, NULL, NULL,
                                        "\"nodeSelector\":{\"zone\":\"c\"}")), "");
    CHECK_STR_EQ(fx.last_message, "0/2 nodes are available: 2 node(s) didn't match Pod's node "
                                  "affinity/selector.");
    /* preferred: the heavier matching term wins over node order */
    CHECK_STR_EQ(sched_node_of(&fx, add(&fx, "pref", 1, NULL, NULL,
                                        "\"affinity\":{\"nodeAffinity\":{"
                                        "\"preferredDuringSchedulingIgnoredDuringExecution\":["
                                        "{\"weight\":10,\"preference\":{\"matchExpressions\":[{"
                                        "\"key\":\"zone\",\"operator\":\"In\",\"values\":[\"b\"]}]}}"
                                        ",{\"weight\":1,\"preference\":{\"matchExpressions\":[{"
                                        "\"key\":\"zone\",\"operator\":\"In\",\"values\":[\"a\"]}]}}"
                                        "]}}")), "z2");
    CHECK_STR_EQ(sched_node_of(&fx, add(&fx, "bad", 1, NULL, NULL,
                                        "\"affinity\":{\"nodeAffinity\":{"
                                        "\"requiredDuringSchedulingIgnoredDuringExecution\":{"
                                        "\"nodeSelectorTerms\":[{\"matchExpressions\":[{\"key\":"
                                        "\"zone\",\"operator\":\"Near\"}]}]}}}")), "");
    CHECK_STR_CONTAINS(fx.last_message, "pod has an invalid nodeSelector or node affinity");
    sched_fixture_free(&fx);
}

static void test_taints(void)
{
    struct sched_fixture fx;
    sched_fixture_init(&fx, profile,
                       "[" NODE("tainted", "", ",\"annotations\":{}},\"spec\":{\"taints\":[{\"key\":"
                                "\"gpu\",\"value\":\"h100\",\"effect\":\"NoSchedule\"}]", "\"cpu\":\"8\",\"memory\":\"8Gi\"")
                       "," NODE("cordoned", "", "},\"spec\":{\"unschedulable\":true", "\"cpu\":\"8\",\"memory\":\"8Gi\"")
                       "," NODE("soft", "", "},\"spec\":{\"taints\":[{\"key\":\"spot\","
                                "\"effect\":\"PreferNoSchedule\"}]", "\"cpu\":\"8\",\"memory\":\"8Gi\"") "]");
    /* PreferNoSchedule only lowers the score */
    CHECK_STR_EQ(sched_node_of(&fx, add(&fx, "plain", 1, NULL, NULL, NULL)), "soft");
    CHECK_STR_EQ(sched_node_of(&fx, add(&fx, "big", 8000, NULL, NULL, NULL)), "");
    CHECK_STR_EQ(fx.last_message, "0/3 nodes are available: 1 Insufficient cpu, 1 node(s) had "
                                  "untolerated taint {gpu: h100}, 1 node(s) were unschedulable.");
    CHECK_STR_EQ(sched_node_of(&fx, add(&fx, "tol", 1, NULL, NULL,
                                        "\"tolerations\":[{\"key\":\"gpu\",\"operator\":\"Equal\","
                                        "\"value\":\"h100\",\"effect\":\"NoSchedule\"},"
                                        "{\"key\":\"spot\",\"operator\":\"Exists\"}]")),
                 "tainted");
    CHECK_STR_EQ(sched_node_of(&fx, add(&fx, "wrongvalue", 8000, NULL, NULL,
                                        "\"tolerations\":[{\"key\":\"gpu\",\"value\":\"a100\","
                                        "\"effect\":\"NoSchedule\"}]")), "");
    CHECK_STR_EQ(sched_node_of(&fx, add(&fx, "all", 8000, NULL, NULL,
                                        "\"tolerations\":[{\"operator\":\"Exists\"}]")),
                 "cordoned");
    sched_fixture_free(&fx);
}

#define GPUS_MIXED                                                                                 \
    "\"annotations\":{\"corral.io/gpus\":\"[{\\\"index\\\":0,\\\"model\\\":\\\"RTX-4090\\\","    \
    "\\\"memoryMiB\\\":24564,\\\"computeCapability\\\":\\\"8.9\\\",\\\"family\\\":"              \
    "\\\"ada-lovelace\\\",\\\"rtCores\\\":true,\\\"class\\\":\\\"consumer\\\"},{\\\"index\\\":1,"\
    "\\\"model\\\":\\\"A100-SXM4-80GB\\\",\\\"memoryMiB\\\":81920,\\\"computeCapability\\\":"     \
    "\\\"8.0\\\",\\\"family\\\":\\\"ampere\\\",\\\"rtCores\\\":false,\\\"class\\\":"             \
    "\\\"datacenter-training\\\",\\\"nvlink\\\":[{\\\"peer\\\":1}]}]\"}"

static void test_gpu_match(void)
{
    struct sched_fixture fx;
    char g[32];
    sched_fixture_init(&fx, profile,
                       "[" NODE("mixed", "", "," GPUS_MIXED,
                                "\"cpu\":\"32\",\"memory\":\"64Gi\",\"nvidia.com/gpu\":\"2\"") "]");
    struct corral_pod *p = add(&fx, "mem", 1, "\"nvidia.com/gpu\":1",
                               "\"corral.io/gpu-min-memory\":\"40Gi\"", NULL);
    CHECK_STR_EQ(sched_gpus_of(&fx, p, g, sizeof(g)), "1"); /* only the A100 matches */
    p = add(&fx, "cc", 1, "\"corral.io/gpu-milli\":\"500\"",
            "\"corral.io/gpu-min-compute\":\"8.6\"", NULL);
    CHECK_STR_EQ(sched_gpus_of(&fx, p, g, sizeof(g)), "0");
    p = add(&fx, "fam", 1, "\"corral.io/gpu-milli\":\"500\"",
            "\"corral.io/gpu-families\":\"hopper\"", NULL);
    CHECK_STR_EQ(fx.last_message, "0/1 nodes are available: 1 node(s) had GPU family not in "
                                  "[hopper].");
    p = add(&fx, "two", 1, "\"nvidia.com/gpu\":2", "\"corral.io/gpu-models\":\"RTX-4090\"", NULL);
    CHECK_STR_EQ(fx.last_message, "0/1 nodes are available: 1 node(s) had GPU model not in "
                                  "[RTX-4090].");
    p = add(&fx, "nv", 1, "\"corral.io/gpu-milli\":\"100\"", "\"corral.io/gpu-features\":"
                                                              "\"nvlink\"", NULL);
    CHECK_STR_EQ(fx.last_message, "0/1 nodes are available: 1 Insufficient corral.io/gpu-milli.");
    p = add(&fx, "bad", 1, "\"nvidia.com/gpu\":1", "\"corral.io/gpu-min-compute\":\"eight\"",
            NULL);
    CHECK_STR_CONTAINS(fx.last_message, "annotation corral.io/gpu-min-compute: \"eight\" is not "
                                        "a compute capability like 8.6");
    p = add(&fx, "feat", 1, "\"nvidia.com/gpu\":1", "\"corral.io/gpu-features\":\"wings\"", NULL);
    CHECK_STR_CONTAINS(fx.last_message, "unknown feature \"wings\"");
    sched_fixture_free(&fx);
}

static void test_gpu_class(void)
{
    struct sched_fixture fx;
    char g[32];
    sched_fixture_init(&fx, profile,
                       "[" NODE("mixed", "", "," GPUS_MIXED,
                                "\"cpu\":\"32\",\"memory\":\"64Gi\",\"nvidia.com/gpu\":\"2\"") ","
                       NODE("cpu", "", "", "\"cpu\":\"32\",\"memory\":\"64Gi\"") "]");
    /* render work only on RT-core GPUs */
    struct corral_pod *p = add(&fx, "render", 1, "\"corral.io/gpu-milli\":\"100\"",
                               "\"corral.io/workload\":\"render\"", NULL);
    CHECK_STR_EQ(sched_gpus_of(&fx, p, g, sizeof(g)), "0");
    p = add(&fx, "render2", 1, "\"nvidia.com/gpu\":1", "\"corral.io/workload\":\"render\"", NULL);
    CHECK_STR_EQ(sched_node_of(&fx, p), "");
    CHECK_STR_EQ(fx.last_message, "0/2 nodes are available: 1 Insufficient nvidia.com/gpu, "
                                  "1 node(s) had no GPUs with RT cores (render workload).");
    /* CPU-only work prefers the node without GPUs */
    CHECK_STR_EQ(sched_node_of(&fx, add(&fx, "cpuonly", 1, NULL, NULL, NULL)), "cpu");
    sched_fixture_free(&fx);
}

CORRAL_TESTS(CORRAL_TEST(resourcefit), CORRAL_TEST(host_ports), CORRAL_TEST(node_affinity),
             CORRAL_TEST(taints), CORRAL_TEST(gpu_match), CORRAL_TEST(gpu_class))
