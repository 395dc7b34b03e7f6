/* SPDX-License-Identifier: Apache-2.0 */
/*
 * trace: reading the node and pod lists `corral sim` replays.
 *
 * Two formats. The Alibaba cluster-trace-gpu-v2023 CSVs (../shared/alibaba-gpu-2023/NOTES.md):
 * a node row `sn,cpu_milli,memory_mib,gpu,model` becomes a Node with
 * corral.io/gpu.model = model and nvidia.com/gpu = gpu; a pod row
 * `name,cpu_milli,memory_mib,num_gpu,gpu_milli[,gpu_spec,...]` becomes a Pod asking for
 * num_gpu whole GPUs, or for corral.io/gpu-milli = gpu_milli when it shares one GPU, with
 * gpu_spec (`|`-separated) as the corral.io/gpu-models annotation (docs/gpus.md). Columns are
 * found by header name, so the 5-column multigpu files read too. Or Kubernetes objects in
 * YAML/JSON: a List/NodeList/PodList, a JSON array, or a multi-document stream; documents of
 * other kinds (e.g. PodGroup) are returned separately.
 */
#ifndef CORRAL_SCHED_TRACE_H
#define CORRAL_SCHED_TRACE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* True when path names a CSV trace (by extension, else by its header line). */
bool corral_trace_is_csv(const char *path);

/*
 * Loads Node objects from path. Returns 0 and *nodes (a new JSON array, caller owns), or
 * CORRAL_EPARSE / CORRAL_EINVALID with "file:line: field: problem" in err, or -errno.
 */
int corral_trace_load_nodes(const char *path, json_t **nodes, char *err, size_t errlen);

/*
 * Loads Pod objects (in file order) into *pods and other objects (PodGroups, ...) into
 * *others (both new arrays, caller owns). Same errors as corral_trace_load_nodes.
 */
int corral_trace_load_pods(const char *path, json_t **pods, json_t **others, char *err,
                           size_t errlen);

#endif
