/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cluster snapshot: reading Node objects, per-GPU tables, accounting, generations, node
 * classes.
 */
#include "error.h"
#include "harness.h"
#include "snapshot.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>

static const char h100_node[] =
    "{\"metadata\":{\"name\":\"h\",\"labels\":{\"corral.io/gpu.model\":\"H100-SXM5-80GB\"},"
    "\"annotations\":{\"corral.io/gpus\":\"[{\\\"index\\\":1,\\\"uuid\\\":\\\"GPU-b\\\","
    "\\\"model\\\":\\\"H100-SXM5-80GB\\\",\\\"memoryMiB\\\":81559,\\\"computeCapability\\\":"
    "\\\"9.0\\\",\\\"class\\\":\\\"datacenter-training\\\",\\\"numaNode\\\":1,\\\"island\\\":0,"
    "\\\"nvlink\\\":[{\\\"peer\\\":0,\\\"bandwidthMBps\\\":150000}]},{\\\"index\\\":0,"
    "\\\"uuid\\\":\\\"GPU-a\\\",\\\"rtCores\\\":false,\\\"numaNode\\\":0,\\\"island\\\":0}]\"}},"
    "\"spec\":{\"taints\":[{\"key\":\"gpu\",\"value\":\"h100\",\"effect\":\"NoSchedule\"}]},"
    "\"status\":{\"allocatable\":{\"cpu\":\"16\",\"memory\":\"64Gi\",\"pods\":\"20\","
    "\"nvidia.com/gpu\":\"2\",\"example.com/fpga\":\"1\"}}}";

static int add(struct corral_snapshot *s, const char *js, char *err, size_t len)
{
    json_error_t je;
    json_t *obj = json_loads(js, 0, &je);
    CHECK(obj != NULL);
    return corral_snapshot_upsert_node(s, obj, err, len);
}

static struct corral_pod *pod(const char *name, const char *limits)
{
    char js[512], err[256];
    snprintf(js, sizeof(js), "{\"metadata\":{\"name\":\"%s\"},\"spec\":{\"containers\":[{"
             "\"name\":\"c\",\"resources\":{\"requests\":{\"cpu\":\"2\",\"memory\":\"1Gi\"},"
             "\"limits\":{%s}}}]}}", name, limits);
    struct corral_pod *p = NULL;
    CHECK_INT_EQ(corral_pod_new(json_loads(js, 0, NULL), &p, err, sizeof(err)), 0);
    return p;
}

static void test_node_from_annotation(void)
{
    struct corral_snapshot *s = corral_snapshot_new();
    char err[256];
    int slot = add(s, h100_node, err, sizeof(err));
    CHECK_INT_EQ(slot, 0);
    const struct corral_snap_node *nd = &s->nodes[0];
    CHECK_INT_EQ(nd->n_gpus, 2);
    CHECK_INT_EQ(nd->gpus[0].index, 0); /* sorted by index */
    CHECK_STR_EQ(nd->gpus[0].uuid, "GPU-a");
    CHECK_STR_EQ(nd->gpus[1].uuid, "GPU-b");
    CHECK_INT_EQ(nd->gpus[1].memory_mib, 81559);
    CHECK_INT_EQ(nd->gpus[1].cc_major, 9);
    CHECK_STR_EQ(nd->gpus[1].gpu_class, "datacenter-training");
    CHECK_STR_EQ(nd->gpus[0].model, "H100-SXM5-80GB"); /* from the labels */
    CHECK(nd->gpus[1].flags & CORRAL_GPU_NVLINK);
    CHECK(nd->links != NULL);
    CHECK_INT_EQ(nd->links[0 * 2 + 1], 150000);
    CHECK_INT_EQ(nd->n_taints, 1);
    CHECK_STR_EQ(nd->taints[0].effect, "NoSchedule");
    CHECK_INT_EQ(s->col[CORRAL_COL_ALLOC_CPU][0], 16000);
    CHECK_INT_EQ(s->col[CORRAL_COL_ALLOC_PODS][0], 20);
    CHECK_INT_EQ(s->col[CORRAL_COL_FREE_WHOLE_GPUS][0], 2);
    CHECK_INT_EQ(corral_snapshot_ext_alloc(s, 0, "example.com/fpga"), 1);
    CHECK_INT_EQ(s->total_gpu_milli, 2000);
    corral_snapshot_free(s);
}

static void test_node_from_labels(void)
{
    struct corral_snapshot *s = corral_snapshot_new();
    char err[256];
    CHECK_INT_EQ(add(s, "{\"metadata\":{\"name\":\"t4\",\"labels\":{\"nvidia.com/gpu.product\":"
                        "\"Tesla-T4\",\"nvidia.com/gpu.memory\":\"15360\",\"corral.io/gpu.rt-cores\":"
                        "\"true\"}},\"status\":{\"capacity\":{\"cpu\":\"8\",\"nvidia.com/gpu\":3}}}",
                     err, sizeof(err)), 0);
    CHECK_INT_EQ(s->nodes[0].n_gpus, 3);
    CHECK_INT_EQ(s->nodes[0].gpus[2].index, 2);
    CHECK_STR_EQ(s->nodes[0].gpus[2].model, "Tesla-T4");
    CHECK(s->nodes[0].gpus[0].flags & CORRAL_GPU_RT_CORES);
    CHECK_INT_EQ(s->nodes[0].gpus[0].memory_mib, 15360);
    CHECK_INT_EQ(s->col[CORRAL_COL_ALLOC_PODS][0], 110);
    corral_snapshot_free(s);
}

static void test_bad_nodes(void)
{
    struct corral_snapshot *s = corral_snapshot_new();
    char err[256];
    CHECK_INT_EQ(add(s, "{\"metadata\":{}}", err, sizeof(err)), CORRAL_EINVALID);
    CHECK_STR_EQ(err, "metadata.name: Required value");
    CHECK_INT_EQ(add(s, "{\"metadata\":{\"name\":\"x\"},\"status\":{\"allocatable\":{"
                        "\"cpu\":\"many\"}}}", err, sizeof(err)), CORRAL_EINVALID);
    CHECK_STR_EQ(err, "status.allocatable[cpu]: not a valid non-negative quantity");
    CHECK_INT_EQ(add(s, "{\"metadata\":{\"name\":\"x\",\"annotations\":{\"corral.io/gpus\":"
                        "\"nope\"}}}", err, sizeof(err)), CORRAL_EINVALID);
    CHECK_STR_CONTAINS(err, "annotation corral.io/gpus: not a JSON array");
    CHECK_INT_EQ(add(s, "{\"metadata\":{\"name\":\"x\"},\"spec\":{\"taints\":[{\"key\":\"k\"}]}}",
                     err, sizeof(err)), CORRAL_EINVALID);
    CHECK_STR_EQ(err, "spec.taints[0]: key and effect are required");
    CHECK_INT_EQ(s->live, 0);
    corral_snapshot_free(s);
}

static void test_place_unplace(void)
{
    struct corral_snapshot *s = corral_snapshot_new();
    char err[256];
    CHECK_INT_EQ(add(s, h100_node, err, sizeof(err)), 0);
    struct corral_pod *a = pod("a", "\"corral.io/gpu-milli\":\"300\"");
    struct corral_pod *b = pod("b", "\"nvidia.com/gpu\":1");
    uint64_t g0 = s->gen[0];
    CHECK_INT_EQ(corral_snapshot_place(s, a, 0, 1, 300), 0);
    CHECK(s->gen[0] > g0);
    CHECK_INT_EQ(s->nodes[0].gpus[0].free_milli, 700);
    CHECK_INT_EQ(s->col[CORRAL_COL_FREE_WHOLE_GPUS][0], 1);
    CHECK_INT_EQ(s->col[CORRAL_COL_MAX_GPU_FREE][0], 1000);
    CHECK_INT_EQ(s->col[CORRAL_COL_REQ_CPU][0], 2000);
    CHECK_INT_EQ(corral_snapshot_place(s, b, 0, 1, 1000), -EINVAL); /* GPU 0 is not whole */
    CHECK_INT_EQ(corral_snapshot_place(s, b, 0, 2, 1000), 0);
    CHECK_INT_EQ(s->used_gpu_milli, 1300);
    CHECK_INT_EQ(s->col[CORRAL_COL_REQ_PODS][0], 2);
    CHECK_INT_EQ(corral_snapshot_unplace(s, a), 0);
    CHECK_INT_EQ(s->used_gpu_milli, 1000);
    CHECK_INT_EQ(s->nodes[0].gpus[0].free_milli, 1000);
    CHECK_INT_EQ(corral_snapshot_unplace(s, a), -EINVAL);
    CHECK_INT_EQ(corral_snapshot_remove_node(s, "h", NULL, NULL), 0);
    CHECK(b->node == CORRAL_NO_NODE);
    CHECK_INT_EQ(s->used_gpu_milli, 0);
    CHECK_INT_EQ(s->total_gpu_milli, 0);
    CHECK_INT_EQ(corral_snapshot_remove_node(s, "h", NULL, NULL), CORRAL_ENOTFOUND);
    /* the freed slot is reused */
    CHECK_INT_EQ(add(s, h100_node, err, sizeof(err)), 0);
    CHECK_INT_EQ(s->live, 1);
    corral_pod_free(a);
    corral_pod_free(b);
    corral_snapshot_free(s);
}

static void test_update_keeps_pods(void)
{
    struct corral_snapshot *s = corral_snapshot_new();
    char err[256];
    CHECK_INT_EQ(add(s, h100_node, err, sizeof(err)), 0);
    struct corral_pod *a = pod("a", "\"nvidia.com/gpu\":1");
    CHECK_INT_EQ(corral_snapshot_place(s, a, 0, 2, 1000), 0);
    CHECK_INT_EQ(add(s, h100_node, err, sizeof(err)), 0); /* same name: an update */
    CHECK_INT_EQ(s->live, 1);
    CHECK_INT_EQ(s->nodes[0].n_pods, 1);
    CHECK_INT_EQ(s->nodes[0].gpus[1].free_milli, 0);
    CHECK_INT_EQ(s->col[CORRAL_COL_REQ_CPU][0], 2000);
    CHECK_INT_EQ(s->used_gpu_milli, 1000);
    corral_snapshot_unplace(s, a);
    corral_pod_free(a);
    corral_snapshot_free(s);
}

/* A two-GPU node with the caller's name (also its hostname label), GPU UUIDs and zone. */
static int add_h100(struct corral_snapshot *s, const char *name, const char *uuid,
                    const char *zone)
{
    char js[2048], err[256];
    snprintf(js, sizeof(js),
             "{\"metadata\":{\"name\":\"%s\",\"labels\":{\"zone\":\"%s\","
             "\"kubernetes.io/hostname\":\"%s\"},"
             "\"annotations\":{\"corral.io/gpus\":\"[{\\\"index\\\":0,\\\"uuid\\\":"
             "\\\"%s-0\\\",\\\"island\\\":0},{\\\"index\\\":1,\\\"uuid\\\":"
             "\\\"%s-1\\\",\\\"island\\\":0}]\"}},"
             "\"status\":{\"allocatable\":{\"cpu\":\"16\",\"memory\":\"64Gi\","
             "\"nvidia.com/gpu\":\"2\"}}}",
             name, zone, name, uuid, uuid);
    int slot = add(s, js, err, sizeof(err));
    if (slot < 0)
        fprintf(stderr, "%s\n", err);
    return slot;
}

static void test_node_classes(void)
{
    struct corral_snapshot *s = corral_snapshot_new();
    int a = add_h100(s, "a", "GPU-A", "z1"), b = add_h100(s, "b", "GPU-B", "z1");
    int c = add_h100(s, "c", "GPU-C", "z2");
    CHECK(a >= 0 && b >= 0 && c >= 0);
    uint64_t ca = corral_snapshot_class(s, (uint32_t)a);
    CHECK(ca != 0);
    CHECK_INT_EQ(corral_snapshot_class(s, (uint32_t)b), ca); /* names, UUIDs do not count */
    CHECK(corral_snapshot_class(s, (uint32_t)c) != ca);      /* labels do */
    /* a pod on a: a leaves b's class; the same pod on b brings them together again */
    struct corral_pod *p1 = pod("p1", "\"corral.io/gpu-milli\":\"300\"");
    struct corral_pod *p2 = pod("p2", "\"corral.io/gpu-milli\":\"300\"");
    CHECK_INT_EQ(corral_snapshot_place(s, p1, (uint32_t)a, 1, 300), 0);
    uint64_t ca1 = corral_snapshot_class(s, (uint32_t)a);
    CHECK(ca1 != 0 && ca1 != ca);
    CHECK_INT_EQ(corral_snapshot_class(s, (uint32_t)b), ca);
    CHECK_INT_EQ(corral_snapshot_place(s, p2, (uint32_t)b, 2, 300), 0); /* other GPU */
    CHECK(corral_snapshot_class(s, (uint32_t)b) != ca1);
    CHECK_INT_EQ(corral_snapshot_unplace(s, p2), 0);
    CHECK_INT_EQ(corral_snapshot_place(s, p2, (uint32_t)b, 1, 300), 0);
    CHECK_INT_EQ(corral_snapshot_class(s, (uint32_t)b), ca1);
    /* after unplacing, a is back in its first class */
    CHECK_INT_EQ(corral_snapshot_unplace(s, p1), 0);
    CHECK_INT_EQ(corral_snapshot_class(s, (uint32_t)a), ca);
    /* pods with host ports keep their node apart */
    char js[512], err[256];
    snprintf(js, sizeof(js), "{\"metadata\":{\"name\":\"web\"},\"spec\":{\"containers\":[{"
             "\"name\":\"c\",\"ports\":[{\"containerPort\":80,\"hostPort\":8080}]}]}}");
    struct corral_pod *web = NULL;
    CHECK_INT_EQ(corral_pod_new(json_loads(js, 0, NULL), &web, err, sizeof(err)), 0);
    CHECK(web->host_ports);
    CHECK_INT_EQ(corral_snapshot_place(s, web, (uint32_t)c, 0, 0), 0);
    CHECK_INT_EQ(corral_snapshot_class(s, (uint32_t)c), 0);
    CHECK_INT_EQ(corral_snapshot_unplace(s, web), 0);
    CHECK(corral_snapshot_class(s, (uint32_t)c) != 0);
    /* replacing a node with a different one gives it a new fixed description */
    CHECK_INT_EQ(add(s, "{\"metadata\":{\"name\":\"a\"},\"status\":{\"allocatable\":"
                        "{\"cpu\":\"4\"}}}", err, sizeof(err)), a);
    CHECK(corral_snapshot_class(s, (uint32_t)a) != ca);
    CHECK(corral_snapshot_class(s, (uint32_t)a) != 0);
    corral_snapshot_unplace(s, p2);
    corral_pod_free(p1);
    corral_pod_free(p2);
    corral_pod_free(web);
    corral_snapshot_free(s);
}

/* Many distinct states: the class table empties itself and ids stay unique. */
static void test_node_class_table_reset(void)
{
    struct corral_snapshot *s = corral_snapshot_new();
    CHECK(add_h100(s, "a", "GPU-A", "z") == 0 && add_h100(s, "b", "GPU-B", "z") == 1);
    uint64_t first = corral_snapshot_class(s, 0), last = first;
    struct corral_pod *p = pod("p", "\"corral.io/gpu-milli\":\"1\"");
    for (int32_t k = 0; k < 2000; k++) { /* 2000 states of node a */
        CHECK_INT_EQ(corral_snapshot_place(s, p, 0, 1ull << (k / 1000), 1 + k % 1000), 0);
        uint64_t c = corral_snapshot_class(s, 0);
        CHECK(c > last);
        last = c;
        CHECK_INT_EQ(corral_snapshot_unplace(s, p), 0);
    }
    /* the table was emptied on the way: equal nodes now get a new, common id */
    uint64_t a = corral_snapshot_class(s, 0);
    CHECK(a != 0);
    CHECK_INT_EQ(corral_snapshot_class(s, 1), a);
    CHECK(a != first);
    corral_pod_free(p);
    corral_snapshot_free(s);
}

/* The lowest pod priority over the cluster follows placements, removals and node changes. */
static void test_min_priority_floor(void)
{
    struct corral_snapshot *s = corral_snapshot_new();
    CHECK(add_h100(s, "a", "GPU-A", "z") == 0 && add_h100(s, "b", "GPU-B", "z") == 1);
    CHECK_INT_EQ(corral_snapshot_min_priority(s), INT64_MAX);
    struct corral_pod *p[3] = {pod("p0", ""), pod("p1", ""), pod("p2", "")};
    p[0]->priority = 5;
    p[1]->priority = 3;
    p[2]->priority = 3;
    CHECK_INT_EQ(corral_snapshot_place(s, p[0], 0, 0, 0), 0);
    CHECK_INT_EQ(corral_snapshot_min_priority(s), 5);
    CHECK_INT_EQ(corral_snapshot_place(s, p[1], 0, 0, 0), 0);
    CHECK_INT_EQ(corral_snapshot_place(s, p[2], 1, 0, 0), 0);
    CHECK_INT_EQ(corral_snapshot_min_priority(s), 3);
    CHECK_INT_EQ(corral_snapshot_unplace(s, p[1]), 0); /* b still holds a 3 */
    CHECK_INT_EQ(corral_snapshot_min_priority(s), 3);
    CHECK_INT_EQ(corral_snapshot_unplace(s, p[2]), 0); /* the last 3 left */
    CHECK_INT_EQ(corral_snapshot_min_priority(s), 5);
    CHECK_INT_EQ(corral_snapshot_place(s, p[2], 1, 0, 0), 0);
    CHECK_INT_EQ(corral_snapshot_remove_node(s, "b", NULL, NULL), 0); /* p2 is unplaced */
    CHECK_INT_EQ(corral_snapshot_min_priority(s), 5);
    CHECK_INT_EQ(corral_snapshot_unplace(s, p[0]), 0);
    CHECK_INT_EQ(corral_snapshot_min_priority(s), INT64_MAX);
    for (int i = 0; i < 3; i++)
        corral_pod_free(p[i]);
    corral_snapshot_free(s);
}

CORRAL_TESTS(CORRAL_TEST(node_from_annotation), CORRAL_TEST(node_from_labels),
             CORRAL_TEST(bad_nodes), CORRAL_TEST(place_unplace), CORRAL_TEST(update_keeps_pods),
             CORRAL_TEST(node_classes), CORRAL_TEST(node_class_table_reset),
             CORRAL_TEST(min_priority_floor))
