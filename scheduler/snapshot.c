/* SPDX-License-Identifier: Apache-2.0 */
/*
 * snapshot: see snapshot.h. Reading a Node object is split into allocatable resources, the
 * per-GPU table and taints; placing a pod updates the columns and the GPU summaries of one
 * node and bumps its generation.
 */
#include "snapshot.h"

#include "error.h"
#include "meta.h"
#include "quantity.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_PODS 110

struct corral_snapshot *corral_snapshot_new(void)
{
    struct corral_snapshot *s = calloc(1, sizeof(*s));
    if (s) {
        corral_strmap_init(&s->by_name);
        corral_strmap_init(&s->statics);
        s->prio_floor_dirty = true;
    }
    return s;
}

static void node_clear(struct corral_snap_node *nd)
{
    free(nd->name);
    json_decref(nd->obj);
    json_decref(nd->gpu_json);
    free(nd->gpus);
    free(nd->links);
    free(nd->taints);
    free(nd->ext);
    free(nd->pods);
    memset(nd, 0, sizeof(*nd));
}

void corral_snapshot_free(struct corral_snapshot *s)
{
    if (!s)
        return;
    for (uint32_t i = 0; i < s->n; i++)
        node_clear(&s->nodes[i]);
    for (int c = 0; c < CORRAL_COL_COUNT; c++)
        free(s->col[c]);
    free(s->alloc_eph);
    free(s->req_eph);
    free(s->gen);
    free(s->exists);
    free(s->nodes);
    free(s->free_slots);
    free(s->changelog);
    free(s->static_id);
    free(s->port_pods);
    free(s->cls);
    free(s->cls_gen);
    corral_nodeclass_free(s);
    corral_strmap_clear(&s->by_name);
    free(s);
}

/* Records that node changed: it gets the next generation. */
static void bump(struct corral_snapshot *s, uint32_t node)
{
    s->gen[node] = ++s->gen_counter;
    if (s->changelog_cap)
        s->changelog[s->gen_counter % s->changelog_cap] = node;
}

int corral_snapshot_changes(const struct corral_snapshot *s, uint64_t since,
                            void (*fn)(uint32_t node, void *arg), void *arg)
{
    if (since < s->changelog_base || s->gen_counter - since >= s->changelog_cap)
        return -ERANGE;
    for (uint64_t g = since + 1; g <= s->gen_counter; g++)
        fn(s->changelog[g % s->changelog_cap], arg);
    return 0;
}

static int grow_array(void **p, size_t elem, uint32_t old_cap, uint32_t cap)
{
    void *np = realloc(*p, elem * cap);
    if (!np)
        return -ENOMEM;
    memset((char *)np + elem * old_cap, 0, elem * (cap - old_cap));
    *p = np;
    return 0;
}

static int ensure_cap(struct corral_snapshot *s, uint32_t want)
{
    if (want <= s->cap)
        return 0;
    uint32_t cap = s->cap ? s->cap * 2 : 64;
    while (cap < want)
        cap *= 2;
    int rc = 0;
    for (int c = 0; c < CORRAL_COL_COUNT && rc == 0; c++)
        rc = grow_array((void **)&s->col[c], sizeof(int64_t), s->cap, cap);
    if (rc == 0)
        rc = grow_array((void **)&s->alloc_eph, sizeof(int64_t), s->cap, cap);
    if (rc == 0)
        rc = grow_array((void **)&s->req_eph, sizeof(int64_t), s->cap, cap);
    if (rc == 0)
        rc = grow_array((void **)&s->gen, sizeof(uint64_t), s->cap, cap);
    if (rc == 0)
        rc = grow_array((void **)&s->exists, 1, s->cap, cap);
    if (rc == 0)
        rc = grow_array((void **)&s->nodes, sizeof(struct corral_snap_node), s->cap, cap);
    if (rc == 0)
        rc = grow_array((void **)&s->free_slots, sizeof(uint32_t), s->cap, cap);
    if (rc == 0)
        rc = grow_array((void **)&s->static_id, sizeof(uint32_t), s->cap, cap);
    if (rc == 0)
        rc = grow_array((void **)&s->port_pods, sizeof(uint32_t), s->cap, cap);
    if (rc == 0)
        rc = grow_array((void **)&s->cls, sizeof(uint64_t), s->cap, cap);
    if (rc == 0)
        rc = grow_array((void **)&s->cls_gen, sizeof(uint64_t), s->cap, cap);
    uint32_t *log = rc == 0 ? calloc((size_t)cap * 4, sizeof(uint32_t)) : NULL;
    if (rc == 0 && !log)
        rc = -ENOMEM;
    if (rc == 0) {
        free(s->changelog); /* a bigger log starts afresh: older readers rescan */
        s->changelog = log;
        s->changelog_cap = cap * 4;
        s->changelog_base = s->gen_counter;
        s->cap = cap;
    }
    return rc;
}

/* ---- reading a Node object ---- */

struct node_read {
    int64_t alloc[CORRAL_RES_COUNT];
    struct corral_snap_ext *ext;
    uint32_t n_ext;
    bool has_gpu_count;
};

static int quantity_at(json_t *v, const char *name, int64_t *milli, char *err, size_t errlen)
{
    struct corral_quantity q;
    if (corral_quantity_from_json(v, &q) < 0 || (*milli = corral_quantity_milli(&q)) < 0) {
        snprintf(err, errlen, "status.allocatable[%s]: not a valid non-negative quantity", name);
        return CORRAL_EINVALID;
    }
    return 0;
}

static int read_allocatable(json_t *obj, struct node_read *nr, char *err, size_t errlen)
{
    json_t *status = json_object_get(obj, "status");
    json_t *alloc = json_object_get(status, "allocatable");
    if (!json_is_object(alloc))
        alloc = json_object_get(status, "capacity");
    nr->alloc[CORRAL_RES_PODS] = DEFAULT_MAX_PODS;
    size_t n = json_object_size(alloc);
    nr->ext = n ? calloc(n, sizeof(*nr->ext)) : NULL;
    if (n && !nr->ext)
        return -ENOMEM;
    const char *k;
    json_t *v;
    json_object_foreach(alloc, k, v)
    {
        int64_t milli;
        if (quantity_at(v, k, &milli, err, errlen) < 0)
            return CORRAL_EINVALID;
        int64_t value = milli / 1000;
        if (strcmp(k, "cpu") == 0)
            nr->alloc[CORRAL_RES_CPU] = milli;
        else if (strcmp(k, "memory") == 0)
            nr->alloc[CORRAL_RES_MEMORY] = value;
        else if (strcmp(k, "pods") == 0)
            nr->alloc[CORRAL_RES_PODS] = value;
        else if (strcmp(k, "ephemeral-storage") == 0)
            nr->alloc[CORRAL_RES_EPHEMERAL] = value;
        else if (strcmp(k, "nvidia.com/gpu") == 0) {
            nr->alloc[CORRAL_RES_GPU] = value;
            nr->has_gpu_count = true;
        } else if (strcmp(k, "corral.io/gpu-milli") != 0)
            nr->ext[nr->n_ext++] = (struct corral_snap_ext){k, value, 0};
    }
    if (nr->alloc[CORRAL_RES_GPU] > CORRAL_MAX_GPUS_PER_NODE) {
        snprintf(err, errlen, "status.allocatable[nvidia.com/gpu]: %lld GPUs; at most %d are "
                 "supported per node", (long long)nr->alloc[CORRAL_RES_GPU],
                 CORRAL_MAX_GPUS_PER_NODE);
        return CORRAL_EINVALID;
    }
    return 0;
}

static const char *label(json_t *labels, const char *key)
{
    const char *v = json_string_value(json_object_get(labels, key));
    return v ? v : "";
}

static int label_int(json_t *labels, const char *key, int fallback)
{
    const char *v = json_string_value(json_object_get(labels, key));
    char *end;
    if (!v || !*v)
        return fallback;
    long r = strtol(v, &end, 10);
    return *end ? fallback : (int)r;
}

/* A GPU described only by the node's labels (nodes without the corral.io/gpus annotation). */
static void gpu_from_labels(struct corral_gpu *g, int index, json_t *labels)
{
    const char *model = label(labels, "corral.io/gpu.model");
    *g = (struct corral_gpu){
        .struct_size = sizeof(*g),
        .index = index,
        .free_milli = 1000,
        .memory_mib = label_int(labels, "nvidia.com/gpu.memory", 0),
        .numa_node = -1,
        .island = -1,
        .cc_major = (int16_t)label_int(labels, "nvidia.com/gpu.compute.major", -1),
        .cc_minor = (int16_t)label_int(labels, "nvidia.com/gpu.compute.minor", -1),
        .model = *model ? model : label(labels, "nvidia.com/gpu.product"),
        .product = label(labels, "nvidia.com/gpu.product"),
        .family = label(labels, "nvidia.com/gpu.family"),
        .gpu_class = label(labels, "corral.io/gpu.class"),
        .uuid = "",
    };
    if (strcmp(label(labels, "corral.io/gpu.rt-cores"), "true") == 0)
        g->flags |= CORRAL_GPU_RT_CORES;
    if (strcmp(label(labels, "corral.io/gpu.nvlink"), "true") == 0)
        g->flags |= CORRAL_GPU_NVLINK;
}

static const char *str_or(json_t *o, const char *key, const char *fallback)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : fallback;
}

static int int_or(json_t *o, const char *key, int fallback)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (int)json_integer_value(v) : fallback;
}

static int gpu_from_json(struct corral_gpu *g, json_t *e, json_t *labels, char *err,
                         size_t errlen)
{
    json_t *idx = json_object_get(e, "index");
    if (!json_is_object(e) || !json_is_integer(idx) || json_integer_value(idx) < 0) {
        snprintf(err, errlen, "annotation corral.io/gpus: each GPU needs a non-negative index");
        return CORRAL_EINVALID;
    }
    gpu_from_labels(g, (int)json_integer_value(idx), labels);
    g->model = str_or(e, "model", g->model);
    g->product = str_or(e, "product", g->product);
    g->family = str_or(e, "family", g->family);
    g->gpu_class = str_or(e, "class", g->gpu_class);
    g->uuid = str_or(e, "uuid", "");
    g->memory_mib = int_or(e, "memoryMiB", g->memory_mib);
    g->numa_node = int_or(e, "numaNode", -1);
    g->island = int_or(e, "island", -1);
    const char *cc = json_string_value(json_object_get(e, "computeCapability"));
    int ma, mi;
    if (cc && sscanf(cc, "%d.%d", &ma, &mi) == 2) {
        g->cc_major = (int16_t)ma;
        g->cc_minor = (int16_t)mi;
    }
    json_t *rt = json_object_get(e, "rtCores");
    if (json_is_boolean(rt))
        g->flags = json_is_true(rt) ? (g->flags | CORRAL_GPU_RT_CORES)
                                    : (g->flags & ~(uint32_t)CORRAL_GPU_RT_CORES);
    if (json_array_size(json_object_get(e, "nvlink")) > 0)
        g->flags |= CORRAL_GPU_NVLINK;
    return 0;
}

static int cmp_gpu(const void *a, const void *b)
{
    const struct corral_gpu *x = a, *y = b;
    return (x->index > y->index) - (x->index < y->index);
}

static int parse_gpu_annotation(struct corral_snap_node *nd, json_t **arr, char *err,
                                size_t errlen)
{
    const char *text = json_string_value(json_object_get(corral_meta_annotations(nd->obj),
                                                         "corral.io/gpus"));
    *arr = NULL;
    if (!text)
        return 0;
    json_error_t je;
    *arr = json_loads(text, 0, &je);
    if (!json_is_array(*arr)) {
        snprintf(err, errlen, "annotation corral.io/gpus: not a JSON array (%s)", je.text);
        json_decref(*arr);
        *arr = NULL;
        return CORRAL_EINVALID;
    }
    if (json_array_size(*arr) > CORRAL_MAX_GPUS_PER_NODE) {
        snprintf(err, errlen, "annotation corral.io/gpus: more than %d GPUs",
                 CORRAL_MAX_GPUS_PER_NODE);
        return CORRAL_EINVALID;
    }
    return 0;
}

static int build_links(struct corral_snap_node *nd, json_t *arr)
{
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        size_t j;
        json_t *l;
        json_array_foreach(json_object_get(e, "nvlink"), j, l)
        {
            int peer = int_or(l, "peer", -1);
            json_t *bw = json_object_get(l, "bandwidthMBps");
            int self = int_or(e, "index", -1);
            int a = -1, b = -1;
            for (uint32_t k = 0; k < nd->n_gpus; k++) {
                a = nd->gpus[k].index == self ? (int)k : a;
                b = nd->gpus[k].index == peer ? (int)k : b;
            }
            if (a < 0 || b < 0)
                continue;
            if (!nd->links && !(nd->links = calloc((size_t)nd->n_gpus * nd->n_gpus, 8)))
                return -ENOMEM;
            int64_t v = json_is_number(bw) ? (int64_t)json_number_value(bw) : 1;
            nd->links[(size_t)a * nd->n_gpus + b] = v;
            nd->links[(size_t)b * nd->n_gpus + a] = v;
        }
    }
    return 0;
}

static int read_gpus(struct corral_snap_node *nd, const struct node_read *nr, char *err,
                     size_t errlen)
{
    json_t *arr = NULL;
    int rc = parse_gpu_annotation(nd, &arr, err, errlen);
    if (rc < 0)
        goto out;
    /* GPUs the node agent marked unhealthy are not allocatable: drop them here too. */
    for (size_t i = json_array_size(arr); i-- > 0;)
        if (json_is_false(json_object_get(json_array_get(arr, i), "healthy")))
            json_array_remove(arr, i);
    size_t from_ann = json_array_size(arr);
    size_t n = nr->has_gpu_count ? (size_t)nr->alloc[CORRAL_RES_GPU] : from_ann;
    size_t alloc = n > from_ann ? n : from_ann;
    nd->gpus = alloc ? calloc(alloc, sizeof(*nd->gpus)) : NULL;
    rc = -ENOMEM;
    if (alloc && !nd->gpus)
        goto out;
    for (size_t i = 0; i < from_ann; i++)
        if ((rc = gpu_from_json(&nd->gpus[i], json_array_get(arr, i), nd->labels, err,
                                errlen)) < 0)
            goto out;
    if (from_ann)
        qsort(nd->gpus, from_ann, sizeof(*nd->gpus), cmp_gpu);
    for (size_t i = 1; i < from_ann; i++)
        if (nd->gpus[i].index == nd->gpus[i - 1].index) {
            snprintf(err, errlen, "annotation corral.io/gpus: index %d appears twice",
                     nd->gpus[i].index);
            rc = CORRAL_EINVALID;
            goto out;
        }
    for (size_t i = from_ann; i < n; i++)
        gpu_from_labels(&nd->gpus[i], i == 0 ? 0 : nd->gpus[i - 1].index + 1, nd->labels);
    nd->n_gpus = (uint32_t)n; /* allocatable wins: extra annotated GPUs are not offered */
    nd->gpu_json = arr;
    arr = NULL;
    rc = build_links(nd, nd->gpu_json);
out:
    json_decref(arr);
    return rc;
}

static int read_taints(struct corral_snap_node *nd, char *err, size_t errlen)
{
    json_t *spec = json_object_get(nd->obj, "spec");
    json_t *taints = json_object_get(spec, "taints");
    nd->unschedulable = json_is_true(json_object_get(spec, "unschedulable"));
    size_t n = json_array_size(taints);
    if (!n)
        return 0;
    if (!(nd->taints = calloc(n, sizeof(*nd->taints))))
        return -ENOMEM;
    size_t i;
    json_t *t;
    json_array_foreach(taints, i, t)
    {
        const char *key = json_string_value(json_object_get(t, "key"));
        const char *effect = json_string_value(json_object_get(t, "effect"));
        if (!key || !effect) {
            snprintf(err, errlen, "spec.taints[%zu]: key and effect are required", i);
            return CORRAL_EINVALID;
        }
        nd->taints[i] = (struct corral_taint){key, str_or(t, "value", ""), effect};
    }
    nd->n_taints = (uint32_t)n;
    return 0;
}

/* ---- usage accounting ---- */

static void update_gpu_summary(struct corral_snapshot *s, uint32_t i)
{
    struct corral_snap_node *nd = &s->nodes[i];
    int64_t whole = 0, maxf = 0, used = 0;
    for (uint32_t g = 0; g < nd->n_gpus; g++) {
        int32_t f = nd->gpus[g].free_milli;
        whole += f == 1000;
        maxf = f > maxf ? f : maxf;
        used += 1000 - f;
    }
    s->used_gpu_milli += (uint64_t)used;
    s->used_gpu_milli -= (uint64_t)s->col[CORRAL_COL_REQ_GPU_MILLI][i];
    s->col[CORRAL_COL_FREE_WHOLE_GPUS][i] = whole;
    s->col[CORRAL_COL_MAX_GPU_FREE][i] = maxf;
    s->col[CORRAL_COL_REQ_GPU_MILLI][i] = used;
    bump(s, i);
}

static struct corral_snap_ext *find_ext(struct corral_snap_node *nd, const char *name)
{
    for (uint32_t e = 0; e < nd->n_ext; e++)
        if (strcmp(nd->ext[e].name, name) == 0)
            return &nd->ext[e];
    return NULL;
}

/* Sets node i's lowest pod priority, keeping the snapshot-wide floor. */
static void set_min_priority(struct corral_snapshot *s, uint32_t i, int64_t v)
{
    int64_t old = s->col[CORRAL_COL_MIN_PRIORITY][i];
    s->col[CORRAL_COL_MIN_PRIORITY][i] = v;
    if (!s->exists[i] || s->prio_floor_dirty || old == v)
        return;
    if (old == s->prio_floor && --s->prio_floor_n == 0) {
        s->prio_floor_dirty = true; /* the floor may rise: find it when asked */
        return;
    }
    if (v < s->prio_floor) {
        s->prio_floor = v;
        s->prio_floor_n = 1;
    } else if (v == s->prio_floor) {
        s->prio_floor_n++;
    }
}

int64_t corral_snapshot_min_priority(struct corral_snapshot *s)
{
    if (s->prio_floor_dirty) {
        s->prio_floor = INT64_MAX;
        s->prio_floor_n = 0;
        for (uint32_t i = 0; i < s->n; i++) {
            int64_t v = s->col[CORRAL_COL_MIN_PRIORITY][i];
            if (!s->exists[i] || v > s->prio_floor)
                continue;
            s->prio_floor_n = v < s->prio_floor ? 1 : s->prio_floor_n + 1;
            s->prio_floor = v;
        }
        s->prio_floor_dirty = false;
    }
    return s->prio_floor;
}

/* Lowest priority over the node's pods (INT64_MAX when it has none). */
static void recompute_min_priority(struct corral_snapshot *s, uint32_t i)
{
    const struct corral_snap_node *nd = &s->nodes[i];
    int64_t low = INT64_MAX;
    for (uint32_t p = 0; p < nd->n_pods; p++)
        low = nd->pods[p]->priority < low ? nd->pods[p]->priority : low;
    set_min_priority(s, i, low);
}

/* Adds (sign = 1) or removes (sign = -1) a pod's requests on node i, GPUs excepted. */
static void account(struct corral_snapshot *s, uint32_t i, const struct corral_pod *pod, int sign)
{
    s->col[CORRAL_COL_REQ_CPU][i] += sign * pod->req[CORRAL_RES_CPU];
    s->col[CORRAL_COL_REQ_MEMORY][i] += sign * pod->req[CORRAL_RES_MEMORY];
    s->col[CORRAL_COL_REQ_PODS][i] += sign;
    s->req_eph[i] += sign * pod->req[CORRAL_RES_EPHEMERAL];
    if (pod->host_ports)
        s->port_pods[i] += (uint32_t)sign;
    for (uint32_t e = 0; e < pod->n_ext; e++) {
        struct corral_snap_ext *x = find_ext(&s->nodes[i], pod->ext[e].name);
        if (x)
            x->used += sign * pod->ext[e].value;
    }
}

static int gpus_fit(const struct corral_snap_node *nd, uint64_t gpus, int32_t milli)
{
    if (milli <= 0 || milli > 1000)
        return 0;
    for (uint32_t g = 0; g < 64; g++) {
        if (!(gpus >> g & 1))
            continue;
        if (g >= nd->n_gpus || nd->gpus[g].free_milli < milli)
            return 0;
    }
    return 1;
}

static void apply_gpus(struct corral_snap_node *nd, uint64_t gpus, int32_t delta)
{
    for (uint32_t g = 0; g < nd->n_gpus; g++)
        if (gpus >> g & 1)
            nd->gpus[g].free_milli += delta;
}

static int push_pod(struct corral_snap_node *nd, struct corral_pod *pod)
{
    if (nd->n_pods == nd->cap_pods) {
        uint32_t cap = nd->cap_pods ? nd->cap_pods * 2 : 8;
        struct corral_pod **np = realloc(nd->pods, cap * sizeof(*np));
        if (!np)
            return -ENOMEM;
        nd->pods = np;
        nd->cap_pods = cap;
    }
    pod->node_pos = nd->n_pods;
    nd->pods[nd->n_pods++] = pod;
    return 0;
}

int corral_snapshot_place(struct corral_snapshot *s, struct corral_pod *pod, uint32_t node,
                          uint64_t gpus, int32_t milli)
{
    if (node >= s->n || !s->exists[node] || pod->node != CORRAL_NO_NODE)
        return -EINVAL;
    struct corral_snap_node *nd = &s->nodes[node];
    if (gpus && !gpus_fit(nd, gpus, milli))
        return -EINVAL;
    if (push_pod(nd, pod) < 0)
        return -ENOMEM;
    pod->node = node;
    pod->gpus = gpus;
    pod->gpu_milli = gpus ? milli : 0;
    if (pod->priority < s->col[CORRAL_COL_MIN_PRIORITY][node])
        set_min_priority(s, node, pod->priority);
    account(s, node, pod, 1);
    apply_gpus(nd, gpus, -pod->gpu_milli);
    update_gpu_summary(s, node);
    return 0;
}

int corral_snapshot_unplace(struct corral_snapshot *s, struct corral_pod *pod)
{
    uint32_t node = pod->node;
    if (node >= s->n || !s->exists[node])
        return -EINVAL;
    struct corral_snap_node *nd = &s->nodes[node];
    uint32_t pos = pod->node_pos;
    if (pos >= nd->n_pods || nd->pods[pos] != pod)
        return -EINVAL;
    nd->pods[pos] = nd->pods[--nd->n_pods];
    nd->pods[pos]->node_pos = pos;
    account(s, node, pod, -1);
    apply_gpus(nd, pod->gpus, pod->gpu_milli);
    if (pod->priority <= s->col[CORRAL_COL_MIN_PRIORITY][node])
        recompute_min_priority(s, node);
    update_gpu_summary(s, node);
    pod->node = CORRAL_NO_NODE;
    pod->gpus = 0;
    pod->gpu_milli = 0;
    return 0;
}

/* ---- adding and removing nodes ---- */

static void set_columns(struct corral_snapshot *s, uint32_t i, const struct node_read *nr)
{
    s->col[CORRAL_COL_ALLOC_CPU][i] = nr->alloc[CORRAL_RES_CPU];
    s->col[CORRAL_COL_ALLOC_MEMORY][i] = nr->alloc[CORRAL_RES_MEMORY];
    s->col[CORRAL_COL_ALLOC_PODS][i] = nr->alloc[CORRAL_RES_PODS];
    s->col[CORRAL_COL_ALLOC_GPU][i] = s->nodes[i].n_gpus;
    s->alloc_eph[i] = nr->alloc[CORRAL_RES_EPHEMERAL];
    s->col[CORRAL_COL_REQ_CPU][i] = 0;
    s->col[CORRAL_COL_REQ_MEMORY][i] = 0;
    s->col[CORRAL_COL_REQ_PODS][i] = 0;
    s->req_eph[i] = 0;
    s->port_pods[i] = 0;
}

/* Recounts the pods of an updated node against its new resources. */
static void recount(struct corral_snapshot *s, uint32_t i)
{
    struct corral_snap_node *nd = &s->nodes[i];
    for (uint32_t p = 0; p < nd->n_pods; p++) {
        struct corral_pod *pod = nd->pods[p];
        uint64_t valid = corral_snapshot_all_gpus(s, i);
        pod->gpus &= valid;
        if (!gpus_fit(nd, pod->gpus, pod->gpu_milli))
            pod->gpus = 0; /* the GPUs it had are gone; its usage no longer counts there */
        account(s, i, pod, 1);
        apply_gpus(nd, pod->gpus, -pod->gpu_milli);
    }
}

static int read_node(struct corral_snap_node *nd, json_t *obj, struct node_read *nr, char *err,
                     size_t errlen)
{
    nd->obj = obj;
    nd->labels = corral_meta_labels(obj);
    const char *name = corral_meta_name(obj);
    if (!name || !*name) {
        snprintf(err, errlen, "metadata.name: Required value");
        return CORRAL_EINVALID;
    }
    if (!(nd->name = strdup(name)))
        return -ENOMEM;
    int rc = read_allocatable(obj, nr, err, errlen);
    if (rc == 0)
        rc = read_gpus(nd, nr, err, errlen);
    if (rc == 0)
        rc = read_taints(nd, err, errlen);
    nd->ext = nr->ext;
    nd->n_ext = nr->n_ext;
    nr->ext = NULL;
    return rc;
}

static int take_slot(struct corral_snapshot *s, uint32_t *slot)
{
    if (s->n_free_slots) {
        *slot = s->free_slots[--s->n_free_slots];
        return 0;
    }
    int rc = ensure_cap(s, s->n + 1);
    if (rc == 0)
        *slot = s->n++;
    return rc;
}

int corral_snapshot_upsert_node(struct corral_snapshot *s, json_t *obj, char *err, size_t errlen)
{
    struct corral_snap_node nd = {0};
    struct node_read nr = {0};
    int rc = json_is_object(obj) ? read_node(&nd, obj, &nr, err, errlen) : CORRAL_EINVALID;
    if (!json_is_object(obj)) {
        json_decref(obj);
        snprintf(err, errlen, "a Node must be a JSON object");
    }
    int old = rc == 0 ? corral_snapshot_find(s, nd.name) : -1;
    uint32_t slot = 0;
    if (rc == 0 && old < 0 && (rc = take_slot(s, &slot)) == 0)
        rc = corral_strmap_put(&s->by_name, nd.name, (void *)(uintptr_t)(slot + 1));
    if (rc < 0) {
        free(nr.ext);
        node_clear(&nd);
        return rc;
    }
    if (old >= 0) {
        slot = (uint32_t)old;
        nd.pods = s->nodes[slot].pods;
        nd.n_pods = s->nodes[slot].n_pods;
        nd.cap_pods = s->nodes[slot].cap_pods;
        s->nodes[slot].pods = NULL;
        s->total_gpu_milli -= 1000ull * s->nodes[slot].n_gpus;
        s->used_gpu_milli -= (uint64_t)s->col[CORRAL_COL_REQ_GPU_MILLI][slot];
        s->col[CORRAL_COL_REQ_GPU_MILLI][slot] = 0;
        node_clear(&s->nodes[slot]);
    } else {
        s->live++;
    }
    s->nodes[slot] = nd;
    s->exists[slot] = 1;
    s->total_gpu_milli += 1000ull * nd.n_gpus;
    set_columns(s, slot, &nr);
    recount(s, slot);
    recompute_min_priority(s, slot);
    s->prio_floor_dirty = true; /* nodes come and go rarely: count again when asked */
    corral_nodeclass_describe(s, slot);
    update_gpu_summary(s, slot);
    return (int)slot;
}

int corral_snapshot_find(const struct corral_snapshot *s, const char *name)
{
    uintptr_t v = (uintptr_t)corral_strmap_get(&s->by_name, name);
    return v ? (int)(v - 1) : -1;
}

int corral_snapshot_remove_node(struct corral_snapshot *s, const char *name,
                                void (*orphan)(struct corral_pod *pod, void *arg), void *arg)
{
    int slot = corral_snapshot_find(s, name);
    if (slot < 0)
        return CORRAL_ENOTFOUND;
    struct corral_snap_node *nd = &s->nodes[slot];
    while (nd->n_pods) {
        struct corral_pod *pod = nd->pods[nd->n_pods - 1];
        corral_snapshot_unplace(s, pod);
        if (orphan)
            orphan(pod, arg);
    }
    s->total_gpu_milli -= 1000ull * nd->n_gpus;
    s->used_gpu_milli -= (uint64_t)s->col[CORRAL_COL_REQ_GPU_MILLI][slot];
    corral_strmap_del(&s->by_name, name);
    node_clear(nd);
    for (int c = 0; c < CORRAL_COL_COUNT; c++)
        s->col[c][slot] = 0;
    s->exists[slot] = 0;
    s->prio_floor_dirty = true;
    bump(s, (uint32_t)slot);
    s->free_slots[s->n_free_slots++] = (uint32_t)slot;
    s->live--;
    return 0;
}

int64_t corral_snapshot_ext_alloc(const struct corral_snapshot *s, uint32_t node, const char *name)
{
    struct corral_snap_ext *x = find_ext(&s->nodes[node], name);
    return x ? x->alloc : 0;
}

int64_t corral_snapshot_ext_used(const struct corral_snapshot *s, uint32_t node, const char *name)
{
    struct corral_snap_ext *x = find_ext(&s->nodes[node], name);
    return x ? x->used : 0;
}
