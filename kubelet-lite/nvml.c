/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nvml: the NVML probe (see nvml.h).
 *
 * The types below mirror the parts of nvml.h we use; their layout has been stable since the
 * _v2/_v3 entry points named here were introduced (NVML 7.5 / 11.0), and the library is opened
 * with dlopen, so no NVIDIA header or library is needed at build time. NVLink bandwidth is
 * counted as hwloc does (20000 MB/s per NVLink 1 link, 25000 for NVLink 2-4, 50000 for
 * NVLink 5), so that live nodes and hwloc exports publish comparable numbers.
 */
#include "nvml.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void *nvml_device;

struct nvml_pci_info { /* nvmlPciInfo_t (v3) */
    char bus_id_legacy[16];
    unsigned int domain;
    unsigned int bus;
    unsigned int device;
    unsigned int pci_device_id; /* device id << 16 | vendor id */
    unsigned int pci_subsystem_id;
    char bus_id[32];
};

struct nvml_memory { /* nvmlMemory_t */
    unsigned long long total, free, used;
};

enum { NVML_OK = 0, NVML_ENABLED = 1, NVML_LINK_TO_SWITCH = 2 };

struct nvml_api {
    void *lib;
    int (*init)(void);
    int (*shutdown)(void);
    const char *(*error_string)(int result);
    int (*get_count)(unsigned int *count);
    int (*get_handle)(unsigned int index, nvml_device *dev);
    int (*get_name)(nvml_device dev, char *name, unsigned int len);
    int (*get_uuid)(nvml_device dev, char *uuid, unsigned int len);
    int (*get_memory)(nvml_device dev, struct nvml_memory *mem);
    int (*get_pci)(nvml_device dev, struct nvml_pci_info *pci);
    int (*get_cc)(nvml_device dev, int *major, int *minor);
    int (*link_state)(nvml_device dev, unsigned int link, int *active);
    int (*link_version)(nvml_device dev, unsigned int link, unsigned int *version);
    int (*link_remote_pci)(nvml_device dev, unsigned int link, struct nvml_pci_info *pci);
    int (*link_remote_type)(nvml_device dev, unsigned int link, int *type);
};

#define LOAD(field, name) (*(void **)&api->field = dlsym(api->lib, name))

static int open_api(struct nvml_api *api, char *why, size_t whylen)
{
    const char *path = getenv("CORRAL_LIBNVML");
    memset(api, 0, sizeof(*api));
    api->lib = dlopen(path && *path ? path : "libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!api->lib) {
        snprintf(why, whylen, "%s", dlerror());
        return -ENOENT;
    }
    LOAD(init, "nvmlInit_v2");
    LOAD(shutdown, "nvmlShutdown");
    LOAD(error_string, "nvmlErrorString");
    LOAD(get_count, "nvmlDeviceGetCount_v2");
    LOAD(get_handle, "nvmlDeviceGetHandleByIndex_v2");
    LOAD(get_name, "nvmlDeviceGetName");
    LOAD(get_uuid, "nvmlDeviceGetUUID");
    LOAD(get_memory, "nvmlDeviceGetMemoryInfo");
    LOAD(get_pci, "nvmlDeviceGetPciInfo_v3");
    LOAD(get_cc, "nvmlDeviceGetCudaComputeCapability");
    LOAD(link_state, "nvmlDeviceGetNvLinkState");
    LOAD(link_version, "nvmlDeviceGetNvLinkVersion");
    LOAD(link_remote_pci, "nvmlDeviceGetNvLinkRemotePciInfo_v2");
    LOAD(link_remote_type, "nvmlDeviceGetNvLinkRemoteDeviceType");
    if (!api->init || !api->shutdown || !api->get_count || !api->get_handle || !api->get_pci) {
        snprintf(why, whylen, "libnvidia-ml.so.1 lacks the NVML entry points corral needs");
        dlclose(api->lib);
        return -ENOENT;
    }
    return 0;
}

static const char *nvml_error(const struct nvml_api *api, int rc)
{
    const char *s = api->error_string ? api->error_string(rc) : NULL;
    return s ? s : "NVML error";
}

static uint64_t link_bandwidth(const struct nvml_api *api, nvml_device dev, unsigned int link)
{
    unsigned int version = 0;
    if (!api->link_version || api->link_version(dev, link, &version) != NVML_OK)
        return 25000;
    return version <= 1 ? 20000 : version >= 5 ? 50000 : 25000;
}

static void parse_bus(const struct nvml_pci_info *pci, unsigned *dom, unsigned *bus, unsigned *dev,
                      unsigned *fn)
{
    *dom = pci->domain;
    *bus = pci->bus;
    *dev = pci->device;
    *fn = 0;
    unsigned d, b, s, f;
    if (sscanf(pci->bus_id, "%x:%x:%x.%x", &d, &b, &s, &f) == 4)
        *fn = f;
}

static void describe_links(const struct nvml_api *api, nvml_device dev, struct corral_gpu_probe *p)
{
    if (!api->link_state || !api->link_remote_pci)
        return;
    for (unsigned l = 0; l < CORRAL_PROBE_MAX_LINKS; l++) {
        int active = 0;
        struct nvml_pci_info remote;
        if (api->link_state(dev, l, &active) != NVML_OK || active != NVML_ENABLED)
            continue;
        if (api->link_remote_pci(dev, l, &remote) != NVML_OK)
            continue;
        int type = -1;
        bool to_switch = false;
        if (api->link_remote_type && api->link_remote_type(dev, l, &type) == NVML_OK)
            to_switch = type == NVML_LINK_TO_SWITCH;
        else
            to_switch = (remote.pci_device_id & 0xffff) == 0x10de &&
                        (remote.pci_device_id >> 16) == 0x1ac2; /* NVSwitch */
        unsigned i = p->nlinks++;
        parse_bus(&remote, &p->links[i].domain, &p->links[i].bus, &p->links[i].dev,
                  &p->links[i].func);
        p->links[i].to_switch = to_switch;
        p->links[i].bandwidth_mbps = link_bandwidth(api, dev, l);
    }
}

static void describe(const struct nvml_api *api, nvml_device dev, struct corral_gpu_probe *p)
{
    struct nvml_pci_info pci;
    struct nvml_memory mem;
    memset(p, 0, sizeof(*p));
    p->cc_major = p->cc_minor = -1;
    p->healthy = api->get_pci(dev, &pci) == NVML_OK;
    if (p->healthy) {
        parse_bus(&pci, &p->domain, &p->bus, &p->dev, &p->func);
        p->device_id = (uint16_t)(pci.pci_device_id >> 16);
    }
    if (api->get_name && api->get_name(dev, p->name, sizeof(p->name)) != NVML_OK)
        p->name[0] = '\0';
    if (api->get_uuid && api->get_uuid(dev, p->uuid, sizeof(p->uuid)) != NVML_OK)
        p->uuid[0] = '\0';
    if (api->get_memory && api->get_memory(dev, &mem) == NVML_OK)
        p->memory_mib = mem.total / (1024 * 1024);
    else
        p->healthy = false;
    if (api->get_cc && api->get_cc(dev, &p->cc_major, &p->cc_minor) != NVML_OK)
        p->cc_major = p->cc_minor = -1;
    describe_links(api, dev, p);
}

int corral_nvml_probe(struct corral_gpu_probe **out, size_t *n, char *why, size_t whylen)
{
    struct nvml_api api;
    *out = NULL;
    *n = 0;
    int rc = open_api(&api, why, whylen);
    if (rc < 0)
        return rc;
    unsigned int count = 0;
    int nr = api.init();
    if (nr != NVML_OK) {
        snprintf(why, whylen, "nvmlInit: %s (%d)", nvml_error(&api, nr), nr);
        rc = -EIO;
        goto err_close;
    }
    nr = api.get_count(&count);
    if (nr != NVML_OK) {
        snprintf(why, whylen, "nvmlDeviceGetCount: %s (%d)", nvml_error(&api, nr), nr);
        rc = -EIO;
        goto err_shutdown;
    }
    struct corral_gpu_probe *p = calloc(count ? count : 1, sizeof(*p));
    if (!p) {
        rc = -ENOMEM;
        goto err_shutdown;
    }
    for (unsigned int i = 0; i < count; i++) {
        nvml_device dev;
        if (api.get_handle(i, &dev) != NVML_OK)
            continue; /* lost GPU: hwloc still lists it, NVML cannot speak for it */
        describe(&api, dev, &p[(*n)++]);
    }
    *out = p;
    rc = 0;

err_shutdown:
    api.shutdown();
err_close:
    dlclose(api.lib);
    return rc;
}
