/* SPDX-License-Identifier: Apache-2.0 */
/*
 * workers: a pool of threads for the apiserver's work that may block (a durable write waiting
 * for its group commit, a proxied log stream waiting for the node agent), so that the HTTP
 * threads never do.
 *
 * The pool grows on demand: a job queued while no worker is idle starts another worker, up to
 * CORRAL_WORKERS_MAX; a worker idle for a while exits as long as a few remain. Jobs start in
 * the order they were queued. Used by server.c only.
 */
#ifndef CORRAL_WORKERS_H
#define CORRAL_WORKERS_H

#define CORRAL_WORKERS_MAX 1024

struct corral_workers;

/* Creates an empty pool. Returns 0 and *out (free with corral_workers_free), or -ENOMEM. */
int corral_workers_new(struct corral_workers **out);

/*
 * Queues fn(arg) to run on a worker. Returns 0, or -ENOMEM / -EAGAIN (no worker could be
 * started, or the pool is closing): fn was not queued and the caller still owns arg.
 */
int corral_workers_submit(struct corral_workers *w, void (*fn)(void *arg), void *arg);

/* Lets the queued jobs finish, stops every worker and frees the pool. NULL is a no-op. */
void corral_workers_free(struct corral_workers *w);

#endif
