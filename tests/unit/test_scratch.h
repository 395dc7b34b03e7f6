/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_scratch: one scratch directory per test process, removed at exit and also when a CHECK
 * fails (the harness aborts, which skips atexit handlers, so SIGABRT is caught to clean up and
 * then re-raised). Used by the tests that write files (pki, init, authn, authz).
 */
#ifndef CORRAL_TEST_SCRATCH_H
#define CORRAL_TEST_SCRATCH_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char test_scratch_root[96];

static void test_scratch_remove(void)
{
    char cmd[160];
    if (!test_scratch_root[0])
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", test_scratch_root);
    test_scratch_root[0] = '\0';
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove the scratch directory\n");
}

static void test_scratch_on_abort(int sig)
{
    test_scratch_remove();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* The process's scratch directory, created on first use. */
static const char *test_scratch(void)
{
    if (test_scratch_root[0])
        return test_scratch_root;
    snprintf(test_scratch_root, sizeof(test_scratch_root), "/tmp/corral-unit-XXXXXX");
    if (!mkdtemp(test_scratch_root)) {
        perror("mkdtemp");
        abort();
    }
    atexit(test_scratch_remove);
    signal(SIGABRT, test_scratch_on_abort);
    return test_scratch_root;
}

/* A new empty directory inside the scratch directory (malloc'd path; caller frees). */
static char *test_scratch_dir(void)
{
    size_t n = strlen(test_scratch()) + 16;
    char *dir = malloc(n);
    snprintf(dir, n, "%s/XXXXXX", test_scratch());
    if (!dir || !mkdtemp(dir)) {
        perror("mkdtemp");
        abort();
    }
    return dir;
}

#endif
