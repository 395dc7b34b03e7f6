/* SPDX-License-Identifier: Apache-2.0 */
/*
 * host: the table of functions plugins call (struct corral_host in include/corral/plugin.h).
 * Each plugin instance gets its own copy of the table, embedded first in its
 * struct corral_fw_plugin, so a call can tell which plugin made it (for log prefixes and
 * permit bookkeeping). Values handed out are jansson objects behind the opaque
 * struct corral_value; nodes are snapshot slots.
 */
#include "framework.h"

#include "log.h"
#include "meta.h"
#include "quantity.h"
#include "selector.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INST(h) ((struct corral_fw_plugin *)(h))
#define FW(h) (INST(h)->fw)
#define SNAP(h) (INST(h)->fw->snap)
#define JV(v) ((json_t *)(v))
#define CV(j) ((const struct corral_value *)(j))

static bool valid_node(const struct corral_host *h, uint32_t node)
{
    return node < SNAP(h)->n && SNAP(h)->exists[node];
}

/* ---- nodes ---- */

static uint32_t node_count(const struct corral_host *h)
{
    return SNAP(h)->n;
}

static int node_exists(const struct corral_host *h, uint32_t node)
{
    return valid_node(h, node);
}

static const char *node_name(const struct corral_host *h, uint32_t node)
{
    return valid_node(h, node) ? SNAP(h)->nodes[node].name : NULL;
}

static const char *node_label(const struct corral_host *h, uint32_t node, const char *key)
{
    if (!valid_node(h, node))
        return NULL;
    return json_string_value(json_object_get(SNAP(h)->nodes[node].labels, key));
}

static const struct corral_value *node_object(const struct corral_host *h, uint32_t node)
{
    return valid_node(h, node) ? CV(SNAP(h)->nodes[node].obj) : NULL;
}

static int64_t node_allocatable(const struct corral_host *h, uint32_t node, enum corral_resource r)
{
    struct corral_snapshot *s = SNAP(h);
    if (!valid_node(h, node))
        return 0;
    switch (r) {
    case CORRAL_RES_CPU: return s->col[CORRAL_COL_ALLOC_CPU][node];
    case CORRAL_RES_MEMORY: return s->col[CORRAL_COL_ALLOC_MEMORY][node];
    case CORRAL_RES_PODS: return s->col[CORRAL_COL_ALLOC_PODS][node];
    case CORRAL_RES_GPU: return s->col[CORRAL_COL_ALLOC_GPU][node];
    case CORRAL_RES_GPU_MILLI: return 1000 * s->col[CORRAL_COL_ALLOC_GPU][node];
    case CORRAL_RES_EPHEMERAL: return s->alloc_eph[node];
    default: return 0;
    }
}

static int64_t node_requested(const struct corral_host *h, uint32_t node, enum corral_resource r)
{
    struct corral_snapshot *s = SNAP(h);
    if (!valid_node(h, node))
        return 0;
    switch (r) {
    case CORRAL_RES_CPU: return s->col[CORRAL_COL_REQ_CPU][node];
    case CORRAL_RES_MEMORY: return s->col[CORRAL_COL_REQ_MEMORY][node];
    case CORRAL_RES_PODS: return s->col[CORRAL_COL_REQ_PODS][node];
    case CORRAL_RES_GPU:
        return s->col[CORRAL_COL_ALLOC_GPU][node] - s->col[CORRAL_COL_FREE_WHOLE_GPUS][node];
    case CORRAL_RES_GPU_MILLI: return s->col[CORRAL_COL_REQ_GPU_MILLI][node];
    case CORRAL_RES_EPHEMERAL: return s->req_eph[node];
    default: return 0;
    }
}

static int64_t node_allocatable_named(const struct corral_host *h, uint32_t node, const char *name)
{
    return valid_node(h, node) ? corral_snapshot_ext_alloc(SNAP(h), node, name) : 0;
}

static int64_t node_requested_named(const struct corral_host *h, uint32_t node, const char *name)
{
    return valid_node(h, node) ? corral_snapshot_ext_used(SNAP(h), node, name) : 0;
}

static const int64_t *node_column(const struct corral_host *h, enum corral_column col)
{
    return (unsigned)col < CORRAL_COL_COUNT ? SNAP(h)->col[col] : NULL;
}

static int64_t column_min(const struct corral_host *h, enum corral_column col)
{
    struct corral_snapshot *s = SNAP(h);
    if (col == CORRAL_COL_MIN_PRIORITY)
        return corral_snapshot_min_priority(s);
    int64_t low = INT64_MAX;
    for (uint32_t i = 0; (unsigned)col < CORRAL_COL_COUNT && i < s->n; i++)
        if (s->exists[i] && s->col[col][i] < low)
            low = s->col[col][i];
    return low;
}

static uint64_t node_generation(const struct corral_host *h, uint32_t node)
{
    return node < SNAP(h)->n ? SNAP(h)->gen[node] : 0;
}

static int node_unschedulable(const struct corral_host *h, uint32_t node)
{
    return valid_node(h, node) && SNAP(h)->nodes[node].unschedulable;
}

static uint32_t node_taint_count(const struct corral_host *h, uint32_t node)
{
    return valid_node(h, node) ? SNAP(h)->nodes[node].n_taints : 0;
}

static int node_taint(const struct corral_host *h, uint32_t node, uint32_t i,
                      struct corral_taint *out)
{
    if (!valid_node(h, node) || i >= SNAP(h)->nodes[node].n_taints)
        return -EINVAL;
    *out = SNAP(h)->nodes[node].taints[i];
    return 0;
}

static uint32_t node_gpu_count(const struct corral_host *h, uint32_t node)
{
    return valid_node(h, node) ? SNAP(h)->nodes[node].n_gpus : 0;
}

static const struct corral_gpu *node_gpu(const struct corral_host *h, uint32_t node, uint32_t i)
{
    if (!valid_node(h, node) || i >= SNAP(h)->nodes[node].n_gpus)
        return NULL;
    return &SNAP(h)->nodes[node].gpus[i];
}

static int64_t gpu_link_bandwidth(const struct corral_host *h, uint32_t node, uint32_t a,
                                  uint32_t b)
{
    if (!valid_node(h, node))
        return 0;
    const struct corral_snap_node *nd = &SNAP(h)->nodes[node];
    if (!nd->links || a >= nd->n_gpus || b >= nd->n_gpus)
        return 0;
    return nd->links[(size_t)a * nd->n_gpus + b];
}

static uint32_t node_pod_count(const struct corral_host *h, uint32_t node)
{
    return valid_node(h, node) ? SNAP(h)->nodes[node].n_pods : 0;
}

static const struct corral_pod *node_pod(const struct corral_host *h, uint32_t node, uint32_t i)
{
    if (!valid_node(h, node) || i >= SNAP(h)->nodes[node].n_pods)
        return NULL;
    return SNAP(h)->nodes[node].pods[i];
}

/* ---- pods ---- */

static const char *pod_name(const struct corral_host *h, const struct corral_pod *pod)
{
    (void)h;
    return pod->name;
}

static const char *pod_namespace(const struct corral_host *h, const struct corral_pod *pod)
{
    (void)h;
    return pod->ns;
}

static const char *pod_uid(const struct corral_host *h, const struct corral_pod *pod)
{
    (void)h;
    return pod->uid ? pod->uid : "";
}

static const char *pod_label(const struct corral_host *h, const struct corral_pod *pod,
                             const char *key)
{
    (void)h;
    return json_string_value(json_object_get(pod->labels, key));
}

static const char *pod_annotation(const struct corral_host *h, const struct corral_pod *pod,
                                  const char *key)
{
    (void)h;
    return json_string_value(json_object_get(pod->annotations, key));
}

static const struct corral_value *pod_object(const struct corral_host *h,
                                             const struct corral_pod *pod)
{
    (void)h;
    return CV(pod->obj);
}

static int64_t pod_request(const struct corral_host *h, const struct corral_pod *pod,
                           enum corral_resource r)
{
    (void)h;
    return (unsigned)r < CORRAL_RES_COUNT ? pod->req[r] : 0;
}

static uint32_t pod_extended_count(const struct corral_host *h, const struct corral_pod *pod)
{
    (void)h;
    return pod->n_ext;
}

static int pod_extended(const struct corral_host *h, const struct corral_pod *pod, uint32_t i,
                        const char **name, int64_t *value)
{
    (void)h;
    if (i >= pod->n_ext)
        return -EINVAL;
    *name = pod->ext[i].name;
    *value = pod->ext[i].value;
    return 0;
}

static int32_t pod_priority(const struct corral_host *h, const struct corral_pod *pod)
{
    (void)h;
    return pod->priority;
}

static uint32_t pod_node(const struct corral_host *h, const struct corral_pod *pod)
{
    (void)h;
    return pod->node;
}

static uint64_t pod_gpus(const struct corral_host *h, const struct corral_pod *pod, int32_t *milli)
{
    (void)h;
    if (milli)
        *milli = pod->gpu_milli;
    return pod->gpus;
}

static uint64_t pod_sequence(const struct corral_host *h, const struct corral_pod *pod)
{
    (void)h;
    return pod->seq;
}

static uint32_t pods_with_label(const struct corral_host *h, const char *ns, const char *key,
                                const char *value, const struct corral_pod **out, uint32_t max)
{
    size_t pos = 0;
    void *v;
    uint32_t n = 0;
    while (corral_strmap_next(&FW(h)->pods, &pos, NULL, &v)) {
        const struct corral_pod *pod = v;
        const char *lv = json_string_value(json_object_get(pod->labels, key));
        if (!lv || strcmp(lv, value) != 0 || (ns && strcmp(pod->ns, ns) != 0))
            continue;
        if (pod->state == CORRAL_POD_FAILED && pod->node == CORRAL_NO_NODE &&
            pod->message && strncmp(pod->message, "preempted", 9) == 0)
            continue;
        if (out && n < max)
            out[n] = pod;
        n++;
    }
    return n;
}

/* ---- the cycle's GPU sets ---- */

static uint64_t cycle_gpu_mask(const struct corral_host *h, uint32_t node)
{
    return valid_node(h, node) ? corral_fw_cycle_mask(FW(h), node) : 0;
}

static void cycle_restrict_gpus(const struct corral_host *h, uint32_t node, uint64_t allowed)
{
    struct corral_framework *fw = FW(h);
    if (!fw->cy.in_filter || node >= fw->cy.mask_cap || fw->cy.mask_stamp[node] != fw->cy.id)
        return;
    fw->cy.mask[node] &= allowed;
}

static int check_assignment(struct corral_framework *fw, const struct corral_pod *pod,
                            uint32_t node, uint64_t gpus, int32_t milli)
{
    const struct corral_snap_node *nd = &fw->snap->nodes[node];
    uint64_t allowed = corral_fw_cycle_mask(fw, node);
    int count = __builtin_popcountll(gpus);
    if ((gpus & ~allowed) != 0)
        return -EINVAL;
    if (pod->req[CORRAL_RES_GPU] > 0 &&
        (count != pod->req[CORRAL_RES_GPU] || milli != 1000))
        return -EINVAL;
    if (pod->req[CORRAL_RES_GPU_MILLI] > 0 &&
        (count != 1 || milli != pod->req[CORRAL_RES_GPU_MILLI]))
        return -EINVAL;
    if (!corral_pod_wants_gpu(pod))
        return -EINVAL;
    for (uint32_t g = 0; g < nd->n_gpus; g++)
        if ((gpus >> g & 1) && nd->gpus[g].free_milli < milli)
            return -EINVAL;
    return 0;
}

static int assign_gpus(const struct corral_host *h, const struct corral_pod *pod, uint32_t node,
                       uint64_t gpus, int32_t milli)
{
    struct corral_framework *fw = FW(h);
    if (!fw->cy.in_reserve || pod != fw->cy.pod || node != fw->cy.reserve_node)
        return -EINVAL;
    if (fw->cy.assigned)
        return -EBUSY;
    int rc = check_assignment(fw, pod, node, gpus, milli);
    if (rc < 0) {
        corral_warn("scheduler", "plugin %s assigned GPUs 0x%llx x %d milli that do not fit "
                    "pod %s/%s on node %s", INST(h)->name, (unsigned long long)gpus, milli,
                    pod->ns, pod->name, fw->snap->nodes[node].name);
        return rc;
    }
    fw->cy.assigned = true;
    fw->cy.gpus = gpus;
    fw->cy.milli = milli;
    return 0;
}

/* ---- helpers ---- */

static int parse_quantity(const struct corral_host *h, const char *s, int64_t *milli)
{
    (void)h;
    return s ? corral_quantity_parse_milli(s, milli) : -EINVAL;
}

static int match_labels(const struct corral_value *selector, json_t *labels)
{
    struct corral_selector *sel = NULL;
    char err[128];
    if (!json_is_object(JV(selector)) && !json_is_array(JV(selector)))
        return -EINVAL;
    if (corral_selector_from_json(JV(selector), &sel, err, sizeof(err)) < 0)
        return -EINVAL;
    int r = corral_selector_match_labels(sel, labels) ? 1 : 0;
    corral_selector_free(sel);
    return r;
}

static int node_matches(const struct corral_host *h, const struct corral_value *selector,
                        uint32_t node)
{
    if (!valid_node(h, node))
        return 0;
    return match_labels(selector, SNAP(h)->nodes[node].labels);
}

static int pod_matches(const struct corral_host *h, const struct corral_value *selector,
                       const struct corral_pod *pod)
{
    (void)h;
    return match_labels(selector, pod->labels);
}

static uint64_t host_random(const struct corral_host *h)
{
    return corral_fw_random(FW(h));
}

static uint64_t now_ms(const struct corral_host *h)
{
    return corral_fw_now_ms(FW(h));
}

static void host_log(const struct corral_host *h, enum corral_log_level_abi level,
                     const char *fmt, ...)
{
    char buf[1024], subsys[96];
    if ((int)level > (int)corral_log_get_level())
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    snprintf(subsys, sizeof(subsys), "plugin/%s", INST(h)->name);
    corral_log((enum corral_log_level)level, subsys, "%s", buf);
}

static void invalidate(const struct corral_host *h)
{
    corral_fw_invalidate(FW(h));
}

static const struct corral_value *lookup_object(const struct corral_host *h,
                                                const char *api_version, const char *kind,
                                                const char *ns, const char *name)
{
    struct corral_framework *fw = FW(h);
    if (!fw->cb.lookup)
        return NULL;
    return CV(fw->cb.lookup(fw->cb.arg, api_version, kind, ns, name));
}

/* ---- JSON values ---- */

static enum corral_value_type value_type(const struct corral_value *v)
{
    switch (json_typeof(JV(v))) {
    case JSON_OBJECT: return CORRAL_VALUE_OBJECT;
    case JSON_ARRAY: return CORRAL_VALUE_ARRAY;
    case JSON_STRING: return CORRAL_VALUE_STRING;
    case JSON_INTEGER: return CORRAL_VALUE_INTEGER;
    case JSON_REAL: return CORRAL_VALUE_REAL;
    case JSON_TRUE:
    case JSON_FALSE: return CORRAL_VALUE_BOOL;
    default: return CORRAL_VALUE_NULL;
    }
}

static enum corral_value_type value_type_safe(const struct corral_value *v)
{
    return v ? value_type(v) : CORRAL_VALUE_NULL;
}

static const struct corral_value *value_get(const struct corral_value *obj, const char *key)
{
    return CV(json_object_get(JV(obj), key));
}

static const struct corral_value *value_path(const struct corral_value *obj, const char *path)
{
    return CV(corral_meta_path(JV(obj), path));
}

static size_t value_size(const struct corral_value *v)
{
    if (json_is_array(JV(v)))
        return json_array_size(JV(v));
    return json_is_object(JV(v)) ? json_object_size(JV(v)) : 0;
}

static const struct corral_value *value_at(const struct corral_value *arr, size_t i)
{
    return CV(json_array_get(JV(arr), i));
}

static const struct corral_value *value_member(const struct corral_value *obj, size_t i,
                                               const char **key)
{
    void *it = json_is_object(JV(obj)) ? json_object_iter(JV(obj)) : NULL;
    while (it && i--)
        it = json_object_iter_next(JV(obj), it);
    if (!it)
        return NULL;
    if (key)
        *key = json_object_iter_key(it);
    return CV(json_object_iter_value(it));
}

static const char *value_string(const struct corral_value *v)
{
    return json_string_value(JV(v));
}

static int64_t value_integer(const struct corral_value *v)
{
    return json_integer_value(JV(v));
}

static double value_number(const struct corral_value *v)
{
    return json_number_value(JV(v));
}

static int value_bool(const struct corral_value *v)
{
    return json_is_true(JV(v));
}

/* ---- permit and preemption ---- */

static int permit_allow(const struct corral_host *h, const struct corral_pod *pod,
                        const char *plugin)
{
    return corral_fw_permit_allow(FW(h), (struct corral_pod *)pod, plugin ? plugin : INST(h)->name);
}

static int permit_reject(const struct corral_host *h, const struct corral_pod *pod,
                         const char *message)
{
    return corral_fw_permit_reject(FW(h), (struct corral_pod *)pod, message);
}

static uint32_t waiting_count(const struct corral_host *h)
{
    return FW(h)->n_waiting;
}

static const struct corral_pod *waiting_pod(const struct corral_host *h, uint32_t i)
{
    return i < FW(h)->n_waiting ? FW(h)->waiting[i] : NULL;
}

static int fits_without(const struct corral_host *h, const struct corral_pod *pod, uint32_t node,
                        const struct corral_pod *const *victims, uint32_t n)
{
    struct corral_framework *fw = FW(h);
    if (!fw->cy.in_post_filter || pod != fw->cy.pod || !valid_node(h, node))
        return -EINVAL;
    for (uint32_t i = 0; i < n; i++)
        if (victims[i]->node != node)
            return -EINVAL;
    uint64_t *gpus = calloc(n + 1, sizeof(uint64_t));
    int32_t *milli = calloc(n + 1, sizeof(int32_t));
    int rc = (!gpus || !milli) ? -ENOMEM : 0;
    uint32_t removed = 0;
    for (; rc == 0 && removed < n; removed++) {
        struct corral_pod *v = (struct corral_pod *)victims[removed];
        gpus[removed] = v->gpus;
        milli[removed] = v->gpu_milli;
        corral_snapshot_unplace(fw->snap, v);
    }
    if (rc == 0)
        rc = (int)corral_fw_run_filters(fw, node, true, true);
    if (rc > 0)
        rc &= (1 << 21) - 1; /* the plugin's code and flags */
    while (removed-- > 0)
        corral_snapshot_place(fw->snap, (struct corral_pod *)victims[removed], node,
                              gpus[removed], milli[removed]);
    free(gpus);
    free(milli);
    return rc;
}

static int preempt(const struct corral_host *h, const struct corral_pod *pod, uint32_t node,
                   const struct corral_pod *const *victims, uint32_t n)
{
    struct corral_framework *fw = FW(h);
    if (pod != fw->cy.pod || !valid_node(h, node))
        return -EINVAL;
    return corral_fw_preempt(fw, node, (struct corral_pod *const *)victims, n);
}

void corral_fw_host_init(struct corral_fw_plugin *inst)
{
    inst->host = (struct corral_host){
        .abi_version = CORRAL_PLUGIN_ABI_VERSION,
        .struct_size = sizeof(struct corral_host),
        .node_count = node_count,
        .node_exists = node_exists,
        .node_name = node_name,
        .node_label = node_label,
        .node_object = node_object,
        .node_allocatable = node_allocatable,
        .node_requested = node_requested,
        .node_allocatable_named = node_allocatable_named,
        .node_requested_named = node_requested_named,
        .node_column = node_column,
        .node_generation = node_generation,
        .node_unschedulable = node_unschedulable,
        .node_taint_count = node_taint_count,
        .node_taint = node_taint,
        .node_gpu_count = node_gpu_count,
        .node_gpu = node_gpu,
        .gpu_link_bandwidth = gpu_link_bandwidth,
        .node_pod_count = node_pod_count,
        .node_pod = node_pod,
        .pod_name = pod_name,
        .pod_namespace = pod_namespace,
        .pod_uid = pod_uid,
        .pod_label = pod_label,
        .pod_annotation = pod_annotation,
        .pod_object = pod_object,
        .pod_request = pod_request,
        .pod_extended_count = pod_extended_count,
        .pod_extended = pod_extended,
        .pod_priority = pod_priority,
        .pod_node = pod_node,
        .pod_gpus = pod_gpus,
        .pod_sequence = pod_sequence,
        .pods_with_label = pods_with_label,
        .cycle_gpu_mask = cycle_gpu_mask,
        .cycle_restrict_gpus = cycle_restrict_gpus,
        .assign_gpus = assign_gpus,
        .parse_quantity = parse_quantity,
        .node_matches = node_matches,
        .pod_matches = pod_matches,
        .random = host_random,
        .now_ms = now_ms,
        .log = host_log,
        .invalidate = invalidate,
        .lookup_object = lookup_object,
        .value_type = value_type_safe,
        .value_get = value_get,
        .value_path = value_path,
        .value_size = value_size,
        .value_at = value_at,
        .value_member = value_member,
        .value_string = value_string,
        .value_integer = value_integer,
        .value_number = value_number,
        .value_bool = value_bool,
        .permit_allow = permit_allow,
        .permit_reject = permit_reject,
        .waiting_count = waiting_count,
        .waiting_pod = waiting_pod,
        .fits_without = fits_without,
        .preempt = preempt,
        .column_min = column_min,
    };
}
