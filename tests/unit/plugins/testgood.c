/* SPDX-License-Identifier: Apache-2.0 */
/* A well-formed test plugin: rejects nodes labelled test.corral.io/bad=true. */
#include "corral/plugin.h"

#include <stdio.h>
#include <string.h>

static int init(const struct corral_host *h, const struct corral_value *args, void **state,
                char *err, size_t errlen)
{
    (void)args;
    (void)err;
    (void)errlen;
    *state = (void *)h;
    return 0;
}

static int filter(void *st, const struct corral_pod *pod, uint32_t node)
{
    const struct corral_host *h = st;
    (void)pod;
    const char *v = h->node_label(h, node, "test.corral.io/bad");
    return v && strcmp(v, "true") == 0 ? CORRAL_REJECT(1) : CORRAL_OK;
}

static int reason(void *st, const struct corral_pod *pod, int code, char *buf, size_t len)
{
    (void)st;
    (void)pod;
    (void)code;
    return snprintf(buf, len, "node(s) were labelled bad");
}

static const struct corral_plugin plugin = {
    .abi_version = CORRAL_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(struct corral_plugin),
    .name = "TestGood",
    .flags = CORRAL_PLUGIN_NODE_LOCAL,
    .init = init,
    .filter = filter,
    .reason = reason,
};

CORRAL_PLUGIN_EXPORT const struct corral_plugin *corral_plugin_entry(void)
{
    return &plugin;
}
