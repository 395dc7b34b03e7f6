/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_query: libFuzzer target for the small languages that arrive in query strings and
 * manifests: label selectors (`labelSelector=`), field selectors (`fieldSelector=`) and
 * resource quantities (`cpu: 500m`). Each must parse or refuse with a message; a quantity that
 * parses must print in a canonical form that parses back to the same value, and a selector
 * that parses must be usable for matching.
 */
#include "error.h"
#include "quantity.h"
#include "selector.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void selector(const char *text, bool field)
{
    struct corral_selector *sel = NULL;
    char err[256] = "";
    int rc = field ? corral_field_selector_parse(text, &sel, err, sizeof(err))
                   : corral_selector_parse(text, &sel, err, sizeof(err));
    if (rc != 0) {
        if (rc != CORRAL_EBADREQUEST || !err[0])
            abort(); /* a refusal says why */
        return;
    }
    json_t *labels = json_pack("{s:s, s:s, s:s}", "app", "web", "tier", "", "gpu", "2");
    (void)corral_selector_match_labels(sel, labels);
    (void)corral_selector_match_labels(sel, NULL);
    (void)corral_selector_is_empty(sel);
    json_decref(labels);
    corral_selector_free(sel);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;

    struct corral_quantity q, back;
    if (corral_quantity_parse(text, &q) == 0) {
        char canon[64];
        if (corral_quantity_format(&q, canon, 32) < 0) /* 32 bytes always suffice */
            abort();
        if (corral_quantity_parse(canon, &back) != 0 || corral_quantity_cmp(&q, &back) != 0) {
            fprintf(stderr, "quantity %s printed as %s does not read back\n", text, canon);
            abort();
        }
        (void)corral_quantity_milli(&q);
        (void)corral_quantity_value(&q);
    }
    selector(text, false);
    selector(text, true);
    free(text);
    return 0;
}
