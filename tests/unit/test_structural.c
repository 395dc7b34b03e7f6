/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for apiserver/structural: CRD openAPIV3Schema pruning, defaulting and validation,
 * with the messages Kubernetes prints.
 */
#include "harness.h"
#include "status.h"
#include "structural.h"

#include <jansson.h>

static const char *schema_text =
    "{\"type\":\"object\",\"properties\":{"
    " \"spec\":{\"type\":\"object\",\"required\":[\"frames\"],\"properties\":{"
    "  \"frames\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":100000},"
    "  \"fps\":{\"type\":\"number\",\"exclusiveMinimum\":true,\"minimum\":0,\"default\":24},"
    "  \"step\":{\"type\":\"integer\",\"multipleOf\":5},"
    "  \"gpuModel\":{\"type\":\"string\",\"enum\":[\"RTX-4090\",\"RTX-3090\",\"L40\"]},"
    "  \"scene\":{\"type\":\"string\",\"minLength\":3,\"maxLength\":12,"
    "            \"pattern\":\"^s3://\\\\w+$\"},"
    "  \"priority\":{\"type\":\"string\",\"nullable\":true},"
    "  \"port\":{\"x-kubernetes-int-or-string\":true},"
    "  \"tags\":{\"type\":\"array\",\"maxItems\":2,\"items\":{\"type\":\"string\"},"
    "           \"x-kubernetes-list-type\":\"set\"},"
    "  \"outputs\":{\"type\":\"array\",\"x-kubernetes-list-type\":\"map\","
    "              \"x-kubernetes-list-map-keys\":[\"name\"],\"items\":{\"type\":\"object\","
    "              \"required\":[\"name\"],\"properties\":{\"name\":{\"type\":\"string\"},"
    "              \"format\":{\"type\":\"string\",\"default\":\"exr\"}}}},"
    "  \"env\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"}},"
    "  \"extra\":{\"type\":\"object\",\"x-kubernetes-preserve-unknown-fields\":true},"
    "  \"mode\":{\"type\":\"string\",\"oneOf\":[{\"enum\":[\"fast\"]},{\"enum\":[\"slow\"]}]},"
    "  \"limits\":{\"type\":\"object\",\"minProperties\":1,\"properties\":{"
    "    \"gpus\":{\"type\":\"integer\",\"format\":\"int32\"}}}}},"
    " \"status\":{\"type\":\"object\",\"properties\":{\"phase\":{\"type\":\"string\"}}}}}";

static json_t *parse(const char *text)
{
    json_error_t err;
    json_t *v = json_loads(text, 0, &err);
    if (!v)
        fprintf(stderr, "bad test JSON (%s at %d): %s\n", err.text, err.position, text);
    CHECK(v != NULL);
    return v;
}

/* Validates spec_text as the spec of an object; returns the causes as one "; "-joined text. */
static char *validate_spec(const char *spec_text)
{
    json_t *schema = parse(schema_text);
    char obj_text[2048];
    snprintf(obj_text, sizeof(obj_text),
             "{\"apiVersion\":\"studio.example.com/v1\",\"kind\":\"RenderJob\","
             "\"metadata\":{\"name\":\"x\",\"unknownMeta\":1},\"spec\":%s}",
             spec_text);
    json_t *obj = parse(obj_text);
    struct corral_field_errors fe;
    corral_field_errors_init(&fe);
    corral_structural_validate(schema, obj, &fe);
    char buf[4096] = "";
    size_t n = 0, i;
    json_t *c;
    json_array_foreach(fe.causes, i, c)
    {
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s: %s", i ? "; " : "",
                              json_string_value(json_object_get(c, "field")),
                              json_string_value(json_object_get(c, "message")));
    }
    corral_field_errors_clear(&fe);
    json_decref(obj);
    json_decref(schema);
    return strdup(buf);
}

static void expect(const char *spec_text, const char *want)
{
    char *got = validate_spec(spec_text);
    if (want[0] == 0 ? got[0] != 0 : !strstr(got, want))
        fprintf(stderr, "spec %s\n  got:  %s\n  want: %s\n", spec_text, got,
                want[0] ? want : "(no errors)");
    CHECK(want[0] == 0 ? got[0] == 0 : strstr(got, want) != NULL);
    free(got);
}

static void test_valid_object(void)
{
    expect("{\"frames\":240,\"fps\":30,\"gpuModel\":\"L40\",\"scene\":\"s3://shot42\","
           "\"tags\":[\"a\",\"b\"],\"port\":\"http\",\"priority\":null,"
           "\"outputs\":[{\"name\":\"beauty\"},{\"name\":\"depth\"}],\"env\":{\"A\":\"1\"},"
           "\"extra\":{\"anything\":[1,{\"x\":true}]},\"mode\":\"fast\",\"limits\":{\"gpus\":2}}",
           "");
    /* integral numbers written as reals are integers, as in Kubernetes */
    expect("{\"frames\":240.0}", "");
}

static void test_types(void)
{
    expect("{\"frames\":\"many\"}", "spec.frames: Invalid value: \"string\": spec.frames in body "
                                    "must be of type integer: \"string\"");
    expect("{\"frames\":1.5}", "spec.frames in body must be of type integer: \"number\"");
    expect("{\"frames\":1,\"gpuModel\":7}", "spec.gpuModel in body must be of type string");
    expect("{\"frames\":1,\"tags\":\"a\"}", "spec.tags in body must be of type array");
    expect("{\"frames\":1,\"env\":{\"A\":1}}", "spec.env.A in body must be of type string");
    expect("{\"frames\":1,\"port\":true}", "spec.port in body must be of type integer,string");
    expect("{\"frames\":1,\"scene\":null}",
           "spec.scene: Invalid value: \"null\": spec.scene in body must be of type string");
    expect("{\"frames\":1,\"limits\":{\"gpus\":4294967296}}",
           "spec.limits.gpus in body must be of type int32");
}

static void test_required_and_bounds(void)
{
    expect("{}", "spec.frames: Required value");
    expect("{\"frames\":0}", "spec.frames: Invalid value: 0: spec.frames in body should be "
                             "greater than or equal to 1");
    expect("{\"frames\":100001}", "should be less than or equal to 100000");
    expect("{\"frames\":1,\"fps\":0}", "spec.fps in body should be greater than 0");
    expect("{\"frames\":1,\"step\":7}", "spec.step in body should be a multiple of 5");
    expect("{\"frames\":1,\"scene\":\"s3\"}", "spec.scene in body should be at least 3 chars long");
    expect("{\"frames\":1,\"scene\":\"s3://abcdefghijkl\"}", "should be at most 12 chars long");
    expect("{\"frames\":1,\"scene\":\"gs://x\"}",
           "spec.scene: Invalid value: \"gs://x\": spec.scene in body should match '^s3://\\w+$'");
    expect("{\"frames\":1,\"tags\":[\"a\",\"b\",\"c\"]}", "spec.tags in body should have at most "
                                                          "2 items");
    expect("{\"frames\":1,\"limits\":{}}", "should have at least 1 properties");
    expect("{\"frames\":1,\"outputs\":[{\"format\":\"png\"}]}", "spec.outputs[0].name: Required "
                                                                "value");
}

static void test_enum_lists_and_combinators(void)
{
    expect("{\"frames\":1,\"gpuModel\":\"H100\"}",
           "spec.gpuModel: Unsupported value: \"H100\": supported values: \"RTX-4090\", "
           "\"RTX-3090\", \"L40\"");
    expect("{\"frames\":1,\"tags\":[\"a\",\"a\"]}", "spec.tags[1]: Duplicate value: \"a\"");
    expect("{\"frames\":1,\"outputs\":[{\"name\":\"x\"},{\"name\":\"x\"}]}",
           "spec.outputs[1]: Duplicate value: \"x\"");
    expect("{\"frames\":1,\"mode\":\"medium\"}", "spec.mode in body should match exactly one "
                                                 "schema in oneOf");
    /* several problems are all reported */
    char *got = validate_spec("{\"frames\":0,\"gpuModel\":\"H100\",\"scene\":\"x\"}");
    CHECK_STR_CONTAINS(got, "spec.frames");
    CHECK_STR_CONTAINS(got, "spec.gpuModel");
    CHECK_STR_CONTAINS(got, "spec.scene");
    free(got);
}

static void test_prune(void)
{
    json_t *schema = parse(schema_text);
    json_t *obj = parse("{\"apiVersion\":\"a/v1\",\"kind\":\"K\",\"metadata\":{\"name\":\"x\"},"
                        "\"top\":1,\"spec\":{\"frames\":1,\"resolution\":\"4k\","
                        "\"outputs\":[{\"name\":\"a\",\"junk\":1}],\"env\":{\"A\":\"1\"},"
                        "\"extra\":{\"kept\":{\"deep\":1}}},\"status\":{\"phase\":\"x\",\"y\":2}}");
    CHECK_INT_EQ(corral_structural_prune(schema, obj), 4);
    json_t *want = parse("{\"apiVersion\":\"a/v1\",\"kind\":\"K\",\"metadata\":{\"name\":\"x\"},"
                         "\"spec\":{\"frames\":1,\"outputs\":[{\"name\":\"a\"}],"
                         "\"env\":{\"A\":\"1\"},\"extra\":{\"kept\":{\"deep\":1}}},"
                         "\"status\":{\"phase\":\"x\"}}");
    CHECK(json_equal(obj, want));
    json_decref(want);
    json_decref(obj);
    json_decref(schema);
}

static void test_defaults(void)
{
    json_t *schema = parse(schema_text);
    json_t *obj = parse("{\"spec\":{\"frames\":1,\"outputs\":[{\"name\":\"a\"},"
                        "{\"name\":\"b\",\"format\":\"png\"}]}}");
    corral_structural_default(schema, obj);
    json_t *want = parse("{\"spec\":{\"frames\":1,\"fps\":24,\"outputs\":[{\"name\":\"a\","
                         "\"format\":\"exr\"},{\"name\":\"b\",\"format\":\"png\"}]}}");
    CHECK(json_equal(obj, want));
    json_decref(want);
    json_decref(obj);
    /* a missing parent object is not created just to hold a default */
    obj = parse("{\"metadata\":{\"name\":\"x\"}}");
    corral_structural_default(schema, obj);
    CHECK(json_object_get(obj, "spec") == NULL);
    json_decref(obj);
    json_decref(schema);
}

/* found by fuzz_structural: patterns that made the regex compiler take gigabytes */
static void test_costly_patterns(void)
{
    static const struct {
        const char *pattern, *why; /* why NULL: accepted */
    } cases[] = {
        {"^s3:~~~+++++++++~~$", "nested repetition"},
        {"a{2}{3}", "nested repetition"},
        {"a{1001}", "repeat count"},
        {"(a{100}){100}", "too large"},
        {"((ab){40}c){30}", "too large"},
        {"^[a-z]{1,63}(\\.[a-z]{1,63})*$", NULL},
        {"^s3://.+?$", NULL},
        {"[+*?]+", NULL},
        {"\\++", NULL},
        {"x{,}y{", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *schema = json_pack("{s:s, s:{s:{s:s, s:s}}}", "type", "object", "properties",
                                   "scene", "type", "string", "pattern", cases[i].pattern);
        char path[256] = "spec.versions[0].schema.openAPIV3Schema";
        const char *why = NULL;
        int rc = corral_structural_check_patterns(schema, path, sizeof(path), &why);
        if (!cases[i].why) {
            if (rc != 0)
                fprintf(stderr, "refused %s: %s\n", cases[i].pattern, why);
            CHECK_INT_EQ(rc, 0);
        } else {
            CHECK(rc != 0);
            CHECK_STR_CONTAINS(why, cases[i].why);
            CHECK_STR_EQ(path,
                         "spec.versions[0].schema.openAPIV3Schema.properties.scene.pattern");
        }
        json_decref(schema);
    }
    /* data in a schema (a default, an enum value) is not a pattern, even under that name */
    json_t *schema = json_pack("{s:s, s:{s:{s:s, s:{s:s}}}}", "type", "object", "properties",
                               "rule", "type", "object", "default", "pattern", "a++");
    char path[256] = "";
    const char *why = NULL;
    CHECK_INT_EQ(corral_structural_check_patterns(schema, path, sizeof(path), &why), 0);
    json_decref(schema);
}

CORRAL_TESTS(CORRAL_TEST(valid_object), CORRAL_TEST(types), CORRAL_TEST(required_and_bounds),
             CORRAL_TEST(enum_lists_and_combinators), CORRAL_TEST(prune), CORRAL_TEST(defaults),
             CORRAL_TEST(costly_patterns))
