/* SPDX-License-Identifier: Apache-2.0 */
/* gpuutil: see gpuutil.h. */
#include "gpuutil.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int gu_list_parse(const char *s, struct gu_list *out)
{
    out->n = 0;
    while (s && *s) {
        while (*s == ',' || isspace((unsigned char)*s))
            s++;
        const char *end = s;
        while (*end && *end != ',')
            end++;
        const char *last = end;
        while (last > s && isspace((unsigned char)last[-1]))
            last--;
        size_t n = (size_t)(last - s);
        if (n > 0) {
            if (out->n == GU_MAX_ITEMS || n >= GU_ITEM_LEN)
                return -E2BIG;
            memcpy(out->item[out->n], s, n);
            out->item[out->n++][n] = '\0';
        }
        s = end;
    }
    return 0;
}

bool gu_list_has(const struct gu_list *l, const char *v)
{
    for (int i = 0; v && i < l->n; i++)
        if (strcasecmp(l->item[i], v) == 0)
            return true;
    return false;
}

void gu_list_format(const struct gu_list *l, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (int i = 0; i < l->n && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? ", " : "", l->item[i]);
}

static int parse_list_ann(const struct corral_host *h, const struct corral_pod *pod,
                          const char *key, struct gu_list *out, char *err, size_t errlen)
{
    const char *v = h->pod_annotation(h, pod, key);
    if (gu_list_parse(v, out) < 0) {
        snprintf(err, errlen, "annotation %s: at most %d entries of up to %d characters", key,
                 GU_MAX_ITEMS, GU_ITEM_LEN - 1);
        return -EINVAL;
    }
    return 0;
}

static int parse_memory(const struct corral_host *h, const struct corral_pod *pod,
                        struct gu_constraints *c, char *err, size_t errlen)
{
    const char *v = h->pod_annotation(h, pod, "corral.io/gpu-min-memory");
    int64_t milli;
    if (!v)
        return 0;
    if (h->parse_quantity(h, v, &milli) < 0 || milli <= 0) {
        snprintf(err, errlen, "annotation corral.io/gpu-min-memory: \"%s\" is not a positive "
                 "quantity (e.g. 24Gi)", v);
        return -EINVAL;
    }
    int64_t bytes = milli / 1000 + (milli % 1000 != 0);
    c->min_memory_mib = (bytes + (1 << 20) - 1) >> 20;
    return 0;
}

static int parse_compute(const struct corral_host *h, const struct corral_pod *pod,
                         struct gu_constraints *c, char *err, size_t errlen)
{
    const char *v = h->pod_annotation(h, pod, "corral.io/gpu-min-compute");
    c->min_compute = -1;
    if (!v)
        return 0;
    int major = 0, minor = 0, used = 0;
    if (sscanf(v, "%d.%d%n", &major, &minor, &used) != 2 || v[used] || major < 0 || minor < 0 ||
        minor > 99) {
        snprintf(err, errlen, "annotation corral.io/gpu-min-compute: \"%s\" is not a compute "
                 "capability like 8.6", v);
        return -EINVAL;
    }
    c->min_compute = major * 100 + minor;
    return 0;
}

static int parse_features(const struct corral_host *h, const struct corral_pod *pod,
                          struct gu_constraints *c, char *err, size_t errlen)
{
    struct gu_list f;
    int rc = parse_list_ann(h, pod, "corral.io/gpu-features", &f, err, errlen);
    for (int i = 0; rc == 0 && i < f.n; i++) {
        if (strcasecmp(f.item[i], "rt-cores") == 0)
            c->need_rt = true;
        else if (strcasecmp(f.item[i], "nvlink") == 0)
            c->need_nvlink = true;
        else {
            snprintf(err, errlen, "annotation corral.io/gpu-features: unknown feature \"%s\" "
                     "(known: rt-cores, nvlink)", f.item[i]);
            rc = -EINVAL;
        }
    }
    return rc;
}

static int parse_workload(const struct corral_host *h, const struct corral_pod *pod,
                          struct gu_constraints *c, char *err, size_t errlen)
{
    static const char *const names[] = {"", "render", "training", "inference"};
    const char *v = h->pod_annotation(h, pod, "corral.io/workload");
    c->workload = GU_WORKLOAD_NONE;
    if (!v)
        return 0;
    for (int i = 1; i < 4; i++)
        if (strcasecmp(v, names[i]) == 0) {
            c->workload = (enum gu_workload)i;
            return 0;
        }
    c->workload = GU_WORKLOAD_OTHER;
    (void)err;
    (void)errlen;
    return 0;
}

int gu_constraints_parse(const struct corral_host *h, const struct corral_pod *pod,
                         struct gu_constraints *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    int rc = parse_list_ann(h, pod, "corral.io/gpu-models", &c->models, err, errlen);
    if (rc == 0)
        rc = parse_list_ann(h, pod, "corral.io/gpu-families", &c->families, err, errlen);
    if (rc == 0)
        rc = parse_list_ann(h, pod, "corral.io/gpu-class", &c->classes, err, errlen);
    if (rc == 0)
        rc = parse_memory(h, pod, c, err, errlen);
    if (rc == 0)
        rc = parse_compute(h, pod, c, err, errlen);
    if (rc == 0)
        rc = parse_features(h, pod, c, err, errlen);
    if (rc == 0)
        rc = parse_workload(h, pod, c, err, errlen);
    c->any = c->models.n || c->families.n || c->classes.n || c->min_memory_mib ||
             c->min_compute >= 0 || c->need_rt || c->need_nvlink;
    return rc;
}

enum gu_fail gu_constraints_check(const struct gu_constraints *c, const struct corral_gpu *g)
{
    if (c->models.n && !gu_list_has(&c->models, g->model) && !gu_list_has(&c->models, g->product))
        return GU_FAIL_MODEL;
    if (c->families.n && !gu_list_has(&c->families, g->family))
        return GU_FAIL_FAMILY;
    if (c->min_memory_mib && g->memory_mib < c->min_memory_mib)
        return GU_FAIL_MEMORY;
    if (c->min_compute >= 0 &&
        (g->cc_major < 0 || g->cc_major * 100 + g->cc_minor < c->min_compute))
        return GU_FAIL_COMPUTE;
    if (c->need_rt && !(g->flags & CORRAL_GPU_RT_CORES))
        return GU_FAIL_RT_CORES;
    if (c->need_nvlink && !(g->flags & CORRAL_GPU_NVLINK))
        return GU_FAIL_NVLINK;
    if (c->classes.n && !gu_list_has(&c->classes, g->gpu_class))
        return GU_FAIL_CLASS;
    return GU_OK;
}

void gu_pod_gpu(const struct corral_host *h, const struct corral_pod *pod, int *count,
                int32_t *milli)
{
    int64_t whole = h->pod_request(h, pod, CORRAL_RES_GPU);
    int64_t share = h->pod_request(h, pod, CORRAL_RES_GPU_MILLI);
    if (whole > 0) {
        *count = (int)whole;
        *milli = 1000;
    } else if (share > 0) {
        *count = 1;
        *milli = (int32_t)share;
    } else {
        *count = 0;
        *milli = 0;
    }
}
