/* SPDX-License-Identifier: Apache-2.0 */
/*
 * profile: parsing the scheduler configuration (see profile.h). Each parse_* function reads
 * one level of the document and reports errors with the path of the offending field.
 */
#include "profile.h"

#include "error.h"
#include "yamljson.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const point_names[CORRAL_POINT_COUNT] = {
    "preEnqueue", "queueSort", "preFilter", "filter",  "postFilter", "preScore",   "score",
    "reserve",    "permit",    "preBind",   "bind",    "postBind",   "multiPoint",
};

const char *corral_point_name(enum corral_point p)
{
    return p < CORRAL_POINT_COUNT ? point_names[p] : "?";
}

struct perr {
    const char *source;
    char *buf;
    size_t len;
};

__attribute__((format(printf, 3, 4))) static int fail(struct perr *pe, const char *path,
                                                      const char *fmt, ...)
{
    int n = snprintf(pe->buf, pe->len, "%s: %s%s", pe->source, path, *path ? ": " : "");
    if (n < 0 || (size_t)n >= pe->len)
        return CORRAL_EINVALID;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pe->buf + n, pe->len - (size_t)n, fmt, ap);
    va_end(ap);
    return CORRAL_EINVALID;
}

/* out = path + suffix (printf-style), truncated to len. */
__attribute__((format(printf, 3, 4))) static void subpath(char *out, size_t len, const char *fmt,
                                                          ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, len, fmt, ap);
    va_end(ap);
    if (n < 0)
        out[0] = '\0';
}

/* Rejects keys of obj not in allowed (NULL-terminated). */
static int check_keys(struct perr *pe, const char *path, json_t *obj, const char *const *allowed)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        const char *const *a = allowed;
        while (*a && strcmp(*a, k) != 0)
            a++;
        if (!*a)
            return fail(pe, path, "unknown field \"%s\"", k);
    }
    return 0;
}

static int parse_entry(struct perr *pe, const char *path, json_t *e,
                       struct corral_profile_entry *out)
{
    static const char *const keys[] = {"name", "weight", "path", NULL};
    if (!json_is_object(e))
        return fail(pe, path, "must be an object with a name");
    int rc = check_keys(pe, path, e, keys);
    if (rc < 0)
        return rc;
    const char *name = json_string_value(json_object_get(e, "name"));
    json_t *w = json_object_get(e, "weight");
    json_t *p = json_object_get(e, "path");
    if (!name || !*name)
        return fail(pe, path, "name is required");
    if (w && (!json_is_integer(w) || json_integer_value(w) < 0 ||
              json_integer_value(w) > 1000000))
        return fail(pe, path, "weight must be an integer between 0 and 1000000");
    if (p && !json_is_string(p))
        return fail(pe, path, "path must be a string");
    out->name = strdup(name);
    out->path = p ? strdup(json_string_value(p)) : NULL;
    out->weight = w ? json_integer_value(w) : 0;
    return (!out->name || (p && !out->path)) ? -ENOMEM : 0;
}

static int parse_list(struct perr *pe, const char *path, json_t *list,
                      struct corral_profile_set *set, int disabled)
{
    if (!list)
        return 0;
    if (!json_is_array(list))
        return fail(pe, path, "must be a list");
    size_t n = json_array_size(list);
    if (disabled)
        set->disabled = calloc(n + 1, sizeof(char *));
    else
        set->enabled = calloc(n + 1, sizeof(*set->enabled));
    if (!set->disabled && !set->enabled)
        return -ENOMEM;
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        char sub[256];
        subpath(sub, sizeof(sub), "%s[%zu]", path, i);
        struct corral_profile_entry ent = {0};
        int rc = parse_entry(pe, sub, e, &ent);
        if (rc < 0) {
            free(ent.name);
            free(ent.path);
            return rc;
        }
        if (disabled) {
            set->disabled[set->n_disabled++] = ent.name;
            free(ent.path);
        } else {
            set->enabled[set->n_enabled++] = ent;
        }
    }
    return 0;
}

static int parse_point(struct perr *pe, const char *path, json_t *v,
                       struct corral_profile_set *set)
{
    static const char *const keys[] = {"enabled", "disabled", NULL};
    if (!json_is_object(v))
        return fail(pe, path, "must be an object with enabled and/or disabled");
    int rc = check_keys(pe, path, v, keys);
    char sub[256];
    subpath(sub, sizeof(sub), "%s.enabled", path);
    if (rc == 0)
        rc = parse_list(pe, sub, json_object_get(v, "enabled"), set, 0);
    subpath(sub, sizeof(sub), "%s.disabled", path);
    if (rc == 0)
        rc = parse_list(pe, sub, json_object_get(v, "disabled"), set, 1);
    return rc;
}

static int parse_plugins(struct perr *pe, const char *path, json_t *plugins,
                         struct corral_profile *p)
{
    if (!json_is_object(plugins))
        return fail(pe, path, "must be an object keyed by extension point");
    const char *k;
    json_t *v;
    json_object_foreach(plugins, k, v)
    {
        int pt = 0;
        while (pt < CORRAL_POINT_COUNT && strcmp(point_names[pt], k) != 0)
            pt++;
        if (pt == CORRAL_POINT_COUNT)
            return fail(pe, path, "unknown extension point \"%s\"", k);
        char sub[256];
        subpath(sub, sizeof(sub), "%s.%s", path, k);
        int rc = parse_point(pe, sub, v, &p->points[pt]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int parse_plugin_config(struct perr *pe, const char *path, json_t *list,
                               struct corral_profile *p)
{
    static const char *const keys[] = {"name", "args", NULL};
    if (!list)
        return 0;
    if (!json_is_array(list))
        return fail(pe, path, "must be a list");
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        char sub[256];
        subpath(sub, sizeof(sub), "%s[%zu]", path, i);
        if (!json_is_object(e))
            return fail(pe, sub, "must be an object with name and args");
        int rc = check_keys(pe, sub, e, keys);
        if (rc < 0)
            return rc;
        const char *name = json_string_value(json_object_get(e, "name"));
        json_t *args = json_object_get(e, "args");
        if (!name)
            return fail(pe, sub, "name is required");
        if (args && !json_is_object(args))
            return fail(pe, sub, "args must be an object");
        if (json_object_get(p->plugin_args, name))
            return fail(pe, sub, "plugin %s is configured twice", name);
        if (json_object_set_new(p->plugin_args, name, args ? json_incref(args) : json_object()) < 0)
            return -ENOMEM;
    }
    return 0;
}

static int parse_profile(struct perr *pe, const char *path, json_t *v, struct corral_profile *p)
{
    static const char *const keys[] = {"schedulerName", "percentageOfNodesToScore", "tieBreak",
                                       "plugins", "pluginConfig", NULL};
    if (!json_is_object(v))
        return fail(pe, path, "must be an object");
    int rc = check_keys(pe, path, v, keys);
    if (rc < 0)
        return rc;
    json_t *name = json_object_get(v, "schedulerName");
    json_t *pct = json_object_get(v, "percentageOfNodesToScore");
    if (name && (!json_is_string(name) || !*json_string_value(name)))
        return fail(pe, path, "schedulerName must be a non-empty string");
    if (pct && (!json_is_integer(pct) || json_integer_value(pct) < 0 ||
                json_integer_value(pct) > 100))
        return fail(pe, path, "percentageOfNodesToScore must be an integer from 0 to 100");
    const char *tie = json_string_value(json_object_get(v, "tieBreak"));
    if (json_object_get(v, "tieBreak") && (!tie || (strcmp(tie, "random") && strcmp(tie, "first"))))
        return fail(pe, path, "tieBreak must be random or first");
    p->tie_first = tie && strcmp(tie, "first") == 0;
    p->scheduler_name = strdup(name ? json_string_value(name) : "default-scheduler");
    p->percentage_of_nodes_to_score = pct ? (int)json_integer_value(pct) : 100;
    p->plugin_args = json_object();
    if (!p->scheduler_name || !p->plugin_args)
        return -ENOMEM;
    char sub[256];
    subpath(sub, sizeof(sub), "%s.plugins", path);
    if (json_object_get(v, "plugins"))
        rc = parse_plugins(pe, sub, json_object_get(v, "plugins"), p);
    subpath(sub, sizeof(sub), "%s.pluginConfig", path);
    if (rc == 0)
        rc = parse_plugin_config(pe, sub, json_object_get(v, "pluginConfig"), p);
    return rc;
}

static int parse_config(struct perr *pe, json_t *doc, struct corral_sched_config *cfg)
{
    static const char *const keys[] = {"apiVersion", "kind", "pluginDir", "profiles", NULL};
    if (!json_is_object(doc))
        return fail(pe, "", "the configuration must be a mapping");
    int rc = check_keys(pe, "", doc, keys);
    if (rc < 0)
        return rc;
    const char *kind = json_string_value(json_object_get(doc, "kind"));
    if (kind && strcmp(kind, "SchedulerConfiguration") != 0)
        return fail(pe, "kind", "expected SchedulerConfiguration, got %s", kind);
    json_t *dir = json_object_get(doc, "pluginDir");
    if (dir && !json_is_string(dir))
        return fail(pe, "pluginDir", "must be a string");
    if (dir && !(cfg->plugin_dir = strdup(json_string_value(dir))))
        return -ENOMEM;
    json_t *profiles = json_object_get(doc, "profiles");
    if (!json_is_array(profiles) || json_array_size(profiles) == 0)
        return fail(pe, "profiles", "at least one profile is required");
    cfg->profiles = calloc(json_array_size(profiles), sizeof(*cfg->profiles));
    if (!cfg->profiles)
        return -ENOMEM;
    size_t i;
    json_t *v;
    json_array_foreach(profiles, i, v)
    {
        char path[64];
        subpath(path, sizeof(path), "profiles[%zu]", i);
        cfg->n_profiles++;
        if ((rc = parse_profile(pe, path, v, &cfg->profiles[i])) < 0)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(cfg->profiles[j].scheduler_name, cfg->profiles[i].scheduler_name) == 0)
                return fail(pe, path, "schedulerName %s is used by two profiles",
                            cfg->profiles[i].scheduler_name);
    }
    return 0;
}

int corral_sched_config_parse(const char *text, size_t len, const char *source,
                              struct corral_sched_config **out, char *err, size_t errlen)
{
    struct perr pe = {source, err, errlen};
    struct corral_parse_error ye = {0};
    json_t *docs = NULL;
    int rc = corral_yaml_load(text, len, &docs, &ye);
    if (rc < 0) {
        snprintf(err, errlen, "%s:%d:%d: %s", source, ye.line, ye.column, ye.message);
        return rc;
    }
    struct corral_sched_config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg) {
        json_decref(docs);
        return -ENOMEM;
    }
    if (json_array_size(docs) != 1)
        rc = fail(&pe, "", "expected exactly one YAML document, found %zu",
                  json_array_size(docs));
    else
        rc = parse_config(&pe, json_array_get(docs, 0), cfg);
    json_decref(docs);
    if (rc < 0) {
        corral_sched_config_free(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

int corral_sched_config_load(const char *path, struct corral_sched_config **out, char *err,
                             size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (len + 4096 > cap) {
            char *nb = realloc(buf, cap = cap * 2 + 8192);
            if (!nb) {
                rc = -ENOMEM;
                break;
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    fclose(f);
    if (rc == 0)
        rc = corral_sched_config_parse(buf ? buf : "", len, path, out, err, errlen);
    free(buf);
    return rc;
}

static void free_set(struct corral_profile_set *s)
{
    for (uint32_t i = 0; i < s->n_enabled; i++) {
        free(s->enabled[i].name);
        free(s->enabled[i].path);
    }
    for (uint32_t i = 0; i < s->n_disabled; i++)
        free(s->disabled[i]);
    free(s->enabled);
    free(s->disabled);
}

void corral_sched_config_free(struct corral_sched_config *cfg)
{
    if (!cfg)
        return;
    for (uint32_t i = 0; i < cfg->n_profiles; i++) {
        struct corral_profile *p = &cfg->profiles[i];
        free(p->scheduler_name);
        for (int pt = 0; pt < CORRAL_POINT_COUNT; pt++)
            free_set(&p->points[pt]);
        json_decref(p->plugin_args);
    }
    free(cfg->profiles);
    free(cfg->plugin_dir);
    free(cfg);
}

json_t *corral_profile_args(const struct corral_profile *p, const char *name)
{
    return json_object_get(p->plugin_args, name);
}
