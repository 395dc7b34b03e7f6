/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A stand-in libcuda.so.1 for test_kubelet_gpuprobe (loaded through CORRAL_LIBCUDA): the CUDA
 * driver API entry points kubelet-lite calls, with the driver's types (CUresult and CUdevice
 * are ints) and attribute numbers, serving two RTX 4090s on buses 0x01 and 0x02.
 * Test data only: nothing of corral links it.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define API __attribute__((visibility("default")))

static int initialised;

API int cuInit(unsigned int flags);
API int cuDeviceGetCount(int *n);
API int cuDeviceGet(int *dev, int ordinal);
API int cuDeviceGetName(char *name, int len, int dev);
API int cuDeviceTotalMem_v2(size_t *bytes, int dev);
API int cuDeviceGetAttribute(int *v, int attr, int dev);
API int cuDeviceGetUuid_v2(unsigned char uuid[16], int dev);
API int cuGetErrorString(int r, const char **text);

int cuInit(unsigned int flags)
{
    initialised = flags == 0;
    return initialised ? 0 : 1; /* CUDA_ERROR_INVALID_VALUE */
}

int cuDeviceGetCount(int *n)
{
    if (!initialised)
        return 3; /* CUDA_ERROR_NOT_INITIALIZED */
    *n = 2;
    return 0;
}

int cuDeviceGet(int *dev, int ordinal)
{
    if (ordinal < 0 || ordinal > 1)
        return 101; /* CUDA_ERROR_INVALID_DEVICE */
    *dev = ordinal;
    return 0;
}

int cuDeviceGetName(char *name, int len, int dev)
{
    (void)dev;
    snprintf(name, (size_t)len, "NVIDIA GeForce RTX 4090");
    return 0;
}

int cuDeviceTotalMem_v2(size_t *bytes, int dev)
{
    (void)dev;
    *bytes = (size_t)24217ULL * 1024 * 1024;
    return 0;
}

int cuDeviceGetAttribute(int *v, int attr, int dev)
{
    switch (attr) {
    case 33:
        *v = dev + 1;
        return 0; /* PCI bus */
    case 34:
        *v = 0;
        return 0; /* PCI device (slot) */
    case 50:
        *v = 0;
        return 0; /* PCI domain */
    case 75:
        *v = 8;
        return 0; /* compute capability major */
    case 76:
        *v = 9;
        return 0; /* minor */
    default:
        return 1;
    }
}

int cuDeviceGetUuid_v2(unsigned char uuid[16], int dev)
{
    for (int i = 0; i < 16; i++)
        uuid[i] = (unsigned char)(0x10 * dev + i);
    return 0;
}

int cuGetErrorString(int r, const char **text)
{
    *text = r == 0 ? "no error" : "error";
    return 0;
}
