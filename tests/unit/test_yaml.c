/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for common/yaml: typing, anchors, merges, multi-doc, JSON, errors, round trip. */
#include "error.h"
#include "harness.h"
#include "yamljson.h"

static json_t *load(const char *s)
{
    json_t *docs = NULL;
    struct corral_parse_error err;
    int rc = corral_yaml_load(s, strlen(s), &docs, &err);
    if (rc != 0)
        fprintf(stderr, "parse error %d:%d: %s\n", err.line, err.column, err.message);
    CHECK(rc == 0);
    return docs;
}

static void test_scalar_types(void)
{
    json_t *d = load("a: 1\nb: '1'\nc: true\nd: yes\ne: ~\nf: 1.5\ng: hello\nh: 0x1f\n"
                     "i: \"true\"\nj: 010\nk: 1e3\nl: !!str 12\nm: 2001:db8::1\nn: 500m\n");
    json_t *o = json_array_get(d, 0);
    CHECK(json_integer_value(json_object_get(o, "a")) == 1);
    CHECK_STR_EQ(json_string_value(json_object_get(o, "b")), "1");
    CHECK(json_is_true(json_object_get(o, "c")));
    CHECK(json_is_true(json_object_get(o, "d")));
    CHECK(json_is_null(json_object_get(o, "e")));
    CHECK(json_real_value(json_object_get(o, "f")) == 1.5);
    CHECK_STR_EQ(json_string_value(json_object_get(o, "g")), "hello");
    CHECK(json_integer_value(json_object_get(o, "h")) == 31);
    CHECK_STR_EQ(json_string_value(json_object_get(o, "i")), "true");
    CHECK(json_integer_value(json_object_get(o, "j")) == 8);
    CHECK(json_real_value(json_object_get(o, "k")) == 1000.0);
    CHECK_STR_EQ(json_string_value(json_object_get(o, "l")), "12");
    CHECK_STR_EQ(json_string_value(json_object_get(o, "m")), "2001:db8::1");
    CHECK_STR_EQ(json_string_value(json_object_get(o, "n")), "500m");
    json_decref(d);
}

static void test_multi_document(void)
{
    json_t *d = load("# leading comment\n---\nkind: A\n---\n---\n# empty\n---\nkind: B\n...\n"
                     "---\n- 1\n- 2\n");
    CHECK_INT_EQ(json_array_size(d), 3);
    CHECK_STR_EQ(json_string_value(json_object_get(json_array_get(d, 0), "kind")), "A");
    CHECK_STR_EQ(json_string_value(json_object_get(json_array_get(d, 1), "kind")), "B");
    CHECK_INT_EQ(json_array_size(json_array_get(d, 2)), 2);
    json_decref(d);
}

static void test_anchors_and_merge(void)
{
    json_t *d = load("base: &b\n  cpu: 1\n  memory: 1Gi\nlist: &l [x, y]\n"
                     "pod:\n  <<: *b\n  memory: 2Gi\nother: *l\nscalar: &s hi\nagain: *s\n");
    json_t *o = json_array_get(d, 0);
    json_t *pod = json_object_get(o, "pod");
    CHECK(json_integer_value(json_object_get(pod, "cpu")) == 1);
    CHECK_STR_EQ(json_string_value(json_object_get(pod, "memory")), "2Gi");
    CHECK_INT_EQ(json_array_size(json_object_get(o, "other")), 2);
    CHECK_STR_EQ(json_string_value(json_object_get(o, "again")), "hi");
    json_decref(d);
}

static void test_json_input(void)
{
    json_t *d = load("  {\"a\": 9007199254740993, \"b\": \"\\u00e9\"}\n{\"c\": [1]}");
    CHECK_INT_EQ(json_array_size(d), 2);
    CHECK(json_integer_value(json_object_get(json_array_get(d, 0), "a")) == 9007199254740993LL);
    CHECK_STR_EQ(json_string_value(json_object_get(json_array_get(d, 0), "b")), "\xc3\xa9");
    json_decref(d);
}

/* What opens with `[` but is not JSON is read as YAML flow sequences. */
static void test_flow_yaml_after_bracket(void)
{
    json_t *d = load("[web, 2]\n");
    CHECK_STR_EQ(json_string_value(json_array_get(json_array_get(d, 0), 0)), "web");
    CHECK_INT_EQ(json_integer_value(json_array_get(json_array_get(d, 0), 1)), 2);
    json_decref(d);
    /* our own dump of two documents that are arrays opens with `[`: it must read back */
    d = load("[][1]");
    CHECK_INT_EQ(json_array_size(d), 2);
    char *all = corral_yaml_dump_all(d);
    json_t *back = load(all);
    CHECK(json_equal(back, d));
    free(all);
    json_decref(back);
    json_decref(d);
}

static void expect_error(const char *s, int line, const char *needle)
{
    json_t *docs = NULL;
    struct corral_parse_error err;
    CHECK(corral_yaml_load(s, strlen(s), &docs, &err) == CORRAL_EPARSE);
    CHECK(docs == NULL);
    if (err.line != line)
        fprintf(stderr, "line %d (want %d): %s\n", err.line, line, err.message);
    CHECK_INT_EQ(err.line, line);
    CHECK_STR_CONTAINS(err.message, needle);
}

static void test_errors_have_lines(void)
{
    expect_error("a: 1\nb: 2\n  c: 3\n", 3, "mapping values are not allowed");
    expect_error("a: [1, 2\nb: 3\n", 2, "expected");
    expect_error("a: *nope\n", 1, "unknown alias");
    expect_error("a: 1\nb: 2\na: 3\n", 3, "duplicate mapping key \"a\"");
    expect_error("{\"a\": 1,\n \"b\": }", 2, "");
    expect_error("key: \"unterminated\n", 2, "");
    expect_error("a: !!int abc\n", 1, "tagged type");
}

static void test_round_trip(void)
{
    json_t *d = load("apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n  labels:\n"
                     "    flag: \"true\"\n    num: \"42\"\n    empty: \"\"\nspec:\n  list: [1, 2.5, "
                     "null, false]\n  text: \"line1\\nline2\"\n");
    char *y = corral_yaml_dump(json_array_get(d, 0));
    CHECK(y != NULL);
    json_t *back = load(y);
    CHECK(json_equal(json_array_get(back, 0), json_array_get(d, 0)));
    free(y);
    json_decref(back);
    char *all = corral_yaml_dump_all(d);
    CHECK_STR_CONTAINS(all, "kind: Pod");
    free(all);
    json_decref(d);
}

CORRAL_TESTS(CORRAL_TEST(scalar_types), CORRAL_TEST(multi_document),
             CORRAL_TEST(anchors_and_merge), CORRAL_TEST(json_input), CORRAL_TEST(flow_yaml_after_bracket),
             CORRAL_TEST(errors_have_lines), CORRAL_TEST(round_trip))
