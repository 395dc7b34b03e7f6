/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_backend: what the store backends (store_sqlite.c, store_etcd.c) share and nothing else
 * includes: key checks and the "stamped document" that lets a writer put the revision into an
 * object's metadata.resourceVersion without parsing or re-serializing it.
 *
 * The caller's thread serializes the object once with a placeholder in
 * metadata.resourceVersion: a control character followed by a random 128-bit nonce, which JSON
 * output always escapes ("\u0001" + 32 hex digits), so the sequence cannot come from any other
 * part of the object by accident or by a client's design. Once the revision is known (inside the
 * group commit, or when etcd answers), corral_store_doc_stamp() splices the decimal revision in
 * place of the placeholder: one copy, no JSON work on the writer's path.
 */
#ifndef CORRAL_STORE_BACKEND_H
#define CORRAL_STORE_BACKEND_H

#include "store.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Longest key the store accepts (etcd's own limit is 1.5 MiB per request; keys are paths). */
#define CORRAL_STORE_KEY_MAX 1024

struct corral_store_doc {
    char *json; /* compact JSON holding the placeholder; owned */
    size_t len;
    size_t ph_off; /* offset of the placeholder (just after the opening quote) */
    size_t ph_len; /* placeholder length, up to the closing quote */
};

/*
 * Checks an object key: starts with '/', does not end with '/', printable ASCII without spaces,
 * at most CORRAL_STORE_KEY_MAX bytes. Returns 0 or -EINVAL.
 */
int corral_store_check_key(const char *key);

/* Checks a list or watch prefix: starts and ends with '/'. Returns 0 or -EINVAL. */
int corral_store_check_prefix(const char *prefix);

/*
 * Serializes obj (a JSON object whose metadata, if present, is an object) with the
 * resourceVersion placeholder. obj is modified (metadata.resourceVersion is set to the
 * placeholder) but not stolen. Returns 0 and fills *doc (free with corral_store_doc_clear),
 * -EINVAL for a non-object, or -ENOMEM.
 */
int corral_store_doc_make(json_t *obj, struct corral_store_doc *doc);

void corral_store_doc_clear(struct corral_store_doc *doc);

/*
 * Returns a new blob (refs = 1, caller unrefs) holding doc with rev in place of the placeholder
 * and rv_off set, or NULL on ENOMEM.
 */
struct corral_blob *corral_store_doc_stamp(const struct corral_store_doc *doc, int64_t rev);

/*
 * Returns a new blob holding b with its resourceVersion (at b->rv_off) replaced by rev, or NULL
 * on ENOMEM or when b->rv_off does not point at a resourceVersion. Caller unrefs.
 */
struct corral_blob *corral_store_blob_restamp(const struct corral_blob *b, int64_t rev);

/*
 * Checks that b->rv_off points at the decimal digits of rev followed by '"'. Returns true when
 * it does (used when loading stored objects).
 */
bool corral_store_blob_check_rev(const struct corral_blob *b, int64_t rev);

/*
 * Returns a new blob holding data[0..len) with the old_len bytes at off replaced by the decimal
 * rev, and rv_off = off; NULL on ENOMEM. Caller unrefs.
 */
struct corral_blob *corral_store_blob_splice(const char *data, size_t len, size_t off,
                                             size_t old_len, int64_t rev);

/* Returns a new blob (refs = 1) with data and rv_off, or NULL on ENOMEM. */
struct corral_blob *corral_store_blob_make(const char *data, size_t len, uint32_t rv_off);

/*
 * Returns a new blob (refs = 1) of len bytes whose data the caller fills in (data[len] is
 * already NUL), or NULL on ENOMEM.
 */
struct corral_blob *corral_store_blob_alloc(size_t len, uint32_t rv_off);

/*
 * Number of decimal digits at data[off] when they are the quoted revision rev (a '"' before and
 * after them), else 0: the check corral_store_blob_check_rev() makes, on text.
 */
size_t corral_store_rev_digits(const char *data, size_t len, size_t off, int64_t rev);

#endif
