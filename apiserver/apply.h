/* SPDX-License-Identifier: Apache-2.0 */
/*
 * apply: server-side apply and field ownership (metadata.managedFields).
 *
 * Every write records which manager set which fields, in the Kubernetes FieldsV1 format
 * ({"f:spec":{"f:replicas":{}}}, list elements by merge key as "k:{\"name\":\"web\"}"). An
 * apply (application/apply-patch+yaml) by manager M:
 *   - merges M's configuration into the live object (creating it when missing);
 *   - fails with 409 Conflict naming each field whose value another manager set and M would
 *     change, unless force=true, in which case M takes those fields over;
 *   - removes fields M applied before and no longer applies, unless another manager owns them.
 */
#ifndef CORRAL_APPLY_H
#define CORRAL_APPLY_H

#include "server.h"

#include <jansson.h>

/* Computes the applied object. Same contract as corral_patch_apply(). */
int corral_apply_patch(struct corral_request *req, const json_t *old, const json_t *config,
                       json_t **out, json_t **status);

/* Records, in obj's managedFields, the fields a non-apply write changed from old. */
void corral_apply_record_update(struct corral_request *req, const json_t *old, json_t *obj);

/* The FieldsV1 set of every leaf in value (new reference). */
json_t *corral_apply_fieldset(const json_t *value);

#endif
