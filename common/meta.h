/* SPDX-License-Identifier: Apache-2.0 */
/*
 * meta: helpers for Kubernetes object metadata: borrowed getters for the common fields, UIDs,
 * RFC 3339 timestamps, and the name/label syntax rules (DNS-1123 labels and subdomains,
 * qualified label keys, label values) shared by validation everywhere.
 */
#ifndef CORRAL_META_H
#define CORRAL_META_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Borrowed getters; NULL when absent. */
const char *corral_meta_name(const json_t *obj);
const char *corral_meta_namespace(const json_t *obj);
const char *corral_meta_kind(const json_t *obj);
const char *corral_meta_api_version(const json_t *obj);
json_t *corral_meta_labels(const json_t *obj);
json_t *corral_meta_annotations(const json_t *obj);
/*
 * The value at a dotted path of object keys ("spec.template.spec"), or NULL when any step is
 * missing or a segment is longer than 255 bytes. Borrowed.
 */
json_t *corral_meta_path(const json_t *obj, const char *dotted);

/* metadata object, created when create is true and it is missing (borrowed). */
json_t *corral_meta_get(json_t *obj, bool create);

/* Writes a random RFC 4122 version-4 UUID (36 chars + NUL) into out. */
void corral_meta_new_uid(char out[37]);

/* Formats t as RFC 3339 UTC ("2026-11-24T23:06:00Z") into out (21 bytes). */
void corral_meta_format_time(time_t t, char out[21]);
/* Same with microseconds ("...:00.123456Z"), as MicroTime fields need (28 bytes). */
void corral_meta_format_microtime(const struct timespec *ts, char out[28]);
/* Parses RFC 3339 (with optional fraction and offset). Returns 0 or -EINVAL. */
int corral_meta_parse_time(const char *s, struct timespec *out);

/* Kubernetes age text: "5s", "3m12s", "4h", "2d3h", "400d". */
void corral_meta_format_age(int64_t seconds, char *out, size_t len);

/* Syntax checks. Each returns NULL when valid or a static message saying what is wrong. */
const char *corral_meta_check_dns_label(const char *s);     /* RFC 1123 label, <= 63 */
const char *corral_meta_check_dns_subdomain(const char *s); /* RFC 1123 subdomain, <= 253 */
const char *corral_meta_check_label_key(const char *s);     /* [prefix/]name */
const char *corral_meta_check_label_value(const char *s);   /* <= 63, may be empty */

/* Monotonic clock in nanoseconds. */
uint64_t corral_now_ns(void);

#endif
