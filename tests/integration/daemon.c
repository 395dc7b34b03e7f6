/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon: see daemon.h. Child processes are tracked in a small table so that the atexit
 * handler can SIGKILL whatever a failed test left running, and the temporary directory is
 * removed with `rm -rf` (it only ever holds what the test created).
 */
#include "daemon.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CHILDREN 64

static pid_t children[MAX_CHILDREN];
static char tmpdir[256];
static const char *exe_path;
static bool registered;

static void cleanup(void)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (children[i] > 0) {
            kill(children[i], SIGKILL);
            waitpid(children[i], NULL, 0);
            children[i] = 0;
        }
    if (tmpdir[0] && !getenv("CORRAL_KEEP_TMP")) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tmpdir);
    }
}

static void ensure_registered(void)
{
    if (!registered) {
        atexit(cleanup);
        signal(SIGPIPE, SIG_IGN);
        registered = true;
    }
}

const char *corral_test_tmpdir(void)
{
    ensure_registered();
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/corral-test-XXXXXX");
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            abort();
        }
    }
    return tmpdir;
}

void corral_test_set_exe(const char *path)
{
    exe_path = path;
}

const char *corral_test_exe(void)
{
    if (exe_path)
        return exe_path;
    const char *e = getenv("CORRAL_EXE");
    return e ? e : "corral";
}

static void track(pid_t pid)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (children[i] == 0) {
            children[i] = pid;
            return;
        }
}

static void untrack(pid_t pid)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (children[i] == pid)
            children[i] = 0;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads stdout until the "listening on " line. Returns 0 or -1. */
static int wait_listening(int fd, struct corral_daemon *d, int timeout_ms)
{
    char buf[1024];
    size_t len = 0;
    long deadline = now_ms() + timeout_ms;
    while (now_ms() < deadline) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (n <= 0)
            return -1;
        len += (size_t)n;
        buf[len] = 0;
        char *line = strstr(buf, "listening on ");
        char *nl = line ? strchr(line, '\n') : NULL;
        if (nl) {
            *nl = 0;
            snprintf(d->url, sizeof(d->url), "%s", line + strlen("listening on "));
            return 0;
        }
        if (len == sizeof(buf) - 1)
            len = 0;
    }
    return -1;
}

int corral_daemon_start(struct corral_daemon *d, const char *const *argv, int timeout_ms)
{
    ensure_registered();
    static int seq;
    memset(d, 0, sizeof(*d));
    snprintf(d->log, sizeof(d->log), "%s/%s-%d.log", corral_test_tmpdir(), argv[0], ++seq);
    int out[2];
    if (pipe(out) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int logfd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(out[1], STDOUT_FILENO);
        if (logfd >= 0)
            dup2(logfd, STDERR_FILENO);
        close(out[0]);
        const char *args[64] = {corral_test_exe()};
        for (int i = 0; argv[i] && i < 62; i++)
            args[i + 1] = argv[i];
        execv(corral_test_exe(), (char *const *)args);
        perror("execv");
        _exit(127);
    }
    close(out[1]);
    d->pid = pid;
    track(pid);
    int rc = wait_listening(out[0], d, timeout_ms);
    close(out[0]);
    if (rc < 0) {
        fprintf(stderr, "daemon %s did not start; its log:\n", argv[0]);
        corral_daemon_dump(d);
        corral_daemon_stop(d, SIGKILL);
    }
    return rc;
}

int corral_daemon_stop(struct corral_daemon *d, int sig)
{
    if (d->pid <= 0)
        return -1;
    kill(d->pid, sig);
    int status = 0;
    waitpid(d->pid, &status, 0);
    untrack(d->pid);
    d->pid = 0;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

void corral_daemon_dump(const struct corral_daemon *d)
{
    FILE *f = fopen(d->log, "r");
    if (!f)
        return;
    char line[1024];
    while (fgets(line, sizeof(line), f))
        fputs(line, stderr);
    fclose(f);
}

int corral_test_free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(s, (struct sockaddr *)&a, &len) < 0) {
        if (s >= 0)
            close(s);
        return -1;
    }
    close(s);
    return ntohs(a.sin_port);
}
