/* SPDX-License-Identifier: Apache-2.0 */
/*
 * loader: finding and opening plugin shared objects, in the manner of Redis' moduleLoad().
 *
 * A plugin named "NodeAffinity" is looked up in the plugin directory as nodeaffinity.so,
 * nodeaffinity/nodeaffinity.so (the build tree's layout) or libnodeaffinity.so; a profile entry
 * may instead give an explicit path. The file must export corral_plugin_entry(), whose struct
 * must carry CORRAL_PLUGIN_ABI_VERSION and at least CORRAL_PLUGIN_MIN_STRUCT_SIZE bytes, and
 * the name the profile asked for. Every refusal says which file and why, e.g.
 * "/p/old.so: built for plugin ABI version 0, this corral expects version 1".
 */
#ifndef CORRAL_SCHED_LOADER_H
#define CORRAL_SCHED_LOADER_H

#include "corral/plugin.h"

#include <stddef.h>

struct corral_plugin_lib {
    void *handle; /* dlopen handle */
    char *path;
    const struct corral_plugin *plugin;
};

/*
 * Opens path and validates its plugin. Returns 0 with *out (close with corral_plugin_close),
 * or CORRAL_EABI (wrong ABI or malformed struct) / -ENOENT (cannot be opened) with a message
 * in err naming the file.
 */
int corral_plugin_open(const char *path, struct corral_plugin_lib **out, char *err, size_t errlen);

/*
 * Finds plugin name in dir (see above) and opens it; explicit_path, when not NULL, is used
 * instead. Checks that the file provides that name. Same returns as corral_plugin_open.
 */
int corral_plugin_find(const char *dir, const char *name, const char *explicit_path,
                       struct corral_plugin_lib **out, char *err, size_t errlen);

void corral_plugin_close(struct corral_plugin_lib *lib);

/*
 * The plugin directory to use when the configuration names none: $CORRAL_PLUGIN_DIR, else the
 * build tree's plugins/ when this executable runs from the build tree, else the installed
 * directory. Returns a static string.
 */
const char *corral_plugin_default_dir(void);

#endif
