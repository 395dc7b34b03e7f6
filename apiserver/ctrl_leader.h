/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctrl_leader: leader election for the built-in controllers. Several apiservers may share one
 * etcd; only one of them may run the controllers at a time, or two ReplicaSet controllers would
 * both create the missing pods. As kube-controller-manager does, the apiservers compete for a
 * Lease (kube-system/corral-controllers): the holder renews it every 2 s; another apiserver
 * takes it over once it has seen no renewal for 15 s (timed on its own clock, so clock skew
 * between machines does not matter); a holder that cannot renew for 10 s stops leading. An
 * apiserver's identity is its host name and listen address, so a restarted apiserver takes its
 * own lease back at once, and a clean shutdown releases the lease for the others.
 *
 * With the embedded SQLite store there is exactly one apiserver per store, so it leads from the
 * start without a Lease.
 */
#ifndef CORRAL_CTRL_LEADER_H
#define CORRAL_CTRL_LEADER_H

#include "server.h"

#include <stdbool.h>
#include <stdint.h>

struct corral_ctrl_leader;

/* Starts electing (a thread, with etcd). Returns 0 and *out, or -errno. */
int corral_ctrl_leader_start(struct corral_apiserver *srv, struct corral_ctrl_leader **out);

/*
 * The current leadership term: 0 while this apiserver does not lead, else a number that
 * changes each time it becomes leader (controllers relist when it changes). Thread-safe.
 */
uint64_t corral_ctrl_leader_term(struct corral_ctrl_leader *l);

/* Stops electing and releases the Lease if held (NULL is fine). */
void corral_ctrl_leader_stop(struct corral_ctrl_leader *l);

#endif
