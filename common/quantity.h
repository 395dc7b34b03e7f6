/* SPDX-License-Identifier: Apache-2.0 */
/*
 * quantity: Kubernetes resource quantities ("500m", "16Gi", "1.5", "2e3") held exactly.
 *
 * A quantity is the decimal number unscaled × 10^scale, kept normalised (no trailing zeros in
 * unscaled), so "1.5", "1500m" and "1500e-3" compare equal and no floating point is involved
 * anywhere. The suffix family the user wrote (binary, decimal SI, exponent) is remembered so
 * that formatting reproduces the user's style in canonical form, as Kubernetes does.
 */
#ifndef CORRAL_QUANTITY_H
#define CORRAL_QUANTITY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

enum corral_quantity_format {
    CORRAL_QUANTITY_DECIMAL_SI = 0,
    CORRAL_QUANTITY_BINARY_SI,
    CORRAL_QUANTITY_DECIMAL_EXPONENT,
};

struct corral_quantity {
    int64_t unscaled;
    int32_t scale;
    enum corral_quantity_format format;
};

/* Parses s. Returns 0, -EINVAL on bad syntax or -ERANGE when the value cannot be held. */
int corral_quantity_parse(const char *s, struct corral_quantity *q);

/*
 * Parses a JSON value that is either a quantity string or a number (YAML `cpu: 2` arrives as an
 * integer). Returns 0, -EINVAL or -ERANGE.
 */
int corral_quantity_from_json(const json_t *v, struct corral_quantity *q);

/* The value in thousandths, rounded up (as Kubernetes MilliValue). Saturates at INT64_MAX/MIN. */
int64_t corral_quantity_milli(const struct corral_quantity *q);

/* The value rounded up to an integer (as Kubernetes Value). Saturates at INT64_MAX/MIN. */
int64_t corral_quantity_value(const struct corral_quantity *q);

/* Returns <0, 0, >0 as a is less than, equal to or greater than b. Exact. */
int corral_quantity_cmp(const struct corral_quantity *a, const struct corral_quantity *b);

/* Quantity holding milli/1000 in decimal SI format. */
struct corral_quantity corral_quantity_from_milli(int64_t milli);
/* Quantity holding v in the given format. */
struct corral_quantity corral_quantity_from_int(int64_t v, enum corral_quantity_format format);

/*
 * Writes the canonical form ("1500m", "16Gi", "1k") into buf. Returns the length written
 * (excluding NUL) or -ENOSPC when buf is too small. 32 bytes always suffice.
 */
int corral_quantity_format(const struct corral_quantity *q, char *buf, size_t len);

/* Convenience: parse s and return its milli value in *milli. Returns 0, -EINVAL or -ERANGE. */
int corral_quantity_parse_milli(const char *s, int64_t *milli);

#endif
