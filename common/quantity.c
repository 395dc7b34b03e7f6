/* SPDX-License-Identifier: Apache-2.0 */
/*
 * quantity: exact decimal quantities. Parsing accumulates digits into an int64 and tracks a
 * power of ten; binary suffixes multiply by 2^(10k) with overflow checks. Everything that
 * could overflow uses __builtin_*_overflow and reports -ERANGE instead of wrapping.
 */
#include "quantity.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

struct suffix {
    const char *text;
    enum corral_quantity_format format;
    int pow10;  /* decimal SI exponent */
    int pow1024; /* binary SI exponent */
};

static const struct suffix suffixes[] = {
    {"Ki", CORRAL_QUANTITY_BINARY_SI, 0, 1}, {"Mi", CORRAL_QUANTITY_BINARY_SI, 0, 2},
    {"Gi", CORRAL_QUANTITY_BINARY_SI, 0, 3}, {"Ti", CORRAL_QUANTITY_BINARY_SI, 0, 4},
    {"Pi", CORRAL_QUANTITY_BINARY_SI, 0, 5}, {"Ei", CORRAL_QUANTITY_BINARY_SI, 0, 6},
    {"n", CORRAL_QUANTITY_DECIMAL_SI, -9, 0}, {"u", CORRAL_QUANTITY_DECIMAL_SI, -6, 0},
    {"m", CORRAL_QUANTITY_DECIMAL_SI, -3, 0}, {"", CORRAL_QUANTITY_DECIMAL_SI, 0, 0},
    {"k", CORRAL_QUANTITY_DECIMAL_SI, 3, 0},  {"M", CORRAL_QUANTITY_DECIMAL_SI, 6, 0},
    {"G", CORRAL_QUANTITY_DECIMAL_SI, 9, 0},  {"T", CORRAL_QUANTITY_DECIMAL_SI, 12, 0},
    {"P", CORRAL_QUANTITY_DECIMAL_SI, 15, 0}, {"E", CORRAL_QUANTITY_DECIMAL_SI, 18, 0},
};

static void normalise(struct corral_quantity *q)
{
    if (q->unscaled == 0) {
        q->scale = 0;
        return;
    }
    while (q->unscaled % 10 == 0) {
        q->unscaled /= 10;
        q->scale++;
    }
}

/*
 * As Kubernetes' ParseQuantity: a non-zero value finer than 1n is rounded away from zero to
 * the next nano, so that asking for a tiny amount still asks for some, and the value is the
 * one its canonical text ("10001n") reads back as.
 */
static void round_to_nano(struct corral_quantity *q)
{
    if (q->scale >= -9 || q->unscaled == 0)
        return;
    bool dropped = false;
    int64_t sign = q->unscaled < 0 ? -1 : 1;
    while (q->scale < -9 && q->unscaled != 0) {
        dropped |= q->unscaled % 10 != 0;
        q->unscaled /= 10;
        q->scale++;
    }
    q->scale = -9;
    if (dropped)
        q->unscaled += sign;
}

/* Reads [+-]digits[.digits] into *mant / *exp10. Returns chars consumed or -errno. */
static int parse_number(const char *s, int64_t *mant, int *exp10)
{
    const char *p = s;
    bool neg = false, any = false;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    int64_t v = 0;
    int e = 0;
    bool frac = false;
    for (;; p++) {
        if (*p == '.' && !frac) {
            frac = true;
            continue;
        }
        if (!isdigit((unsigned char)*p))
            break;
        any = true;
        int d = *p - '0';
        int64_t next;
        if (__builtin_mul_overflow(v, 10, &next) || __builtin_add_overflow(next, d, &next)) {
            if (frac && d == 0)
                continue; /* trailing fractional zeros carry no value (v stays as it was) */
            return -ERANGE;
        }
        v = next;
        if (frac)
            e--;
    }
    if (!any)
        return -EINVAL;
    *mant = neg ? -v : v;
    *exp10 = e;
    return (int)(p - s);
}

static int apply_suffix(const char *p, struct corral_quantity *q)
{
    if ((*p == 'e' || *p == 'E') && p[1] && p[1] != 'i') {
        char *end;
        errno = 0;
        long x = strtol(p + 1, &end, 10);
        if (end == p + 1 || *end || errno || x > 1000 || x < -1000)
            return -EINVAL;
        q->scale += (int32_t)x;
        q->format = CORRAL_QUANTITY_DECIMAL_EXPONENT;
        return 0;
    }
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        if (strcmp(p, suffixes[i].text) != 0)
            continue;
        q->format = suffixes[i].format;
        q->scale += suffixes[i].pow10;
        for (int k = 0; k < suffixes[i].pow1024; k++)
            if (__builtin_mul_overflow(q->unscaled, 1024, &q->unscaled))
                return -ERANGE;
        return 0;
    }
    return -EINVAL;
}

int corral_quantity_parse(const char *s, struct corral_quantity *q)
{
    if (!s || !*s)
        return -EINVAL;
    int64_t mant;
    int exp10;
    int n = parse_number(s, &mant, &exp10);
    if (n < 0)
        return n;
    struct corral_quantity r = {.unscaled = mant, .scale = exp10};
    int rc = apply_suffix(s + n, &r);
    if (rc < 0)
        return rc;
    round_to_nano(&r);
    normalise(&r);
    if (r.scale > 1000)
        return -ERANGE; /* its canonical form, 1eN, would be refused in turn */
    *q = r;
    return 0;
}

int corral_quantity_from_json(const json_t *v, struct corral_quantity *q)
{
    if (json_is_string(v))
        return corral_quantity_parse(json_string_value(v), q);
    if (json_is_integer(v)) {
        *q = corral_quantity_from_int(json_integer_value(v), CORRAL_QUANTITY_DECIMAL_SI);
        return 0;
    }
    if (json_is_real(v)) {
        char buf[64];
        snprintf(buf, sizeof(buf), "%.9g", json_real_value(v));
        if (strchr(buf, 'e') || strchr(buf, 'n') || strchr(buf, 'i'))
            return -EINVAL;
        return corral_quantity_parse(buf, q);
    }
    return -EINVAL;
}

/* Returns unscaled × 10^(scale+shift), rounded up, saturating. */
static int64_t scaled_ceil(const struct corral_quantity *q, int shift)
{
    int e = q->scale + shift;
    int64_t v = q->unscaled;
    if (e >= 0) {
        for (int i = 0; i < e; i++)
            if (__builtin_mul_overflow(v, 10, &v))
                return q->unscaled < 0 ? INT64_MIN : INT64_MAX;
        return v;
    }
    if (e < -19)
        return v > 0 ? 1 : 0;
    int64_t div = 1;
    for (int i = 0; i < -e; i++)
        div *= 10;
    int64_t quo = v / div;
    if (v % div > 0)
        quo++;
    return quo;
}

int64_t corral_quantity_milli(const struct corral_quantity *q)
{
    return scaled_ceil(q, 3);
}

int64_t corral_quantity_value(const struct corral_quantity *q)
{
    return scaled_ceil(q, 0);
}

int corral_quantity_cmp(const struct corral_quantity *a, const struct corral_quantity *b)
{
    if ((a->unscaled < 0) != (b->unscaled < 0) || a->unscaled == 0 || b->unscaled == 0)
        return (a->unscaled > b->unscaled) - (a->unscaled < b->unscaled);
    /* Same sign, both non-zero: bring to the smaller scale, saturating means "larger". */
    int64_t x = a->unscaled, y = b->unscaled;
    int ea = a->scale, eb = b->scale;
    while (ea > eb) {
        if (__builtin_mul_overflow(x, 10, &x))
            return x < 0 ? -1 : 1;
        ea--;
    }
    while (eb > ea) {
        if (__builtin_mul_overflow(y, 10, &y))
            return y < 0 ? 1 : -1;
        eb--;
    }
    return (x > y) - (x < y);
}

struct corral_quantity corral_quantity_from_milli(int64_t milli)
{
    struct corral_quantity q = {.unscaled = milli, .scale = -3};
    normalise(&q);
    return q;
}

struct corral_quantity corral_quantity_from_int(int64_t v, enum corral_quantity_format format)
{
    struct corral_quantity q = {.unscaled = v, .scale = 0, .format = format};
    normalise(&q);
    return q;
}

static int format_binary(const struct corral_quantity *q, char *buf, size_t len)
{
    static const char *const bin[] = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
    int64_t v = corral_quantity_value(q);
    int k = 0;
    while (k < 6 && v != 0 && v % 1024 == 0) {
        v /= 1024;
        k++;
    }
    int n = snprintf(buf, len, "%lld%s", (long long)v, bin[k]);
    return n < (int)len ? n : -ENOSPC;
}

static int format_decimal(const struct corral_quantity *q, char *buf, size_t len)
{
    static const char *const dec[] = {"n", "u", "m", "", "k", "M", "G", "T", "P", "E"};
    int64_t m = q->unscaled;
    int e = q->scale;
    while (((e % 3) + 3) % 3 != 0) {
        if (__builtin_mul_overflow(m, 10, &m))
            return -ERANGE;
        e--;
    }
    while (e < -9) { /* below nano: round up, as Kubernetes does */
        int64_t r = m % 1000;
        m = m / 1000 + (r > 0);
        e += 3;
    }
    while (e > 18) {
        if (__builtin_mul_overflow(m, 1000, &m))
            return -ERANGE;
        e -= 3;
    }
    int n = snprintf(buf, len, "%lld%s", (long long)m, dec[e / 3 + 3]);
    return n < (int)len ? n : -ENOSPC;
}

int corral_quantity_format(const struct corral_quantity *q, char *buf, size_t len)
{
    bool integral = q->scale >= 0;
    if (q->format == CORRAL_QUANTITY_BINARY_SI && integral &&
        (q->unscaled >= 1024 || q->unscaled <= -1024 || q->scale > 0) &&
        corral_quantity_value(q) != INT64_MAX)
        return format_binary(q, buf, len);
    if (q->format == CORRAL_QUANTITY_DECIMAL_EXPONENT) {
        int n = q->scale == 0 ? snprintf(buf, len, "%lld", (long long)q->unscaled)
                              : snprintf(buf, len, "%llde%d", (long long)q->unscaled, q->scale);
        return n < (int)len ? n : -ENOSPC;
    }
    int rc = format_decimal(q, buf, len);
    if (rc == -ERANGE) {
        int n = snprintf(buf, len, "%llde%d", (long long)q->unscaled, q->scale);
        return n < (int)len ? n : -ENOSPC;
    }
    return rc;
}

int corral_quantity_parse_milli(const char *s, int64_t *milli)
{
    struct corral_quantity q;
    int rc = corral_quantity_parse(s, &q);
    if (rc < 0)
        return rc;
    *milli = corral_quantity_milli(&q);
    return 0;
}
