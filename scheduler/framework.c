/* SPDX-License-Identifier: Apache-2.0 */
/*
 * framework: building profiles from loaded plugins, the queue, and the scheduling and binding
 * cycles (see framework.h). The order of a cycle is Kubernetes': PreFilter, Filter, PostFilter
 * (only when nothing fits), PreScore, Score, NormalizeScore, selection (highest weighted sum,
 * ties broken at random with the seeded generator), Reserve, Permit, then PreBind, Bind and
 * PostBind. PreScore runs before the Filter pass because corral folds node-local scores into
 * that pass; PreScore receives no node list, so plugins cannot tell the difference.
 *
 * Rejections are encoded per node as ((filter slot + 1) << 21) | code, so the explanation
 * "0/N nodes are available: ..." can be rebuilt from cached rows without re-running plugins.
 */
#include "framework.h"

#include "error.h"
#include "log.h"
#include "meta.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG "scheduler"
#define REJECT_SHIFT 21
#define SIG_CACHE_BYTES (256u << 20)

/* A callback exists when the plugin's struct is long enough to hold it and it is set. */
#define HAS(p, field)                                                                              \
    ((p)->struct_size >= offsetof(struct corral_plugin, field) + sizeof((p)->field) && (p)->field)

/* ---- random numbers (xoshiro256**, seeded with splitmix64) ---- */

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t corral_fw_random(struct corral_framework *fw)
{
    uint64_t *s = fw->rng;
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

uint64_t corral_fw_now_ms(struct corral_framework *fw)
{
    if (fw->cb.now_ms)
        return fw->cb.now_ms(fw->cb.arg);
    return corral_now_ns() / 1000000u;
}

void corral_fw_invalidate(struct corral_framework *fw)
{
    fw->epoch++;
    fw->stats.invalidations++;
}

/* ---- building profiles ---- */

static bool implements(const struct corral_plugin *p, enum corral_point pt)
{
    switch (pt) {
    case CORRAL_POINT_PRE_ENQUEUE: return HAS(p, pre_enqueue);
    case CORRAL_POINT_QUEUE_SORT: return HAS(p, queue_less);
    case CORRAL_POINT_PRE_FILTER: return HAS(p, pre_filter);
    case CORRAL_POINT_FILTER: return HAS(p, filter);
    case CORRAL_POINT_POST_FILTER: return HAS(p, post_filter);
    case CORRAL_POINT_PRE_SCORE: return HAS(p, pre_score);
    case CORRAL_POINT_SCORE: return HAS(p, score);
    case CORRAL_POINT_RESERVE: return HAS(p, reserve) || HAS(p, unreserve);
    case CORRAL_POINT_PERMIT: return HAS(p, permit);
    case CORRAL_POINT_PRE_BIND: return HAS(p, pre_bind);
    case CORRAL_POINT_BIND: return HAS(p, bind);
    case CORRAL_POINT_POST_BIND: return HAS(p, post_bind);
    default: return false;
    }
}

static int find_instance(const struct corral_fw_profile *fp, const char *name)
{
    for (uint32_t i = 0; i < fp->n_plugins; i++)
        if (strcmp(fp->plugins[i]->name, name) == 0)
            return (int)i;
    return -1;
}

static void instance_free(struct corral_fw_plugin *inst)
{
    if (!inst)
        return;
    if (inst->state && HAS(inst->p, fini))
        inst->p->fini(inst->state);
    corral_plugin_close(inst->lib);
    free(inst->name);
    free(inst);
}

static int load_instance(struct corral_framework *fw, struct corral_fw_profile *fp, int pidx,
                         const struct corral_profile_entry *e, char *err, size_t errlen)
{
    struct corral_fw_plugin *inst = calloc(1, sizeof(*inst));
    if (!inst || !(inst->name = strdup(e->name))) {
        free(inst);
        return -ENOMEM;
    }
    inst->fw = fw;
    inst->profile = pidx;
    int rc = corral_plugin_find(fw->plugin_dir, e->name, e->path, &inst->lib, err, errlen);
    if (rc < 0)
        goto fail;
    inst->p = inst->lib->plugin;
    inst->node_local = (inst->p->flags & CORRAL_PLUGIN_NODE_LOCAL) != 0;
    inst->node_class = inst->node_local && (inst->p->flags & CORRAL_PLUGIN_NODE_CLASS) != 0;
    corral_fw_host_init(inst);
    if (HAS(inst->p, init)) {
        char perr[256] = "";
        json_t *args = corral_profile_args(fp->conf, e->name);
        rc = inst->p->init(&inst->host, (const struct corral_value *)args, &inst->state, perr,
                           sizeof(perr));
        if (rc < 0) {
            snprintf(err, errlen, "plugin %s: %s", e->name, *perr ? perr : corral_strerror(rc));
            rc = rc == -ENOMEM ? rc : CORRAL_EINVALID;
            goto fail;
        }
    }
    fp->plugins[fp->n_plugins++] = inst;
    return 0;
fail:
    instance_free(inst);
    return rc;
}

static const struct corral_profile_entry *find_entry(const struct corral_profile_set *s,
                                                     const char *name)
{
    for (uint32_t i = 0; i < s->n_enabled; i++)
        if (strcmp(s->enabled[i].name, name) == 0)
            return &s->enabled[i];
    return NULL;
}

static bool is_disabled(const struct corral_profile_set *s, const char *name)
{
    for (uint32_t i = 0; i < s->n_disabled; i++)
        if (strcmp(s->disabled[i], name) == 0 || strcmp(s->disabled[i], "*") == 0)
            return true;
    return false;
}

static int64_t weight_of(const struct corral_profile *c, const char *name)
{
    const struct corral_profile_entry *e = find_entry(&c->points[CORRAL_POINT_SCORE], name);
    if (!e || !e->weight)
        e = find_entry(&c->points[CORRAL_POINT_MULTI], name);
    return e && e->weight ? e->weight : 1;
}

static int push_slot(struct corral_fw_profile *fp, enum corral_point pt, uint32_t inst)
{
    for (uint32_t i = 0; i < fp->n_at[pt]; i++)
        if (fp->at[pt][i] == inst)
            return 0;
    fp->at[pt][fp->n_at[pt]++] = inst;
    return 0;
}

static int resolve_point(struct corral_fw_profile *fp, enum corral_point pt, char *err,
                         size_t errlen)
{
    const struct corral_profile *c = fp->conf;
    const struct corral_profile_set *own = &c->points[pt], *multi = &c->points[CORRAL_POINT_MULTI];
    fp->at[pt] = calloc(fp->n_plugins + 1, sizeof(uint32_t));
    if (!fp->at[pt])
        return -ENOMEM;
    for (uint32_t i = 0; i < own->n_enabled; i++) {
        int inst = find_instance(fp, own->enabled[i].name);
        if (!implements(fp->plugins[inst]->p, pt)) {
            snprintf(err, errlen, "profile %s: plugin %s is enabled for %s but does not "
                     "implement it", c->scheduler_name, own->enabled[i].name,
                     corral_point_name(pt));
            return CORRAL_EINVALID;
        }
        push_slot(fp, pt, (uint32_t)inst);
    }
    for (uint32_t i = 0; i < multi->n_enabled; i++) {
        int inst = find_instance(fp, multi->enabled[i].name);
        if (implements(fp->plugins[inst]->p, pt) && !is_disabled(own, multi->enabled[i].name))
            push_slot(fp, pt, (uint32_t)inst);
    }
    return 0;
}

static int check_profile(struct corral_fw_profile *fp, char *err, size_t errlen)
{
    const char *name = fp->conf->scheduler_name;
    if (fp->n_at[CORRAL_POINT_QUEUE_SORT] > 1) {
        snprintf(err, errlen, "profile %s: only one queueSort plugin may be enabled", name);
        return CORRAL_EINVALID;
    }
    if (fp->n_at[CORRAL_POINT_PERMIT] > 64 || fp->n_at[CORRAL_POINT_FILTER] >= (1u << 10)) {
        snprintf(err, errlen, "profile %s: too many plugins", name);
        return CORRAL_EINVALID;
    }
    uint32_t ns = fp->n_at[CORRAL_POINT_SCORE];
    fp->score_weight = calloc(ns + 1, sizeof(int64_t));
    fp->score_cached = calloc(ns + 1, sizeof(bool));
    if (!fp->score_weight || !fp->score_cached)
        return -ENOMEM;
    for (uint32_t s = 0; s < ns; s++) {
        struct corral_fw_plugin *inst = fp->plugins[fp->at[CORRAL_POINT_SCORE][s]];
        fp->score_weight[s] = weight_of(fp->conf, inst->name);
        fp->score_cached[s] = inst->node_local && !HAS(inst->p, normalize_score);
        fp->any_dynamic_score |= !fp->score_cached[s];
    }
    for (uint32_t f = 0; f < fp->n_at[CORRAL_POINT_FILTER]; f++) {
        bool local = fp->plugins[fp->at[CORRAL_POINT_FILTER][f]]->node_local;
        fp->any_local_filter |= local;
        fp->any_volatile_filter |= !local;
    }
    return 0;
}

static int add_names(const struct corral_profile *c, const char ***names,
                     const struct corral_profile_entry ***ents, uint32_t *n)
{
    uint32_t total = 0;
    for (int pt = 0; pt < CORRAL_POINT_COUNT; pt++)
        total += c->points[pt].n_enabled;
    *names = calloc(total + 1, sizeof(char *));
    *ents = calloc(total + 1, sizeof(**ents));
    if (!*names || !*ents)
        return -ENOMEM;
    int order[CORRAL_POINT_COUNT] = {CORRAL_POINT_MULTI};
    for (int pt = 0, k = 1; pt < CORRAL_POINT_MULTI; pt++)
        order[k++] = pt;
    for (int o = 0; o < CORRAL_POINT_COUNT; o++) {
        const struct corral_profile_set *s = &c->points[order[o]];
        for (uint32_t i = 0; i < s->n_enabled; i++) {
            uint32_t j = 0;
            while (j < *n && strcmp((*names)[j], s->enabled[i].name) != 0)
                j++;
            if (j == *n) {
                (*names)[*n] = s->enabled[i].name;
                (*ents)[(*n)++] = &s->enabled[i];
            }
        }
    }
    return 0;
}

static int build_profile(struct corral_framework *fw, int pidx, struct corral_profile *c,
                         char *err, size_t errlen)
{
    struct corral_fw_profile *fp = &fw->profiles[pidx];
    fp->conf = c;
    corral_strmap_init(&fp->sigs);
    const char **names = NULL;
    const struct corral_profile_entry **ents = NULL;
    uint32_t n = 0;
    int rc = add_names(c, &names, &ents, &n);
    if (rc == 0 && !(fp->plugins = calloc(n + 1, sizeof(*fp->plugins))))
        rc = -ENOMEM;
    for (uint32_t i = 0; rc == 0 && i < n; i++)
        rc = load_instance(fw, fp, pidx, ents[i], err, errlen);
    for (int pt = 0; rc == 0 && pt < CORRAL_POINT_MULTI; pt++)
        rc = resolve_point(fp, (enum corral_point)pt, err, errlen);
    if (rc == 0)
        rc = check_profile(fp, err, errlen);
    if (rc < 0 && rc != -ENOMEM && strncmp(err, "profile ", 8) != 0) {
        char inner[512];
        snprintf(inner, sizeof(inner), "%s", err);
        snprintf(err, errlen, "profile %s: %s", c->scheduler_name, inner);
    }
    free(names);
    free(ents);
    return rc;
}

static void groups_free(struct corral_sig_entry *e)
{
    for (uint32_t g = 0; e->groups && g < CORRAL_MAX_SCORE_GROUPS; g++)
        free(e->groups[g].bits);
    free(e->groups);
    e->groups = NULL;
    e->n_groups = 0;
}

static void sig_entry_free(struct corral_sig_entry *e)
{
    if (!e)
        return;
    free(e->row);
    free(e->val);
    free(e->heap_mem);
    groups_free(e);
    free(e);
}

static void profile_free(struct corral_fw_profile *fp)
{
    for (uint32_t i = 0; i < fp->n_plugins; i++)
        instance_free(fp->plugins[i]);
    free(fp->plugins);
    for (int pt = 0; pt < CORRAL_POINT_COUNT; pt++)
        free(fp->at[pt]);
    free(fp->score_weight);
    free(fp->score_cached);
    free(fp->memo);
    size_t pos = 0;
    void *v;
    while (corral_strmap_next(&fp->sigs, &pos, NULL, &v))
        sig_entry_free(v);
    corral_strmap_clear(&fp->sigs);
}

static int check_queue_sort(struct corral_framework *fw, char *err, size_t errlen)
{
    const char *first = NULL;
    for (uint32_t i = 0; i < fw->n_profiles; i++) {
        struct corral_fw_profile *fp = &fw->profiles[i];
        const char *qs = fp->n_at[CORRAL_POINT_QUEUE_SORT]
                             ? fp->plugins[fp->at[CORRAL_POINT_QUEUE_SORT][0]]->name
                             : "";
        if (i > 0 && strcmp(first, qs) != 0) {
            snprintf(err, errlen, "all profiles must use the same queueSort plugin (%s vs %s)",
                     *first ? first : "none", *qs ? qs : "none");
            return CORRAL_EINVALID;
        }
        first = qs;
    }
    return 0;
}

int corral_fw_new(struct corral_sched_config *cfg, const char *plugin_dir,
                  struct corral_snapshot *snap, const struct corral_fw_callbacks *cb,
                  uint64_t seed, struct corral_framework **out, char *err, size_t errlen)
{
    struct corral_framework *fw = calloc(1, sizeof(*fw));
    if (!fw)
        return -ENOMEM;
    fw->snap = snap;
    if (cb)
        fw->cb = *cb;
    for (int i = 0; i < 4; i++)
        fw->rng[i] = splitmix(&seed);
    fw->epoch = 1;
    corral_strmap_init(&fw->pods);
    const char *dir = cfg->plugin_dir ? cfg->plugin_dir
                                      : (plugin_dir ? plugin_dir : corral_plugin_default_dir());
    int rc = (fw->plugin_dir = strdup(dir)) ? 0 : -ENOMEM;
    if (rc == 0 && !(fw->profiles = calloc(cfg->n_profiles, sizeof(*fw->profiles))))
        rc = -ENOMEM;
    for (uint32_t i = 0; rc == 0 && i < cfg->n_profiles; i++) {
        fw->n_profiles++;
        rc = build_profile(fw, (int)i, &cfg->profiles[i], err, errlen);
    }
    if (rc == 0)
        rc = check_queue_sort(fw, err, errlen);
    if (rc < 0) {
        if (rc == -ENOMEM)
            snprintf(err, errlen, "out of memory");
        corral_fw_free(fw);
        return rc;
    }
    *out = fw;
    return 0;
}

void corral_fw_free(struct corral_framework *fw)
{
    if (!fw)
        return;
    size_t pos = 0;
    void *v;
    while (corral_strmap_next(&fw->pods, &pos, NULL, &v)) {
        struct corral_pod *pod = v;
        if (pod->node != CORRAL_NO_NODE)
            corral_snapshot_unplace(fw->snap, pod);
        corral_pod_free(pod);
    }
    corral_strmap_clear(&fw->pods);
    for (uint32_t i = 0; i < fw->n_profiles; i++)
        profile_free(&fw->profiles[i]);
    free(fw->profiles);
    free(fw->plugin_dir);
    free(fw->queue);
    free(fw->waiting);
    free(fw->cy.mask);
    free(fw->cy.mask_stamp);
    free(fw->cy.skip_filter);
    free(fw->cy.skip_score);
    free(fw->feasible);
    free(fw->fscore);
    free(fw->tmp_score);
    free(fw);
}

int corral_fw_profile_index(const struct corral_framework *fw, const char *scheduler_name)
{
    for (uint32_t i = 0; i < fw->n_profiles; i++)
        if (strcmp(fw->profiles[i].conf->scheduler_name, scheduler_name) == 0)
            return (int)i;
    return -1;
}

/* ---- the queue (a binary heap ordered by the QueueSort plugin, then arrival) ---- */

static bool before(struct corral_framework *fw, struct corral_pod *a, struct corral_pod *b)
{
    struct corral_fw_profile *fp = &fw->profiles[0];
    if (fp->n_at[CORRAL_POINT_QUEUE_SORT]) {
        struct corral_fw_plugin *qs = fp->plugins[fp->at[CORRAL_POINT_QUEUE_SORT][0]];
        int r = qs->p->queue_less(qs->state, a, b);
        if (r != 0)
            return r < 0;
    }
    return a->seq < b->seq;
}

static void heap_set(struct corral_framework *fw, uint32_t i, struct corral_pod *p)
{
    fw->queue[i] = p;
    p->qpos = i;
}

static void sift_up(struct corral_framework *fw, uint32_t i)
{
    struct corral_pod *p = fw->queue[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!before(fw, p, fw->queue[parent]))
            break;
        heap_set(fw, i, fw->queue[parent]);
        i = parent;
    }
    heap_set(fw, i, p);
}

static void sift_down(struct corral_framework *fw, uint32_t i)
{
    struct corral_pod *p = fw->queue[i];
    for (;;) {
        uint32_t l = 2 * i + 1, best = i;
        struct corral_pod *bp = p;
        if (l < fw->n_queue && before(fw, fw->queue[l], bp))
            best = l, bp = fw->queue[l];
        if (l + 1 < fw->n_queue && before(fw, fw->queue[l + 1], bp))
            best = l + 1, bp = fw->queue[l + 1];
        if (best == i)
            break;
        heap_set(fw, i, bp);
        i = best;
    }
    heap_set(fw, i, p);
}

static int queue_push(struct corral_framework *fw, struct corral_pod *pod)
{
    if (fw->n_queue == fw->cap_queue) {
        uint32_t cap = fw->cap_queue ? fw->cap_queue * 2 : 64;
        struct corral_pod **nq = realloc(fw->queue, cap * sizeof(*nq));
        if (!nq)
            return -ENOMEM;
        fw->queue = nq;
        fw->cap_queue = cap;
    }
    pod->state = CORRAL_POD_QUEUED;
    heap_set(fw, fw->n_queue++, pod);
    sift_up(fw, fw->n_queue - 1);
    return 0;
}

static void queue_remove(struct corral_framework *fw, struct corral_pod *pod)
{
    uint32_t i = pod->qpos;
    if (i >= fw->n_queue || fw->queue[i] != pod)
        return;
    struct corral_pod *last = fw->queue[--fw->n_queue];
    if (i == fw->n_queue)
        return;
    heap_set(fw, i, last);
    sift_up(fw, i);
    sift_down(fw, last->qpos);
}

/* ---- pods ---- */

static void pod_key(const struct corral_pod *pod, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", pod->ns, pod->name);
}

struct corral_pod *corral_fw_find_pod(const struct corral_framework *fw, const char *ns,
                                      const char *name)
{
    char key[512];
    snprintf(key, sizeof(key), "%s/%s", ns, name);
    return corral_strmap_get(&fw->pods, key);
}

static int register_pod(struct corral_framework *fw, struct corral_pod *pod)
{
    char key[512];
    pod_key(pod, key, sizeof(key));
    if (corral_strmap_get(&fw->pods, key)) {
        corral_pod_free(pod);
        return CORRAL_EEXISTS;
    }
    if (corral_strmap_put(&fw->pods, key, pod) < 0) {
        corral_pod_free(pod);
        return -ENOMEM;
    }
    pod->seq = ++fw->seq;
    pod->profile = corral_fw_profile_index(fw, pod->scheduler_name);
    return 0;
}

static void reason_text(struct corral_fw_profile *fp, struct corral_fw_plugin *inst,
                        const struct corral_pod *pod, int code, char *buf, size_t len)
{
    (void)fp;
    int n = 0;
    if (HAS(inst->p, reason))
        n = inst->p->reason(inst->state, pod, code & CORRAL_REASON_MASK, buf, len);
    if (n <= 0)
        snprintf(buf, len, "rejected by %s (reason %d)", inst->name, code & CORRAL_REASON_MASK);
}

/* Runs PreEnqueue; the pod ends up queued or gated. */
static int enqueue(struct corral_framework *fw, struct corral_pod *pod)
{
    if (pod->profile < 0)
        return 0;
    if (pod->state == CORRAL_POD_GATED)
        fw->n_gated--;
    struct corral_fw_profile *fp = &fw->profiles[pod->profile];
    for (uint32_t i = 0; i < fp->n_at[CORRAL_POINT_PRE_ENQUEUE]; i++) {
        struct corral_fw_plugin *inst = fp->plugins[fp->at[CORRAL_POINT_PRE_ENQUEUE][i]];
        int rc = inst->p->pre_enqueue(inst->state, pod);
        if (rc != CORRAL_OK) {
            char text[256], msg[320];
            if (CORRAL_IS_REJECT(rc))
                reason_text(fp, inst, pod, rc, text, sizeof(text));
            else
                snprintf(text, sizeof(text), "%s", corral_strerror(rc));
            snprintf(msg, sizeof(msg), "waiting before the queue: %s: %s", inst->name, text);
            corral_pod_set_message(pod, msg);
            pod->state = CORRAL_POD_GATED;
            fw->n_gated++;
            return 0;
        }
    }
    return queue_push(fw, pod);
}

int corral_fw_add_pod(struct corral_framework *fw, struct corral_pod *pod)
{
    int rc = register_pod(fw, pod);
    if (rc < 0)
        return rc;
    return enqueue(fw, pod);
}

static int parse_assigned(const struct corral_snapshot *s, uint32_t node, const char *list,
                          uint64_t *gpus)
{
    const struct corral_snap_node *nd = &s->nodes[node];
    *gpus = 0;
    for (const char *p = list; p && *p;) {
        char *end;
        long idx = strtol(p, &end, 10);
        if (end == p)
            return -EINVAL;
        uint32_t g = 0;
        while (g < nd->n_gpus && nd->gpus[g].index != idx)
            g++;
        if (g == nd->n_gpus)
            return -EINVAL;
        *gpus |= 1ull << g;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return -EINVAL;
    }
    return 0;
}

int corral_fw_add_bound_pod(struct corral_framework *fw, struct corral_pod *pod,
                            const char *node_name)
{
    int rc = register_pod(fw, pod);
    if (rc < 0)
        return rc;
    pod->state = CORRAL_POD_BOUND;
    return corral_fw_place_bound_pod(fw, pod, node_name);
}

int corral_fw_place_bound_pod(struct corral_framework *fw, struct corral_pod *pod,
                              const char *node_name)
{
    int rc;
    if (pod->node != CORRAL_NO_NODE)
        return -EINVAL;
    int node = corral_snapshot_find(fw->snap, node_name);
    if (node < 0)
        return CORRAL_ENOTFOUND;
    uint64_t gpus = 0;
    int32_t milli = 1000;
    const char *list = json_string_value(json_object_get(pod->annotations, "corral.io/assigned-gpus"));
    const char *m = json_string_value(json_object_get(pod->annotations,
                                                      "corral.io/assigned-gpu-milli"));
    if (m)
        milli = (int32_t)strtol(m, NULL, 10);
    if (corral_pod_wants_gpu(pod) && parse_assigned(fw->snap, (uint32_t)node, list, &gpus) < 0)
        gpus = 0;
    rc = corral_snapshot_place(fw->snap, pod, (uint32_t)node, gpus, milli);
    if (rc == -EINVAL && gpus)
        rc = corral_snapshot_place(fw->snap, pod, (uint32_t)node, 0, 0);
    return rc;
}

static void waiting_remove(struct corral_framework *fw, struct corral_pod *pod)
{
    for (uint32_t i = 0; i < fw->n_waiting; i++)
        if (fw->waiting[i] == pod) {
            fw->waiting[i] = fw->waiting[--fw->n_waiting];
            return;
        }
}

static void unreserve_plugins(struct corral_framework *fw, struct corral_pod *pod, uint32_t node,
                              uint32_t upto)
{
    struct corral_fw_profile *fp = &fw->profiles[pod->profile];
    for (uint32_t i = upto; i-- > 0;) {
        struct corral_fw_plugin *inst = fp->plugins[fp->at[CORRAL_POINT_RESERVE][i]];
        if (HAS(inst->p, unreserve))
            inst->p->unreserve(inst->state, pod, node);
    }
}

/* Undoes a reservation: unplaces the pod and runs Unreserve in reverse order. */
static void unreserve_placed(struct corral_framework *fw, struct corral_pod *pod)
{
    uint32_t node = pod->node;
    corral_snapshot_unplace(fw->snap, pod);
    unreserve_plugins(fw, pod, node, fw->profiles[pod->profile].n_at[CORRAL_POINT_RESERVE]);
}

void corral_fw_remove_pod(struct corral_framework *fw, struct corral_pod *pod)
{
    char key[512];
    pod_key(pod, key, sizeof(key));
    if (pod->state == CORRAL_POD_QUEUED)
        queue_remove(fw, pod);
    if (pod->state == CORRAL_POD_GATED)
        fw->n_gated--;
    if (pod->state == CORRAL_POD_WAITING) {
        waiting_remove(fw, pod);
        unreserve_placed(fw, pod);
    }
    if (pod->node != CORRAL_NO_NODE)
        corral_snapshot_unplace(fw->snap, pod);
    corral_strmap_del(&fw->pods, key);
    corral_pod_free(pod);
}

void corral_fw_requeue(struct corral_framework *fw, struct corral_pod *pod)
{
    if (pod->state == CORRAL_POD_FAILED || pod->state == CORRAL_POD_GATED ||
        pod->state == CORRAL_POD_NEW)
        enqueue(fw, pod);
}

void corral_fw_retry_gated(struct corral_framework *fw)
{
    if (fw->n_gated == 0)
        return;
    size_t pos = 0;
    void *v;
    struct corral_pod **gated = NULL;
    size_t n = 0, cap = 0;
    while (corral_strmap_next(&fw->pods, &pos, NULL, &v)) {
        struct corral_pod *pod = v;
        if (pod->state != CORRAL_POD_GATED)
            continue;
        if (n == cap) {
            struct corral_pod **ng = realloc(gated, (cap = cap * 2 + 16) * sizeof(*ng));
            if (!ng)
                break;
            gated = ng;
        }
        gated[n++] = pod;
    }
    for (size_t i = 0; i < n; i++)
        enqueue(fw, gated[i]);
    free(gated);
}

/* ---- the scheduling cycle ---- */

static int ensure_cycle_arrays(struct corral_framework *fw, struct corral_fw_profile *fp)
{
    uint32_t n = fw->snap->n;
    if (n > fw->cy.mask_cap) {
        uint32_t cap = n * 2;
        uint64_t *m = realloc(fw->cy.mask, cap * sizeof(uint64_t));
        if (!m)
            return -ENOMEM;
        fw->cy.mask = m;
        uint64_t *st = calloc(cap, sizeof(uint64_t));
        if (!st)
            return -ENOMEM;
        free(fw->cy.mask_stamp);
        fw->cy.mask_stamp = st;
        uint32_t *f = realloc(fw->feasible, cap * sizeof(uint32_t));
        int64_t *s1 = f ? realloc(fw->fscore, cap * sizeof(int64_t)) : NULL;
        if (f)
            fw->feasible = f;
        if (s1)
            fw->fscore = s1;
        int64_t *s2 = s1 ? realloc(fw->tmp_score, cap * sizeof(int64_t)) : NULL;
        if (!s2)
            return -ENOMEM;
        fw->tmp_score = s2;
        fw->cy.mask_cap = cap;
    }
    if (fp->n_plugins > fw->cy.skip_cap) {
        bool *a = realloc(fw->cy.skip_filter, fp->n_plugins * sizeof(bool));
        if (a)
            fw->cy.skip_filter = a;
        bool *b = a ? realloc(fw->cy.skip_score, fp->n_plugins * sizeof(bool)) : NULL;
        if (!b)
            return -ENOMEM;
        fw->cy.skip_score = b;
        fw->cy.skip_cap = fp->n_plugins;
    }
    memset(fw->cy.skip_filter, 0, fp->n_plugins * sizeof(bool));
    memset(fw->cy.skip_score, 0, fp->n_plugins * sizeof(bool));
    return 0;
}

uint64_t corral_fw_cycle_mask(struct corral_framework *fw, uint32_t node)
{
    if (node < fw->cy.mask_cap && fw->cy.mask_stamp[node] == fw->cy.id)
        return fw->cy.mask[node];
    struct corral_sig_entry *e = fw->cy.entry;
    if (e && node < e->cap && e->row[node].gen == fw->snap->gen[node])
        return e->val[node].mask;
    return corral_snapshot_all_gpus(fw->snap, node);
}

static uint32_t encode_reject(uint32_t slot, int rc)
{
    int code = CORRAL_IS_REJECT(rc) ? rc : (CORRAL_REASON_MASK | CORRAL_UNRESOLVABLE_FLAG);
    return ((slot + 1) << REJECT_SHIFT) | (uint32_t)code;
}

uint32_t corral_fw_run_filters(struct corral_framework *fw, uint32_t node, bool local,
                               bool volatile_)
{
    struct corral_fw_profile *fp = fw->cy.prof;
    struct corral_pod *pod = fw->cy.pod;
    if (local) {
        fw->cy.mask[node] = corral_snapshot_all_gpus(fw->snap, node);
        fw->cy.mask_stamp[node] = fw->cy.id;
    }
    fw->cy.in_filter = true;
    uint32_t rej = 0;
    for (uint32_t s = 0; s < fp->n_at[CORRAL_POINT_FILTER] && !rej; s++) {
        uint32_t ii = fp->at[CORRAL_POINT_FILTER][s];
        struct corral_fw_plugin *inst = fp->plugins[ii];
        if (fw->cy.skip_filter[ii] || (inst->node_local ? !local : !volatile_))
            continue;
        int rc = inst->p->filter(inst->state, pod, node);
        if (rc != CORRAL_OK) {
            if (!CORRAL_IS_REJECT(rc))
                corral_warn(LOG, "plugin %s: filter failed on node %s: %s", inst->name,
                            fw->snap->nodes[node].name, corral_strerror(rc));
            rej = encode_reject(s, rc);
        }
    }
    fw->cy.in_filter = false;
    return rej;
}

static int64_t clamp_score(struct corral_fw_plugin *inst, int64_t v)
{
    if (v < 0) {
        corral_warn(LOG, "plugin %s: score failed: %s", inst->name, corral_strerror((int)v));
        return 0;
    }
    return v > CORRAL_MAX_NODE_SCORE ? CORRAL_MAX_NODE_SCORE : v;
}

/* ---- the class memo ---- */

/* Sizes the profile's memo for the cluster and empties it when stale or half full. */
static __attribute__((noinline)) bool memo_setup(struct corral_framework *fw,
                                                 struct corral_fw_profile *fp)
{
    fp->memo_live = fw->snap->live;
    uint32_t want = 1u << 12;
    while (want < 8u * fw->snap->live && want < (1u << 22))
        want *= 2;
    if (fp->memo_cap < want) {
        struct corral_class_memo *m = calloc(want, sizeof(*m));
        if (!m)
            return fp->memo != NULL;
        free(fp->memo);
        fp->memo = m;
        fp->memo_cap = want;
        fp->memo_used = fp->memo_cap; /* forces the emptying below */
    }
    if (fp->memo_epoch != fw->epoch || fp->memo_used >= fp->memo_cap / 2) {
        fp->memo_stamp++;
        fp->memo_epoch = fw->epoch;
        fp->memo_used = 0;
    }
    return true;
}

/* memo_setup() when the memo needs it; true when there is a memo to use. */
static inline bool memo_ready(struct corral_framework *fw, struct corral_fw_profile *fp)
{
    if (fp->memo && fp->memo_epoch == fw->epoch && fp->memo_used < fp->memo_cap / 2 &&
        fp->memo_live == fw->snap->live)
        return true;
    return memo_setup(fw, fp);
}

/* Where the probe for (signature, class) starts. */
static uint32_t memo_index(const struct corral_fw_profile *fp, uint32_t sig, uint64_t cls)
{
    uint64_t h = (cls ^ ((uint64_t)sig << 40)) * 0x9e3779b97f4a7c15ull;
    return (uint32_t)(h >> 32) & (fp->memo_cap - 1);
}

/*
 * The memo entry for (signature, class): *hit says whether it holds the answer; otherwise it
 * is the free entry to fill. NULL when there is no memo.
 */
static struct corral_class_memo *memo_find(struct corral_framework *fw,
                                           struct corral_fw_profile *fp, uint32_t sig,
                                           uint64_t cls, bool *hit)
{
    *hit = false;
    if (!memo_ready(fw, fp))
        return NULL;
    for (uint32_t i = memo_index(fp, sig, cls);; i = (i + 1) & (fp->memo_cap - 1)) {
        struct corral_class_memo *m = &fp->memo[i];
        if (m->stamp != fp->memo_stamp)
            return m;
        if (m->cls == cls && m->sig == sig) {
            *hit = true;
            return m;
        }
    }
}

/*
 * Filter + cached scores for one node, stored in the signature row when there is one. With
 * by_class, an equal node's result comes from the class memo instead.
 */
static uint32_t evaluate(struct corral_framework *fw, uint32_t node, int64_t *score)
{
    struct corral_fw_profile *fp = fw->cy.prof;
    struct corral_sig_entry *e = fw->cy.entry;
    struct corral_class_memo *m = NULL;
    uint64_t cls = 0;
    bool hit = false;
    if (fw->cy.by_class && e && (cls = corral_snapshot_class(fw->snap, node)) != 0)
        m = memo_find(fw, fp, e->id, cls, &hit);
    uint32_t rej;
    int64_t total = 0;
    if (hit) {
        fw->stats.class_hits++;
        fw->cy.mask[node] = m->mask;
        fw->cy.mask_stamp[node] = fw->cy.id;
        rej = m->reject;
        total = m->score;
    } else {
        fw->stats.nodes_evaluated++;
        rej = corral_fw_run_filters(fw, node, true, false);
        for (uint32_t s = 0; s < fp->n_at[CORRAL_POINT_SCORE] && !rej; s++) {
            uint32_t ii = fp->at[CORRAL_POINT_SCORE][s];
            struct corral_fw_plugin *inst = fp->plugins[ii];
            if (!fp->score_cached[s] || fw->cy.skip_score[ii])
                continue;
            total += fp->score_weight[s] *
                     clamp_score(inst, inst->p->score(inst->state, fw->cy.pod, node));
        }
        if (m) {
            *m = (struct corral_class_memo){cls, fp->memo_stamp, fw->cy.mask[node], total,
                                            e->id, rej};
            fp->memo_used++;
        }
    }
    if (e) {
        struct corral_sig_row *r = &e->row[node];
        r->gen = fw->snap->gen[node];
        r->reject = rej;
        e->val[node] = (struct corral_sig_val){total, fw->cy.mask[node]};
    }
    *score = total;
    return rej;
}

/* ---- the signature cache ---- */

/* The heap lives 3 entries into a 64-byte aligned block: children 4i+1.. start a line. */
#define HEAP_SKEW 3

static int entry_fit(struct corral_sig_entry *e, uint32_t n, uint64_t epoch)
{
    if (n > e->cap) {
        uint32_t cap = n + n / 4 + 16;
        struct corral_sig_row *r = realloc(e->row, cap * sizeof(*r));
        if (!r)
            return -ENOMEM;
        e->row = r;
        struct corral_sig_val *v = realloc(e->val, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        e->val = v;
        void *mem = malloc((cap + HEAP_SKEW) * sizeof(struct corral_heap_item) + 64);
        if (!mem)
            return -ENOMEM;
        free(e->heap_mem);
        e->heap_mem = mem;
        uintptr_t base = ((uintptr_t)mem + 63) & ~(uintptr_t)63;
        e->heap = (struct corral_heap_item *)base + HEAP_SKEW;
        for (uint32_t i = e->cap; i < cap; i++) {
            r[i] = (struct corral_sig_row){.pos = UINT32_MAX};
            v[i] = (struct corral_sig_val){0, 0};
        }
        e->cap = cap;
        e->heap_ok = false;
        groups_free(e); /* sized for the old capacity */
    }
    if (e->epoch != epoch) {
        for (uint32_t i = 0; i < e->cap; i++)
            e->row[i].gen = 0;
        e->epoch = epoch;
        e->heap_ok = false;
    }
    return 0;
}

static void evict_oldest(struct corral_fw_profile *fp)
{
    size_t pos = 0, best_pos = 0;
    const char *key, *best_key = NULL;
    void *v;
    uint64_t oldest = UINT64_MAX;
    while (corral_strmap_next(&fp->sigs, &pos, &key, &v)) {
        struct corral_sig_entry *e = v;
        if (e->last_used < oldest) {
            oldest = e->last_used;
            best_key = key;
            best_pos = pos;
        }
    }
    (void)best_pos;
    if (!best_key)
        return;
    sig_entry_free(corral_strmap_del(&fp->sigs, best_key));
    fp->n_sigs--;
}

static struct corral_sig_entry *sig_entry(struct corral_framework *fw, struct corral_fw_profile *fp,
                                          const struct corral_pod *pod)
{
    if (fw->no_cache || (!fp->any_local_filter && fp->n_at[CORRAL_POINT_SCORE] == 0))
        return NULL;
    struct corral_sig_entry *e = corral_strmap_get_hashed(&fp->sigs, pod->sig, pod->sig_hash);
    if (!e) {
        uint64_t row = (sizeof(struct corral_sig_row) + sizeof(struct corral_sig_val) +
                        sizeof(struct corral_heap_item) + 8) *
                       (fw->snap->n + 1ull); /* + score groups: 64 at most, a bit a node each */
        uint64_t max = SIG_CACHE_BYTES / row;
        fp->max_sigs = (uint32_t)(max < 8 ? 8 : (max > 1024 ? 1024 : max));
        while (fp->n_sigs >= fp->max_sigs)
            evict_oldest(fp);
        e = calloc(1, sizeof(*e));
        if (!e || corral_strmap_put(&fp->sigs, pod->sig, e) < 0) {
            free(e);
            return NULL;
        }
        e->id = ++fp->next_sig_id;
        fp->n_sigs++;
    }
    if (entry_fit(e, fw->snap->n, fw->epoch) < 0)
        return NULL;
    e->last_used = fw->cy.id;
    return e;
}

static uint32_t nodes_to_find(const struct corral_fw_profile *fp, uint32_t live)
{
    int pct = fp->conf->percentage_of_nodes_to_score;
    if (live < 100 || pct >= 100)
        return live;
    if (pct == 0) {
        pct = 50 - (int)(live / 125);
        if (pct < 5)
            pct = 5;
    }
    uint32_t n = (uint32_t)((uint64_t)live * (uint32_t)pct / 100);
    return n < 100 ? 100 : n;
}

/* ---- the heap of feasible nodes per signature (tie-break by node order) ---- */

static bool hbefore(const struct corral_heap_item *a, const struct corral_heap_item *b)
{
    return a->score > b->score || (a->score == b->score && a->node < b->node);
}

static void hset(struct corral_sig_entry *e, uint32_t i, struct corral_heap_item it)
{
    e->heap[i] = it;
    e->row[it.node].pos = i;
}

/* Moves entry i up to its place; returns where it ended. */
static uint32_t hup(struct corral_sig_entry *e, uint32_t i)
{
    struct corral_heap_item it = e->heap[i];
    while (i > 0 && hbefore(&it, &e->heap[(i - 1) / 4])) {
        hset(e, i, e->heap[(i - 1) / 4]);
        i = (i - 1) / 4;
    }
    hset(e, i, it);
    return i;
}

static void hdown(struct corral_sig_entry *e, uint32_t i)
{
    struct corral_heap_item it = e->heap[i];
    for (;;) {
        uint32_t c = 4 * i + 1, end = c + 4 < e->heap_n ? c + 4 : e->heap_n, best = c;
        if (c >= e->heap_n)
            break;
        for (uint32_t k = c + 1; k < end; k++)
            if (hbefore(&e->heap[k], &e->heap[best]))
                best = k;
        if (!hbefore(&e->heap[best], &it))
            break;
        hset(e, i, e->heap[best]);
        i = best;
    }
    hset(e, i, it);
}

/* ---- score groups (see framework.h) ---- */

static void gbit_set(struct corral_sig_entry *e, struct corral_score_group *g, uint32_t node)
{
    uint32_t w = node >> 6;
    g->bits[w] |= 1ull << (node & 63);
    g->bits[e->words + (w >> 6)] |= 1ull << (w & 63);
    g->count++;
}

static void gbit_clear(struct corral_sig_entry *e, struct corral_score_group *g, uint32_t node)
{
    uint32_t w = node >> 6;
    g->bits[w] &= ~(1ull << (node & 63));
    if (!g->bits[w])
        g->bits[e->words + (w >> 6)] &= ~(1ull << (w & 63));
    g->count--;
}

static uint32_t gbit_first(const struct corral_sig_entry *e, const struct corral_score_group *g)
{
    for (uint32_t sw = 0; sw < e->swords; sw++) {
        uint64_t m = g->bits[e->words + sw];
        if (m) {
            uint32_t w = sw * 64 + (uint32_t)__builtin_ctzll(m);
            return w * 64 + (uint32_t)__builtin_ctzll(g->bits[w]);
        }
    }
    return CORRAL_NO_NODE;
}

/*
 * The group of score, made (in an empty one when all are taken) when create is set. NULL when
 * there is none, or no room for it. Groups never move, so a row can name its group.
 */
static struct corral_score_group *group_of(struct corral_sig_entry *e, int64_t score,
                                           bool create)
{
    struct corral_score_group *empty = NULL;
    for (uint32_t i = 0; i < e->n_groups; i++) {
        if (e->groups[i].score == score)
            return &e->groups[i];
        if (!empty && !e->groups[i].count)
            empty = &e->groups[i];
    }
    if (!create)
        return NULL;
    if (e->n_groups < e->max_groups) { /* a new one, with spare memory past the end if any */
        struct corral_score_group *g = &e->groups[e->n_groups];
        if (!g->bits && !(g->bits = calloc(e->words + e->swords, sizeof(uint64_t))))
            return NULL;
        e->n_groups++;
        empty = g;
    }
    if (empty) /* an empty group's bits are all clear */
        empty->score = score;
    return empty;
}

/* Moves node between score groups as its row says; false when a new score found no room. */
static bool group_update(struct corral_sig_entry *e, uint32_t node, bool was_in, bool feasible)
{
    struct corral_sig_row *r = &e->row[node];
    if (was_in)
        gbit_clear(e, &e->groups[r->pos], node);
    r->pos = UINT32_MAX;
    if (!feasible)
        return true;
    struct corral_score_group *g = group_of(e, e->val[node].score, true);
    if (!g)
        return false;
    gbit_set(e, g, node);
    r->pos = (uint32_t)(g - e->groups);
    return true;
}

/*
 * Builds the groups from the heap array just filled by heap_rebuild(), each row naming its
 * group. Returns false (the heap is used) when the scores take too many values or memory is
 * short.
 */
static bool groups_build(struct corral_sig_entry *e)
{
    e->words = (e->cap + 63) / 64;
    e->swords = (e->words + 63) / 64;
    if (!e->groups && !(e->groups = calloc(CORRAL_MAX_SCORE_GROUPS, sizeof(*e->groups))))
        return false;
    for (uint32_t g = 0; g < e->n_groups; g++) { /* start empty, keeping the memory */
        memset(e->groups[g].bits, 0, (e->words + e->swords) * sizeof(uint64_t));
        e->groups[g].count = 0;
    }
    e->n_groups = 0;
    for (uint32_t i = 0; i < e->heap_n; i++) {
        struct corral_score_group *g = group_of(e, e->heap[i].score, true);
        if (!g)
            return false;
        gbit_set(e, g, e->heap[i].node);
        e->row[e->heap[i].node].pos = (uint32_t)(g - e->groups);
    }
    return true;
}

/* The best node: the heap's top, or the first node of the best nonempty score group. */
static uint32_t set_top(const struct corral_sig_entry *e)
{
    if (!e->grouped)
        return e->heap_n ? e->heap[0].node : CORRAL_NO_NODE;
    const struct corral_score_group *best = NULL;
    for (uint32_t g = 0; g < e->n_groups; g++)
        if (e->groups[g].count && (!best || e->groups[g].score > best->score))
            best = &e->groups[g];
    return best ? gbit_first(e, best) : CORRAL_NO_NODE;
}

/* Puts node where its row says: in the heap when feasible, out of it otherwise. */
static void heap_update(struct corral_sig_entry *e, uint32_t node, bool feasible)
{
    struct corral_sig_row *r = &e->row[node];
    uint32_t p = r->pos;
    if (!feasible) {
        if (p == UINT32_MAX)
            return;
        r->pos = UINT32_MAX;
        struct corral_heap_item last = e->heap[--e->heap_n];
        if (p == e->heap_n)
            return;
        hset(e, p, last);
        if (hup(e, p) == p) /* an entry that moved up is in place */
            hdown(e, p);
        return;
    }
    if (p == UINT32_MAX) {
        hset(e, e->heap_n++, (struct corral_heap_item){e->val[node].score, node, 0});
        hup(e, e->heap_n - 1);
    } else {
        e->heap[p].score = e->val[node].score;
        if (hup(e, p) == p)
            hdown(e, p);
    }
}

static void hist_add(struct corral_sig_entry *e, uint32_t code, int delta)
{
    if (code == 0)
        return;
    for (uint32_t i = 0; i < e->n_hist; i++)
        if (e->hist[i].code == code) {
            e->hist[i].count += (uint32_t)delta;
            if (e->hist[i].count == 0)
                e->hist[i] = e->hist[--e->n_hist];
            return;
        }
    if (delta < 0)
        return;
    if (e->n_hist == sizeof(e->hist) / sizeof(e->hist[0])) {
        e->hist_ok = false;
        return;
    }
    e->hist[e->n_hist++] = (struct corral_sig_reason){code, 1};
}

static void refresh_node(uint32_t node, void *arg)
{
    struct corral_framework *fw = arg;
    struct corral_sig_entry *e = fw->cy.entry;
    const struct corral_snapshot *s = fw->snap;
    int64_t sc;
    if (node >= e->cap)
        return;
    struct corral_sig_row *r = &e->row[node];
    if (s->exists[node] && r->gen == s->gen[node])
        return;
    bool counted = r->pos != UINT32_MAX || r->gen; /* the old row is in */
    uint32_t old_rej = r->reject;
    int64_t old_score = e->val[node].score;
    if (counted)
        hist_add(e, old_rej, -1);
    uint32_t rej = s->exists[node] ? evaluate(fw, node, &sc) : 0;
    if (!s->exists[node])
        r->gen = 0;
    hist_add(e, rej, 1);
    fw->stats.cache_misses++;
    bool in = r->pos != UINT32_MAX, feasible = s->exists[node] && rej == 0;
    if (in && feasible && e->val[node].score == old_score && old_rej == 0)
        return; /* same place in the heap */
    if (!e->heap_ok)
        return; /* being rebuilt after this batch */
    if (!e->grouped)
        heap_update(e, node, feasible);
    else if (!group_update(e, node, in, feasible))
        e->heap_ok = false; /* a new score found no room: rebuild, with the heap */
}

static void heap_rebuild(struct corral_framework *fw)
{
    struct corral_sig_entry *e = fw->cy.entry;
    const struct corral_snapshot *s = fw->snap;
    int64_t sc;
    e->heap_n = 0;
    e->n_hist = 0;
    e->hist_ok = true;
    for (uint32_t i = 0; i < e->cap; i++)
        e->row[i].pos = UINT32_MAX;
    for (uint32_t i = 0; i < s->n; i++) {
        if (!s->exists[i])
            continue;
        struct corral_sig_row *r = &e->row[i];
        if (r->gen != s->gen[i]) {
            evaluate(fw, i, &sc);
            fw->stats.cache_misses++;
        } else {
            fw->stats.cache_hits++;
        }
        if (r->reject == 0) {
            r->pos = e->heap_n;
            e->heap[e->heap_n++] = (struct corral_heap_item){e->val[i].score, i, 0};
        } else {
            hist_add(e, r->reject, 1);
        }
    }
    for (uint32_t i = s->n; i < e->cap; i++)
        e->row[i].gen = 0;
    e->max_groups = fw->max_score_groups && fw->max_score_groups < CORRAL_MAX_SCORE_GROUPS
                        ? fw->max_score_groups
                        : CORRAL_MAX_SCORE_GROUPS;
    e->grouped = groups_build(e);
    if (!e->grouped) {
        for (uint32_t i = 0; i < e->heap_n; i++)
            e->row[e->heap[i].node].pos = i;
        for (uint32_t i = e->heap_n > 1 ? (e->heap_n - 2) / 4 + 1 : 0; i-- > 0;)
            hdown(e, i);
    }
    e->heap_ok = true;
}

/*
 * Changed nodes are refreshed in batches: their rows, then their class memo entries, are
 * requested from memory for the whole batch before the first is used, so the cache misses of
 * a batch overlap instead of following one another.
 */
#define REFRESH_BATCH 32

struct refresh_batch {
    struct corral_framework *fw;
    uint32_t n;
    uint32_t node[REFRESH_BATCH];
};

static void refresh_batch(struct refresh_batch *b)
{
    struct corral_framework *fw = b->fw;
    struct corral_fw_profile *fp = fw->cy.prof;
    struct corral_sig_entry *e = fw->cy.entry;
    struct corral_snapshot *s = fw->snap;
    for (uint32_t i = 0; i < b->n; i++)
        if (b->node[i] < e->cap) {
            __builtin_prefetch(&e->row[b->node[i]], 1);
            __builtin_prefetch(&e->val[b->node[i]], 1);
        }
    if (fw->cy.by_class && memo_ready(fw, fp)) {
        for (uint32_t i = 0; i < b->n; i++) {
            uint32_t node = b->node[i];
            if (node >= e->cap || !s->exists[node] || e->row[node].gen == s->gen[node])
                continue;
            uint64_t cls = corral_snapshot_class(s, node);
            if (cls)
                __builtin_prefetch(&fp->memo[memo_index(fp, e->id, cls)]);
        }
    }
    for (uint32_t i = 0; i < b->n; i++)
        refresh_node(b->node[i], fw);
    b->n = 0;
}

static void collect_change(uint32_t node, void *arg)
{
    struct refresh_batch *b = arg;
    b->node[b->n++] = node;
    if (b->n == REFRESH_BATCH)
        refresh_batch(b);
}

/* The best node through the heap, re-evaluating only what changed. */
static uint32_t heap_pick(struct corral_framework *fw)
{
    struct corral_sig_entry *e = fw->cy.entry;
    uint64_t before = fw->stats.cache_misses;
    struct refresh_batch b = {.fw = fw, .n = 0};
    if (!e->heap_ok || corral_snapshot_changes(fw->snap, e->seen, collect_change, &b) < 0)
        heap_rebuild(fw);
    else
        refresh_batch(&b);
    if (!e->heap_ok) /* the score groups overflowed while refreshing */
        heap_rebuild(fw);
    e->seen = fw->snap->gen_counter;
    uint64_t looked = fw->stats.cache_misses - before;
    fw->stats.nodes_scanned += looked;
    if (fw->snap->live > looked) /* the others were answered by their cached rows */
        fw->stats.cache_hits += fw->snap->live - looked;
    return set_top(e);
}

static bool heap_usable(struct corral_framework *fw)
{
    const struct corral_fw_profile *fp = fw->cy.prof;
    return fw->cy.entry && fp->conf->tie_first && !fw->cy.dynamic_scores &&
           !fw->cy.volatile_filters && nodes_to_find(fp, fw->snap->live) >= fw->snap->live;
}

/* ---- explanation ---- */

struct reason_count {
    uint32_t code;
    uint32_t count;
    char text[200];
};

static int cmp_reason(const void *a, const void *b)
{
    const struct reason_count *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return strcmp(x->text, y->text);
}

static uint32_t node_reject(struct corral_framework *fw, uint32_t node)
{
    struct corral_sig_entry *e = fw->cy.entry;
    uint32_t rej;
    int64_t sc;
    if (e && e->row[node].gen == fw->snap->gen[node])
        rej = e->row[node].reject;
    else
        rej = evaluate(fw, node, &sc);
    if (!rej && fw->cy.volatile_filters)
        rej = corral_fw_run_filters(fw, node, false, true);
    return rej;
}

static void count_reason(struct reason_count *rc, uint32_t *n, uint32_t max, uint32_t code)
{
    for (uint32_t i = 0; i < *n; i++)
        if (rc[i].code == code) {
            rc[i].count++;
            return;
        }
    if (*n < max)
        rc[(*n)++] = (struct reason_count){code, 1, ""};
}

static void render_reasons(struct corral_framework *fw, struct reason_count *rc, uint32_t n)
{
    struct corral_fw_profile *fp = fw->cy.prof;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t slot = (rc[i].code >> REJECT_SHIFT) - 1;
        int code = (int)(rc[i].code & ((1u << REJECT_SHIFT) - 1));
        struct corral_fw_plugin *inst = fp->plugins[fp->at[CORRAL_POINT_FILTER][slot]];
        if ((code & CORRAL_REASON_MASK) == CORRAL_REASON_MASK)
            snprintf(rc[i].text, sizeof(rc[i].text), "node(s) where plugin %s failed",
                     inst->name);
        else
            reason_text(fp, inst, fw->cy.pod, code, rc[i].text, sizeof(rc[i].text));
    }
    /* Two codes can render alike ("Insufficient cpu" from two plugins): merge them. */
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = i + 1; j < n; j++)
            if (rc[j].count && strcmp(rc[i].text, rc[j].text) == 0) {
                rc[i].count += rc[j].count;
                rc[j].count = 0;
            }
    qsort(rc, n, sizeof(*rc), cmp_reason);
}

static void explain(struct corral_framework *fw, char *msg, size_t len, bool from_heap)
{
    enum { MAX_REASONS = 32 };
    struct reason_count rc[MAX_REASONS];
    uint32_t n = 0;
    struct corral_snapshot *s = fw->snap;
    struct corral_sig_entry *e = fw->cy.entry;
    if (from_heap && e->hist_ok) { /* every row is fresh: the histogram says it all */
        for (uint32_t i = 0; i < e->n_hist; i++)
            rc[n++] = (struct reason_count){e->hist[i].code, e->hist[i].count, ""};
    } else {
        for (uint32_t i = 0; i < s->n; i++)
            if (s->exists[i])
                count_reason(rc, &n, MAX_REASONS, node_reject(fw, i));
    }
    render_reasons(fw, rc, n);
    size_t off = (size_t)snprintf(msg, len, "0/%u nodes are available", s->live);
    for (uint32_t i = 0; i < n && off < len; i++) {
        if (!rc[i].count)
            continue;
        off += (size_t)snprintf(msg + off, len - off, "%s %u %s", i == 0 ? ":" : ",",
                                rc[i].count, rc[i].text);
    }
    if (off < len)
        snprintf(msg + off, len - off, ".");
}

/* ---- one cycle ---- */

/* Selection among equal best scores is uniform (reservoir sampling). */
struct pick {
    int64_t best;
    uint32_t node;
    uint32_t ties;
};

static void consider(struct corral_framework *fw, struct pick *pk, uint32_t node, int64_t score)
{
    if (score > pk->best) {
        pk->best = score;
        pk->node = node;
        pk->ties = 1;
    } else if (score == pk->best && !fw->cy.prof->conf->tie_first && ++pk->ties > 1 &&
               corral_fw_random(fw) % pk->ties == 0) {
        pk->node = node;
    }
}

/* Scans nodes [from, to) in order; returns false once enough feasible nodes were found. */
static bool scan_range(struct corral_framework *fw, struct pick *pk, uint32_t from, uint32_t to,
                       uint32_t want, uint32_t *found, uint32_t *scanned)
{
    struct corral_fw_profile *fp = fw->cy.prof;
    struct corral_snapshot *s = fw->snap;
    struct corral_sig_entry *e = fw->cy.entry;
    const uint64_t *gen = s->gen;
    const uint8_t *exists = s->exists;
    bool dynamic = fw->cy.dynamic_scores, vol = fw->cy.volatile_filters;
    uint64_t hits = 0, misses = 0;
    uint32_t n_found = *found, n_scanned = *scanned;
    bool more = true;
    for (uint32_t i = from; i < to; i++) {
        if (!exists[i])
            continue;
        n_scanned++;
        uint32_t rej;
        int64_t sc;
        if (e && e->row[i].gen == gen[i]) {
            hits++;
            if ((rej = e->row[i].reject) != 0)
                continue;
            sc = e->val[i].score;
        } else {
            misses++;
            rej = evaluate(fw, i, &sc);
        }
        if (rej || (vol && corral_fw_run_filters(fw, i, false, true)))
            continue;
        if (dynamic) {
            fw->feasible[n_found] = i;
            fw->fscore[n_found] = sc;
        } else {
            consider(fw, pk, i, sc);
        }
        if (++n_found >= want) {
            fp->next_start = i + 1;
            more = false;
            break;
        }
    }
    fw->stats.cache_hits += hits;
    fw->stats.cache_misses += misses;
    *found = n_found;
    *scanned = n_scanned;
    return more;
}

static uint32_t scan(struct corral_framework *fw, struct pick *pk, uint32_t *n_feasible)
{
    struct corral_fw_profile *fp = fw->cy.prof;
    struct corral_snapshot *s = fw->snap;
    uint32_t n = s->n, want = nodes_to_find(fp, s->live), found = 0, scanned = 0;
    uint32_t start = want < s->live && n ? fp->next_start % n : 0;
    if (scan_range(fw, pk, start, n, want, &found, &scanned))
        scan_range(fw, pk, 0, start, want, &found, &scanned);
    fw->stats.nodes_scanned += scanned;
    *n_feasible = found;
    return found;
}

static void dynamic_scores(struct corral_framework *fw, struct pick *pk, uint32_t nf)
{
    struct corral_fw_profile *fp = fw->cy.prof;
    for (uint32_t s = 0; s < fp->n_at[CORRAL_POINT_SCORE]; s++) {
        uint32_t ii = fp->at[CORRAL_POINT_SCORE][s];
        struct corral_fw_plugin *inst = fp->plugins[ii];
        if (fp->score_cached[s] || fw->cy.skip_score[ii])
            continue;
        for (uint32_t j = 0; j < nf; j++)
            fw->tmp_score[j] = clamp_score(inst, inst->p->score(inst->state, fw->cy.pod,
                                                                fw->feasible[j]));
        if (HAS(inst->p, normalize_score)) {
            inst->p->normalize_score(inst->state, fw->cy.pod, fw->feasible, fw->tmp_score, nf);
            for (uint32_t j = 0; j < nf; j++)
                fw->tmp_score[j] = clamp_score(inst, fw->tmp_score[j]);
        }
        for (uint32_t j = 0; j < nf; j++)
            fw->fscore[j] += fp->score_weight[s] * fw->tmp_score[j];
    }
    for (uint32_t j = 0; j < nf; j++)
        consider(fw, pk, fw->feasible[j], fw->fscore[j]);
}

static void fail_pod(struct corral_framework *fw, struct corral_pod *pod, const char *msg)
{
    corral_pod_set_message(pod, msg);
    pod->state = CORRAL_POD_FAILED;
    fw->stats.unschedulable++;
    if (fw->cb.unschedulable)
        fw->cb.unschedulable(fw->cb.arg, pod, msg);
}

/* Which per-cycle (not cached) filters and scores this pod actually needs. */
static void note_active(struct corral_framework *fw)
{
    struct corral_fw_profile *fp = fw->cy.prof;
    fw->cy.volatile_filters = fw->cy.dynamic_scores = false;
    fw->cy.by_class = true;
    for (uint32_t s = 0; s < fp->n_at[CORRAL_POINT_FILTER]; s++) {
        uint32_t ii = fp->at[CORRAL_POINT_FILTER][s];
        const struct corral_fw_plugin *inst = fp->plugins[ii];
        if (fw->cy.skip_filter[ii])
            continue;
        fw->cy.volatile_filters |= !inst->node_local;
        fw->cy.by_class &= !inst->node_local || inst->node_class;
    }
    for (uint32_t s = 0; s < fp->n_at[CORRAL_POINT_SCORE]; s++) {
        uint32_t ii = fp->at[CORRAL_POINT_SCORE][s];
        if (fw->cy.skip_score[ii])
            continue;
        fw->cy.dynamic_scores |= !fp->score_cached[s];
        fw->cy.by_class &= !fp->score_cached[s] || fp->plugins[ii]->node_class;
    }
}

/* Runs PreFilter and PreScore. Returns 0, or a rejection/error with msg filled. */
static int pre_phase(struct corral_framework *fw, char *msg, size_t len)
{
    struct corral_fw_profile *fp = fw->cy.prof;
    struct corral_pod *pod = fw->cy.pod;
    for (uint32_t i = 0; i < fp->n_at[CORRAL_POINT_PRE_FILTER]; i++) {
        uint32_t ii = fp->at[CORRAL_POINT_PRE_FILTER][i];
        struct corral_fw_plugin *inst = fp->plugins[ii];
        int rc = inst->p->pre_filter(inst->state, pod);
        if (rc == CORRAL_SKIP) {
            fw->cy.skip_filter[ii] = true;
        } else if (rc != CORRAL_OK) {
            char text[256];
            if (CORRAL_IS_REJECT(rc))
                reason_text(fp, inst, pod, rc, text, sizeof(text));
            else
                snprintf(text, sizeof(text), "%s: %s", inst->name, corral_strerror(rc));
            snprintf(msg, len, "0/%u nodes are available: %s.", fw->snap->live, text);
            return rc;
        }
    }
    for (uint32_t i = 0; i < fp->n_at[CORRAL_POINT_PRE_SCORE]; i++) {
        uint32_t ii = fp->at[CORRAL_POINT_PRE_SCORE][i];
        struct corral_fw_plugin *inst = fp->plugins[ii];
        int rc = inst->p->pre_score(inst->state, pod);
        if (rc == CORRAL_SKIP)
            fw->cy.skip_score[ii] = true;
        else if (rc != CORRAL_OK)
            corral_warn(LOG, "plugin %s: preScore failed: %s", inst->name, corral_strerror(rc));
    }
    note_active(fw);
    return 0;
}

static int post_filter(struct corral_framework *fw)
{
    struct corral_fw_profile *fp = fw->cy.prof;
    fw->cy.in_post_filter = true;
    int result = -1;
    for (uint32_t i = 0; i < fp->n_at[CORRAL_POINT_POST_FILTER] && result < 0; i++) {
        struct corral_fw_plugin *inst = fp->plugins[fp->at[CORRAL_POINT_POST_FILTER][i]];
        uint32_t nominated = CORRAL_NO_NODE;
        if (inst->p->post_filter(inst->state, fw->cy.pod, &nominated) == CORRAL_OK)
            result = 0;
    }
    fw->cy.in_post_filter = false;
    return result;
}

static int reserve(struct corral_framework *fw, uint32_t node, char *msg, size_t len)
{
    struct corral_fw_profile *fp = fw->cy.prof;
    struct corral_pod *pod = fw->cy.pod;
    fw->cy.in_reserve = true;
    fw->cy.reserve_node = node;
    fw->cy.assigned = false;
    int rc = 0;
    uint32_t i;
    for (i = 0; i < fp->n_at[CORRAL_POINT_RESERVE] && rc == 0; i++) {
        struct corral_fw_plugin *inst = fp->plugins[fp->at[CORRAL_POINT_RESERVE][i]];
        if (HAS(inst->p, reserve) && (rc = inst->p->reserve(inst->state, pod, node)) != 0) {
            char text[256];
            if (CORRAL_IS_REJECT(rc))
                reason_text(fp, inst, pod, rc, text, sizeof(text));
            else
                snprintf(text, sizeof(text), "%s", corral_strerror(rc));
            snprintf(msg, len, "reserve on node %s failed: %s: %s", fw->snap->nodes[node].name,
                     inst->name, text);
        }
    }
    fw->cy.in_reserve = false;
    if (rc == 0 && corral_pod_wants_gpu(pod) && !fw->cy.assigned) {
        snprintf(msg, len, "reserve on node %s failed: no Reserve plugin assigned GPUs "
                 "(enable ResourceFit)", fw->snap->nodes[node].name);
        rc = CORRAL_EINTERNAL;
    }
    if (rc == 0 && (rc = corral_snapshot_place(fw->snap, pod, node, fw->cy.assigned ?
                                               fw->cy.gpus : 0, fw->cy.milli)) < 0)
        snprintf(msg, len, "reserve on node %s failed: %s", fw->snap->nodes[node].name,
                 corral_strerror(rc));
    if (rc != 0)
        unreserve_plugins(fw, pod, node, i);
    return rc;
}

static int bind_pod(struct corral_framework *fw, struct corral_pod *pod, char *msg, size_t len);

/* Permit; returns BOUND/WAITING/UNSCHEDULABLE. */
static enum corral_fw_result permit(struct corral_framework *fw, char *msg, size_t len)
{
    struct corral_fw_profile *fp = fw->cy.prof;
    struct corral_pod *pod = fw->cy.pod;
    uint64_t pending = 0, deadline = UINT64_MAX, now = corral_fw_now_ms(fw);
    for (uint32_t i = 0; i < fp->n_at[CORRAL_POINT_PERMIT]; i++) {
        struct corral_fw_plugin *inst = fp->plugins[fp->at[CORRAL_POINT_PERMIT][i]];
        uint32_t timeout = 0;
        int rc = inst->p->permit(inst->state, pod, pod->node, &timeout);
        if (rc == CORRAL_WAIT) {
            pending |= 1ull << i;
            deadline = now + timeout < deadline ? now + timeout : deadline;
        } else if (rc != CORRAL_OK) {
            char text[256];
            if (CORRAL_IS_REJECT(rc))
                reason_text(fp, inst, pod, rc, text, sizeof(text));
            else
                snprintf(text, sizeof(text), "%s", corral_strerror(rc));
            snprintf(msg, len, "rejected by %s: %s", inst->name, text);
            unreserve_placed(fw, pod);
            return CORRAL_FW_UNSCHEDULABLE;
        }
    }
    if (!pending)
        return bind_pod(fw, pod, msg, len) == 0 ? CORRAL_FW_BOUND : CORRAL_FW_UNSCHEDULABLE;
    if (fw->n_waiting == fw->cap_waiting) {
        uint32_t cap = fw->cap_waiting ? fw->cap_waiting * 2 : 16;
        struct corral_pod **nw = realloc(fw->waiting, cap * sizeof(*nw));
        if (!nw) {
            snprintf(msg, len, "out of memory");
            unreserve_placed(fw, pod);
            return CORRAL_FW_UNSCHEDULABLE;
        }
        fw->waiting = nw;
        fw->cap_waiting = cap;
    }
    pod->permit_pending = pending;
    pod->permit_deadline_ms = deadline;
    pod->state = CORRAL_POD_WAITING;
    fw->waiting[fw->n_waiting++] = pod;
    return CORRAL_FW_WAITING;
}

static enum corral_fw_result cycle(struct corral_framework *fw, struct corral_pod *pod, char *msg,
                                   size_t len)
{
    struct corral_fw_profile *fp = &fw->profiles[pod->profile];
    fw->cy.id++;
    fw->cy.pod = pod;
    fw->cy.prof = fp;
    fw->cy.entry = NULL;
    fw->stats.cycles++;
    pod->attempts++;
    if (ensure_cycle_arrays(fw, fp) < 0 || pre_phase(fw, msg, len) != 0)
        return *msg ? CORRAL_FW_UNSCHEDULABLE : (snprintf(msg, len, "out of memory"),
                                                 CORRAL_FW_UNSCHEDULABLE);
    fw->cy.entry = sig_entry(fw, fp, pod);
    struct pick pk = {INT64_MIN, CORRAL_NO_NODE, 0};
    uint32_t nf = 0;
    bool heap = heap_usable(fw);
    if (heap) {
        pk.node = heap_pick(fw);
    } else {
        if (fw->cy.entry)
            fw->cy.entry->heap_ok = false; /* rows change without the heap hearing of it */
        scan(fw, &pk, &nf);
        if (nf && fw->cy.dynamic_scores)
            dynamic_scores(fw, &pk, nf);
    }
    if (pk.node == CORRAL_NO_NODE) {
        explain(fw, msg, len, heap);
        if (fp->n_at[CORRAL_POINT_POST_FILTER] && post_filter(fw) == 0) {
            fw->stats.preemptions++;
            return CORRAL_FW_PREEMPTED;
        }
        return CORRAL_FW_UNSCHEDULABLE;
    }
    if (reserve(fw, pk.node, msg, len) != 0)
        return CORRAL_FW_UNSCHEDULABLE;
    return permit(fw, msg, len);
}

int corral_fw_schedule_next(struct corral_framework *fw, enum corral_fw_result *res,
                            struct corral_pod **which)
{
    if (fw->n_queue == 0)
        return 0;
    struct corral_pod *pod = fw->queue[0];
    queue_remove(fw, pod);
    pod->state = CORRAL_POD_NEW;
    char msg[2048] = "";
    enum corral_fw_result r = cycle(fw, pod, msg, sizeof(msg));
    fw->cy.pod = NULL;
    fw->cy.entry = NULL;
    if (r == CORRAL_FW_UNSCHEDULABLE)
        fail_pod(fw, pod, msg);
    else if (r == CORRAL_FW_PREEMPTED)
        queue_push(fw, pod);
    else if (r == CORRAL_FW_BOUND)
        fw->stats.bound++;
    if (res)
        *res = r;
    if (which)
        *which = pod;
    return 1;
}

/* ---- binding ---- */

static int bind_pod(struct corral_framework *fw, struct corral_pod *pod, char *msg, size_t len)
{
    struct corral_fw_profile *fp = &fw->profiles[pod->profile];
    uint32_t node = pod->node;
    int rc = 0;
    for (uint32_t i = 0; i < fp->n_at[CORRAL_POINT_PRE_BIND] && rc == 0; i++) {
        struct corral_fw_plugin *inst = fp->plugins[fp->at[CORRAL_POINT_PRE_BIND][i]];
        if ((rc = inst->p->pre_bind(inst->state, pod, node)) != 0)
            snprintf(msg, len, "preBind %s failed (%d)", inst->name, rc);
    }
    bool bound = false;
    for (uint32_t i = 0; i < fp->n_at[CORRAL_POINT_BIND] && rc == 0 && !bound; i++) {
        struct corral_fw_plugin *inst = fp->plugins[fp->at[CORRAL_POINT_BIND][i]];
        int b = inst->p->bind(inst->state, pod, node);
        if (b == CORRAL_OK)
            bound = true;
        else if (b != CORRAL_SKIP && (rc = b) != 0)
            snprintf(msg, len, "bind %s failed (%d)", inst->name, b);
    }
    if (rc == 0 && !bound && fw->cb.bind && (rc = fw->cb.bind(fw->cb.arg, pod, node)) != 0)
        snprintf(msg, len, "binding to node %s failed: %s", fw->snap->nodes[node].name,
                 corral_strerror(rc));
    if (rc != 0) {
        unreserve_placed(fw, pod);
        return rc;
    }
    pod->state = CORRAL_POD_BOUND;
    for (uint32_t i = 0; i < fp->n_at[CORRAL_POINT_POST_BIND]; i++) {
        struct corral_fw_plugin *inst = fp->plugins[fp->at[CORRAL_POINT_POST_BIND][i]];
        inst->p->post_bind(inst->state, pod, node);
    }
    return 0;
}

int corral_fw_permit_allow(struct corral_framework *fw, struct corral_pod *pod, const char *plugin)
{
    if (pod->state != CORRAL_POD_WAITING || pod->profile < 0)
        return -EINVAL;
    struct corral_fw_profile *fp = &fw->profiles[pod->profile];
    for (uint32_t i = 0; i < fp->n_at[CORRAL_POINT_PERMIT]; i++)
        if (strcmp(fp->plugins[fp->at[CORRAL_POINT_PERMIT][i]]->name, plugin) == 0)
            pod->permit_pending &= ~(1ull << i);
    fw->waiting_dirty = true;
    return 0;
}

int corral_fw_permit_reject(struct corral_framework *fw, struct corral_pod *pod, const char *msg)
{
    if (pod->state != CORRAL_POD_WAITING)
        return -EINVAL;
    corral_pod_set_message(pod, msg ? msg : "rejected while waiting in Permit");
    pod->permit_deadline_ms = 0; /* expires at the next pass */
    pod->permit_pending |= 1ull << 63;
    fw->waiting_dirty = true;
    return 0;
}

static int finish_waiting(struct corral_framework *fw, struct corral_pod *pod, bool expire)
{
    char msg[1024] = "";
    bool rejected = (pod->permit_pending >> 63) != 0;
    if (pod->permit_pending && !rejected && !expire)
        return 0;
    waiting_remove(fw, pod);
    if (rejected || pod->permit_pending) {
        snprintf(msg, sizeof(msg), "%s", rejected && pod->message
                                             ? pod->message
                                             : "timed out waiting in Permit");
        unreserve_placed(fw, pod);
        fail_pod(fw, pod, msg);
        return 1;
    }
    if (bind_pod(fw, pod, msg, sizeof(msg)) == 0)
        fw->stats.bound++;
    else
        fail_pod(fw, pod, msg);
    return 1;
}

int corral_fw_process_waiting(struct corral_framework *fw, bool expire_all)
{
    int done = 0;
    bool again = true;
    while (again) {
        again = false;
        fw->waiting_dirty = false;
        uint64_t now = corral_fw_now_ms(fw);
        for (uint32_t i = 0; i < fw->n_waiting; i++) {
            struct corral_pod *pod = fw->waiting[i];
            bool expire = expire_all || now >= pod->permit_deadline_ms;
            if (finish_waiting(fw, pod, expire)) {
                done++;
                again = true;
                break; /* the list changed; unreserve may have rejected others */
            }
        }
        again |= fw->waiting_dirty;
    }
    return done;
}

int corral_fw_preempt(struct corral_framework *fw, uint32_t node,
                      struct corral_pod *const *victims, uint32_t n)
{
    if (!fw->cy.in_post_filter)
        return -EPERM;
    for (uint32_t i = 0; i < n; i++)
        if (victims[i]->node != node || victims[i]->state != CORRAL_POD_BOUND)
            return -EINVAL;
    for (uint32_t i = 0; i < n; i++) {
        struct corral_pod *v = victims[i];
        corral_snapshot_unplace(fw->snap, v);
        v->state = CORRAL_POD_FAILED;
        char msg[512];
        snprintf(msg, sizeof(msg), "preempted by %s/%s on node %s", fw->cy.pod->ns,
                 fw->cy.pod->name, fw->snap->nodes[node].name);
        corral_pod_set_message(v, msg);
        if (fw->cb.evicted)
            fw->cb.evicted(fw->cb.arg, v, fw->cy.pod);
    }
    fw->cy.pod->nominated = node;
    return 0;
}
