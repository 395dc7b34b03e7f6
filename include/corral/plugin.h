/* SPDX-License-Identifier: Apache-2.0 */
/*
 * corral/plugin.h: the scheduler plugin ABI. This is the only header a plugin needs.
 *
 * A plugin is a shared object that exports one function, corral_plugin_entry(), returning a
 * pointer to a constant struct corral_plugin. The struct begins with abi_version and
 * struct_size; the loader refuses a plugin whose abi_version differs from
 * CORRAL_PLUGIN_ABI_VERSION, or whose struct_size is smaller than the first version of the
 * struct, naming the file, its version and the expected one. Fields are only ever added at
 * the end of the structs in this file, so a plugin built against an older header of the same
 * ABI version keeps working (the host reads only the first struct_size bytes).
 *
 * Extension points follow the Kubernetes scheduling framework, in this order:
 *   PreEnqueue -> QueueSort -> PreFilter -> Filter -> PostFilter -> PreScore -> Score ->
 *   NormalizeScore -> Reserve (Unreserve on failure) -> Permit (may wait) -> PreBind -> Bind ->
 *   PostBind.
 * Every callback may be NULL when the plugin does not implement that point. Scheduling cycles
 * are serial: between pre_filter() and the end of reserve()/unreserve() for one pod, no other
 * pod is being scheduled, so a plugin may keep per-cycle data in its own state. Binding-cycle
 * callbacks (permit resolution, pre_bind, bind, post_bind) must not rely on that data.
 *
 * Plugins see the cluster only through struct corral_host, a table of functions the host
 * passes to init(). Nodes are small integer indices, stable for as long as the node exists;
 * pods and JSON values are opaque handles borrowed for the duration of the callback unless
 * stated otherwise. All strings returned by the host are borrowed and NUL-terminated.
 *
 * Return codes: extension points return CORRAL_OK (0), a negative errno on an internal error,
 * CORRAL_SKIP (PreFilter/PreScore: nothing to do for this pod; Bind: not this plugin's pod),
 * CORRAL_WAIT (Permit) or a rejection built with CORRAL_REJECT(code): a plugin-defined reason
 * code in [1, 0xFFFFF] which the host turns into text with the plugin's reason() callback
 * when it explains a decision ("413 node(s) had GPU model not in [RTX-4090, RTX-3090]").
 * CORRAL_REJECT_UNRESOLVABLE(code) also says that evicting pods cannot help (preemption skips
 * such nodes).
 *
 * Example (the whole of a trivial Filter plugin):
 *
 *     static int filter(void *st, const struct corral_pod *pod, uint32_t node) {
 *         const struct corral_host *h = st;
 *         const char *v = h->node_label(h, node, "example.com/ok");
 *         return v && strcmp(v, "true") == 0 ? CORRAL_OK : CORRAL_REJECT(1);
 *     }
 *     static const struct corral_plugin plugin = {
 *         .abi_version = CORRAL_PLUGIN_ABI_VERSION, .struct_size = sizeof(plugin),
 *         .name = "ExampleOk", .init = init, .filter = filter, .reason = reason,
 *     };
 *     CORRAL_PLUGIN_EXPORT const struct corral_plugin *corral_plugin_entry(void)
 *     { return &plugin; }
 */
#ifndef CORRAL_PLUGIN_H
#define CORRAL_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped only when an existing field changes meaning or position. */
#define CORRAL_PLUGIN_ABI_VERSION 1u
/* The one symbol a plugin exports. */
#define CORRAL_PLUGIN_ENTRY_SYMBOL "corral_plugin_entry"
#define CORRAL_PLUGIN_EXPORT __attribute__((visibility("default")))

/*
 * Scores are integers in [0, CORRAL_MAX_NODE_SCORE]. Kubernetes uses 0..100; corral uses a
 * finer range because GPU fragment deltas are measured in thousandths of a GPU.
 */
#define CORRAL_MAX_NODE_SCORE 1000000
#define CORRAL_NO_NODE UINT32_MAX
/* Nodes have at most this many GPUs (GPU sets are 64-bit masks of GPU indices). */
#define CORRAL_MAX_GPUS_PER_NODE 64

/* Extension point results. */
#define CORRAL_OK 0
#define CORRAL_SKIP 0x1000000
#define CORRAL_WAIT 0x2000000
#define CORRAL_UNRESOLVABLE_FLAG 0x100000
#define CORRAL_REASON_MASK 0xFFFFF
#define CORRAL_REJECT(code) ((int)((code)&CORRAL_REASON_MASK))
#define CORRAL_REJECT_UNRESOLVABLE(code) ((int)(((code)&CORRAL_REASON_MASK) | CORRAL_UNRESOLVABLE_FLAG))
/* True when rc (from filter, pre_filter, reserve or permit) rejects the pod. */
#define CORRAL_IS_REJECT(rc) ((rc) > 0 && ((rc) & ~(CORRAL_REASON_MASK | CORRAL_UNRESOLVABLE_FLAG)) == 0)

/* Plugin flags (struct corral_plugin.flags). */
enum corral_plugin_flags {
    /*
     * Filter and Score for a node depend only on the pod's namespace, spec, labels and
     * annotations, on that node's state as read through the host, and on the plugin's own
     * state until it calls host->invalidate(). The host may then cache results per pod
     * signature and node, recomputing a node only when it changes. Plugins that read other
     * nodes, other pods' placements or the pod's name must not set this flag.
     */
    CORRAL_PLUGIN_NODE_LOCAL = 1u << 0,
    /*
     * Set with NODE_LOCAL when, beyond that, Filter (with the GPUs it leaves) and Score depend
     * on the node only through its labels (kubernetes.io/hostname aside), taints and
     * unschedulable flag, its allocatable and requested resources (standard and extended), its
     * GPUs as node_gpu() reports them (UUIDs aside; free shares count) and
     * gpu_link_bandwidth() - not on its name, hostname label, Node object or pods. Two nodes
     * alike in all of that get the same answers, so the host may answer for one node with what
     * the plugin said for an equal one. (Nodes whose pods use host ports are never treated as
     * alike.)
     */
    CORRAL_PLUGIN_NODE_CLASS = 1u << 1,
};

/* Standard resources, in the units the host reports them. */
enum corral_resource {
    CORRAL_RES_CPU = 0,       /* millicores */
    CORRAL_RES_MEMORY = 1,    /* bytes */
    CORRAL_RES_PODS = 2,      /* pod count */
    CORRAL_RES_GPU = 3,       /* whole GPUs (nvidia.com/gpu); node requested = GPUs not wholly free */
    CORRAL_RES_GPU_MILLI = 4, /* corral.io/gpu-milli: pod = share of one GPU; node = sum over GPUs */
    CORRAL_RES_EPHEMERAL = 5, /* ephemeral-storage, bytes */
    CORRAL_RES_COUNT = 6,
};

/* Per-node columns (struct-of-arrays), indexed by node; see corral_host.node_column. */
enum corral_column {
    CORRAL_COL_ALLOC_CPU = 0,
    CORRAL_COL_ALLOC_MEMORY,
    CORRAL_COL_ALLOC_PODS,
    CORRAL_COL_ALLOC_GPU,
    CORRAL_COL_REQ_CPU,
    CORRAL_COL_REQ_MEMORY,
    CORRAL_COL_REQ_PODS,
    CORRAL_COL_REQ_GPU_MILLI,
    CORRAL_COL_FREE_WHOLE_GPUS, /* GPUs with nothing allocated */
    CORRAL_COL_MAX_GPU_FREE,    /* largest free share on any one GPU, milli */
    CORRAL_COL_MIN_PRIORITY,    /* lowest priority of the pods on the node, INT64_MAX if none */
    CORRAL_COL_COUNT,
};

/* GPU flags (struct corral_gpu.flags). */
enum corral_gpu_flags {
    CORRAL_GPU_RT_CORES = 1u << 0,
    CORRAL_GPU_NVLINK = 1u << 1,
};

/* One GPU of a node, as published in the node's corral.io/gpus annotation (docs/gpus.md). */
struct corral_gpu {
    uint32_t struct_size;
    int32_t index;        /* what bindings refer to */
    int32_t free_milli;   /* 0..1000, what is not yet allocated */
    int32_t memory_mib;   /* 0 when unknown */
    int32_t numa_node;    /* -1 when unknown */
    int32_t island;       /* NVLink island, -1 when unknown */
    int16_t cc_major;     /* compute capability, -1 when unknown */
    int16_t cc_minor;
    uint32_t flags;       /* enum corral_gpu_flags */
    const char *model;    /* corral short model ("H100-SXM5-80GB", "G2"), "" when unknown */
    const char *product;  /* GFD product name, "" when unknown */
    const char *family;   /* "hopper", ..., "" when unknown */
    const char *gpu_class; /* "datacenter-training", ..., "" when unknown */
    const char *uuid;     /* "" when unknown */
};

/* A node taint. */
struct corral_taint {
    const char *key;
    const char *value;  /* "" when absent */
    const char *effect; /* NoSchedule, PreferNoSchedule, NoExecute */
};

/* Opaque handles. */
struct corral_pod;
struct corral_value;

enum corral_value_type {
    CORRAL_VALUE_NULL = 0,
    CORRAL_VALUE_OBJECT,
    CORRAL_VALUE_ARRAY,
    CORRAL_VALUE_STRING,
    CORRAL_VALUE_INTEGER,
    CORRAL_VALUE_REAL,
    CORRAL_VALUE_BOOL,
};

enum corral_log_level_abi {
    CORRAL_PLUGIN_LOG_ERROR = 0,
    CORRAL_PLUGIN_LOG_WARN = 1,
    CORRAL_PLUGIN_LOG_INFO = 2,
    CORRAL_PLUGIN_LOG_DEBUG = 3,
};

/*
 * What the host offers. Every function takes the table itself first. Unless said otherwise a
 * function may be called from any extension point of the scheduling cycle.
 */
struct corral_host {
    uint32_t abi_version;
    uint32_t struct_size;

    /* --- nodes --- */
    uint32_t (*node_count)(const struct corral_host *h); /* node indices are < this */
    /* 0 when index names no node (deleted); such nodes are never offered to plugins. */
    int (*node_exists)(const struct corral_host *h, uint32_t node);
    const char *(*node_name)(const struct corral_host *h, uint32_t node);
    const char *(*node_label)(const struct corral_host *h, uint32_t node, const char *key);
    /* The whole Node object (metadata, spec, status). */
    const struct corral_value *(*node_object)(const struct corral_host *h, uint32_t node);
    int64_t (*node_allocatable)(const struct corral_host *h, uint32_t node, enum corral_resource r);
    int64_t (*node_requested)(const struct corral_host *h, uint32_t node, enum corral_resource r);
    /* Extended resources by name ("example.com/fpga"); 0 when absent. */
    int64_t (*node_allocatable_named)(const struct corral_host *h, uint32_t node, const char *name);
    int64_t (*node_requested_named)(const struct corral_host *h, uint32_t node, const char *name);
    /* Column for all nodes at once, valid until the next placement (read-only). */
    const int64_t *(*node_column)(const struct corral_host *h, enum corral_column col);
    /* Changes whenever the node's state or its pods change. */
    uint64_t (*node_generation)(const struct corral_host *h, uint32_t node);
    int (*node_unschedulable)(const struct corral_host *h, uint32_t node);
    uint32_t (*node_taint_count)(const struct corral_host *h, uint32_t node);
    int (*node_taint)(const struct corral_host *h, uint32_t node, uint32_t i, struct corral_taint *out);
    uint32_t (*node_gpu_count)(const struct corral_host *h, uint32_t node);
    const struct corral_gpu *(*node_gpu)(const struct corral_host *h, uint32_t node, uint32_t i);
    /* NVLink bandwidth between GPUs a and b (positions, not indices), MB/s; 0 when none. */
    int64_t (*gpu_link_bandwidth)(const struct corral_host *h, uint32_t node, uint32_t a, uint32_t b);
    /* Pods bound or reserved on the node. */
    uint32_t (*node_pod_count)(const struct corral_host *h, uint32_t node);
    const struct corral_pod *(*node_pod)(const struct corral_host *h, uint32_t node, uint32_t i);

    /* --- pods --- */
    const char *(*pod_name)(const struct corral_host *h, const struct corral_pod *pod);
    const char *(*pod_namespace)(const struct corral_host *h, const struct corral_pod *pod);
    const char *(*pod_uid)(const struct corral_host *h, const struct corral_pod *pod);
    const char *(*pod_label)(const struct corral_host *h, const struct corral_pod *pod, const char *key);
    const char *(*pod_annotation)(const struct corral_host *h, const struct corral_pod *pod,
                                  const char *key);
    const struct corral_value *(*pod_object)(const struct corral_host *h, const struct corral_pod *pod);
    /* Effective request (max of init containers and sum of containers, plus overhead). */
    int64_t (*pod_request)(const struct corral_host *h, const struct corral_pod *pod, enum corral_resource r);
    uint32_t (*pod_extended_count)(const struct corral_host *h, const struct corral_pod *pod);
    int (*pod_extended)(const struct corral_host *h, const struct corral_pod *pod, uint32_t i,
                        const char **name, int64_t *value);
    int32_t (*pod_priority)(const struct corral_host *h, const struct corral_pod *pod);
    /* Node the pod is bound or reserved on, CORRAL_NO_NODE when none. */
    uint32_t (*pod_node)(const struct corral_host *h, const struct corral_pod *pod);
    /* GPUs (mask of positions) assigned to the pod, and the share per GPU in milli. */
    uint64_t (*pod_gpus)(const struct corral_host *h, const struct corral_pod *pod, int32_t *milli);
    /* Monotonic arrival sequence number (queue order tie-break). */
    uint64_t (*pod_sequence)(const struct corral_host *h, const struct corral_pod *pod);
    /*
     * Pods the host knows (queued, waiting, bound) in namespace ns carrying label key=value.
     * Writes up to max of them to out and returns how many there are in all.
     */
    uint32_t (*pods_with_label)(const struct corral_host *h, const char *ns, const char *key,
                                const char *value, const struct corral_pod **out, uint32_t max);

    /* --- the current scheduling cycle: GPU sets --- */
    /* GPUs (positions) the pod may still use on node this cycle; Filter narrows it. */
    uint64_t (*cycle_gpu_mask)(const struct corral_host *h, uint32_t node);
    /* Filter only: removes GPUs the pod cannot use on node. */
    void (*cycle_restrict_gpus)(const struct corral_host *h, uint32_t node, uint64_t allowed);
    /*
     * Reserve only: assigns GPUs (mask of positions) to the pod on node, each with share milli
     * (1000 for whole GPUs). Returns 0, -EBUSY when GPUs were already assigned this cycle, or
     * -EINVAL when the set is not allowed, not free enough or of the wrong size.
     */
    int (*assign_gpus)(const struct corral_host *h, const struct corral_pod *pod, uint32_t node,
                       uint64_t gpus, int32_t milli);

    /* --- helpers (shared with the host, so every plugin reads things the same way) --- */
    /* Parses a Kubernetes quantity; *milli = value x 1000. Returns 0 or -EINVAL/-ERANGE. */
    int (*parse_quantity)(const struct corral_host *h, const char *s, int64_t *milli);
    /*
     * Matches a LabelSelector object, or an array of NodeSelectorRequirements
     * (key/operator/values with In, NotIn, Exists, DoesNotExist, Gt, Lt), against the node's
     * labels. Returns 1 (match), 0 (no match) or -EINVAL when the selector is malformed.
     */
    int (*node_matches)(const struct corral_host *h, const struct corral_value *selector, uint32_t node);
    /* The same, against a pod's labels. */
    int (*pod_matches)(const struct corral_host *h, const struct corral_value *selector,
                       const struct corral_pod *pod);
    /* Uniform 64-bit random number from the host's seeded generator. */
    uint64_t (*random)(const struct corral_host *h);
    /* Milliseconds on the host's clock (virtual in simulation). */
    uint64_t (*now_ms)(const struct corral_host *h);
    void (*log)(const struct corral_host *h, enum corral_log_level_abi level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
    /* A node-local plugin's results changed for every node (drops the host's caches). */
    void (*invalidate)(const struct corral_host *h);
    /* Another object the host knows (e.g. a PodGroup), or NULL. */
    const struct corral_value *(*lookup_object)(const struct corral_host *h, const char *api_version,
                                                const char *kind, const char *ns, const char *name);

    /* --- JSON values (pod, node and other objects, plugin arguments) --- */
    enum corral_value_type (*value_type)(const struct corral_value *v); /* NULL -> NULL type */
    const struct corral_value *(*value_get)(const struct corral_value *obj, const char *key);
    /* Dotted path into nested objects: "spec.affinity.nodeAffinity". */
    const struct corral_value *(*value_path)(const struct corral_value *obj, const char *path);
    size_t (*value_size)(const struct corral_value *v); /* array length or object size */
    const struct corral_value *(*value_at)(const struct corral_value *arr, size_t i);
    /* The i-th member of an object (in insertion order) and its key; NULL past the end. */
    const struct corral_value *(*value_member)(const struct corral_value *obj, size_t i, const char **key);
    const char *(*value_string)(const struct corral_value *v); /* NULL unless a string */
    int64_t (*value_integer)(const struct corral_value *v);    /* 0 unless an integer */
    double (*value_number)(const struct corral_value *v);      /* integer or real, else 0 */
    int (*value_bool)(const struct corral_value *v);           /* 0 unless true */

    /* --- permit --- */
    /* Lets a pod waiting in Permit go on to binding (once every Permit plugin allowed it). */
    int (*permit_allow)(const struct corral_host *h, const struct corral_pod *pod, const char *plugin);
    /* Rejects a waiting pod; it is unreserved and goes back to the queue. */
    int (*permit_reject)(const struct corral_host *h, const struct corral_pod *pod, const char *message);
    uint32_t (*waiting_count)(const struct corral_host *h);
    const struct corral_pod *(*waiting_pod)(const struct corral_host *h, uint32_t i);

    /* --- preemption (PostFilter only) --- */
    /*
     * Runs every Filter plugin for the pod on node as if the given pods were gone. Returns 0
     * when the pod would fit, a rejection code otherwise.
     */
    int (*fits_without)(const struct corral_host *h, const struct corral_pod *pod, uint32_t node,
                        const struct corral_pod *const *victims, uint32_t n);
    /* Evicts victims from node and nominates it for pod. Returns 0 or a negative errno. */
    int (*preempt)(const struct corral_host *h, const struct corral_pod *pod, uint32_t node,
                   const struct corral_pod *const *victims, uint32_t n);

    /*
     * --- added later in ABI version 1: a plugin must check that h->struct_size reaches a
     * field (CORRAL_HOST_HAS) before it calls it, since an older host lacks it ---
     */
    /*
     * The smallest value of a column over the nodes that exist, INT64_MAX when there are none.
     * O(1) for CORRAL_COL_MIN_PRIORITY (so PostFilter can tell at once that no node holds a
     * pod of lower priority), a scan of the column for the others.
     */
    int64_t (*column_min)(const struct corral_host *h, enum corral_column col);
};

/* True when host table h has field (it is long enough and the field is set). */
#define CORRAL_HOST_HAS(h, field)                                                                  \
    ((h)->struct_size >= offsetof(struct corral_host, field) + sizeof((h)->field) && (h)->field)

/* What a plugin exports. Every callback may be NULL. */
struct corral_plugin {
    uint32_t abi_version; /* CORRAL_PLUGIN_ABI_VERSION */
    uint32_t struct_size; /* sizeof(struct corral_plugin) as the plugin was built */
    const char *name;     /* the name profiles use: "ResourceFit" */
    const char *description;
    uint32_t flags; /* enum corral_plugin_flags */
    uint32_t reserved;

    /*
     * Creates the plugin's state from its arguments (a JSON object from the profile, possibly
     * NULL). The host table outlives the state. Returns 0, or a negative errno with a message
     * in err.
     */
    int (*init)(const struct corral_host *h, const struct corral_value *args, void **state,
                char *err, size_t errlen);
    void (*fini)(void *state);

    /* PreEnqueue: 0 admits the pod to the active queue; a rejection keeps it waiting. */
    int (*pre_enqueue)(void *state, const struct corral_pod *pod);
    /* QueueSort: <0 when a goes first, >0 when b goes first, 0 for no preference. */
    int (*queue_less)(void *state, const struct corral_pod *a, const struct corral_pod *b);
    /* PreFilter: OK, SKIP (Filter not needed for this pod) or a rejection of every node. */
    int (*pre_filter)(void *state, const struct corral_pod *pod);
    /* Filter: OK or a rejection of this node. May narrow the pod's GPUs with cycle_restrict_gpus. */
    int (*filter)(void *state, const struct corral_pod *pod, uint32_t node);
    /*
     * PostFilter: called when no node fits. OK when it made room (preemption), writing the
     * nominated node; a rejection otherwise.
     */
    int (*post_filter)(void *state, const struct corral_pod *pod, uint32_t *nominated);
    /* PreScore: OK or SKIP (Score not needed for this pod). */
    int (*pre_score)(void *state, const struct corral_pod *pod);
    /* Score: [0, CORRAL_MAX_NODE_SCORE], or a negative errno. */
    int64_t (*score)(void *state, const struct corral_pod *pod, uint32_t node);
    /* NormalizeScore: rewrites the n scores of the feasible nodes in place. */
    void (*normalize_score)(void *state, const struct corral_pod *pod, const uint32_t *nodes,
                            int64_t *scores, size_t n);
    /* Reserve: OK or a rejection. The pod's resources on node are already counted. */
    int (*reserve)(void *state, const struct corral_pod *pod, uint32_t node);
    void (*unreserve)(void *state, const struct corral_pod *pod, uint32_t node);
    /* Permit: OK, a rejection, or WAIT with *timeout_ms set (resolve with permit_allow). */
    int (*permit)(void *state, const struct corral_pod *pod, uint32_t node, uint32_t *timeout_ms);
    int (*pre_bind)(void *state, const struct corral_pod *pod, uint32_t node);
    /* Bind: OK when this plugin bound the pod, SKIP to let the next one (or the host) bind. */
    int (*bind)(void *state, const struct corral_pod *pod, uint32_t node);
    void (*post_bind)(void *state, const struct corral_pod *pod, uint32_t node);
    /*
     * Writes the text for a rejection code, as it appears in "0/N nodes are available: 3 <text>"
     * (e.g. "Insufficient nvidia.com/gpu"). Returns the length written.
     */
    int (*reason)(void *state, const struct corral_pod *pod, int code, char *buf, size_t len);
};

/* The first version of struct corral_plugin ends after .reason; older plugins are refused. */
#define CORRAL_PLUGIN_MIN_STRUCT_SIZE                                                              \
    (offsetof(struct corral_plugin, reason) + sizeof(void *))

typedef const struct corral_plugin *(*corral_plugin_entry_fn)(void);

/* What every plugin defines (declared here so the definition is checked against it). */
CORRAL_PLUGIN_EXPORT const struct corral_plugin *corral_plugin_entry(void);

#ifdef __cplusplus
}
#endif

#endif
