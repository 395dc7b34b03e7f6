/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A stand-in libnvidia-ml.so.1 for test_kubelet_gpuprobe (loaded through CORRAL_LIBNVML): the
 * NVML entry points kubelet-lite calls, with NVML's documented types and return codes, serving
 * a fixed machine: three H100s on buses 0x1b, 0x43 and 0x52; GPUs 0 and 1 joined by two NVLink 4
 * links; GPU 2 on an NVSwitch (two links) and reporting a memory error (an unhealthy GPU).
 * Test data only: nothing of corral links it.
 */
#include <stdio.h>
#include <string.h>

#define API __attribute__((visibility("default")))

typedef int nvmlReturn_t; /* NVML_SUCCESS 0, INVALID_ARGUMENT 2, NOT_SUPPORTED 3, UNKNOWN 999 */
typedef struct fake_device *nvmlDevice_t;

typedef struct {
    char busIdLegacy[16];
    unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
    char busId[32];
} nvmlPciInfo_t;

typedef struct {
    unsigned long long total, free, used;
} nvmlMemory_t;

struct fake_device {
    unsigned bus;
    const char *uuid;
    int links;         /* active NVLinks */
    unsigned peer_bus; /* what they lead to */
    int to_switch;
    int memory_ok;
};

static struct fake_device devices[3] = {
    {0x1b, "GPU-11111111-2222-3333-4444-555555555555", 2, 0x43, 0, 1},
    {0x43, "GPU-66666666-7777-8888-9999-aaaaaaaaaaaa", 2, 0x1b, 0, 1},
    {0x52, "GPU-bbbbbbbb-cccc-dddd-eeee-ffffffffffff", 2, 0xc0, 1, 0},
};
static int initialised;

/* every entry point is declared before its definition: the build warns otherwise */
API nvmlReturn_t nvmlInit_v2(void);
API nvmlReturn_t nvmlShutdown(void);
API const char *nvmlErrorString(nvmlReturn_t r);
API nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *n);
API nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t *d);
API nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *name, unsigned int len);
API nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char *uuid, unsigned int len);
API nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m);
API nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t d, nvmlPciInfo_t *p);
API nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t d, int *major, int *minor);
API nvmlReturn_t nvmlDeviceGetNvLinkState(nvmlDevice_t d, unsigned int link, int *active);
API nvmlReturn_t nvmlDeviceGetNvLinkVersion(nvmlDevice_t d, unsigned int link,
                                            unsigned int *version);
API nvmlReturn_t nvmlDeviceGetNvLinkRemotePciInfo_v2(nvmlDevice_t d, unsigned int link,
                                                     nvmlPciInfo_t *p);
API nvmlReturn_t nvmlDeviceGetNvLinkRemoteDeviceType(nvmlDevice_t d, unsigned int link, int *type);

nvmlReturn_t nvmlInit_v2(void)
{
    initialised = 1;
    return 0;
}

nvmlReturn_t nvmlShutdown(void)
{
    initialised = 0;
    return 0;
}

const char *nvmlErrorString(nvmlReturn_t r)
{
    return r == 0 ? "Success" : "Unknown Error";
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *n)
{
    if (!initialised)
        return 1; /* NVML_ERROR_UNINITIALIZED */
    *n = 3;
    return 0;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t *d)
{
    if (i >= 3)
        return 2;
    *d = &devices[i];
    return 0;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *name, unsigned int len)
{
    (void)d;
    snprintf(name, len, "NVIDIA H100 80GB HBM3");
    return 0;
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char *uuid, unsigned int len)
{
    snprintf(uuid, len, "%s", d->uuid);
    return 0;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m)
{
    if (!d->memory_ok)
        return 999;
    m->total = 81559ULL * 1024 * 1024;
    m->free = m->total;
    m->used = 0;
    return 0;
}

static void fill_pci(nvmlPciInfo_t *p, unsigned bus, unsigned device_id)
{
    memset(p, 0, sizeof(*p));
    p->bus = bus;
    p->pciDeviceId = (device_id << 16) | 0x10de;
    snprintf(p->busIdLegacy, sizeof(p->busIdLegacy), "0000:%02X:00.0", bus);
    snprintf(p->busId, sizeof(p->busId), "00000000:%02X:00.0", bus);
}

nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t d, nvmlPciInfo_t *p)
{
    fill_pci(p, d->bus, 0x2330);
    return 0;
}

nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t d, int *major, int *minor)
{
    (void)d;
    *major = 9;
    *minor = 0;
    return 0;
}

nvmlReturn_t nvmlDeviceGetNvLinkState(nvmlDevice_t d, unsigned int link, int *active)
{
    if (link >= 18)
        return 2;
    *active = (int)link < d->links;
    return 0;
}

nvmlReturn_t nvmlDeviceGetNvLinkVersion(nvmlDevice_t d, unsigned int link, unsigned int *version)
{
    (void)d;
    (void)link;
    *version = 4;
    return 0;
}

nvmlReturn_t nvmlDeviceGetNvLinkRemotePciInfo_v2(nvmlDevice_t d, unsigned int link,
                                                 nvmlPciInfo_t *p)
{
    if ((int)link >= d->links)
        return 3;
    fill_pci(p, d->peer_bus, d->to_switch ? 0x22a3 : 0x2330);
    return 0;
}

nvmlReturn_t nvmlDeviceGetNvLinkRemoteDeviceType(nvmlDevice_t d, unsigned int link, int *type)
{
    if ((int)link >= d->links)
        return 3;
    *type = d->to_switch ? 2 : 0; /* NVML_NVLINK_DEVICE_TYPE_SWITCH : _GPU */
    return 0;
}
