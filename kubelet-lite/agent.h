/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agent: the node agent joined to a cluster. It registers the Node, renews its Lease in
 * kube-node-lease every heartbeat interval, reports node conditions (Ready, MemoryPressure,
 * DiskPressure, PIDPressure, GPUHealthy), watches the pods bound to it
 * (fieldSelector=spec.nodeName=NAME), runs them in the pod runtime, writes their status back
 * through pods/NAME/status, finishes their deletion (the final DELETE with grace 0 once their
 * processes are gone) and serves their logs over HTTPS for the API server to proxy.
 *
 * Outages: the pod watch re-lists and reconciles when the API server comes back (pods whose
 * objects are gone are stopped), status writes and heartbeats are retried, and a Node or Lease
 * that vanished (an API server restarted on an empty store) is registered again. Running pods
 * keep running throughout.
 *
 * Threads: the pod informer, a sync worker (fetches ConfigMaps/Secrets, feeds the runtime,
 * finishes deletions), a status writer and the heartbeat, each with its own API connection,
 * plus the runtime's and the log server's. corral_agent_run() blocks until SIGTERM/SIGINT.
 */
#ifndef CORRAL_KUBELET_AGENT_H
#define CORRAL_KUBELET_AGENT_H

#include "kubelet.h"
#include "topology.h"

/*
 * Joins and runs until SIGTERM or SIGINT; then stops the pods (each within its grace period,
 * at most 10 s), marks the Node not ready and returns 0. Returns non-zero when start-up fails
 * (the reason is logged). topo is borrowed. Call from the main thread before any other thread
 * exists: it blocks SIGTERM/SIGINT for every thread it starts and waits for them itself.
 */
int corral_agent_run(const struct corral_kubelet_options *opts, struct corral_topology *topo);

#endif
