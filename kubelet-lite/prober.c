/* SPDX-License-Identifier: Apache-2.0 */
/*
 * prober: the probe thread (see prober.h). Requests wait in a mutex-protected list until the
 * thread, woken by curl_multi_wakeup(), turns them into easy handles; curl_multi_poll() then
 * sleeps until a socket or a timeout needs attention.
 */
#include "prober.h"

#include "corral-config.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct job {
    struct job *next;
    uint64_t token;
    enum corral_probe_kind kind;
    char url[600];
    char target[300]; /* host:port, for messages */
    struct curl_slist *headers;
    int timeout_ms;
    CURL *easy;
};

struct corral_prober {
    pthread_t thread;
    pthread_mutex_t lock;
    CURLM *multi;
    struct job *queue; /* submitted, not started */
    struct job *active;
    bool stop;
    corral_probe_done_fn done;
    void *ctx;
};

/* snprintf for text whose truncation is acceptable or checked by the caller (gcc cannot
 * second-guess it through the va_list). Returns 0, or -ENAMETOOLONG when out was too small. */
static int fmt(char *out, size_t len, const char *f, ...) __attribute__((format(printf, 3, 4)));

static int fmt(char *out, size_t len, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(out, len, f, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static size_t discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    (void)ptr;
    (void)userdata;
    return size * nmemb;
}

static void job_free(struct job *j)
{
    if (j->easy)
        curl_easy_cleanup(j->easy);
    curl_slist_free_all(j->headers);
    free(j);
}

static CURL *make_easy(struct job *j)
{
    CURL *e = curl_easy_init();
    if (!e)
        return NULL;
    curl_easy_setopt(e, CURLOPT_URL, j->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, j);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)j->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)j->timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    if (j->kind == CORRAL_PROBE_TCP) {
        curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
        return e;
    }
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L); /* as the kubelet: probes do not verify */
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "kube-probe/1.32");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, j->headers);
    return e;
}

static void finish(struct corral_prober *p, struct job *j, CURLcode code)
{
    char msg[512];
    bool ok = false;
    if (code == CURLE_OK && j->kind == CORRAL_PROBE_TCP) {
        ok = true;
        msg[0] = '\0';
    } else if (code == CURLE_OK) {
        long status = 0;
        curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &status);
        ok = status >= 200 && status < 400;
        snprintf(msg, sizeof(msg), ok ? "" : "HTTP probe failed with statuscode: %ld", status);
    } else if (code == CURLE_OPERATION_TIMEDOUT) {
        fmt(msg, sizeof(msg), "%s %s: timeout after %d ms",
            j->kind == CORRAL_PROBE_TCP ? "dial tcp" : "Get",
            j->kind == CORRAL_PROBE_TCP ? j->target : j->url, j->timeout_ms);
    } else {
        fmt(msg, sizeof(msg), "%s %s: %s", j->kind == CORRAL_PROBE_TCP ? "dial tcp" : "Get",
            j->kind == CORRAL_PROBE_TCP ? j->target : j->url, curl_easy_strerror(code));
    }
    p->done(p->ctx, j->token, ok, msg);
}

static void unlink_active(struct corral_prober *p, struct job *j)
{
    for (struct job **pp = &p->active; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            return;
        }
}

static void start_queued(struct corral_prober *p)
{
    pthread_mutex_lock(&p->lock);
    struct job *q = p->queue;
    p->queue = NULL;
    pthread_mutex_unlock(&p->lock);
    while (q) {
        struct job *j = q;
        q = q->next;
        j->easy = make_easy(j);
        if (!j->easy || curl_multi_add_handle(p->multi, j->easy) != CURLM_OK) {
            finish(p, j, CURLE_OUT_OF_MEMORY);
            job_free(j);
            continue;
        }
        j->next = p->active;
        p->active = j;
    }
}

static void collect(struct corral_prober *p)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(p->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct job *j = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&j);
        CURLcode code = m->data.result;
        curl_multi_remove_handle(p->multi, m->easy_handle);
        unlink_active(p, j);
        finish(p, j, code);
        job_free(j);
    }
}

static void *run(void *arg)
{
    struct corral_prober *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        bool stop = p->stop;
        pthread_mutex_unlock(&p->lock);
        if (stop)
            break;
        start_queued(p);
        int running = 0;
        curl_multi_perform(p->multi, &running);
        collect(p);
        curl_multi_poll(p->multi, NULL, 0, 1000, NULL);
    }
    return NULL;
}

static void global_init(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
}

int corral_prober_new(corral_probe_done_fn done, void *ctx, struct corral_prober **out)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, global_init);
    struct corral_prober *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->done = done;
    p->ctx = ctx;
    pthread_mutex_init(&p->lock, NULL);
    p->multi = curl_multi_init();
    if (!p->multi) {
        free(p);
        return -ENOMEM;
    }
    int rc = pthread_create(&p->thread, NULL, run, p);
    if (rc) {
        curl_multi_cleanup(p->multi);
        free(p);
        return -rc;
    }
    *out = p;
    return 0;
}

int corral_prober_submit(struct corral_prober *p, uint64_t token,
                         const struct corral_probe_request *req)
{
    struct job *j = calloc(1, sizeof(*j));
    if (!j)
        return -ENOMEM;
    j->token = token;
    j->kind = req->kind;
    j->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : 1000;
    bool v6 = strchr(req->host, ':') != NULL;
    snprintf(j->target, sizeof(j->target), v6 ? "[%s]:%d" : "%s:%d", req->host, req->port);
    const char *path = req->path && *req->path ? req->path : "/";
    if (req->kind == CORRAL_PROBE_TCP)
        snprintf(j->url, sizeof(j->url), "telnet://%s", j->target);
    else
        snprintf(j->url, sizeof(j->url), "%s://%s%s%s", req->https ? "https" : "http", j->target,
                 path[0] == '/' ? "" : "/", path);
    for (size_t i = 0; req->headers && req->headers[i]; i++) {
        struct curl_slist *h = curl_slist_append(j->headers, req->headers[i]);
        if (!h) {
            job_free(j);
            return -ENOMEM;
        }
        j->headers = h;
    }
    pthread_mutex_lock(&p->lock);
    j->next = p->queue;
    p->queue = j;
    pthread_mutex_unlock(&p->lock);
    curl_multi_wakeup(p->multi);
    return 0;
}

void corral_prober_free(struct corral_prober *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_mutex_unlock(&p->lock);
    curl_multi_wakeup(p->multi);
    pthread_join(p->thread, NULL);
    while (p->active) {
        struct job *j = p->active;
        p->active = j->next;
        curl_multi_remove_handle(p->multi, j->easy);
        job_free(j);
    }
    while (p->queue) {
        struct job *j = p->queue;
        p->queue = j->next;
        job_free(j);
    }
    curl_multi_cleanup(p->multi);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
