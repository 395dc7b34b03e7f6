/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Random: the published Random policy's score (NOTES.md §3), which picks one feasible node
 * uniformly at random: every feasible node gets a random score in [0, CORRAL_MAX_NODE_SCORE]
 * each cycle (ties, rare, go to the framework's tie-break). Combined with ResourceFit's random
 * GPU choice this is the published baseline. Not node-local: scores change every cycle.
 */
#include "corral/plugin.h"

#include <errno.h>
#include <stdlib.h>

static int init(const struct corral_host *h, const struct corral_value *args, void **out,
                char *err, size_t errlen)
{
    (void)args;
    (void)err;
    (void)errlen;
    *out = (void *)h;
    return 0;
}

static int64_t score(void *s, const struct corral_pod *pod, uint32_t node)
{
    const struct corral_host *h = s;
    (void)pod;
    (void)node;
    return (int64_t)(h->random(h) % (CORRAL_MAX_NODE_SCORE + 1));
}

static const struct corral_plugin plugin = {
    .abi_version = CORRAL_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(struct corral_plugin),
    .name = "Random",
    .description = "published Random: a random score per node and cycle",
    .init = init,
    .score = score,
};

CORRAL_PLUGIN_EXPORT const struct corral_plugin *corral_plugin_entry(void)
{
    return &plugin;
}
