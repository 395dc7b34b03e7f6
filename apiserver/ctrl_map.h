/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctrl_map: the string-keyed hash map the controllers keep their indexes in (pods by key,
 * dependents by owner UID, ...). Open addressing with linear probing; the map owns a copy of
 * each key and borrows the values (the caller frees them, e.g. through
 * corral_ctrl_map_clear()'s callback). Not thread-safe: each controller owns its maps and uses
 * them from its own thread only.
 *
 * A map used as a set stores any non-NULL value (CORRAL_CTRL_MAP_PRESENT).
 */
#ifndef CORRAL_CTRL_MAP_H
#define CORRAL_CTRL_MAP_H

#include <stdbool.h>
#include <stddef.h>

#define CORRAL_CTRL_MAP_PRESENT ((void *)1)

struct corral_ctrl_map_slot {
    char *key; /* NULL = empty; CORRAL_CTRL_MAP_TOMB = deleted */
    void *value;
    unsigned hash;
};

struct corral_ctrl_map {
    struct corral_ctrl_map_slot *slots;
    size_t cap;  /* power of two, or 0 */
    size_t n;    /* live entries */
    size_t used; /* live + tombstones */
};

void corral_ctrl_map_init(struct corral_ctrl_map *m);
/* Frees every key, calls free_value (may be NULL) on every value, and frees the table. */
void corral_ctrl_map_clear(struct corral_ctrl_map *m, void (*free_value)(void *));

/* The value for key (borrowed), or NULL. */
void *corral_ctrl_map_get(const struct corral_ctrl_map *m, const char *key);

/*
 * Sets key to value (not NULL). Returns the value it replaced (the caller frees it) or NULL;
 * on ENOMEM returns value itself and leaves the map unchanged.
 */
void *corral_ctrl_map_put(struct corral_ctrl_map *m, const char *key, void *value);

/* Removes key. Returns its value (the caller frees it) or NULL when absent. */
void *corral_ctrl_map_del(struct corral_ctrl_map *m, const char *key);

/*
 * Iteration: start with *pos = 0; each call returns true and fills *key (borrowed) and *value
 * until the end. The map must not change during an iteration, except through
 * corral_ctrl_map_del() of the entry just returned.
 */
bool corral_ctrl_map_next(const struct corral_ctrl_map *m, size_t *pos, const char **key,
                          void **value);

/* Number of entries. */
static inline size_t corral_ctrl_map_size(const struct corral_ctrl_map *m)
{
    return m->n;
}

/*
 * Set-of-sets helper: adds member to the set stored under key in m (creating it). Returns 0 or
 * -ENOMEM.
 */
int corral_ctrl_multimap_add(struct corral_ctrl_map *m, const char *key, const char *member);
/* Removes member from the set under key; drops the set when it becomes empty. */
void corral_ctrl_multimap_del(struct corral_ctrl_map *m, const char *key, const char *member);
/* The set under key (borrowed) or NULL. */
struct corral_ctrl_map *corral_ctrl_multimap_get(const struct corral_ctrl_map *m, const char *key);
/* Frees a multimap built with the helpers above. */
void corral_ctrl_multimap_clear(struct corral_ctrl_map *m);

#endif
