/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kubeconfig: kubectl configuration files in and out (see kubeconfig.h).
 *
 * The file is read with common/yamljson (so YAML and JSON kubeconfigs both work) and resolved
 * into one struct corral_kubeconfig; rendering builds the same jansson shape kubectl writes and
 * dumps it as YAML. Secrets (tokens, key PEM) are wiped when the struct is cleared.
 */
#include "kubeconfig.h"

#include "error.h"
#include "log.h"
#include "pki.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void corral_kubeconfig_clear(struct corral_kubeconfig *kc)
{
    free(kc->context);
    free(kc->cluster);
    free(kc->user);
    free(kc->ns);
    free(kc->server);
    free(kc->ca_file);
    free(kc->ca_pem);
    corral_pki_free_secret(kc->token);
    free(kc->cert_file);
    free(kc->key_file);
    free(kc->cert_pem);
    corral_pki_free_secret(kc->key_pem);
    memset(kc, 0, sizeof(*kc));
}

char *corral_kubeconfig_default_path(void)
{
    const char *env = getenv("KUBECONFIG");
    if (env && env[0]) {
        size_t n = strcspn(env, ":");
        return strndup(env, n);
    }
    const char *home = getenv("HOME");
    if (!home || !home[0])
        return NULL;
    size_t n = strlen(home) + sizeof("/.kube/config");
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/.kube/config", home);
    return p;
}

/* ------------------------------------------------------------------------------------------ */
/* Loading                                                                                     */

struct load {
    const char *path;
    const json_t *doc;
    struct corral_kubeconfig *kc;
    struct corral_parse_error *err;
};

static int load_fail(struct load *l, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int load_fail(struct load *l, int rc, const char *fmt, ...)
{
    if (!l->err)
        return rc;
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    l->err->line = 0;
    l->err->column = 0;
    snprintf(l->err->message, sizeof(l->err->message), "kubeconfig %s: %s", l->path, msg);
    return rc;
}

/* The `key` member (e.g. "cluster") of the named entry of the list `list`; NULL if absent. */
static const json_t *named(const json_t *doc, const char *list, const char *name, const char *key)
{
    size_t i;
    const json_t *e;
    json_array_foreach(json_object_get(doc, list), i, e)
    {
        const char *n = json_string_value(json_object_get(e, "name"));
        if (n && strcmp(n, name) == 0)
            return json_object_get(e, key);
    }
    return NULL;
}

/* Copies a string member into *dst (NULL if absent or not a string). */
static int take(const json_t *obj, const char *key, char **dst)
{
    const char *s = json_string_value(json_object_get(obj, key));
    *dst = NULL;
    if (!s || !s[0])
        return 0;
    return (*dst = strdup(s)) ? 0 : -ENOMEM;
}

/* A path from the file, made absolute against the kubeconfig's directory. */
static int take_path(struct load *l, const json_t *obj, const char *key, char **dst)
{
    int rc = take(obj, key, dst);
    if (rc || !*dst || (*dst)[0] == '/')
        return rc;
    const char *slash = strrchr(l->path, '/');
    int dirlen = slash ? (int)(slash - l->path) : 1;
    const char *dir = slash ? l->path : ".";
    size_t n = (size_t)dirlen + strlen(*dst) + 2;
    char *abs = malloc(n);
    if (!abs)
        return -ENOMEM;
    snprintf(abs, n, "%.*s/%s", dirlen, dir, *dst);
    free(*dst);
    *dst = abs;
    return 0;
}

/* Decodes a base64 *-data member into *dst. */
static int take_data(struct load *l, const json_t *obj, const char *key, char **dst)
{
    const char *s = json_string_value(json_object_get(obj, key));
    size_t len;
    *dst = NULL;
    if (!s || !s[0])
        return 0;
    int rc = corral_pki_base64_decode(s, dst, &len);
    if (rc == -EINVAL)
        return load_fail(l, CORRAL_EINVALID, "%s is not valid base64", key);
    return rc;
}

static int load_cluster(struct load *l, const json_t *cl)
{
    struct corral_kubeconfig *kc = l->kc;
    int rc;
    if ((rc = take(cl, "server", &kc->server)) ||
        (rc = take_path(l, cl, "certificate-authority", &kc->ca_file)) ||
        (rc = take_data(l, cl, "certificate-authority-data", &kc->ca_pem)))
        return rc;
    const json_t *insecure = json_object_get(cl, "insecure-skip-tls-verify");
    const char *s = json_string_value(insecure);
    kc->insecure = json_is_true(insecure) || (s && strcmp(s, "true") == 0);
    if (!kc->server)
        return load_fail(l, CORRAL_EINVALID, "cluster \"%s\" has no server", kc->cluster);
    return 0;
}

/* Reads tokenFile into kc->token, without its trailing newline. */
static int load_token_file(struct load *l, const char *file)
{
    size_t len = 0;
    int rc = corral_pki_read_file(file, &l->kc->token, &len);
    if (rc)
        return load_fail(l, rc, "cannot read tokenFile %s: %s", file, strerror(-rc));
    while (len > 0 && strchr(" \t\r\n", l->kc->token[len - 1]))
        l->kc->token[--len] = '\0';
    return 0;
}

static int load_user(struct load *l, const json_t *u)
{
    struct corral_kubeconfig *kc = l->kc;
    static const char *const unsupported[] = {"exec", "auth-provider", "username", "password"};
    for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++)
        if (json_object_get(u, unsupported[i]))
            return load_fail(l, CORRAL_EINVALID, "user \"%s\": \"%s\" is not supported by corral",
                             kc->user, unsupported[i]);
    char *token_file = NULL;
    int rc;
    if ((rc = take(u, "token", &kc->token)) || (rc = take_path(l, u, "tokenFile", &token_file)) ||
        (rc = take_path(l, u, "client-certificate", &kc->cert_file)) ||
        (rc = take_path(l, u, "client-key", &kc->key_file)) ||
        (rc = take_data(l, u, "client-certificate-data", &kc->cert_pem)) ||
        (rc = take_data(l, u, "client-key-data", &kc->key_pem)))
        goto out;
    if (!kc->token && token_file)
        rc = load_token_file(l, token_file);
out:
    free(token_file);
    return rc;
}

static int load_context(struct load *l, const char *name)
{
    struct corral_kubeconfig *kc = l->kc;
    const json_t *ctx = named(l->doc, "contexts", name, "context");
    int rc;
    if (!json_is_object(ctx))
        return load_fail(l, CORRAL_EINVALID, "context \"%s\" not found", name);
    if (!(kc->context = strdup(name)) || (rc = take(ctx, "cluster", &kc->cluster)) ||
        (rc = take(ctx, "user", &kc->user)) || (rc = take(ctx, "namespace", &kc->ns)))
        return -ENOMEM;
    if (!kc->cluster)
        return load_fail(l, CORRAL_EINVALID, "context \"%s\" names no cluster", name);
    const json_t *cl = named(l->doc, "clusters", kc->cluster, "cluster");
    if (!json_is_object(cl))
        return load_fail(l, CORRAL_EINVALID, "cluster \"%s\" not found", kc->cluster);
    if ((rc = load_cluster(l, cl)))
        return rc;
    if (!kc->user)
        return 0;
    const json_t *u = named(l->doc, "users", kc->user, "user");
    if (!json_is_object(u))
        return load_fail(l, CORRAL_EINVALID, "user \"%s\" not found", kc->user);
    return load_user(l, u);
}

int corral_kubeconfig_load(const char *path, const char *context, struct corral_kubeconfig *out,
                           struct corral_parse_error *err)
{
    json_t *docs = NULL;
    struct load l = {.path = path, .kc = out, .err = err};
    memset(out, 0, sizeof(*out));
    int rc = corral_yaml_load_file(path, &docs, err);
    if (rc == CORRAL_EPARSE && err) {
        char msg[sizeof(err->message)];
        snprintf(msg, sizeof(msg), "%s", err->message);
        if (snprintf(err->message, sizeof(err->message), "kubeconfig %s: %s", path, msg) < 0)
            err->message[0] = '\0';
    }
    if (rc)
        return rc == CORRAL_EPARSE ? rc : load_fail(&l, rc, "%s", strerror(-rc));
    l.doc = json_array_get(docs, 0);
    if (!json_is_object(l.doc))
        rc = load_fail(&l, CORRAL_EINVALID, "not a kubeconfig (no mapping)");
    else if (!context && !(context = json_string_value(json_object_get(l.doc, "current-context"))))
        rc = load_fail(&l, CORRAL_EINVALID, "no current-context and no context named");
    else
        rc = load_context(&l, context);
    json_decref(docs);
    if (rc)
        corral_kubeconfig_clear(out);
    return rc;
}

int corral_kubeconfig_client(const struct corral_kubeconfig *kc, const char *server_override,
                             struct corral_client **out)
{
    struct corral_client_config cfg = {
        .server = server_override ? server_override : kc->server,
        .ca_file = kc->ca_file,
        .ca_pem = kc->ca_pem,
        .cert_file = kc->cert_file,
        .key_file = kc->key_file,
        .cert_pem = kc->cert_pem,
        .key_pem = kc->key_pem,
        .token = kc->token,
        .insecure_skip_verify = kc->insecure,
    };
    return corral_client_new(&cfg, out);
}

int corral_kubeconfig_client_from_file(const char *path, const char *server_override,
                                       struct corral_client **out)
{
    struct corral_kubeconfig kc;
    struct corral_parse_error err = {0};
    char *def = path ? NULL : corral_kubeconfig_default_path();
    *out = NULL;
    if (!path && !def) {
        corral_error("kubeconfig", "no kubeconfig given and neither KUBECONFIG nor HOME is set");
        return -ENOENT;
    }
    int rc = corral_kubeconfig_load(path ? path : def, NULL, &kc, &err);
    if (rc == 0) {
        rc = corral_kubeconfig_client(&kc, server_override, out);
        corral_kubeconfig_clear(&kc);
    } else if (err.line) {
        corral_error("kubeconfig", "%s:%d:%d: %s", path ? path : def, err.line, err.column,
                     err.message);
    } else {
        corral_error("kubeconfig", "%s", err.message);
    }
    free(def);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Rendering                                                                                   */

static int set_str(json_t *obj, const char *key, const char *value)
{
    if (!value)
        return 0;
    return json_object_set_new(obj, key, json_string(value)) ? -ENOMEM : 0;
}

/*
 * Writes a file path. A relative one is relative to this process's working directory, but a
 * kubeconfig's relative paths are read relative to the kubeconfig's own directory (as kubectl
 * reads them), so it is stored absolute.
 */
static int set_path(json_t *obj, const char *key, const char *path)
{
    if (!path || path[0] == '/')
        return set_str(obj, key, path);
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof(cwd)))
        return -errno;
    size_t n = strlen(cwd) + strlen(path) + 2;
    char *abs = malloc(n);
    if (!abs)
        return -ENOMEM;
    snprintf(abs, n, "%s/%s", cwd, strncmp(path, "./", 2) == 0 ? path + 2 : path);
    int rc = set_str(obj, key, abs);
    free(abs);
    return rc;
}

static int set_data(json_t *obj, const char *key, const char *pem)
{
    if (!pem)
        return 0;
    char *b64 = corral_pki_base64_encode(pem, strlen(pem));
    if (!b64)
        return -ENOMEM;
    int rc = set_str(obj, key, b64);
    corral_pki_free_secret(b64);
    return rc;
}

static bool list_has(const json_t *list, const char *name)
{
    size_t i;
    const json_t *e;
    json_array_foreach(list, i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "name")), name) == 0)
            return true;
    }
    return false;
}

/* Appends {name, key: body} to list, stealing body. */
static int list_add(json_t *list, const char *name, const char *key, json_t *body)
{
    json_t *e = json_pack("{s:s,s:o}", "name", name, key, body);
    return e && json_array_append_new(list, e) == 0 ? 0 : -ENOMEM;
}

static int render_cluster(json_t *clusters, const struct corral_kubeconfig *kc)
{
    if (list_has(clusters, kc->cluster))
        return 0;
    json_t *c = json_object();
    int rc = c ? 0 : -ENOMEM;
    if (!rc && !(rc = set_str(c, "server", kc->server)) &&
        !(rc = set_data(c, "certificate-authority-data", kc->ca_pem)) &&
        !(rc = set_path(c, "certificate-authority", kc->ca_pem ? NULL : kc->ca_file)) &&
        kc->insecure)
        rc = json_object_set_new(c, "insecure-skip-tls-verify", json_true()) ? -ENOMEM : 0;
    if (rc) {
        json_decref(c);
        return rc;
    }
    return list_add(clusters, kc->cluster, "cluster", c);
}

static int render_user(json_t *users, const struct corral_kubeconfig *kc)
{
    if (list_has(users, kc->user))
        return 0;
    json_t *u = json_object();
    int rc = u ? 0 : -ENOMEM;
    if (!rc && !(rc = set_str(u, "token", kc->token)) &&
        !(rc = set_data(u, "client-certificate-data", kc->cert_pem)) &&
        !(rc = set_data(u, "client-key-data", kc->key_pem)) &&
        !(rc = set_path(u, "client-certificate", kc->cert_pem ? NULL : kc->cert_file)))
        rc = set_path(u, "client-key", kc->key_pem ? NULL : kc->key_file);
    if (rc) {
        json_decref(u);
        return rc;
    }
    return list_add(users, kc->user, "user", u);
}

static int render_one(json_t *doc, const struct corral_kubeconfig *kc)
{
    if (!kc->context || !kc->cluster || !kc->user || !kc->server)
        return -EINVAL;
    json_t *ctx = json_pack("{s:s,s:s}", "cluster", kc->cluster, "user", kc->user);
    int rc = ctx ? set_str(ctx, "namespace", kc->ns) : -ENOMEM;
    if (rc) {
        json_decref(ctx);
        return rc;
    }
    if ((rc = list_add(json_object_get(doc, "contexts"), kc->context, "context", ctx)))
        return rc;
    if ((rc = render_cluster(json_object_get(doc, "clusters"), kc)))
        return rc;
    return render_user(json_object_get(doc, "users"), kc);
}

char *corral_kubeconfig_render(const struct corral_kubeconfig *const *contexts, size_t n)
{
    if (n == 0 || !contexts[0]->context)
        return NULL;
    json_t *doc = json_pack("{s:s,s:s,s:[],s:[],s:[],s:s,s:{}}", "apiVersion", "v1", "kind",
                            "Config", "clusters", "users", "contexts", "current-context",
                            contexts[0]->context, "preferences");
    char *yaml = NULL;
    int rc = doc ? 0 : -ENOMEM;
    for (size_t i = 0; !rc && i < n; i++)
        rc = render_one(doc, contexts[i]);
    if (!rc)
        yaml = corral_yaml_dump(doc);
    json_decref(doc);
    return yaml;
}

int corral_kubeconfig_write(const char *path, const struct corral_kubeconfig *const *contexts,
                            size_t n)
{
    char *yaml = corral_kubeconfig_render(contexts, n);
    if (!yaml)
        return -EINVAL;
    int rc = corral_pki_write_file(path, yaml, strlen(yaml), 0600);
    corral_pki_free_secret(yaml);
    return rc;
}
