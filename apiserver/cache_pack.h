/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cache_pack: the compact form in which the store holds objects in memory.
 *
 * Every current object and every version the watch history keeps is held packed: zstd frames
 * compressed against a dictionary trained from recent objects of the same kind, without the
 * digits of metadata.resourceVersion. The revision is kept beside the packed object (map entry,
 * history event) and spliced back in when a reader needs the plain JSON, so one packed object
 * serves every revision it is seen at (a deleted object's last state is its live state at the
 * deletion revision) and the dictionary never sees digits that change on every write. Stored
 * pods differ from each other in a few dozen bytes (name, uid, timestamps), so a 1.4 KB pod
 * packs into about 60.
 *
 * Classes and dictionaries. Objects are grouped by their top-level "kind" (the key layout
 * cannot tell "/registry/apps/deployments/" from a namespace level, the kind can); each class
 * has a current dictionary, a version numbered within the class. A packed object holds a
 * reference to the dictionary it was packed with, so older versions stay decodable for as long
 * as an object needs them and are freed with the last one. A class trains its first dictionary
 * once it has seen 64 writes and holds 64 KB of live plain JSON (below that a dictionary costs
 * more than it saves: the objects stay as they are, or are compressed without a dictionary when
 * they are large), from the last 64 objects written; it trains again after 16 times as many
 * writes (at most every 65,536), or sooner when the packed sizes drift to twice what they were,
 * and adopts the new dictionary only when it packs those recent samples at least 10 % smaller.
 * Training (a few ms) runs in the writing thread that makes it due, outside the packer's lock.
 *
 * Thread-safe: packing and unpacking may run in any thread at once; zstd contexts are taken
 * from a process-wide free list for one operation each.
 */
#ifndef CORRAL_CACHE_PACK_H
#define CORRAL_CACHE_PACK_H

#include "store.h"

#include <stddef.h>
#include <stdint.h>

struct corral_pack_dict;
struct corral_packer;

/*
 * An immutable packed object. zlen == len: data holds the text as it is; otherwise a zstd frame
 * (against dict's dictionary when it has one).
 */
struct corral_packed {
    int refs;                      /* atomic */
    uint32_t rv_off;               /* where the resourceVersion digits go; 0 = nowhere */
    uint32_t len;                  /* plain length without those digits */
    uint32_t zlen;                 /* bytes in data */
    struct corral_pack_dict *dict; /* reference (the class's); NULL when packed without a class */
    char data[];
};

struct corral_packer_stats {
    uint64_t classes;     /* kinds seen */
    uint64_t dicts;       /* dictionaries alive (current and older ones still referenced) */
    uint64_t dict_bytes;  /* memory they take (zstd's compression and decompression forms) */
    uint64_t trainings;   /* dictionaries trained */
    uint64_t adoptions;   /* of which adopted */
    uint64_t live_plain;  /* plain bytes of the packed objects alive (digits left out) */
    uint64_t live_packed; /* memory of those packed objects (headers included) */
};

/* Returns a new packer in *out (free with corral_packer_free). 0 or -ENOMEM. */
int corral_packer_new(struct corral_packer **out);

/* Frees the packer. Every packed object it made must have been released. */
void corral_packer_free(struct corral_packer *pk);

/*
 * Packs text[0..len) less the rv_len bytes at rv_off (the resourceVersion's digits or the
 * store's placeholder; rv_off = 0 means there are none and rv_len must be 0). Returns a new
 * packed object (refs = 1, caller unrefs), or NULL on ENOMEM or when rv_off/rv_len lie outside
 * the text.
 */
struct corral_packed *corral_packer_pack(struct corral_packer *pk, const char *text, size_t len,
                                         size_t rv_off, size_t rv_len);

/* Packs a stamped store blob (digits at b->rv_off, if any). As corral_packer_pack(). */
struct corral_packed *corral_packer_pack_blob(struct corral_packer *pk,
                                              const struct corral_blob *b);

/*
 * Returns a new copy of p (refs = 1), or NULL on ENOMEM. A long-lived object is best allocated
 * by the thread that keeps it: glibc gives each thread its own arena, and small objects that
 * outlive the request buffers around them pin those arenas' pages (about 30 MB at 100k pods
 * when 64 writers packed their own objects).
 */
struct corral_packed *corral_packed_copy(const struct corral_packed *p);

/* A packed object holding text as it is, outside any class (for tests). NULL on ENOMEM. */
struct corral_packed *corral_packed_raw(const char *text, size_t len);

struct corral_packed *corral_packed_ref(struct corral_packed *p);
void corral_packed_unref(struct corral_packed *p);

/*
 * Returns the plain JSON of p with the decimal rev at rv_off, as a new blob (refs = 1, rv_off
 * set; caller unrefs), or NULL on ENOMEM (or a frame that does not decode, which is logged).
 * p may be NULL (returns NULL).
 */
struct corral_blob *corral_packed_blob(const struct corral_packed *p, int64_t rev);

/* Length of the plain JSON of p at rev. */
size_t corral_packed_plain_len(const struct corral_packed *p, int64_t rev);

/* Memory one packed object takes (header and data, not its dictionary). */
size_t corral_packed_size(const struct corral_packed *p);

void corral_packer_stats(struct corral_packer *pk, struct corral_packer_stats *out);

#endif
