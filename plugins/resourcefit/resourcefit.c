/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ResourceFit: does the pod fit the node's free resources? cpu, memory, ephemeral-storage,
 * pod count, extended resources, host ports, and GPUs: `nvidia.com/gpu` needs that many wholly
 * free GPUs among those the pod may use (Filter plugins before this one may have narrowed the
 * set), a `corral.io/gpu-milli` share needs one such GPU with that much left.
 *
 * Reserve picks the GPUs when no earlier Reserve plugin did (a topology or fragmentation
 * plugin usually does): args.gpuSelection is bestFit (default: the GPU that is left with the
 * least free share; whole GPUs by index), firstFit, or random.
 */
#include "corral/plugin.h"
#include "gpuutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum reason {
    R_PODS = 1,
    R_CPU,
    R_MEMORY,
    R_EPHEMERAL,
    R_GPU,
    R_GPU_SHARE,
    R_PORTS,
    R_EXT_BASE = 16, /* + index of the pod's extended resource */
};

enum selection { SEL_BEST_FIT, SEL_FIRST_FIT, SEL_RANDOM };

#define MAX_PORTS 32

struct port {
    int64_t port;
    char proto[8];
    char ip[48];
};

struct state {
    const struct corral_host *h;
    enum selection sel;
    /* per cycle */
    int64_t cpu, mem, eph;
    int gpus;
    int32_t milli;
    struct port ports[MAX_PORTS];
    int n_ports;
};

static int init(const struct corral_host *h, const struct corral_value *args, void **out,
                char *err, size_t errlen)
{
    struct state *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    st->h = h;
    const char *sel = h->value_string(h->value_get(args, "gpuSelection"));
    if (!sel || strcmp(sel, "bestFit") == 0)
        st->sel = SEL_BEST_FIT;
    else if (strcmp(sel, "firstFit") == 0)
        st->sel = SEL_FIRST_FIT;
    else if (strcmp(sel, "random") == 0)
        st->sel = SEL_RANDOM;
    else {
        snprintf(err, errlen, "gpuSelection: \"%s\" is not bestFit, firstFit or random", sel);
        free(st);
        return -EINVAL;
    }
    *out = st;
    return 0;
}

static void fini(void *s)
{
    free(s);
}

/* Collects the pod's host ports (containers[].ports[].hostPort). */
static int read_ports(const struct corral_host *h, const struct corral_pod *pod,
                      struct port *out, int max)
{
    const struct corral_value *cs = h->value_path(h->pod_object(h, pod), "spec.containers");
    int n = 0;
    for (size_t i = 0; i < h->value_size(cs); i++) {
        const struct corral_value *ports = h->value_get(h->value_at(cs, i), "ports");
        for (size_t j = 0; j < h->value_size(ports) && n < max; j++) {
            const struct corral_value *p = h->value_at(ports, j);
            int64_t hp = h->value_integer(h->value_get(p, "hostPort"));
            if (hp <= 0)
                continue;
            const char *proto = h->value_string(h->value_get(p, "protocol"));
            const char *ip = h->value_string(h->value_get(p, "hostIP"));
            out[n].port = hp;
            snprintf(out[n].proto, sizeof(out[n].proto), "%s", proto ? proto : "TCP");
            snprintf(out[n].ip, sizeof(out[n].ip), "%s", ip ? ip : "0.0.0.0");
            n++;
        }
    }
    return n;
}

static int pre_filter(void *s, const struct corral_pod *pod)
{
    struct state *st = s;
    const struct corral_host *h = st->h;
    st->cpu = h->pod_request(h, pod, CORRAL_RES_CPU);
    st->mem = h->pod_request(h, pod, CORRAL_RES_MEMORY);
    st->eph = h->pod_request(h, pod, CORRAL_RES_EPHEMERAL);
    gu_pod_gpu(h, pod, &st->gpus, &st->milli);
    st->n_ports = read_ports(h, pod, st->ports, MAX_PORTS);
    return CORRAL_OK;
}

static bool ports_conflict(const struct port *a, const struct port *b)
{
    if (a->port != b->port || strcmp(a->proto, b->proto) != 0)
        return false;
    return strcmp(a->ip, "0.0.0.0") == 0 || strcmp(b->ip, "0.0.0.0") == 0 ||
           strcmp(a->ip, b->ip) == 0;
}

static bool ports_free(struct state *st, uint32_t node)
{
    const struct corral_host *h = st->h;
    struct port used[MAX_PORTS];
    for (uint32_t p = 0; p < h->node_pod_count(h, node); p++) {
        int n = read_ports(h, h->node_pod(h, node, p), used, MAX_PORTS);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < st->n_ports; j++)
                if (ports_conflict(&used[i], &st->ports[j]))
                    return false;
    }
    return true;
}

static int gpu_fit(struct state *st, uint32_t node)
{
    const struct corral_host *h = st->h;
    uint64_t allowed = h->cycle_gpu_mask(h, node);
    uint32_t n = h->node_gpu_count(h, node);
    int whole = 0;
    for (uint32_t g = 0; g < n; g++) {
        if (!(allowed >> g & 1))
            continue;
        int32_t f = h->node_gpu(h, node, g)->free_milli;
        if (st->milli < 1000 && f >= st->milli)
            return CORRAL_OK;
        whole += f == 1000;
    }
    if (st->milli < 1000)
        return CORRAL_REJECT(R_GPU_SHARE);
    return whole >= st->gpus ? CORRAL_OK : CORRAL_REJECT(R_GPU);
}

static int extended_fit(struct state *st, const struct corral_pod *pod, uint32_t node)
{
    const struct corral_host *h = st->h;
    for (uint32_t i = 0; i < h->pod_extended_count(h, pod); i++) {
        const char *name;
        int64_t v;
        h->pod_extended(h, pod, i, &name, &v);
        if (h->node_requested_named(h, node, name) + v > h->node_allocatable_named(h, node, name))
            return CORRAL_REJECT(R_EXT_BASE + (int)i);
    }
    return CORRAL_OK;
}

static int filter(void *s, const struct corral_pod *pod, uint32_t node)
{
    struct state *st = s;
    const struct corral_host *h = st->h;
    if (h->node_requested(h, node, CORRAL_RES_PODS) + 1 > h->node_allocatable(h, node, CORRAL_RES_PODS))
        return CORRAL_REJECT(R_PODS);
    if (st->cpu && h->node_requested(h, node, CORRAL_RES_CPU) + st->cpu >
                       h->node_allocatable(h, node, CORRAL_RES_CPU))
        return CORRAL_REJECT(R_CPU);
    if (st->mem && h->node_requested(h, node, CORRAL_RES_MEMORY) + st->mem >
                       h->node_allocatable(h, node, CORRAL_RES_MEMORY))
        return CORRAL_REJECT(R_MEMORY);
    if (st->eph && h->node_requested(h, node, CORRAL_RES_EPHEMERAL) + st->eph >
                       h->node_allocatable(h, node, CORRAL_RES_EPHEMERAL))
        return CORRAL_REJECT(R_EPHEMERAL);
    int rc = extended_fit(st, pod, node);
    if (rc == CORRAL_OK && st->gpus)
        rc = gpu_fit(st, node);
    if (rc == CORRAL_OK && st->n_ports && !ports_free(st, node))
        rc = CORRAL_REJECT(R_PORTS);
    return rc;
}

/* Picks the pod's GPUs on node per the selection policy; 0 mask when impossible. */
static uint64_t choose(struct state *st, uint32_t node)
{
    const struct corral_host *h = st->h;
    uint64_t allowed = h->cycle_gpu_mask(h, node), fit = 0;
    uint32_t n = h->node_gpu_count(h, node);
    int best = -1, nfit = 0;
    for (uint32_t g = 0; g < n; g++) {
        int32_t f = h->node_gpu(h, node, g)->free_milli;
        if (!(allowed >> g & 1) || f < st->milli)
            continue;
        fit |= 1ull << g;
        nfit++;
        if (best < 0 || (st->sel == SEL_BEST_FIT && f < h->node_gpu(h, node, (uint32_t)best)->free_milli))
            best = (int)g;
    }
    if (st->milli < 1000) {
        if (best < 0)
            return 0;
        if (st->sel == SEL_RANDOM) {
            uint64_t k = h->random(h) % (uint64_t)nfit;
            for (uint32_t g = 0; g < n; g++)
                if ((fit >> g & 1) && k-- == 0)
                    return 1ull << g;
        }
        return 1ull << best;
    }
    uint64_t pick = 0;
    for (int k = 0; k < st->gpus && fit; k++) {
        uint64_t idx = st->sel == SEL_RANDOM ? h->random(h) % (uint64_t)gu_popcount(fit) : 0;
        uint64_t m = fit;
        while (idx--)
            m &= m - 1;
        uint64_t bit = m & -m;
        pick |= bit;
        fit &= ~bit;
    }
    return gu_popcount(pick) == st->gpus ? pick : 0;
}

static int reserve(void *s, const struct corral_pod *pod, uint32_t node)
{
    struct state *st = s;
    const struct corral_host *h = st->h;
    if (!st->gpus)
        return CORRAL_OK;
    uint64_t pick = choose(st, node);
    if (!pick)
        return CORRAL_REJECT(st->milli < 1000 ? R_GPU_SHARE : R_GPU);
    int rc = h->assign_gpus(h, pod, node, pick, st->milli);
    return rc == -EBUSY ? CORRAL_OK : rc;
}

static int reason(void *s, const struct corral_pod *pod, int code, char *buf, size_t len)
{
    struct state *st = s;
    const char *name = NULL;
    int64_t v;
    switch (code) {
    case R_PODS: return snprintf(buf, len, "Too many pods");
    case R_CPU: return snprintf(buf, len, "Insufficient cpu");
    case R_MEMORY: return snprintf(buf, len, "Insufficient memory");
    case R_EPHEMERAL: return snprintf(buf, len, "Insufficient ephemeral-storage");
    case R_GPU: return snprintf(buf, len, "Insufficient nvidia.com/gpu");
    case R_GPU_SHARE: return snprintf(buf, len, "Insufficient corral.io/gpu-milli");
    case R_PORTS:
        return snprintf(buf, len, "node(s) didn't have free ports for the requested pod ports");
    default:
        if (code >= R_EXT_BASE &&
            st->h->pod_extended(st->h, pod, (uint32_t)(code - R_EXT_BASE), &name, &v) == 0)
            return snprintf(buf, len, "Insufficient %s", name);
        return 0;
    }
}

static const struct corral_plugin plugin = {
    .abi_version = CORRAL_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(struct corral_plugin),
    .name = "ResourceFit",
    .description = "cpu, memory, pods, extended resources, host ports, whole and shared GPUs",
    .flags = CORRAL_PLUGIN_NODE_LOCAL | CORRAL_PLUGIN_NODE_CLASS,
    .init = init,
    .fini = fini,
    .pre_filter = pre_filter,
    .filter = filter,
    .reserve = reserve,
    .reason = reason,
};

CORRAL_PLUGIN_EXPORT const struct corral_plugin *corral_plugin_entry(void)
{
    return &plugin;
}
