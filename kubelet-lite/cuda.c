/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cuda: the CUDA driver API probe (see cuda.h).
 *
 * Only the handful of driver entry points we call are declared here, with the ABI the CUDA
 * driver has kept since CUDA 4 (CUresult and CUdevice are ints, cuDeviceTotalMem_v2 takes a
 * size_t). When the CUDA headers happen to be installed the build checks our attribute numbers
 * against them; they are never required.
 */
#include "cuda.h"

#include "corral-config.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef CORRAL_HAVE_CUDA_H
/* By path: this directory's own cuda.h would shadow <cuda.h>. meson found it exactly here. */
#include "/usr/local/cuda/include/cuda.h"
_Static_assert(CU_DEVICE_ATTRIBUTE_PCI_BUS_ID == 33, "CUDA attribute numbering");
_Static_assert(CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID == 34, "CUDA attribute numbering");
_Static_assert(CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID == 50, "CUDA attribute numbering");
_Static_assert(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR == 75, "CUDA attribute numbering");
_Static_assert(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR == 76, "CUDA attribute numbering");
_Static_assert(sizeof(CUuuid) == 16, "CUuuid layout");
#endif

enum {
    ATTR_PCI_BUS = 33,
    ATTR_PCI_SLOT = 34,
    ATTR_PCI_DOMAIN = 50,
    ATTR_CC_MAJOR = 75,
    ATTR_CC_MINOR = 76,
};

struct cuda_api {
    void *lib;
    int (*init)(unsigned int flags);
    int (*get_count)(int *count);
    int (*get)(int *dev, int ordinal);
    int (*get_name)(char *name, int len, int dev);
    int (*total_mem)(size_t *bytes, int dev);
    int (*get_attribute)(int *value, int attribute, int dev);
    int (*get_uuid)(unsigned char uuid[16], int dev);
    int (*error_string)(int result, const char **text);
};

void corral_cuda_format_uuid(const unsigned char b[16], char out[41])
{
    snprintf(out, 41, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

static void *sym(void *lib, const char *name, const char *fallback)
{
    void *p = dlsym(lib, name);
    return p || !fallback ? p : dlsym(lib, fallback);
}

static int open_api(struct cuda_api *api, char *why, size_t whylen)
{
    const char *path = getenv("CORRAL_LIBCUDA");
    api->lib = dlopen(path && *path ? path : "libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!api->lib) {
        snprintf(why, whylen, "%s", dlerror());
        return -ENOENT;
    }
    *(void **)&api->init = sym(api->lib, "cuInit", NULL);
    *(void **)&api->get_count = sym(api->lib, "cuDeviceGetCount", NULL);
    *(void **)&api->get = sym(api->lib, "cuDeviceGet", NULL);
    *(void **)&api->get_name = sym(api->lib, "cuDeviceGetName", NULL);
    *(void **)&api->total_mem = sym(api->lib, "cuDeviceTotalMem_v2", NULL);
    *(void **)&api->get_attribute = sym(api->lib, "cuDeviceGetAttribute", NULL);
    *(void **)&api->get_uuid = sym(api->lib, "cuDeviceGetUuid_v2", "cuDeviceGetUuid");
    *(void **)&api->error_string = sym(api->lib, "cuGetErrorString", NULL);
    if (!api->init || !api->get_count || !api->get || !api->get_name || !api->get_attribute) {
        snprintf(why, whylen, "libcuda.so.1 lacks the driver API entry points");
        dlclose(api->lib);
        return -ENOENT;
    }
    return 0;
}

static const char *cu_error(const struct cuda_api *api, int rc)
{
    const char *text = NULL;
    if (api->error_string && api->error_string(rc, &text) == 0 && text)
        return text;
    return "CUDA driver error";
}

static void describe(const struct cuda_api *api, int dev, struct corral_gpu_probe *p)
{
    int v = 0;
    memset(p, 0, sizeof(*p));
    p->cc_major = p->cc_minor = -1;
    p->healthy = true;
    if (api->get_name(p->name, (int)sizeof(p->name), dev) != 0) {
        p->name[0] = '\0';
        p->healthy = false;
    }
    size_t bytes = 0;
    if (api->total_mem && api->total_mem(&bytes, dev) == 0)
        p->memory_mib = bytes / (1024 * 1024);
    if (api->get_attribute(&v, ATTR_PCI_DOMAIN, dev) == 0)
        p->domain = (unsigned)v;
    if (api->get_attribute(&v, ATTR_PCI_BUS, dev) == 0)
        p->bus = (unsigned)v;
    if (api->get_attribute(&v, ATTR_PCI_SLOT, dev) == 0)
        p->dev = (unsigned)v;
    if (api->get_attribute(&v, ATTR_CC_MAJOR, dev) == 0)
        p->cc_major = v;
    if (api->get_attribute(&v, ATTR_CC_MINOR, dev) == 0)
        p->cc_minor = v;
    unsigned char uuid[16];
    if (api->get_uuid && api->get_uuid(uuid, dev) == 0)
        corral_cuda_format_uuid(uuid, p->uuid);
}

int corral_cuda_probe(struct corral_gpu_probe **out, size_t *n, char *why, size_t whylen)
{
    struct cuda_api api;
    *out = NULL;
    *n = 0;
    int rc = open_api(&api, why, whylen);
    if (rc < 0)
        return rc;
    int count = 0;
    int cr = api.init(0);
    if (cr == 0)
        cr = api.get_count(&count);
    if (cr != 0) {
        snprintf(why, whylen, "cuInit: %s (%d)", cu_error(&api, cr), cr);
        rc = -EIO;
        goto err_close;
    }
    struct corral_gpu_probe *p = calloc(count > 0 ? (size_t)count : 1, sizeof(*p));
    if (!p) {
        rc = -ENOMEM;
        goto err_close;
    }
    for (int i = 0; i < count; i++) {
        int dev = 0;
        if (api.get(&dev, i) != 0)
            continue;
        describe(&api, dev, &p[*n]);
        (*n)++;
    }
    *out = p;
    /* The driver stays loaded: unloading libcuda after cuInit() is not supported. */
    return 0;

err_close:
    dlclose(api.lib);
    return rc;
}
