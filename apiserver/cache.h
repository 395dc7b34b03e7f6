/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cache: the store's in-memory state, shared by both backends: every current object
 * (cache_map), the watch history (cache_history), the newest revision, and the wake-up of
 * waiting watchers.
 *
 * Readers (get, list, events, stats) take the read side of a writer-preferring rwlock and run
 * concurrently. Exactly one thread mutates (the SQLite backend's commit thread, the etcd
 * backend's watch thread): it may look entries up without the lock (corral_cache_peek), prepares
 * its changes (allocating everything they need) before it makes them durable, and then applies a
 * whole batch under the write lock with corral_cache_apply(), which cannot fail. Watchers wait on
 * a condition variable that every apply broadcasts, so delivery is immediate, not polled.
 *
 * Objects are held packed (cache_pack.h): the map and the history keep corral_packed objects and
 * readers get plain blobs made for them. A get or an unfiltered list unpacks outside the lock; a
 * filtered list unpacks under it (the filter runs there). So that a watch event is unpacked once
 * however many watchers take it, the newest events' plain values (and the versions they
 * replaced) sit in a small ring indexed by revision: the mutator puts there the plain value it
 * wrote, the first reader of an older slot fills it, and each apply recycles the slots of
 * events CORRAL_CACHE_PLAIN_SLOTS revisions older.
 */
#ifndef CORRAL_CACHE_H
#define CORRAL_CACHE_H

#include "cache_history.h"
#include "cache_map.h"
#include "cache_pack.h"
#include "store.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define CORRAL_CACHE_PLAIN_SLOTS 1024 /* a power of two */

/* A slot of the plain ring: the plain forms of the event at rev. Pointers are filled with atomic
 * compare-and-swap by readers (read lock held) and replaced by the mutator (write lock held). */
struct corral_cache_plain {
    int64_t rev;
    struct corral_blob *value; /* reference or NULL */
    struct corral_blob *prev;  /* reference or NULL */
};

struct corral_cache {
    pthread_rwlock_t lock;
    struct corral_cache_map map;
    struct corral_cache_history hist;
    int64_t rev;    /* newest applied revision; atomic loads outside the lock */
    uint64_t bytes; /* sum of the current objects' plain lengths */
    uint64_t mem;   /* sum of their packed sizes */
    struct corral_packer *packer;
    struct corral_cache_plain *plain; /* CORRAL_CACHE_PLAIN_SLOTS slots */
    struct corral_store_retention ret;
    uint64_t since_trim; /* changes applied since the last corral_cache_trim (mutator's) */

    pthread_mutex_t wait_mu;
    pthread_cond_t wait_cv; /* broadcast on every apply and on shutdown */
    pthread_cond_t idle_cv; /* signalled when the last waiter leaves during shutdown */
    unsigned waiters;
    bool closing;
};

/*
 * One committed change, prepared by the mutator before it commits. corral_cache_prepare()
 * allocates what the apply needs; after a failed commit corral_cache_change_clear() releases it.
 */
struct corral_cache_change {
    enum corral_event_type type;
    int64_t rev;
    int64_t create_rev;
    int64_t prev_rev; /* mod revision of prev; 0 for ADDED */
    int64_t ts;
    struct corral_packed *value; /* owned reference: the new state (DELETED: the last state) */
    struct corral_packed *prev;  /* owned reference or NULL */
    struct corral_blob *plain;   /* owned reference or NULL: value's plain JSON at rev */
    char *key;                   /* owned: becomes the event's key */
    struct corral_cache_entry *entry; /* owned: the new map entry for ADDED */
};

/* Initializes c with the default retention and a packer. Returns 0 or -errno. */
int corral_cache_init(struct corral_cache *c);
/* Frees everything. No thread may be inside another cache function. */
void corral_cache_destroy(struct corral_cache *c);

/* Wakes every waiting watcher (their events() calls fail with CORRAL_EUNAVAILABLE) and waits
 * until they have all returned. */
void corral_cache_shutdown(struct corral_cache *c);

/* Reads; see corral_store_get/list/events/stats in store.h for the contracts. */
int corral_cache_get(struct corral_cache *c, const char *key, struct corral_store_obj *out);
int corral_cache_list(struct corral_cache *c, const struct corral_store_list_opts *opts,
                      struct corral_store_list *out);
int corral_cache_snapshot(struct corral_cache *c, const struct corral_store_list_opts *opts,
                          struct corral_store_snapshot **out);
int corral_cache_events(struct corral_cache *c, const char *prefix, int64_t after,
                        struct corral_store_event *out, size_t max, int timeout_ms, int64_t *seen);
void corral_cache_stats(struct corral_cache *c, struct corral_store_stats *out);
int64_t corral_cache_revision(struct corral_cache *c);
void corral_cache_set_retention(struct corral_cache *c, const struct corral_store_retention *r);

/*
 * Waits until the cache has applied rev (or timeout_ms passes, or shutdown). Returns 0,
 * CORRAL_ETIMEOUT or CORRAL_EUNAVAILABLE.
 */
int corral_cache_wait_rev(struct corral_cache *c, int64_t rev, int timeout_ms);

/* ---- the single mutator only ---- */

/* The current entry for key, borrowed, read without the lock. NULL when absent. */
const struct corral_cache_entry *corral_cache_peek(struct corral_cache *c, const char *key);

/*
 * Fills ch->key and, for ADDED, ch->entry (from key, ch->value, ch->create_rev). Call after
 * setting type, revs, ts, value and prev. Returns 0 or -ENOMEM.
 */
int corral_cache_prepare(struct corral_cache *c, struct corral_cache_change *ch, const char *key);

/* Releases what a change owns (after a failed commit, or after apply, which empties it). */
void corral_cache_change_clear(struct corral_cache_change *ch);

/* Reserves room for n changes of which adds are ADDED, so that apply cannot fail. */
int corral_cache_reserve(struct corral_cache *c, size_t n, size_t adds);

/*
 * Applies n prepared changes (in revision order, after a reserve) under the write lock, raises
 * the revision to at least rev, applies the history retention (calling dropped for each event it
 * drops, as corral_cache_compact does), and then wakes the watchers. Takes over what the changes
 * own.
 */
void corral_cache_apply(struct corral_cache *c, struct corral_cache_change *ch, size_t n,
                        int64_t rev,
                        void (*dropped)(void *ctx, const struct corral_cache_event *ev), void *ctx);

/*
 * Compacts the history: drops every event at or below upto (0: none on that ground) and then the
 * oldest ones while a retention limit is exceeded (ages measured against now, in wall-clock
 * seconds). For each dropped event calls dropped(ctx, ev) under the write lock (it must not call
 * into the cache). Returns the new compacted revision.
 */
int64_t corral_cache_compact(struct corral_cache *c, int64_t upto, int64_t now,
                             void (*dropped)(void *ctx, const struct corral_cache_event *ev),
                             void *ctx);

/* Sets the revision and compacted revision; when loading, call it before the first row. */
void corral_cache_set_loaded(struct corral_cache *c, int64_t rev, int64_t compacted);

/*
 * Replaces every object with those of m (taken over; m is left empty; its values packed with
 * c->packer) as of revision rev: the history is dropped and compacted set to rev, so that
 * watchers re-list (CORRAL_EGONE). For a backend that had to re-read its source.
 */
void corral_cache_replace(struct corral_cache *c, struct corral_cache_map *m, int64_t rev);

#define CORRAL_CACHE_TRIM_WRITES 4096

/*
 * Hands the heap's free pages back to the system (malloc_trim) when CORRAL_CACHE_TRIM_WRITES
 * changes were applied since the last time; for the mutator's idle moments. Writes leave holes in
 * the allocator's per-thread arenas (request buffers freed around the small packed objects that
 * stay): at 100k pods about 16 MB that the allocator would keep. Returns true when it trimmed.
 */
bool corral_cache_trim(struct corral_cache *c);

/* Whether corral_cache_trim() has something to do. */
bool corral_cache_trim_due(const struct corral_cache *c);

/* Raises the revision to rev with no change (nothing happened below it) and wakes watchers. */
void corral_cache_advance(struct corral_cache *c, int64_t rev);

/*
 * Replays one stored version of key while loading (rows in revision order): value (packed with
 * c->packer, reference stolen) became key's state at rev; when deleted, the current state stands
 * for the deleted one (value, which may then be NULL, is released). Versions at or below the
 * compacted revision only set the current state; later ones also become history events (ADDED,
 * MODIFIED or DELETED according to the state before them), subject to the retention by count
 * and size (dropped as for corral_cache_apply). Returns 0, -ENOMEM, or
 * CORRAL_EINTERNAL for a deletion of a key that does not exist (the value is released).
 */
int corral_cache_load(struct corral_cache *c, const char *key, struct corral_packed *value,
                      int64_t create_rev, int64_t rev, bool deleted, int64_t ts,
                      void (*dropped)(void *ctx, const struct corral_cache_event *ev), void *ctx);

#endif
