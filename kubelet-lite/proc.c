/* SPDX-License-Identifier: Apache-2.0 */
/*
 * proc: process supervision (see proc.h).
 *
 * The agent is multi-threaded, so between fork() and execve() the child only makes
 * async-signal-safe system calls: everything that needs memory (PATH lookup, the error text)
 * happens in the parent. A close-on-exec pipe carries the child's errno back if chdir, the
 * cgroup move or execve fails, so "no such program" is an error the caller can report rather
 * than an exit status that looks like the program's.
 */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static const char *env_path(char *const *envp)
{
    for (size_t i = 0; envp && envp[i]; i++)
        if (strncmp(envp[i], "PATH=", 5) == 0)
            return envp[i] + 5;
    return DEFAULT_PATH;
}

int corral_proc_find_executable(const char *name, char *const *envp, char *out, size_t len)
{
    if (!name || !*name)
        return -ENOENT;
    if (strchr(name, '/')) {
        snprintf(out, len, "%s", name);
        return access(out, X_OK) == 0 ? 0 : -errno;
    }
    int result = -ENOENT;
    const char *p = env_path(envp);
    while (*p) {
        size_t n = strcspn(p, ":");
        int w = snprintf(out, len, "%.*s/%s", (int)n, n ? p : ".", name);
        if (w > 0 && (size_t)w < len) {
            if (access(out, X_OK) == 0)
                return 0;
            if (errno == EACCES)
                result = -EACCES;
        }
        p += n + (p[n] == ':');
    }
    return result;
}

/* In the child: report errno on fd and exit. Only async-signal-safe calls. */
static void child_fail(int fd, int stage)
{
    int msg[2] = {stage, errno};
    ssize_t w = write(fd, msg, sizeof(msg));
    (void)w;
    _exit(127);
}

enum { STAGE_SETUP = 1, STAGE_CGROUP, STAGE_IDENTITY, STAGE_CHDIR, STAGE_EXEC };

static void child_stdio(int fd, int target, int errfd)
{
    if (fd < 0) {
        fd = open("/dev/null", target == 0 ? O_RDONLY : O_WRONLY);
        if (fd < 0)
            child_fail(errfd, STAGE_SETUP);
    }
    if (fd != target && dup2(fd, target) < 0)
        child_fail(errfd, STAGE_SETUP);
}

static void child_run(const struct corral_proc_spec *s, const char *path, int errfd)
{
    sigset_t none;
    sigemptyset(&none);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        sigaction(sig, &dfl, NULL); /* fails harmlessly for SIGKILL/SIGSTOP and RT holes */
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (setsid() < 0)
        child_fail(errfd, STAGE_SETUP);
    /* a container does not outlive its agent (which, restarted, would not know it) */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != s->parent)
        child_fail(errfd, STAGE_SETUP);
    if (s->cgroup_procs_fd >= 0 && write(s->cgroup_procs_fd, "0", 1) != 1)
        child_fail(errfd, STAGE_CGROUP);
    if (s->identity && (setgroups(s->ngroups, s->groups) < 0 ||
                        (s->gid >= 0 && setgid((gid_t)s->gid) < 0) || setuid((uid_t)s->uid) < 0))
        child_fail(errfd, STAGE_IDENTITY);
    /* move the error pipe out of the way of 0-2 before they are replaced */
    if (errfd < 3) {
        int moved = fcntl(errfd, F_DUPFD_CLOEXEC, 3);
        if (moved < 0)
            child_fail(errfd, STAGE_SETUP);
        errfd = moved;
    }
    child_stdio(s->stdin_fd, 0, errfd);
    child_stdio(s->stdout_fd, 1, errfd);
    child_stdio(s->stderr_fd, 2, errfd);
    if (errfd != 3) {
        if (dup3(errfd, 3, O_CLOEXEC) < 0)
            child_fail(errfd, STAGE_SETUP);
        errfd = 3;
    }
    syscall(SYS_close_range, 4U, ~0U, 0U); /* nothing else of the agent's leaks in */
    if (s->cwd && chdir(s->cwd) < 0)
        child_fail(errfd, STAGE_CHDIR);
    execve(path, s->argv, s->envp);
    child_fail(errfd, STAGE_EXEC);
}

static void describe_failure(const struct corral_proc_spec *s, const char *path, int stage, int e,
                             char *err, size_t errlen)
{
    switch (stage) {
    case STAGE_CGROUP:
        snprintf(err, errlen, "joining the cgroup: %s", strerror(e));
        break;
    case STAGE_IDENTITY:
        snprintf(err, errlen, "running as uid %lld gid %lld: %s", s->uid, s->gid, strerror(e));
        break;
    case STAGE_CHDIR:
        snprintf(err, errlen, "chdir to working directory \"%s\": %s", s->cwd, strerror(e));
        break;
    case STAGE_EXEC:
        snprintf(err, errlen, "exec \"%s\": %s", path, strerror(e));
        break;
    default:
        snprintf(err, errlen, "preparing the process: %s", strerror(e));
        break;
    }
}

/* Waits for the child's verdict on the error pipe: 0 when it exec'd, else -errno. */
static int read_verdict(int fd, pid_t pid, const struct corral_proc_spec *s, const char *path,
                        char *err, size_t errlen)
{
    int msg[2];
    ssize_t n;
    do
        n = read(fd, msg, sizeof(msg));
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof(msg))
        return 0;
    describe_failure(s, path, msg[0], msg[1], err, errlen);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    return -(msg[1] ? msg[1] : EIO);
}

int corral_proc_spawn(const struct corral_proc_spec *spec, struct corral_proc *p, char *err,
                      size_t errlen)
{
    char path[PATH_MAX];
    int rc = corral_proc_find_executable(spec->argv ? spec->argv[0] : NULL, spec->envp, path,
                                         sizeof(path));
    if (rc < 0) {
        snprintf(err, errlen, "exec: \"%s\": %s", spec->argv && spec->argv[0] ? spec->argv[0] : "",
                 rc == -ENOENT ? "executable file not found in $PATH" : strerror(-rc));
        return rc;
    }
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return -errno;
    }
    struct corral_proc_spec spec_copy = *spec;
    spec_copy.parent = getpid();
    spec = &spec_copy;
    pid_t pid = fork();
    if (pid < 0) {
        rc = -errno;
        snprintf(err, errlen, "fork: %s", strerror(errno));
        close(pipefd[0]);
        close(pipefd[1]);
        return rc;
    }
    if (pid == 0) {
        close(pipefd[0]);
        child_run(spec, path, pipefd[1]);
    }
    close(pipefd[1]);
    rc = read_verdict(pipefd[0], pid, spec, path, err, errlen);
    close(pipefd[0]);
    if (rc < 0)
        return rc;
    p->pid = pid;
    p->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (p->pidfd < 0) {
        rc = -errno;
        snprintf(err, errlen, "pidfd_open: %s", strerror(errno));
        kill(-pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        return rc;
    }
    fcntl(p->pidfd, F_SETFD, FD_CLOEXEC);
    return 0;
}

int corral_proc_reap(struct corral_proc *p, int *exit_code, int *signal)
{
    int status;
    pid_t r = waitpid(p->pid, &status, WNOHANG);
    if (r == 0)
        return 0;
    if (r < 0)
        return -errno;
    if (WIFSIGNALED(status)) {
        *signal = WTERMSIG(status);
        *exit_code = 128 + *signal;
    } else {
        *signal = 0;
        *exit_code = WEXITSTATUS(status);
    }
    if (p->pidfd >= 0)
        close(p->pidfd);
    p->pidfd = -1;
    return 1;
}

int corral_proc_signal_group(const struct corral_proc *p, int sig)
{
    if (p->pid <= 0)
        return -ESRCH;
    if (kill(-p->pid, sig) == 0)
        return 0;
    /* the leader may have left its group (setpgid) but still be ours: signal it directly */
    return kill(p->pid, sig) == 0 ? 0 : -errno;
}
