/* SPDX-License-Identifier: Apache-2.0 */
/*
 * profile: scheduler configuration in YAML, shaped like Kubernetes' KubeSchedulerConfiguration:
 *
 *     apiVersion: corral.io/v1alpha1
 *     kind: SchedulerConfiguration
 *     pluginDir: /usr/lib/corral/plugins       # optional
 *     profiles:
 *     - schedulerName: default-scheduler
 *       percentageOfNodesToScore: 100          # 0 = Kubernetes' adaptive default
 *       tieBreak: random                       # or "first": first node in snapshot order
 *       plugins:
 *         multiPoint:                          # every extension point the plugin implements
 *           enabled: [{name: ResourceFit}, {name: FragAware, weight: 2}]
 *         score:
 *           disabled: [{name: FragAware}]      # or {name: "*"}
 *       pluginConfig:
 *       - name: FragAware
 *         args: {...}
 *
 * Extension point keys: preEnqueue, queueSort, preFilter, filter, postFilter, preScore, score,
 * reserve, permit, preBind, bind, postBind, and multiPoint. An entry may carry `path:` to load
 * a plugin from a specific file. Unknown keys are errors, so typos do not pass silently. This
 * file only parses; which callbacks run where is decided when the plugins are loaded
 * (framework.c), because that depends on what each plugin implements.
 */
#ifndef CORRAL_SCHED_PROFILE_H
#define CORRAL_SCHED_PROFILE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

enum corral_point {
    CORRAL_POINT_PRE_ENQUEUE = 0,
    CORRAL_POINT_QUEUE_SORT,
    CORRAL_POINT_PRE_FILTER,
    CORRAL_POINT_FILTER,
    CORRAL_POINT_POST_FILTER,
    CORRAL_POINT_PRE_SCORE,
    CORRAL_POINT_SCORE,
    CORRAL_POINT_RESERVE,
    CORRAL_POINT_PERMIT,
    CORRAL_POINT_PRE_BIND,
    CORRAL_POINT_BIND,
    CORRAL_POINT_POST_BIND,
    CORRAL_POINT_MULTI,
    CORRAL_POINT_COUNT,
};

struct corral_profile_entry {
    char *name;
    char *path;     /* explicit file, or NULL */
    int64_t weight; /* 0 when not given */
};

struct corral_profile_set {
    struct corral_profile_entry *enabled;
    uint32_t n_enabled;
    char **disabled; /* names; "*" disables every multiPoint plugin here */
    uint32_t n_disabled;
};

struct corral_profile {
    char *scheduler_name;
    int percentage_of_nodes_to_score; /* 0..100; 0 = adaptive */
    bool tie_first;                   /* equal scores: first node in order, not random */
    struct corral_profile_set points[CORRAL_POINT_COUNT];
    json_t *plugin_args; /* object: plugin name -> args (owned) */
};

struct corral_sched_config {
    char *plugin_dir; /* NULL when not given */
    struct corral_profile *profiles;
    uint32_t n_profiles;
};

/* The YAML key of an extension point ("preFilter"). */
const char *corral_point_name(enum corral_point p);

/*
 * Parses a configuration from YAML/JSON text; source names it in messages. Returns 0 and
 * *out (free with corral_sched_config_free), or CORRAL_EPARSE / CORRAL_EINVALID with a
 * message in err such as "profile.yaml: profiles[0].plugins.score.enabled[1]: name is
 * required", or -ENOMEM.
 */
int corral_sched_config_parse(const char *text, size_t len, const char *source,
                              struct corral_sched_config **out, char *err, size_t errlen);

/* As above, reading path. Returns -errno when the file cannot be read. */
int corral_sched_config_load(const char *path, struct corral_sched_config **out, char *err,
                             size_t errlen);

void corral_sched_config_free(struct corral_sched_config *cfg);

/* Arguments of plugin name in profile p (borrowed), or NULL. */
json_t *corral_profile_args(const struct corral_profile *p, const char *name);

#endif
