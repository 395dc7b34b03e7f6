/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_store_util: fixtures for the store tests (test_store*.c).
 *
 * STORE_TESTS(...) replaces CORRAL_TESTS(...) from harness.h: main() makes a private temp
 * directory and forks; the child runs the tests there while the parent waits, then removes the
 * directory and kills a leftover etcd whatever way the child ended (a failed CHECK aborts it).
 * The backend comes from CORRAL_TEST_STORE (sqlite, the default, or etcd). For etcd the first
 * test that opens a store starts a real etcd on loopback ports it probed, in the temp directory;
 * every store then gets its own key prefix. Without an etcd binary the program exits 77 (skip).
 */
#ifndef CORRAL_TEST_STORE_UTIL_H
#define CORRAL_TEST_STORE_UTIL_H

#include "harness.h"
#include "store.h"

#include "corral-config.h"
#include "error.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char tsu_root[256];
static char tsu_etcd_url[64];
static pid_t tsu_etcd_pid;

static __attribute__((unused)) bool tsu_is_etcd(void)
{
    const char *b = getenv("CORRAL_TEST_STORE");
    return b && strcmp(b, "etcd") == 0;
}

static __attribute__((unused)) void tsu_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* A free loopback TCP port (bound to 0 and released; etcd binds it right after). */
static __attribute__((unused)) int tsu_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    socklen_t len = sizeof(a);
    CHECK(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

static __attribute__((unused)) const char *tsu_etcd_binary(void)
{
    const char *env = getenv("CORRAL_ETCD");
    if (env && access(env, X_OK) == 0)
        return env;
    return access("/usr/bin/etcd", X_OK) == 0 ? "/usr/bin/etcd" : NULL;
}

static size_t tsu_discard(char *p, size_t size, size_t n, void *ctx)
{
    (void)p;
    (void)ctx;
    return size * n;
}

/* The gateway answers POST /v3/maintenance/status once the member serves. */
static __attribute__((unused)) bool tsu_etcd_healthy(void)
{
    char url[128];
    snprintf(url, sizeof(url), "%s/v3/maintenance/status", tsu_etcd_url);
    CURL *h = curl_easy_init();
    CHECK(h != NULL);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, "{}");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 1000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, tsu_discard);
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    return status == 200;
}

static int tsu_etcd_ports[2];
static int tsu_etcd_attempt;

/* Runs etcd on tsu_etcd_ports with its data in attempt's directory; returns its pid once it
 * serves, 0 when it did not come up. */
static __attribute__((unused)) pid_t tsu_etcd_spawn(const char *bin)
{
    char data[320], curls[64], purls[64], cluster[96], log[320], pidf[320];
    snprintf(tsu_etcd_url, sizeof(tsu_etcd_url), "http://127.0.0.1:%d", tsu_etcd_ports[0]);
    snprintf(data, sizeof(data), "%s/etcd-%d", tsu_root, tsu_etcd_attempt);
    snprintf(log, sizeof(log), "%s/etcd-%d.log", tsu_root, tsu_etcd_attempt);
    snprintf(pidf, sizeof(pidf), "%s/etcd.pid", tsu_root);
    snprintf(curls, sizeof(curls), "http://127.0.0.1:%d", tsu_etcd_ports[0]);
    snprintf(purls, sizeof(purls), "http://127.0.0.1:%d", tsu_etcd_ports[1]);
    snprintf(cluster, sizeof(cluster), "default=%s", purls);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(bin, bin, "--name", "default", "--data-dir", data, "--listen-client-urls", curls,
              "--advertise-client-urls", curls, "--listen-peer-urls", purls,
              "--initial-advertise-peer-urls", purls, "--initial-cluster", cluster, (char *)NULL);
        _exit(127);
    }
    FILE *f = fopen(pidf, "w");
    if (f) {
        fprintf(f, "%d\n", (int)pid);
        fclose(f);
    }
    for (int i = 0; i < 300; i++) {
        if (tsu_etcd_healthy())
            return pid;
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return 0; /* died (port taken?) */
        tsu_sleep_ms(50);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return 0;
}

/* Starts etcd once for the whole test program and waits until it serves. */
static __attribute__((unused)) void tsu_etcd_start(void)
{
    if (tsu_etcd_pid)
        return;
    const char *bin = tsu_etcd_binary();
    if (!bin) {
        fprintf(stderr, "etcd not installed: skipping\n");
        exit(77);
    }
    for (tsu_etcd_attempt = 0; tsu_etcd_attempt < 3 && !tsu_etcd_pid; tsu_etcd_attempt++) {
        tsu_etcd_ports[0] = tsu_free_port();
        tsu_etcd_ports[1] = tsu_free_port();
        tsu_etcd_pid = tsu_etcd_spawn(bin);
    }
    tsu_etcd_attempt--;
    CHECK(tsu_etcd_pid != 0);
}

/* Kills etcd hard (SIGKILL); tsu_etcd_restart() brings it back on the same ports and data. */
static __attribute__((unused)) void tsu_etcd_kill(void)
{
    CHECK(tsu_etcd_pid != 0);
    kill(tsu_etcd_pid, SIGKILL);
    waitpid(tsu_etcd_pid, NULL, 0);
    tsu_etcd_pid = 0;
}

static __attribute__((unused)) void tsu_etcd_restart(void)
{
    const char *bin = tsu_etcd_binary();
    for (int i = 0; i < 20 && !tsu_etcd_pid; i++) {
        tsu_etcd_pid = tsu_etcd_spawn(bin);
        if (!tsu_etcd_pid)
            tsu_sleep_ms(100); /* the old listener may linger a moment */
    }
    CHECK(tsu_etcd_pid != 0);
}

/* Opens the store called name (a directory, or a key prefix for etcd). Aborts on failure. */
static __attribute__((unused)) struct corral_store *tsu_open(const char *name)
{
    struct corral_store *st = NULL;
    char path[512];
    if (tsu_is_etcd()) {
#ifdef TSU_HAVE_ETCD
        tsu_etcd_start();
        snprintf(path, sizeof(path), "/t/%s", name);
        CHECK_INT_EQ(corral_store_open_etcd(tsu_etcd_url, path, &st), 0);
#else
        fprintf(stderr, "this build has no etcd backend: skipping\n");
        exit(77);
#endif
    } else {
        snprintf(path, sizeof(path), "%s/%s", tsu_root, name);
        CHECK_INT_EQ(corral_store_open_sqlite(path, &st), 0);
    }
    CHECK(st != NULL);
    return st;
}

/* The directory of store name (SQLite). */
static __attribute__((unused)) const char *tsu_dir(const char *name)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", tsu_root, name);
    return path;
}

static __attribute__((unused)) int tsu_rm(const char *path, const struct stat *sb, int flag,
                                          struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static __attribute__((unused)) void tsu_kill_etcd_from_pidfile(void)
{
    char pidf[320];
    snprintf(pidf, sizeof(pidf), "%s/etcd.pid", tsu_root);
    FILE *f = fopen(pidf, "r");
    int pid = 0;
    if (f) {
        if (fscanf(f, "%d", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    if (pid > 0)
        kill(pid, SIGKILL);
}

static __attribute__((unused)) int tsu_run(int argc, char **argv, const struct corral_test *tests,
                                           size_t n)
{
    int ran = 0;
    for (size_t i = 0; i < n; i++) {
        if (argc > 1 && strcmp(argv[1], tests[i].name) != 0)
            continue;
        fprintf(stderr, "-- %s\n", tests[i].name);
        tests[i].fn();
        fprintf(stderr, "ok %s\n", tests[i].name);
        ran++;
    }
    if (ran == 0) {
        fprintf(stderr, "no test named %s\n", argc > 1 ? argv[1] : "(none)");
        return 1;
    }
    if (tsu_etcd_pid) {
        kill(tsu_etcd_pid, SIGTERM);
        waitpid(tsu_etcd_pid, NULL, 0);
    }
    return 0;
}

static __attribute__((unused)) int tsu_main(int argc, char **argv, const struct corral_test *tests,
                                            size_t n)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(tsu_root, sizeof(tsu_root), "%s/corral-store-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(tsu_root)) {
        perror("mkdtemp");
        return 1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0)
        exit(tsu_run(argc, argv, tests, n));
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    tsu_kill_etcd_from_pidfile();
    if (!getenv("CORRAL_TEST_KEEP"))
        nftw(tsu_root, tsu_rm, 16, FTW_DEPTH | FTW_PHYS);
    if (WIFSIGNALED(status)) {
        fprintf(stderr, "tests killed by signal %d\n", WTERMSIG(status));
        return 1;
    }
    return WEXITSTATUS(status);
}

#define STORE_TESTS(...)                                                                           \
    static const struct corral_test store_tests_[] = {__VA_ARGS__};                                \
    int main(int argc, char **argv)                                                                \
    {                                                                                              \
        return tsu_main(argc, argv, store_tests_, sizeof(store_tests_) / sizeof(store_tests_[0])); \
    }

#endif
