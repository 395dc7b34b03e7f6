/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_protobuf: libFuzzer target for the protobuf request bodies kubectl's typed clients send
 * (apiserver/protobuf.c). These arrive from the network before any object validation, so the
 * decoder must answer every byte string with an object, 415 or 400, and a message, never a
 * crash. The seed corpus holds bodies captured from kubectl v1.32.4.
 */
#include "error.h"
#include "protobuf.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *obj = NULL;
    char err[256];
    memset(err, 'x', sizeof(err));
    int rc = corral_protobuf_decode(data, size, &obj, err, sizeof(err));
    if (rc == 0) {
        if (!json_is_object(obj))
            abort();
        char *text = json_dumps(obj, JSON_COMPACT); /* every string in it is valid UTF-8 */
        if (!text)
            abort();
        free(text);
        json_decref(obj);
        return 0;
    }
    if (rc != CORRAL_EMEDIATYPE && rc != CORRAL_EBADREQUEST)
        abort();
    if (!memchr(err, 0, sizeof(err)) || err[0] == 0)
        abort(); /* a refusal always says why */
    return 0;
}
