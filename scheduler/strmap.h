/* SPDX-License-Identifier: Apache-2.0 */
/*
 * strmap: an open-addressing hash map from NUL-terminated strings to pointers, used for the
 * snapshot's node names, the pod registry and the signature cache. Keys are copied; values are
 * borrowed. Deletion uses tombstones; the table grows at 70 % load (tombstones included).
 */
#ifndef CORRAL_SCHED_STRMAP_H
#define CORRAL_SCHED_STRMAP_H

#include <stddef.h>
#include <stdint.h>

struct corral_strmap_slot {
    char *key; /* NULL: empty; (char *)1: tombstone */
    uint64_t hash;
    void *value;
};

struct corral_strmap {
    struct corral_strmap_slot *slots;
    size_t cap, used, live;
};

void corral_strmap_init(struct corral_strmap *m);
/* Frees keys and the table; values are the caller's. */
void corral_strmap_clear(struct corral_strmap *m);
/* Value for key, or NULL. */
void *corral_strmap_get(const struct corral_strmap *m, const char *key);
/* The same when the caller already knows corral_pod_hash(key, strlen(key)). */
void *corral_strmap_get_hashed(const struct corral_strmap *m, const char *key, uint64_t hash);
/* Inserts or replaces. Returns 0 or -ENOMEM. */
int corral_strmap_put(struct corral_strmap *m, const char *key, void *value);
/* Removes key; returns its value or NULL. */
void *corral_strmap_del(struct corral_strmap *m, const char *key);
/* Iteration: *pos starts at 0; returns 1 with key/value for each live entry, then 0. */
int corral_strmap_next(const struct corral_strmap *m, size_t *pos, const char **key, void **value);

#endif
