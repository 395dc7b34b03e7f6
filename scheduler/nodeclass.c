/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nodeclass: node classes for the snapshot (snapshot.h, corral_snapshot_class). A class is
 * everything a CORRAL_PLUGIN_NODE_CLASS plugin may depend on, as an exact key:
 *
 *   - the fixed part, described once when the node is added or replaced: a canonical JSON
 *     text of its labels (kubernetes.io/hostname aside: it names the node), taints,
 *     unschedulable flag, allocatable resources (standard and extended) and GPU table without
 *     UUIDs, plus NVLink bandwidths. Equal texts share an id (statics, a string map that lives
 *     as long as the snapshot);
 *   - the changing part, read when the node's generation moved: requested cpu, memory, pods,
 *     ephemeral storage and extended resources, and each GPU's free share.
 *
 * Keys are kept in a hash table and compared word by word, so two nodes get the same id only
 * when their keys are equal. The table is emptied when it grows past a bound (ids keep
 * counting up, so an old id never names a new state) and every node's class is then read
 * again. Nodes running pods with host ports are kept apart (id 0): which ports are taken is
 * not part of the key.
 */
#include "snapshot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEY_WORDS 64
#define HOSTNAME_LABEL "kubernetes.io/hostname"
#define MIN_TABLE 1024u

/* Appends the node's GPU table (UUIDs left out) and link matrix to d. */
static int describe_gpus(const struct corral_snap_node *nd, json_t *d)
{
    json_t *gpus = json_array();
    if (json_object_set_new(d, "gpus", gpus) < 0)
        return -ENOMEM;
    for (uint32_t g = 0; g < nd->n_gpus; g++) {
        const struct corral_gpu *x = &nd->gpus[g];
        json_t *e = json_pack("[iiiiiiIssss]", x->index, x->memory_mib, x->numa_node,
                              x->island, (int)x->cc_major, (int)x->cc_minor,
                              (json_int_t)x->flags, x->model ? x->model : "",
                              x->product ? x->product : "", x->family ? x->family : "",
                              x->gpu_class ? x->gpu_class : "");
        if (json_array_append_new(gpus, e) < 0)
            return -ENOMEM;
    }
    json_t *links = json_array();
    if (json_object_set_new(d, "links", links) < 0)
        return -ENOMEM;
    for (size_t i = 0; nd->links && i < (size_t)nd->n_gpus * nd->n_gpus; i++)
        if (json_array_append_new(links, json_integer(nd->links[i])) < 0)
            return -ENOMEM;
    return 0;
}

/* The canonical text of node's fixed part, or NULL when memory ran out. */
static char *describe(const struct corral_snapshot *s, uint32_t node)
{
    const struct corral_snap_node *nd = &s->nodes[node];
    json_t *spec = json_object_get(nd->obj, "spec");
    json_t *labels = json_is_object(nd->labels) ? json_copy(nd->labels) : NULL;
    if (labels) /* names the node, as its name does: not part of the class */
        json_object_del(labels, HOSTNAME_LABEL);
    json_t *d = json_pack("{s:o?,s:O?,s:b,s:[IIII]}", "labels", labels, "taints",
                          json_object_get(spec, "taints"), "unschedulable", nd->unschedulable,
                          "alloc", (json_int_t)s->col[CORRAL_COL_ALLOC_CPU][node],
                          (json_int_t)s->col[CORRAL_COL_ALLOC_MEMORY][node],
                          (json_int_t)s->col[CORRAL_COL_ALLOC_PODS][node],
                          (json_int_t)s->alloc_eph[node]);
    json_t *ext = json_array();
    char *text = NULL;
    if (!d || json_object_set_new(d, "ext", ext) < 0)
        goto out;
    for (uint32_t e = 0; e < nd->n_ext; e++)
        if (json_array_append_new(ext, json_pack("[sI]", nd->ext[e].name,
                                                 (json_int_t)nd->ext[e].alloc)) < 0)
            goto out;
    if (describe_gpus(nd, d) == 0)
        text = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
out:
    json_decref(d);
    return text;
}

void corral_nodeclass_describe(struct corral_snapshot *s, uint32_t node)
{
    s->static_id[node] = 0;
    s->cls_gen[node] = 0;
    if (s->nodes[node].n_ext + 5 + (s->nodes[node].n_gpus + 3) / 4 > MAX_KEY_WORDS)
        return;
    char *text = describe(s, node);
    if (!text)
        return;
    uintptr_t id = (uintptr_t)corral_strmap_get(&s->statics, text);
    if (!id && corral_strmap_put(&s->statics, text, (void *)(uintptr_t)(s->n_statics + 1)) == 0)
        id = ++s->n_statics;
    s->static_id[node] = (uint32_t)id;
    free(text);
}

void corral_nodeclass_free(struct corral_snapshot *s)
{
    corral_strmap_clear(&s->statics);
    free(s->classes.slots);
    free(s->classes.words);
    memset(&s->classes, 0, sizeof(s->classes));
}

static uint64_t hash_words(const uint64_t *w, uint32_t n)
{
    uint64_t x = 0x9e3779b97f4a7c15ull ^ n;
    for (uint32_t i = 0; i < n; i++) {
        x = (x ^ w[i]) * 0xff51afd7ed558ccdull;
        x ^= x >> 32;
    }
    return x | 1; /* 0 marks an empty slot */
}

/* Empties the table; every node's class is read again when next asked. */
static void reset(struct corral_snapshot *s)
{
    struct corral_class_table *t = &s->classes;
    memset(t->slots, 0, (size_t)t->cap * sizeof(*t->slots));
    t->used = 0;
    t->n_words = 0;
    memset(s->cls_gen, 0, (size_t)s->n * sizeof(uint64_t));
}

static void place_slot(struct corral_class_table *t, const struct corral_class_slot *e)
{
    uint32_t i = (uint32_t)e->hash & (t->cap - 1);
    while (t->slots[i].hash)
        i = (i + 1) & (t->cap - 1);
    t->slots[i] = *e;
}

/* Makes room for a key of n_words: grows while the table is small for the cluster, else empties. */
static int make_room(struct corral_snapshot *s, uint32_t n_words)
{
    struct corral_class_table *t = &s->classes;
    if (t->cap && t->used + 1 <= t->cap / 2 && t->n_words + n_words <= t->cap_words)
        return 0;
    uint32_t limit = MIN_TABLE;
    while (limit < 16u * s->live && limit < (1u << 28))
        limit *= 2;
    if (t->cap >= limit) { /* big enough for this cluster: start over */
        reset(s);
        return 0;
    }
    uint32_t cap = t->cap ? t->cap * 2 : MIN_TABLE;
    size_t cap_words = (size_t)cap * 16; /* room for 32 words a key at half load */
    uint64_t *words = realloc(t->words, cap_words * sizeof(uint64_t));
    if (!words)
        return -ENOMEM;
    t->words = words;
    t->cap_words = cap_words;
    struct corral_class_slot *slots = calloc(cap, sizeof(*slots)), *old = t->slots;
    if (!slots)
        return -ENOMEM;
    uint32_t old_cap = t->cap;
    t->slots = slots;
    t->cap = cap;
    for (uint32_t i = 0; i < old_cap; i++)
        if (old[i].hash)
            place_slot(t, &old[i]);
    free(old);
    return 0;
}

/* The id of the state in key, given one when it is new; 0 when memory ran out. */
static uint64_t intern(struct corral_snapshot *s, const uint64_t *key, uint32_t n)
{
    struct corral_class_table *t = &s->classes;
    uint64_t h = hash_words(key, n);
    for (uint32_t i = t->cap ? (uint32_t)h & (t->cap - 1) : 0; t->cap;
         i = (i + 1) & (t->cap - 1)) {
        const struct corral_class_slot *e = &t->slots[i];
        if (!e->hash)
            break;
        if (e->hash == h && e->len == n && memcmp(t->words + e->off, key, n * 8u) == 0)
            return e->id;
    }
    if (make_room(s, n) < 0)
        return 0;
    struct corral_class_slot e = {h, ++t->next_id, (uint32_t)t->n_words, n};
    memcpy(t->words + t->n_words, key, n * 8u);
    t->n_words += n;
    t->used++;
    place_slot(t, &e);
    return e.id;
}

/* The class id of node's current state (0: none), without looking at the kept answer. */
static uint64_t class_of(struct corral_snapshot *s, uint32_t node)
{
    if (node >= s->n || !s->exists[node] || !s->static_id[node] || s->port_pods[node])
        return 0;
    const struct corral_snap_node *nd = &s->nodes[node];
    uint64_t key[MAX_KEY_WORDS] = {0};
    uint32_t n = 0;
    key[n++] = s->static_id[node];
    key[n++] = (uint64_t)s->col[CORRAL_COL_REQ_CPU][node];
    key[n++] = (uint64_t)s->col[CORRAL_COL_REQ_MEMORY][node];
    key[n++] = (uint64_t)s->col[CORRAL_COL_REQ_PODS][node];
    key[n++] = (uint64_t)s->req_eph[node];
    for (uint32_t e = 0; e < nd->n_ext; e++)
        key[n++] = (uint64_t)nd->ext[e].used;
    for (uint32_t g = 0; g < nd->n_gpus; g++) {
        int32_t f = nd->gpus[g].free_milli;
        if (f < 0 || f > 0xFFFF)
            return 0;
        key[n + g / 4] |= (uint64_t)f << (16 * (g % 4));
    }
    n += (nd->n_gpus + 3) / 4;
    return intern(s, key, n);
}

uint64_t corral_snapshot_class_read(struct corral_snapshot *s, uint32_t node)
{
    if (node >= s->n)
        return 0;
    uint64_t id = class_of(s, node);
    /* intern may have emptied the table, which clears every cls_gen: set ours after it */
    s->cls[node] = id;
    s->cls_gen[node] = s->gen[node];
    return id;
}
