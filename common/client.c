/* SPDX-License-Identifier: Apache-2.0 */
/*
 * client: libcurl-based HTTP client for the apiserver (see client.h for the contract).
 *
 * Each client owns one easy handle and one multi handle. Every transfer, short request or
 * endless watch, is driven through the multi handle with curl_multi_poll(), so that
 * corral_client_stop() can interrupt it from another thread with curl_multi_wakeup(); the
 * multi handle's connection cache gives keep-alive reuse between calls.
 *
 * The watch decoder finds each top-level JSON value in the byte stream by tracking nesting
 * depth and string/escape state across reads, so chunk boundaries may fall anywhere and events
 * need no separator. The informer (list + watch + cache) is at the end of the file.
 */
#include "client.h"

#include "corral-config.h"
#include "error.h"
#include "log.h"
#include "meta.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLIENT_MAX_BODY (256u << 20)   /* largest non-watch reply kept */
#define CLIENT_MAX_EVENT (64u << 20)   /* largest single watch event */
#define CLIENT_MAX_ERRBODY (64u << 10) /* error reply kept for its Status */
#define WATCH_GRACE_S 30

struct client_settings {
    char *server;
    char *ca_file, *ca_pem;
    char *cert_file, *key_file, *cert_pem, *key_pem;
    char *token;
    char *user_agent;
    char **extra_headers; /* NULL-terminated copies */
    bool insecure;
    int connect_timeout_ms;
    int timeout_ms;
};

struct corral_client {
    struct client_settings set;
    CURL *easy;
    CURLM *multi;
    char *auth_header; /* "Authorization: Bearer ..." or NULL */
    atomic_bool stopped;
    char curl_err[CURL_ERROR_SIZE];
    char err[512];
};

/* A growable byte buffer for reply bodies. */
struct buf {
    char *data;
    size_t len, cap, max;
    bool overflow;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init_once(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void set_err(struct corral_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_err(struct corral_client *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------------------------------ */
/* Settings                                                                                    */

static void secret_free(char *s)
{
    if (!s)
        return;
    explicit_bzero(s, strlen(s));
    free(s);
}

static void settings_clear(struct client_settings *s)
{
    free(s->server);
    free(s->ca_file);
    free(s->ca_pem);
    free(s->cert_file);
    free(s->key_file);
    free(s->cert_pem);
    secret_free(s->key_pem);
    secret_free(s->token);
    free(s->user_agent);
    for (size_t i = 0; s->extra_headers && s->extra_headers[i]; i++)
        free(s->extra_headers[i]);
    free(s->extra_headers);
    memset(s, 0, sizeof(*s));
}

static int dup_opt(char **dst, const char *src)
{
    *dst = NULL;
    if (!src)
        return 0;
    *dst = strdup(src);
    return *dst ? 0 : -ENOMEM;
}

static int copy_headers(struct client_settings *s, const char *const *headers)
{
    size_t n = 0;
    while (headers && headers[n])
        n++;
    if (n == 0)
        return 0;
    if (!(s->extra_headers = calloc(n + 1, sizeof(char *))))
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (!(s->extra_headers[i] = strdup(headers[i])))
            return -ENOMEM;
    return 0;
}

static int settings_copy(struct client_settings *s, const struct corral_client_config *cfg)
{
    int rc = 0;
    rc |= dup_opt(&s->server, cfg->server);
    rc |= dup_opt(&s->ca_file, cfg->ca_file);
    rc |= dup_opt(&s->ca_pem, cfg->ca_pem);
    rc |= dup_opt(&s->cert_file, cfg->cert_file);
    rc |= dup_opt(&s->key_file, cfg->key_file);
    rc |= dup_opt(&s->cert_pem, cfg->cert_pem);
    rc |= dup_opt(&s->key_pem, cfg->key_pem);
    rc |= dup_opt(&s->token, cfg->token);
    rc |= dup_opt(&s->user_agent, cfg->user_agent ? cfg->user_agent : "corral/" CORRAL_VERSION);
    rc |= copy_headers(s, cfg->extra_headers);
    s->insecure = cfg->insecure_skip_verify;
    s->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 10000;
    s->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 60000;
    if (rc)
        return -ENOMEM;
    size_t n = strlen(s->server);
    while (n > 0 && s->server[n - 1] == '/')
        s->server[--n] = '\0';
    return 0;
}

static int check_readable(const char *what, const char *path)
{
    if (!path || access(path, R_OK) == 0)
        return 0;
    int err = -errno;
    corral_error("client", "cannot read %s %s: %s", what, path, strerror(-err));
    return err;
}

static int settings_validate(const struct corral_client_config *cfg)
{
    if (!cfg->server ||
        (strncmp(cfg->server, "https://", 8) != 0 && strncmp(cfg->server, "http://", 7) != 0)) {
        corral_error("client", "server URL \"%s\" must start with https:// or http://",
                     cfg->server ? cfg->server : "");
        return -EINVAL;
    }
    bool cert = cfg->cert_pem || cfg->cert_file, key = cfg->key_pem || cfg->key_file;
    if (cert != key) {
        corral_error("client", "a client certificate needs its key and a key its certificate");
        return -EINVAL;
    }
    for (size_t i = 0; cfg->extra_headers && cfg->extra_headers[i]; i++)
        if (strpbrk(cfg->extra_headers[i], "\r\n") || !strchr(cfg->extra_headers[i], ':')) {
            corral_error("client", "extra header \"%s\" is not one \"Name: value\" line",
                         cfg->extra_headers[i]);
            return -EINVAL;
        }
    if (cfg->token && (strpbrk(cfg->token, "\r\n") || cfg->token[0] == '\0')) {
        corral_error("client", "the bearer token is empty or contains a line break");
        return -EINVAL;
    }
    int rc = 0;
    if (!cfg->ca_pem && (rc = check_readable("CA file", cfg->ca_file)))
        return rc;
    if (!cfg->cert_pem && (rc = check_readable("client certificate", cfg->cert_file)))
        return rc;
    if (!cfg->key_pem && (rc = check_readable("client key", cfg->key_file)))
        return rc;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Handles                                                                                     */

static void set_blob(CURL *e, CURLoption opt, const char *pem)
{
    struct curl_blob blob = {.data = (void *)pem, .len = strlen(pem), .flags = CURL_BLOB_COPY};
    curl_easy_setopt(e, opt, &blob);
}

static void setup_tls(struct corral_client *c)
{
    const struct client_settings *s = &c->set;
    CURL *e = c->easy;
    if (s->ca_pem)
        set_blob(e, CURLOPT_CAINFO_BLOB, s->ca_pem);
    else if (s->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, s->ca_file);
    if (s->cert_pem)
        set_blob(e, CURLOPT_SSLCERT_BLOB, s->cert_pem);
    else if (s->cert_file)
        curl_easy_setopt(e, CURLOPT_SSLCERT, s->cert_file);
    if (s->key_pem)
        set_blob(e, CURLOPT_SSLKEY_BLOB, s->key_pem);
    else if (s->key_file)
        curl_easy_setopt(e, CURLOPT_SSLKEY, s->key_file);
    curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
    curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, s->insecure ? 0L : 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, s->insecure ? 0L : 2L);
}

static void setup_easy(struct corral_client *c)
{
    CURL *e = c->easy;
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)c->set.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_USERAGENT, c->set.user_agent);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 30L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 10L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->curl_err);
    setup_tls(c);
}

static int make_auth_header(struct corral_client *c)
{
    if (!c->set.token)
        return 0;
    size_t n = strlen(c->set.token) + sizeof("Authorization: Bearer ");
    c->auth_header = malloc(n);
    if (!c->auth_header)
        return -ENOMEM;
    snprintf(c->auth_header, n, "Authorization: Bearer %s", c->set.token);
    return 0;
}

int corral_client_new(const struct corral_client_config *cfg, struct corral_client **out)
{
    *out = NULL;
    int rc = settings_validate(cfg);
    if (rc)
        return rc;
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK)
        return -ENOMEM;
    struct corral_client *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    atomic_init(&c->stopped, false);
    if ((rc = settings_copy(&c->set, cfg)) || (rc = make_auth_header(c)))
        goto err_free;
    rc = -ENOMEM;
    if (!(c->easy = curl_easy_init()))
        goto err_free;
    if (!(c->multi = curl_multi_init()))
        goto err_free;
    setup_easy(c);
    *out = c;
    return 0;
err_free:
    corral_client_free(c);
    return rc;
}

int corral_client_clone(const struct corral_client *c, struct corral_client **out)
{
    const struct client_settings *s = &c->set;
    struct corral_client_config cfg = {
        .server = s->server,
        .ca_file = s->ca_file,
        .ca_pem = s->ca_pem,
        .cert_file = s->cert_file,
        .key_file = s->key_file,
        .cert_pem = s->cert_pem,
        .key_pem = s->key_pem,
        .token = s->token,
        .insecure_skip_verify = s->insecure,
        .connect_timeout_ms = s->connect_timeout_ms,
        .timeout_ms = s->timeout_ms,
        .user_agent = s->user_agent,
        .extra_headers = (const char *const *)s->extra_headers,
    };
    return corral_client_new(&cfg, out);
}

void corral_client_free(struct corral_client *c)
{
    if (!c)
        return;
    if (c->easy)
        curl_easy_cleanup(c->easy);
    if (c->multi)
        curl_multi_cleanup(c->multi);
    secret_free(c->auth_header);
    settings_clear(&c->set);
    free(c);
}

void corral_client_stop(struct corral_client *c)
{
    atomic_store(&c->stopped, true);
    curl_multi_wakeup(c->multi);
}

bool corral_client_stopped(const struct corral_client *c)
{
    return atomic_load(&((struct corral_client *)c)->stopped);
}

const char *corral_client_error(const struct corral_client *c)
{
    return c->err;
}

const char *corral_client_server(const struct corral_client *c)
{
    return c->set.server;
}

int corral_client_sleep(struct corral_client *c, int ms)
{
    uint64_t deadline = corral_now_ns() + (uint64_t)(ms > 0 ? ms : 0) * 1000000u;
    for (;;) {
        if (corral_client_stopped(c))
            return -ECANCELED;
        uint64_t now = corral_now_ns();
        if (now >= deadline)
            return 0;
        int left = (int)((deadline - now + 999999u) / 1000000u);
        curl_multi_poll(c->multi, NULL, 0, left, NULL);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Transfers                                                                                   */

static int buf_append(struct buf *b, const char *p, size_t n)
{
    if (b->len + n > b->max) {
        b->overflow = true;
        return -E2BIG;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return -ENOMEM;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

static size_t body_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    size_t n = size * nmemb;
    return buf_append(ud, ptr, n) == 0 ? n : 0;
}

/* Runs the configured transfer through the multi handle; returns libcurl's result. */
static CURLcode client_perform(struct corral_client *c)
{
    if (curl_multi_add_handle(c->multi, c->easy) != CURLM_OK)
        return CURLE_FAILED_INIT;
    CURLcode res = CURLE_OK;
    int running = 1;
    while (running) {
        if (corral_client_stopped(c)) {
            res = CURLE_ABORTED_BY_CALLBACK;
            break;
        }
        if (curl_multi_perform(c->multi, &running) != CURLM_OK) {
            res = CURLE_FAILED_INIT;
            break;
        }
        if (running && curl_multi_poll(c->multi, NULL, 0, 1000, NULL) != CURLM_OK) {
            res = CURLE_FAILED_INIT;
            break;
        }
    }
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->multi, &left)))
        if (msg->msg == CURLMSG_DONE && !corral_client_stopped(c))
            res = msg->data.result;
    curl_multi_remove_handle(c->multi, c->easy);
    return res;
}

static int curl_code_error(CURLcode res)
{
    switch (res) {
    case CURLE_OK:
        return 0;
    case CURLE_ABORTED_BY_CALLBACK:
        return -ECANCELED;
    case CURLE_OPERATION_TIMEDOUT:
        return CORRAL_ETIMEOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
        return CORRAL_EUNAVAILABLE;
    case CURLE_OUT_OF_MEMORY:
        return -ENOMEM;
    case CURLE_URL_MALFORMAT:
        return -EINVAL;
    default:
        return -EPROTO;
    }
}

/* Turns a failed transfer into a code and a message. */
static int transfer_error(struct corral_client *c, const char *method, const char *path,
                          CURLcode res)
{
    int rc = curl_code_error(res);
    if (rc == -ECANCELED)
        set_err(c, "%s %s: stopped", method, path);
    else
        set_err(c, "%s %s%s: %s", method, c->set.server, path,
                c->curl_err[0] ? c->curl_err : curl_easy_strerror(res));
    return rc;
}

static struct curl_slist *make_headers(struct corral_client *c, const char *content_type)
{
    struct curl_slist *h = NULL, *t;
    char ct[160];
    if (!(t = curl_slist_append(h, "Accept: application/json")))
        return NULL;
    h = t;
    if (!(t = curl_slist_append(h, "Expect:")))
        goto err;
    h = t;
    if (content_type) {
        snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
        if (!(t = curl_slist_append(h, ct)))
            goto err;
        h = t;
    }
    if (c->auth_header) {
        if (!(t = curl_slist_append(h, c->auth_header)))
            goto err;
        h = t;
    }
    for (size_t i = 0; c->set.extra_headers && c->set.extra_headers[i]; i++) {
        if (!(t = curl_slist_append(h, c->set.extra_headers[i])))
            goto err;
        h = t;
    }
    return h;
err:
    curl_slist_free_all(h);
    return NULL;
}

/* Clears the auth header copy libcurl's slist holds before freeing it. */
static void free_headers(struct curl_slist *h)
{
    for (struct curl_slist *p = h; p; p = p->next)
        if (strncmp(p->data, "Authorization:", 14) == 0)
            explicit_bzero(p->data, strlen(p->data));
    curl_slist_free_all(h);
}

/* Sets method, URL, body and headers on the easy handle. Returns 0 or -ENOMEM / -EINVAL. */
static int prepare(struct corral_client *c, const char *method, const char *path,
                   const char *content_type, const char *body, size_t len,
                   struct curl_slist **headers)
{
    if (!path || path[0] != '/' || strpbrk(path, " \r\n")) {
        set_err(c, "request path \"%s\" must start with '/' and hold no spaces", path ? path : "");
        return -EINVAL;
    }
    size_t n = strlen(c->set.server) + strlen(path) + 1;
    char *url = malloc(n);
    if (!url)
        return -ENOMEM;
    snprintf(url, n, "%s%s", c->set.server, path);
    *headers = make_headers(c, body ? (content_type ? content_type : "application/json") : NULL);
    if (!*headers) {
        free(url);
        return -ENOMEM;
    }
    CURL *e = c->easy;
    curl_easy_setopt(e, CURLOPT_URL, url); /* libcurl copies it */
    free(url);
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST,
                     strcmp(method, "GET") == 0 || strcmp(method, "POST") == 0 ? NULL : method);
    if (body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, *headers);
    c->curl_err[0] = '\0';
    c->err[0] = '\0';
    return 0;
}

static bool looks_like_json(const char *content_type, const char *body, size_t len)
{
    if (content_type && strstr(content_type, "json"))
        return true;
    size_t i = 0;
    while (i < len && (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' || body[i] == '\t'))
        i++;
    return !content_type && i < len && (body[i] == '{' || body[i] == '[');
}

static int fill_response(struct corral_client *c, struct buf *b, struct corral_response *out)
{
    char *ct = NULL;
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &out->status);
    curl_easy_getinfo(c->easy, CURLINFO_CONTENT_TYPE, &ct);
    if (ct && !(out->content_type = strdup(ct)))
        return -ENOMEM;
    if (!b->data && buf_append(b, "", 0))
        return -ENOMEM;
    out->body = b->data;
    out->len = b->len;
    b->data = NULL;
    if (out->len && looks_like_json(out->content_type, out->body, out->len))
        out->json = json_loadb(out->body, out->len, JSON_DECODE_ANY, NULL);
    return 0;
}

int corral_client_request(struct corral_client *c, const char *method, const char *path,
                          const char *content_type, const char *body, size_t len,
                          struct corral_response *out)
{
    memset(out, 0, sizeof(*out));
    if (corral_client_stopped(c)) {
        set_err(c, "%s %s: stopped", method, path ? path : "");
        return -ECANCELED;
    }
    struct curl_slist *headers = NULL;
    struct buf b = {.max = CLIENT_MAX_BODY};
    int rc = prepare(c, method, path, content_type, body, len, &headers);
    if (rc)
        return rc;
    curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, body_write);
    curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, (long)c->set.timeout_ms);
    CURLcode res = client_perform(c);
    if (res == CURLE_WRITE_ERROR && b.overflow) {
        set_err(c, "%s %s: reply larger than %u bytes", method, path, CLIENT_MAX_BODY);
        rc = -E2BIG;
    } else if (res != CURLE_OK) {
        rc = transfer_error(c, method, path, res);
    } else if ((rc = fill_response(c, &b, out)) == 0) {
        corral_debug("client", "%s %s -> %ld", method, path, out->status);
    }
    free(b.data);
    free_headers(headers);
    if (rc)
        corral_response_clear(out);
    return rc;
}

int corral_client_request_json(struct corral_client *c, const char *method, const char *path,
                               const json_t *body, const char *content_type,
                               struct corral_response *out)
{
    char *text = NULL;
    if (body && !(text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY))) {
        memset(out, 0, sizeof(*out));
        return -ENOMEM;
    }
    int rc =
        corral_client_request(c, method, path, content_type, text, text ? strlen(text) : 0, out);
    free(text);
    return rc;
}

void corral_response_clear(struct corral_response *r)
{
    free(r->content_type);
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

/* The code for a Status object carried in an error reply or an ERROR watch event. */
static int status_error(struct corral_client *c, long http, const json_t *status)
{
    const char *reason = json_string_value(json_object_get(status, "reason"));
    const char *msg = json_string_value(json_object_get(status, "message"));
    int rc = corral_error_from_http((int)http, reason);
    if (c && msg)
        set_err(c, "%s", msg);
    else if (c)
        set_err(c, "HTTP %ld%s%s", http, reason ? " " : "", reason ? reason : "");
    return rc ? rc : CORRAL_EINTERNAL;
}

int corral_client_reply_error(struct corral_client *c, const struct corral_response *r)
{
    if (r->status >= 200 && r->status < 300)
        return 0;
    if (json_is_object(r->json))
        return status_error(c, r->status, r->json);
    int rc = corral_error_from_http((int)r->status, NULL);
    if (c)
        set_err(c, "HTTP %ld: %.200s", r->status, r->body ? r->body : "");
    return rc ? rc : CORRAL_EINTERNAL;
}

/* Sends a request and turns the reply into a code and an object. */
static int object_call(struct corral_client *c, const char *method, const char *path,
                       const json_t *body, const char *content_type, json_t **out)
{
    struct corral_response r;
    if (out)
        *out = NULL;
    int rc = corral_client_request_json(c, method, path, body, content_type, &r);
    if (rc)
        return rc;
    rc = corral_client_reply_error(c, &r);
    if (rc == 0 && !r.json && r.len) {
        set_err(c, "%s %s: reply is not JSON", method, path);
        rc = -EPROTO;
    }
    if (rc == 0 && out) {
        *out = r.json;
        r.json = NULL;
    }
    corral_response_clear(&r);
    return rc;
}

int corral_client_get(struct corral_client *c, const char *path, json_t **out)
{
    return object_call(c, "GET", path, NULL, NULL, out);
}

int corral_client_create(struct corral_client *c, const char *path, const json_t *obj, json_t **out)
{
    return object_call(c, "POST", path, obj, NULL, out);
}

int corral_client_update(struct corral_client *c, const char *path, const json_t *obj, json_t **out)
{
    return object_call(c, "PUT", path, obj, NULL, out);
}

int corral_client_patch(struct corral_client *c, const char *path, enum corral_patch_type type,
                        const json_t *patch, json_t **out)
{
    static const char *const types[] = {
        [CORRAL_PATCH_MERGE] = "application/merge-patch+json",
        [CORRAL_PATCH_STRATEGIC] = "application/strategic-merge-patch+json",
        [CORRAL_PATCH_JSON] = "application/json-patch+json",
    };
    if ((unsigned)type > CORRAL_PATCH_JSON || !patch) {
        set_err(c, "PATCH %s: bad patch type or no patch", path);
        return -EINVAL;
    }
    return object_call(c, "PATCH", path, patch, types[type], out);
}

int corral_client_delete(struct corral_client *c, const char *path, const json_t *options,
                         json_t **out)
{
    return object_call(c, "DELETE", path, options, NULL, out);
}

/* ------------------------------------------------------------------------------------------ */
/* Paths                                                                                       */

static bool unreserved(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

/* Appends s percent-encoded to b. */
static int buf_escape(struct buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char enc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
        int rc = unreserved(*p) ? buf_append(b, (const char *)p, 1) : buf_append(b, enc, 3);
        if (rc)
            return rc;
    }
    return 0;
}

static int buf_str(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

char *corral_client_path(const char *api_version, const char *resource, const char *ns,
                         const char *name, const char *subresource)
{
    if (!api_version || !api_version[0])
        return NULL;
    struct buf b = {.max = SIZE_MAX / 2};
    int rc = buf_str(&b, strchr(api_version, '/') ? "/apis/" : "/api/");
    rc = rc ? rc : buf_str(&b, api_version);
    if (!rc && ns)
        rc = buf_str(&b, "/namespaces/") ? -ENOMEM : buf_escape(&b, ns);
    if (!rc && resource)
        rc = buf_str(&b, "/") ? -ENOMEM : buf_str(&b, resource);
    if (!rc && name)
        rc = buf_str(&b, "/") ? -ENOMEM : buf_escape(&b, name);
    if (!rc && subresource)
        rc = buf_str(&b, "/") ? -ENOMEM : buf_str(&b, subresource);
    if (rc) {
        free(b.data);
        return NULL;
    }
    return b.data;
}

int corral_client_query_add(char **path, const char *key, const char *value)
{
    struct buf b = {.max = SIZE_MAX / 2};
    int rc = buf_str(&b, *path);
    rc = rc ? rc : buf_str(&b, strchr(*path, '?') ? "&" : "?");
    rc = rc ? rc : buf_escape(&b, key);
    rc = rc ? rc : buf_str(&b, "=");
    rc = rc ? rc : buf_escape(&b, value ? value : "");
    if (rc) {
        free(b.data);
        return -ENOMEM;
    }
    free(*path);
    *path = b.data;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Watches                                                                                     */

struct watch {
    struct corral_client *c;
    corral_watch_fn fn;
    void *ctx;
    long status;        /* HTTP status, 0 until the first body bytes */
    struct buf pending; /* bytes of the event being assembled */
    struct buf errbody; /* body of a non-200 reply */
    size_t scanned;     /* bytes of pending already scanned */
    size_t start;       /* offset of the current value in pending */
    int depth;
    bool in_value, in_string, escape;
    int rc; /* why the write callback stopped the transfer */
};

static int watch_type(const char *s, enum corral_watch_type *t)
{
    static const struct {
        const char *name;
        enum corral_watch_type type;
    } types[] = {
        {"ADDED", CORRAL_WATCH_ADDED},
        {"MODIFIED", CORRAL_WATCH_MODIFIED},
        {"DELETED", CORRAL_WATCH_DELETED},
        {"BOOKMARK", CORRAL_WATCH_BOOKMARK},
    };
    for (size_t i = 0; s && i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(s, types[i].name) == 0) {
            *t = types[i].type;
            return 0;
        }
    return -EPROTO;
}

/* Decodes one complete event text and hands it to the callback. */
static int watch_dispatch(struct watch *w, const char *p, size_t n)
{
    json_error_t jerr;
    json_t *ev = json_loadb(p, n, 0, &jerr);
    if (!ev) {
        set_err(w->c, "watch: event is not JSON: %s", jerr.text);
        return -EPROTO;
    }
    const char *type = json_string_value(json_object_get(ev, "type"));
    json_t *obj = json_object_get(ev, "object");
    enum corral_watch_type t;
    int rc;
    if (type && strcmp(type, "ERROR") == 0 && json_is_object(obj)) {
        json_int_t code = json_integer_value(json_object_get(obj, "code"));
        rc = status_error(w->c, code ? (long)code : 500, obj);
    } else if (watch_type(type, &t) != 0 || !json_is_object(obj)) {
        set_err(w->c, "watch: event without a known type and an object");
        rc = -EPROTO;
    } else {
        rc = w->fn(t, obj, w->ctx);
    }
    json_decref(ev);
    return rc;
}

/* Advances the JSON scanner over one byte inside a value; returns true when it closes. */
static bool watch_scan_byte(struct watch *w, char ch)
{
    if (w->in_string) {
        if (w->escape)
            w->escape = false;
        else if (ch == '\\')
            w->escape = true;
        else if (ch == '"')
            w->in_string = false;
        return false;
    }
    if (ch == '"')
        w->in_string = true;
    else if (ch == '{' || ch == '[')
        w->depth++;
    else if (ch == '}' || ch == ']')
        return --w->depth == 0;
    return false;
}

/* Scans the newly arrived bytes of w->pending, dispatching each complete event. */
static int watch_scan(struct watch *w)
{
    char *d = w->pending.data;
    size_t i;
    for (i = w->scanned; i < w->pending.len; i++) {
        char ch = d[i];
        if (!w->in_value) {
            if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t')
                continue;
            if (ch != '{') {
                set_err(w->c, "watch: unexpected byte 0x%02x between events", (unsigned char)ch);
                return -EPROTO;
            }
            w->in_value = true;
            w->start = i;
            w->depth = 0;
        }
        if (watch_scan_byte(w, ch)) {
            w->in_value = false;
            int rc = watch_dispatch(w, d + w->start, i + 1 - w->start);
            if (rc)
                return rc;
        }
    }
    /* Keep only the unfinished value. */
    size_t keep = w->in_value ? w->start : w->pending.len;
    memmove(d, d + keep, w->pending.len - keep);
    w->pending.len -= keep;
    w->scanned = w->pending.len;
    w->start = 0;
    return 0;
}

static size_t watch_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct watch *w = ud;
    size_t n = size * nmemb;
    if (w->status == 0)
        curl_easy_getinfo(w->c->easy, CURLINFO_RESPONSE_CODE, &w->status);
    if (w->status != 200) {
        buf_append(&w->errbody, ptr, n); /* overflow only truncates the message */
        return n;
    }
    int rc = buf_append(&w->pending, ptr, n);
    if (rc) {
        set_err(w->c, "watch: event larger than %u bytes", CLIENT_MAX_EVENT);
        w->rc = rc;
        return 0;
    }
    if ((rc = watch_scan(w)) != 0) {
        w->rc = rc;
        return 0;
    }
    return n;
}

/* The outcome of a watch transfer that ended without a callback stopping it. */
static int watch_result(struct watch *w, const char *path, CURLcode res)
{
    if (res != CURLE_OK)
        return transfer_error(w->c, "GET", path, res);
    if (w->status == 0)
        curl_easy_getinfo(w->c->easy, CURLINFO_RESPONSE_CODE, &w->status);
    if (w->status != 200) {
        struct corral_response r = {
            .status = w->status, .body = w->errbody.data, .len = w->errbody.len};
        if (w->errbody.data)
            r.json = json_loadb(w->errbody.data, w->errbody.len, 0, NULL);
        int rc = corral_client_reply_error(w->c, &r);
        json_decref(r.json);
        return rc ? rc : -EPROTO;
    }
    if (w->in_value) {
        set_err(w->c, "watch: the stream ended inside an event");
        return CORRAL_EUNAVAILABLE;
    }
    return 0;
}

static char *watch_path(const char *path, int timeout_s)
{
    char *p = strdup(path);
    char num[16];
    if (!p)
        return NULL;
    if (!strstr(p, "watch=") && corral_client_query_add(&p, "watch", "true"))
        goto err;
    snprintf(num, sizeof(num), "%d", timeout_s);
    if (timeout_s > 0 && corral_client_query_add(&p, "timeoutSeconds", num))
        goto err;
    return p;
err:
    free(p);
    return NULL;
}

int corral_client_watch(struct corral_client *c, const char *path, int timeout_s,
                        corral_watch_fn fn, void *ctx)
{
    if (corral_client_stopped(c))
        return -ECANCELED;
    struct watch w = {.c = c, .fn = fn, .ctx = ctx};
    w.pending.max = CLIENT_MAX_EVENT;
    w.errbody.max = CLIENT_MAX_ERRBODY;
    struct curl_slist *headers = NULL;
    char *full = path ? watch_path(path, timeout_s) : NULL;
    if (!full)
        return path ? -ENOMEM : -EINVAL;
    int rc = prepare(c, "GET", full, NULL, NULL, 0, &headers);
    if (rc)
        goto out;
    curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, watch_write);
    curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, &w);
    curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS,
                     timeout_s > 0 ? (long)(timeout_s + WATCH_GRACE_S) * 1000L : 0L);
    CURLcode res = client_perform(c);
    if (res == CURLE_WRITE_ERROR && w.rc)
        rc = w.rc;
    else
        rc = watch_result(&w, full, res);
    corral_debug("client", "watch %s ended: %d", full, rc);
out:
    free(w.pending.data);
    free(w.errbody.data);
    free_headers(headers);
    free(full);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Informers                                                                                   */

#define INFORMER_CALLBACK 1 /* internal: the user's callback asked to stop (see inf->cb_rc) */

struct corral_informer {
    struct corral_client *c;
    struct corral_informer_config cfg;
    char *path;
    pthread_mutex_t lock; /* guards cache, rv, synced */
    json_t *cache;        /* "ns/name" or "name" -> object */
    char rv[128];
    bool synced;
    char *kind;        /* item kind from the list ("Pod"), for items that lack it */
    char *api_version; /* item apiVersion from the list */
    int cb_rc;         /* the user's callback's non-zero return */
};

int corral_informer_new(struct corral_client *c, const struct corral_informer_config *cfg,
                        struct corral_informer **out)
{
    *out = NULL;
    if (!cfg->path || cfg->path[0] != '/' || !cfg->on_event)
        return -EINVAL;
    struct corral_informer *inf = calloc(1, sizeof(*inf));
    if (!inf)
        return -ENOMEM;
    inf->c = c;
    inf->cfg = *cfg;
    inf->cfg.backoff_min_ms = cfg->backoff_min_ms > 0 ? cfg->backoff_min_ms : 200;
    inf->cfg.backoff_max_ms = cfg->backoff_max_ms > 0 ? cfg->backoff_max_ms : 30000;
    inf->cfg.watch_timeout_s = cfg->watch_timeout_s > 0 ? cfg->watch_timeout_s : 300;
    inf->cfg.page_size = cfg->page_size > 0 ? cfg->page_size : 500;
    inf->path = strdup(cfg->path);
    inf->cache = json_object();
    pthread_mutex_init(&inf->lock, NULL);
    if (!inf->path || !inf->cache) {
        corral_informer_free(inf);
        return -ENOMEM;
    }
    inf->cfg.path = inf->path;
    *out = inf;
    return 0;
}

void corral_informer_free(struct corral_informer *inf)
{
    if (!inf)
        return;
    pthread_mutex_destroy(&inf->lock);
    json_decref(inf->cache);
    free(inf->path);
    free(inf->kind);
    free(inf->api_version);
    free(inf);
}

void corral_informer_stop(struct corral_informer *inf)
{
    corral_client_stop(inf->c);
}

/* Writes the cache key of obj into key; returns false when obj has no name. */
static bool informer_key(const json_t *obj, char *key, size_t len)
{
    const char *name = corral_meta_name(obj), *ns = corral_meta_namespace(obj);
    if (!name)
        return false;
    if (ns && ns[0])
        snprintf(key, len, "%s/%s", ns, name);
    else
        snprintf(key, len, "%s", name);
    return true;
}

static const char *object_rv(const json_t *obj)
{
    const char *rv =
        json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
    return rv ? rv : "";
}

static void informer_set_rv(struct corral_informer *inf, const char *rv)
{
    if (!rv || !rv[0])
        return;
    pthread_mutex_lock(&inf->lock);
    snprintf(inf->rv, sizeof(inf->rv), "%s", rv);
    pthread_mutex_unlock(&inf->lock);
}

static int informer_deliver(struct corral_informer *inf, enum corral_watch_type t, json_t *obj)
{
    int rc = inf->cfg.on_event(t, obj, inf->cfg.ctx);
    if (rc) {
        inf->cb_rc = rc;
        return INFORMER_CALLBACK;
    }
    return 0;
}

/* Fills kind/apiVersion from the list when the server left them out of an item. */
static void informer_fill_type(struct corral_informer *inf, json_t *obj)
{
    if (inf->kind && !json_object_get(obj, "kind"))
        json_object_set_new(obj, "kind", json_string(inf->kind));
    if (inf->api_version && !json_object_get(obj, "apiVersion"))
        json_object_set_new(obj, "apiVersion", json_string(inf->api_version));
}

/* Watch callback: keeps the cache current and forwards the event. */
static int informer_event(enum corral_watch_type t, json_t *obj, void *ctx)
{
    struct corral_informer *inf = ctx;
    char key[512];
    if (t == CORRAL_WATCH_BOOKMARK) {
        informer_set_rv(inf, object_rv(obj));
        return 0;
    }
    if (!informer_key(obj, key, sizeof(key)))
        return 0;
    informer_fill_type(inf, obj);
    pthread_mutex_lock(&inf->lock);
    json_t *old = json_incref(json_object_get(inf->cache, key));
    if (t == CORRAL_WATCH_DELETED)
        json_object_del(inf->cache, key);
    else
        json_object_set(inf->cache, key, obj);
    snprintf(inf->rv, sizeof(inf->rv), "%s", object_rv(obj));
    pthread_mutex_unlock(&inf->lock);
    bool same = old && strcmp(object_rv(old), object_rv(obj)) == 0;
    json_decref(old);
    if (t != CORRAL_WATCH_DELETED) {
        if (same)
            return 0; /* a replay of what the list already delivered */
        t = old ? CORRAL_WATCH_MODIFIED : CORRAL_WATCH_ADDED;
    }
    return informer_deliver(inf, t, obj);
}

/* Remembers the item kind ("PodList" -> "Pod") and apiVersion of a list reply. */
static void informer_list_type(struct corral_informer *inf, const json_t *list)
{
    const char *kind = json_string_value(json_object_get(list, "kind"));
    const char *av = json_string_value(json_object_get(list, "apiVersion"));
    size_t n = kind ? strlen(kind) : 0;
    if (!inf->kind && n > 4 && strcmp(kind + n - 4, "List") == 0)
        inf->kind = strndup(kind, n - 4);
    if (!inf->api_version && av)
        inf->api_version = strdup(av);
}

/* Adds one page's items to fresh; sets *cont to the continue token (malloc'd) or NULL. */
static int informer_page(struct corral_informer *inf, const json_t *list, json_t *fresh,
                         char **cont, char *rv, size_t rvlen)
{
    json_t *items = json_object_get(list, "items"), *item;
    const json_t *meta = json_object_get(list, "metadata");
    const char *next = json_string_value(json_object_get(meta, "continue"));
    size_t i;
    char key[512];
    if (!json_is_array(items) && !json_is_null(items) && items) {
        set_err(inf->c, "list %s: items is not an array", inf->path);
        return -EPROTO;
    }
    informer_list_type(inf, list);
    json_array_foreach(items, i, item)
    {
        informer_fill_type(inf, item);
        if (informer_key(item, key, sizeof(key)))
            json_object_set(fresh, key, item);
    }
    snprintf(rv, rvlen, "%s", object_rv(list));
    *cont = next && next[0] ? strdup(next) : NULL;
    return next && next[0] && !*cont ? -ENOMEM : 0;
}

static char *informer_list_path(struct corral_informer *inf, const char *cont)
{
    char *p = strdup(inf->path);
    char num[16];
    snprintf(num, sizeof(num), "%d", inf->cfg.page_size);
    if (p && corral_client_query_add(&p, "limit", num) == 0 &&
        (!cont || corral_client_query_add(&p, "continue", cont) == 0))
        return p;
    free(p);
    return NULL;
}

/* Lists every page into fresh. */
static int informer_fetch(struct corral_informer *inf, json_t *fresh, char *rv, size_t rvlen)
{
    char *cont = NULL;
    int rc;
    do {
        char *path = informer_list_path(inf, cont);
        json_t *list = NULL;
        free(cont);
        cont = NULL;
        if (!path)
            return -ENOMEM;
        rc = corral_client_get(inf->c, path, &list);
        free(path);
        if (rc == 0)
            rc = informer_page(inf, list, fresh, &cont, rv, rvlen);
        json_decref(list);
    } while (rc == 0 && cont);
    free(cont);
    return rc;
}

/* Delivers the difference between the old cache and a fresh list as events. */
static int informer_diff(struct corral_informer *inf, json_t *old, json_t *fresh)
{
    const char *key;
    json_t *obj;
    json_object_foreach(fresh, key, obj)
    {
        json_t *prev = json_object_get(old, key);
        int rc = 0;
        if (!prev)
            rc = informer_deliver(inf, CORRAL_WATCH_ADDED, obj);
        else if (strcmp(object_rv(prev), object_rv(obj)) != 0)
            rc = informer_deliver(inf, CORRAL_WATCH_MODIFIED, obj);
        if (rc)
            return rc;
    }
    json_object_foreach(old, key, obj)
    {
        if (!json_object_get(fresh, key) && informer_deliver(inf, CORRAL_WATCH_DELETED, obj))
            return INFORMER_CALLBACK;
    }
    return 0;
}

static int informer_list(struct corral_informer *inf)
{
    json_t *fresh = json_object();
    char rv[128] = "";
    if (!fresh)
        return -ENOMEM;
    int rc = informer_fetch(inf, fresh, rv, sizeof(rv));
    if (rc) {
        json_decref(fresh);
        return rc;
    }
    pthread_mutex_lock(&inf->lock);
    json_t *old = inf->cache;
    inf->cache = fresh;
    snprintf(inf->rv, sizeof(inf->rv), "%s", rv);
    pthread_mutex_unlock(&inf->lock);
    rc = informer_diff(inf, old, fresh);
    json_decref(old);
    if (rc)
        return rc;
    pthread_mutex_lock(&inf->lock);
    inf->synced = true;
    pthread_mutex_unlock(&inf->lock);
    if (inf->cfg.on_synced && (rc = inf->cfg.on_synced(inf->cfg.ctx)) != 0) {
        inf->cb_rc = rc;
        return INFORMER_CALLBACK;
    }
    return 0;
}

static int informer_watch(struct corral_informer *inf)
{
    char rv[128];
    corral_informer_resource_version(inf, rv, sizeof(rv));
    char *p = strdup(inf->path);
    int rc = p ? corral_client_query_add(&p, "allowWatchBookmarks", "true") : -ENOMEM;
    if (rc == 0 && rv[0])
        rc = corral_client_query_add(&p, "resourceVersion", rv);
    if (rc == 0)
        rc = corral_client_watch(inf->c, p, inf->cfg.watch_timeout_s, informer_event, inf);
    free(p);
    return rc;
}

/* One list or watch; sets *need_list for the next step. */
static int informer_step(struct corral_informer *inf, bool *need_list)
{
    if (*need_list) {
        int rc = informer_list(inf);
        if (rc == 0)
            *need_list = false;
        return rc;
    }
    int rc = informer_watch(inf);
    if (rc == CORRAL_EGONE) {
        corral_info("client", "watch %s: resourceVersion too old, re-listing", inf->path);
        *need_list = true;
        return 0;
    }
    return rc;
}

int corral_informer_run(struct corral_informer *inf)
{
    bool need_list = true;
    int backoff = inf->cfg.backoff_min_ms;
    for (;;) {
        int rc = informer_step(inf, &need_list);
        if (rc == INFORMER_CALLBACK)
            return inf->cb_rc;
        if (rc == -ECANCELED || corral_client_stopped(inf->c))
            return 0;
        if (rc == 0) {
            backoff = inf->cfg.backoff_min_ms;
            continue;
        }
        corral_warn("client", "%s %s: %s (%s); retrying in %d ms", need_list ? "list" : "watch",
                    inf->path, corral_client_error(inf->c), corral_strerror(rc), backoff);
        if (corral_client_sleep(inf->c, backoff) == -ECANCELED)
            return 0;
        backoff = backoff * 2 > inf->cfg.backoff_max_ms ? inf->cfg.backoff_max_ms : backoff * 2;
    }
}

json_t *corral_informer_get(struct corral_informer *inf, const char *ns, const char *name)
{
    char key[512];
    if (!name)
        return NULL;
    if (ns && ns[0])
        snprintf(key, sizeof(key), "%s/%s", ns, name);
    else
        snprintf(key, sizeof(key), "%s", name);
    pthread_mutex_lock(&inf->lock);
    json_t *obj = json_incref(json_object_get(inf->cache, key));
    pthread_mutex_unlock(&inf->lock);
    return obj;
}

size_t corral_informer_count(struct corral_informer *inf)
{
    pthread_mutex_lock(&inf->lock);
    size_t n = json_object_size(inf->cache);
    pthread_mutex_unlock(&inf->lock);
    return n;
}

bool corral_informer_synced(struct corral_informer *inf)
{
    pthread_mutex_lock(&inf->lock);
    bool s = inf->synced;
    pthread_mutex_unlock(&inf->lock);
    return s;
}

void corral_informer_resource_version(struct corral_informer *inf, char *buf, size_t len)
{
    pthread_mutex_lock(&inf->lock);
    snprintf(buf, len, "%s", inf->rv);
    pthread_mutex_unlock(&inf->lock);
}
