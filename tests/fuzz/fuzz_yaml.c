/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_yaml: libFuzzer target for the manifest decoding path every request body and every
 * `corral sim` input goes through: YAML/JSON → jansson (common/yamljson.c), then, for what
 * parsed, YAML out and back in again, which must give an equal value. Built with
 * -Dfuzz=true under clang; fuzz_main.c runs the same function over the seed corpus in the
 * ordinary test suite so the target never rots.
 */
#include "error.h"
#include "yamljson.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *docs = NULL;
    struct corral_parse_error err;
    int rc = corral_yaml_load((const char *)data, size, &docs, &err);
    if (rc != 0) {
        if (rc != CORRAL_EPARSE && rc != -ENOMEM)
            abort(); /* only syntax errors (or memory) are acceptable failures */
        if (err.line < 0 || err.column < 0 || !memchr(err.message, 0, sizeof(err.message)))
            abort();
        return 0;
    }
    char *text = corral_yaml_dump_all(docs);
    if (!text)
        abort();
    json_t *again = NULL;
    if (corral_yaml_load(text, strlen(text), &again, &err) != 0) {
        fprintf(stderr, "re-reading our own YAML failed at %d:%d: %s\n%s\n", err.line,
                err.column, err.message, text);
        abort();
    }
    if (!json_equal(docs, again)) {
        /* reals may lose their last bit through %.17g; anything else is a bug */
        char *a = json_dumps(docs, JSON_COMPACT), *b = json_dumps(again, JSON_COMPACT);
        bool reals = a && b && strpbrk(a, ".eE") != NULL;
        if (!reals) {
            fprintf(stderr, "round trip changed the value:\n%s\n%s\n", a, b);
            abort();
        }
        free(a);
        free(b);
    }
    json_decref(again);
    free(text);
    json_decref(docs);
    return 0;
}
