/* SPDX-License-Identifier: Apache-2.0 */
/* The framework: explanations, the signature cache, tie-breaking, GPU assignment, partial
 * scoring, bound pods. */
#include "error.h"
#include "sched_helpers.h"

#define GPU_NODE(name, model, n, cpu)                                                              \
    "{\"metadata\":{\"name\":\"" name "\",\"labels\":{\"corral.io/gpu.model\":\"" model "\"}},"   \
    "\"status\":{\"allocatable\":{\"cpu\":\"" cpu "\",\"memory\":\"64Gi\","                      \
    "\"nvidia.com/gpu\":\"" n "\"}}}"

static const char base_profile[] =
    "profiles:\n"
    "- schedulerName: default-scheduler\n"
    "  tieBreak: first\n"
    "  plugins:\n"
    "    multiPoint:\n"
    "      enabled: [{name: GpuMatch}, {name: MostAllocated}, {name: ResourceFit}]\n";

static const char random_ties_profile[] =
    "profiles:\n"
    "- schedulerName: default-scheduler\n"
    "  plugins:\n"
    "    multiPoint:\n"
    "      enabled: [{name: GpuMatch}, {name: MostAllocated}, {name: ResourceFit}]\n";

static void explain_with(const char *profile)
{
    struct sched_fixture fx;
    char buf[2048];
    sched_fixture_init(&fx, profile,
                       "[" GPU_NODE("a", "RTX-4090", "1", "8") "," GPU_NODE("b", "RTX-3090", "1", "8")
                       "," GPU_NODE("c", "H100", "8", "64") "]");
    const char *ann = "\"corral.io/gpu-models\":\"RTX-4090,RTX-3090\"";
    struct corral_pod *p = sched_add(&fx, pod_json(buf, sizeof(buf), "p1", 1000,
                                                   "\"nvidia.com/gpu\":1", ann, NULL));
    CHECK(*sched_node_of(&fx, p) == 'a' || *sched_node_of(&fx, p) == 'b');
    sched_add(&fx, pod_json(buf, sizeof(buf), "p2", 1000, "\"nvidia.com/gpu\":1", ann, NULL));
    p = sched_add(&fx, pod_json(buf, sizeof(buf), "p3", 1000, "\"nvidia.com/gpu\":1", ann, NULL));
    CHECK_STR_EQ(sched_node_of(&fx, p), "");
    CHECK_STR_EQ(fx.last_message, "0/3 nodes are available: 2 Insufficient nvidia.com/gpu, "
                                  "1 node(s) had GPU model not in [RTX-4090, RTX-3090].");
    CHECK_STR_EQ(p->message, fx.last_message);
    CHECK(p->state == CORRAL_POD_FAILED);
    sched_fixture_free(&fx);
}

/* The same explanation from the heap's histogram (tieBreak: first) and from a scan. */
static void test_explanation(void)
{
    explain_with(base_profile);
    explain_with(random_ties_profile);
}

/* The same replay with and without the signature cache places every pod identically. */
static void test_cache_is_exact(void)
{
    struct sched_fixture fx[2];
    char nodes[16384] = "[", buf[2048];
    for (int i = 0; i < 24; i++) { /* two nodes of each kind: the class memo has work */
        char one[512];
        snprintf(one, sizeof(one), "%s{\"metadata\":{\"name\":\"n%02d\"},\"status\":{"
                 "\"allocatable\":{\"cpu\":\"%d\",\"memory\":\"64Gi\",\"nvidia.com/gpu\":\"%d\"}}}",
                 i ? "," : "", i, 8 + 8 * (i % 3), 1 << (i % 4));
        strcat(nodes, one);
    }
    strcat(nodes, "]");
    static const char profile[] =
        "profiles:\n- schedulerName: default-scheduler\n  tieBreak: first\n  plugins:\n"
        "    multiPoint:\n      enabled: [{name: FragAware}, {name: ResourceFit}]\n";
    for (int k = 0; k < 2; k++) {
        sched_fixture_init(&fx[k], profile, nodes);
        fx[k].fw->no_cache = k == 1;
    }
    static const char *const gpus[] = {"\"nvidia.com/gpu\":1", "\"corral.io/gpu-milli\":\"300\"",
                                       "\"nvidia.com/gpu\":2", "\"corral.io/gpu-milli\":\"700\"",
                                       NULL};
    for (int i = 0; i < 60; i++) {
        char name[32], g0[64], g1[64];
        snprintf(name, sizeof(name), "p%d", i);
        pod_json(buf, sizeof(buf), name, 1000 + 500 * (i % 5), gpus[i % 5], NULL, NULL);
        struct corral_pod *a = sched_add(&fx[0], buf), *b = sched_add(&fx[1], buf);
        CHECK_STR_EQ(sched_node_of(&fx[0], a), sched_node_of(&fx[1], b));
        CHECK_STR_EQ(sched_gpus_of(&fx[0], a, g0, sizeof(g0)),
                     sched_gpus_of(&fx[1], b, g1, sizeof(g1)));
    }
    CHECK(fx[0].fw->stats.cache_hits > 0);
    CHECK(fx[0].fw->stats.class_hits > 0);
    CHECK(fx[0].fw->stats.nodes_evaluated < fx[1].fw->stats.nodes_evaluated);
    CHECK_INT_EQ(fx[1].fw->stats.cache_hits, 0);
    CHECK_INT_EQ(fx[1].fw->stats.class_hits, 0);
    for (int k = 0; k < 2; k++)
        sched_fixture_free(&fx[k]);
}

static void test_tie_break(void)
{
    struct sched_fixture fx;
    char buf[2048];
    static const char random_profile[] =
        "profiles:\n- schedulerName: default-scheduler\n  plugins:\n"
        "    multiPoint:\n      enabled: [{name: ResourceFit}]\n";
    char nodes[4096] = "[";
    for (int i = 0; i < 8; i++) {
        char one[256];
        snprintf(one, sizeof(one), "%s{\"metadata\":{\"name\":\"n%d\"},\"status\":{"
                 "\"allocatable\":{\"cpu\":\"100\",\"memory\":\"64Gi\"}}}", i ? "," : "", i);
        strcat(nodes, one);
    }
    strcat(nodes, "]");
    /* tieBreak: first always takes the first node in order */
    sched_fixture_init(&fx, base_profile, nodes);
    for (int i = 0; i < 5; i++) {
        char name[16];
        snprintf(name, sizeof(name), "p%d", i);
        CHECK_STR_EQ(sched_node_of(&fx, sched_add(&fx, pod_json(buf, sizeof(buf), name, 100,
                                                                NULL, NULL, NULL))), "n0");
    }
    sched_fixture_free(&fx);
    /* random tie-breaking spreads equal-score pods */
    sched_fixture_init(&fx, random_profile, nodes);
    int used[8] = {0}, distinct = 0;
    for (int i = 0; i < 40; i++) {
        char name[16];
        snprintf(name, sizeof(name), "p%d", i);
        struct corral_pod *p = sched_add(&fx, pod_json(buf, sizeof(buf), name, 100, NULL, NULL,
                                                       NULL));
        distinct += used[p->node]++ == 0;
    }
    CHECK(distinct >= 5);
    sched_fixture_free(&fx);
}

static void test_gpu_assignment(void)
{
    struct sched_fixture fx;
    char buf[2048], g[64];
    sched_fixture_init(&fx, base_profile, "[" GPU_NODE("a", "T4", "4", "32") "]");
    struct corral_pod *p = sched_add(&fx, pod_json(buf, sizeof(buf), "s1", 100,
                                                   "\"corral.io/gpu-milli\":\"600\"", NULL, NULL));
    CHECK_STR_EQ(sched_gpus_of(&fx, p, g, sizeof(g)), "0");
    CHECK_INT_EQ(p->gpu_milli, 600);
    /* best fit: 300 goes on GPU 0 (400 left) rather than a whole GPU */
    p = sched_add(&fx, pod_json(buf, sizeof(buf), "s2", 100, "\"corral.io/gpu-milli\":\"300\"",
                                NULL, NULL));
    CHECK_STR_EQ(sched_gpus_of(&fx, p, g, sizeof(g)), "0");
    p = sched_add(&fx, pod_json(buf, sizeof(buf), "w", 100, "\"nvidia.com/gpu\":3", NULL, NULL));
    CHECK_STR_EQ(sched_gpus_of(&fx, p, g, sizeof(g)), "1,2,3");
    CHECK_INT_EQ(fx.snap->used_gpu_milli, 3900);
    p = sched_add(&fx, pod_json(buf, sizeof(buf), "s3", 100, "\"corral.io/gpu-milli\":\"200\"",
                                NULL, NULL));
    CHECK_STR_EQ(sched_node_of(&fx, p), "");
    CHECK_STR_EQ(fx.last_message, "0/1 nodes are available: 1 Insufficient corral.io/gpu-milli.");
    sched_fixture_free(&fx);
}

static void test_percentage_of_nodes(void)
{
    struct sched_fixture fx;
    char buf[2048];
    char *nodes = malloc(200 * 256);
    strcpy(nodes, "[");
    for (int i = 0; i < 200; i++) {
        char one[256];
        snprintf(one, sizeof(one), "%s{\"metadata\":{\"name\":\"n%03d\"},\"status\":{"
                 "\"allocatable\":{\"cpu\":\"100\",\"memory\":\"64Gi\"}}}", i ? "," : "", i);
        strcat(nodes, one);
    }
    strcat(nodes, "]");
    sched_fixture_init(&fx, "profiles:\n- percentageOfNodesToScore: 10\n  plugins:\n"
                            "    multiPoint:\n      enabled: [{name: ResourceFit}]\n", nodes);
    sched_add(&fx, pod_json(buf, sizeof(buf), "p", 100, NULL, NULL, NULL));
    CHECK_INT_EQ(fx.fw->stats.nodes_scanned, 100); /* the floor of 100 feasible nodes */
    sched_add(&fx, pod_json(buf, sizeof(buf), "q", 100, NULL, NULL, NULL));
    CHECK_INT_EQ(fx.fw->stats.nodes_scanned, 200);
    CHECK_INT_EQ(fx.fw->profiles[0].next_start % 200, 0); /* the second scan reached the end */
    sched_fixture_free(&fx);
    free(nodes);
}

static void test_unknown_scheduler_and_duplicates(void)
{
    struct sched_fixture fx;
    char buf[2048];
    sched_fixture_init(&fx, base_profile, "[" GPU_NODE("a", "T4", "1", "8") "]");
    struct corral_pod *p = sched_add(&fx, pod_json(buf, sizeof(buf), "other", 100, NULL, NULL,
                                                   "\"schedulerName\":\"someone-else\""));
    CHECK(p->state == CORRAL_POD_NEW);
    CHECK_INT_EQ(p->profile, -1);
    struct corral_pod *dup;
    char err[256];
    CHECK_INT_EQ(corral_pod_new(json_loads(pod_json(buf, sizeof(buf), "other", 1, NULL, NULL,
                                                    NULL), 0, NULL), &dup, err, sizeof(err)), 0);
    CHECK_INT_EQ(corral_fw_add_pod(fx.fw, dup), CORRAL_EEXISTS);
    corral_fw_remove_pod(fx.fw, p);
    CHECK(corral_fw_find_pod(fx.fw, "default", "other") == NULL);
    sched_fixture_free(&fx);
}

static void test_bound_pods(void)
{
    struct sched_fixture fx;
    char buf[2048], err[256];
    sched_fixture_init(&fx, base_profile, "[" GPU_NODE("a", "T4", "2", "8") "]");
    struct corral_pod *p;
    CHECK_INT_EQ(corral_pod_new(json_loads(pod_json(buf, sizeof(buf), "old", 100,
                                                    "\"corral.io/gpu-milli\":\"500\"",
                                                    "\"corral.io/assigned-gpus\":\"1\","
                                                    "\"corral.io/assigned-gpu-milli\":\"500\"",
                                                    NULL), 0, NULL), &p, err, sizeof(err)), 0);
    CHECK_INT_EQ(corral_fw_add_bound_pod(fx.fw, p, "a"), 0);
    CHECK_INT_EQ(fx.snap->nodes[0].gpus[1].free_milli, 500);
    CHECK(p->state == CORRAL_POD_BOUND);
    CHECK_INT_EQ(corral_pod_new(json_loads(pod_json(buf, sizeof(buf), "lost", 100, NULL, NULL,
                                                    NULL), 0, NULL), &p, err, sizeof(err)), 0);
    CHECK_INT_EQ(corral_fw_add_bound_pod(fx.fw, p, "nowhere"), CORRAL_ENOTFOUND);
    corral_fw_remove_pod(fx.fw, corral_fw_find_pod(fx.fw, "default", "old"));
    CHECK_INT_EQ(fx.snap->nodes[0].gpus[1].free_milli, 1000);
    sched_fixture_free(&fx);
}

/*
 * The class memo answers only for pods whose active node-local plugins all set NODE_CLASS:
 * NodeAffinity may read node names, so a pod with required affinity is evaluated node by node
 * (and matchFields on the name works), while a pod without affinity (NodeAffinity skips) is
 * answered from equal nodes.
 */
static void test_class_memo_scope(void)
{
    struct sched_fixture fx;
    char buf[2048];
    static const char profile[] =
        "profiles:\n- schedulerName: default-scheduler\n  tieBreak: first\n  plugins:\n"
        "    multiPoint:\n      enabled: [{name: NodeAffinity}, {name: ResourceFit}]\n";
    sched_fixture_init(&fx, profile,
                       "[" GPU_NODE("a", "T4", "1", "8") "," GPU_NODE("b", "T4", "1", "8") ","
                       GPU_NODE("c", "T4", "1", "8") "]");
    static const char affinity[] =
        "\"affinity\":{\"nodeAffinity\":{\"requiredDuringSchedulingIgnoredDuringExecution\":"
        "{\"nodeSelectorTerms\":[{\"matchFields\":[{\"key\":\"metadata.name\","
        "\"operator\":\"In\",\"values\":[\"c\"]}]}]}}}";
    struct corral_pod *p = sched_add(&fx, pod_json(buf, sizeof(buf), "pinned", 1000, NULL, NULL,
                                                   affinity));
    CHECK_STR_EQ(sched_node_of(&fx, p), "c");
    CHECK_INT_EQ(fx.fw->stats.class_hits, 0);
    CHECK_INT_EQ(fx.fw->stats.nodes_evaluated, 3);
    p = sched_add(&fx, pod_json(buf, sizeof(buf), "free", 1000, NULL, NULL, NULL));
    CHECK_STR_EQ(sched_node_of(&fx, p), "a");
    CHECK_INT_EQ(fx.fw->stats.class_hits, 1); /* b is answered from a; c differs (a pod on it) */
    CHECK_INT_EQ(fx.fw->stats.nodes_evaluated, 5);
    sched_fixture_free(&fx);
}

/* host->column_min, added at the end of the host table: present, and right for any column. */
static void test_host_column_min(void)
{
    struct sched_fixture fx;
    char buf[2048];
    sched_fixture_init(&fx, base_profile,
                       "[" GPU_NODE("a", "T4", "1", "8") "," GPU_NODE("b", "T4", "2", "16") "]");
    const struct corral_host *h = &fx.fw->profiles[0].plugins[0]->host;
    CHECK(CORRAL_HOST_HAS(h, column_min));
    CHECK_INT_EQ(h->column_min(h, CORRAL_COL_ALLOC_CPU), 8000);
    CHECK_INT_EQ(h->column_min(h, CORRAL_COL_MIN_PRIORITY), INT64_MAX);
    sched_add(&fx, pod_json(buf, sizeof(buf), "p", 1000, NULL, NULL, "\"priority\":7"));
    CHECK_INT_EQ(h->column_min(h, CORRAL_COL_MIN_PRIORITY), 7);
    CHECK_INT_EQ(h->column_min(h, CORRAL_COL_COUNT), INT64_MAX);
    sched_fixture_free(&fx);
}

/*
 * Score groups and the heap pick the same nodes: a replay with room for 5, 6 or 7 score groups
 * (so they overflow and the heap takes over, and back at the next rebuild) places every pod as
 * a replay without any cache does.
 */
static void test_score_groups_exact(void)
{
    char nodes[16384] = "[", buf[2048];
    for (int i = 0; i < 30; i++) {
        char one[512];
        snprintf(one, sizeof(one), "%s{\"metadata\":{\"name\":\"n%02d\"},\"status\":{"
                 "\"allocatable\":{\"cpu\":\"%d\",\"memory\":\"64Gi\"}}}",
                 i ? "," : "", i, 8 + 4 * (i % 5));
        strcat(nodes, one);
    }
    strcat(nodes, "]");
    static const char profile[] =
        "profiles:\n- schedulerName: default-scheduler\n  tieBreak: first\n  plugins:\n"
        "    multiPoint:\n      enabled: [{name: MostAllocated}, {name: ResourceFit}]\n";
    struct sched_fixture ref;
    sched_fixture_init(&ref, profile, nodes);
    ref.fw->no_cache = true;
    struct sched_fixture fx[3];
    for (int k = 0; k < 3; k++) {
        sched_fixture_init(&fx[k], profile, nodes);
        fx[k].fw->max_score_groups = (uint32_t)k + 5; /* 5 node sizes: 5 scores at first */
    }
    for (int i = 0; i < 120; i++) {
        char name[32];
        snprintf(name, sizeof(name), "p%d", i);
        pod_json(buf, sizeof(buf), name, 500 + 250 * (i % 7), NULL, NULL, NULL);
        const char *want = sched_node_of(&ref, sched_add(&ref, buf));
        for (int k = 0; k < 3; k++)
            CHECK_STR_EQ(sched_node_of(&fx[k], sched_add(&fx[k], buf)), want);
    }
    for (int k = 0; k < 3; k++)
        sched_fixture_free(&fx[k]);
    sched_fixture_free(&ref);
}

CORRAL_TESTS(CORRAL_TEST(explanation), CORRAL_TEST(cache_is_exact), CORRAL_TEST(tie_break),
             CORRAL_TEST(gpu_assignment), CORRAL_TEST(percentage_of_nodes),
             CORRAL_TEST(unknown_scheduler_and_duplicates), CORRAL_TEST(bound_pods),
             CORRAL_TEST(class_memo_scope), CORRAL_TEST(host_column_min),
             CORRAL_TEST(score_groups_exact))
