/* SPDX-License-Identifier: Apache-2.0 */
/*
 * structural: a CustomResourceDefinition's openAPIV3Schema applied to its objects, as the
 * Kubernetes apiextensions server does: unknown fields pruned, defaults filled in, then the
 * value validated with Kubernetes' messages, e.g.
 *   spec.frames: Invalid value: 0: spec.frames in body should be greater than or equal to 1
 *   spec.frames: Invalid value: "string": spec.frames in body must be of type integer: "string"
 *   spec.scene: Required value
 *
 * Supported keywords: type, nullable, format (int32/int64 ranges only), enum, required,
 * properties, additionalProperties, items, minimum, maximum, exclusiveMinimum/Maximum,
 * multipleOf, minLength, maxLength, pattern, minItems, maxItems, minProperties,
 * maxProperties, allOf, anyOf, oneOf, not, default, x-kubernetes-int-or-string,
 * x-kubernetes-preserve-unknown-fields, x-kubernetes-embedded-resource, x-kubernetes-list-type
 * (set, map with x-kubernetes-list-map-keys). CEL rules (x-kubernetes-validations) are not
 * evaluated. `pattern` is an ECMA-262 expression; the common escapes (\d, \w, \s and their
 * negations) are translated to POSIX classes and a pattern POSIX cannot compile is skipped. A
 * pattern whose compilation would cost too much (see corral_structural_check_patterns) is
 * refused when its CRD is written.
 *
 * These are pure functions over jansson values; validate.c calls them for custom kinds and
 * the unit tests call them directly.
 */
#ifndef CORRAL_STRUCTURAL_H
#define CORRAL_STRUCTURAL_H

#include "status.h"

#include <jansson.h>

/*
 * Removes from obj (a whole custom object) every field its schema does not declare, at any
 * depth, leaving apiVersion, kind and metadata alone. Returns how many fields were removed.
 */
size_t corral_structural_prune(const json_t *schema, json_t *obj);

/* Fills in schema defaults for fields missing from obj, at any depth. */
void corral_structural_default(const json_t *schema, json_t *obj);

/*
 * Validates obj (a whole custom object; metadata is skipped) against schema, adding one
 * cause per violation to fe.
 */
void corral_structural_validate(const json_t *schema, const json_t *obj,
                                struct corral_field_errors *fe);

/*
 * Finds a `pattern` anywhere in schema that the regex compiler must not be given (nested
 * repetition, a repeat count over 1000, nested counted repetitions over 1000 copies, as Go's
 * regexp refuses them). Returns 0, or CORRAL_EINVALID with path (the caller's prefix, extended
 * in place) naming it and *why saying what is wrong.
 */
int corral_structural_check_patterns(const json_t *schema, char *path, size_t len,
                                     const char **why);

#endif
