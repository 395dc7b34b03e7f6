/* SPDX-License-Identifier: Apache-2.0 */
/*
 * controllers: the built-in control loops that run inside the apiserver process (as k3s runs
 * kube-controller-manager in-process): node lifecycle (lease → Ready → taints → eviction),
 * ReplicaSet, Deployment, Job, Endpoints and garbage collection of owned objects.
 */
#ifndef CORRAL_CONTROLLERS_H
#define CORRAL_CONTROLLERS_H

struct corral_apiserver;
struct corral_controllers;

/* Starts every controller thread. Returns 0 and *out, or -errno. */
int corral_controllers_start(struct corral_apiserver *srv, struct corral_controllers **out);
/* Stops and joins the controllers (NULL is fine). */
void corral_controllers_stop(struct corral_controllers *c);

#endif
