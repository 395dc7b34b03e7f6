/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cache_map: a two-level B+-tree of entry pointers ordered by key (see cache_map.h).
 *
 * Invariants: every leaf holds 1..CORRAL_CACHE_LEAF_MAX entries in strictly increasing key order;
 * the last key of leaf i is below the first key of leaf i + 1; count is the number of entries.
 * An append at the very end (keys created in order, as a load in key order does) starts a new
 * leaf instead of splitting, so such leaves stay full.
 */
#include "cache_map.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct corral_cache_leaf {
    size_t n;
    struct corral_cache_entry *e[CORRAL_CACHE_LEAF_MAX];
};

void corral_cache_map_init(struct corral_cache_map *m)
{
    memset(m, 0, sizeof(*m));
}

void corral_cache_map_destroy(struct corral_cache_map *m)
{
    for (size_t i = 0; i < m->nleaves; i++) {
        for (size_t j = 0; j < m->leaves[i]->n; j++)
            corral_cache_entry_free(m->leaves[i]->e[j]);
        free(m->leaves[i]);
    }
    for (size_t i = 0; i < m->nspare; i++)
        free(m->spare[i]);
    free(m->leaves);
    free(m->spare);
    memset(m, 0, sizeof(*m));
}

struct corral_cache_entry *corral_cache_entry_new(const char *key, struct corral_packed *value,
                                                  int64_t create_rev, int64_t mod_rev)
{
    size_t len = strlen(key);
    struct corral_cache_entry *e = malloc(sizeof(*e) + len + 1);
    if (!e) {
        corral_packed_unref(value);
        return NULL;
    }
    e->value = value;
    e->create_rev = create_rev;
    e->mod_rev = mod_rev;
    memcpy(e->key, key, len + 1);
    return e;
}

void corral_cache_entry_free(struct corral_cache_entry *e)
{
    if (!e)
        return;
    corral_packed_unref(e->value);
    free(e);
}

/* Index of the first leaf whose last key is >= key; m->nleaves when there is none. */
static size_t find_leaf(const struct corral_cache_map *m, const char *key)
{
    size_t lo = 0, hi = m->nleaves;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct corral_cache_leaf *l = m->leaves[mid];
        if (strcmp(l->e[l->n - 1]->key, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Index of the first entry of l with key >= key (> key when upper); sets *eq on a match. */
static size_t leaf_bound(const struct corral_cache_leaf *l, const char *key, bool upper, bool *eq)
{
    size_t lo = 0, hi = l->n;
    *eq = false;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(l->e[mid]->key, key);
        if (c == 0)
            *eq = true;
        if (c < 0 || (upper && c == 0))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

struct corral_cache_entry *corral_cache_map_get(const struct corral_cache_map *m, const char *key)
{
    size_t i = find_leaf(m, key);
    if (i == m->nleaves)
        return NULL;
    bool eq;
    size_t j = leaf_bound(m->leaves[i], key, false, &eq);
    return eq ? m->leaves[i]->e[j] : NULL;
}

int corral_cache_map_reserve(struct corral_cache_map *m, size_t n)
{
    if (m->cap < m->nleaves + n) {
        size_t cap = m->cap ? m->cap : 16;
        while (cap < m->nleaves + n)
            cap *= 2;
        struct corral_cache_leaf **leaves = realloc(m->leaves, cap * sizeof(*leaves));
        if (!leaves)
            return -ENOMEM;
        m->leaves = leaves;
        m->cap = cap;
    }
    if (m->spare_cap < n) {
        struct corral_cache_leaf **spare = realloc(m->spare, n * sizeof(*spare));
        if (!spare)
            return -ENOMEM;
        m->spare = spare;
        m->spare_cap = n;
    }
    while (m->nspare < n) {
        struct corral_cache_leaf *l = malloc(sizeof(*l));
        if (!l)
            return -ENOMEM;
        l->n = 0;
        m->spare[m->nspare++] = l;
    }
    return 0;
}

void corral_cache_map_trim(struct corral_cache_map *m, size_t keep)
{
    while (m->nspare > keep)
        free(m->spare[--m->nspare]);
}

/* A leaf from the reserve, or a new one; inserts it at index at. NULL on ENOMEM. */
static struct corral_cache_leaf *leaf_add(struct corral_cache_map *m, size_t at)
{
    if (m->nspare == 0 && corral_cache_map_reserve(m, 1) != 0)
        return NULL;
    if (m->cap < m->nleaves + 1 && corral_cache_map_reserve(m, 1) != 0)
        return NULL;
    struct corral_cache_leaf *l = m->spare[--m->nspare];
    l->n = 0;
    memmove(&m->leaves[at + 1], &m->leaves[at], (m->nleaves - at) * sizeof(*m->leaves));
    m->leaves[at] = l;
    m->nleaves++;
    return l;
}

static void leaf_put(struct corral_cache_leaf *l, size_t j, struct corral_cache_entry *e)
{
    memmove(&l->e[j + 1], &l->e[j], (l->n - j) * sizeof(*l->e));
    l->e[j] = e;
    l->n++;
}

/* Splits full leaf i and inserts e at slot j of it. Returns 0 or -ENOMEM. */
static int insert_split(struct corral_cache_map *m, size_t i, size_t j,
                        struct corral_cache_entry *e)
{
    bool append = i + 1 == m->nleaves && j == CORRAL_CACHE_LEAF_MAX;
    struct corral_cache_leaf *r = leaf_add(m, i + 1);
    if (!r)
        return -ENOMEM;
    struct corral_cache_leaf *l = m->leaves[i];
    if (append) {
        r->e[0] = e;
        r->n = 1;
        return 0;
    }
    size_t half = CORRAL_CACHE_LEAF_MAX / 2;
    memcpy(r->e, &l->e[half], (l->n - half) * sizeof(*l->e));
    r->n = l->n - half;
    l->n = half;
    if (j <= half)
        leaf_put(l, j, e);
    else
        leaf_put(r, j - half, e);
    return 0;
}

int corral_cache_map_insert(struct corral_cache_map *m, struct corral_cache_entry *e)
{
    if (m->nleaves == 0) {
        struct corral_cache_leaf *l = leaf_add(m, 0);
        if (!l)
            return -ENOMEM;
        l->e[0] = e;
        l->n = 1;
        m->count++;
        return 0;
    }
    size_t i = find_leaf(m, e->key);
    if (i == m->nleaves)
        i--;
    struct corral_cache_leaf *l = m->leaves[i];
    bool eq;
    size_t j = leaf_bound(l, e->key, false, &eq);
    if (eq)
        return -EEXIST;
    if (l->n < CORRAL_CACHE_LEAF_MAX)
        leaf_put(l, j, e);
    else if (insert_split(m, i, j, e) != 0)
        return -ENOMEM;
    m->count++;
    return 0;
}

/* Removes leaf i from the array, keeping it as a spare when there is room. */
static void leaf_drop(struct corral_cache_map *m, size_t i)
{
    struct corral_cache_leaf *l = m->leaves[i];
    memmove(&m->leaves[i], &m->leaves[i + 1], (m->nleaves - i - 1) * sizeof(*m->leaves));
    m->nleaves--;
    if (m->nspare < m->spare_cap)
        m->spare[m->nspare++] = l;
    else
        free(l);
}

/* Merges leaf i + 1 into leaf i when both are small, so deletes do not leave sparse leaves. */
static void maybe_merge(struct corral_cache_map *m, size_t i)
{
    if (i + 1 >= m->nleaves)
        return;
    struct corral_cache_leaf *a = m->leaves[i], *b = m->leaves[i + 1];
    if (a->n + b->n > CORRAL_CACHE_LEAF_MAX * 3 / 4)
        return;
    memcpy(&a->e[a->n], b->e, b->n * sizeof(*b->e));
    a->n += b->n;
    b->n = 0;
    leaf_drop(m, i + 1);
}

struct corral_cache_entry *corral_cache_map_remove(struct corral_cache_map *m, const char *key)
{
    size_t i = find_leaf(m, key);
    if (i == m->nleaves)
        return NULL;
    struct corral_cache_leaf *l = m->leaves[i];
    bool eq;
    size_t j = leaf_bound(l, key, false, &eq);
    if (!eq)
        return NULL;
    struct corral_cache_entry *e = l->e[j];
    memmove(&l->e[j], &l->e[j + 1], (l->n - j - 1) * sizeof(*l->e));
    l->n--;
    m->count--;
    if (l->n == 0) {
        leaf_drop(m, i);
    } else if (l->n < CORRAL_CACHE_LEAF_MAX / 4) {
        if (i > 0)
            maybe_merge(m, i - 1);
        else
            maybe_merge(m, i);
    }
    return e;
}

void corral_cache_map_seek(const struct corral_cache_map *m, const char *key, bool exclusive,
                           struct corral_cache_pos *pos)
{
    pos->leaf = find_leaf(m, key);
    pos->idx = 0;
    if (pos->leaf == m->nleaves)
        return;
    bool eq;
    pos->idx = leaf_bound(m->leaves[pos->leaf], key, exclusive, &eq);
    if (pos->idx == m->leaves[pos->leaf]->n) {
        pos->leaf++;
        pos->idx = 0;
    }
}

struct corral_cache_entry *corral_cache_map_at(const struct corral_cache_map *m,
                                               const struct corral_cache_pos *pos)
{
    if (pos->leaf >= m->nleaves)
        return NULL;
    return m->leaves[pos->leaf]->e[pos->idx];
}

void corral_cache_map_next(const struct corral_cache_map *m, struct corral_cache_pos *pos)
{
    if (pos->leaf >= m->nleaves)
        return;
    if (++pos->idx >= m->leaves[pos->leaf]->n) {
        pos->leaf++;
        pos->idx = 0;
    }
}

size_t corral_cache_map_overhead(const struct corral_cache_map *m)
{
    return (m->nleaves + m->nspare) * sizeof(struct corral_cache_leaf) +
           m->cap * sizeof(*m->leaves) + m->spare_cap * sizeof(*m->spare);
}
