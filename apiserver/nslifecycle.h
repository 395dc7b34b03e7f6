/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nslifecycle: the end of a namespace's life, as Kubernetes' namespace controller does it.
 *
 * DELETE on a namespace only marks it Terminating: the "kubernetes" entry of spec.finalizers
 * holds it while new content is refused. A background thread then deletes everything in the
 * namespace and, once nothing is left, removes that finalizer, which deletes the namespace.
 * objects.c marks namespaces, hooks.c tells this thread about them, apiserver.c starts and
 * stops it.
 */
#ifndef CORRAL_NSLIFECYCLE_H
#define CORRAL_NSLIFECYCLE_H

#include "server.h"

/*
 * Starts the thread and queues every namespace already Terminating in the store (a restart
 * resumes unfinished teardowns). Returns 0 or -errno.
 */
int corral_nslifecycle_start(struct corral_apiserver *srv);

/* Stops the thread (waits for a sweep in progress). Safe to call when it never started. */
void corral_nslifecycle_stop(void);

/*
 * Queues namespace name for teardown; the sweep starts CORRAL_NS_SWEEP_DELAY_MS later.
 * Harmless for a namespace already queued.
 */
void corral_nslifecycle_terminate(const char *name);

/*
 * The head start given to clients before content goes: `kubectl delete -f` of a file that
 * lists a namespace before its objects deletes each of them right after the namespace and
 * must still find them (Kubernetes gives the same head start by being slow).
 */
#define CORRAL_NS_SWEEP_DELAY_MS 1000

#endif
