/* SPDX-License-Identifier: Apache-2.0 */
/* A plugin built for a future ABI: the loader must refuse it. */
#include "corral/plugin.h"

static const struct corral_plugin plugin = {
    .abi_version = 999,
    .struct_size = sizeof(struct corral_plugin),
    .name = "TestBadAbi",
};

CORRAL_PLUGIN_EXPORT const struct corral_plugin *corral_plugin_entry(void)
{
    return &plugin;
}
