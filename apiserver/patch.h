/* SPDX-License-Identifier: Apache-2.0 */
/*
 * patch: the PATCH media types and strict field validation.
 *
 *   application/merge-patch+json            RFC 7386 JSON merge patch
 *   application/json-patch+json             RFC 6902 JSON patch
 *   application/strategic-merge-patch+json  Kubernetes strategic merge patch (built-in kinds)
 *   application/apply-patch+yaml            server-side apply (creates when missing, tracks
 *                                           field managers in metadata.managedFields)
 *
 * The pure functions (corral_patch_merge, corral_patch_json, corral_patch_strategic) are
 * usable on their own and are what the unit tests exercise.
 */
#ifndef CORRAL_PATCH_H
#define CORRAL_PATCH_H

#include "server.h"

#include <jansson.h>

/* RFC 7386: returns a new value (target is not modified). */
json_t *corral_patch_merge(const json_t *target, const json_t *patch);

/*
 * RFC 6902: applies ops to a copy of target. Returns 0 and *out (new reference), or
 * CORRAL_EINVALID / CORRAL_ECONFLICT (a failed "test") with a message in err.
 */
int corral_patch_json(const json_t *target, const json_t *ops, json_t **out, char *err,
                      size_t errlen);

/* Strategic merge patch: returns a new value, or NULL with a message in err. */
json_t *corral_patch_strategic(const json_t *target, const json_t *patch, char *err,
                               size_t errlen);

/*
 * Computes the patched object for a PATCH request. old is the stored object (NULL if it does
 * not exist: only apply-patch may create). Returns 0 and *out, or an error with *status.
 */
int corral_patch_apply(struct corral_request *req, const json_t *old, json_t **out,
                       json_t **status);

/*
 * Applies the fieldValidation mode to obj (see corral_schema_check_request), answering 400
 * naming every unknown field under Strict. Returns 0 or CORRAL_EBADREQUEST.
 */
int corral_patch_strict_check(struct corral_request *req, json_t *obj);

/* Reads the Scale in a PUT/PATCH on the scale subresource of obj. */
int corral_patch_scale(struct corral_request *req, const json_t *obj, json_t **scale,
                       json_t **status);

#endif
