/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cache_history: the watch history, a ring of the most recent events in revision order.
 *
 * Each event owns its key and references to the packed object after and before the change
 * (value at rev, prev at prev_rev), so the history costs little beyond the versions that only it
 * keeps alive: the value an update replaced and the last state of a deleted object. `bytes`
 * counts exactly those, as plain JSON (each superseded version is the `prev` of exactly one
 * event), which is what retention by size limits; `mem` counts their packed size.
 *
 * No locking here: cache.c holds its rwlock around every call.
 */
#ifndef CORRAL_CACHE_HISTORY_H
#define CORRAL_CACHE_HISTORY_H

#include "cache_pack.h"

#include <stddef.h>
#include <stdint.h>

struct corral_cache_event {
    int64_t rev;
    int64_t prev_rev;          /* mod revision of prev; 0 when there is none */
    int64_t ts;                /* wall-clock seconds of the commit */
    char *key;                   /* owned */
    struct corral_packed *value; /* owned reference: the object at rev (DELETED: its last state) */
    struct corral_packed *prev;  /* owned reference or NULL: the object at prev_rev */
    enum corral_event_type type;
};

struct corral_cache_history {
    struct corral_cache_event *ring;
    size_t cap; /* a power of two, or 0 */
    size_t head;
    size_t n;
    uint64_t bytes;    /* plain bytes of the versions only the history keeps alive */
    uint64_t mem;      /* the memory those versions take packed */
    int64_t compacted; /* events at or below this revision are gone */
};

void corral_cache_history_init(struct corral_cache_history *h);
/* Releases every event and the ring. */
void corral_cache_history_destroy(struct corral_cache_history *h);

/* Releases what ev owns and zeroes it. */
void corral_cache_event_clear(struct corral_cache_event *ev);

/* Plain bytes of ev's objects that only the history holds (see above). */
uint64_t corral_cache_event_bytes(const struct corral_cache_event *ev);
/* Packed bytes of the same. */
uint64_t corral_cache_event_mem(const struct corral_cache_event *ev);

/* Makes room for k more events without allocating in push. Returns 0 or -ENOMEM. */
int corral_cache_history_reserve(struct corral_cache_history *h, size_t k);

/* Gives back ring memory when the ring is mostly empty (after a compaction). */
void corral_cache_history_shrink(struct corral_cache_history *h);

/*
 * Appends ev (its revision must exceed the newest one), taking over what it owns. Returns 0 or
 * -ENOMEM (only without a prior reserve; ev is then left to the caller).
 */
int corral_cache_history_push(struct corral_cache_history *h, struct corral_cache_event *ev);

/*
 * Moves the oldest event into *out (the caller clears it) and raises compacted to its revision.
 * Returns 0, or -ENOENT when empty.
 */
int corral_cache_history_pop(struct corral_cache_history *h, struct corral_cache_event *out);

/* Index (0 = oldest) of the first event with rev > after; h->n when there is none. */
size_t corral_cache_history_find(const struct corral_cache_history *h, int64_t after);

/* The event at index i (0 = oldest), borrowed; i must be below h->n. */
const struct corral_cache_event *corral_cache_history_at(const struct corral_cache_history *h,
                                                         size_t i);

#endif
