/* SPDX-License-Identifier: Apache-2.0 */
/*
 * node: the Node object a machine registers, built from its topology and the agent's
 * configuration exactly as docs/gpus.md describes (capacity/allocatable, GPU Feature Discovery
 * and corral labels, the per-GPU `corral.io/gpus` annotation, taints, addresses, nodeInfo).
 * Conditions are not part of it: the agent adds them with every status update (agent.c).
 */
#ifndef CORRAL_KUBELET_NODE_H
#define CORRAL_KUBELET_NODE_H

#include "corral-config.h"
#include "topology.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define CORRAL_NODE_DEFAULT_MAX_PODS 110
#define CORRAL_KUBELET_VERSION "v1.32.0-corral." CORRAL_VERSION

struct corral_node_config {
    const char *name;           /* metadata.name; NULL: derived from the topology's host name */
    const char *provider;       /* corral.io/provider, optional */
    const char *zone;           /* topology.kubernetes.io/zone, optional */
    const char *region;         /* topology.kubernetes.io/region, optional */
    const char *address;        /* InternalIP, optional */
    int port;                   /* the agent's HTTPS port (daemonEndpoints), 0 when unknown */
    int max_pods;               /* 0: CORRAL_NODE_DEFAULT_MAX_PODS */
    int64_t reserved_cpu_milli; /* held back from allocatable */
    int64_t reserved_memory_bytes;
    json_t *labels; /* extra labels, object of strings (borrowed, may be NULL) */
    json_t *taints; /* array of Taint objects (borrowed, may be NULL) */
};

/*
 * Builds the Node for topo under cfg. Returns a new reference, or NULL with a reason in err
 * when the configuration is unusable (bad name, reservation above capacity) or memory runs out.
 */
json_t *corral_node_build(const struct corral_topology *topo, const struct corral_node_config *cfg,
                          char *err, size_t errlen);

/* The `corral.io/gpus` array for topo (docs/gpus.md). New reference, NULL on ENOMEM. */
json_t *corral_node_gpus_json(const struct corral_topology *topo);

/*
 * Derives a node name from a host name: lower case, characters outside [a-z0-9.-] become '-',
 * cut to 63. Writes into out (len bytes). Returns 0, or -EINVAL when nothing usable remains.
 */
int corral_node_name_from_host(const char *host, char *out, size_t len);

/*
 * Parses "key=value:Effect" or "key:Effect" (Effect NoSchedule, PreferNoSchedule or NoExecute)
 * into a new Taint object. Returns 0 and *taint (caller owns), or -EINVAL with the reason in err.
 */
int corral_node_parse_taint(const char *spec, json_t **taint, char *err, size_t errlen);

/* Parses "key=value" and sets it in labels (borrowed). Returns 0 or -EINVAL with err. */
int corral_node_parse_label(const char *spec, json_t *labels, char *err, size_t errlen);

/* Kubernetes' name for a uname machine string ("x86_64" -> "amd64"). Static string. */
const char *corral_node_goarch(const char *machine);

#endif
