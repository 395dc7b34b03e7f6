/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for common/meta, common/status and common/error. */
#include "error.h"
#include "harness.h"
#include "meta.h"
#include "status.h"

#include <errno.h>

static void test_names(void)
{
    CHECK(corral_meta_check_dns_label("web-1") == NULL);
    CHECK(corral_meta_check_dns_label("Web") != NULL);
    CHECK(corral_meta_check_dns_label("-a") != NULL);
    CHECK(corral_meta_check_dns_label("") != NULL);
    CHECK(corral_meta_check_dns_subdomain("a.b-c.d") == NULL);
    CHECK(corral_meta_check_dns_subdomain("a..b") != NULL);
    CHECK(corral_meta_check_label_key("nvidia.com/gpu.product") == NULL);
    CHECK(corral_meta_check_label_key("app") == NULL);
    CHECK(corral_meta_check_label_key("/app") != NULL);
    CHECK(corral_meta_check_label_key("Bad_Prefix/app") != NULL);
    CHECK(corral_meta_check_label_value("") == NULL);
    CHECK(corral_meta_check_label_value("H100-SXM5_80GB") == NULL);
    CHECK(corral_meta_check_label_value("a b") != NULL);
}

static void test_time(void)
{
    char buf[28];
    corral_meta_format_time(0, buf);
    CHECK_STR_EQ(buf, "1970-01-01T00:00:00Z");
    struct timespec ts;
    CHECK(corral_meta_parse_time("2026-11-24T23:06:00Z", &ts) == 0);
    corral_meta_format_time(ts.tv_sec, buf);
    CHECK_STR_EQ(buf, "2026-11-24T23:06:00Z");
    CHECK(corral_meta_parse_time("2026-11-24T23:06:00.250000+01:00", &ts) == 0);
    CHECK_INT_EQ(ts.tv_nsec, 250000000);
    corral_meta_format_time(ts.tv_sec, buf);
    CHECK_STR_EQ(buf, "2026-11-24T22:06:00Z");
    CHECK(corral_meta_parse_time("yesterday", &ts) == -EINVAL);
    corral_meta_format_age(59, buf, sizeof(buf));
    CHECK_STR_EQ(buf, "59s");
    corral_meta_format_age(192, buf, sizeof(buf));
    CHECK_STR_EQ(buf, "3m12s");
    corral_meta_format_age(3 * 86400 + 7200, buf, sizeof(buf));
    CHECK_STR_EQ(buf, "3d2h");
}

static void test_uid(void)
{
    char a[37], b[37];
    corral_meta_new_uid(a);
    corral_meta_new_uid(b);
    CHECK_INT_EQ(strlen(a), 36);
    CHECK(strcmp(a, b) != 0);
    CHECK(a[14] == '4');
}

static void test_status(void)
{
    struct corral_field_errors fe;
    corral_field_errors_init(&fe);
    corral_field_error(&fe, "FieldValueRequired", "spec.containers[0].image", "Required value");
    corral_field_error(&fe, "FieldValueInvalid", "spec.containers[0].resources.limits.cpu",
                       "invalid quantity \"%s\"", "abc");
    json_t *st = corral_status_invalid("", "Pod", "bad", &fe);
    CHECK_INT_EQ(corral_status_code(st), 422);
    CHECK_STR_EQ(json_string_value(json_object_get(st, "reason")), "Invalid");
    CHECK_STR_CONTAINS(json_string_value(json_object_get(st, "message")),
                       "spec.containers[0].resources.limits.cpu: invalid quantity \"abc\"");
    CHECK_INT_EQ(json_array_size(json_object_get(json_object_get(st, "details"), "causes")), 2);
    json_decref(st);
    corral_field_errors_clear(&fe);

    st = corral_status_from_error(CORRAL_ENOTFOUND, "pods \"x\" not found");
    CHECK_INT_EQ(corral_status_code(st), 404);
    CHECK_STR_EQ(json_string_value(json_object_get(st, "reason")), "NotFound");
    json_decref(st);
    CHECK_STR_EQ(corral_strerror(-ENOENT), "No such file or directory");
    CHECK_STR_EQ(corral_strerror(CORRAL_ECONFLICT), "the object has been modified");
}

CORRAL_TESTS(CORRAL_TEST(names), CORRAL_TEST(time), CORRAL_TEST(uid), CORRAL_TEST(status))
