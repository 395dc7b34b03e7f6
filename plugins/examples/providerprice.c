/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ProviderPrice: an example of a third-party corral scheduler plugin, built against the
 * installed <corral/plugin.h> only (see README.md in this directory).
 *
 * Providers label their machines with what a GPU-hour costs (example.com/gpu-hour-price, in
 * thousandths of a currency unit) and who they are (corral.io/provider). This plugin:
 *  - Filter: refuses nodes of providers listed in args.blockedProviders, and nodes whose price
 *    is above args.maxPrice (when set);
 *  - Score: prefers cheaper nodes (a node without a price label scores as the most expensive).
 */
#include <corral/plugin.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PRICE_LABEL "example.com/gpu-hour-price"
#define PROVIDER_LABEL "corral.io/provider"
#define MAX_BLOCKED 32

enum { R_BLOCKED = 1, R_TOO_EXPENSIVE = 2 };

struct state {
    const struct corral_host *h;
    char blocked[MAX_BLOCKED][64];
    int n_blocked;
    long long max_price; /* -1: no limit */
    long long ceiling;   /* price that scores 0 */
};

static int init(const struct corral_host *h, const struct corral_value *args, void **out,
                char *err, size_t errlen)
{
    struct state *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    st->h = h;
    st->max_price = -1;
    st->ceiling = 100000;
    const struct corral_value *list = h->value_get(args, "blockedProviders");
    for (size_t i = 0; i < h->value_size(list); i++) {
        const char *p = h->value_string(h->value_at(list, i));
        if (!p || i >= MAX_BLOCKED) {
            snprintf(err, errlen, "blockedProviders: at most %d provider names", MAX_BLOCKED);
            free(st);
            return -EINVAL;
        }
        snprintf(st->blocked[st->n_blocked++], sizeof(st->blocked[0]), "%s", p);
    }
    const struct corral_value *max = h->value_get(args, "maxPrice");
    if (max) {
        if (h->value_type(max) != CORRAL_VALUE_INTEGER || h->value_integer(max) < 0) {
            snprintf(err, errlen, "maxPrice: must be a non-negative integer");
            free(st);
            return -EINVAL;
        }
        st->max_price = h->value_integer(max);
    }
    *out = st;
    return 0;
}

static void fini(void *s)
{
    free(s);
}

static long long price_of(struct state *st, uint32_t node)
{
    const char *v = st->h->node_label(st->h, node, PRICE_LABEL);
    char *end;
    long long p = v ? strtoll(v, &end, 10) : -1;
    return v && *end == '\0' && p >= 0 ? p : -1;
}

static int filter(void *s, const struct corral_pod *pod, uint32_t node)
{
    struct state *st = s;
    (void)pod;
    const char *provider = st->h->node_label(st->h, node, PROVIDER_LABEL);
    for (int i = 0; provider && i < st->n_blocked; i++)
        if (strcmp(provider, st->blocked[i]) == 0)
            return CORRAL_REJECT_UNRESOLVABLE(R_BLOCKED);
    long long p = price_of(st, node);
    if (st->max_price >= 0 && (p < 0 || p > st->max_price))
        return CORRAL_REJECT_UNRESOLVABLE(R_TOO_EXPENSIVE);
    return CORRAL_OK;
}

static int64_t score(void *s, const struct corral_pod *pod, uint32_t node)
{
    struct state *st = s;
    (void)pod;
    long long p = price_of(st, node);
    if (p < 0 || p >= st->ceiling)
        return 0;
    return (int64_t)((st->ceiling - p) * CORRAL_MAX_NODE_SCORE / st->ceiling);
}

static int reason(void *s, const struct corral_pod *pod, int code, char *buf, size_t len)
{
    struct state *st = s;
    (void)pod;
    if (code == R_BLOCKED)
        return snprintf(buf, len, "node(s) belong to a blocked provider");
    return snprintf(buf, len, "node(s) cost more than %lld per GPU-hour", st->max_price);
}

static const struct corral_plugin plugin = {
    .abi_version = CORRAL_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(struct corral_plugin),
    .name = "ProviderPrice",
    .description = "example: skip blocked or expensive providers, prefer cheap GPUs",
    .flags = CORRAL_PLUGIN_NODE_LOCAL | CORRAL_PLUGIN_NODE_CLASS, /* reads labels only */
    .init = init,
    .fini = fini,
    .filter = filter,
    .score = score,
    .reason = reason,
};

CORRAL_PLUGIN_EXPORT const struct corral_plugin *corral_plugin_entry(void)
{
    return &plugin;
}
