/* SPDX-License-Identifier: Apache-2.0 */
/* Priority (queue order, preemption) and Coscheduling (gangs through PreEnqueue and Permit). */
#include "sched_helpers.h"

static const char profile[] =
    "profiles:\n"
    "- schedulerName: default-scheduler\n"
    "  tieBreak: first\n"
    "  plugins:\n"
    "    multiPoint:\n"
    "      enabled: [{name: Priority}, {name: Coscheduling}, {name: ResourceFit}]\n"
    "  pluginConfig:\n"
    "  - name: Coscheduling\n"
    "    args: {scheduleTimeoutSeconds: 30}\n";

#define NODE(name, cpu, gpus)                                                                      \
    "{\"metadata\":{\"name\":\"" name "\"},\"status\":{\"allocatable\":{\"cpu\":\"" cpu           \
    "\",\"memory\":\"64Gi\",\"nvidia.com/gpu\":\"" gpus "\"}}}"

static struct corral_pod *make(const char *name, int prio, int cpu, const char *gpu,
                               const char *labels, const char *ann, const char *extra)
{
    char buf[4096], err[256];
    snprintf(buf, sizeof(buf),
             "{\"metadata\":{\"name\":\"%s\",\"labels\":{%s},\"annotations\":{%s}},"
             "\"spec\":{\"priority\":%d,%s\"containers\":[{\"name\":\"c\",\"resources\":{"
             "\"requests\":{\"cpu\":\"%dm\"},\"limits\":{%s}}}]}}",
             name, labels ? labels : "", ann ? ann : "", prio, extra ? extra : "", cpu,
             gpu ? gpu : "");
    struct corral_pod *pod;
    CHECK_INT_EQ(corral_pod_new(json_loads(buf, 0, NULL), &pod, err, sizeof(err)), 0);
    return pod;
}

static void run(struct sched_fixture *fx)
{
    corral_fw_retry_gated(fx->fw);
    while (corral_fw_schedule_next(fx->fw, NULL, NULL))
        ;
    corral_fw_process_waiting(fx->fw, false);
}

static void test_queue_order(void)
{
    struct sched_fixture fx;
    sched_fixture_init(&fx, profile, "[" NODE("n", "1", "0") "]");
    /* queued together: the high-priority pod is scheduled first and gets the only room */
    CHECK_INT_EQ(corral_fw_add_pod(fx.fw, make("low", 1, 1000, NULL, NULL, NULL, NULL)), 0);
    CHECK_INT_EQ(corral_fw_add_pod(fx.fw, make("high", 100, 1000, NULL, NULL, NULL, NULL)), 0);
    run(&fx);
    CHECK_STR_EQ(sched_node_of(&fx, corral_fw_find_pod(fx.fw, "default", "high")), "n");
    CHECK_STR_EQ(sched_node_of(&fx, corral_fw_find_pod(fx.fw, "default", "low")), "");
    sched_fixture_free(&fx);
}

static void test_preemption(void)
{
    struct sched_fixture fx;
    sched_fixture_init(&fx, profile, "[" NODE("a", "4", "2") "," NODE("b", "4", "2") "]");
    CHECK_INT_EQ(corral_fw_add_pod(fx.fw, make("a1", 10, 100, "\"nvidia.com/gpu\":1", NULL, NULL,
                                               NULL)), 0);
    CHECK_INT_EQ(corral_fw_add_pod(fx.fw, make("a2", 1, 100, "\"nvidia.com/gpu\":1", NULL, NULL,
                                               NULL)), 0);
    CHECK_INT_EQ(corral_fw_add_pod(fx.fw, make("b1", 5, 100, "\"nvidia.com/gpu\":2", NULL, NULL,
                                               NULL)), 0);
    run(&fx);
    CHECK_INT_EQ(fx.snap->used_gpu_milli, 4000);
    /* a 1-GPU pod of priority 8: evicting a2 (priority 1) is cheaper than b1 (5) */
    CHECK_INT_EQ(corral_fw_add_pod(fx.fw, make("hi", 8, 100, "\"nvidia.com/gpu\":1", NULL, NULL,
                                               NULL)), 0);
    run(&fx);
    CHECK_INT_EQ(fx.evicted, 1);
    struct corral_pod *a2 = corral_fw_find_pod(fx.fw, "default", "a2");
    CHECK(a2->state == CORRAL_POD_FAILED);
    CHECK_STR_CONTAINS(a2->message, "preempted by default/hi on node a");
    CHECK_STR_EQ(sched_node_of(&fx, corral_fw_find_pod(fx.fw, "default", "hi")), "a");
    /* nothing of lower priority is left to evict for a priority-1 pod */
    CHECK_INT_EQ(corral_fw_add_pod(fx.fw, make("lo", 1, 100, "\"nvidia.com/gpu\":1", NULL, NULL,
                                               NULL)), 0);
    run(&fx);
    CHECK_INT_EQ(fx.evicted, 1);
    /* preemptionPolicy: Never */
    CHECK_INT_EQ(corral_fw_add_pod(fx.fw, make("polite", 100, 100, "\"nvidia.com/gpu\":1", NULL,
                                               NULL, "\"preemptionPolicy\":\"Never\",")), 0);
    run(&fx);
    CHECK_INT_EQ(fx.evicted, 1);
    CHECK_STR_EQ(sched_node_of(&fx, corral_fw_find_pod(fx.fw, "default", "polite")), "");
    sched_fixture_free(&fx);
}

#define GANG "\"scheduling.x-k8s.io/pod-group\":\"train\""

static void test_gang_all_or_nothing(void)
{
    struct sched_fixture fx;
    sched_fixture_init(&fx, profile, "[" NODE("a", "64", "4") "," NODE("b", "64", "2") "]");
    json_array_append_new(fx.objects,
                          json_pack("{s:s, s:s, s:{s:s}, s:{s:i}}", "apiVersion",
                                    "scheduling.x-k8s.io/v1alpha1", "kind", "PodGroup", "metadata",
                                    "name", "train", "spec", "minMember", 3));
    /* the first two are gated: the group is not complete */
    CHECK_INT_EQ(corral_fw_add_pod(fx.fw, make("w0", 0, 100, "\"nvidia.com/gpu\":2", GANG, NULL,
                                               NULL)), 0);
    CHECK_INT_EQ(corral_fw_add_pod(fx.fw, make("w1", 0, 100, "\"nvidia.com/gpu\":2", GANG, NULL,
                                               NULL)), 0);
    run(&fx);
    struct corral_pod *w0 = corral_fw_find_pod(fx.fw, "default", "w0");
    CHECK(w0->state == CORRAL_POD_GATED);
    CHECK_STR_CONTAINS(w0->message, "pod group train has 2 of 3 pods");
    /* the third completes it: all three fit (2+2+2 GPUs on 4+2) and are bound together */
    CHECK_INT_EQ(corral_fw_add_pod(fx.fw, make("w2", 0, 100, "\"nvidia.com/gpu\":2", GANG, NULL,
                                               NULL)), 0);
    corral_fw_retry_gated(fx.fw);
    run(&fx);
    for (int i = 0; i < 3; i++) {
        char name[8];
        snprintf(name, sizeof(name), "w%d", i);
        CHECK(corral_fw_find_pod(fx.fw, "default", name)->state == CORRAL_POD_BOUND);
    }
    CHECK_INT_EQ(fx.fw->n_waiting, 0);
    sched_fixture_free(&fx);
}

static void test_gang_rejected_together(void)
{
    struct sched_fixture fx;
    sched_fixture_init(&fx, profile, "[" NODE("a", "64", "4") "]");
    static const char ann[] = "\"scheduling.x-k8s.io/min-member\":\"3\"";
    for (int i = 0; i < 3; i++) {
        char name[8];
        snprintf(name, sizeof(name), "g%d", i);
        CHECK_INT_EQ(corral_fw_add_pod(fx.fw, make(name, 0, 100, "\"nvidia.com/gpu\":2", GANG,
                                                   ann, NULL)), 0);
    }
    corral_fw_retry_gated(fx.fw);
    run(&fx);
    /* two members fit, the third does not: none may stay */
    for (int i = 0; i < 3; i++) {
        char name[8];
        snprintf(name, sizeof(name), "g%d", i);
        struct corral_pod *p = corral_fw_find_pod(fx.fw, "default", name);
        CHECK(p->state == CORRAL_POD_FAILED);
        CHECK(p->node == CORRAL_NO_NODE);
    }
    CHECK_INT_EQ(fx.snap->used_gpu_milli, 0);
    sched_fixture_free(&fx);
}

static void test_gang_timeout(void)
{
    struct sched_fixture fx;
    sched_fixture_init(&fx, profile, "[" NODE("a", "64", "8") "]");
    static const char ann[] = "\"scheduling.x-k8s.io/min-member\":\"2\"";
    /* both members known, but the second has a typo in its request and cannot be scheduled;
     * the first waits in Permit, then times out */
    CHECK_INT_EQ(corral_fw_add_pod(fx.fw, make("t0", 0, 100, "\"nvidia.com/gpu\":1", GANG, ann,
                                               NULL)), 0);
    CHECK_INT_EQ(corral_fw_add_pod(fx.fw, make("t1", 0, 100, "\"nvidia.com/gpu\":16", GANG, ann,
                                               NULL)), 0);
    run(&fx);
    struct corral_pod *t0 = corral_fw_find_pod(fx.fw, "default", "t0");
    CHECK(t0->state == CORRAL_POD_FAILED); /* t1 failed, its Unreserve rejected t0 */
    CHECK_STR_CONTAINS(t0->message, "pod group train rejected");
    sched_fixture_free(&fx);

    sched_fixture_init(&fx, profile, "[" NODE("a", "64", "8") "]");
    CHECK_INT_EQ(corral_fw_add_pod(fx.fw, make("t0", 0, 100, "\"nvidia.com/gpu\":1", GANG, ann,
                                               NULL)), 0);
    struct corral_pod *late = make("t1", 0, 100, "\"nvidia.com/gpu\":1", GANG, ann, NULL);
    /* t1 is known (gated by a scheduling gate of our own making: not yet added) -> t0 gated */
    run(&fx);
    t0 = corral_fw_find_pod(fx.fw, "default", "t0");
    CHECK(t0->state == CORRAL_POD_GATED);
    CHECK_INT_EQ(corral_fw_add_pod(fx.fw, late), 0);
    /* schedule t0 alone: it waits for t1, which we hold back in the queue by not running it */
    corral_fw_retry_gated(fx.fw);
    enum corral_fw_result res;
    struct corral_pod *which;
    CHECK(corral_fw_schedule_next(fx.fw, &res, &which));
    CHECK(res == CORRAL_FW_WAITING);
    fx.clock_ms += 31000;
    corral_fw_process_waiting(fx.fw, false);
    CHECK(which->state == CORRAL_POD_FAILED);
    CHECK_STR_CONTAINS(which->message, "timed out waiting in Permit");
    CHECK_INT_EQ(fx.snap->used_gpu_milli, 0);
    sched_fixture_free(&fx);
}

CORRAL_TESTS(CORRAL_TEST(queue_order), CORRAL_TEST(preemption),
             CORRAL_TEST(gang_all_or_nothing), CORRAL_TEST(gang_rejected_together),
             CORRAL_TEST(gang_timeout))
