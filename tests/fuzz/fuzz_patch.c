/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_patch: libFuzzer target for the three patch engines of apiserver/patch.c. The input is
 * two JSON values one after the other: the stored object and the patch a client sent. Each
 * engine must return a result or an error with a message; the merge patch must also be
 * idempotent (RFC 7386: applying the same patch twice gives what applying it once gave).
 */
#include "error.h"
#include "patch.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t je;
    json_t *target = json_loadb((const char *)data, size, JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY,
                                &je);
    if (!target)
        return 0;
    size_t used = (size_t)je.position;
    json_t *patch = used < size ? json_loadb((const char *)data + used, size - used,
                                             JSON_DECODE_ANY, &je)
                                : NULL;
    if (!patch) {
        json_decref(target);
        return 0;
    }

    json_t *once = corral_patch_merge(target, patch);
    if (!once)
        abort();
    json_t *twice = corral_patch_merge(once, patch);
    if (!twice || !json_equal(once, twice)) {
        fprintf(stderr, "merge patch is not idempotent\n");
        abort();
    }
    json_decref(twice);
    json_decref(once);

    char err[256];
    json_t *out = NULL;
    err[0] = 0;
    int rc = corral_patch_json(target, patch, &out, err, sizeof(err));
    if (rc == 0) {
        if (!out)
            abort();
        json_decref(out);
    } else if ((rc != CORRAL_EINVALID && rc != CORRAL_ECONFLICT) || err[0] == 0) {
        abort();
    }

    err[0] = 0;
    out = corral_patch_strategic(target, patch, err, sizeof(err));
    if (out)
        json_decref(out);
    else if (err[0] == 0)
        abort(); /* a refused patch says why */

    json_decref(patch);
    json_decref(target);
    return 0;
}
