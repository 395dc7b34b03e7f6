/* SPDX-License-Identifier: Apache-2.0 */
/* A plugin whose struct claims to be shorter than ABI version 1's: refused. */
#include "corral/plugin.h"

static const struct corral_plugin plugin = {
    .abi_version = CORRAL_PLUGIN_ABI_VERSION,
    .struct_size = 32,
    .name = "TestShort",
};

CORRAL_PLUGIN_EXPORT const struct corral_plugin *corral_plugin_entry(void)
{
    return &plugin;
}
