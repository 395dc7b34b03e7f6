/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cache_map: the store's in-memory ordered map from key to object (the current state).
 *
 * A two-level B+-tree: a sorted array of leaves, each a sorted array of up to
 * CORRAL_CACHE_LEAF_MAX entry pointers. Lookups are two binary searches, ordered scans walk the
 * leaves, and the per-object overhead is one pointer slot (about 11 bytes at the usual fill)
 * plus the entry itself (3 words and the key). Splitting a full leaf moves one array of leaf
 * pointers, which stays cheap well past a million objects.
 *
 * No locking here: cache.c wraps the map in its rwlock. Inserts need at most one new leaf each;
 * corral_cache_map_reserve() sets those aside beforehand so that applying a committed batch can
 * never fail for lack of memory.
 */
#ifndef CORRAL_CACHE_MAP_H
#define CORRAL_CACHE_MAP_H

#include "cache_pack.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CORRAL_CACHE_LEAF_MAX 64

struct corral_cache_entry {
    struct corral_packed *value; /* owned reference; its revision is mod_rev */
    int64_t create_rev;
    int64_t mod_rev;
    char key[];
};

struct corral_cache_leaf;

struct corral_cache_map {
    struct corral_cache_leaf **leaves;
    size_t nleaves;
    size_t cap;
    size_t count;
    struct corral_cache_leaf **spare; /* reserved leaves */
    size_t nspare;
    size_t spare_cap;
};

/* A position in key order; valid until the map changes. */
struct corral_cache_pos {
    size_t leaf;
    size_t idx;
};

void corral_cache_map_init(struct corral_cache_map *m);
/* Frees every entry (releasing its value) and the map's arrays. */
void corral_cache_map_destroy(struct corral_cache_map *m);

/*
 * Returns a new entry for key holding value (the reference is stolen), or NULL on ENOMEM (the
 * reference is then released). Free with corral_cache_entry_free.
 */
struct corral_cache_entry *corral_cache_entry_new(const char *key, struct corral_packed *value,
                                                  int64_t create_rev, int64_t mod_rev);
void corral_cache_entry_free(struct corral_cache_entry *e);

/* Returns the entry for key (borrowed) or NULL. */
struct corral_cache_entry *corral_cache_map_get(const struct corral_cache_map *m, const char *key);

/* Makes sure the next n inserts need no allocation. Returns 0 or -ENOMEM. */
int corral_cache_map_reserve(struct corral_cache_map *m, size_t n);
/* Frees reserved leaves beyond keep. */
void corral_cache_map_trim(struct corral_cache_map *m, size_t keep);

/*
 * Inserts e (the map takes ownership). Returns 0, -EEXIST when the key is present (e is not
 * taken), or -ENOMEM when no leaf could be had (only without a prior reserve).
 */
int corral_cache_map_insert(struct corral_cache_map *m, struct corral_cache_entry *e);

/* Unlinks and returns the entry for key (caller frees it), or NULL when absent. */
struct corral_cache_entry *corral_cache_map_remove(struct corral_cache_map *m, const char *key);

/* Positions *pos at the first entry with key >= key (> key when exclusive). */
void corral_cache_map_seek(const struct corral_cache_map *m, const char *key, bool exclusive,
                           struct corral_cache_pos *pos);
/* Returns the entry at *pos (borrowed) or NULL at the end. */
struct corral_cache_entry *corral_cache_map_at(const struct corral_cache_map *m,
                                               const struct corral_cache_pos *pos);
void corral_cache_map_next(const struct corral_cache_map *m, struct corral_cache_pos *pos);

/* Bytes the map itself allocates (leaves and arrays, not entries): for memory accounting. */
size_t corral_cache_map_overhead(const struct corral_cache_map *m);

#endif
