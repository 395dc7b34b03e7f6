/* SPDX-License-Identifier: Apache-2.0 */
/*
 * framework: runs plugins at each extension point for one pod at a time (the scheduling
 * cycle), then the binding cycle, over a snapshot. Used by both `corral sim` and
 * `corral scheduler`; what differs between them (how a binding is written, how an eviction
 * happens, what time it is) comes in through struct corral_fw_callbacks.
 *
 * Speed comes from not asking plugins the same question twice. Plugins flagged
 * CORRAL_PLUGIN_NODE_LOCAL promise that Filter and Score for a node depend only on the pod's
 * signature (pod.h) and that node, so per profile the framework keeps, for each recent
 * signature, every node's verdict, GPU set and combined score, tagged with the node's
 * generation. A pod whose signature was seen before costs one pass over a few arrays plus the
 * nodes that changed since. Other plugins (spread, inter-pod terms) run every cycle on the
 * nodes that survive. percentageOfNodesToScore stops the pass early as Kubernetes does.
 *
 * When every plugin a pod needs also sets CORRAL_PLUGIN_NODE_CLASS, a node's row is copied
 * from the class memo: the verdict, GPU set and score the signature got on another node of
 * the same class (corral_snapshot_class), so a new signature, or every signature after an
 * invalidation, costs one plugin evaluation per class of node rather than per node.
 *
 * Ownership: the framework owns every pod added to it and frees them; it borrows the
 * snapshot and the configuration.
 */
#ifndef CORRAL_SCHED_FRAMEWORK_H
#define CORRAL_SCHED_FRAMEWORK_H

#include "corral/plugin.h"
#include "loader.h"
#include "pod.h"
#include "profile.h"
#include "snapshot.h"
#include "strmap.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct corral_framework;

struct corral_fw_callbacks {
    void *arg;
    /*
     * The default binder, used when no Bind plugin bound the pod: writes the binding (node and
     * GPU positions/share). Returns 0 or a negative code; NULL means bindings always succeed.
     */
    int (*bind)(void *arg, struct corral_pod *pod, uint32_t node);
    /* The pod could not be scheduled this attempt; message explains why. May be NULL. */
    void (*unschedulable)(void *arg, struct corral_pod *pod, const char *message);
    /* Preemption evicted victim in favour of preemptor (already unplaced). May be NULL. */
    void (*evicted)(void *arg, struct corral_pod *victim, const struct corral_pod *preemptor);
    /* Other objects plugins may ask for (PodGroups). Borrowed. May be NULL. */
    json_t *(*lookup)(void *arg, const char *api_version, const char *kind, const char *ns,
                      const char *name);
    /* Milliseconds; NULL means a real monotonic clock. */
    uint64_t (*now_ms)(void *arg);
};

/* One loaded plugin of a profile. */
struct corral_fw_plugin {
    struct corral_host host; /* first: plugin callbacks find their instance from it */
    struct corral_framework *fw;
    struct corral_plugin_lib *lib;
    const struct corral_plugin *p;
    void *state;
    char *name;
    int profile;
    bool node_local;
    bool node_class; /* CORRAL_PLUGIN_NODE_CLASS (with NODE_LOCAL) */
};

/* One (signature, node class) result of the class memo. */
struct corral_class_memo {
    uint64_t cls;
    uint64_t stamp; /* the entry is valid when this is the profile's memo_stamp */
    uint64_t mask;
    int64_t score;
    uint32_t sig, reject;
};

/*
 * One node's cached result for a signature, in two halves of 16 bytes: what every look at a
 * row reads (is it fresh, is the node feasible, where is it in the order), which scans and
 * explanations stream through, and the score and GPU set, read for feasible nodes only.
 */
struct corral_sig_row {
    uint64_t gen;    /* node generation the row was computed at; 0 = never */
    uint32_t reject; /* 0 = feasible, else ((filter slot + 1) << 21) | code */
    uint32_t pos;    /* heap index or score group, UINT32_MAX when absent */
};

struct corral_sig_val {
    int64_t score; /* combined cached score */
    uint64_t mask; /* GPUs left after Filter */
};

/* A heap entry carries its node's score, so sifting reads the heap alone. */
struct corral_heap_item {
    int64_t score;
    uint32_t node, unused;
};

/* The feasible nodes of one score: a bit per node, and a bit per nonzero word of those. */
struct corral_score_group {
    int64_t score;
    uint32_t count;
    uint64_t *bits; /* words node bits, then the summary words */
};

#define CORRAL_MAX_SCORE_GROUPS 64

/* A recent signature's per-node results (see the head comment). */
struct corral_sig_entry {
    char *key;
    uint32_t id; /* unique within the profile, never reused (keys the class memo) */
    uint64_t epoch;
    uint64_t last_used;
    uint32_t cap;
    struct corral_sig_row *row; /* per node */
    struct corral_sig_val *val; /* per node */
    /*
     * Feasible nodes as a heap ordered by (score, then lower index), valid as of snapshot
     * generation `seen`: with tie-breaking by node order the best node is its top, and a new
     * pod of this signature only re-evaluates the nodes the snapshot's change log names. The
     * heap is 4-ary, the children of i at 4i+1..4i+4, placed so that they share a cache line.
     *
     * Scores usually take few values (about 10 per signature in the benchmark, for thousands of
     * feasible nodes), so while they take at most CORRAL_MAX_SCORE_GROUPS values the heap is
     * replaced by score groups, each a bit set of its nodes: the best node is the lowest bit of
     * the best nonempty group, and moving a node is two bit flips (a row's pos names its group).
     */
    void *heap_mem;                /* allocation holding heap */
    struct corral_heap_item *heap; /* cap entries */
    uint32_t heap_n;
    bool grouped; /* the score groups stand in for the heap */
    struct corral_score_group *groups; /* CORRAL_MAX_SCORE_GROUPS; n_groups in use */
    uint32_t n_groups, max_groups, words, swords;
    uint64_t seen;
    bool heap_ok;
    /* How many existing nodes have each rejection (kept with the heap, for explanations). */
    struct corral_sig_reason {
        uint32_t code, count;
    } hist[32];
    uint32_t n_hist;
    bool hist_ok; /* false when a code did not fit: explain by scanning */
};

struct corral_fw_profile {
    struct corral_profile *conf;
    struct corral_fw_plugin **plugins; /* instances, in order of first mention */
    uint32_t n_plugins;
    /* Per extension point: instance indices in run order. */
    uint32_t *at[CORRAL_POINT_COUNT];
    uint32_t n_at[CORRAL_POINT_COUNT];
    int64_t *score_weight; /* per score slot */
    bool *score_cached;    /* per score slot: folded into the cached sum */
    bool any_local_filter, any_volatile_filter, any_dynamic_score;
    struct corral_strmap sigs; /* signature -> struct corral_sig_entry */
    uint32_t n_sigs, max_sigs, next_sig_id;
    uint32_t next_start; /* round-robin start when scoring a percentage of nodes */
    /* The class memo: open addressing, emptied (stamp) on invalidation or when half full. */
    struct corral_class_memo *memo;
    uint32_t memo_cap, memo_used, memo_live; /* memo_live: node count it was sized for */
    uint64_t memo_stamp, memo_epoch;
};

enum corral_fw_result {
    CORRAL_FW_BOUND = 0,
    CORRAL_FW_WAITING,
    CORRAL_FW_UNSCHEDULABLE,
    CORRAL_FW_PREEMPTED, /* room was made; schedule the pod again */
    CORRAL_FW_GATED,
};

struct corral_fw_stats {
    uint64_t cycles, bound, unschedulable, preemptions;
    uint64_t nodes_evaluated; /* filter+score runs on cache misses */
    uint64_t nodes_scanned;
    uint64_t cache_hits, cache_misses, invalidations;
    uint64_t class_hits; /* rows copied from the class memo instead of evaluated */
};

struct corral_framework {
    struct corral_snapshot *snap;
    struct corral_fw_callbacks cb;
    struct corral_fw_profile *profiles;
    uint32_t n_profiles;
    char *plugin_dir;
    uint64_t rng[4];
    uint64_t epoch;
    uint64_t seq;
    bool no_cache; /* evaluate every node every cycle (for measurements) */
    uint32_t max_score_groups; /* 0: CORRAL_MAX_SCORE_GROUPS (tests lower it) */
    struct corral_fw_stats stats;

    struct corral_strmap pods; /* "ns/name" -> pod (owned) */
    struct corral_pod **queue; /* binary heap */
    uint32_t n_queue, cap_queue;
    uint32_t n_gated;
    struct corral_pod **waiting;
    uint32_t n_waiting, cap_waiting;
    bool waiting_dirty;

    /* The current scheduling cycle. */
    struct {
        uint64_t id;
        struct corral_pod *pod;
        struct corral_fw_profile *prof;
        struct corral_sig_entry *entry;
        uint64_t *mask, *mask_stamp;
        uint32_t mask_cap;
        bool *skip_filter, *skip_score; /* per plugin instance */
        uint32_t skip_cap;
        bool in_filter, in_reserve, in_post_filter;
        bool volatile_filters, dynamic_scores; /* some such plugin did not skip this pod */
        bool by_class; /* every node-local plugin that did not skip sets NODE_CLASS */
        uint32_t reserve_node;
        bool assigned;
        uint64_t gpus;
        int32_t milli;
    } cy;
    uint32_t *feasible;
    int64_t *fscore, *tmp_score;
    uint32_t feasible_cap;
};

/*
 * Loads every plugin of every profile (plugin directory: the configuration's, else plugin_dir,
 * else corral_plugin_default_dir()) and initialises them with their arguments. Returns 0 and
 * *out, or a negative code with a message in err naming the profile, plugin and problem.
 * cfg must outlive the framework.
 */
int corral_fw_new(struct corral_sched_config *cfg, const char *plugin_dir,
                  struct corral_snapshot *snap, const struct corral_fw_callbacks *cb,
                  uint64_t seed, struct corral_framework **out, char *err, size_t errlen);
void corral_fw_free(struct corral_framework *fw);

/* Profile serving schedulerName, or -1. */
int corral_fw_profile_index(const struct corral_framework *fw, const char *scheduler_name);

/*
 * Hands a new pod to the framework (steals it). Pods for no profile of ours are kept but never
 * scheduled. Runs PreEnqueue: the pod is queued or gated. Returns 0, CORRAL_EEXISTS (same
 * ns/name known; the pod is freed) or -ENOMEM.
 */
int corral_fw_add_pod(struct corral_framework *fw, struct corral_pod *pod);

/*
 * Records a pod already bound to node (by someone else or an earlier run): places it with the
 * GPUs named by its corral.io/assigned-gpus and assigned-gpu-milli annotations. Steals pod.
 * Returns 0, CORRAL_ENOTFOUND (unknown node: the pod is kept unplaced), CORRAL_EEXISTS, or
 * -EINVAL when its GPUs do not fit.
 */
int corral_fw_add_bound_pod(struct corral_framework *fw, struct corral_pod *pod,
                            const char *node_name);

/*
 * Places a known, bound but unplaced pod (its node was unknown when it arrived) on node_name.
 * Returns 0, CORRAL_ENOTFOUND or -EINVAL as corral_fw_add_bound_pod().
 */
int corral_fw_place_bound_pod(struct corral_framework *fw, struct corral_pod *pod,
                              const char *node_name);

/* Pod known as ns/name, or NULL (borrowed). */
struct corral_pod *corral_fw_find_pod(const struct corral_framework *fw, const char *ns,
                                      const char *name);

/* Forgets a pod (deleted): leaves the queue/waiting list, is unplaced and freed. */
void corral_fw_remove_pod(struct corral_framework *fw, struct corral_pod *pod);

/* Schedules the pod at the head of the queue. Returns 1 when a pod was tried, 0 when empty. */
int corral_fw_schedule_next(struct corral_framework *fw, enum corral_fw_result *res,
                            struct corral_pod **which);

/* Puts an unschedulable or gated pod back through PreEnqueue (e.g. after a cluster event). */
void corral_fw_requeue(struct corral_framework *fw, struct corral_pod *pod);

/* Re-runs PreEnqueue for every gated pod. */
void corral_fw_retry_gated(struct corral_framework *fw);

/*
 * Finishes waiting pods that were allowed (binds them), rejected or timed out (unreserves
 * them). With expire_all, every pod still waiting times out now. Returns how many finished.
 */
int corral_fw_process_waiting(struct corral_framework *fw, bool expire_all);

uint64_t corral_fw_random(struct corral_framework *fw);
uint64_t corral_fw_now_ms(struct corral_framework *fw);

/* Drops every cached per-node result (a plugin's inputs changed). */
void corral_fw_invalidate(struct corral_framework *fw);

/* host.c: fills the host table of a plugin instance. */
void corral_fw_host_init(struct corral_fw_plugin *inst);

/* The current cycle's GPU set for node (host.c and framework.c). */
uint64_t corral_fw_cycle_mask(struct corral_framework *fw, uint32_t node);

/*
 * Runs the Filter plugins of the cycle's profile for the cycle's pod on node (host.c uses it
 * for fits_without). Returns 0 or the encoded rejection.
 */
uint32_t corral_fw_run_filters(struct corral_framework *fw, uint32_t node, bool local,
                               bool volatile_);

/* Evicts victims (preemption) and nominates node for the cycle's pod. */
int corral_fw_preempt(struct corral_framework *fw, uint32_t node,
                      struct corral_pod *const *victims, uint32_t n);

/* Lets a waiting pod past one Permit plugin / rejects it (host.c). */
int corral_fw_permit_allow(struct corral_framework *fw, struct corral_pod *pod, const char *plugin);
int corral_fw_permit_reject(struct corral_framework *fw, struct corral_pod *pod, const char *msg);

#endif
