/* SPDX-License-Identifier: Apache-2.0 */
/* loader: see loader.h. */
#include "loader.h"

#include "corral-config.h"
#include "error.h"

#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int validate(const struct corral_plugin *p, const char *path, char *err, size_t errlen)
{
    if (!p) {
        snprintf(err, errlen, "%s: corral_plugin_entry() returned NULL", path);
        return CORRAL_EABI;
    }
    if (p->abi_version != CORRAL_PLUGIN_ABI_VERSION) {
        snprintf(err, errlen,
                 "%s: built for plugin ABI version %u, this corral expects version %u", path,
                 p->abi_version, CORRAL_PLUGIN_ABI_VERSION);
        return CORRAL_EABI;
    }
    if (p->struct_size < CORRAL_PLUGIN_MIN_STRUCT_SIZE) {
        snprintf(err, errlen, "%s: plugin struct is %u bytes, at least %zu expected (ABI %u)",
                 path, p->struct_size, (size_t)CORRAL_PLUGIN_MIN_STRUCT_SIZE,
                 CORRAL_PLUGIN_ABI_VERSION);
        return CORRAL_EABI;
    }
    if (!p->name || !*p->name) {
        snprintf(err, errlen, "%s: plugin has no name", path);
        return CORRAL_EABI;
    }
    return 0;
}

int corral_plugin_open(const char *path, struct corral_plugin_lib **out, char *err, size_t errlen)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(err, errlen, "%s: cannot load plugin: %s", path, dlerror());
        return -ENOENT;
    }
    corral_plugin_entry_fn entry;
    *(void **)&entry = dlsym(h, CORRAL_PLUGIN_ENTRY_SYMBOL);
    if (!entry) {
        snprintf(err, errlen, "%s: not a corral plugin (no %s symbol)", path,
                 CORRAL_PLUGIN_ENTRY_SYMBOL);
        dlclose(h);
        return CORRAL_EABI;
    }
    const struct corral_plugin *p = entry();
    int rc = validate(p, path, err, errlen);
    struct corral_plugin_lib *lib = rc == 0 ? calloc(1, sizeof(*lib)) : NULL;
    if (rc == 0 && (!lib || !(lib->path = strdup(path))))
        rc = -ENOMEM;
    if (rc < 0) {
        free(lib);
        dlclose(h);
        return rc;
    }
    lib->handle = h;
    lib->plugin = p;
    *out = lib;
    return 0;
}

static void file_stem(const char *name, char *out, size_t len)
{
    size_t j = 0;
    for (const char *c = name; *c && j + 1 < len; c++)
        if (isalnum((unsigned char)*c))
            out[j++] = (char)tolower((unsigned char)*c);
    out[j] = '\0';
}

static int locate(const char *dir, const char *name, char *path, size_t len)
{
    char stem[128];
    file_stem(name, stem, sizeof(stem));
    const char *const layouts[] = {"%s/%s.so", "%s/%s/%s.so", "%s/lib%s.so"};
    for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++) {
        if (i == 1)
            snprintf(path, len, layouts[i], dir, stem, stem);
        else
            snprintf(path, len, layouts[i], dir, stem);
        if (access(path, R_OK) == 0)
            return 0;
    }
    return -ENOENT;
}

int corral_plugin_find(const char *dir, const char *name, const char *explicit_path,
                       struct corral_plugin_lib **out, char *err, size_t errlen)
{
    char path[PATH_MAX];
    if (explicit_path) {
        snprintf(path, sizeof(path), "%s", explicit_path);
    } else if (locate(dir, name, path, sizeof(path)) < 0) {
        char stem[128];
        file_stem(name, stem, sizeof(stem));
        snprintf(err, errlen, "plugin %s not found in %s (looked for %s.so)", name, dir, stem);
        return -ENOENT;
    }
    struct corral_plugin_lib *lib;
    int rc = corral_plugin_open(path, &lib, err, errlen);
    if (rc < 0)
        return rc;
    if (strcmp(lib->plugin->name, name) != 0) {
        snprintf(err, errlen, "%s: provides plugin %s, not %s", path, lib->plugin->name, name);
        corral_plugin_close(lib);
        return CORRAL_EABI;
    }
    *out = lib;
    return 0;
}

void corral_plugin_close(struct corral_plugin_lib *lib)
{
    if (!lib)
        return;
    dlclose(lib->handle);
    free(lib->path);
    free(lib);
}

const char *corral_plugin_default_dir(void)
{
    const char *env = getenv("CORRAL_PLUGIN_DIR");
    if (env && *env)
        return env;
    static char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    size_t blen = strlen(CORRAL_BUILD_DIR);
    if (n > 0) {
        exe[n] = '\0';
        if (strncmp(exe, CORRAL_BUILD_DIR, blen) == 0 && exe[blen] == '/')
            return CORRAL_PLUGIN_BUILD_DIR;
    }
    return CORRAL_PLUGIN_INSTALL_DIR;
}
