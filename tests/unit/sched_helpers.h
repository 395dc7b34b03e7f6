/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sched_helpers: small fixtures for the scheduler and plugin tests: a cluster built from JSON
 * node literals, a framework from a profile written inline, and one-call scheduling of a pod
 * literal. Everything is freed by sched_fixture_free(), so ASan's leak check stays meaningful.
 */
#ifndef CORRAL_TEST_SCHED_HELPERS_H
#define CORRAL_TEST_SCHED_HELPERS_H

#include "framework.h"
#include "harness.h"
#include "profile.h"
#include "snapshot.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

struct sched_fixture {
    struct corral_sched_config *cfg;
    struct corral_snapshot *snap;
    struct corral_framework *fw;
    char last_message[2048];
    int evicted;
    json_t *objects; /* PodGroups etc. for lookup */
    uint64_t clock_ms;
};

static inline void fx_unschedulable(void *arg, struct corral_pod *pod, const char *message)
{
    struct sched_fixture *fx = arg;
    (void)pod;
    snprintf(fx->last_message, sizeof(fx->last_message), "%s", message);
}

static inline void fx_evicted(void *arg, struct corral_pod *victim, const struct corral_pod *by)
{
    struct sched_fixture *fx = arg;
    (void)victim;
    (void)by;
    fx->evicted++;
}

static inline json_t *fx_lookup(void *arg, const char *api_version, const char *kind, const char *ns,
                         const char *name)
{
    struct sched_fixture *fx = arg;
    size_t i;
    json_t *o;
    (void)api_version;
    json_array_foreach(fx->objects, i, o)
    {
        const char *k = json_string_value(json_object_get(o, "kind"));
        json_t *meta = json_object_get(o, "metadata");
        const char *n = json_string_value(json_object_get(meta, "name"));
        const char *s = json_string_value(json_object_get(meta, "namespace"));
        if (k && n && strcmp(k, kind) == 0 && strcmp(n, name) == 0 &&
            strcmp(s ? s : "default", ns) == 0)
            return o;
    }
    return NULL;
}

static inline uint64_t fx_now(void *arg)
{
    return ((struct sched_fixture *)arg)->clock_ms;
}

/* Builds a fixture: profile YAML text, nodes as a JSON array literal. Aborts on failure. */
static inline void sched_fixture_init(struct sched_fixture *fx, const char *profile, const char *nodes)
{
    char err[1024] = "";
    memset(fx, 0, sizeof(*fx));
    fx->objects = json_array();
    int rc = corral_sched_config_parse(profile, strlen(profile), "test-profile", &fx->cfg, err,
                                       sizeof(err));
    if (rc < 0)
        fprintf(stderr, "profile: %s\n", err);
    CHECK(rc == 0);
    fx->snap = corral_snapshot_new();
    json_error_t je;
    json_t *arr = json_loads(nodes, 0, &je);
    if (!arr)
        fprintf(stderr, "nodes JSON: %s (line %d)\n", je.text, je.line);
    CHECK(json_is_array(arr));
    size_t i;
    json_t *n;
    json_array_foreach(arr, i, n)
    {
        rc = corral_snapshot_upsert_node(fx->snap, json_incref(n), err, sizeof(err));
        if (rc < 0)
            fprintf(stderr, "node %zu: %s\n", i, err);
        CHECK(rc >= 0);
    }
    json_decref(arr);
    struct corral_fw_callbacks cb = {.arg = fx,
                                     .unschedulable = fx_unschedulable,
                                     .evicted = fx_evicted,
                                     .lookup = fx_lookup,
                                     .now_ms = fx_now};
    rc = corral_fw_new(fx->cfg, NULL, fx->snap, &cb, 7, &fx->fw, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "framework: %s\n", err);
    CHECK(rc == 0);
}

static inline void sched_fixture_free(struct sched_fixture *fx)
{
    corral_fw_free(fx->fw);
    corral_snapshot_free(fx->snap);
    corral_sched_config_free(fx->cfg);
    json_decref(fx->objects);
}

/* Adds a pod (JSON literal) and runs the queue dry. Returns the pod (borrowed). */
static inline struct corral_pod *sched_add(struct sched_fixture *fx, const char *pod_json)
{
    json_error_t je;
    json_t *obj = json_loads(pod_json, 0, &je);
    if (!obj)
        fprintf(stderr, "pod JSON: %s\n", je.text);
    CHECK(obj != NULL);
    const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
    const char *ns = json_string_value(json_object_get(json_object_get(obj, "metadata"),
                                                       "namespace"));
    char nbuf[256], nsbuf[256];
    snprintf(nbuf, sizeof(nbuf), "%s", name);
    snprintf(nsbuf, sizeof(nsbuf), "%s", ns ? ns : "default");
    struct corral_pod *pod;
    char err[512];
    int rc = corral_pod_new(obj, &pod, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "pod: %s\n", err);
    CHECK(rc == 0);
    CHECK(corral_fw_add_pod(fx->fw, pod) == 0);
    while (corral_fw_schedule_next(fx->fw, NULL, NULL))
        ;
    corral_fw_process_waiting(fx->fw, false);
    return corral_fw_find_pod(fx->fw, nsbuf, nbuf);
}

/* Name of the node pod is on, or "" when none. */
static inline const char *sched_node_of(struct sched_fixture *fx, const struct corral_pod *pod)
{
    if (!pod || pod->node == CORRAL_NO_NODE)
        return "";
    return fx->snap->nodes[pod->node].name;
}

/* GPU indices of pod as "0,2" into buf. */
static inline const char *sched_gpus_of(struct sched_fixture *fx, const struct corral_pod *pod,
                                 char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    if (!pod || pod->node == CORRAL_NO_NODE)
        return buf;
    const struct corral_snap_node *nd = &fx->snap->nodes[pod->node];
    for (uint32_t g = 0; g < nd->n_gpus && off < len; g++)
        if (pod->gpus >> g & 1)
            off += (size_t)snprintf(buf + off, len - off, "%s%d", off ? "," : "",
                                    nd->gpus[g].index);
    return buf;
}

/* A pod literal asking for cpu (millicores) and optionally GPUs; extra is spliced into spec. */
static inline const char *pod_json(char *buf, size_t len, const char *name, int cpu_m, const char *gpu,
                            const char *annotations, const char *extra_spec)
{
    snprintf(buf, len,
             "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\","
             "\"namespace\":\"default\",\"annotations\":{%s}},\"spec\":{%s%s"
             "\"containers\":[{\"name\":\"c\",\"resources\":{\"requests\":{\"cpu\":\"%dm\","
             "\"memory\":\"1Gi\"},\"limits\":{%s}}}]}}",
             name, annotations ? annotations : "", extra_spec ? extra_spec : "",
             extra_spec ? "," : "", cpu_m, gpu ? gpu : "");
    return buf;
}

#endif
