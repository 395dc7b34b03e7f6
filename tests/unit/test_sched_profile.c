/* SPDX-License-Identifier: Apache-2.0 */
/* Scheduler configuration: parsing, errors with paths, and extension-point resolution. */
#include "corral-config.h"
#include "error.h"
#include "sched_helpers.h"

static int parse(const char *text, struct corral_sched_config **cfg, char *err, size_t len)
{
    return corral_sched_config_parse(text, strlen(text), "p.yaml", cfg, err, len);
}

static void test_parse_full(void)
{
    static const char text[] =
        "apiVersion: corral.io/v1alpha1\n"
        "kind: SchedulerConfiguration\n"
        "pluginDir: /opt/plugins\n"
        "profiles:\n"
        "- schedulerName: a\n"
        "  percentageOfNodesToScore: 0\n"
        "  tieBreak: first\n"
        "  plugins:\n"
        "    multiPoint:\n"
        "      enabled: [{name: ResourceFit}, {name: MostAllocated, weight: 3}]\n"
        "    score:\n"
        "      disabled: [{name: MostAllocated}]\n"
        "  pluginConfig:\n"
        "  - name: ResourceFit\n"
        "    args: {gpuSelection: firstFit}\n"
        "- schedulerName: b\n";
    struct corral_sched_config *cfg = NULL;
    char err[512] = "";
    CHECK_INT_EQ(parse(text, &cfg, err, sizeof(err)), 0);
    CHECK_STR_EQ(cfg->plugin_dir, "/opt/plugins");
    CHECK_INT_EQ(cfg->n_profiles, 2);
    CHECK_STR_EQ(cfg->profiles[0].scheduler_name, "a");
    CHECK_INT_EQ(cfg->profiles[0].percentage_of_nodes_to_score, 0);
    CHECK(cfg->profiles[0].tie_first);
    CHECK_INT_EQ(cfg->profiles[0].points[CORRAL_POINT_MULTI].n_enabled, 2);
    CHECK_INT_EQ(cfg->profiles[0].points[CORRAL_POINT_MULTI].enabled[1].weight, 3);
    CHECK_STR_EQ(cfg->profiles[0].points[CORRAL_POINT_SCORE].disabled[0], "MostAllocated");
    CHECK_STR_EQ(json_string_value(json_object_get(corral_profile_args(&cfg->profiles[0],
                                                                       "ResourceFit"),
                                                   "gpuSelection")),
                 "firstFit");
    CHECK_INT_EQ(cfg->profiles[1].percentage_of_nodes_to_score, 100);
    CHECK(!cfg->profiles[1].tie_first);
    corral_sched_config_free(cfg);
}

static void expect_error(const char *text, int want, const char *msg)
{
    struct corral_sched_config *cfg = NULL;
    char err[512] = "";
    CHECK_INT_EQ(parse(text, &cfg, err, sizeof(err)), want);
    CHECK(cfg == NULL);
    CHECK_STR_CONTAINS(err, msg);
}

static void test_errors(void)
{
    expect_error("profiles: []\n", CORRAL_EINVALID, "p.yaml: profiles: at least one profile");
    expect_error("profile: []\n", CORRAL_EINVALID, "unknown field \"profile\"");
    expect_error("profiles:\n- schedulerName: a\n  plugins:\n    scoring: {}\n",
                 CORRAL_EINVALID, "profiles[0].plugins: unknown extension point \"scoring\"");
    expect_error("profiles:\n- plugins:\n    score:\n      enabled: [{weight: 2}]\n",
                 CORRAL_EINVALID, "profiles[0].plugins.score.enabled[0]: name is required");
    expect_error("profiles:\n- plugins:\n    score:\n      enabled: [{name: A, weight: -1}]\n",
                 CORRAL_EINVALID, "weight must be an integer between 0 and 1000000");
    expect_error("profiles:\n- percentageOfNodesToScore: 101\n", CORRAL_EINVALID,
                 "percentageOfNodesToScore must be an integer from 0 to 100");
    expect_error("profiles:\n- tieBreak: sometimes\n", CORRAL_EINVALID,
                 "tieBreak must be random or first");
    expect_error("profiles:\n- schedulerName: a\n- schedulerName: a\n", CORRAL_EINVALID,
                 "schedulerName a is used by two profiles");
    expect_error("profiles:\n- pluginConfig:\n  - name: A\n  - name: A\n", CORRAL_EINVALID,
                 "plugin A is configured twice");
    expect_error("kind: Pod\nprofiles: [{}]\n", CORRAL_EINVALID,
                 "expected SchedulerConfiguration, got Pod");
    expect_error("profiles: [\n", CORRAL_EPARSE, "p.yaml:");
}

/* Which callbacks run where: multiPoint, per-point enabled lists, disabled, weights. */
static void test_resolution(void)
{
    static const char profile[] =
        "profiles:\n"
        "- plugins:\n"
        "    multiPoint:\n"
        "      enabled: [{name: TaintToleration}, {name: ResourceFit}, {name: MostAllocated,"
        " weight: 5}]\n"
        "    filter:\n"
        "      enabled: [{name: GpuMatch}]\n"
        "    score:\n"
        "      disabled: [{name: TaintToleration}]\n";
    struct sched_fixture fx;
    sched_fixture_init(&fx, profile, "[]");
    struct corral_fw_profile *fp = &fx.fw->profiles[0];
    CHECK_INT_EQ(fp->n_at[CORRAL_POINT_FILTER], 3);
    CHECK_STR_EQ(fp->plugins[fp->at[CORRAL_POINT_FILTER][0]]->name, "GpuMatch");
    CHECK_STR_EQ(fp->plugins[fp->at[CORRAL_POINT_FILTER][1]]->name, "TaintToleration");
    CHECK_STR_EQ(fp->plugins[fp->at[CORRAL_POINT_FILTER][2]]->name, "ResourceFit");
    CHECK_INT_EQ(fp->n_at[CORRAL_POINT_SCORE], 1);
    CHECK_STR_EQ(fp->plugins[fp->at[CORRAL_POINT_SCORE][0]]->name, "MostAllocated");
    CHECK_INT_EQ(fp->score_weight[0], 5);
    CHECK(fp->score_cached[0]);
    CHECK_INT_EQ(fp->n_at[CORRAL_POINT_RESERVE], 1); /* ResourceFit */
    sched_fixture_free(&fx);
}

static void test_resolution_errors(void)
{
    static const char p1[] = "profiles:\n- plugins:\n    score:\n"
                             "      enabled: [{name: ResourceFit}]\n";
    static const char p2[] = "profiles:\n- plugins:\n    queueSort:\n"
                             "      enabled: [{name: Priority}]\n"
                             "- schedulerName: other\n";
    static const char p3[] = "profiles:\n- plugins:\n    multiPoint:\n"
                             "      enabled: [{name: ResourceFit}]\n"
                             "  pluginConfig:\n  - name: ResourceFit\n"
                             "    args: {gpuSelection: worst}\n";
    static const char *const texts[] = {p1, p2, p3};
    static const char *const msgs[] = {
        "profile default-scheduler: plugin ResourceFit is enabled for score but does not "
        "implement it",
        "all profiles must use the same queueSort plugin (Priority vs none)",
        "profile default-scheduler: plugin ResourceFit: gpuSelection: \"worst\" is not bestFit, "
        "firstFit or random",
    };
    for (int i = 0; i < 3; i++) {
        struct corral_sched_config *cfg = NULL;
        struct corral_snapshot *snap = corral_snapshot_new();
        struct corral_framework *fw = NULL;
        char err[1024] = "";
        CHECK_INT_EQ(parse(texts[i], &cfg, err, sizeof(err)), 0);
        CHECK(corral_fw_new(cfg, NULL, snap, NULL, 1, &fw, err, sizeof(err)) < 0);
        CHECK_STR_EQ(err, msgs[i]);
        corral_sched_config_free(cfg);
        corral_snapshot_free(snap);
    }
}

static void test_shipped_profiles_load(void)
{
    static const char *const names[] = {"default", "random", "dotprod", "gpuclustering",
                                         "gpupacking", "bestfit"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char path[1024], err[1024] = "";
        snprintf(path, sizeof(path), "%s/manifests/profiles/%s.yaml", CORRAL_SOURCE_DIR,
                 names[i]);
        struct corral_sched_config *cfg = NULL;
        struct corral_snapshot *snap = corral_snapshot_new();
        struct corral_framework *fw = NULL;
        CHECK_INT_EQ(corral_sched_config_load(path, &cfg, err, sizeof(err)), 0);
        int rc = corral_fw_new(cfg, NULL, snap, NULL, 1, &fw, err, sizeof(err));
        if (rc < 0)
            fprintf(stderr, "%s: %s\n", names[i], err);
        CHECK_INT_EQ(rc, 0);
        corral_fw_free(fw);
        corral_sched_config_free(cfg);
        corral_snapshot_free(snap);
    }
}

CORRAL_TESTS(CORRAL_TEST(parse_full), CORRAL_TEST(errors), CORRAL_TEST(resolution),
             CORRAL_TEST(resolution_errors), CORRAL_TEST(shipped_profiles_load))
