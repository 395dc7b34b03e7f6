/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gpualloc: which GPUs of this node each admitted pod holds, the node agent's side of the
 * binding contract in docs/gpus.md.
 *
 * A pod bound with `corral.io/assigned-gpus` / `corral.io/assigned-gpu-uuids` gets exactly
 * those GPUs, after checking that they exist, are healthy and are not held by another pod
 * (whole GPUs are exclusive; shared pods with `corral.io/assigned-gpu-milli` may share a GPU up
 * to 1000 milli in all). A pod that asks for GPUs but was bound without an assignment (by a
 * scheduler that does not know the contract) gets free GPUs chosen here, preferring one NVLink
 * island, as the NVIDIA device plugin would at admission. Not thread-safe: the runtime loop
 * owns the pool.
 */
#ifndef CORRAL_KUBELET_GPUALLOC_H
#define CORRAL_KUBELET_GPUALLOC_H

#include "topology.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define CORRAL_GPU_MAX 64

struct corral_gpu_pool {
    const struct corral_topology *topo; /* borrowed */
    struct {
        char owner[64]; /* uid of the pod holding it whole, "" when free */
        int milli_used; /* shared pods' total */
    } gpu[CORRAL_GPU_MAX];
    size_t n;
};

struct corral_gpu_assignment {
    int idx[CORRAL_GPU_MAX]; /* GPU indices, in the order the binding listed them */
    int n;
    int milli; /* > 0: a share of idx[0]; 0: whole GPUs */
};

void corral_gpu_pool_init(struct corral_gpu_pool *pool, const struct corral_topology *topo);

/*
 * The GPUs a pod's containers ask for: the sum of app containers' nvidia.com/gpu limits (or
 * the largest init container's, if larger) in *whole, corral.io/gpu-milli in *milli.
 * Returns 0 or -EINVAL with err for a malformed or contradictory request.
 */
int corral_gpu_request(const json_t *pod, int *whole, int *milli, char *err, size_t errlen);

/*
 * Admits pod (uid) into the pool: validates its assignment or chooses one. Returns 0 and
 * fills *out (n == 0 when the pod uses no GPU), or -EBUSY / -EINVAL / -ENOENT with a message in
 * err suitable for an UnexpectedAdmissionError. The caller keeps *out to release it later.
 */
int corral_gpu_admit(struct corral_gpu_pool *pool, const char *uid, const json_t *pod,
                     struct corral_gpu_assignment *out, char *err, size_t errlen);

/* Releases what uid holds (a no-op when it holds nothing). milli is what it was admitted with. */
void corral_gpu_release(struct corral_gpu_pool *pool, const char *uid,
                        const struct corral_gpu_assignment *a);

/*
 * The CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES value for GPUs idx[0..n): their UUIDs when
 * every GPU of the node has one, else their indices. Writes into out (len bytes).
 */
void corral_gpu_visible(const struct corral_topology *topo, const int *idx, int n, char *out,
                        size_t len);

#endif
