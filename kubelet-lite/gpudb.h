/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gpudb: what corral knows about each NVIDIA GPU model, keyed by PCI device id.
 *
 * hwloc and the drivers give the PCI ids, a marketing name and (sometimes) the memory size;
 * they never give the architecture family, the compute capability, whether the chip has RT
 * cores, or which class of work the card is meant for. This static table supplies those. It is
 * read-only and needs no initialisation; every pointer it hands out is to static storage.
 */
#ifndef CORRAL_KUBELET_GPUDB_H
#define CORRAL_KUBELET_GPUDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CORRAL_PCI_VENDOR_NVIDIA 0x10de

struct corral_gpudb_entry {
    uint16_t device_id;  /* PCI device id (vendor 0x10de) */
    const char *model;   /* corral's short model name: "H100-SXM5-80GB" */
    const char *product; /* the name NVML/CUDA report: "NVIDIA H100 80GB HBM3" */
    const char *family;  /* "hopper", "ada-lovelace", ... (GFD spelling) */
    int cc_major;        /* compute capability */
    int cc_minor;
    bool rt_cores;         /* has RT cores */
    const char *gpu_class; /* datacenter-training | datacenter-inference | workstation | consumer */
    uint64_t memory_mib;   /* memory as the driver reports it, MiB */
};

/* The entry for an NVIDIA PCI device id, or NULL when the id is not in the table. Static. */
const struct corral_gpudb_entry *corral_gpudb_lookup(uint16_t device_id);

/*
 * The entry whose product name matches name (a driver/hwloc "GPUModel" such as "Tesla T4" or
 * "NVIDIA GeForce RTX 3070"), comparing case-insensitively and ignoring a leading "NVIDIA " and
 * "GeForce ". NULL when none matches. Static.
 */
const struct corral_gpudb_entry *corral_gpudb_lookup_name(const char *name);

/* Number of entries and the i-th one (for tests and `corral kubelet --list-gpus`). Static. */
size_t corral_gpudb_count(void);
const struct corral_gpudb_entry *corral_gpudb_at(size_t i);

/* True when class is one of the four GPU classes. */
bool corral_gpudb_valid_class(const char *gpu_class);

/*
 * Writes name as a label-safe GFD product ("NVIDIA H100 80GB HBM3" -> "NVIDIA-H100-80GB-HBM3"):
 * runs of characters outside [A-Za-z0-9._-] become one '-', leading/trailing non-alphanumerics
 * are dropped and the result is cut to 63 characters. Returns the length written (0 when
 * nothing usable remains). out must hold len bytes, len >= 1.
 */
size_t corral_gpudb_product_label(const char *name, char *out, size_t len);

#endif
