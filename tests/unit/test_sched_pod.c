/* SPDX-License-Identifier: Apache-2.0 */
/* The scheduler's view of a Pod: effective requests, GPU requests, validation, signature. */
#include "error.h"
#include "harness.h"
#include "pod.h"

#include <jansson.h>
#include <string.h>

static struct corral_pod *parse(const char *js, int want_rc, char *err, size_t errlen)
{
    json_error_t je;
    json_t *obj = json_loads(js, 0, &je);
    CHECK(obj != NULL);
    struct corral_pod *pod = NULL;
    int rc = corral_pod_new(obj, &pod, err, errlen);
    CHECK_INT_EQ(rc, want_rc);
    return pod;
}

static void test_requests_sum_and_init_max(void)
{
    char err[256];
    struct corral_pod *pod = parse(
        "{\"metadata\":{\"name\":\"p\"},\"spec\":{"
        "\"initContainers\":[{\"name\":\"i\",\"resources\":{\"requests\":{\"cpu\":\"3\"}}}],"
        "\"containers\":[{\"name\":\"a\",\"resources\":{\"requests\":{\"cpu\":\"500m\","
        "\"memory\":\"1Gi\"}}},{\"name\":\"b\",\"resources\":{\"limits\":{\"cpu\":\"1\","
        "\"memory\":\"512Mi\",\"example.com/fpga\":\"2\"}}}],"
        "\"overhead\":{\"cpu\":\"100m\"}}}", 0, err, sizeof(err));
    CHECK_INT_EQ(pod->req[CORRAL_RES_CPU], 3100); /* max(3000, 1500) + 100 overhead */
    CHECK_INT_EQ(pod->req[CORRAL_RES_MEMORY], 1536ll << 20);
    CHECK_INT_EQ(pod->req[CORRAL_RES_PODS], 1);
    CHECK_INT_EQ(pod->n_ext, 1);
    CHECK_STR_EQ(pod->ext[0].name, "example.com/fpga");
    CHECK_INT_EQ(pod->ext[0].value, 2);
    CHECK_STR_EQ(pod->ns, "default");
    CHECK_STR_EQ(pod->scheduler_name, "default-scheduler");
    CHECK(!corral_pod_wants_gpu(pod));
    corral_pod_free(pod);
}

static void test_sidecar_adds(void)
{
    char err[256];
    struct corral_pod *pod = parse(
        "{\"metadata\":{\"name\":\"p\"},\"spec\":{"
        "\"initContainers\":[{\"name\":\"s\",\"restartPolicy\":\"Always\","
        "\"resources\":{\"requests\":{\"cpu\":\"1\"}}}],"
        "\"containers\":[{\"name\":\"a\",\"resources\":{\"requests\":{\"cpu\":\"2\"}}}]}}",
        0, err, sizeof(err));
    CHECK_INT_EQ(pod->req[CORRAL_RES_CPU], 3000);
    corral_pod_free(pod);
}

static void test_gpu_requests(void)
{
    char err[256];
    struct corral_pod *pod = parse(
        "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"name\":\"a\","
        "\"resources\":{\"limits\":{\"nvidia.com/gpu\":4}}}]}}", 0, err, sizeof(err));
    CHECK_INT_EQ(pod->req[CORRAL_RES_GPU], 4);
    CHECK_INT_EQ(corral_pod_gpu_demand(pod), 4000);
    corral_pod_free(pod);
    pod = parse("{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"name\":\"a\","
                "\"resources\":{\"limits\":{\"corral.io/gpu-milli\":\"250\"}}}]}}",
                0, err, sizeof(err));
    CHECK_INT_EQ(pod->req[CORRAL_RES_GPU_MILLI], 250);
    CHECK_INT_EQ(pod->req[CORRAL_RES_GPU], 0);
    CHECK(corral_pod_wants_gpu(pod));
    corral_pod_free(pod);
}

static void test_invalid_pods(void)
{
    char err[256];
    parse("{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"name\":\"a\","
          "\"resources\":{\"limits\":{\"corral.io/gpu-milli\":\"1000\"}}}]}}",
          CORRAL_EINVALID, err, sizeof(err));
    CHECK_STR_CONTAINS(err, "must be between 1 and 999 (use nvidia.com/gpu for whole GPUs)");
    parse("{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"name\":\"a\","
          "\"resources\":{\"limits\":{\"corral.io/gpu-milli\":\"100\",\"nvidia.com/gpu\":1}}}]}}",
          CORRAL_EINVALID, err, sizeof(err));
    CHECK_STR_CONTAINS(err, "cannot be requested together");
    parse("{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"name\":\"a\","
          "\"resources\":{\"limits\":{\"nvidia.com/gpu\":\"1500m\"}}}]}}",
          CORRAL_EINVALID, err, sizeof(err));
    CHECK_STR_CONTAINS(err, "whole number of GPUs");
    parse("{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"name\":\"a\","
          "\"resources\":{\"requests\":{\"cpu\":\"lots\"}}}]}}", CORRAL_EINVALID, err,
          sizeof(err));
    CHECK_STR_EQ(err, "spec.containers[0].resources.requests[cpu]: not a valid quantity");
    parse("{\"spec\":{}}", CORRAL_EINVALID, err, sizeof(err));
    CHECK_STR_EQ(err, "metadata.name: Required value");
    parse("{\"metadata\":{\"name\":\"p\"},\"spec\":{\"priority\":\"high\"}}", CORRAL_EINVALID,
          err, sizeof(err));
    CHECK_STR_CONTAINS(err, "spec.priority");
    parse("[]", CORRAL_EINVALID, err, sizeof(err));
}

static void test_signature(void)
{
    char err[256];
    struct corral_pod *a = parse("{\"metadata\":{\"name\":\"a\",\"labels\":{\"app\":\"x\"},"
                                 "\"annotations\":{\"corral.io/assigned-gpus\":\"1\"}},"
                                 "\"spec\":{\"nodeName\":\"n1\",\"containers\":[]}}",
                                 0, err, sizeof(err));
    struct corral_pod *b = parse("{\"metadata\":{\"name\":\"b\",\"labels\":{\"app\":\"x\"}},"
                                 "\"spec\":{\"containers\":[]}}", 0, err, sizeof(err));
    struct corral_pod *c = parse("{\"metadata\":{\"name\":\"c\",\"labels\":{\"app\":\"y\"}},"
                                 "\"spec\":{\"containers\":[]}}", 0, err, sizeof(err));
    CHECK_STR_EQ(a->sig, b->sig); /* names, nodeName and assignment annotations are ignored */
    CHECK(a->sig_hash == b->sig_hash);
    CHECK(strcmp(a->sig, c->sig) != 0);
    corral_pod_free(a);
    corral_pod_free(b);
    corral_pod_free(c);
}

CORRAL_TESTS(CORRAL_TEST(requests_sum_and_init_max), CORRAL_TEST(sidecar_adds),
             CORRAL_TEST(gpu_requests), CORRAL_TEST(invalid_pods), CORRAL_TEST(signature))
