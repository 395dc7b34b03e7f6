/* SPDX-License-Identifier: Apache-2.0 */
/*
 * container: container spec -> exec plan (see container.h).
 *
 * The environment is built as an ordered list where a later definition of a name replaces the
 * earlier one in place, which is how the kubelet layers image env, envFrom and env. Messages
 * for unusable references copy the kubelet's wording so that `kubectl describe` reads the same.
 */
#include "container.h"

#include "quantity.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct envlist {
    char **v; /* "NAME=value", NULL-terminated */
    size_t n, cap;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int env_set(struct envlist *e, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    char *entry = malloc(nl + vl + 2);
    if (!entry)
        return -ENOMEM;
    memcpy(entry, name, nl);
    entry[nl] = '=';
    memcpy(entry + nl + 1, value, vl + 1);
    for (size_t i = 0; i < e->n; i++)
        if (strncmp(e->v[i], name, nl) == 0 && e->v[i][nl] == '=') {
            free(e->v[i]);
            e->v[i] = entry;
            return 0;
        }
    if (e->n + 2 > e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 16;
        char **v = realloc(e->v, cap * sizeof(*v));
        if (!v) {
            free(entry);
            return -ENOMEM;
        }
        e->v = v;
        e->cap = cap;
    }
    e->v[e->n++] = entry;
    e->v[e->n] = NULL;
    return 0;
}

static void strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static const char *env_lookup(char *const *env, const char *name, size_t nl)
{
    for (size_t i = 0; env && env[i]; i++)
        if (strncmp(env[i], name, nl) == 0 && env[i][nl] == '=')
            return env[i] + nl + 1;
    return NULL;
}

const char *corral_container_plan_getenv(const struct corral_container_plan *plan, const char *name)
{
    return env_lookup(plan->envp, name, strlen(name));
}

/* ---- $(VAR) expansion -------------------------------------------------------------------- */

struct buf {
    char *s;
    size_t n, cap;
};

static int buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->n + n + 1) * 2;
        char *p = realloc(b->s, cap);
        if (!p)
            return -ENOMEM;
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
    return 0;
}

char *corral_container_expand(const char *s, char *const *env)
{
    struct buf b = {0};
    if (buf_add(&b, "", 0) < 0)
        return NULL;
    for (const char *p = s; *p;) {
        const char *close = p[0] == '$' && p[1] == '(' ? strchr(p + 2, ')') : NULL;
        const char *val = close ? env_lookup(env, p + 2, (size_t)(close - p - 2)) : NULL;
        int rc;
        if (p[0] == '$' && p[1] == '$') {
            rc = buf_add(&b, "$", 1);
            p += 2;
        } else if (val) {
            rc = buf_add(&b, val, strlen(val));
            p = close + 1;
        } else {
            rc = buf_add(&b, p, 1);
            p++;
        }
        if (rc < 0) {
            free(b.s);
            return NULL;
        }
    }
    return b.s;
}

/* ---- references ---------------------------------------------------------------------------- */

static int b64_value(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Decodes base64 text into a new NUL-terminated string. NULL when malformed. */
static char *b64_decode(const char *in)
{
    size_t len = strlen(in);
    char *out = malloc(len * 3 / 4 + 4);
    if (!out)
        return NULL;
    size_t n = 0;
    unsigned acc = 0;
    int bits = 0;
    for (const char *p = in; *p && *p != '='; p++) {
        if (isspace((unsigned char)*p))
            continue;
        int v = b64_value((unsigned char)*p);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[n] = '\0';
    return out;
}

/* The data of ConfigMap/Secret name, as a new object of plain strings; NULL when absent. */
static json_t *source_data(const struct corral_plan_context *ctx, bool secret, const char *name)
{
    const json_t *obj =
        json_object_get(json_object_get(ctx->sources, secret ? "secrets" : "configmaps"), name);
    if (!json_is_object(obj))
        return NULL;
    json_t *out = json_object();
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(obj, "data"), key, v)
    {
        if (!json_is_string(v))
            continue;
        if (!secret) {
            json_object_set(out, key, v);
            continue;
        }
        char *plain = b64_decode(json_string_value(v));
        if (plain)
            json_object_set_new(out, key, json_string(plain));
        free(plain);
    }
    json_object_foreach(json_object_get(obj, "stringData"), key, v)
    {
        if (json_is_string(v))
            json_object_set(out, key, v);
    }
    return out;
}

static int key_ref(const json_t *ref, bool secret, const struct corral_plan_context *ctx,
                   const char *ns, char **value, char *err, size_t errlen)
{
    const char *name = json_string_value(json_object_get(ref, "name"));
    const char *key = json_string_value(json_object_get(ref, "key"));
    bool optional = json_is_true(json_object_get(ref, "optional"));
    const char *kind = secret ? "secret" : "configmap";
    *value = NULL;
    json_t *data = name ? source_data(ctx, secret, name) : NULL;
    const char *v = key ? json_string_value(json_object_get(data, key)) : NULL;
    if (v)
        *value = strdup(v);
    json_decref(data);
    if (v)
        return *value ? 0 : -ENOMEM;
    if (optional)
        return 0;
    if (!data)
        set_err(err, errlen, "%s \"%s\" not found", kind, name ? name : "");
    else
        set_err(err, errlen, "couldn't find key %s in %s %s/%s", key ? key : "",
                secret ? "Secret" : "ConfigMap", ns, name);
    return -EINVAL;
}

/* metadata.labels['app'] -> the label. */
static const char *subscript(const json_t *pod, const char *path, const char *map)
{
    size_t ml = strlen(map);
    if (strncmp(path, map, ml) != 0 || path[ml] != '[')
        return NULL;
    const char *k = path + ml + 1;
    char q = *k;
    if (q != '\'' && q != '"')
        return NULL;
    const char *end = strchr(k + 1, q);
    if (!end || end[1] != ']' || end[2])
        return NULL;
    char key[256];
    snprintf(key, sizeof(key), "%.*s", (int)(end - k - 1), k + 1);
    const char *m = strchr(map, '.') + 1;
    return json_string_value(
        json_object_get(json_object_get(json_object_get(pod, "metadata"), m), key));
}

static int field_ref(const json_t *pod, const json_t *ref, const struct corral_plan_context *ctx,
                     char **value, char *err, size_t errlen)
{
    const char *path = json_string_value(json_object_get(ref, "fieldPath"));
    const json_t *md = json_object_get(pod, "metadata");
    const char *v = NULL;
    if (!path)
        path = "";
    if (strcmp(path, "metadata.name") == 0)
        v = json_string_value(json_object_get(md, "name"));
    else if (strcmp(path, "metadata.namespace") == 0)
        v = json_string_value(json_object_get(md, "namespace"));
    else if (strcmp(path, "metadata.uid") == 0)
        v = json_string_value(json_object_get(md, "uid"));
    else if (strcmp(path, "spec.nodeName") == 0)
        v = ctx->node_name;
    else if (strcmp(path, "spec.serviceAccountName") == 0)
        v = json_string_value(json_object_get(json_object_get(pod, "spec"), "serviceAccountName"));
    else if (strcmp(path, "status.hostIP") == 0 || strcmp(path, "status.podIP") == 0 ||
             strcmp(path, "status.hostIPs") == 0 || strcmp(path, "status.podIPs") == 0)
        v = ctx->host_ip;
    else if (strncmp(path, "metadata.labels[", 16) == 0 ||
             strncmp(path, "metadata.annotations[", 21) == 0) {
        v = subscript(pod, path, path[9] == 'l' ? "metadata.labels" : "metadata.annotations");
        if (!v)
            v = "";
    } else {
        set_err(err, errlen, "unsupported fieldRef fieldPath \"%s\"", path);
        return -EINVAL;
    }
    *value = strdup(v ? v : "");
    return *value ? 0 : -ENOMEM;
}

static int quantity_of(const json_t *resources, const char *which, const char *res,
                       struct corral_quantity *q)
{
    const json_t *v = json_object_get(json_object_get(resources, which), res);
    return v ? corral_quantity_from_json(v, q) : -ENOENT;
}

static int64_t ceil_div(int64_t a, int64_t b)
{
    return b > 0 ? (a + b - 1) / b : a;
}

static int resource_ref(const json_t *pod, const json_t *container, const json_t *ref,
                        const struct corral_plan_context *ctx, char **value, char *err,
                        size_t errlen)
{
    const char *res = json_string_value(json_object_get(ref, "resource"));
    const char *cname = json_string_value(json_object_get(ref, "containerName"));
    if (cname && *cname) {
        container = NULL;
        const json_t *c;
        size_t i;
        json_array_foreach(json_object_get(json_object_get(pod, "spec"), "containers"), i,
                           c) if (strcmp(json_string_value(json_object_get(c, "name"))
                                             ? json_string_value(json_object_get(c, "name"))
                                             : "",
                                         cname) == 0) container = c;
        if (!container) {
            set_err(err, errlen, "resourceFieldRef: no container named \"%s\"", cname);
            return -EINVAL;
        }
    }
    bool cpu = res && (strcmp(res, "limits.cpu") == 0 || strcmp(res, "requests.cpu") == 0);
    bool mem = res && (strcmp(res, "limits.memory") == 0 || strcmp(res, "requests.memory") == 0);
    if (!cpu && !mem) {
        set_err(err, errlen, "unsupported resourceFieldRef resource \"%s\"", res ? res : "");
        return -EINVAL;
    }
    bool limits = res[0] == 'l';
    const json_t *resources = json_object_get(container, "resources");
    struct corral_quantity q, div = corral_quantity_from_int(1, CORRAL_QUANTITY_DECIMAL_SI);
    const json_t *divisor = json_object_get(ref, "divisor");
    if (divisor && corral_quantity_from_json(divisor, &div) < 0) {
        set_err(err, errlen, "resourceFieldRef: bad divisor");
        return -EINVAL;
    }
    int have = quantity_of(resources, limits ? "limits" : "requests", cpu ? "cpu" : "memory", &q);
    if (have < 0 && !limits)
        have = quantity_of(resources, "limits", cpu ? "cpu" : "memory", &q);
    int64_t amount;
    if (cpu)
        amount = have == 0 ? corral_quantity_milli(&q) : limits ? ctx->node_cpu_milli : 0;
    else
        amount = have == 0 ? corral_quantity_value(&q) : limits ? ctx->node_memory_bytes : 0;
    int64_t d = cpu ? corral_quantity_milli(&div) : corral_quantity_value(&div);
    char out[32];
    snprintf(out, sizeof(out), "%lld", (long long)ceil_div(amount, d > 0 ? d : 1));
    *value = strdup(out);
    return *value ? 0 : -ENOMEM;
}

/* ---- env and envFrom ----------------------------------------------------------------------- */

static bool valid_env_name(const char *s)
{
    if (!s || !*s || isdigit((unsigned char)*s))
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.')
            return false;
    return true;
}

static int env_from(const json_t *container, const struct corral_plan_context *ctx,
                    struct envlist *env, char *err, size_t errlen)
{
    size_t i;
    const json_t *src;
    json_array_foreach(json_object_get(container, "envFrom"), i, src)
    {
        const json_t *cm = json_object_get(src, "configMapRef");
        const json_t *sec = json_object_get(src, "secretRef");
        const json_t *ref = cm ? cm : sec;
        const char *name = json_string_value(json_object_get(ref, "name"));
        const char *prefix = json_string_value(json_object_get(src, "prefix"));
        json_t *data = name ? source_data(ctx, sec != NULL, name) : NULL;
        if (!data) {
            if (json_is_true(json_object_get(ref, "optional")))
                continue;
            set_err(err, errlen, "%s \"%s\" not found", sec ? "secret" : "configmap",
                    name ? name : "");
            return -EINVAL;
        }
        const char *key;
        json_t *v;
        json_object_foreach(data, key, v)
        {
            char full[512];
            snprintf(full, sizeof(full), "%s%s", prefix ? prefix : "", key);
            if (valid_env_name(full) && env_set(env, full, json_string_value(v)) < 0) {
                json_decref(data);
                return -ENOMEM;
            }
        }
        json_decref(data);
    }
    return 0;
}

static int env_value(const json_t *pod, const json_t *container, const json_t *item,
                     const struct corral_plan_context *ctx, const struct envlist *env, char **value,
                     char *err, size_t errlen)
{
    const char *ns =
        json_string_value(json_object_get(json_object_get(pod, "metadata"), "namespace"));
    const json_t *from = json_object_get(item, "valueFrom");
    if (!from) {
        const char *v = json_string_value(json_object_get(item, "value"));
        *value = corral_container_expand(v ? v : "", env->v);
        return *value ? 0 : -ENOMEM;
    }
    const json_t *r;
    if ((r = json_object_get(from, "fieldRef")))
        return field_ref(pod, r, ctx, value, err, errlen);
    if ((r = json_object_get(from, "resourceFieldRef")))
        return resource_ref(pod, container, r, ctx, value, err, errlen);
    if ((r = json_object_get(from, "configMapKeyRef")))
        return key_ref(r, false, ctx, ns ? ns : "default", value, err, errlen);
    if ((r = json_object_get(from, "secretKeyRef")))
        return key_ref(r, true, ctx, ns ? ns : "default", value, err, errlen);
    set_err(err, errlen, "env %s: valueFrom names no source",
            json_string_value(json_object_get(item, "name")));
    return -EINVAL;
}

static int env_list(const json_t *pod, const json_t *container,
                    const struct corral_plan_context *ctx, struct envlist *env, char *err,
                    size_t errlen)
{
    size_t i;
    const json_t *item;
    json_array_foreach(json_object_get(container, "env"), i, item)
    {
        const char *name = json_string_value(json_object_get(item, "name"));
        if (!valid_env_name(name)) {
            set_err(err, errlen, "env[%zu]: invalid variable name \"%s\"", i, name ? name : "");
            return -EINVAL;
        }
        char *value = NULL;
        int rc = env_value(pod, container, item, ctx, env, &value, err, errlen);
        if (rc == 0 && value) /* an optional reference that is missing sets nothing */
            rc = env_set(env, name, value);
        free(value);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int build_env(const json_t *pod, const json_t *container,
                     const struct corral_plan_context *ctx, struct envlist *env, char *err,
                     size_t errlen)
{
    const char *pod_name =
        json_string_value(json_object_get(json_object_get(pod, "metadata"), "name"));
    int rc = env_set(env, "PATH", DEFAULT_PATH);
    if (rc == 0)
        rc = env_set(env, "HOME", "/root");
    if (rc == 0)
        rc = env_set(env, "HOSTNAME", pod_name ? pod_name : "");
    if (rc == 0)
        rc = env_from(container, ctx, env, err, errlen);
    if (rc == 0)
        rc = env_list(pod, container, ctx, env, err, errlen);
    const char *gpus = ctx->gpu_visible ? ctx->gpu_visible : "";
    if (rc == 0) /* last, so that the pod cannot widen what it sees */
        rc = env_set(env, "CUDA_VISIBLE_DEVICES", gpus);
    if (rc == 0)
        rc = env_set(env, "NVIDIA_VISIBLE_DEVICES", *gpus ? gpus : "void");
    if (rc == 0 && *gpus && strncmp(gpus, "GPU-", 4) != 0) /* indices: corral's are bus order */
        rc = env_set(env, "CUDA_DEVICE_ORDER", "PCI_BUS_ID");
    if (rc == 0 && ctx->gpu_milli)
        rc = env_set(env, "CORRAL_GPU_MILLI", ctx->gpu_milli);
    if (rc == -ENOMEM)
        set_err(err, errlen, "out of memory");
    return rc;
}

/* ---- argv, resources ----------------------------------------------------------------------- */

static int build_argv(const json_t *container, char *const *env, char ***argv, char *err,
                      size_t errlen)
{
    const json_t *cmd = json_object_get(container, "command");
    const json_t *args = json_object_get(container, "args");
    size_t n = json_array_size(cmd) + json_array_size(args);
    if (json_array_size(cmd) == 0 && json_array_size(args) == 0) {
        set_err(err, errlen,
                "container \"%s\" has no command: corral runs containers as host "
                "processes, so the program must be named in command (or args)",
                json_string_value(json_object_get(container, "name")));
        return -EINVAL;
    }
    char **v = calloc(n + 1, sizeof(char *));
    if (!v)
        return -ENOMEM;
    size_t k = 0;
    const json_t *parts[2] = {cmd, args};
    for (int p = 0; p < 2; p++) {
        size_t i;
        const json_t *s;
        json_array_foreach(parts[p], i, s)
        {
            if (!json_is_string(s)) {
                set_err(err, errlen, "%s[%zu] is not a string", p ? "args" : "command", i);
                strv_free(v);
                return -EINVAL;
            }
            if (!(v[k++] = corral_container_expand(json_string_value(s), env))) {
                strv_free(v);
                return -ENOMEM;
            }
        }
    }
    *argv = v;
    return 0;
}

static int resources(const json_t *container, struct corral_container_plan *plan, char *err,
                     size_t errlen)
{
    const json_t *r = json_object_get(container, "resources");
    struct corral_quantity q;
    static const char *const which[] = {"limits", "requests"};
    for (int w = 0; w < 2; w++) {
        int64_t *cpu = w ? &plan->cpu_request_milli : &plan->cpu_limit_milli;
        int64_t *mem = w ? &plan->memory_request_bytes : &plan->memory_limit_bytes;
        int rc = quantity_of(r, which[w], "cpu", &q);
        if (rc == 0)
            *cpu = corral_quantity_milli(&q);
        else if (rc != -ENOENT)
            goto bad;
        rc = quantity_of(r, which[w], "memory", &q);
        if (rc == 0)
            *mem = corral_quantity_value(&q);
        else if (rc != -ENOENT)
            goto bad;
    }
    if (!json_object_get(json_object_get(r, "requests"), "cpu"))
        plan->cpu_request_milli = plan->cpu_limit_milli; /* requests default to limits */
    if (!json_object_get(json_object_get(r, "requests"), "memory"))
        plan->memory_request_bytes = plan->memory_limit_bytes;
    return 0;
bad:
    set_err(err, errlen, "resources: a cpu or memory quantity is malformed");
    return -EINVAL;
}

int corral_container_requests(const json_t *container, int64_t *cpu_milli, int64_t *memory)
{
    struct corral_container_plan plan;
    memset(&plan, 0, sizeof(plan));
    char err[8];
    int rc = resources(container, &plan, err, sizeof(err));
    *cpu_milli = plan.cpu_request_milli;
    *memory = plan.memory_request_bytes;
    return rc;
}

/* securityContext.key of the container, else of the pod (borrowed). */
static const json_t *security(const json_t *pod, const json_t *container, const char *key)
{
    const json_t *v = json_object_get(json_object_get(container, "securityContext"), key);
    if (v && !json_is_null(v))
        return v;
    return json_object_get(json_object_get(json_object_get(pod, "spec"), "securityContext"), key);
}

static int identity(const json_t *pod, const json_t *container, struct corral_container_plan *plan,
                    char *err, size_t errlen)
{
    const json_t *user = security(pod, container, "runAsUser");
    const json_t *group = security(pod, container, "runAsGroup");
    const json_t *groups = json_object_get(
        json_object_get(json_object_get(pod, "spec"), "securityContext"), "supplementalGroups");
    plan->uid = json_is_integer(user) ? json_integer_value(user) : -1;
    plan->gid = json_is_integer(group) ? json_integer_value(group) : plan->uid >= 0 ? 0 : -1;
    if (plan->uid > 0xfffffffeLL || plan->gid > 0xfffffffeLL) {
        set_err(err, errlen, "runAsUser and runAsGroup must be below 4294967295");
        return -EINVAL;
    }
    size_t i;
    const json_t *g;
    json_array_foreach(groups, i, g)
    {
        if (!json_is_integer(g) || json_integer_value(g) < 0 || plan->ngroups == 32) {
            set_err(err, errlen, "supplementalGroups: at most 32 non-negative group IDs");
            return -EINVAL;
        }
        plan->groups[plan->ngroups++] = json_integer_value(g);
    }
    bool non_root = json_is_true(security(pod, container, "runAsNonRoot"));
    int64_t effective = plan->uid >= 0 ? plan->uid : (int64_t)geteuid();
    if (non_root && effective == 0) {
        const json_t *md = json_object_get(pod, "metadata");
        set_err(err, errlen,
                "container has runAsNonRoot and image will run as root (pod: \"%s_%s(%s)\", "
                "container: %s)",
                json_string_value(json_object_get(md, "name")),
                json_string_value(json_object_get(md, "namespace")),
                json_string_value(json_object_get(md, "uid")),
                json_string_value(json_object_get(container, "name")));
        return -EINVAL;
    }
    return 0;
}

int corral_container_plan(const json_t *pod, const json_t *container,
                          const struct corral_plan_context *ctx, struct corral_container_plan *plan,
                          char *err, size_t errlen)
{
    memset(plan, 0, sizeof(*plan));
    struct envlist env = {0};
    int rc = resources(container, plan, err, errlen);
    if (rc == 0)
        rc = identity(pod, container, plan, err, errlen);
    if (rc == 0)
        rc = build_env(pod, container, ctx, &env, err, errlen);
    if (rc < 0)
        goto err_env;
    rc = build_argv(container, env.v, &plan->argv, err, errlen);
    if (rc < 0)
        goto err_env;
    const char *wd = json_string_value(json_object_get(container, "workingDir"));
    plan->cwd = strdup(wd && *wd ? wd : ctx->default_cwd ? ctx->default_cwd : "/");
    plan->envp = env.v;
    if (!plan->cwd) {
        corral_container_plan_free(plan);
        return -ENOMEM;
    }
    return 0;

err_env:
    strv_free(env.v);
    if (rc == -ENOMEM)
        set_err(err, errlen, "out of memory");
    return rc;
}

void corral_container_plan_free(struct corral_container_plan *plan)
{
    strv_free(plan->argv);
    strv_free(plan->envp);
    free(plan->cwd);
    memset(plan, 0, sizeof(*plan));
}
