/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The plugin ABI (include/corral/plugin.h): sizes and offsets are frozen for ABI version 1,
 * a good plugin loads and runs, incompatible ones are refused with a message naming the file,
 * its version and the expected one.
 */
#include "corral-config.h"
#include "error.h"
#include "harness.h"
#include "loader.h"
#include "sched_helpers.h"

#include <stddef.h>

#ifndef TEST_PLUGIN_DIR
#error "TEST_PLUGIN_DIR must name the directory of the test plugins"
#endif

static void test_abi_layout(void)
{
    CHECK_INT_EQ(CORRAL_PLUGIN_ABI_VERSION, 1);
    CHECK_INT_EQ(offsetof(struct corral_plugin, abi_version), 0);
    CHECK_INT_EQ(offsetof(struct corral_plugin, struct_size), 4);
    CHECK_INT_EQ(offsetof(struct corral_plugin, name), 8);
    CHECK_INT_EQ(offsetof(struct corral_plugin, flags), 24);
    CHECK_INT_EQ(offsetof(struct corral_plugin, init), 32);
    CHECK_INT_EQ(offsetof(struct corral_plugin, filter), 72);
    CHECK_INT_EQ(offsetof(struct corral_plugin, score), 96);
    CHECK_INT_EQ(offsetof(struct corral_plugin, reserve), 112);
    CHECK_INT_EQ(offsetof(struct corral_plugin, permit), 128);
    CHECK_INT_EQ(offsetof(struct corral_plugin, reason), 160);
    CHECK_INT_EQ(sizeof(struct corral_plugin), 168);
    CHECK_INT_EQ(CORRAL_PLUGIN_MIN_STRUCT_SIZE, 168);

    CHECK_INT_EQ(offsetof(struct corral_host, abi_version), 0);
    CHECK_INT_EQ(offsetof(struct corral_host, struct_size), 4);
    CHECK_INT_EQ(offsetof(struct corral_host, node_count), 8);
    CHECK_INT_EQ(offsetof(struct corral_host, node_gpu), 128);
    CHECK_INT_EQ(offsetof(struct corral_host, pod_name), 160);
    CHECK_INT_EQ(offsetof(struct corral_host, cycle_gpu_mask), 272);
    CHECK_INT_EQ(offsetof(struct corral_host, assign_gpus), 288);
    CHECK_INT_EQ(offsetof(struct corral_host, value_type), 360);
    CHECK_INT_EQ(offsetof(struct corral_host, permit_allow), 440);
    CHECK_INT_EQ(offsetof(struct corral_host, preempt), 480);
    /* fields added at the end since; plugins check struct_size (CORRAL_HOST_HAS) */
    CHECK_INT_EQ(offsetof(struct corral_host, column_min), 488);
    CHECK_INT_EQ(sizeof(struct corral_host), 496);
    CHECK_INT_EQ(CORRAL_PLUGIN_NODE_LOCAL, 1);
    CHECK_INT_EQ(CORRAL_PLUGIN_NODE_CLASS, 2);

    CHECK_INT_EQ(offsetof(struct corral_gpu, free_milli), 8);
    CHECK_INT_EQ(offsetof(struct corral_gpu, cc_major), 24);
    CHECK_INT_EQ(offsetof(struct corral_gpu, flags), 28);
    CHECK_INT_EQ(offsetof(struct corral_gpu, model), 32);
    CHECK_INT_EQ(offsetof(struct corral_gpu, uuid), 64);
    CHECK_INT_EQ(sizeof(struct corral_gpu), 72);
    CHECK_INT_EQ(sizeof(struct corral_taint), 24);
}

static void test_reject_codes(void)
{
    CHECK(CORRAL_IS_REJECT(CORRAL_REJECT(1)));
    CHECK(CORRAL_IS_REJECT(CORRAL_REJECT_UNRESOLVABLE(7)));
    CHECK(!CORRAL_IS_REJECT(CORRAL_OK));
    CHECK(!CORRAL_IS_REJECT(CORRAL_SKIP));
    CHECK(!CORRAL_IS_REJECT(CORRAL_WAIT));
    CHECK(!CORRAL_IS_REJECT(-12));
}

static void test_load_good(void)
{
    struct corral_plugin_lib *lib = NULL;
    char err[512] = "";
    CHECK_INT_EQ(corral_plugin_find(TEST_PLUGIN_DIR, "TestGood", NULL, &lib, err, sizeof(err)), 0);
    CHECK_STR_EQ(lib->plugin->name, "TestGood");
    CHECK(lib->plugin->filter != NULL);
    corral_plugin_close(lib);
}

static void expect_refused(const char *file, const char *name, int want, const char *needle)
{
    char path[1024], err[512] = "";
    struct corral_plugin_lib *lib = NULL;
    snprintf(path, sizeof(path), "%s/%s", TEST_PLUGIN_DIR, file);
    int rc = corral_plugin_find(TEST_PLUGIN_DIR, name, path, &lib, err, sizeof(err));
    CHECK_INT_EQ(rc, want);
    CHECK(lib == NULL);
    CHECK_STR_CONTAINS(err, path);
    CHECK_STR_CONTAINS(err, needle);
}

static void test_refuse_incompatible(void)
{
    expect_refused("badabi.so", "TestBadAbi", CORRAL_EABI,
                   "built for plugin ABI version 999, this corral expects version 1");
    expect_refused("short.so", "TestShort", CORRAL_EABI, "plugin struct is 32 bytes");
    expect_refused("nosym.so", "Nothing", CORRAL_EABI, "no corral_plugin_entry symbol");
    expect_refused("missing.so", "Missing", -ENOENT, "cannot load plugin");
    expect_refused("testgood.so", "SomethingElse", CORRAL_EABI, "provides plugin TestGood, not "
                                                             "SomethingElse");
}

static void test_not_found_in_dir(void)
{
    struct corral_plugin_lib *lib = NULL;
    char err[512] = "";
    CHECK_INT_EQ(corral_plugin_find(TEST_PLUGIN_DIR, "NoSuchPlugin", NULL, &lib, err,
                                    sizeof(err)), -ENOENT);
    CHECK_STR_CONTAINS(err, "plugin NoSuchPlugin not found in");
    CHECK_STR_CONTAINS(err, "nosuchplugin.so");
}

/* A profile naming a plugin by path runs it at Filter, with its reason in the explanation. */
static void test_good_plugin_acts(void)
{
    static const char profile[] =
        "profiles:\n"
        "- schedulerName: default-scheduler\n"
        "  plugins:\n"
        "    multiPoint:\n"
        "      enabled:\n"
        "      - name: TestGood\n"
        "        path: " TEST_PLUGIN_DIR "/testgood.so\n"
        "      - name: ResourceFit\n";
    static const char nodes[] =
        "[{\"metadata\":{\"name\":\"n1\",\"labels\":{\"test.corral.io/bad\":\"true\"}},"
        "\"status\":{\"allocatable\":{\"cpu\":\"8\",\"memory\":\"16Gi\"}}},"
        "{\"metadata\":{\"name\":\"n2\"},\"status\":{\"allocatable\":{\"cpu\":\"8\","
        "\"memory\":\"16Gi\"}}}]";
    struct sched_fixture fx;
    char buf[2048];
    sched_fixture_init(&fx, profile, nodes);
    struct corral_pod *p = sched_add(&fx, pod_json(buf, sizeof(buf), "a", 1000, NULL, NULL, NULL));
    CHECK_STR_EQ(sched_node_of(&fx, p), "n2");
    p = sched_add(&fx, pod_json(buf, sizeof(buf), "b", 7500, NULL, NULL, NULL));
    CHECK_STR_EQ(sched_node_of(&fx, p), "");
    CHECK_STR_EQ(fx.last_message, "0/2 nodes are available: 1 Insufficient cpu, "
                                  "1 node(s) were labelled bad.");
    sched_fixture_free(&fx);
}

static void test_profile_refuses_bad_plugin(void)
{
    static const char profile[] =
        "profiles:\n"
        "- schedulerName: x\n"
        "  plugins:\n"
        "    filter:\n"
        "      enabled:\n"
        "      - name: TestBadAbi\n"
        "        path: " TEST_PLUGIN_DIR "/badabi.so\n";
    struct corral_sched_config *cfg = NULL;
    struct corral_snapshot *snap = corral_snapshot_new();
    struct corral_framework *fw = NULL;
    char err[1024] = "";
    CHECK_INT_EQ(corral_sched_config_parse(profile, strlen(profile), "p.yaml", &cfg, err,
                                           sizeof(err)), 0);
    CHECK_INT_EQ(corral_fw_new(cfg, NULL, snap, NULL, 1, &fw, err, sizeof(err)), CORRAL_EABI);
    CHECK_STR_CONTAINS(err, "profile x: ");
    CHECK_STR_CONTAINS(err, "badabi.so: built for plugin ABI version 999");
    corral_sched_config_free(cfg);
    corral_snapshot_free(snap);
}

static void test_default_dir(void)
{
    /* Tests run from the build tree, so the build tree's plugins are the default. */
    CHECK_STR_EQ(corral_plugin_default_dir(), CORRAL_PLUGIN_BUILD_DIR);
}

CORRAL_TESTS(CORRAL_TEST(abi_layout), CORRAL_TEST(reject_codes), CORRAL_TEST(load_good),
             CORRAL_TEST(refuse_incompatible), CORRAL_TEST(not_found_in_dir),
             CORRAL_TEST(good_plugin_acts), CORRAL_TEST(profile_refuses_bad_plugin),
             CORRAL_TEST(default_dir))
