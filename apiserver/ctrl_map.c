/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctrl_map: open-addressing string hash map (see ctrl_map.h). The load factor (live entries
 * plus tombstones) stays under 3/4; a rehash drops the tombstones.
 */
#include "ctrl_map.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static char tomb_marker;
#define TOMB (&tomb_marker)

static unsigned hash_str(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

void corral_ctrl_map_init(struct corral_ctrl_map *m)
{
    memset(m, 0, sizeof(*m));
}

void corral_ctrl_map_clear(struct corral_ctrl_map *m, void (*free_value)(void *))
{
    for (size_t i = 0; i < m->cap; i++) {
        struct corral_ctrl_map_slot *s = &m->slots[i];
        if (!s->key || s->key == TOMB)
            continue;
        free(s->key);
        if (free_value)
            free_value(s->value);
    }
    free(m->slots);
    corral_ctrl_map_init(m);
}

/* Index of key's slot, or of the first free slot on its probe path (tombstones reused). */
static size_t find_slot(const struct corral_ctrl_map *m, const char *key, unsigned h, bool *found)
{
    size_t mask = m->cap - 1, i = h & mask, free_at = SIZE_MAX;
    *found = false;
    for (;;) {
        struct corral_ctrl_map_slot *s = &m->slots[i];
        if (!s->key)
            return free_at != SIZE_MAX ? free_at : i;
        if (s->key == TOMB) {
            if (free_at == SIZE_MAX)
                free_at = i;
        } else if (s->hash == h && strcmp(s->key, key) == 0) {
            *found = true;
            return i;
        }
        i = (i + 1) & mask;
    }
}

static int grow(struct corral_ctrl_map *m)
{
    size_t cap = m->cap ? m->cap : 4;
    while (m->n * 2 >= cap)
        cap *= 2;
    struct corral_ctrl_map_slot *slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return -ENOMEM;
    struct corral_ctrl_map old = *m;
    m->slots = slots;
    m->cap = cap;
    m->used = m->n;
    for (size_t i = 0; i < old.cap; i++) {
        struct corral_ctrl_map_slot *s = &old.slots[i];
        if (!s->key || s->key == TOMB)
            continue;
        size_t j = s->hash & (cap - 1);
        while (slots[j].key)
            j = (j + 1) & (cap - 1);
        slots[j] = *s;
    }
    free(old.slots);
    return 0;
}

void *corral_ctrl_map_get(const struct corral_ctrl_map *m, const char *key)
{
    if (!m->n)
        return NULL;
    bool found;
    size_t i = find_slot(m, key, hash_str(key), &found);
    return found ? m->slots[i].value : NULL;
}

void *corral_ctrl_map_put(struct corral_ctrl_map *m, const char *key, void *value)
{
    if ((m->used + 1) * 4 >= m->cap * 3 && grow(m) < 0)
        return value;
    unsigned h = hash_str(key);
    bool found;
    size_t i = find_slot(m, key, h, &found);
    struct corral_ctrl_map_slot *s = &m->slots[i];
    if (found) {
        void *old = s->value;
        s->value = value;
        return old;
    }
    char *copy = strdup(key);
    if (!copy)
        return value;
    if (!s->key)
        m->used++;
    s->key = copy;
    s->hash = h;
    s->value = value;
    m->n++;
    return NULL;
}

void *corral_ctrl_map_del(struct corral_ctrl_map *m, const char *key)
{
    if (!m->n)
        return NULL;
    bool found;
    size_t i = find_slot(m, key, hash_str(key), &found);
    if (!found)
        return NULL;
    struct corral_ctrl_map_slot *s = &m->slots[i];
    void *v = s->value;
    free(s->key);
    s->key = TOMB;
    s->value = NULL;
    m->n--;
    return v;
}

bool corral_ctrl_map_next(const struct corral_ctrl_map *m, size_t *pos, const char **key,
                          void **value)
{
    while (*pos < m->cap) {
        struct corral_ctrl_map_slot *s = &m->slots[(*pos)++];
        if (s->key && s->key != TOMB) {
            *key = s->key;
            if (value)
                *value = s->value;
            return true;
        }
    }
    return false;
}

int corral_ctrl_multimap_add(struct corral_ctrl_map *m, const char *key, const char *member)
{
    struct corral_ctrl_map *set = corral_ctrl_map_get(m, key);
    if (!set) {
        set = calloc(1, sizeof(*set));
        if (!set)
            return -ENOMEM;
        if (corral_ctrl_map_put(m, key, set) == set) {
            free(set);
            return -ENOMEM;
        }
    }
    if (corral_ctrl_map_get(set, member))
        return 0;
    return corral_ctrl_map_put(set, member, CORRAL_CTRL_MAP_PRESENT) ? -ENOMEM : 0;
}

void corral_ctrl_multimap_del(struct corral_ctrl_map *m, const char *key, const char *member)
{
    struct corral_ctrl_map *set = corral_ctrl_map_get(m, key);
    if (!set)
        return;
    corral_ctrl_map_del(set, member);
    if (corral_ctrl_map_size(set) == 0) {
        corral_ctrl_map_del(m, key);
        corral_ctrl_map_clear(set, NULL);
        free(set);
    }
}

struct corral_ctrl_map *corral_ctrl_multimap_get(const struct corral_ctrl_map *m, const char *key)
{
    return corral_ctrl_map_get(m, key);
}

static void free_set(void *v)
{
    corral_ctrl_map_clear(v, NULL);
    free(v);
}

void corral_ctrl_multimap_clear(struct corral_ctrl_map *m)
{
    corral_ctrl_map_clear(m, free_set);
}
