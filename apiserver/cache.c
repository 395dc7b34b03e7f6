/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cache: the in-memory state behind both store backends (see cache.h): locking, reads, the
 * batch apply of committed changes, watch wake-ups and history compaction.
 *
 * Invariants (under the lock): every map entry's value is packed without its resourceVersion,
 * which is its mod_rev; bytes is the sum of the map values' plain lengths at their mod_rev and
 * mem of their packed sizes; every history event has rev <= rev and rev > hist.compacted;
 * hist.compacted <= rev; a plain slot whose rev names a retained event holds that event's value
 * at rev and its prev at prev_rev, or NULL where nobody asked yet.
 */
#include "cache.h"

#include "error.h"
#include "log.h"
#include "meta.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t load_rev(struct corral_cache *c)
{
    return __atomic_load_n(&c->rev, __ATOMIC_ACQUIRE);
}

int corral_cache_init(struct corral_cache *c)
{
    memset(c, 0, sizeof(*c));
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    /* A steady stream of readers must not starve the commit thread. */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    int rc = pthread_rwlock_init(&c->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (rc != 0)
        return -rc;

    pthread_condattr_t cattr;
    pthread_condattr_init(&cattr);
    pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
    pthread_mutex_init(&c->wait_mu, NULL);
    pthread_cond_init(&c->wait_cv, &cattr);
    pthread_cond_init(&c->idle_cv, NULL);
    pthread_condattr_destroy(&cattr);

    corral_cache_map_init(&c->map);
    corral_cache_history_init(&c->hist);
    c->plain = calloc(CORRAL_CACHE_PLAIN_SLOTS, sizeof(*c->plain));
    if (!c->plain || corral_packer_new(&c->packer) != 0) {
        corral_cache_destroy(c);
        return -ENOMEM;
    }
    c->ret.max_events = CORRAL_STORE_HISTORY_EVENTS;
    c->ret.max_age_s = CORRAL_STORE_HISTORY_AGE_S;
    c->ret.max_bytes = CORRAL_STORE_HISTORY_BYTES;
    return 0;
}

/* Releases every slot of the plain ring (write lock held, or no other thread). */
static void plain_clear(struct corral_cache *c)
{
    for (size_t i = 0; c->plain && i < CORRAL_CACHE_PLAIN_SLOTS; i++) {
        corral_blob_unref(c->plain[i].value);
        corral_blob_unref(c->plain[i].prev);
        c->plain[i] = (struct corral_cache_plain){0};
    }
}

void corral_cache_destroy(struct corral_cache *c)
{
    corral_cache_map_destroy(&c->map);
    corral_cache_history_destroy(&c->hist);
    plain_clear(c);
    free(c->plain);
    c->plain = NULL;
    corral_packer_free(c->packer); /* after everything packed is gone */
    c->packer = NULL;
    pthread_rwlock_destroy(&c->lock);
    pthread_cond_destroy(&c->wait_cv);
    pthread_cond_destroy(&c->idle_cv);
    pthread_mutex_destroy(&c->wait_mu);
}

void corral_cache_shutdown(struct corral_cache *c)
{
    pthread_mutex_lock(&c->wait_mu);
    c->closing = true;
    pthread_cond_broadcast(&c->wait_cv);
    while (c->waiters > 0)
        pthread_cond_wait(&c->idle_cv, &c->wait_mu);
    pthread_mutex_unlock(&c->wait_mu);
}

/* ---- reads -------------------------------------------------------------------------------- */

int corral_cache_get(struct corral_cache *c, const char *key, struct corral_store_obj *out)
{
    struct corral_packed *p = NULL;
    pthread_rwlock_rdlock(&c->lock);
    const struct corral_cache_entry *e = corral_cache_map_get(&c->map, key);
    if (e) {
        p = corral_packed_ref(e->value);
        out->create_rev = e->create_rev;
        out->mod_rev = e->mod_rev;
    }
    pthread_rwlock_unlock(&c->lock);
    if (!p)
        return CORRAL_ENOTFOUND;
    out->value = corral_packed_blob(p, out->mod_rev); /* outside the lock */
    corral_packed_unref(p);
    return out->value ? 0 : -ENOMEM;
}

/* An entry taken for a list, to unpack once the lock is released. */
struct taken {
    struct corral_packed *value;
    int64_t rev;
};

/* Makes room for one more item (and taken entry, when t is not NULL). */
static int list_grow(struct corral_store_list *l, size_t *cap, struct taken **t)
{
    if (l->n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 64;
    struct corral_blob **items = realloc(l->items, ncap * sizeof(*items));
    if (!items)
        return -ENOMEM;
    l->items = items;
    char **keys = realloc(l->keys, ncap * sizeof(*keys));
    if (!keys)
        return -ENOMEM;
    l->keys = keys;
    if (t) {
        struct taken *nt = realloc(*t, ncap * sizeof(**t));
        if (!nt)
            return -ENOMEM;
        *t = nt;
    }
    *cap = ncap;
    return 0;
}

/* Appends key with item b (reference stolen, or NULL when t gets the packed value instead). */
static int list_push(struct corral_store_list *l, size_t *cap, const struct corral_cache_entry *e,
                     struct corral_blob *b, struct taken **t)
{
    char *key = NULL;
    if (list_grow(l, cap, t) != 0 || !(key = strdup(e->key))) {
        corral_blob_unref(b);
        return -ENOMEM;
    }
    l->keys[l->n] = key;
    l->items[l->n] = b;
    if (t)
        (*t)[l->n] = (struct taken){corral_packed_ref(e->value), e->mod_rev};
    l->n++;
    return 0;
}

/* Positions *pos at the first key after start_after under prefix. */
static void list_seek(struct corral_cache *c, const struct corral_store_list_opts *opts,
                      struct corral_cache_pos *pos)
{
    if (opts->start_after && strcmp(opts->start_after, opts->prefix) >= 0)
        corral_cache_map_seek(&c->map, opts->start_after, true, pos);
    else
        corral_cache_map_seek(&c->map, opts->prefix, false, pos);
}

/*
 * One entry of a list walk (lock held): with a filter, unpacks and filters it now; without, notes
 * its packed value in *t. Returns 0, 1 to stop (limit reached: more is set) or -ENOMEM.
 */
static int list_step(struct corral_store_list *out, size_t *cap, const struct corral_cache_entry *e,
                     const struct corral_store_list_opts *opts, struct taken **t)
{
    struct corral_blob *b = NULL;
    if (opts->filter) {
        if (!(b = corral_packed_blob(e->value, e->mod_rev)))
            return -ENOMEM;
        if (!opts->filter(b, opts->filter_ctx)) {
            corral_blob_unref(b);
            return 0;
        }
    }
    if (opts->limit && out->n == opts->limit) {
        corral_blob_unref(b);
        out->more = true;
        return 1;
    }
    return list_push(out, cap, e, b, opts->filter ? NULL : t);
}

int corral_cache_list(struct corral_cache *c, const struct corral_store_list_opts *opts,
                      struct corral_store_list *out)
{
    size_t plen = strlen(opts->prefix), cap = 0;
    struct corral_cache_pos pos;
    struct taken *t = NULL;
    int rc = 0;

    pthread_rwlock_rdlock(&c->lock);
    out->rev = c->rev;
    list_seek(c, opts, &pos);
    for (const struct corral_cache_entry *e; (e = corral_cache_map_at(&c->map, &pos));
         corral_cache_map_next(&c->map, &pos)) {
        if (strncmp(e->key, opts->prefix, plen) != 0)
            break;
        if ((rc = list_step(out, &cap, e, opts, &t)) != 0)
            break;
    }
    pthread_rwlock_unlock(&c->lock);
    if (rc > 0)
        rc = 0;
    /* unfiltered: unpack outside the lock, so that a long list does not hold up the writer */
    for (size_t i = 0; t && i < out->n; i++) {
        out->items[i] = rc == 0 ? corral_packed_blob(t[i].value, t[i].rev) : NULL;
        if (!out->items[i])
            rc = -ENOMEM;
        corral_packed_unref(t[i].value);
    }
    free(t);
    if (rc != 0)
        corral_store_list_clear(out);
    return rc;
}

/* ---- snapshots (store.h): the keys and packed values of a list, unpacked on demand ---- */

struct corral_store_snapshot {
    char **keys;
    struct taken *items;
    size_t n, cap;
    int64_t rev;
    bool more;
};

void corral_store_snapshot_free(struct corral_store_snapshot *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->keys[i]);
        corral_packed_unref(s->items[i].value);
    }
    free(s->keys);
    free(s->items);
    free(s);
}

size_t corral_store_snapshot_count(const struct corral_store_snapshot *s)
{
    return s->n;
}

int64_t corral_store_snapshot_rev(const struct corral_store_snapshot *s)
{
    return s->rev;
}

bool corral_store_snapshot_more(const struct corral_store_snapshot *s)
{
    return s->more;
}

const char *corral_store_snapshot_key(const struct corral_store_snapshot *s, size_t i)
{
    return s->keys[i];
}

int corral_store_snapshot_item(const struct corral_store_snapshot *s, size_t i, const char **key,
                               struct corral_blob **value)
{
    *key = s->keys[i];
    *value = corral_packed_blob(s->items[i].value, s->items[i].rev);
    return *value ? 0 : -ENOMEM;
}

static int snapshot_push(struct corral_store_snapshot *s, const struct corral_cache_entry *e)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        char **keys = realloc(s->keys, cap * sizeof(*keys));
        if (keys)
            s->keys = keys;
        struct taken *items = keys ? realloc(s->items, cap * sizeof(*items)) : NULL;
        if (!items)
            return -ENOMEM;
        s->items = items;
        s->cap = cap;
    }
    if (!(s->keys[s->n] = strdup(e->key)))
        return -ENOMEM;
    s->items[s->n++] = (struct taken){corral_packed_ref(e->value), e->mod_rev};
    return 0;
}

int corral_cache_snapshot(struct corral_cache *c, const struct corral_store_list_opts *opts,
                          struct corral_store_snapshot **out)
{
    struct corral_store_snapshot *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    size_t plen = strlen(opts->prefix);
    struct corral_cache_pos pos;
    int rc = 0;
    pthread_rwlock_rdlock(&c->lock);
    s->rev = c->rev;
    list_seek(c, opts, &pos);
    for (const struct corral_cache_entry *e; (e = corral_cache_map_at(&c->map, &pos));
         corral_cache_map_next(&c->map, &pos)) {
        if (strncmp(e->key, opts->prefix, plen) != 0)
            break;
        if (opts->limit && s->n == opts->limit) {
            s->more = true;
            break;
        }
        if ((rc = snapshot_push(s, e)) != 0)
            break;
    }
    pthread_rwlock_unlock(&c->lock);
    if (rc != 0) {
        corral_store_snapshot_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* The blob in *cell, or p unpacked at rev and left there for the next reader (read lock held). */
static struct corral_blob *slot_take(struct corral_blob **cell, const struct corral_packed *p,
                                     int64_t rev)
{
    struct corral_blob *b = __atomic_load_n(cell, __ATOMIC_ACQUIRE);
    if (b)
        return corral_blob_ref(b);
    if (!(b = corral_packed_blob(p, rev)))
        return NULL;
    struct corral_blob *seen = NULL;
    corral_blob_ref(b); /* the slot's */
    if (__atomic_compare_exchange_n(cell, &seen, b, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return b;
    corral_blob_unref(b); /* another reader was first */
    corral_blob_unref(b);
    return corral_blob_ref(seen);
}

/* ev's value (or prev) as a plain blob (read lock held). NULL on ENOMEM. */
static struct corral_blob *event_plain(struct corral_cache *c, const struct corral_cache_event *ev,
                                       bool prev)
{
    const struct corral_packed *p = prev ? ev->prev : ev->value;
    int64_t rev = prev ? ev->prev_rev : ev->rev;
    struct corral_cache_plain *s = &c->plain[ev->rev & (CORRAL_CACHE_PLAIN_SLOTS - 1)];
    if (s->rev != ev->rev)
        return corral_packed_blob(p, rev);
    return slot_take(prev ? &s->prev : &s->value, p, rev);
}

static int copy_event(struct corral_cache *c, struct corral_store_event *out,
                      const struct corral_cache_event *ev)
{
    memset(out, 0, sizeof(*out));
    out->type = ev->type;
    out->rev = ev->rev;
    out->key = strdup(ev->key);
    out->value = event_plain(c, ev, false);
    out->prev = ev->prev ? event_plain(c, ev, true) : NULL;
    if (!out->key || !out->value || (ev->prev && !out->prev)) {
        corral_store_event_clear(out);
        return -ENOMEM;
    }
    return 0;
}

/* One pass over the history. Returns the number of events copied, CORRAL_EGONE or -ENOMEM. */
static int events_scan(struct corral_cache *c, const char *prefix, int64_t after,
                       struct corral_store_event *out, size_t max, int64_t *seen)
{
    size_t plen = strlen(prefix), n = 0;
    int rc = 0;
    pthread_rwlock_rdlock(&c->lock);
    if (after < c->hist.compacted) {
        pthread_rwlock_unlock(&c->lock);
        return CORRAL_EGONE;
    }
    *seen = c->rev > after ? c->rev : after;
    for (size_t i = corral_cache_history_find(&c->hist, after); i < c->hist.n; i++) {
        const struct corral_cache_event *ev = corral_cache_history_at(&c->hist, i);
        if (n == max) {
            *seen = ev->rev - 1; /* resume just before the first one not delivered */
            break;
        }
        if (strncmp(ev->key, prefix, plen) != 0)
            continue;
        if ((rc = copy_event(c, &out[n], ev)) != 0)
            break;
        n++;
    }
    pthread_rwlock_unlock(&c->lock);
    if (rc != 0) {
        while (n > 0)
            corral_store_event_clear(&out[--n]);
        return rc;
    }
    return (int)n;
}

static void deadline_after(struct timespec *ts, int timeout_ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += timeout_ms / 1000;
    ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/*
 * Waits (wait_mu held) until the revision passes rev, the deadline passes or shutdown starts.
 * Returns 0, CORRAL_ETIMEOUT or CORRAL_EUNAVAILABLE.
 */
static int wait_past(struct corral_cache *c, int64_t rev, const struct timespec *deadline)
{
    while (!c->closing && load_rev(c) <= rev) {
        if (pthread_cond_timedwait(&c->wait_cv, &c->wait_mu, deadline) == ETIMEDOUT)
            return load_rev(c) > rev ? 0 : CORRAL_ETIMEOUT;
    }
    return c->closing ? CORRAL_EUNAVAILABLE : 0;
}

static bool waiter_enter(struct corral_cache *c)
{
    pthread_mutex_lock(&c->wait_mu);
    bool ok = !c->closing;
    if (ok)
        c->waiters++;
    pthread_mutex_unlock(&c->wait_mu);
    return ok;
}

static void waiter_leave(struct corral_cache *c)
{
    pthread_mutex_lock(&c->wait_mu);
    if (--c->waiters == 0 && c->closing)
        pthread_cond_signal(&c->idle_cv);
    pthread_mutex_unlock(&c->wait_mu);
}

int corral_cache_events(struct corral_cache *c, const char *prefix, int64_t after,
                        struct corral_store_event *out, size_t max, int timeout_ms, int64_t *seen)
{
    if (!waiter_enter(c))
        return CORRAL_EUNAVAILABLE;
    struct timespec deadline;
    deadline_after(&deadline, timeout_ms);
    int rc;
    for (;;) {
        rc = events_scan(c, prefix, after, out, max, seen);
        if (rc != 0 || timeout_ms == 0)
            break;
        after = *seen;
        pthread_mutex_lock(&c->wait_mu);
        int w = wait_past(c, after, &deadline);
        pthread_mutex_unlock(&c->wait_mu);
        if (w == CORRAL_ETIMEOUT)
            break; /* rc is 0: no events, *seen is current */
        if (w != 0) {
            rc = w;
            break;
        }
    }
    waiter_leave(c);
    return rc;
}

int corral_cache_wait_rev(struct corral_cache *c, int64_t rev, int timeout_ms)
{
    if (load_rev(c) >= rev)
        return 0;
    if (!waiter_enter(c))
        return CORRAL_EUNAVAILABLE;
    struct timespec deadline;
    deadline_after(&deadline, timeout_ms);
    pthread_mutex_lock(&c->wait_mu);
    int rc = wait_past(c, rev - 1, &deadline);
    pthread_mutex_unlock(&c->wait_mu);
    waiter_leave(c);
    return rc;
}

void corral_cache_stats(struct corral_cache *c, struct corral_store_stats *out)
{
    pthread_rwlock_rdlock(&c->lock);
    out->objects = c->map.count;
    out->rev = c->rev;
    out->compacted_rev = c->hist.compacted;
    out->bytes = c->bytes;
    out->history_events = c->hist.n;
    out->history_bytes = c->hist.bytes;
    out->mem = c->mem;
    out->history_mem = c->hist.mem;
    pthread_rwlock_unlock(&c->lock);
    struct corral_packer_stats ps;
    corral_packer_stats(c->packer, &ps);
    out->dicts = ps.dicts;
    out->dict_mem = ps.dict_bytes;
}

int64_t corral_cache_revision(struct corral_cache *c)
{
    return load_rev(c);
}

void corral_cache_set_retention(struct corral_cache *c, const struct corral_store_retention *r)
{
    pthread_rwlock_wrlock(&c->lock);
    c->ret = *r;
    pthread_rwlock_unlock(&c->lock);
}

static bool over_retention(const struct corral_cache *c, const struct corral_cache_event *ev,
                           int64_t now)
{
    const struct corral_store_retention *r = &c->ret;
    if (r->max_events && c->hist.n > r->max_events)
        return true;
    if (r->max_bytes && c->hist.bytes > r->max_bytes)
        return true;
    return r->max_age_s && ev->ts + (int64_t)r->max_age_s < now;
}

/* Drops events at or below upto, then while a retention limit is exceeded (lock held). */
static void retain_locked(struct corral_cache *c, int64_t upto, int64_t now,
                          void (*dropped)(void *ctx, const struct corral_cache_event *ev),
                          void *ctx)
{
    if (upto > c->rev)
        upto = c->rev;
    while (c->hist.n > 0) {
        const struct corral_cache_event *old = corral_cache_history_at(&c->hist, 0);
        if (old->rev > upto && !over_retention(c, old, now))
            break;
        struct corral_cache_event ev;
        corral_cache_history_pop(&c->hist, &ev);
        if (dropped)
            dropped(ctx, &ev);
        corral_cache_event_clear(&ev);
    }
    if (upto > c->hist.compacted)
        c->hist.compacted = upto;
    corral_cache_history_shrink(&c->hist);
}

static void wake_all(struct corral_cache *c)
{
    pthread_mutex_lock(&c->wait_mu);
    pthread_cond_broadcast(&c->wait_cv);
    pthread_mutex_unlock(&c->wait_mu);
}

/* ---- the mutator -------------------------------------------------------------------------- */

const struct corral_cache_entry *corral_cache_peek(struct corral_cache *c, const char *key)
{
    return corral_cache_map_get(&c->map, key);
}

int corral_cache_prepare(struct corral_cache *c, struct corral_cache_change *ch, const char *key)
{
    (void)c;
    ch->key = strdup(key);
    if (!ch->key)
        return -ENOMEM;
    if (ch->type != CORRAL_EVENT_ADDED)
        return 0;
    ch->entry = corral_cache_entry_new(key, corral_packed_ref(ch->value), ch->create_rev, ch->rev);
    if (!ch->entry) {
        free(ch->key);
        ch->key = NULL;
        return -ENOMEM;
    }
    return 0;
}

void corral_cache_change_clear(struct corral_cache_change *ch)
{
    corral_packed_unref(ch->value);
    corral_packed_unref(ch->prev);
    corral_blob_unref(ch->plain);
    free(ch->key);
    corral_cache_entry_free(ch->entry);
    memset(ch, 0, sizeof(*ch));
}

int corral_cache_reserve(struct corral_cache *c, size_t n, size_t adds)
{
    /* Readers read the ring and the leaf array, so growing those (which moves them) takes the
     * write lock; spare leaves are the mutator's own and need none. */
    int rc = 0;
    if (c->hist.n + n > c->hist.cap || c->map.nleaves + adds > c->map.cap) {
        pthread_rwlock_wrlock(&c->lock);
        rc = corral_cache_history_reserve(&c->hist, n);
        if (rc == 0)
            rc = corral_cache_map_reserve(&c->map, adds);
        pthread_rwlock_unlock(&c->lock);
    }
    return rc ? rc : corral_cache_map_reserve(&c->map, adds);
}

/* Counts an object in (sign 1) or out (-1) of bytes and mem (write lock held). */
static void account(struct corral_cache *c, const struct corral_packed *p, int64_t rev, int sign)
{
    uint64_t plain = corral_packed_plain_len(p, rev), mem = corral_packed_size(p);
    c->bytes = sign > 0 ? c->bytes + plain : c->bytes - plain;
    c->mem = sign > 0 ? c->mem + mem : c->mem - mem;
}

/* Puts ch's plain value (stolen) in the ring, with the plain prev when the ring has it. */
static void plain_put(struct corral_cache *c, struct corral_cache_change *ch)
{
    const size_t mask = CORRAL_CACHE_PLAIN_SLOTS - 1;
    struct corral_cache_plain *s = &c->plain[ch->rev & mask], *ps = &c->plain[ch->prev_rev & mask];
    struct corral_blob *prev = ch->prev_rev && ps->rev == ch->prev_rev ? ps->value : NULL;
    corral_blob_ref(prev); /* before the slot is recycled: it may be the same one */
    corral_blob_unref(s->value);
    corral_blob_unref(s->prev);
    s->rev = ch->rev;
    s->value = ch->plain;
    s->prev = prev;
    ch->plain = NULL;
}

/* Applies one change to the map; fills the matching event. */
static void apply_one(struct corral_cache *c, struct corral_cache_change *ch,
                      struct corral_cache_event *ev)
{
    ev->rev = ch->rev;
    ev->prev_rev = ch->prev_rev;
    ev->ts = ch->ts;
    ev->type = ch->type;
    ev->key = ch->key;
    ev->value = ch->value;
    ev->prev = ch->prev;
    if (ch->type == CORRAL_EVENT_ADDED) {
        corral_cache_map_insert(&c->map, ch->entry); /* reserved; the mutator checked absence */
        account(c, ch->value, ch->rev, 1);
    } else if (ch->type == CORRAL_EVENT_MODIFIED) {
        struct corral_cache_entry *e = corral_cache_map_get(&c->map, ch->key);
        account(c, e->value, e->mod_rev, -1);
        corral_packed_unref(e->value);
        e->value = corral_packed_ref(ch->value);
        e->mod_rev = ch->rev;
        account(c, ch->value, ch->rev, 1);
    } else {
        struct corral_cache_entry *e = corral_cache_map_remove(&c->map, ch->key);
        account(c, e->value, e->mod_rev, -1);
        corral_cache_entry_free(e);
    }
    plain_put(c, ch);
    memset(ch, 0, sizeof(*ch));
}

void corral_cache_apply(struct corral_cache *c, struct corral_cache_change *ch, size_t n,
                        int64_t rev,
                        void (*dropped)(void *ctx, const struct corral_cache_event *ev), void *ctx)
{
    pthread_rwlock_wrlock(&c->lock);
    for (size_t i = 0; i < n; i++) {
        struct corral_cache_event ev;
        apply_one(c, &ch[i], &ev);
        corral_cache_history_push(&c->hist, &ev); /* reserved */
    }
    if (rev > c->rev)
        __atomic_store_n(&c->rev, rev, __ATOMIC_RELEASE);
    c->since_trim += n;
    if (n > 0) /* retention, before anyone sees the new revision */
        retain_locked(c, 0, n ? ch[0].ts : 0, dropped, ctx);
    corral_cache_map_trim(&c->map, 16);
    pthread_rwlock_unlock(&c->lock);
    wake_all(c);
}

int64_t corral_cache_compact(struct corral_cache *c, int64_t upto, int64_t now,
                             void (*dropped)(void *ctx, const struct corral_cache_event *ev),
                             void *ctx)
{
    pthread_rwlock_wrlock(&c->lock);
    retain_locked(c, upto, now, dropped, ctx);
    int64_t compacted = c->hist.compacted;
    pthread_rwlock_unlock(&c->lock);
    return compacted;
}

void corral_cache_replace(struct corral_cache *c, struct corral_cache_map *m, int64_t rev)
{
    struct corral_cache_map old;
    struct corral_cache_history hist;
    struct corral_cache_pos pos;
    uint64_t bytes = 0, mem = 0;
    corral_cache_map_seek(m, "", false, &pos);
    for (const struct corral_cache_entry *e; (e = corral_cache_map_at(m, &pos));
         corral_cache_map_next(m, &pos)) {
        bytes += corral_packed_plain_len(e->value, e->mod_rev);
        mem += corral_packed_size(e->value);
    }
    pthread_rwlock_wrlock(&c->lock);
    old = c->map;
    c->map = *m;
    corral_cache_map_init(m);
    c->bytes = bytes;
    c->mem = mem;
    plain_clear(c);
    hist = c->hist;
    corral_cache_history_init(&c->hist);
    c->hist.compacted = rev > hist.compacted ? rev : hist.compacted;
    if (rev > c->rev)
        __atomic_store_n(&c->rev, rev, __ATOMIC_RELEASE);
    pthread_rwlock_unlock(&c->lock);
    corral_cache_map_destroy(&old);
    corral_cache_history_destroy(&hist);
    wake_all(c);
}

bool corral_cache_trim_due(const struct corral_cache *c)
{
    return c->since_trim >= CORRAL_CACHE_TRIM_WRITES;
}

bool corral_cache_trim(struct corral_cache *c)
{
    if (!corral_cache_trim_due(c))
        return false;
    uint64_t t0 = corral_now_ns();
    malloc_trim(0);
    c->since_trim = 0;
    corral_debug("store", "heap trimmed in %.1f ms", (double)(corral_now_ns() - t0) / 1e6);
    return true;
}

void corral_cache_advance(struct corral_cache *c, int64_t rev)
{
    pthread_rwlock_wrlock(&c->lock);
    bool moved = rev > c->rev;
    if (moved)
        __atomic_store_n(&c->rev, rev, __ATOMIC_RELEASE);
    pthread_rwlock_unlock(&c->lock);
    if (moved)
        wake_all(c);
}

void corral_cache_set_loaded(struct corral_cache *c, int64_t rev, int64_t compacted)
{
    pthread_rwlock_wrlock(&c->lock);
    if (rev > c->rev)
        __atomic_store_n(&c->rev, rev, __ATOMIC_RELEASE);
    if (compacted > c->hist.compacted)
        c->hist.compacted = compacted;
    pthread_rwlock_unlock(&c->lock);
}

/* Sets key's state without an event (a version at or below the compacted revision). */
static int load_state(struct corral_cache *c, const char *key, struct corral_packed *value,
                      int64_t create_rev, int64_t rev, bool deleted)
{
    struct corral_cache_entry *e = corral_cache_map_get(&c->map, key);
    if (deleted) {
        corral_packed_unref(value);
        if (e) {
            e = corral_cache_map_remove(&c->map, key);
            account(c, e->value, e->mod_rev, -1);
            corral_cache_entry_free(e);
        }
        return 0;
    }
    if (e) {
        account(c, e->value, e->mod_rev, -1);
        corral_packed_unref(e->value);
        e->value = value;
        e->create_rev = create_rev;
        e->mod_rev = rev;
        account(c, value, rev, 1);
        return 0;
    }
    e = corral_cache_entry_new(key, value, create_rev, rev);
    if (!e)
        return -ENOMEM;
    if (corral_cache_map_insert(&c->map, e) != 0) {
        corral_cache_entry_free(e);
        return -ENOMEM;
    }
    account(c, e->value, rev, 1);
    return 0;
}

int corral_cache_load(struct corral_cache *c, const char *key, struct corral_packed *value,
                      int64_t create_rev, int64_t rev, bool deleted, int64_t ts,
                      void (*dropped)(void *ctx, const struct corral_cache_event *ev), void *ctx)
{
    if (rev <= c->hist.compacted) {
        pthread_rwlock_wrlock(&c->lock);
        int rc = load_state(c, key, value, create_rev, rev, deleted);
        if (rev > c->rev)
            __atomic_store_n(&c->rev, rev, __ATOMIC_RELEASE);
        pthread_rwlock_unlock(&c->lock);
        return rc;
    }
    const struct corral_cache_entry *cur = corral_cache_map_get(&c->map, key);
    if (deleted && !cur) {
        corral_packed_unref(value);
        return CORRAL_EINTERNAL;
    }
    if (deleted) { /* the last state, as the writer's delete would have it: one packed object */
        corral_packed_unref(value);
        value = corral_packed_ref(cur->value);
    }
    struct corral_cache_change ch = {
        .type = deleted ? CORRAL_EVENT_DELETED : (cur ? CORRAL_EVENT_MODIFIED : CORRAL_EVENT_ADDED),
        .rev = rev,
        .create_rev = create_rev,
        .prev_rev = cur ? cur->mod_rev : 0,
        .ts = ts,
        .value = value,
        .prev = cur ? corral_packed_ref(cur->value) : NULL,
    };
    int rc = corral_cache_prepare(c, &ch, key);
    if (rc == 0)
        rc = corral_cache_reserve(c, 1, ch.type == CORRAL_EVENT_ADDED);
    if (rc != 0) {
        corral_cache_change_clear(&ch);
        return rc;
    }
    corral_cache_apply(c, &ch, 1, rev, dropped, ctx);
    return 0;
}
