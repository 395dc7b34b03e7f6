/* SPDX-License-Identifier: Apache-2.0 */
/* Score plugins: MostAllocated, BestFit, DotProd, GpuClustering, GpuPacking, Random, Fgd,
 * FragAware, GpuTopology, Spread. */
#include "sched_helpers.h"

static void profile_with(char *buf, size_t len, const char *scores, const char *config)
{
    snprintf(buf, len,
             "profiles:\n- schedulerName: default-scheduler\n  tieBreak: first\n  plugins:\n"
             "    multiPoint:\n      enabled: [%s, {name: ResourceFit}]\n%s",
             scores, config ? config : "");
}

#define CPU_NODE(name, cpu) \
    "{\"metadata\":{\"name\":\"" name "\"},\"status\":{\"allocatable\":{\"cpu\":\"" cpu "\",\"memory\":\"64Gi\"}}}"
#define GPU_NODE(name, cpu, gpus)                                                                  \
    "{\"metadata\":{\"name\":\"" name "\"},\"status\":{\"allocatable\":{\"cpu\":\"" cpu           \
    "\",\"memory\":\"256Gi\",\"nvidia.com/gpu\":\"" gpus "\"}}}"

static struct corral_pod *add(struct sched_fixture *fx, const char *name, int cpu,
                              const char *gpu, const char *spec)
{
    char buf[4096];
    return sched_add(fx, pod_json(buf, sizeof(buf), name, cpu, gpu, NULL, spec));
}

static void test_most_allocated(void)
{
    struct sched_fixture fx;
    char p[1024];
    profile_with(p, sizeof(p), "{name: MostAllocated}",
                 "  pluginConfig:\n  - name: MostAllocated\n    args: {resources: [{name: cpu}]}\n");
    sched_fixture_init(&fx, p, "[" CPU_NODE("big", "16") "," CPU_NODE("small", "4") "]");
    CHECK_STR_EQ(sched_node_of(&fx, add(&fx, "a", 1000, NULL, NULL)), "small");
    CHECK_STR_EQ(sched_node_of(&fx, add(&fx, "b", 1000, NULL, NULL)), "small");
    CHECK_STR_EQ(sched_node_of(&fx, add(&fx, "c", 3000, NULL, NULL)), "big");
    sched_fixture_free(&fx);
}

static void test_best_fit_and_dotprod(void)
{
    static const char *const plugins[] = {"{name: BestFit}", "{name: DotProd}"};
    for (int i = 0; i < 2; i++) {
        struct sched_fixture fx;
        char p[1024];
        profile_with(p, sizeof(p), plugins[i], NULL);
        sched_fixture_init(&fx, p, "[" GPU_NODE("roomy", "96", "8") "," GPU_NODE("tight", "16", "2")
                                   "]");
        /* the node left with the least free cpu and GPU wins */
        CHECK_STR_EQ(sched_node_of(&fx, add(&fx, "a", 8000, "\"nvidia.com/gpu\":1", NULL)),
                     "tight");
        sched_fixture_free(&fx);
    }
}

static void test_gpu_clustering(void)
{
    struct sched_fixture fx;
    char p[1024];
    profile_with(p, sizeof(p), "{name: GpuClustering}", NULL);
    sched_fixture_init(&fx, p, "[" GPU_NODE("a", "64", "4") "," GPU_NODE("b", "64", "4") "]");
    add(&fx, "whole", 100, "\"nvidia.com/gpu\":1", NULL); /* lands on a */
    /* a share pod avoids the node holding a different group: b is idle */
    CHECK_STR_EQ(sched_node_of(&fx, add(&fx, "s1", 100, "\"corral.io/gpu-milli\":\"200\"", NULL)),
                 "b");
    /* and joins its own group next time */
    CHECK_STR_EQ(sched_node_of(&fx, add(&fx, "s2", 100, "\"corral.io/gpu-milli\":\"700\"", NULL)),
                 "b");
    CHECK_STR_EQ(sched_node_of(&fx, add(&fx, "w2", 100, "\"nvidia.com/gpu\":1", NULL)), "a");
    sched_fixture_free(&fx);
}

static void test_gpu_packing(void)
{
    struct sched_fixture fx;
    char p[1024], g[32];
    profile_with(p, sizeof(p), "{name: GpuPacking}", NULL);
    sched_fixture_init(&fx, p, "[" GPU_NODE("eight", "64", "8") "," GPU_NODE("two", "64", "2")
                               "]");
    /* an idle node: smaller first */
    CHECK_STR_EQ(sched_node_of(&fx, add(&fx, "s1", 100, "\"corral.io/gpu-milli\":\"500\"", NULL)),
                 "two");
    /* a partly used GPU next */
    struct corral_pod *s2 = add(&fx, "s2", 100, "\"corral.io/gpu-milli\":\"300\"", NULL);
    CHECK_STR_EQ(sched_node_of(&fx, s2), "two");
    CHECK_STR_EQ(sched_gpus_of(&fx, s2, g, sizeof(g)), "0");
    /* then free GPUs on a used node */
    CHECK_STR_EQ(sched_node_of(&fx, add(&fx, "w", 100, "\"nvidia.com/gpu\":1", NULL)), "two");
    CHECK_STR_EQ(sched_node_of(&fx, add(&fx, "w2", 100, "\"nvidia.com/gpu\":1", NULL)), "eight");
    sched_fixture_free(&fx);
}

static void test_random(void)
{
    struct sched_fixture fx;
    char p[1024];
    profile_with(p, sizeof(p), "{name: Random}", NULL);
    sched_fixture_init(&fx, p, "[" CPU_NODE("a", "64") "," CPU_NODE("b", "64") ","
                               CPU_NODE("c", "64") "," CPU_NODE("d", "64") "]");
    int seen[4] = {0}, distinct = 0;
    for (int i = 0; i < 24; i++) {
        char name[16];
        snprintf(name, sizeof(name), "p%d", i);
        struct corral_pod *pod = add(&fx, name, 10, NULL, NULL);
        distinct += seen[pod->node]++ == 0;
    }
    CHECK_INT_EQ(distinct, 4); /* despite tieBreak: first, every node gets some */
    sched_fixture_free(&fx);
}

/* A 160-milli pod fills the 190-milli fragment left by an 810-milli pod (FGD's example). */
static void fills_fragment(const char *plugin, const char *config)
{
    struct sched_fixture fx;
    char p[2048], g[32];
    profile_with(p, sizeof(p), plugin, config);
    sched_fixture_init(&fx, p, "[" GPU_NODE("a", "96", "8") "," GPU_NODE("b", "96", "8") "]");
    struct corral_pod *first = add(&fx, "p810", 3000, "\"corral.io/gpu-milli\":\"810\"", NULL);
    const char *node = sched_node_of(&fx, first);
    struct corral_pod *small = add(&fx, "p160", 4000, "\"corral.io/gpu-milli\":\"160\"", NULL);
    CHECK_STR_EQ(sched_node_of(&fx, small), node);
    CHECK_STR_EQ(sched_gpus_of(&fx, small, g, sizeof(g)), sched_gpus_of(&fx, first, p, 32));
    CHECK_INT_EQ(fx.snap->nodes[first->node].gpus[__builtin_ctzll(first->gpus)].free_milli, 30);
    sched_fixture_free(&fx);
}

static void test_fgd(void)
{
    fills_fragment("{name: Fgd}",
                   "  pluginConfig:\n  - name: Fgd\n    args:\n      typicalTasks:\n"
                   "      - {cpu: 3000, gpus: 1, gpuMilli: 810, count: 10}\n"
                   "      - {cpu: 11000, gpus: 1, gpuMilli: 1000, count: 10}\n"
                   "      - {cpu: 4000, gpus: 1, gpuMilli: 160, count: 5}\n");
}

static void test_fragaware(void)
{
    fills_fragment("{name: FragAware}",
                   "  pluginConfig:\n  - name: FragAware\n    args:\n      resolution: 1\n"
                   "      typicalTasks:\n"
                   "      - {cpu: 3000, gpus: 1, gpuMilli: 810, count: 10}\n"
                   "      - {cpu: 11000, gpus: 1, gpuMilli: 1000, count: 10}\n"
                   "      - {cpu: 4000, gpus: 1, gpuMilli: 160, count: 5}\n");
    fills_fragment("{name: FragAware}", "  pluginConfig:\n  - name: FragAware\n"
                                        "    args: {typicalTasks: learn, balance: 2}\n");
}

static void test_fragaware_balance(void)
{
    /* With the balance term, a CPU-hungry pod goes where cpu is plentiful relative to GPUs,
     * leaving the GPU-dense node's cpu for GPU work. */
    struct sched_fixture fx;
    char p[2048];
    profile_with(p, sizeof(p), "{name: FragAware}",
                 "  pluginConfig:\n  - name: FragAware\n    args:\n      balance: 2\n"
                 "      typicalTasks:\n      - {cpu: 12000, gpus: 1, gpuMilli: 1000, count: 1}\n");
    sched_fixture_init(&fx, p, "[" GPU_NODE("dense", "100", "8") "," GPU_NODE("cpurich", "104", "2")
                               "]");
    add(&fx, "g1", 12000, "\"nvidia.com/gpu\":1", NULL); /* teaches cpu per GPU */
    CHECK_STR_EQ(sched_node_of(&fx, add(&fx, "cpu", 32000, NULL, NULL)), "cpurich");
    sched_fixture_free(&fx);
}

#define TOPO_NODE(name)                                                                            \
    "{\"metadata\":{\"name\":\"" name "\",\"annotations\":{\"corral.io/gpus\":\"["               \
    "{\\\"index\\\":0,\\\"numaNode\\\":0,\\\"island\\\":0},{\\\"index\\\":1,\\\"numaNode\\\":0,"  \
    "\\\"island\\\":1},{\\\"index\\\":2,\\\"numaNode\\\":1,\\\"island\\\":0},{\\\"index\\\":3,"   \
    "\\\"numaNode\\\":1,\\\"island\\\":1}]\"}},\"status\":{\"allocatable\":{\"cpu\":\"64\","      \
    "\"memory\":\"64Gi\",\"nvidia.com/gpu\":\"4\"}}}"

static void test_gpu_topology(void)
{
    struct sched_fixture fx;
    char p[1024], g[32];
    profile_with(p, sizeof(p), "{name: GpuTopology}", NULL);
    sched_fixture_init(&fx, p, "[" GPU_NODE("flat", "64", "4") "," TOPO_NODE("nv") "]");
    struct corral_pod *pod = add(&fx, "pair", 100, "\"nvidia.com/gpu\":2", NULL);
    CHECK_STR_EQ(sched_node_of(&fx, pod), "nv");
    CHECK_STR_EQ(sched_gpus_of(&fx, pod, g, sizeof(g)), "0,2"); /* island 0 */
    pod = add(&fx, "one", 100, "\"nvidia.com/gpu\":1", NULL);
    CHECK_STR_EQ(sched_node_of(&fx, pod), "nv");
    pod = add(&fx, "pair2", 100, "\"nvidia.com/gpu\":2", NULL);
    CHECK_STR_EQ(sched_node_of(&fx, pod), "flat"); /* nv has only one free GPU left */
    sched_fixture_free(&fx);
}

static void test_spread(void)
{
    struct sched_fixture fx;
    char p[1024];
    profile_with(p, sizeof(p), "{name: Spread}", NULL);
    sched_fixture_init(
        &fx, p,
        "[{\"metadata\":{\"name\":\"a1\",\"labels\":{\"topology.kubernetes.io/zone\":\"a\"}},"
        "\"status\":{\"allocatable\":{\"cpu\":\"64\",\"memory\":\"64Gi\"}}},"
        "{\"metadata\":{\"name\":\"b1\",\"labels\":{\"topology.kubernetes.io/zone\":\"b\"}},"
        "\"status\":{\"allocatable\":{\"cpu\":\"64\",\"memory\":\"64Gi\"}}},"
        "{\"metadata\":{\"name\":\"x\"},\"status\":{\"allocatable\":{\"cpu\":\"64\","
        "\"memory\":\"64Gi\"}}}]");
    static const char hard[] =
        "\"topologySpreadConstraints\":[{\"maxSkew\":1,\"topologyKey\":"
        "\"topology.kubernetes.io/zone\",\"whenUnsatisfiable\":\"DoNotSchedule\","
        "\"labelSelector\":{\"matchLabels\":{\"app\":\"web\"}}}]";
    char buf[4096];
    const char *zones[4];
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof(name), "web%d", i);
        snprintf(buf, sizeof(buf), "{\"metadata\":{\"name\":\"%s\",\"labels\":{\"app\":\"web\"}},"
                 "\"spec\":{%s,\"containers\":[{\"name\":\"c\"}]}}", name, hard);
        zones[i] = sched_node_of(&fx, sched_add(&fx, buf));
    }
    /* never on the node without the zone label, alternating zones */
    CHECK(strcmp(zones[0], zones[1]) != 0);
    CHECK(strcmp(zones[2], zones[3]) != 0);
    for (int i = 0; i < 4; i++)
        CHECK(strcmp(zones[i], "x") != 0 && *zones[i]);
    sched_fixture_free(&fx);
}

CORRAL_TESTS(CORRAL_TEST(most_allocated), CORRAL_TEST(best_fit_and_dotprod),
             CORRAL_TEST(gpu_clustering), CORRAL_TEST(gpu_packing), CORRAL_TEST(random),
             CORRAL_TEST(fgd), CORRAL_TEST(fragaware), CORRAL_TEST(fragaware_balance),
             CORRAL_TEST(gpu_topology), CORRAL_TEST(spread))
