/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctrl_job: the Job controller.
 *
 * Runs pods from spec.template until spec.completions of them have Succeeded, at most
 * spec.parallelism at a time. NonIndexed: any pod may succeed; without completions the Job is
 * complete once one pod has succeeded and none is left running (the work-queue pattern).
 * Indexed: each index 0..completions-1 must succeed once; its pods carry the
 * batch.kubernetes.io/job-completion-index annotation and label, the hostname "<job>-<index>"
 * and JOB_COMPLETION_INDEX in their environment, and status.completedIndexes lists the done
 * ones ("0-3,5").
 *
 * Failures (Failed pods, pods deleted before succeeding, and container restarts under
 * restartPolicy OnFailure) are counted against backoffLimit; replacements after a failure wait
 * 10 s doubling to 6 min. spec.podFailurePolicy decides first for each Failed pod, rule by
 * rule (onExitCodes with In/NotIn, onPodConditions): FailJob records the FailureTarget
 * condition and fails the Job (reason PodFailurePolicy) once the pod is counted, Ignore leaves
 * the failure uncounted, Count counts it. spec.successPolicy (Indexed) completes a Job early
 * once a rule's indexes have succeeded (SuccessCriteriaMet, then Complete with reason
 * SuccessPolicy; the pods still running are stopped). activeDeadlineSeconds fails a Job that
 * runs too long; suspend stops its pods (and resuming restarts the clock);
 * ttlSecondsAfterFinished deletes a finished Job (its pods go with it through the garbage
 * collector).
 *
 * Counting is exact as in Kubernetes' finalizer tracking: each pod is created with the
 * batch.kubernetes.io/job-tracking finalizer; a pod that finishes is first recorded in
 * status.uncountedTerminatedPods, then its finalizer is removed, then it moves into
 * status.succeeded/failed. So a pod is counted once, even if it is deleted right after it
 * finished or the apiserver restarts in between. Pods whose Job is gone lose the finalizer.
 *
 * Status: active, ready, succeeded, failed, startTime, completionTime, completedIndexes and the
 * conditions Complete (CompletionsReached, SuccessPolicy), Failed (BackoffLimitExceeded,
 * DeadlineExceeded, PodFailurePolicy), FailureTarget, SuccessCriteriaMet and Suspended. Events: SuccessfulCreate, SuccessfulDelete, Completed, BackoffLimitExceeded,
 * DeadlineExceeded, Suspended, Resumed.
 */
#include "ctrl.h"
#include "ctrl_map.h"
#include "ctrl_pods.h"
#include "ctrl_util.h"
#include "error.h"
#include "log.h"
#include "meta.h"
#include "objects.h"
#include "selector.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BURST 500
#define BACKOFF_BASE_S 10
#define BACKOFF_MAX_S 360
#define JOB_PREFIX "/registry/batch/jobs/"
#define POD_PREFIX "/registry/pods/"
#define MAX_INDEXES 100000

struct job_ent {
    char *key, *ns, *uid;
    struct corral_selector *sel;
};

struct job_state {
    struct corral_ctrl_map jobs;      /* job key -> job_ent */
    struct corral_ctrl_map by_uid;    /* uid -> job_ent (borrowed) */
    struct corral_ctrl_map failed_at; /* job uid -> (uintptr_t) time of the latest failure */
};

/* ---- indexes ---- */

static void ent_free(void *v)
{
    struct job_ent *e = v;
    if (!e)
        return;
    free(e->key);
    free(e->ns);
    free(e->uid);
    corral_selector_free(e->sel);
    free(e);
}

static void job_reset(struct corral_ctrl *c)
{
    struct job_state *st = corral_ctrl_state(c);
    corral_ctrl_map_clear(&st->by_uid, NULL);
    corral_ctrl_map_clear(&st->jobs, ent_free);
}

/* Pods a Job owns or could adopt, and pods still holding a Job's tracking finalizer. */
static bool keep_pod(const struct corral_ctrl_pod *pod)
{
    return pod &&
           (!pod->owner_uid || pod->job_tracking || corral_ctrl_pod_owned_by(pod, "Job"));
}

static int job_init(struct corral_ctrl *c)
{
    struct job_state *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    corral_ctrl_set_state(c, st);
    return 0;
}

static void job_fini(struct corral_ctrl *c)
{
    struct job_state *st = corral_ctrl_state(c);
    job_reset(c);
    corral_ctrl_map_clear(&st->failed_at, NULL);
    free(st);
}

/* Pods still holding the tracking finalizer of a Job that no longer exists. */
static void enqueue_pods_of(struct corral_ctrl *c, const char *uid)
{
    struct corral_ctrl_pod **pods = NULL;
    long n = corral_ctrl_pods_owned(corral_ctrl_pod_index(c), uid, &pods);
    for (long i = 0; i < n; i++)
        if (keep_pod(pods[i]))
            corral_ctrl_enqueue(c, pods[i]->key, 0);
    corral_ctrl_pods_release(pods, n);
}

static void observe_job(struct corral_ctrl *c, const struct corral_store_event *ev)
{
    struct job_state *st = corral_ctrl_state(c);
    struct job_ent *old = corral_ctrl_map_del(&st->jobs, ev->key);
    if (old)
        corral_ctrl_map_del(&st->by_uid, old->uid);
    if (ev->type == CORRAL_EVENT_DELETED) {
        if (old) {
            enqueue_pods_of(c, old->uid);
            corral_ctrl_map_del(&st->failed_at, old->uid);
        }
        ent_free(old);
        return;
    }
    ent_free(old);
    json_t *obj = corral_blob_json(ev->value);
    struct job_ent *e = calloc(1, sizeof(*e));
    const char *uid = corral_ctrl_uid(obj), *ns = corral_meta_namespace(obj);
    char err[128];
    if (!e || !uid || !ns || !(e->key = strdup(ev->key)) || !(e->ns = strdup(ns)) ||
        !(e->uid = strdup(uid)) ||
        corral_selector_from_json(json_object_get(json_object_get(obj, "spec"), "selector"),
                                  &e->sel, err, sizeof(err)) < 0 ||
        corral_ctrl_map_put(&st->jobs, e->key, e) == e) {
        ent_free(e);
        json_decref(obj);
        return;
    }
    json_decref(obj);
    corral_ctrl_map_put(&st->by_uid, e->uid, e);
    corral_ctrl_enqueue(c, ev->key, 0);
}

static bool selects(const struct job_ent *e, const struct corral_ctrl_pod *pod)
{
    return !corral_selector_is_empty(e->sel) && strcmp(e->ns, pod->ns) == 0 &&
           corral_selector_match_labels(e->sel, pod->labels);
}

static void enqueue_for_pod(struct corral_ctrl *c, const struct corral_ctrl_pod *pod)
{
    struct job_state *st = corral_ctrl_state(c);
    struct job_ent *e = pod->owner_uid ? corral_ctrl_map_get(&st->by_uid, pod->owner_uid) : NULL;
    if (e) {
        corral_ctrl_enqueue(c, e->key, 0);
        return;
    }
    if (pod->job_tracking)
        corral_ctrl_enqueue(c, pod->key, 0); /* its Job is gone: drop the finalizer */
    if (pod->owner_uid || pod->deleting)
        return;
    size_t pos = 0;
    const char *key;
    void *v;
    while (corral_ctrl_map_next(&st->jobs, &pos, &key, &v))
        if (selects(v, pod))
            corral_ctrl_enqueue(c, key, 0);
}

static void job_observe(struct corral_ctrl *c, const struct corral_store_event *ev)
{
    if (strncmp(ev->key, JOB_PREFIX, strlen(JOB_PREFIX)) == 0) {
        observe_job(c, ev);
        return;
    }
    const struct corral_ctrl_pod *old, *pod;
    corral_ctrl_pod_change(c, &old, &pod);
    if (!keep_pod(old))
        old = NULL;
    if (!keep_pod(pod))
        pod = NULL;
    if (old &&
        (!pod || !pod->owner_uid || !old->owner_uid || strcmp(old->owner_uid, pod->owner_uid) != 0))
        enqueue_for_pod(c, old);
    if (pod)
        enqueue_for_pod(c, pod);
}

static void job_resync(struct corral_ctrl *c)
{
    struct job_state *st = corral_ctrl_state(c);
    size_t pos = 0;
    const char *key;
    while (corral_ctrl_map_next(&st->jobs, &pos, &key, NULL))
        corral_ctrl_enqueue(c, key, 0);
}

/* ---- pods whose Job is gone ---- */

static int remove_tracking(struct corral_ctrl *c, const char *ns, const char *name)
{
    json_t *pod = NULL;
    int rc = corral_objects_get(corral_ctrl_srv(c), corral_ctrl_kinds()->pods, ns, name, &pod);
    if (rc < 0)
        return rc == CORRAL_ENOTFOUND ? 0 : rc;
    if (!corral_ctrl_remove_finalizer(pod, CORRAL_JOB_TRACKING_FINALIZER)) {
        json_decref(pod);
        return 0;
    }
    rc = corral_objects_update(corral_ctrl_srv(c), corral_ctrl_kinds()->pods, pod, false, NULL);
    return rc == CORRAL_ENOTFOUND ? 0 : rc;
}

static int sync_orphan_pod(struct corral_ctrl *c, const char *key)
{
    struct job_state *st = corral_ctrl_state(c);
    struct corral_ctrl_pod *pod = corral_ctrl_pods_get(corral_ctrl_pod_index(c), key);
    int rc = 0;
    if (pod && pod->job_tracking &&
        !(pod->owner_uid && corral_ctrl_map_get(&st->by_uid, pod->owner_uid)))
        rc = remove_tracking(c, pod->ns, pod->name);
    corral_ctrl_pod_unref(pod);
    return rc;
}

/* ---- sync ---- */

struct job_sync {
    struct corral_ctrl *c;
    struct job_state *st;
    struct job_ent *ent;
    json_t *job;    /* as read */
    json_t *status; /* being built */
    const char *ns, *name;
    long parallelism, completions; /* completions -1 = unset */
    long backoff_limit;
    const json_t *policy;         /* spec.podFailurePolicy (borrowed from job), or NULL */
    const json_t *success_policy; /* spec.successPolicy (borrowed from job), or NULL */
    bool indexed, suspended, finished;
    struct corral_ctrl_pod **pods; /* owned (borrowed from held) */
    size_t npods;
    struct corral_ctrl_pod **held[2]; /* the references claiming took: owned, orphans */
    long nheld[2];
    json_t *unc_ok, *unc_fail; /* status.uncountedTerminatedPods arrays (references) */
    bool *done_idx;            /* Indexed: succeeded indexes */
    time_t now;
    long wake; /* seconds until the next time-based check, 0 = none */
};

static void wake_in(struct job_sync *s, long secs)
{
    if (secs < 1)
        secs = 1;
    if (s->wake == 0 || secs < s->wake)
        s->wake = secs;
}

static bool condition_true(const json_t *status, const char *type)
{
    json_t *c = corral_ctrl_condition(status, type);
    const char *v = json_string_value(json_object_get(c, "status"));
    return v && strcmp(v, "True") == 0;
}

static int claim_pods(struct job_sync *s)
{
    struct corral_ctrl_pods *index = corral_ctrl_pod_index(s->c);
    long no = s->nheld[0] = corral_ctrl_pods_owned(index, s->ent->uid, &s->held[0]);
    long nr = s->nheld[1] = corral_ctrl_pods_orphans(index, s->ns, &s->held[1]);
    struct corral_ctrl_pod **owned = s->held[0], **orphans = s->held[1];
    if (no < 0 || nr < 0 || !(s->pods = calloc((size_t)(no + nr) + 1, sizeof(*s->pods))))
        return -ENOMEM;
    bool managing = !corral_ctrl_deleting(s->job) && !s->finished;
    for (long i = 0; i < no; i++)
        s->pods[s->npods++] = owned[i];
    for (long i = 0; i < nr && managing; i++) {
        if (!selects(s->ent, orphans[i]) || orphans[i]->deleting)
            continue;
        if (corral_ctrl_adopt(s->c, corral_ctrl_kinds()->pods, s->ns, orphans[i]->name,
                              orphans[i]->uid, s->job, CORRAL_JOB_TRACKING_FINALIZER) == 0)
            corral_ctrl_enqueue(s->c, s->ent->key, 0); /* count it once the index has it */
    }
    return 0;
}

static json_t *array_at(json_t *parent, const char *key)
{
    json_t *v = json_object_get(parent, key);
    if (!json_is_array(v)) {
        v = json_array();
        json_object_set_new(parent, key, v);
    }
    return json_incref(v);
}

static bool uid_in(const json_t *arr, const char *uid)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) if (json_is_string(v) &&
                                      strcmp(json_string_value(v), uid) == 0) return true;
    return false;
}

static struct corral_ctrl_pod *pod_by_uid(const struct job_sync *s, const char *uid)
{
    for (size_t i = 0; i < s->npods; i++)
        if (strcmp(s->pods[i]->uid, uid) == 0)
            return s->pods[i];
    return NULL;
}

/* ---- completed indexes ("0-3,5") ---- */

static void parse_indexes(const char *text, bool *done, long n)
{
    for (const char *p = text; p && *p;) {
        char *end;
        long a = strtol(p, &end, 10), b = a;
        if (end == p)
            break;
        if (*end == '-')
            b = strtol(end + 1, &end, 10);
        for (long i = a < 0 ? 0 : a; i <= b && i < n; i++)
            done[i] = true;
        p = *end == ',' ? end + 1 : end;
        if (*end != ',')
            break;
    }
}

static json_t *format_indexes(const bool *done, long n)
{
    size_t cap = 64, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    buf[0] = 0;
    for (long i = 0; i < n; i++) {
        if (!done[i])
            continue;
        long j = i;
        while (j + 1 < n && done[j + 1])
            j++;
        char part[48];
        int m = j > i ? snprintf(part, sizeof(part), "%s%ld-%ld", len ? "," : "", i, j)
                      : snprintf(part, sizeof(part), "%s%ld", len ? "," : "", i);
        if (len + (size_t)m + 1 > cap) {
            cap = (len + (size_t)m + 1) * 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
        }
        memcpy(buf + len, part, (size_t)m + 1);
        len += (size_t)m;
        i = j;
    }
    json_t *v = len ? json_string(buf) : NULL;
    free(buf);
    return v;
}

/* ---- tracking: finished pods -> uncounted -> counts ---- */

static bool pod_failed(const struct job_sync *s, const struct corral_ctrl_pod *p)
{
    if (p->phase == CORRAL_POD_FAILED)
        return true;
    return p->deleting && p->phase != CORRAL_POD_SUCCEEDED && !s->suspended;
}

static bool exit_code_listed(const json_t *values, json_int_t code)
{
    size_t i;
    json_t *v;
    json_array_foreach(values, i, v) if (json_integer_value(v) == code) return true;
    return false;
}

/* Whether failed pod p matches rule's onExitCodes; *why then says how. */
static bool matches_exit_codes(const json_t *on, const struct corral_ctrl_pod *p, char *why,
                               size_t len)
{
    const char *only = json_string_value(json_object_get(on, "containerName"));
    const char *op = json_string_value(json_object_get(on, "operator"));
    bool in = op && strcmp(op, "In") == 0;
    size_t i;
    json_t *ec;
    json_array_foreach(json_object_get(p->failure, "exitCodes"), i, ec)
    {
        const char *name = json_string_value(json_object_get(ec, "container"));
        json_int_t code = json_integer_value(json_object_get(ec, "exitCode"));
        if (code == 0 || (only && strcmp(only, name) != 0))
            continue; /* containers that succeeded are not looked at */
        if (exit_code_listed(json_object_get(on, "values"), code) == in) {
            snprintf(why, len, "Container %s for pod %s/%s failed with exit code %lld", name,
                     p->ns, p->name, (long long)code);
            return true;
        }
    }
    return false;
}

/* Whether failed pod p has one of the rule's onPodConditions; *why then says which. */
static bool matches_conditions(const json_t *on, const struct corral_ctrl_pod *p, char *why,
                               size_t len)
{
    size_t i, j;
    json_t *want, *have;
    json_array_foreach(on, i, want)
    {
        const char *type = json_string_value(json_object_get(want, "type"));
        const char *status = json_string_value(json_object_get(want, "status"));
        json_array_foreach(json_object_get(p->failure, "conditions"), j, have)
        {
            if (type && strcmp(type, json_string_value(json_object_get(have, "type"))) == 0 &&
                strcmp(status ? status : "True",
                       json_string_value(json_object_get(have, "status"))) == 0) {
                snprintf(why, len, "Pod %s/%s has condition %s", p->ns, p->name, type);
                return true;
            }
        }
    }
    return false;
}

/*
 * spec.podFailurePolicy, as Kubernetes applies it: the action of the first rule the failed pod
 * matches ("FailJob", "Ignore", "Count"), or NULL when none does (the failure counts). *why
 * then holds the Kubernetes message ("Container main for pod ns/p failed with exit code 42
 * matching FailJob rule at index 0").
 */
static const char *policy_action(const struct job_sync *s, const struct corral_ctrl_pod *p,
                                 char *why, size_t len)
{
    if (!s->policy || !p->failure)
        return NULL;
    size_t i;
    json_t *rule;
    json_array_foreach(json_object_get(s->policy, "rules"), i, rule)
    {
        const char *action = json_string_value(json_object_get(rule, "action"));
        json_t *codes = json_object_get(rule, "onExitCodes");
        char what[384];
        bool hit = codes ? matches_exit_codes(codes, p, what, sizeof(what))
                         : matches_conditions(json_object_get(rule, "onPodConditions"), p, what,
                                              sizeof(what));
        if (action && hit) {
            snprintf(why, len, "%s matching %s rule at index %zu", what, action, i);
            return action;
        }
    }
    return NULL;
}

/* Records newly finished pods in uncountedTerminatedPods. */
static void track_new(struct job_sync *s)
{
    for (size_t i = 0; i < s->npods && !s->finished; i++) {
        struct corral_ctrl_pod *p = s->pods[i];
        if (!p->job_tracking || uid_in(s->unc_ok, p->uid) || uid_in(s->unc_fail, p->uid))
            continue;
        if (p->phase == CORRAL_POD_SUCCEEDED) {
            json_array_append_new(s->unc_ok, json_string(p->uid));
            if (s->indexed && p->completion_index >= 0 && p->completion_index < s->completions)
                s->done_idx[p->completion_index] = true;
        } else if (pod_failed(s, p)) {
            char why[512];
            const char *action = policy_action(s, p, why, sizeof(why));
            if (action && strcmp(action, "Ignore") == 0)
                continue; /* not counted; its finalizer goes and a replacement starts */
            json_array_append_new(s->unc_fail, json_string(p->uid));
            corral_ctrl_map_put(&s->st->failed_at, s->ent->uid, (void *)(uintptr_t)s->now);
            if (action && strcmp(action, "FailJob") == 0 &&
                !condition_true(s->status, "FailureTarget"))
                corral_ctrl_set_condition(s->status, "FailureTarget", "True", "PodFailurePolicy",
                                          why, "lastProbeTime", s->now);
        }
    }
}

/* Moves uncounted pods whose finalizer is gone (or that are gone) into the counts. */
static void track_counted(struct job_sync *s)
{
    static const char *const fields[] = {"succeeded", "failed"};
    json_t *lists[] = {s->unc_ok, s->unc_fail};
    for (int k = 0; k < 2; k++) {
        long n = (long)corral_ctrl_int(s->status, fields[k], 0);
        for (size_t i = 0; i < json_array_size(lists[k]);) {
            struct corral_ctrl_pod *p =
                pod_by_uid(s, json_string_value(json_array_get(lists[k], i)));
            if (p && p->job_tracking) {
                i++;
                continue;
            }
            json_array_remove(lists[k], i);
            n++;
        }
        json_object_set_new(s->status, fields[k], json_integer(n));
    }
}

static long count_total(const struct job_sync *s, const char *field, const json_t *unc)
{
    return (long)corral_ctrl_int(s->status, field, 0) + (long)json_array_size(unc);
}

/*
 * After the status is stored: drops the finalizer of every pod that is finished or being
 * deleted. track_new() has recorded each one the Job counts in uncountedTerminatedPods (now
 * stored); the others (stopped by a suspension or after the Job finished) are not counted.
 */
static int release_uncounted(struct job_sync *s)
{
    int rc = 0;
    for (size_t i = 0; i < s->npods; i++) {
        struct corral_ctrl_pod *p = s->pods[i];
        if (p->job_tracking && (!corral_ctrl_pod_active(p) || corral_ctrl_deleting(s->job))) {
            int r = remove_tracking(s->c, p->ns, p->name);
            if (r < 0)
                rc = r;
        }
    }
    return rc;
}

/* ---- pods ---- */

static void add_index_env(json_t *spec, long idx)
{
    char v[32];
    snprintf(v, sizeof(v), "%ld", idx);
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(spec, "containers"), i, c)
    {
        json_t *env = json_object_get(c, "env");
        if (!json_is_array(env)) {
            env = json_array();
            json_object_set_new(c, "env", env);
        }
        json_array_append_new(env,
                              json_pack("{s:s, s:s}", "name", "JOB_COMPLETION_INDEX", "value", v));
    }
}

static json_t *job_pod(const struct job_sync *s, const json_t *ref, long idx)
{
    json_t *tmpl = json_object_get(json_object_get(s->job, "spec"), "template");
    char prefix[300];
    if (idx >= 0)
        snprintf(prefix, sizeof(prefix), "%s-%ld-", s->name, idx);
    else
        snprintf(prefix, sizeof(prefix), "%s-", s->name);
    json_t *pod = corral_ctrl_pod_from_template(tmpl, ref, prefix);
    json_t *meta = json_object_get(pod, "metadata");
    json_t *fin = json_object_get(meta, "finalizers");
    if (!json_is_array(fin)) {
        fin = json_array();
        json_object_set_new(meta, "finalizers", fin);
    }
    json_array_append_new(fin, json_string(CORRAL_JOB_TRACKING_FINALIZER));
    if (idx < 0)
        return pod;
    char v[32];
    snprintf(v, sizeof(v), "%ld", idx);
    static const char *const maps[] = {"annotations", "labels", NULL};
    for (const char *const *m = maps; *m; m++) {
        json_t *map = json_object_get(meta, *m);
        if (!json_is_object(map)) {
            map = json_object();
            json_object_set_new(meta, *m, map);
        }
        json_object_set_new(map, CORRAL_JOB_INDEX_KEY, json_string(v));
    }
    json_t *spec = json_object_get(pod, "spec");
    if (!json_object_get(spec, "hostname")) {
        char host[300];
        snprintf(host, sizeof(host), "%.55s-%ld", s->name, idx);
        json_object_set_new(spec, "hostname", json_string(host));
    }
    add_index_env(spec, idx);
    return pod;
}

struct pod_creates {
    struct corral_apiserver *srv;
    const char *ns;
    json_t **objs, **out;
};

static int create_one(void *ctx, size_t i)
{
    struct pod_creates *w = ctx;
    int rc =
        corral_objects_create(w->srv, corral_ctrl_kinds()->pods, w->ns, w->objs[i], &w->out[i]);
    w->objs[i] = NULL;
    return rc;
}

/* Creates one pod per entry of idx (-1: NonIndexed), several at a time. */
static int create_pods(struct job_sync *s, const json_t *ref, const long *idx, size_t n)
{
    struct pod_creates w = {.srv = corral_ctrl_srv(s->c),
                            .ns = s->ns,
                            .objs = calloc(n + 1, sizeof(json_t *)),
                            .out = calloc(n + 1, sizeof(json_t *))};
    int *rcs = calloc(n + 1, sizeof(int)), rc = 0;
    if (!w.objs || !w.out || !rcs)
        rc = -ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++)
        w.objs[i] = job_pod(s, ref, idx[i]);
    if (rc == 0)
        corral_ctrl_run_many(n, create_one, &w, rcs);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        json_decref(w.objs[i]); /* never attempted */
        if (rcs[i] == 0)
            corral_ctrl_event(s->c, s->job, "Normal", "SuccessfulCreate", "Created pod: %s",
                              corral_meta_name(w.out[i]));
        else if (rcs[i] != -ECANCELED && rcs[i] != CORRAL_EEXISTS)
            corral_ctrl_event(s->c, s->job, "Warning", "FailedCreate",
                              "Error creating: pods \"%s-\": %s", s->name, corral_strerror(rcs[i]));
        if (rcs[i] < 0 && rcs[i] != -ECANCELED && rc == 0)
            rc = rcs[i];
        json_decref(w.out[i]);
    }
    free(w.objs);
    free(w.out);
    free(rcs);
    return rc;
}

static int delete_pod(struct job_sync *s, const struct corral_ctrl_pod *p)
{
    int rc = corral_ctrl_delete(s->c, corral_ctrl_kinds()->pods, s->ns, p->name, p->uid, -1, NULL);
    if (rc == 0)
        corral_ctrl_event(s->c, s->job, "Normal", "SuccessfulDelete", "Deleted pod: %s", p->name);
    return rc == CORRAL_ENOTFOUND ? 0 : rc;
}

static long active_pods(const struct job_sync *s, struct corral_ctrl_pod **out)
{
    long n = 0;
    for (size_t i = 0; i < s->npods; i++)
        if (corral_ctrl_pod_active(s->pods[i]))
            out[n++] = s->pods[i];
    return n;
}

static int delete_active(struct job_sync *s)
{
    int rc = 0;
    for (size_t i = 0; i < s->npods; i++) {
        if (!corral_ctrl_pod_active(s->pods[i]))
            continue;
        int r = delete_pod(s, s->pods[i]);
        if (r < 0)
            rc = r;
    }
    return rc;
}

/* Seconds to wait before a replacement after failures (0 = none). */
static long backoff_left(struct job_sync *s)
{
    long failed = count_total(s, "failed", s->unc_fail);
    uintptr_t at = (uintptr_t)corral_ctrl_map_get(&s->st->failed_at, s->ent->uid);
    if (failed <= 0 || !at)
        return 0;
    long delay = BACKOFF_BASE_S;
    for (long i = 1; i < failed && delay < BACKOFF_MAX_S; i++)
        delay *= 2;
    if (delay > BACKOFF_MAX_S)
        delay = BACKOFF_MAX_S;
    long left = (long)((time_t)at + delay - s->now);
    return left > 0 ? left : 0;
}

static int manage_nonindexed(struct job_sync *s, struct corral_ctrl_pod **active, long nactive,
                             const json_t *ref)
{
    long succeeded = count_total(s, "succeeded", s->unc_ok);
    long want = s->parallelism;
    if (s->completions >= 0 && s->completions - succeeded < want)
        want = s->completions - succeeded;
    if (s->completions < 0 && succeeded > 0)
        want = 0;
    if (want < 0)
        want = 0;
    int rc = 0;
    if (nactive > want) {
        qsort(active, (size_t)nactive, sizeof(*active), corral_ctrl_pod_delete_order);
        for (long i = 0; i < nactive - want && rc == 0; i++)
            rc = delete_pod(s, active[i]);
        return rc;
    }
    long wait = nactive < want ? backoff_left(s) : 0;
    if (wait > 0) {
        wake_in(s, wait);
        return 0;
    }
    size_t n = (size_t)(want - nactive < BURST ? want - nactive : BURST);
    long *idx = calloc(n + 1, sizeof(*idx));
    if (!idx)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        idx[i] = -1;
    rc = n ? create_pods(s, ref, idx, n) : 0;
    free(idx);
    return rc;
}

static int manage_indexed(struct job_sync *s, struct corral_ctrl_pod **active, long nactive,
                          const json_t *ref)
{
    bool *running = calloc((size_t)s->completions + 1, sizeof(*running));
    if (!running)
        return -ENOMEM;
    int rc = 0;
    long kept = 0;
    for (long i = 0; i < nactive && rc == 0; i++) {
        long idx = active[i]->completion_index;
        if (idx < 0 || idx >= s->completions || running[idx] || s->done_idx[idx] ||
            kept >= s->parallelism) {
            rc = delete_pod(s, active[i]); /* bad, duplicate, done or surplus index */
            continue;
        }
        running[idx] = true;
        kept++;
    }
    long wait = backoff_left(s), made = 0;
    long *todo = calloc(BURST + 1, sizeof(*todo));
    for (long idx = 0; todo && idx < s->completions && kept + made < s->parallelism && made < BURST;
         idx++) {
        if (running[idx] || s->done_idx[idx])
            continue;
        if (wait > 0) {
            wake_in(s, wait);
            break;
        }
        todo[made++] = idx;
    }
    if (rc == 0 && made > 0)
        rc = create_pods(s, ref, todo, (size_t)made);
    free(todo);
    free(running);
    return rc == 0 && !todo ? -ENOMEM : rc;
}

static void finish(struct job_sync *s, const char *type, const char *reason, const char *msg)
{
    corral_ctrl_set_condition(s->status, type, "True", reason, msg, "lastProbeTime", s->now);
    if (strcmp(type, "Complete") == 0) {
        char ts[21];
        json_object_set_new(s->status, "completionTime",
                            json_string(corral_ctrl_format_time(s->now, ts)));
        corral_ctrl_event(s->c, s->job, "Normal", "Completed", "Job completed");
    } else {
        corral_ctrl_event(s->c, s->job, "Warning", reason, "%s", msg);
    }
    s->finished = true;
}

static bool all_indexes_done(const struct job_sync *s)
{
    for (long i = 0; i < s->completions; i++)
        if (!s->done_idx[i])
            return false;
    return true;
}

/*
 * spec.successPolicy (Indexed Jobs), as Kubernetes applies it: the index of the first rule the
 * succeeded indexes meet, or -1. A rule with succeededIndexes wants all of them (or, with
 * succeededCount, that many of them); a rule with only succeededCount wants that many indexes.
 */
static long success_rule_met(const struct job_sync *s)
{
    json_t *rules = json_object_get(s->success_policy, "rules");
    bool *in = calloc((size_t)s->completions + 1, sizeof(bool));
    if (!in)
        return -1;
    long met = -1;
    size_t r;
    json_t *rule;
    json_array_foreach(rules, r, rule)
    {
        const char *set = json_string_value(json_object_get(rule, "succeededIndexes"));
        long want = (long)corral_ctrl_int(rule, "succeededCount", -1);
        memset(in, 0, ((size_t)s->completions + 1) * sizeof(bool));
        if (set)
            parse_indexes(set, in, s->completions);
        long members = 0, done = 0;
        for (long i = 0; i < s->completions; i++) {
            bool counted = set ? in[i] : true;
            members += counted;
            done += counted && s->done_idx[i];
        }
        if ((want >= 0 && done >= want) || (want < 0 && set && members > 0 && done == members)) {
            met = (long)r;
            break;
        }
    }
    free(in);
    return met;
}

static bool completed(const struct job_sync *s, long nactive)
{
    long succeeded = count_total(s, "succeeded", s->unc_ok);
    if (s->indexed)
        return all_indexes_done(s);
    if (s->completions >= 0)
        return succeeded >= s->completions;
    return succeeded > 0 && nactive == 0;
}

static long restarts(const struct job_sync *s, struct corral_ctrl_pod **active, long nactive)
{
    long n = 0;
    for (long i = 0; i < nactive; i++)
        if (active[i]->on_failure)
            n += active[i]->restarts;
    return n;
}

static void start_clock(struct job_sync *s)
{
    char ts[21];
    if (condition_true(s->status, "Suspended")) {
        corral_ctrl_set_condition(s->status, "Suspended", "False", "JobResumed", "Job resumed",
                                  "lastProbeTime", s->now);
        corral_ctrl_event(s->c, s->job, "Normal", "Resumed", "Job resumed");
        json_object_set_new(s->status, "startTime",
                            json_string(corral_ctrl_format_time(s->now, ts)));
    }
    if (!json_object_get(s->status, "startTime"))
        json_object_set_new(s->status, "startTime",
                            json_string(corral_ctrl_format_time(s->now, ts)));
}

/*
 * Decides what the running (not finished) Job does now. As in Kubernetes, a Job that has
 * reached its end (completions, backoff limit, deadline) gets its Complete or Failed condition
 * only once every finished pod is counted (uncountedTerminatedPods is empty), so that the
 * condition and the final succeeded/failed counts are written together; until then it starts
 * no pods and waits for the tracking finalizers to go (release_uncounted), which brings it back.
 */
static int run(struct job_sync *s, struct corral_ctrl_pod **active, long nactive)
{
    json_t *spec = json_object_get(s->job, "spec");
    if (s->suspended) {
        if (!condition_true(s->status, "Suspended")) {
            corral_ctrl_set_condition(s->status, "Suspended", "True", "JobSuspended",
                                      "Job suspended", "lastProbeTime", s->now);
            corral_ctrl_event(s->c, s->job, "Normal", "Suspended", "Job suspended");
        }
        return delete_active(s);
    }
    start_clock(s);
    long failed = count_total(s, "failed", s->unc_fail) + restarts(s, active, nactive);
    long deadline = (long)corral_ctrl_int(spec, "activeDeadlineSeconds", -1);
    time_t started = corral_ctrl_time_at(s->status, "startTime", NULL);
    bool uncounted = json_array_size(s->unc_ok) || json_array_size(s->unc_fail);
    bool policy_failed = condition_true(s->status, "FailureTarget");
    long success_rule = s->indexed && s->success_policy ? success_rule_met(s) : -1;
    bool done = success_rule >= 0 || completed(s, nactive);
    bool ended = policy_failed || failed > s->backoff_limit ||
                 (deadline >= 0 && started && s->now >= started + deadline) || done;
    if (ended && uncounted)
        return 0;
    if (policy_failed) {
        const char *why = json_string_value(
            json_object_get(corral_ctrl_condition(s->status, "FailureTarget"), "message"));
        finish(s, "Failed", "PodFailurePolicy", why ? why : "a pod failure policy rule matched");
    } else if (failed > s->backoff_limit) {
        finish(s, "Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit");
    } else if (deadline >= 0 && started && s->now >= started + deadline) {
        finish(s, "Failed", "DeadlineExceeded", "Job was active longer than specified deadline");
    } else if (done) {
        if (success_rule >= 0) {
            char msg[64];
            snprintf(msg, sizeof(msg), "Matched rules at index %ld", success_rule);
            corral_ctrl_set_condition(s->status, "SuccessCriteriaMet", "True", "SuccessPolicy",
                                      msg, "lastProbeTime", s->now);
            finish(s, "Complete", "SuccessPolicy", msg);
        } else {
            finish(s, "Complete", "CompletionsReached",
                   "Reached expected number of succeeded pods");
        }
    } else {
        if (deadline >= 0 && started)
            wake_in(s, (long)(started + deadline - s->now));
        json_t *ref = corral_ctrl_owner_ref(s->job, true, true);
        int rc = s->indexed ? manage_indexed(s, active, nactive, ref)
                            : manage_nonindexed(s, active, nactive, ref);
        json_decref(ref);
        return rc;
    }
    return delete_active(s);
}

/* ttlSecondsAfterFinished: deletes the finished Job once its time is up. */
static int expire(struct job_sync *s)
{
    json_t *ttl = json_object_get(json_object_get(s->job, "spec"), "ttlSecondsAfterFinished");
    if (!json_is_integer(ttl) || corral_ctrl_deleting(s->job))
        return 0;
    time_t done = corral_ctrl_time_at(s->status, "completionTime", NULL);
    if (!done)
        done = corral_ctrl_time_at(corral_ctrl_condition(s->status, "Failed"), "lastTransitionTime",
                                   NULL);
    if (!done)
        done = s->now;
    long left = (long)(done + json_integer_value(ttl) - s->now);
    if (left > 0) {
        wake_in(s, left);
        return 0;
    }
    int rc = corral_ctrl_delete(s->c, corral_ctrl_kinds()->jobs, s->ns, s->name, s->ent->uid, 0,
                                "Background");
    return rc == CORRAL_ENOTFOUND ? 0 : rc;
}

static void fill_counts(struct job_sync *s, struct corral_ctrl_pod **active, long nactive)
{
    long ready = 0;
    for (long i = 0; i < nactive; i++)
        ready += active[i]->ready;
    json_object_set_new(s->status, "active", json_integer(nactive));
    json_object_set_new(s->status, "ready", json_integer(ready));
    if (s->indexed) {
        json_t *txt = format_indexes(s->done_idx, s->completions);
        if (txt)
            json_object_set_new(s->status, "completedIndexes", txt);
        else
            json_object_del(s->status, "completedIndexes");
    }
    if (json_array_size(s->unc_ok) == 0)
        json_object_del(json_object_get(s->status, "uncountedTerminatedPods"), "succeeded");
    if (json_array_size(s->unc_fail) == 0)
        json_object_del(json_object_get(s->status, "uncountedTerminatedPods"), "failed");
}

static int read_spec(struct job_sync *s)
{
    json_t *spec = json_object_get(s->job, "spec");
    s->parallelism = (long)corral_ctrl_int(spec, "parallelism", 1);
    s->completions = (long)corral_ctrl_int(spec, "completions", -1);
    s->backoff_limit = (long)corral_ctrl_int(spec, "backoffLimit", 6);
    s->policy = json_object_get(spec, "podFailurePolicy");
    s->success_policy = json_object_get(spec, "successPolicy");
    s->suspended = json_is_true(json_object_get(spec, "suspend"));
    const char *mode = json_string_value(json_object_get(spec, "completionMode"));
    s->indexed = mode && strcmp(mode, "Indexed") == 0;
    if (s->indexed && (s->completions < 0 || s->completions > MAX_INDEXES))
        return -EINVAL;
    s->done_idx = calloc((size_t)(s->completions > 0 ? s->completions : 0) + 1, sizeof(bool));
    if (!s->done_idx)
        return -ENOMEM;
    s->status = json_deep_copy(json_object_get(s->job, "status"));
    if (!json_is_object(s->status)) {
        json_decref(s->status);
        s->status = json_object();
    }
    json_t *unc = json_object_get(s->status, "uncountedTerminatedPods");
    if (!json_is_object(unc)) {
        unc = json_object();
        json_object_set_new(s->status, "uncountedTerminatedPods", unc);
    }
    s->unc_ok = array_at(unc, "succeeded");
    s->unc_fail = array_at(unc, "failed");
    if (s->indexed)
        parse_indexes(json_string_value(json_object_get(s->status, "completedIndexes")),
                      s->done_idx, s->completions);
    s->finished = condition_true(s->status, "Complete") || condition_true(s->status, "Failed");
    return 0;
}

static int sync_job(struct job_sync *s)
{
    int rc = claim_pods(s);
    if (rc < 0)
        return rc;
    if (corral_ctrl_deleting(s->job))
        return release_uncounted(s);
    track_counted(s);
    track_new(s);
    struct corral_ctrl_pod **active = calloc(s->npods + 1, sizeof(*active));
    if (!active)
        return -ENOMEM;
    long nactive = active_pods(s, active);
    int mrc = 0;
    if (s->finished)
        mrc = delete_active(s);
    else
        mrc = run(s, active, nactive);
    if (s->finished)
        nactive = 0; /* what is left is being stopped */
    fill_counts(s, active, nactive);
    free(active);
    json_t *job = json_deep_copy(s->job);
    json_object_set(job, "status", s->status);
    rc = corral_ctrl_write_status(s->c, corral_ctrl_kinds()->jobs, s->job, job);
    if (rc == 0)
        rc = release_uncounted(s);
    if (rc == 0 && s->finished)
        rc = expire(s);
    return rc < 0 ? rc : mrc;
}

static int job_sync(struct corral_ctrl *c, const char *key)
{
    if (strncmp(key, POD_PREFIX, strlen(POD_PREFIX)) == 0)
        return sync_orphan_pod(c, key);
    struct job_sync s = {.c = c, .st = corral_ctrl_state(c), .now = corral_ctrl_now()};
    s.ent = corral_ctrl_map_get(&s.st->jobs, key);
    char buf[CORRAL_CTRL_KEY_MAX];
    const char *ns, *name;
    if (!s.ent || corral_ctrl_split_key(key, true, buf, sizeof(buf), &ns, &name) < 0)
        return 0;
    int rc = corral_objects_get(corral_ctrl_srv(c), corral_ctrl_kinds()->jobs, ns, name, &s.job);
    if (rc < 0)
        return rc == CORRAL_ENOTFOUND ? 0 : rc;
    s.ns = s.ent->ns;
    s.name = corral_meta_name(s.job);
    rc = read_spec(&s);
    if (rc == 0)
        rc = sync_job(&s);
    else if (rc == -EINVAL)
        rc = 0; /* validation keeps Indexed Jobs sane; nothing to run otherwise */
    if (s.wake > 0)
        corral_ctrl_enqueue(c, key, (unsigned)s.wake * 1000u + 100);
    free(s.pods);
    corral_ctrl_pods_release(s.held[0], s.nheld[0]);
    corral_ctrl_pods_release(s.held[1], s.nheld[1]);
    free(s.done_idx);
    json_decref(s.unc_ok);
    json_decref(s.unc_fail);
    json_decref(s.status);
    json_decref(s.job);
    return rc;
}

const struct corral_ctrl_def corral_ctrl_job = {
    .name = "job",
    .component = "job-controller",
    .prefixes = {JOB_PREFIX, POD_PREFIX},
    .resync_s = 60,
    .pods = true,
    .init = job_init,
    .fini = job_fini,
    .reset = job_reset,
    .observe = job_observe,
    .resync = job_resync,
    .sync = job_sync,
};
