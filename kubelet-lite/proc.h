/* SPDX-License-Identifier: Apache-2.0 */
/*
 * proc: starting, signalling and reaping the processes that stand in for containers (and for
 * exec probes and hooks).
 *
 * Each process is started in a new session (setsid), so it leads its own process group and
 * signals can reach everything it forks; with default signal dispositions and an empty signal
 * mask whatever the agent had; with only the file descriptors it was given (0, 1, 2); killed
 * (PR_SET_PDEATHSIG) if the agent dies; and, when a cgroup is given, inside that cgroup before
 * its program starts. A pidfd is returned
 * for the caller's event loop: it becomes readable when the process exits.
 */
#ifndef CORRAL_KUBELET_PROC_H
#define CORRAL_KUBELET_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct corral_proc_spec {
    char *const *argv;   /* argv[0] is looked up in the PATH of envp when it has no '/' */
    char *const *envp;   /* the complete environment */
    const char *cwd;     /* working directory, NULL: keep the agent's */
    int stdin_fd;        /* -1: /dev/null */
    int stdout_fd;       /* -1: /dev/null */
    int stderr_fd;       /* -1: /dev/null */
    int cgroup_procs_fd; /* an open cgroup.procs file to join, -1: none */
    bool identity;       /* take uid (and gid, groups) below; false: keep the agent's */
    long long uid, gid;  /* gid -1: keep the agent's group */
    unsigned ngroups;    /* supplementary groups */
    const gid_t *groups;
    pid_t parent; /* set by corral_proc_spawn() */
};

struct corral_proc {
    pid_t pid;
    int pidfd; /* readable once the process has exited; closed by corral_proc_reap() */
};

/*
 * Starts spec. Returns 0 and fills *p, or a negative errno with the reason in err: -ENOENT
 * ("executable file not found in $PATH"), -EACCES, -ENOEXEC or whatever execve/chdir reported
 * in the child (which then never ran the program), -ENOMEM, -EAGAIN.
 */
int corral_proc_spawn(const struct corral_proc_spec *spec, struct corral_proc *p, char *err,
                      size_t errlen);

/*
 * Reaps p without blocking. Returns 1 when it has exited (with *exit_code = the exit status,
 * or 128 + signal, and *signal = the signal or 0) and closes p->pidfd; 0 while it runs; a
 * negative errno on error.
 */
int corral_proc_reap(struct corral_proc *p, int *exit_code, int *signal);

/* Sends sig to p's whole process group (its session). Returns 0 or -errno (-ESRCH: gone). */
int corral_proc_signal_group(const struct corral_proc *p, int sig);

/*
 * Resolves name as execvp() would, in the PATH found in envp (or the default PATH). Writes the
 * full path into out (len bytes). Returns 0, -ENOENT or -EACCES.
 */
int corral_proc_find_executable(const char *name, char *const *envp, char *out, size_t len);

#endif
