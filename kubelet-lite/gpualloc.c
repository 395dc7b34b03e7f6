/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gpualloc: GPU admission (see gpualloc.h).
 */
#include "gpualloc.h"

#include "quantity.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void corral_gpu_pool_init(struct corral_gpu_pool *pool, const struct corral_topology *topo)
{
    memset(pool, 0, sizeof(*pool));
    pool->topo = topo;
    pool->n = topo && topo->ngpus < CORRAL_GPU_MAX ? topo->ngpus : topo ? CORRAL_GPU_MAX : 0;
}

static const char *annotation(const json_t *pod, const char *key)
{
    return json_string_value(
        json_object_get(json_object_get(json_object_get(pod, "metadata"), "annotations"), key));
}

/* limits[name] of one container as an integer (limits win; requests must then match). */
static int container_amount(const json_t *c, const char *name, int64_t *out)
{
    const json_t *r = json_object_get(c, "resources");
    const json_t *lim = json_object_get(json_object_get(r, "limits"), name);
    const json_t *req = json_object_get(json_object_get(r, "requests"), name);
    const json_t *v = lim ? lim : req;
    *out = 0;
    if (!v)
        return 0;
    struct corral_quantity q;
    if (corral_quantity_from_json(v, &q) < 0 || corral_quantity_milli(&q) % 1000 != 0)
        return -EINVAL;
    *out = corral_quantity_value(&q);
    return *out < 0 ? -EINVAL : 0;
}

int corral_gpu_request(const json_t *pod, int *whole, int *milli, char *err, size_t errlen)
{
    const json_t *spec = json_object_get(pod, "spec");
    int64_t app = 0, init = 0, shared = 0;
    static const char *const lists[] = {"containers", "initContainers"};
    for (int l = 0; l < 2; l++) {
        size_t i;
        const json_t *c;
        json_array_foreach(json_object_get(spec, lists[l]), i, c)
        {
            int64_t g, m;
            if (container_amount(c, "nvidia.com/gpu", &g) < 0 ||
                container_amount(c, "corral.io/gpu-milli", &m) < 0) {
                set_err(err, errlen,
                        "%s[%zu]: nvidia.com/gpu and corral.io/gpu-milli must be "
                        "whole numbers",
                        lists[l], i);
                return -EINVAL;
            }
            if (l == 0)
                app += g;
            else if (g > init)
                init = g;
            if (m > shared)
                shared = m;
        }
    }
    *whole = (int)(app > init ? app : init);
    *milli = (int)shared;
    if (*milli > 0 && (*whole > 0 || *milli >= 1000)) {
        set_err(err, errlen,
                "corral.io/gpu-milli must be between 1 and 999 and cannot be "
                "combined with nvidia.com/gpu");
        return -EINVAL;
    }
    if (*whole > CORRAL_GPU_MAX) {
        set_err(err, errlen, "requests %d GPUs; a node has at most %d", *whole, CORRAL_GPU_MAX);
        return -EINVAL;
    }
    return 0;
}

/* Parses "0,2" or "GPU-a,GPU-b" into indices. Returns the count or -EINVAL. */
static int parse_list(const struct corral_gpu_pool *pool, const char *text, bool uuids, int *idx,
                      char *err, size_t errlen)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", text);
    int n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        int k = -1;
        if (uuids) {
            const struct corral_gpu *g = corral_topology_gpu_by_uuid(pool->topo, tok);
            k = g ? g->index : -1;
        } else {
            char *end;
            long v = strtol(tok, &end, 10);
            k = *end || v < 0 || v >= (long)pool->n ? -1 : (int)v;
        }
        if (k < 0) {
            set_err(err, errlen, "assigned GPU %s does not exist on this node (%zu GPUs)", tok,
                    pool->n);
            return -ENOENT;
        }
        for (int j = 0; j < n; j++)
            if (idx[j] == k) {
                set_err(err, errlen, "GPU %s is assigned twice", tok);
                return -EINVAL;
            }
        if (n == CORRAL_GPU_MAX)
            return -EINVAL;
        idx[n++] = k;
    }
    return n;
}

static int check_free(const struct corral_gpu_pool *pool, const int *idx, int n, int milli,
                      char *err, size_t errlen)
{
    for (int i = 0; i < n; i++) {
        int k = idx[i];
        if (!__atomic_load_n(&pool->topo->gpus[k].healthy, __ATOMIC_RELAXED)) { /* agent writes */
            set_err(err, errlen, "GPU %d (%s) is unhealthy", k, pool->topo->gpus[k].bus_id);
            return -EBUSY;
        }
        if (pool->gpu[k].owner[0]) {
            set_err(err, errlen, "GPU %d is already held by pod %s", k, pool->gpu[k].owner);
            return -EBUSY;
        }
        int used = pool->gpu[k].milli_used;
        if ((milli == 0 && used > 0) || (milli > 0 && used + milli > 1000)) {
            set_err(err, errlen, "GPU %d has %d milli in use by shared pods; %s", k, used,
                    milli ? "not enough left" : "it cannot be given whole");
            return -EBUSY;
        }
    }
    return 0;
}

/* Chooses free GPUs for a pod bound without an assignment: one island when possible. */
static int choose(const struct corral_gpu_pool *pool, int want, int milli, int *idx)
{
    if (milli > 0) {
        for (size_t k = 0; k < pool->n; k++)
            if (check_free(pool, (int[]){(int)k}, 1, milli, NULL, 0) == 0) {
                idx[0] = (int)k;
                return 1;
            }
        return 0;
    }
    int n = 0;
    for (int pass = 0; pass < 2 && n < want; pass++) {
        /* pass 0: the first island that has enough free GPUs; pass 1: any free GPUs */
        for (size_t first = 0; first < pool->n && n < want; first++) {
            int island = pool->topo->gpus[first].island;
            n = 0;
            for (size_t k = first; k < pool->n && n < want; k++) {
                bool same = pass == 1 || island < 0 || pool->topo->gpus[k].island == island;
                if (same && check_free(pool, (int[]){(int)k}, 1, 0, NULL, 0) == 0)
                    idx[n++] = (int)k;
            }
            if (pass == 1)
                break;
        }
    }
    return n;
}

static void hold(struct corral_gpu_pool *pool, const char *uid,
                 const struct corral_gpu_assignment *a)
{
    for (int i = 0; i < a->n; i++) {
        if (a->milli > 0)
            pool->gpu[a->idx[i]].milli_used += a->milli;
        else
            snprintf(pool->gpu[a->idx[i]].owner, sizeof(pool->gpu[0].owner), "%s", uid);
    }
}

static int from_annotations(struct corral_gpu_pool *pool, const json_t *pod, int whole, int milli,
                            struct corral_gpu_assignment *out, char *err, size_t errlen)
{
    const char *uuids = annotation(pod, "corral.io/assigned-gpu-uuids");
    const char *indices = annotation(pod, "corral.io/assigned-gpus");
    int n = uuids && *uuids ? parse_list(pool, uuids, true, out->idx, err, errlen)
                            : parse_list(pool, indices, false, out->idx, err, errlen);
    if (n < 0)
        return n;
    int want = milli > 0 ? 1 : whole;
    if (n != want) {
        set_err(err, errlen, "the binding assigned %d GPU%s but the pod asks for %d", n,
                n == 1 ? "" : "s", want);
        return -EINVAL;
    }
    out->n = n;
    return 0;
}

int corral_gpu_admit(struct corral_gpu_pool *pool, const char *uid, const json_t *pod,
                     struct corral_gpu_assignment *out, char *err, size_t errlen)
{
    int whole, milli;
    memset(out, 0, sizeof(*out));
    int rc = corral_gpu_request(pod, &whole, &milli, err, errlen);
    if (rc < 0 || (whole == 0 && milli == 0))
        return rc;
    const char *assigned_milli = annotation(pod, "corral.io/assigned-gpu-milli");
    if (assigned_milli && milli > 0 && atoi(assigned_milli) != milli) {
        set_err(err, errlen, "corral.io/assigned-gpu-milli %s differs from the request %d",
                assigned_milli, milli);
        return -EINVAL;
    }
    out->milli = milli;
    if (annotation(pod, "corral.io/assigned-gpus") ||
        annotation(pod, "corral.io/assigned-gpu-uuids"))
        rc = from_annotations(pool, pod, whole, milli, out, err, errlen);
    else
        out->n = choose(pool, milli > 0 ? 1 : whole, milli, out->idx);
    if (rc < 0)
        return rc;
    if (out->n < (milli > 0 ? 1 : whole)) {
        set_err(err, errlen, "requested %d GPU%s%s but only %d %s free on this node",
                milli > 0 ? 1 : whole, (milli > 0 ? 1 : whole) == 1 ? "" : "s",
                milli > 0 ? " share" : "", out->n, out->n == 1 ? "is" : "are");
        return -EBUSY;
    }
    rc = check_free(pool, out->idx, out->n, milli, err, errlen);
    if (rc < 0)
        return rc;
    hold(pool, uid, out);
    return 0;
}

void corral_gpu_release(struct corral_gpu_pool *pool, const char *uid,
                        const struct corral_gpu_assignment *a)
{
    for (int i = 0; a && i < a->n; i++) {
        int k = a->idx[i];
        if (a->milli > 0) {
            pool->gpu[k].milli_used -= a->milli;
            if (pool->gpu[k].milli_used < 0)
                pool->gpu[k].milli_used = 0;
        } else if (strcmp(pool->gpu[k].owner, uid) == 0) {
            pool->gpu[k].owner[0] = '\0';
        }
    }
}

void corral_gpu_visible(const struct corral_topology *topo, const int *idx, int n, char *out,
                        size_t len)
{
    bool uuids = topo->ngpus > 0;
    for (size_t i = 0; i < topo->ngpus; i++)
        uuids &= topo->gpus[i].uuid[0] != '\0';
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < n && used < len; i++) {
        int w =
            uuids ? snprintf(out + used, len - used, "%s%s", i ? "," : "", topo->gpus[idx[i]].uuid)
                  : snprintf(out + used, len - used, "%s%d", i ? "," : "", idx[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}
