/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `corral kubelet --topology FILE --print-node` as scripts use it: run the real executable
 * (its path is argv[1]) over every shared topology file and check the JSON it prints, and
 * check that bad input fails with a clear message and a non-zero status.
 */
#include "corral-config.h"
#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char *corral_path;

struct run {
    char *out, *err;
    int status;
};

static void drain(int fds[2], char **bufs)
{
    size_t lens[2] = {0, 0};
    for (int i = 0; i < 2; i++)
        bufs[i] = calloc(1, 1);
    struct pollfd p[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
    int open_fds = 2;
    while (open_fds > 0) {
        CHECK(poll(p, 2, 20000) > 0);
        for (int i = 0; i < 2; i++) {
            if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP)))
                continue;
            char chunk[65536];
            ssize_t n = read(p[i].fd, chunk, sizeof(chunk));
            if (n <= 0) {
                close(p[i].fd);
                p[i].fd = -1;
                open_fds--;
                continue;
            }
            bufs[i] = realloc(bufs[i], lens[i] + (size_t)n + 1);
            memcpy(bufs[i] + lens[i], chunk, (size_t)n);
            lens[i] += (size_t)n;
            bufs[i][lens[i]] = '\0';
        }
    }
}

static struct run run_corral(char *const args[])
{
    int out[2], err[2];
    CHECK(pipe2(out, O_CLOEXEC) == 0 && pipe2(err, O_CLOEXEC) == 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    char *argv[16] = {(char *)corral_path, "kubelet"};
    for (int i = 0; args[i]; i++)
        argv[i + 2] = args[i];
    pid_t pid;
    CHECK(posix_spawn(&pid, corral_path, &fa, NULL, argv, environ) == 0);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    close(err[1]);
    struct run r;
    char *bufs[2];
    int fds[2] = {out[0], err[0]};
    drain(fds, bufs);
    r.out = bufs[0];
    r.err = bufs[1];
    CHECK(waitpid(pid, &r.status, 0) == pid);
    return r;
}

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
}

static void test_every_shared_topology(void)
{
    static const struct {
        const char *prefix;
        const char *count; /* nvidia.com/gpu capacity */
    } want[] = {{"AMD-negative", "0"},
                {"aws-g4dn", "8"},
                {"dell-xe8640", "4"},
                {"desktop_i5", "1"},
                {"hwloc-test", "3"},
                {"ibm-power8", "4"},
                {"jsc-jureca", "4"},
                {"jsc-juwels-booster", "4"},
                {"jsc-juwels-cluster", "4"},
                {"lenovo-sd665n-v3_2xEPYC9555_4xH200_nvlink", "4"},
                {"lenovo-sd665n-v3_2xEPYC9555_4xH200_pci", "4"},
                {"llnl-lassen", "4"},
                {"llnl-pascal", "2"},
                {"nvidia-dgx2h", "16"},
                {"workstation_TR", "1"}};
    const char *dir = CORRAL_SHARED_DIR "/hwloc-topologies";
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    int seen = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n < 5 || strcmp(de->d_name + n - 4, ".xml") != 0)
            continue;
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        char *args[] = {"--topology", path, "--print-node", "--name", "sim-1", NULL};
        struct run r = run_corral(args);
        if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
            fprintf(stderr, "%s: %s\n", de->d_name, r.err);
        CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0);
        json_error_t je;
        json_t *node = json_loads(r.out, 0, &je);
        CHECK(node != NULL);
        CHECK_STR_EQ(json_string_value(json_object_get(node, "kind")), "Node");
        const char *count = json_string_value(json_object_get(
            json_object_get(json_object_get(node, "status"), "capacity"), "nvidia.com/gpu"));
        const char *expected = NULL;
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
            if (strncmp(de->d_name, want[i].prefix, strlen(want[i].prefix)) == 0)
                expected = want[i].count;
        CHECK(expected != NULL); /* a new topology file needs an expectation here */
        CHECK_STR_EQ(count, expected);
        json_decref(node);
        run_free(&r);
        seen++;
    }
    closedir(d);
    CHECK_INT_EQ(seen, 15);
}

static void test_bad_inputs(void)
{
    char *missing[] = {"--topology", "/nonexistent.xml", "--print-node", NULL};
    struct run r = run_corral(missing);
    CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 1);
    CHECK_STR_CONTAINS(r.err, "/nonexistent.xml: No such file or directory");
    CHECK_STR_EQ(r.out, "");
    run_free(&r);

    char *badname[] = {
        "--topology",   CORRAL_SHARED_DIR "/hwloc-topologies/desktop_i5-13600KF_RTX3070_opencl.xml",
        "--print-node", "--name",
        "Not A Name",   NULL};
    r = run_corral(badname);
    CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 1);
    CHECK_STR_CONTAINS(r.err, "node name \"Not A Name\"");
    run_free(&r);

    char *badopt[] = {"--print-node", "--taint", "nonsense", NULL};
    r = run_corral(badopt);
    CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 2);
    CHECK_STR_CONTAINS(r.err, "--taint");
    run_free(&r);

    char *nojoin[] = {"--name", "x", NULL};
    r = run_corral(nojoin);
    CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 2);
    CHECK_STR_CONTAINS(r.err, "--apiserver is required");
    run_free(&r);

    char *help[] = {"--help", NULL};
    r = run_corral(help);
    CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0);
    CHECK_STR_CONTAINS(r.out, "--print-node");
    run_free(&r);
}

static void test_live_print_node(void)
{
    char *args[] = {"--print-node", "--name", "live-1", NULL};
    struct run r = run_corral(args);
    CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0);
    json_t *node = json_loads(r.out, 0, NULL);
    CHECK(node != NULL);
    CHECK_STR_EQ(json_string_value(json_object_get(json_object_get(node, "metadata"), "name")),
                 "live-1");
    json_decref(node);
    run_free(&r);
}

int tests_main(int argc, char **argv);

#define main tests_main
CORRAL_TESTS(CORRAL_TEST(every_shared_topology), CORRAL_TEST(bad_inputs),
             CORRAL_TEST(live_print_node))
#undef main

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH-TO-CORRAL [TEST]\n", argv[0]);
        return 2;
    }
    corral_path = argv[1];
    argv[1] = argv[0];
    return tests_main(argc - 1, argv + 1);
}
