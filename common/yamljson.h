/* SPDX-License-Identifier: Apache-2.0 */
/*
 * yamljson: YAML (and JSON) manifests to jansson values and back.
 *
 * corral_yaml_load() accepts a stream of one or more documents (`---` separated), resolves
 * anchors, aliases and `<<` merge keys, and types plain scalars the way kubectl's YAML reader
 * (YAML 1.1 via go-yaml) does: `true`/`yes`/`on` are booleans, `0x1F` is an integer, quoted
 * scalars are always strings. Empty documents are skipped. Input starting with `{` or `[` is
 * read as JSON by jansson so that large integers and escapes are exact.
 *
 * Errors carry the 1-based line and column of the offending token, so callers can report
 * "pods.yaml:12:3: mapping values are not allowed in this context".
 */
#ifndef CORRAL_YAML_H
#define CORRAL_YAML_H

#include <jansson.h>
#include <stddef.h>

struct corral_parse_error {
    int line;   /* 1-based; 0 when unknown */
    int column; /* 1-based; 0 when unknown */
    char message[256];
};

/*
 * Parses buf[0..len). On success returns 0 and *docs is a new JSON array holding each
 * non-empty document (caller owns it). On failure returns CORRAL_EPARSE (or -ENOMEM) and fills
 * *err when err is not NULL.
 */
int corral_yaml_load(const char *buf, size_t len, json_t **docs, struct corral_parse_error *err);

/* As corral_yaml_load(), reading path. Returns -errno when the file cannot be read. */
int corral_yaml_load_file(const char *path, json_t **docs, struct corral_parse_error *err);

/*
 * Renders value as one YAML document (block style, strings that would read back as another
 * type are quoted). Returns a malloc'd NUL-terminated string (caller frees), NULL on ENOMEM.
 */
char *corral_yaml_dump(const json_t *value);

/* Renders each element of docs as a document separated by `---`. Caller frees. */
char *corral_yaml_dump_all(const json_t *docs);

#endif
