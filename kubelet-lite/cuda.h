/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cuda: GPUs as the CUDA driver API (libcuda.so.1) sees them, opened with dlopen so that
 * nothing about CUDA is needed to build or run corral. Used on live machines when NVML is not
 * there; a machine without the driver simply reports no GPUs from this probe.
 */
#ifndef CORRAL_KUBELET_CUDA_H
#define CORRAL_KUBELET_CUDA_H

#include "topology.h"

#include <stddef.h>

/*
 * Opens libcuda.so.1 (or the library named by CORRAL_LIBCUDA), initialises the driver and
 * describes every device: PCI address, name, memory, UUID, compute capability. NVLink is not
 * visible through this API. Returns 0 with *out (caller frees, may be NULL when *n is 0), or
 * -ENOENT when the library is absent, -EIO when the driver fails, with the reason in why.
 */
int corral_cuda_probe(struct corral_gpu_probe **out, size_t *n, char *why, size_t whylen);

/* Formats 16 raw UUID bytes as NVIDIA does ("GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"). */
void corral_cuda_format_uuid(const unsigned char bytes[16], char out[41]);

#endif
