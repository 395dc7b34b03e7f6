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
 */
#ifndef CORRAL_CACHE_H
#define CORRAL_CACHE_H

#include "cache_history.h"
#include "cache_map.h"
#include "store.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct corral_cache {
    pthread_rwlock_t lock;
    struct corral_cache_map map;
    struct corral_cache_history hist;
    int64_t rev;    /* newest applied revision; atomic loads outside the lock */
    uint64_t bytes; /* sum of the current objects' lengths */
    struct corral_store_retention ret;

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
    struct corral_blob *value; /* owned reference: the new state (DELETED: restamped last state) */
    struct corral_blob *prev;  /* owned reference or NULL */
    char *key;                 /* owned: becomes the event's key */
    struct corral_cache_entry *entry; /* owned: the new map entry for ADDED */
};

/* Initializes c with the default retention. Returns 0 or -errno. */
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
 * Replaces every object with those of m (taken over; m is left empty), whose values' lengths
 * sum to bytes, as of revision rev: the history is dropped and compacted set to rev, so that
 * watchers re-list (CORRAL_EGONE). For a backend that had to re-read its source.
 */
void corral_cache_replace(struct corral_cache *c, struct corral_cache_map *m, uint64_t bytes,
                          int64_t rev);

/* Raises the revision to rev with no change (nothing happened below it) and wakes watchers. */
void corral_cache_advance(struct corral_cache *c, int64_t rev);

/*
 * Replays one stored version of key while loading (rows in revision order): value (reference
 * stolen) became key's state at rev, or its last state when deleted. Versions at or below the
 * compacted revision only set the current state; later ones also become history events (ADDED,
 * MODIFIED or DELETED according to the state before them), subject to the retention by count
 * and size (dropped as for corral_cache_apply). Returns 0, -ENOMEM, or
 * CORRAL_EINTERNAL for a deletion of a key that does not exist (the value is released).
 */
int corral_cache_load(struct corral_cache *c, const char *key, struct corral_blob *value,
                      int64_t create_rev, int64_t rev, bool deleted, int64_t ts,
                      void (*dropped)(void *ctx, const struct corral_cache_event *ev), void *ctx);

#endif
