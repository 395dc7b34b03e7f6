/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for common/quantity: exact parsing, rounding, comparison and canonical form. */
#include "harness.h"
#include "quantity.h"

#include <errno.h>
#include <stdint.h>

static void parse_ok(const char *s, struct corral_quantity *q)
{
    int rc = corral_quantity_parse(s, q);
    if (rc != 0)
        fprintf(stderr, "cannot parse \"%s\": %d\n", s, rc);
    CHECK(rc == 0);
}

static int64_t milli(const char *s)
{
    struct corral_quantity q;
    parse_ok(s, &q);
    return corral_quantity_milli(&q);
}

static int64_t value(const char *s)
{
    struct corral_quantity q;
    parse_ok(s, &q);
    return corral_quantity_value(&q);
}

static const char *canon(const char *s, char *buf)
{
    struct corral_quantity q;
    CHECK(corral_quantity_parse(s, &q) == 0);
    CHECK(corral_quantity_format(&q, buf, 32) > 0);
    return buf;
}

static void test_parse_decimal(void)
{
    CHECK_INT_EQ(milli("500m"), 500);
    CHECK_INT_EQ(milli("1.5"), 1500);
    CHECK_INT_EQ(milli("2"), 2000);
    CHECK_INT_EQ(milli("0.1"), 100);
    CHECK_INT_EQ(milli(".5"), 500);
    CHECK_INT_EQ(milli("5."), 5000);
    CHECK_INT_EQ(milli("+3"), 3000);
    CHECK_INT_EQ(milli("-1.5"), -1500);
    CHECK_INT_EQ(value("1k"), 1000);
    CHECK_INT_EQ(value("2M"), 2000000);
    CHECK_INT_EQ(value("1G"), 1000000000);
    CHECK_INT_EQ(value("1E"), 1000000000000000000LL);
    CHECK_INT_EQ(milli("250u"), 1); /* rounds up */
    CHECK_INT_EQ(milli("1n"), 1);
    CHECK_INT_EQ(value("1e3"), 1000);
    CHECK_INT_EQ(value("12E-1"), 2); /* 1.2 rounds up */
}

static void test_parse_binary(void)
{
    CHECK_INT_EQ(value("1Ki"), 1024);
    CHECK_INT_EQ(value("16Gi"), 17179869184LL);
    CHECK_INT_EQ(value("1.5Gi"), 1610612736LL);
    CHECK_INT_EQ(value("128Mi"), 134217728LL);
    CHECK_INT_EQ(value("0.5Ki"), 512);
    CHECK_INT_EQ(value("7Ei"), 8070450532247928832LL);
}

static void test_parse_errors(void)
{
    struct corral_quantity q;
    const char *bad[] = {"", "abc", "1.2.3", "1 Gi", "Gi", "1Gb", "1x", "--1", "1e", "1e3.5",
                         "0x10", "1.5.", "+", "."};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = corral_quantity_parse(bad[i], &q);
        if (rc != -EINVAL)
            fprintf(stderr, "accepted \"%s\"\n", bad[i]);
        CHECK(rc == -EINVAL);
    }
    CHECK(corral_quantity_parse("99999999999999999999", &q) == -ERANGE);
    CHECK(corral_quantity_parse("8Ei", &q) == -ERANGE);
    /* found by fuzz_query: a value whose canonical form 1eN would itself be refused */
    CHECK(corral_quantity_parse("1000E1000", &q) == -ERANGE);
}

/* Below one nano, values round away from zero at parse time, as Kubernetes' ParseQuantity. */
static void test_below_nano(void)
{
    char buf[32];
    struct corral_quantity a, b;
    CHECK_STR_EQ(canon("0.000010000001", buf), "10001n");
    CHECK_STR_EQ(canon("-0.0000000001", buf), "-1n");
    CHECK(corral_quantity_parse("1e-12", &a) == 0);
    CHECK(corral_quantity_parse("1n", &b) == 0);
    CHECK(corral_quantity_cmp(&a, &b) == 0);
    CHECK(corral_quantity_parse("0.0000000010", &a) == 0); /* exactly 1n: no rounding */
    CHECK(corral_quantity_cmp(&a, &b) == 0);
    /* found by fuzz_query: zeros after the mantissa is full used to wrap it around */
    CHECK(corral_quantity_parse("1000000000000000.00000000000000000000000000000000", &a) == 0);
    CHECK(corral_quantity_parse("1P", &b) == 0);
    CHECK(corral_quantity_cmp(&a, &b) == 0);
}

static void test_no_float_drift(void)
{
    /* 0.1 + 0.2 style values stay exact: 0.3 == 300m. */
    struct corral_quantity a, b;
    CHECK(corral_quantity_parse("0.3", &a) == 0);
    CHECK(corral_quantity_parse("300m", &b) == 0);
    CHECK(corral_quantity_cmp(&a, &b) == 0);
    CHECK(corral_quantity_parse("0.30000000000000001", &a) == 0);
    CHECK(corral_quantity_cmp(&a, &b) > 0);
    CHECK(corral_quantity_parse("1Gi", &a) == 0);
    CHECK(corral_quantity_parse("1G", &b) == 0);
    CHECK(corral_quantity_cmp(&a, &b) > 0);
    CHECK(corral_quantity_parse("-1", &a) == 0);
    CHECK(corral_quantity_cmp(&a, &b) < 0);
}

static void test_format(void)
{
    char buf[32];
    CHECK_STR_EQ(canon("1.5", buf), "1500m");
    CHECK_STR_EQ(canon("1500m", buf), "1500m");
    CHECK_STR_EQ(canon("1000", buf), "1k");
    CHECK_STR_EQ(canon("1500", buf), "1500");
    CHECK_STR_EQ(canon("16Gi", buf), "16Gi");
    CHECK_STR_EQ(canon("1.5Gi", buf), "1536Mi");
    CHECK_STR_EQ(canon("0.1", buf), "100m");
    CHECK_STR_EQ(canon("0", buf), "0");
    CHECK_STR_EQ(canon("1e3", buf), "1e3");
    CHECK_STR_EQ(canon("100Mi", buf), "100Mi");
    struct corral_quantity q = corral_quantity_from_milli(2500);
    CHECK(corral_quantity_format(&q, buf, sizeof(buf)) > 0);
    CHECK_STR_EQ(buf, "2500m");
    CHECK(corral_quantity_format(&q, buf, 3) == -ENOSPC);
}

static void test_from_json(void)
{
    struct corral_quantity q;
    json_t *v = json_integer(4);
    CHECK(corral_quantity_from_json(v, &q) == 0);
    CHECK_INT_EQ(corral_quantity_milli(&q), 4000);
    json_decref(v);
    v = json_real(0.5);
    CHECK(corral_quantity_from_json(v, &q) == 0);
    CHECK_INT_EQ(corral_quantity_milli(&q), 500);
    json_decref(v);
    v = json_true();
    CHECK(corral_quantity_from_json(v, &q) == -EINVAL);
}

CORRAL_TESTS(CORRAL_TEST(parse_decimal), CORRAL_TEST(parse_binary), CORRAL_TEST(parse_errors),
             CORRAL_TEST(below_nano), CORRAL_TEST(no_float_drift), CORRAL_TEST(format),
             CORRAL_TEST(from_json))
