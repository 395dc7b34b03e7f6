/* SPDX-License-Identifier: Apache-2.0 */
/*
 * topology: what the node agent knows about its machine: CPUs, NUMA nodes, memory and the
 * NVIDIA GPUs with their locality and NVLink islands.
 *
 * The source is either the live machine (hwloc with every I/O object kept, enriched by NVML and
 * the CUDA driver API opened with dlopen when present) or an hwloc XML export (`--topology`).
 * A loaded corral_topology holds no hwloc handles: it is plain data, owned by the caller and
 * released with corral_topology_free(). GPUs are indexed in PCI bus-id order; that index is
 * what bindings refer to (docs/gpus.md).
 */
#ifndef CORRAL_KUBELET_TOPOLOGY_H
#define CORRAL_KUBELET_TOPOLOGY_H

#include "gpudb.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where a GPU's facts came from (bits of corral_gpu.sources). */
enum {
    CORRAL_GPU_SRC_PCI = 1u << 0,       /* hwloc PCI device */
    CORRAL_GPU_SRC_CUDA = 1u << 1,      /* hwloc CUDA OS device */
    CORRAL_GPU_SRC_NVML = 1u << 2,      /* hwloc NVML OS device */
    CORRAL_GPU_SRC_OPENCL = 1u << 3,    /* hwloc OpenCL OS device */
    CORRAL_GPU_SRC_LIVE_NVML = 1u << 4, /* libnvidia-ml.so.1 on this machine */
    CORRAL_GPU_SRC_LIVE_CUDA = 1u << 5, /* libcuda.so.1 on this machine */
};

struct corral_gpu_link {
    int peer;                /* index of the peer GPU */
    uint64_t bandwidth_mbps; /* MB/s, as hwloc's NVLinkBandwidth reports */
};

struct corral_gpu {
    int index;       /* position in PCI bus-id order */
    char bus_id[16]; /* "0000:4e:00.0" */
    uint16_t vendor_id, device_id;
    char uuid[64];  /* "GPU-..." or "" when unknown (or sanitised to zeros) */
    char name[128]; /* driver model name ("NVIDIA H100 80GB HBM3"), "" if none */
    const struct corral_gpudb_entry *db; /* table entry, NULL when the model is unknown */
    uint64_t memory_mib;                 /* 0 when unknown */
    int cc_major, cc_minor;              /* compute capability, -1 when unknown */
    int numa_node;                       /* OS index of the nearest NUMA node, -1 when unknown */
    int island;                          /* NVLink island, -1 when NVLink was not recorded */
    struct corral_gpu_link *links;       /* NVLink peers (owned by the topology) */
    size_t nlinks;
    unsigned sources; /* CORRAL_GPU_SRC_* bits */
    bool healthy;     /* false when a live probe reported an error */
};

struct corral_topology {
    char source[512]; /* "live" or the XML path */
    bool from_xml;
    char hostname[256];        /* HostName info, "" when absent */
    char arch[65];             /* uname machine ("x86_64", "ppc64le"), "" when absent */
    char exporter_version[32]; /* hwlocVersion of the export, "" when absent */
    unsigned packages, cores, pus;
    int *numa_nodes; /* OS indexes, ascending */
    unsigned nnuma;
    uint64_t memory_bytes;
    bool nvlink_recorded; /* an NVLinkBandwidth matrix (or live NVML) covered the GPUs */
    char gpu_probe[128];  /* what the live probes found ("nvml: 4 GPUs"), "" for XML */
    struct corral_gpu *gpus;
    size_t ngpus;
};

/* One GPU as a live driver library (NVML or CUDA) describes it; filled by nvml.c / cuda.c. */
#define CORRAL_PROBE_MAX_LINKS 18
struct corral_gpu_probe {
    unsigned domain, bus, dev, func;
    uint16_t device_id; /* 0 when the library did not say */
    char name[96];
    char uuid[64];
    uint64_t memory_mib;
    int cc_major, cc_minor; /* -1 when unknown */
    bool healthy;
    unsigned nlinks; /* active NVLinks */
    struct {
        unsigned domain, bus, dev, func;
        bool to_switch; /* the far end is an NVSwitch, not a GPU */
        uint64_t bandwidth_mbps;
    } links[CORRAL_PROBE_MAX_LINKS];
};

/*
 * Loads the topology of xml_path (an hwloc XML export) or, when xml_path is NULL, of this
 * machine. An XML file is loaded with every I/O object kept; anything hwloc's importer warns
 * about makes the load fail, because hwloc drops what it warns about (see topology.c).
 * Returns 0 and *out (caller frees with corral_topology_free), or a negative errno with a
 * human-readable reason in err (errlen bytes): -ENOENT/-EACCES for an unreadable file,
 * -EINVAL for a file hwloc rejects or warns about, -ENOMEM.
 */
int corral_topology_load(const char *xml_path, struct corral_topology **out, char *err,
                         size_t errlen);

void corral_topology_free(struct corral_topology *topo);

/* The GPU with the given UUID or index, NULL if none. Borrowed from topo. */
const struct corral_gpu *corral_topology_gpu_by_uuid(const struct corral_topology *topo,
                                                     const char *uuid);

/* Number of distinct NVLink islands (0 when NVLink was not recorded). */
unsigned corral_topology_islands(const struct corral_topology *topo);

/*
 * Merges live probe results into topo: GPUs are matched by PCI bus id (a probe GPU hwloc did
 * not see is added), names, UUIDs, memory, compute capability and health are taken from the
 * probe, and (NVML only: the CUDA driver API does not report them) NVLink peers and islands are
 * rebuilt from the probe's links. Exposed for tests;
 * corral_topology_load() calls it with NVML's (else CUDA's) results. Returns 0 or -ENOMEM.
 */
int corral_topology_merge_probe(struct corral_topology *topo, const struct corral_gpu_probe *p,
                                size_t n, unsigned source);

#endif
