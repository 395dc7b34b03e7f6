/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_structural: libFuzzer target for CustomResourceDefinition schemas (apiserver/
 * structural.c). Anyone allowed to create a CRD chooses its openAPIV3Schema, and anyone
 * allowed to create its objects chooses the object, so the input is two JSON values, the
 * schema and the object. Pruning, defaulting and validation must finish on any pair; an
 * object that was pruned once loses nothing more to a second pruning.
 */
#include "status.h"
#include "structural.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t je;
    json_t *schema = json_loadb((const char *)data, size, JSON_DISABLE_EOF_CHECK, &je);
    if (!schema)
        return 0;
    size_t used = (size_t)je.position;
    json_t *obj = used < size ? json_loadb((const char *)data + used, size - used, 0, &je) : NULL;
    if (!obj) {
        json_decref(schema);
        return 0;
    }
    corral_structural_prune(schema, obj);
    if (corral_structural_prune(schema, obj) != 0) {
        fprintf(stderr, "a second pruning removed more fields\n");
        abort();
    }
    corral_structural_default(schema, obj);
    struct corral_field_errors fe;
    corral_field_errors_init(&fe);
    corral_structural_validate(schema, obj, &fe);
    corral_field_errors_clear(&fe);
    json_decref(obj);
    json_decref(schema);
    return 0;
}
