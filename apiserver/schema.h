/* SPDX-License-Identifier: Apache-2.0 */
/*
 * schema: which fields each built-in kind declares, for strict field validation
 * (`fieldValidation=Strict`, what kubectl sends by default) and for the OpenAPI documents.
 *
 * The schemas are written once, compactly, as type definitions in schema.c ("name:string
 * ports:[ContainerPort] resources:ResourceRequirements ..."); CRD kinds use the CRD's
 * openAPIV3Schema. Unknown fields are reported the way Kubernetes does:
 *   strict decoding error: unknown field "spec.containers[0].imagee"
 */
#ifndef CORRAL_SCHEMA_H
#define CORRAL_SCHEMA_H

#include "resources.h"
#include "server.h"

#include <jansson.h>

/*
 * Collects the unknown fields of obj (an object of kind res) into unknown (an array of path
 * strings). Returns the count.
 */
size_t corral_schema_unknown_fields(const struct corral_resource *res, const json_t *obj,
                                    json_t *unknown);

/*
 * Applies the request's fieldValidation mode to obj's unknown fields, as Kubernetes does:
 * Strict rejects them; Warn (the default when absent) drops them and adds a warning for each
 * to the reply; Ignore drops them silently. Returns 0, or CORRAL_EBADREQUEST with *status.
 */
int corral_schema_check_request(struct corral_request *req, json_t *obj, json_t **status);

/* The openAPIV3Schema of a CRD-backed kind (borrowed from res), or NULL. */
const json_t *corral_schema_crd(const struct corral_resource *res);

/* An OpenAPI v3 schema object for res (new reference), used by /openapi/v3 documents. */
json_t *corral_schema_openapi(const struct corral_resource *res);

#endif
