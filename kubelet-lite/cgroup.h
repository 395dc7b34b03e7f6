/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cgroup: cgroup v2 for containers: one cgroup per container under a subtree the agent owns
 * (<agent's own cgroup>/corral-<node>/pod-<uid>/<container>), with cpu.max and memory.max from
 * the container's limits when those controllers are available.
 *
 * Availability is decided once, at corral_cgroup_init(), and said clearly in the log: no
 * cgroup2 mount, a read-only one, or one without the cpu/memory controllers (a hybrid
 * cgroup v1 host) each get their own message. Without cgroups containers still run, with their
 * process group as the only grouping; without the controllers they run in cgroups that track
 * and kill them but do not limit them.
 */
#ifndef CORRAL_KUBELET_CGROUP_H
#define CORRAL_KUBELET_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct corral_cgroups {
    bool usable;      /* cgroups can be created and joined */
    bool cpu;         /* cpu.max is enforced */
    bool memory;      /* memory.max is enforced */
    bool kill;        /* cgroup.kill exists */
    char root[512];   /* the agent's subtree: .../corral-<node> */
    char status[256]; /* one line for logs and the Node: what is and is not available */
};

/*
 * Finds the cgroup2 mount and the agent's own cgroup (/proc/self/mountinfo, /proc/self/cgroup),
 * creates the corral-<node> subtree (killing and removing what a previous run left there) and
 * enables what it can. Never fails: what is missing is recorded in cg and logged. Call before
 * starting threads (it may move the agent into a leaf cgroup of its own).
 */
void corral_cgroup_init(struct corral_cgroups *cg, const char *node_name);

/* cpu.max line for a cpu limit in millicores ("50000 100000" for 500m; "max 100000" for 0). */
void corral_cgroup_cpu_max(int64_t milli, char *out, size_t len);

/*
 * Creates the cgroup for one container (path written to out, len bytes) and applies the
 * limits (0 = none) where the controllers allow. Returns 0 or -errno. Creating an existing
 * cgroup is fine.
 */
int corral_cgroup_create(const struct corral_cgroups *cg, const char *pod_uid,
                         const char *container, int64_t cpu_milli, int64_t memory_bytes, char *out,
                         size_t len);

/* Opens path/cgroup.procs for writing (O_CLOEXEC). Returns the fd or -errno. */
int corral_cgroup_open_procs(const char *path);

/* Kills every process in path (cgroup.kill, else SIGKILL to each listed pid). Returns 0/-errno. */
int corral_cgroup_kill(const char *path);

/* Number of processes in path, or -errno. */
int corral_cgroup_count(const char *path);

/* The memory.events oom_kill counter of path (0 when unavailable). */
long corral_cgroup_oom_kills(const char *path);

/* Removes a container cgroup (and its pod cgroup when that is empty). Returns 0 or -errno. */
int corral_cgroup_remove(const char *path);

#endif
