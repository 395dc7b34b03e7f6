/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon: starts real corral daemons for integration tests and cleans up after them.
 *
 * corral_daemon_start() forks `corral SUBCOMMAND args...`, waits for its "listening on URL"
 * line on stdout (up to a timeout) and returns the URL; the daemon's stderr goes to a log file
 * in the test's temporary directory, which is printed if the test fails. Every daemon started
 * is killed at exit (atexit), so a failing CHECK never leaves processes behind.
 */
#ifndef CORRAL_TEST_DAEMON_H
#define CORRAL_TEST_DAEMON_H

#include <stdbool.h>
#include <sys/types.h>

struct corral_daemon {
    pid_t pid;
    char url[256];
    char log[512];
};

/* A fresh temporary directory (removed at exit). Returns a static-lifetime path. */
const char *corral_test_tmpdir(void);

/* The corral executable under test (argv[1] of the test, or CORRAL_EXE). */
void corral_test_set_exe(const char *path);
const char *corral_test_exe(void);

/*
 * Starts `corral argv...` (argv NULL-terminated, without "corral"). Returns 0 and fills d, or
 * -1 when it exits or prints nothing within timeout_ms (its log is printed).
 */
int corral_daemon_start(struct corral_daemon *d, const char *const *argv, int timeout_ms);

/* Sends sig and waits for exit; returns the exit status (or 128+signal). */
int corral_daemon_stop(struct corral_daemon *d, int sig);

/* Prints the daemon's log to stderr. */
void corral_daemon_dump(const struct corral_daemon *d);

/* A free TCP port on 127.0.0.1 (bound and released). */
int corral_test_free_port(void);

#endif
