/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cache_history: a growable power-of-two ring of events (see cache_history.h).
 *
 * Invariants: ring[(head + i) & (cap - 1)] for i < n are the events, oldest first, with strictly
 * increasing revisions; every retained event has rev > compacted.
 */
#include "cache_history.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void corral_cache_history_init(struct corral_cache_history *h)
{
    memset(h, 0, sizeof(*h));
}

void corral_cache_event_clear(struct corral_cache_event *ev)
{
    free(ev->key);
    corral_packed_unref(ev->value);
    corral_packed_unref(ev->prev);
    memset(ev, 0, sizeof(*ev));
}

void corral_cache_history_destroy(struct corral_cache_history *h)
{
    struct corral_cache_event ev;
    while (corral_cache_history_pop(h, &ev) == 0)
        corral_cache_event_clear(&ev);
    free(h->ring);
    memset(h, 0, sizeof(*h));
}

uint64_t corral_cache_event_bytes(const struct corral_cache_event *ev)
{
    uint64_t b = ev->prev ? corral_packed_plain_len(ev->prev, ev->prev_rev) : 0;
    if (ev->type == CORRAL_EVENT_DELETED && ev->value)
        b += corral_packed_plain_len(ev->value, ev->rev);
    return b;
}

uint64_t corral_cache_event_mem(const struct corral_cache_event *ev)
{
    uint64_t m = ev->prev ? corral_packed_size(ev->prev) : 0;
    /* a deleted object's value is usually its prev, the same packed object */
    if (ev->type == CORRAL_EVENT_DELETED && ev->value && ev->value != ev->prev)
        m += corral_packed_size(ev->value);
    return m;
}

static struct corral_cache_event *slot(const struct corral_cache_history *h, size_t i)
{
    return &h->ring[(h->head + i) & (h->cap - 1)];
}

int corral_cache_history_reserve(struct corral_cache_history *h, size_t k)
{
    if (h->n + k <= h->cap)
        return 0;
    size_t cap = h->cap ? h->cap : 64;
    while (cap < h->n + k)
        cap *= 2;
    struct corral_cache_event *ring = malloc(cap * sizeof(*ring));
    if (!ring)
        return -ENOMEM;
    for (size_t i = 0; i < h->n; i++)
        ring[i] = *slot(h, i);
    free(h->ring);
    h->ring = ring;
    h->cap = cap;
    h->head = 0;
    return 0;
}

int corral_cache_history_push(struct corral_cache_history *h, struct corral_cache_event *ev)
{
    if (corral_cache_history_reserve(h, 1) != 0)
        return -ENOMEM;
    *slot(h, h->n) = *ev;
    h->n++;
    h->bytes += corral_cache_event_bytes(ev);
    h->mem += corral_cache_event_mem(ev);
    memset(ev, 0, sizeof(*ev));
    return 0;
}

void corral_cache_history_shrink(struct corral_cache_history *h)
{
    if (h->cap <= 1024 || h->n > h->cap / 8)
        return;
    size_t cap = h->cap;
    while (cap > 1024 && h->n <= cap / 8)
        cap /= 2;
    struct corral_cache_event *ring = malloc(cap * sizeof(*ring));
    if (!ring)
        return; /* keep the bigger one */
    for (size_t i = 0; i < h->n; i++)
        ring[i] = *slot(h, i);
    free(h->ring);
    h->ring = ring;
    h->cap = cap;
    h->head = 0;
}

int corral_cache_history_pop(struct corral_cache_history *h, struct corral_cache_event *out)
{
    if (h->n == 0)
        return -ENOENT;
    *out = *slot(h, 0);
    h->head = (h->head + 1) & (h->cap - 1);
    h->n--;
    h->bytes -= corral_cache_event_bytes(out);
    h->mem -= corral_cache_event_mem(out);
    if (out->rev > h->compacted)
        h->compacted = out->rev;
    return 0;
}

size_t corral_cache_history_find(const struct corral_cache_history *h, int64_t after)
{
    size_t lo = 0, hi = h->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (slot(h, mid)->rev <= after)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const struct corral_cache_event *corral_cache_history_at(const struct corral_cache_history *h,
                                                         size_t i)
{
    return slot(h, i);
}
