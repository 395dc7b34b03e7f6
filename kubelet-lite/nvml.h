/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nvml: GPUs as the NVIDIA Management Library (libnvidia-ml.so.1) sees them, opened with
 * dlopen so that nothing about NVIDIA is needed to build or run corral. This is the preferred
 * live source: it gives PCI address, name, UUID, memory, compute capability, health and the
 * NVLink graph (including links to NVSwitches).
 */
#ifndef CORRAL_KUBELET_NVML_H
#define CORRAL_KUBELET_NVML_H

#include "topology.h"

#include <stddef.h>

/*
 * Opens libnvidia-ml.so.1 (or the library named by CORRAL_LIBNVML), initialises NVML and
 * describes every device. Returns 0 with *out (caller frees, may be NULL when *n is 0), or
 * -ENOENT when the library is absent, -EIO when NVML fails, with the reason in why.
 */
int corral_nvml_probe(struct corral_gpu_probe **out, size_t *n, char *why, size_t whylen);

#endif
