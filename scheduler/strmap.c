/* SPDX-License-Identifier: Apache-2.0 */
/* strmap: see strmap.h. Linear probing over a power-of-two table. */
#include "strmap.h"

#include "pod.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define TOMBSTONE ((char *)1)

static int live_key(const char *k)
{
    return k && k != TOMBSTONE;
}

void corral_strmap_init(struct corral_strmap *m)
{
    memset(m, 0, sizeof(*m));
}

void corral_strmap_clear(struct corral_strmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (live_key(m->slots[i].key))
            free(m->slots[i].key);
    free(m->slots);
    corral_strmap_init(m);
}

static struct corral_strmap_slot *find(const struct corral_strmap *m, const char *key,
                                       uint64_t h)
{
    if (m->cap == 0)
        return NULL;
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        struct corral_strmap_slot *s = &m->slots[i];
        if (!s->key)
            return NULL;
        if (live_key(s->key) && s->hash == h && strcmp(s->key, key) == 0)
            return s;
    }
}

void *corral_strmap_get_hashed(const struct corral_strmap *m, const char *key, uint64_t hash)
{
    struct corral_strmap_slot *s = find(m, key, hash);
    return s ? s->value : NULL;
}

void *corral_strmap_get(const struct corral_strmap *m, const char *key)
{
    struct corral_strmap_slot *s = find(m, key, corral_pod_hash(key, strlen(key)));
    return s ? s->value : NULL;
}

static int grow(struct corral_strmap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 16;
    while (m->live * 10 >= ncap * 5)
        ncap *= 2;
    struct corral_strmap_slot *ns = calloc(ncap, sizeof(*ns));
    if (!ns)
        return -ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        struct corral_strmap_slot *s = &m->slots[i];
        if (!live_key(s->key))
            continue;
        size_t j = s->hash & (ncap - 1);
        while (ns[j].key)
            j = (j + 1) & (ncap - 1);
        ns[j] = *s;
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    m->used = m->live;
    return 0;
}

int corral_strmap_put(struct corral_strmap *m, const char *key, void *value)
{
    uint64_t h = corral_pod_hash(key, strlen(key));
    struct corral_strmap_slot *s = find(m, key, h);
    if (s) {
        s->value = value;
        return 0;
    }
    if ((m->used + 1) * 10 >= m->cap * 7 && grow(m) < 0)
        return -ENOMEM;
    char *copy = strdup(key);
    if (!copy)
        return -ENOMEM;
    size_t i = h & (m->cap - 1);
    while (live_key(m->slots[i].key))
        i = (i + 1) & (m->cap - 1);
    if (!m->slots[i].key)
        m->used++;
    m->slots[i] = (struct corral_strmap_slot){copy, h, value};
    m->live++;
    return 0;
}

void *corral_strmap_del(struct corral_strmap *m, const char *key)
{
    struct corral_strmap_slot *s = find(m, key, corral_pod_hash(key, strlen(key)));
    if (!s)
        return NULL;
    void *v = s->value;
    free(s->key);
    s->key = TOMBSTONE;
    s->value = NULL;
    m->live--;
    return v;
}

int corral_strmap_next(const struct corral_strmap *m, size_t *pos, const char **key, void **value)
{
    while (*pos < m->cap) {
        struct corral_strmap_slot *s = &m->slots[(*pos)++];
        if (live_key(s->key)) {
            if (key)
                *key = s->key;
            if (value)
                *value = s->value;
            return 1;
        }
    }
    return 0;
}
