/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for common/selector: label and field selectors, string and JSON forms. */
#include "error.h"
#include "harness.h"
#include "selector.h"

static bool match(const char *sel, const char *labels_json)
{
    struct corral_selector *s;
    char err[128];
    CHECK(corral_selector_parse(sel, &s, err, sizeof(err)) == 0);
    json_t *labels = json_loads(labels_json, 0, NULL);
    bool m = corral_selector_match_labels(s, labels);
    json_decref(labels);
    corral_selector_free(s);
    return m;
}

static void test_equality(void)
{
    CHECK(match("app=web", "{\"app\":\"web\"}"));
    CHECK(match("app==web", "{\"app\":\"web\",\"x\":\"y\"}"));
    CHECK(!match("app=web", "{\"app\":\"db\"}"));
    CHECK(!match("app=web", "{}"));
    CHECK(match("app!=web", "{}"));
    CHECK(match("app!=web", "{\"app\":\"db\"}"));
    CHECK(match("app=web, tier = front", "{\"app\":\"web\",\"tier\":\"front\"}"));
    CHECK(!match("app=web,tier=front", "{\"app\":\"web\"}"));
    CHECK(match("", "{}"));
    CHECK(match("app=", "{\"app\":\"\"}"));
}

static void test_set_based(void)
{
    CHECK(match("env in (prod, staging)", "{\"env\":\"prod\"}"));
    CHECK(!match("env in (prod,staging)", "{\"env\":\"dev\"}"));
    CHECK(match("env notin (prod)", "{\"env\":\"dev\"}"));
    CHECK(match("env notin (prod)", "{}"));
    CHECK(match("gpu", "{\"gpu\":\"\"}"));
    CHECK(!match("gpu", "{}"));
    CHECK(match("!canary", "{}"));
    CHECK(!match("!canary", "{\"canary\":\"1\"}"));
    CHECK(match("nvidia.com/gpu.product in (H100,A100),!spot",
                "{\"nvidia.com/gpu.product\":\"H100\"}"));
}

static void test_parse_errors(void)
{
    struct corral_selector *s = NULL;
    char err[128];
    CHECK(corral_selector_parse("env in prod", &s, err, sizeof(err)) == CORRAL_EBADREQUEST);
    CHECK_STR_CONTAINS(err, "expected '('");
    CHECK(corral_selector_parse("env in (a b)", &s, err, sizeof(err)) == CORRAL_EBADREQUEST);
    CHECK(corral_selector_parse("=x", &s, err, sizeof(err)) == CORRAL_EBADREQUEST);
    CHECK(corral_selector_parse("a=b,,", &s, err, sizeof(err)) == CORRAL_EBADREQUEST);
    CHECK(corral_field_selector_parse("spec.nodeName in (a)", &s, err, sizeof(err)) ==
          CORRAL_EBADREQUEST);
    CHECK(s == NULL);
}

static const char *field_lookup(const char *key, void *ctx)
{
    json_t *obj = ctx;
    if (strcmp(key, "metadata.name") == 0)
        return json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
    if (strcmp(key, "spec.nodeName") == 0)
        return json_string_value(json_object_get(json_object_get(obj, "spec"), "nodeName"));
    return NULL;
}

static void test_field_selector(void)
{
    struct corral_selector *s;
    char err[128];
    CHECK(corral_field_selector_parse("metadata.name=a,spec.nodeName!=n1", &s, err,
                                      sizeof(err)) == 0);
    json_t *o = json_loads("{\"metadata\":{\"name\":\"a\"},\"spec\":{\"nodeName\":\"n2\"}}", 0,
                           NULL);
    CHECK(corral_selector_match(s, field_lookup, o));
    json_object_set_new(json_object_get(o, "spec"), "nodeName", json_string("n1"));
    CHECK(!corral_selector_match(s, field_lookup, o));
    json_decref(o);
    corral_selector_free(s);
}

static void test_label_selector_json(void)
{
    json_t *js = json_loads("{\"matchLabels\":{\"app\":\"web\"},\"matchExpressions\":["
                            "{\"key\":\"tier\",\"operator\":\"In\",\"values\":[\"a\",\"b\"]},"
                            "{\"key\":\"x\",\"operator\":\"DoesNotExist\"}]}",
                            0, NULL);
    struct corral_selector *s;
    char err[128];
    CHECK(corral_selector_from_json(js, &s, err, sizeof(err)) == 0);
    json_t *l = json_loads("{\"app\":\"web\",\"tier\":\"b\"}", 0, NULL);
    CHECK(corral_selector_match_labels(s, l));
    json_object_set_new(l, "x", json_string("1"));
    CHECK(!corral_selector_match_labels(s, l));
    json_decref(l);
    corral_selector_free(s);
    json_decref(js);

    js = json_loads("[{\"key\":\"mem\",\"operator\":\"Gt\",\"values\":[\"40000\"]}]", 0, NULL);
    CHECK(corral_selector_from_json(js, &s, err, sizeof(err)) == 0);
    l = json_loads("{\"mem\":\"81559\"}", 0, NULL);
    CHECK(corral_selector_match_labels(s, l));
    json_object_set_new(l, "mem", json_string("16000"));
    CHECK(!corral_selector_match_labels(s, l));
    json_decref(l);
    corral_selector_free(s);
    json_decref(js);

    js = json_loads("[{\"key\":\"a\",\"operator\":\"In\"}]", 0, NULL);
    CHECK(corral_selector_from_json(js, &s, err, sizeof(err)) == CORRAL_EINVALID);
    CHECK_STR_CONTAINS(err, "wrong number of values");
    json_decref(js);
}

CORRAL_TESTS(CORRAL_TEST(equality), CORRAL_TEST(set_based), CORRAL_TEST(parse_errors),
             CORRAL_TEST(field_selector), CORRAL_TEST(label_selector_json))
