/* SPDX-License-Identifier: Apache-2.0 */
/*
 * snapshot: the scheduler's in-memory picture of the cluster, laid out for scanning.
 *
 * Nodes live in slots. Hot numbers (allocatable and requested cpu, memory, pods, GPU shares,
 * per-node GPU summaries) are columns indexed by slot (struct-of-arrays), so a scan over
 * thousands of nodes touches a few contiguous arrays; everything else (name, labels, taints,
 * the per-GPU table, the pods placed there) is per-slot cold data. A removed node leaves an
 * empty slot that a later node may reuse. Every change to a node bumps its generation, a
 * snapshot-wide counter, which is how caches of per-node results notice staleness.
 *
 * Nodes come from Node objects (docs/gpus.md): status.allocatable, the corral.io/gpus
 * annotation (or, without it, GPUs synthesised from the GFD/corral labels), spec.taints and
 * spec.unschedulable. The snapshot owns the Node objects and borrows the pods placed on it.
 */
#ifndef CORRAL_SCHED_SNAPSHOT_H
#define CORRAL_SCHED_SNAPSHOT_H

#include "corral/plugin.h"
#include "pod.h"
#include "strmap.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct corral_snap_ext {
    const char *name; /* borrowed from the Node object */
    int64_t alloc;
    int64_t used;
};

struct corral_snap_node {
    char *name;
    json_t *obj;      /* owned Node object */
    json_t *labels;   /* borrowed from obj */
    json_t *gpu_json; /* owned parsed corral.io/gpus (strings of gpus[] point here) */
    struct corral_gpu *gpus;
    uint32_t n_gpus;
    int64_t *links; /* n_gpus x n_gpus NVLink MB/s, NULL when none */
    struct corral_taint *taints;
    uint32_t n_taints;
    bool unschedulable;
    struct corral_snap_ext *ext;
    uint32_t n_ext;
    struct corral_pod **pods;
    uint32_t n_pods, cap_pods;
};

/* Node states seen, as exact keys (nodeclass.c). */
struct corral_class_slot {
    uint64_t hash; /* 0: empty */
    uint64_t id;
    uint32_t off, len; /* key words in corral_class_table.words */
};

struct corral_class_table {
    struct corral_class_slot *slots;
    uint32_t cap, used;
    uint64_t *words;
    size_t n_words, cap_words;
    uint64_t next_id; /* ids are never reused, not even after the table is emptied */
};

struct corral_snapshot {
    uint32_t n; /* slots in use (some may be empty) */
    uint32_t cap;
    uint32_t live; /* nodes present */
    int64_t *col[CORRAL_COL_COUNT];
    int64_t *alloc_eph, *req_eph;
    uint64_t *gen;
    uint8_t *exists;
    struct corral_snap_node *nodes;
    uint64_t gen_counter;
    uint64_t total_gpu_milli; /* sum over present nodes of 1000 x GPUs */
    uint64_t used_gpu_milli;  /* allocated GPU milli over present nodes */
    struct corral_strmap by_name;
    uint32_t *free_slots;
    uint32_t n_free_slots;
    /*
     * Change log: changelog[g % changelog_cap] is the node whose generation became g, for the
     * last changelog_cap generations after changelog_base. Caches replay it to find the nodes
     * that changed since they last looked.
     */
    uint32_t *changelog;
    uint32_t changelog_cap;
    uint64_t changelog_base;
    /*
     * The smallest CORRAL_COL_MIN_PRIORITY over present nodes and how many nodes have it, kept
     * as pods come and go; worked out again (a scan) only when the last node at it rose.
     */
    int64_t prio_floor;
    uint32_t prio_floor_n;
    bool prio_floor_dirty;
    /*
     * Node classes (corral_snapshot_class): the fixed part of a node (labels, taints, resources,
     * GPU table) gets an id when the node is added; the class is that id plus what changes as
     * pods come and go, computed again when the node's generation moves.
     */
    uint32_t *static_id; /* per slot; 0 when the node shares its class with no other */
    uint32_t *port_pods; /* per slot: placed pods that use host ports */
    uint64_t *cls, *cls_gen;
    struct corral_strmap statics; /* fixed description -> id */
    uint32_t n_statics;
    struct corral_class_table classes;
};

struct corral_snapshot *corral_snapshot_new(void);
/* Frees the snapshot and its Node objects (not the pods placed on it). */
void corral_snapshot_free(struct corral_snapshot *s);

/*
 * Adds a node or replaces the node of the same name (its pods stay placed; their usage is
 * recounted). Steals obj (also on failure). Returns the slot (>= 0), or CORRAL_EINVALID with
 * a message in err naming the bad field, or -ENOMEM.
 */
int corral_snapshot_upsert_node(struct corral_snapshot *s, json_t *obj, char *err, size_t errlen);

/*
 * Removes a node; its pods are unplaced (pod->node = CORRAL_NO_NODE) and returned through the
 * caller's callback so it can decide what they become. Returns 0 or CORRAL_ENOTFOUND.
 */
int corral_snapshot_remove_node(struct corral_snapshot *s, const char *name,
                                void (*orphan)(struct corral_pod *pod, void *arg), void *arg);

/* Slot of the node called name, or -1. */
int corral_snapshot_find(const struct corral_snapshot *s, const char *name);

/*
 * Places pod on node with the given GPU positions and share per GPU: counts its requests and
 * links it into the node's pod list. Returns 0, -EINVAL (no such node, GPUs out of range or
 * over-committed: nothing is changed) or -ENOMEM.
 */
int corral_snapshot_place(struct corral_snapshot *s, struct corral_pod *pod, uint32_t node,
                          uint64_t gpus, int32_t milli);

/* Undoes corral_snapshot_place(). Returns 0 or -EINVAL when the pod is not placed. */
int corral_snapshot_unplace(struct corral_snapshot *s, struct corral_pod *pod);

/*
 * Calls fn(node, arg) for every node whose generation moved past since (a generation number
 * seen earlier), possibly more than once. Returns 0, or -ERANGE when the log no longer
 * reaches back to since (the caller must look at every node).
 */
int corral_snapshot_changes(const struct corral_snapshot *s, uint64_t since,
                            void (*fn)(uint32_t node, void *arg), void *arg);

/* Free share of GPU position g on node (0..1000). */
static inline int32_t corral_snapshot_gpu_free(const struct corral_snapshot *s, uint32_t node,
                                               uint32_t g)
{
    return s->nodes[node].gpus[g].free_milli;
}

/* Mask of all GPU positions of node. */
static inline uint64_t corral_snapshot_all_gpus(const struct corral_snapshot *s, uint32_t node)
{
    uint32_t n = s->nodes[node].n_gpus;
    return n >= 64 ? ~0ull : ((1ull << n) - 1);
}

/*
 * The node's class: nodes of one class agree on everything a CORRAL_PLUGIN_NODE_CLASS plugin
 * may depend on (include/corral/plugin.h): labels but kubernetes.io/hostname, taints and
 * unschedulable, allocatable and requested resources (standard and extended), the GPU table
 * except UUIDs (free shares included) and NVLink bandwidths. Keys are compared exactly, and an
 * id is never given to a different state later. Returns the id, or 0 when the node shares its
 * class with no other (a pod on it uses host ports, or memory ran out). The answer is kept
 * until the node's generation moves.
 */
static inline uint64_t corral_snapshot_class(struct corral_snapshot *s, uint32_t node);
/* Works the node's class out and keeps it (what corral_snapshot_class() does on a change). */
uint64_t corral_snapshot_class_read(struct corral_snapshot *s, uint32_t node);
static inline uint64_t corral_snapshot_class(struct corral_snapshot *s, uint32_t node)
{
    if (node < s->n && s->cls_gen[node] == s->gen[node])
        return s->cls[node];
    return corral_snapshot_class_read(s, node);
}

/* nodeclass.c, for snapshot.c: the fixed description of a node just added or replaced. */
void corral_nodeclass_describe(struct corral_snapshot *s, uint32_t node);
/* Frees the class tables. */
void corral_nodeclass_free(struct corral_snapshot *s);

/*
 * The lowest priority of any pod placed on a present node (the smallest value of the
 * CORRAL_COL_MIN_PRIORITY column), INT64_MAX when there is none. Usually O(1).
 */
int64_t corral_snapshot_min_priority(struct corral_snapshot *s);

/* Allocatable / requested extended resource on node; 0 when absent. */
int64_t corral_snapshot_ext_alloc(const struct corral_snapshot *s, uint32_t node, const char *name);
int64_t corral_snapshot_ext_used(const struct corral_snapshot *s, uint32_t node, const char *name);

#endif
