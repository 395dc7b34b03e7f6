/* SPDX-License-Identifier: Apache-2.0 */
/*
 * auth: the request-path side of authentication and authorization (see auth.h). Loads the
 * serving certificate at start-up; identifies callers; refuses what they may not do.
 */
#include "auth.h"
#include "error.h"
#include "log.h"
#include "server.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct corral_auth {
    bool insecure_http;
    char *cert_pem;
    char *key_pem;
    char *ca_pem;
    char *kubelet_cert_pem; /* client certificate for node agents */
    char *kubelet_key_pem;
};

static char *read_file(const char *path, int *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        *err = -errno;
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = (len + 4096 + 1) * 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                *err = -ENOMEM;
                return NULL;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, 4096, f);
        len += n;
        if (n == 0)
            break;
    }
    fclose(f);
    buf[len] = 0;
    return buf;
}

static int load_pem(const char *explicit_path, const char *dir, const char *name, char **out)
{
    char path[4096];
    if (explicit_path)
        snprintf(path, sizeof(path), "%s", explicit_path);
    else if (dir)
        snprintf(path, sizeof(path), "%s/%s", dir, name);
    else
        return -ENOENT;
    int err = 0;
    *out = read_file(path, &err);
    if (!*out)
        corral_error("auth", "cannot read %s: %s", path, corral_strerror(err));
    return *out ? 0 : err;
}

int corral_auth_new(const struct corral_auth_config *cfg, struct corral_apiserver *srv,
                    struct corral_auth **out)
{
    struct corral_auth *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    a->insecure_http = cfg->insecure_http;
    if (!cfg->insecure_http) {
        int rc = load_pem(cfg->tls_cert_file, cfg->pki_dir, "apiserver.crt", &a->cert_pem);
        if (rc == 0)
            rc = load_pem(cfg->tls_key_file, cfg->pki_dir, "apiserver.key", &a->key_pem);
        if (rc == 0 && (cfg->client_ca_file || cfg->pki_dir))
            rc = load_pem(cfg->client_ca_file, cfg->pki_dir, "ca.crt", &a->ca_pem);
        if (rc < 0) {
            corral_auth_free(a);
            return rc;
        }
    }
    if (cfg->pki_dir) {
        char path[4096];
        int err = 0;
        snprintf(path, sizeof(path), "%s/apiserver-kubelet-client.crt", cfg->pki_dir);
        a->kubelet_cert_pem = read_file(path, &err);
        snprintf(path, sizeof(path), "%s/apiserver-kubelet-client.key", cfg->pki_dir);
        a->kubelet_key_pem = read_file(path, &err);
        if (!a->ca_pem) {
            snprintf(path, sizeof(path), "%s/ca.crt", cfg->pki_dir);
            a->ca_pem = read_file(path, &err);
        }
    }
    *out = a;
    return 0;
}

void corral_auth_free(struct corral_auth *auth)
{
    if (!auth)
        return;
    free(auth->cert_pem);
    free(auth->key_pem);
    free(auth->ca_pem);
    free(auth->kubelet_cert_pem);
    free(auth->kubelet_key_pem);
    free(auth);
}

int corral_auth_tls_options(struct corral_auth *auth, struct corral_tls_options *out)
{
    if (!auth || !auth->cert_pem || !auth->key_pem)
        return -ENOENT;
    out->cert = auth->cert_pem;
    out->key = auth->key_pem;
    out->trust = auth->ca_pem;
    return 0;
}

static void set_user(struct corral_request *req, const char *name, const char *group)
{
    snprintf(req->user.name, sizeof(req->user.name), "%s", name);
    req->user.n_groups = 0;
    if (group)
        snprintf(req->user.groups[req->user.n_groups++], sizeof(req->user.groups[0]), "%s",
                 group);
}

int corral_auth_authenticate(struct corral_auth *auth, struct corral_request *req,
                             bool anonymous_ok)
{
    if (auth && auth->insecure_http) {
        set_user(req, "system:admin", "system:masters");
        return 0;
    }
    set_user(req, "system:anonymous", "system:unauthenticated");
    if (anonymous_ok)
        return 0;
    corral_reply_error(req, CORRAL_EUNAUTHORIZED, "Unauthorized");
    return CORRAL_EUNAUTHORIZED;
}

static bool is_master(const struct corral_request *req)
{
    for (int i = 0; i < req->user.n_groups; i++)
        if (strcmp(req->user.groups[i], "system:masters") == 0)
            return true;
    return false;
}

int corral_auth_authorize(struct corral_auth *auth, struct corral_request *req)
{
    if (is_master(req))
        return 0;
    corral_reply_error(req, CORRAL_EFORBIDDEN,
                       "%s \"%s\" is forbidden: User \"%s\" cannot %s resource \"%s\"",
                       req->res ? req->res->plural : "", req->name, req->user.name,
                       req->verb ? req->verb : req->method, req->res ? req->res->plural : "");
    return CORRAL_EFORBIDDEN;
}

int corral_auth_authorize_path(struct corral_auth *auth, struct corral_request *req)
{
    if (is_master(req))
        return 0;
    corral_reply_error(req, CORRAL_EFORBIDDEN, "forbidden: User \"%s\" cannot get path \"%s\"",
                       req->user.name, req->url);
    return CORRAL_EFORBIDDEN;
}

static void set_blob(CURL *curl, CURLoption opt, const char *pem)
{
    struct curl_blob blob = {(void *)pem, strlen(pem), CURL_BLOB_COPY};
    curl_easy_setopt(curl, opt, &blob);
}

void corral_auth_kubelet_client(struct corral_auth *auth, void *handle)
{
    CURL *curl = handle;
    if (!auth)
        return;
    if (auth->ca_pem)
        set_blob(curl, CURLOPT_CAINFO_BLOB, auth->ca_pem);
    if (auth->kubelet_cert_pem && auth->kubelet_key_pem) {
        set_blob(curl, CURLOPT_SSLCERT_BLOB, auth->kubelet_cert_pem);
        set_blob(curl, CURLOPT_SSLKEY_BLOB, auth->kubelet_key_pem);
    }
}
