/* SPDX-License-Identifier: Apache-2.0 */
/*
 * trace: CSV rows and YAML documents to Node/Pod objects (see trace.h). CSV cells are plain
 * (no quoting in the trace); an empty cell means "none". Every rejected row names its file,
 * line and column.
 */
#include "trace.h"

#include "error.h"
#include "yamljson.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COLS 16

struct csv {
    FILE *f;
    const char *path;
    int line;
    char *buf;
    size_t cap;
    char *cells[MAX_COLS];
    int n;
    char *header[MAX_COLS];
    int n_header;
};

bool corral_trace_is_csv(const char *path)
{
    size_t n = strlen(path);
    if (n >= 4 && strcmp(path + n - 4, ".csv") == 0)
        return true;
    FILE *f = fopen(path, "r");
    char first[64] = "";
    if (f) {
        if (!fgets(first, sizeof(first), f))
            first[0] = '\0';
        fclose(f);
    }
    return strncmp(first, "sn,", 3) == 0 || strncmp(first, "name,", 5) == 0;
}

/* Reads the next line into cells; returns 1, 0 at EOF, or -ENOMEM. */
static int csv_row(struct csv *c)
{
    ssize_t got = getline(&c->buf, &c->cap, c->f);
    if (got < 0)
        return 0;
    c->line++;
    while (got > 0 && (c->buf[got - 1] == '\n' || c->buf[got - 1] == '\r'))
        c->buf[--got] = '\0';
    c->n = 0;
    char *p = c->buf;
    for (;;) {
        if (c->n < MAX_COLS)
            c->cells[c->n++] = p;
        char *comma = strchr(p, ',');
        if (!comma)
            break;
        *comma = '\0';
        p = comma + 1;
    }
    return 1;
}

static int csv_open(struct csv *c, const char *path, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    c->path = path;
    if (!(c->f = fopen(path, "r"))) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    if (csv_row(c) <= 0) {
        snprintf(err, errlen, "%s: empty file (a header row is required)", path);
        return CORRAL_EPARSE;
    }
    for (int i = 0; i < c->n; i++)
        if (!(c->header[i] = strdup(c->cells[i])))
            return -ENOMEM;
    c->n_header = c->n;
    return 0;
}

static void csv_close(struct csv *c)
{
    if (c->f)
        fclose(c->f);
    for (int i = 0; i < c->n_header; i++)
        free(c->header[i]);
    free(c->buf);
}

static int col(const struct csv *c, const char *name)
{
    for (int i = 0; i < c->n_header; i++)
        if (strcmp(c->header[i], name) == 0)
            return i;
    return -1;
}

static int need_cols(const struct csv *c, const char *const *names, int *idx, char *err,
                     size_t errlen)
{
    for (int i = 0; names[i]; i++)
        if ((idx[i] = col(c, names[i])) < 0) {
            snprintf(err, errlen, "%s:1: missing column %s", c->path, names[i]);
            return CORRAL_EPARSE;
        }
    return 0;
}

static const char *cell(const struct csv *c, int i)
{
    return i >= 0 && i < c->n ? c->cells[i] : "";
}

static int cell_int(const struct csv *c, int i, const char *name, int64_t *out, char *err,
                    size_t errlen)
{
    const char *s = cell(c, i);
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < 0) {
        snprintf(err, errlen, "%s:%d: %s: \"%s\" is not a non-negative integer", c->path,
                 c->line, name, s);
        return CORRAL_EPARSE;
    }
    *out = v;
    return 0;
}

static json_t *csv_node(const char *sn, int64_t cpu, int64_t mem, int64_t gpu, const char *model)
{
    char cpu_s[32], mem_s[32], gpu_s[32], milli_s[32];
    snprintf(cpu_s, sizeof(cpu_s), "%lldm", (long long)cpu);
    snprintf(mem_s, sizeof(mem_s), "%lldMi", (long long)mem);
    snprintf(gpu_s, sizeof(gpu_s), "%lld", (long long)gpu);
    snprintf(milli_s, sizeof(milli_s), "%lld", (long long)gpu * 1000);
    json_t *labels = json_pack("{s:s, s:s}", "kubernetes.io/hostname", sn, "nvidia.com/gpu.count",
                               gpu_s);
    if (labels && *model)
        json_object_set_new(labels, "corral.io/gpu.model", json_string(model));
    return json_pack("{s:s, s:s, s:{s:s, s:o}, s:{s:{s:s, s:s, s:s, s:s, s:s}}}", "apiVersion",
                     "v1", "kind", "Node", "metadata", "name", sn, "labels", labels, "status",
                     "allocatable", "cpu", cpu_s, "memory", mem_s, "pods", "110",
                     "nvidia.com/gpu", gpu_s, "corral.io/gpu-milli", milli_s);
}

static int load_csv_nodes(const char *path, json_t *out, char *err, size_t errlen)
{
    static const char *const names[] = {"sn", "cpu_milli", "memory_mib", "gpu", "model", NULL};
    struct csv c;
    int idx[5];
    int rc = csv_open(&c, path, err, errlen);
    if (rc == 0)
        rc = need_cols(&c, names, idx, err, errlen);
    while (rc == 0 && csv_row(&c) > 0) {
        if (c.n == 1 && !*c.cells[0])
            continue;
        int64_t cpu, mem, gpu;
        if ((rc = cell_int(&c, idx[1], "cpu_milli", &cpu, err, errlen)) < 0 ||
            (rc = cell_int(&c, idx[2], "memory_mib", &mem, err, errlen)) < 0 ||
            (rc = cell_int(&c, idx[3], "gpu", &gpu, err, errlen)) < 0)
            break;
        if (!*cell(&c, idx[0])) {
            snprintf(err, errlen, "%s:%d: sn: empty node name", path, c.line);
            rc = CORRAL_EPARSE;
            break;
        }
        json_t *node = csv_node(cell(&c, idx[0]), cpu, mem, gpu, cell(&c, idx[4]));
        if (!node || json_array_append_new(out, node) < 0)
            rc = -ENOMEM;
    }
    csv_close(&c);
    return rc;
}

static char *spec_to_models(const char *spec)
{
    char *s = strdup(spec);
    for (char *p = s; p && *p; p++)
        if (*p == '|')
            *p = ',';
    return s;
}

static json_t *csv_pod(const char *name, int64_t cpu, int64_t mem, int64_t ngpu, int64_t milli,
                       const char *spec)
{
    char cpu_s[32], mem_s[32], gpu_s[32];
    snprintf(cpu_s, sizeof(cpu_s), "%lldm", (long long)cpu);
    snprintf(mem_s, sizeof(mem_s), "%lldMi", (long long)mem);
    json_t *limits = json_object();
    if (ngpu == 1 && milli < 1000) {
        snprintf(gpu_s, sizeof(gpu_s), "%lld", (long long)milli);
        json_object_set_new(limits, "corral.io/gpu-milli", json_string(gpu_s));
    } else if (ngpu > 0) {
        snprintf(gpu_s, sizeof(gpu_s), "%lld", (long long)ngpu);
        json_object_set_new(limits, "nvidia.com/gpu", json_string(gpu_s));
    }
    json_t *meta = json_pack("{s:s, s:s}", "name", name, "namespace", "default");
    if (meta && spec && *spec) {
        char *models = spec_to_models(spec);
        json_object_set_new(meta, "annotations",
                            json_pack("{s:s}", "corral.io/gpu-models", models ? models : ""));
        free(models);
    }
    return json_pack("{s:s, s:s, s:o, s:{s:[{s:s, s:{s:{s:s, s:s}, s:o}}]}}", "apiVersion", "v1",
                     "kind", "Pod", "metadata", meta, "spec", "containers", "name", "main",
                     "resources", "requests", "cpu", cpu_s, "memory", mem_s, "limits", limits);
}

static int check_pod_gpu(const struct csv *c, int64_t ngpu, int64_t milli, char *err,
                         size_t errlen)
{
    if ((ngpu == 0 && milli != 0) || (ngpu > 0 && (milli <= 0 || milli > 1000)) ||
        (ngpu > 1 && milli != 1000)) {
        snprintf(err, errlen, "%s:%d: num_gpu=%lld with gpu_milli=%lld: a pod asks for whole "
                 "GPUs (gpu_milli=1000) or a share (0<gpu_milli<1000) of one GPU", c->path,
                 c->line, (long long)ngpu, (long long)milli);
        return CORRAL_EPARSE;
    }
    return 0;
}

static int load_csv_pods(const char *path, json_t *out, char *err, size_t errlen)
{
    static const char *const names[] = {"name", "cpu_milli", "memory_mib", "num_gpu",
                                        "gpu_milli", NULL};
    struct csv c;
    int idx[5];
    int rc = csv_open(&c, path, err, errlen);
    if (rc == 0)
        rc = need_cols(&c, names, idx, err, errlen);
    int spec_col = rc == 0 ? col(&c, "gpu_spec") : -1;
    while (rc == 0 && csv_row(&c) > 0) {
        if (c.n == 1 && !*c.cells[0])
            continue;
        int64_t cpu, mem, ngpu, milli;
        if ((rc = cell_int(&c, idx[1], "cpu_milli", &cpu, err, errlen)) < 0 ||
            (rc = cell_int(&c, idx[2], "memory_mib", &mem, err, errlen)) < 0 ||
            (rc = cell_int(&c, idx[3], "num_gpu", &ngpu, err, errlen)) < 0 ||
            (rc = cell_int(&c, idx[4], "gpu_milli", &milli, err, errlen)) < 0 ||
            (rc = check_pod_gpu(&c, ngpu, milli, err, errlen)) < 0)
            break;
        json_t *pod = csv_pod(cell(&c, idx[0]), cpu, mem, ngpu, milli, cell(&c, spec_col));
        if (!pod || json_array_append_new(out, pod) < 0)
            rc = -ENOMEM;
    }
    csv_close(&c);
    return rc;
}

/*
 * Flattens List/NodeList/PodList documents and JSON arrays into single objects. Items of a typed
 * list (NodeList) without a kind get the list's item kind, as kubectl prints them.
 */
static int flatten(json_t *docs, json_t *flat, const char *implied)
{
    size_t i;
    json_t *d;
    json_array_foreach(docs, i, d)
    {
        const char *kind = json_string_value(json_object_get(d, "kind"));
        size_t klen = kind ? strlen(kind) : 0;
        int rc = 0;
        if (json_is_array(d)) {
            rc = flatten(d, flat, implied);
        } else if (klen >= 4 && strcmp(kind + klen - 4, "List") == 0) {
            char item[64] = "";
            if (klen > 4 && klen - 4 < sizeof(item))
                memcpy(item, kind, klen - 4);
            json_t *items = json_object_get(d, "items");
            if (json_is_array(items))
                rc = flatten(items, flat, *item ? item : NULL);
        } else {
            if (!kind && implied && json_is_object(d))
                json_object_set_new(d, "kind", json_string(implied));
            rc = json_array_append(flat, d);
        }
        if (rc < 0)
            return -ENOMEM;
    }
    return 0;
}

static int load_yaml(const char *path, const char *want, json_t *match, json_t *others,
                     char *err, size_t errlen)
{
    json_t *docs = NULL, *flat = json_array();
    struct corral_parse_error pe = {0};
    int rc = flat ? corral_yaml_load_file(path, &docs, &pe) : -ENOMEM;
    if (rc < 0 && rc != -ENOMEM) {
        if (pe.line)
            snprintf(err, errlen, "%s:%d:%d: %s", path, pe.line, pe.column, pe.message);
        else
            snprintf(err, errlen, "%s: %s", path, rc == CORRAL_EPARSE ? pe.message : strerror(-rc));
    }
    if (rc == 0)
        rc = flatten(docs, flat, NULL);
    size_t i;
    json_t *o;
    json_array_foreach(flat, i, o)
    {
        if (rc < 0)
            break;
        const char *kind = json_string_value(json_object_get(o, "kind"));
        if (!json_is_object(o) || !kind) {
            snprintf(err, errlen, "%s: object %zu has no kind", path, i + 1);
            rc = CORRAL_EINVALID;
        } else if (strcmp(kind, want) == 0) {
            rc = json_array_append(match, o) < 0 ? -ENOMEM : 0;
        } else if (others) {
            rc = json_array_append(others, o) < 0 ? -ENOMEM : 0;
        } else {
            snprintf(err, errlen, "%s: object %zu is a %s, expected %s", path, i + 1, kind, want);
            rc = CORRAL_EINVALID;
        }
    }
    json_decref(docs);
    json_decref(flat);
    return rc;
}

int corral_trace_load_nodes(const char *path, json_t **nodes, char *err, size_t errlen)
{
    json_t *out = json_array();
    if (!out)
        return -ENOMEM;
    int rc = corral_trace_is_csv(path) ? load_csv_nodes(path, out, err, errlen)
                                       : load_yaml(path, "Node", out, NULL, err, errlen);
    if (rc < 0) {
        json_decref(out);
        return rc;
    }
    *nodes = out;
    return 0;
}

int corral_trace_load_pods(const char *path, json_t **pods, json_t **others, char *err,
                           size_t errlen)
{
    json_t *out = json_array(), *oth = json_array();
    int rc = (!out || !oth) ? -ENOMEM : 0;
    if (rc == 0)
        rc = corral_trace_is_csv(path) ? load_csv_pods(path, out, err, errlen)
                                       : load_yaml(path, "Pod", out, oth, err, errlen);
    if (rc < 0) {
        json_decref(out);
        json_decref(oth);
        return rc;
    }
    *pods = out;
    *others = oth;
    return 0;
}
