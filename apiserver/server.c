/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server: libmicrohttpd glue (see server.h). Request lifecycle:
 *   1. first callback: allocate struct corral_request; refuse an oversized Content-Length at
 *      once with 413 (the body is never read);
 *   2. body callbacks: append to req->body, refusing anything over the limit;
 *   3. last callback: corral_routes_dispatch() answers through a corral_reply_* function;
 *   4. completion callback: metrics, free.
 * Every reply goes through queue(), which records the status code for metrics and logs.
 */
#include "server.h"
#include "auth.h"
#include "error.h"
#include "log.h"
#include "meta.h"
#include "metrics.h"
#include "objects.h"
#include "protobuf.h"
#include "routes.h"
#include "status.h"
#include "workers.h"
#include "yamljson.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define JSON_TYPE "application/json"
/*
 * libmicrohttpd's per-connection memory pool: request line and headers, the read buffer and the
 * write buffer of streamed replies (half of it). MHD zeroes the whole pool after every request
 * on a keep-alive connection, so its size is paid per request: 64 KiB still holds headers far
 * beyond what kubectl and client-go send, and 32 KiB stream chunks.
 */
#define CONN_POOL_BYTES (64 * 1024)

const char *corral_request_query(const struct corral_request *req, const char *key)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *corral_request_header(const struct corral_request *req, const char *key)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, key);
}

bool corral_request_wants_table(const struct corral_request *req)
{
    const char *accept = corral_request_header(req, "Accept");
    return accept && strstr(accept, "as=Table") && strstr(accept, "g=meta.k8s.io");
}

void corral_request_warn(struct corral_request *req, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (!req->warnings)
        req->warnings = json_array();
    json_array_append_new(req->warnings, json_string(text));
}

/* One `Warning: 299 - "text"` header per warning (RFC 7234 quoting: \ and \" escaped). */
static void add_warnings(struct corral_request *req, struct MHD_Response *resp)
{
    size_t i;
    json_t *w;
    json_array_foreach(req->warnings, i, w)
    {
        const char *text = json_string_value(w);
        char value[2200];
        size_t n = (size_t)snprintf(value, sizeof(value), "299 - \"");
        for (const char *c = text; *c && n + 4 < sizeof(value); c++) {
            if (*c == '"' || *c == '\\')
                value[n++] = '\\';
            value[n++] = (char)(*c == '\n' ? ' ' : *c);
        }
        snprintf(value + n, sizeof(value) - n, "\"");
        MHD_add_response_header(resp, "Warning", value);
    }
}

static int queue(struct corral_request *req, int code, struct MHD_Response *resp,
                 const char *content_type)
{
    if (!resp)
        return -ENOMEM;
    if (req->answered) {
        MHD_destroy_response(resp);
        corral_warn("apiserver", "%s %s answered twice", req->method, req->url);
        return -EALREADY;
    }
    if (content_type)
        MHD_add_response_header(resp, "Content-Type", content_type);
    add_warnings(req, resp);
    MHD_add_response_header(resp, "Cache-Control", "no-cache, private");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    enum MHD_Result r = MHD_queue_response(req->conn, (unsigned)code, resp);
    MHD_destroy_response(resp);
    req->answered = true;
    req->code = code;
    return r == MHD_YES ? 0 : -EIO;
}

int corral_reply_text(struct corral_request *req, int code, const char *content_type,
                      const char *text, size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
    return queue(req, code, resp, content_type);
}

int corral_reply_json(struct corral_request *req, int code, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text)
        return corral_reply_text(req, 500, "text/plain", "out of memory\n", 14);
    size_t len = strlen(text);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer_with_free_callback(len, text, free);
    if (!resp)
        free(text);
    return queue(req, code, resp, JSON_TYPE);
}

static void blob_free(void *cls)
{
    corral_blob_unref(cls);
}

int corral_reply_blob(struct corral_request *req, int code, struct corral_blob *blob)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback_cls(
        blob->len, blob->data, blob_free, blob);
    if (!resp)
        corral_blob_unref(blob);
    return queue(req, code, resp, JSON_TYPE);
}

int corral_reply_status(struct corral_request *req, json_t *status)
{
    return corral_reply_json(req, corral_status_code(status), status);
}

int corral_reply_error(struct corral_request *req, int err, const char *fmt, ...)
{
    char msg[1024];
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
    }
    json_t *st = corral_status_from_error(err, fmt ? msg : NULL);
    if (req->res)
        corral_status_set_details(st, req->res->group, req->res->plural,
                                  *req->name ? req->name : NULL);
    return corral_reply_status(req, st);
}

struct list_reply {
    struct corral_blob **blobs;
    size_t n;
    char *prefix, *suffix;
    struct MHD_IoVec *iov;
};

static void list_reply_free(void *cls)
{
    struct list_reply *lr = cls;
    for (size_t i = 0; i < lr->n; i++)
        corral_blob_unref(lr->blobs[i]);
    free(lr->blobs);
    free(lr->prefix);
    free(lr->suffix);
    free(lr->iov);
    free(lr);
}

int corral_reply_list(struct corral_request *req, const char *prefix_json,
                      struct corral_blob **blobs, size_t n, const char *suffix_json)
{
    struct list_reply *lr = calloc(1, sizeof(*lr));
    if (!lr)
        goto err_unref;
    lr->blobs = malloc((n ? n : 1) * sizeof(*lr->blobs));
    lr->iov = malloc((2 * n + 2) * sizeof(*lr->iov));
    lr->prefix = strdup(prefix_json);
    lr->suffix = strdup(suffix_json);
    if (!lr->blobs || !lr->iov || !lr->prefix || !lr->suffix)
        goto err_free;
    if (n)
        memcpy(lr->blobs, blobs, n * sizeof(*blobs));
    lr->n = n;
    size_t k = 0;
    lr->iov[k++] = (struct MHD_IoVec){lr->prefix, strlen(lr->prefix)};
    for (size_t i = 0; i < n; i++) {
        if (i)
            lr->iov[k++] = (struct MHD_IoVec){",", 1};
        lr->iov[k++] = (struct MHD_IoVec){blobs[i]->data, blobs[i]->len};
    }
    lr->iov[k++] = (struct MHD_IoVec){lr->suffix, strlen(lr->suffix)};
    struct MHD_Response *resp =
        MHD_create_response_from_iovec(lr->iov, (unsigned)k, list_reply_free, lr);
    if (!resp) {
        list_reply_free(lr);
        return -ENOMEM;
    }
    return queue(req, 200, resp, JSON_TYPE);
err_free:
    lr->n = n; /* list_reply_free drops the references */
    if (lr->blobs && n)
        memcpy(lr->blobs, blobs, n * sizeof(*blobs));
    else
        for (size_t i = 0; i < n; i++)
            corral_blob_unref(blobs[i]);
    if (!lr->blobs)
        lr->n = 0;
    list_reply_free(lr);
    return -ENOMEM;
err_unref:
    for (size_t i = 0; i < n; i++)
        corral_blob_unref(blobs[i]);
    return -ENOMEM;
}

/* ---- suspended connections ---------------------------------------------------------------- */

/*
 * What the server runs besides libmicrohttpd's threads: the worker pool, the parked streams
 * and the thread that wakes them. Every connection this file suspends is counted, because MHD
 * must not be stopped while one is suspended; once closing is set, nothing is suspended any
 * more (requests run on the HTTP thread, streams end). The count and the flag are atomics
 * (sequentially consistent: a suspender increments and then reads closing, the drain sets
 * closing and then reads the count, so one of them sees the other); mu guards the parked list
 * and is held only for a push or a pop of the whole list, never while resuming.
 */
struct corral_server_rt {
    pthread_mutex_t mu;
    pthread_cond_t drained; /* suspended reached 0 while closing */
    atomic_uint suspended;
    atomic_bool closing;
    struct stream *parked; /* poll streams waiting for the store to move */
    pthread_t waker;
    bool waker_started;
    struct corral_workers *workers;
};

/* Counts one suspended connection gone; wakes the drain when it was the last. */
static void suspended_dec(struct corral_server_rt *rt, unsigned n)
{
    if (atomic_fetch_sub(&rt->suspended, n) == n && atomic_load(&rt->closing)) {
        pthread_mutex_lock(&rt->mu);
        pthread_cond_broadcast(&rt->drained);
        pthread_mutex_unlock(&rt->mu);
    }
}

/* Suspends conn unless the server is stopping; from an MHD callback only. True if suspended. */
static bool conn_suspend(struct corral_server_rt *rt, struct MHD_Connection *conn)
{
    atomic_fetch_add(&rt->suspended, 1);
    if (atomic_load(&rt->closing)) {
        suspended_dec(rt, 1);
        return false;
    }
    MHD_suspend_connection(conn);
    return true;
}

/* Resumes a connection conn_suspend() suspended; any thread. */
static void conn_resume(struct corral_server_rt *rt, struct MHD_Connection *conn)
{
    MHD_resume_connection(conn);
    suspended_dec(rt, 1);
}

/* ---- streamed replies ---------------------------------------------------------------------- */

#define STREAM_BUF 16384
#define STREAM_RETRIES 8 /* polls in a row before a stream parks without checking the revision */

/*
 * A streamed reply. A blocking source (read) is called by a worker, with the connection
 * suspended, into buf; the HTTP thread then sends what it read. A polled source (poll) is called
 * on the HTTP thread; when it has nothing, the stream parks (connection suspended) until the
 * waker resumes it.
 */
struct stream {
    struct corral_apiserver *srv;
    struct MHD_Connection *conn;
    long (*read)(void *ctx, char *buf, size_t max);
    long (*poll)(void *ctx, char *buf, size_t max);
    void (*done)(void *ctx);
    void *ctx;
    struct stream *next; /* in rt->parked */
    char *buf;
    size_t len, off;
    bool ended, failed;
};

/* Worker: reads the next piece of a blocking source, then hands the connection back. */
static void stream_fill(void *arg)
{
    struct stream *s = arg;
    long n = s->read(s->ctx, s->buf, STREAM_BUF);
    if (n > 0) {
        s->len = (size_t)n;
    } else {
        s->ended = true;
        s->failed = n < 0;
    }
    conn_resume(s->srv->rt, s->conn);
}

static ssize_t blocking_stream_read(struct stream *s, char *buf, size_t max)
{
    if (s->off < s->len) {
        size_t n = s->len - s->off < max ? s->len - s->off : max;
        memcpy(buf, s->buf + s->off, n);
        s->off += n;
        return (ssize_t)n;
    }
    if (s->ended)
        return s->failed ? MHD_CONTENT_READER_END_WITH_ERROR : MHD_CONTENT_READER_END_OF_STREAM;
    s->off = s->len = 0;
    struct corral_server_rt *rt = s->srv->rt;
    if (!conn_suspend(rt, s->conn))
        return MHD_CONTENT_READER_END_OF_STREAM; /* stopping */
    if (corral_workers_submit(rt->workers, stream_fill, s) < 0) {
        s->ended = s->failed = true;
        conn_resume(rt, s->conn); /* called again at once: ends with an error */
    }
    return 0;
}

/*
 * Parks s unless the store moved past rev0 (its events may not have been seen) or the server
 * is stopping. Returns 1 when parked, 0 to poll again, -1 when stopping.
 */
static int stream_park(struct stream *s, int64_t rev0, bool check)
{
    struct corral_server_rt *rt = s->srv->rt;
    int rc = 1;
    pthread_mutex_lock(&rt->mu); /* the waker takes the list under mu: suspend before it can */
    if (check && corral_store_revision(s->srv->store) != rev0)
        rc = 0;
    else if (!conn_suspend(rt, s->conn))
        rc = -1;
    if (rc == 1) {
        s->next = rt->parked;
        rt->parked = s;
    }
    pthread_mutex_unlock(&rt->mu);
    return rc;
}

static ssize_t poll_stream_read(struct stream *s, char *buf, size_t max)
{
    for (int i = 0;; i++) {
        int64_t rev0 = corral_store_revision(s->srv->store);
        long n = s->poll(s->ctx, buf, max);
        if (n != 0)
            return n > 0 ? (ssize_t)n : MHD_CONTENT_READER_END_OF_STREAM;
        int p = stream_park(s, rev0, i < STREAM_RETRIES);
        if (p != 0)
            return p > 0 ? 0 : MHD_CONTENT_READER_END_OF_STREAM;
    }
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct stream *s = cls;
    return s->poll ? poll_stream_read(s, buf, max) : blocking_stream_read(s, buf, max);
}

static void stream_free(void *cls)
{
    struct stream *s = cls;
    if (s->done)
        s->done(s->ctx);
    free(s->buf);
    free(s);
}

static int reply_stream(struct corral_request *req, const char *content_type,
                        const struct stream *proto)
{
    struct stream *s = malloc(sizeof(*s));
    char *buf = proto->read ? malloc(STREAM_BUF) : NULL;
    if (!s || (proto->read && !buf)) {
        free(s);
        free(buf);
        if (proto->done)
            proto->done(proto->ctx);
        return -ENOMEM;
    }
    *s = *proto;
    s->srv = req->srv;
    s->conn = req->conn;
    s->buf = buf;
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BUF,
                                                                  stream_read, s, stream_free);
    if (!resp) {
        stream_free(s);
        return -ENOMEM;
    }
    return queue(req, 200, resp, content_type);
}

int corral_reply_stream(struct corral_request *req, const char *content_type,
                        long (*read)(void *ctx, char *buf, size_t max), void (*done)(void *ctx),
                        void *ctx)
{
    struct stream proto = {.read = read, .done = done, .ctx = ctx};
    return reply_stream(req, content_type, &proto);
}

int corral_reply_poll_stream(struct corral_request *req, const char *content_type,
                             long (*poll)(void *ctx, char *buf, size_t max),
                             void (*done)(void *ctx), void *ctx)
{
    struct stream proto = {.poll = poll, .done = done, .ctx = ctx};
    return reply_stream(req, content_type, &proto);
}

/* ---- the waker ----------------------------------------------------------------------------- */

#define WAKER_TICK_MS 200
#define WAKER_ALL_NS 1000000000ull /* parked streams are polled at least this often */

/* Resumes every parked stream. The list is taken whole; streams may park again meanwhile. */
static void resume_parked(struct corral_server_rt *rt)
{
    pthread_mutex_lock(&rt->mu);
    struct stream *s = rt->parked;
    rt->parked = NULL;
    pthread_mutex_unlock(&rt->mu);
    unsigned n = 0;
    while (s) {
        struct stream *next = s->next; /* s may be gone once resumed */
        MHD_resume_connection(s->conn);
        n++;
        s = next;
    }
    if (n)
        suspended_dec(rt, n);
}

static bool rt_closing(struct corral_server_rt *rt)
{
    return atomic_load(&rt->closing);
}

/*
 * Resumes the parked streams whenever the store's revision moves (watch events), and at least
 * once a second (deadlines, heartbeats, shutdown).
 */
static void *waker_main(void *arg)
{
    struct corral_apiserver *srv = arg;
    int64_t last = corral_store_revision(srv->store);
    uint64_t last_all = corral_now_ns();
    while (!rt_closing(srv->rt)) {
        struct corral_store_event ev;
        int64_t seen;
        int n = corral_store_events(srv->store, "/", last, &ev, 1, WAKER_TICK_MS, &seen);
        if (n > 0)
            corral_store_event_clear(&ev);
        int64_t now_rev = corral_store_revision(srv->store);
        uint64_t now = corral_now_ns();
        if (now_rev == last && now - last_all < WAKER_ALL_NS)
            continue;
        last = now_rev;
        last_all = now;
        resume_parked(srv->rt);
    }
    return NULL;
}

/* ---- body decoding ---- */

static bool content_type_is(const char *ct, const char *want)
{
    size_t n = strlen(want);
    return ct && strncasecmp(ct, want, n) == 0 && (ct[n] == 0 || ct[n] == ';' || ct[n] == ' ');
}

int corral_request_body_object(struct corral_request *req, json_t **out)
{
    const char *ct = corral_request_header(req, "Content-Type");
    if (content_type_is(ct, "application/vnd.kubernetes.protobuf")) {
        char err[256];
        int rc = corral_protobuf_decode((const unsigned char *)req->body, req->body_len, out,
                                        err, sizeof(err));
        if (rc < 0)
            corral_reply_error(req, rc, "%s", err);
        return rc;
    }
    if (ct && !content_type_is(ct, "application/json") && !content_type_is(ct, "application/yaml") &&
        !content_type_is(ct, "text/plain") && !content_type_is(ct, "*/*")) {
        corral_reply_error(req, CORRAL_EMEDIATYPE,
                           "the body of the request was in an unknown format - accepted media "
                           "types include: application/json, application/yaml, "
                           "application/vnd.kubernetes.protobuf");
        return CORRAL_EMEDIATYPE;
    }
    if (req->body_len == 0) {
        corral_reply_error(req, CORRAL_EBADREQUEST, "the request body is empty");
        return CORRAL_EBADREQUEST;
    }
    json_t *docs = NULL;
    struct corral_parse_error perr;
    int rc = corral_yaml_load(req->body, req->body_len, &docs, &perr);
    if (rc < 0) {
        corral_reply_error(req, CORRAL_EBADREQUEST, "error decoding %s body: line %d column %d: %s",
                           content_type_is(ct, "application/yaml") ? "YAML" : "JSON", perr.line,
                           perr.column, perr.message);
        return CORRAL_EBADREQUEST;
    }
    if (json_array_size(docs) != 1 || !json_is_object(json_array_get(docs, 0))) {
        json_decref(docs);
        corral_reply_error(req, CORRAL_EBADREQUEST,
                           "the request body must hold exactly one object");
        return CORRAL_EBADREQUEST;
    }
    *out = json_incref(json_array_get(docs, 0));
    json_decref(docs);
    return 0;
}

/* ---- MHD callbacks ---- */

static struct corral_request *request_new(struct corral_apiserver *srv,
                                          struct MHD_Connection *conn, const char *url,
                                          const char *method)
{
    struct corral_request *req = calloc(1, sizeof(*req));
    if (!req)
        return NULL;
    req->srv = srv;
    req->conn = conn;
    req->url = url;
    req->method = method;
    req->start_ns = corral_now_ns();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    req->received_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    return req;
}

static bool body_too_large(struct corral_request *req)
{
    const char *cl = corral_request_header(req, "Content-Length");
    return cl && strtoull(cl, NULL, 10) > req->srv->cfg.max_body;
}

static int append_body(struct corral_request *req, const char *data, size_t len)
{
    if (req->body_len + len > req->srv->cfg.max_body) {
        req->too_large = true;
        return 0;
    }
    if (req->body_len + len + 1 > req->body_cap) {
        size_t cap = (req->body_len + len + 1) * 2;
        if (cap > req->srv->cfg.max_body + 1)
            cap = req->srv->cfg.max_body + 1;
        char *nb = realloc(req->body, cap);
        if (!nb)
            return -ENOMEM;
        req->body = nb;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, data, len);
    req->body_len += len;
    req->body[req->body_len] = 0;
    return 0;
}

static void dispatch(struct corral_request *req)
{
    corral_routes_dispatch(req);
    if (!req->answered)
        corral_reply_error(req, CORRAL_EINTERNAL, "the request was not answered");
}

/* Worker: runs a request whose connection is suspended, then hands the connection back. */
static void request_job(void *arg)
{
    struct corral_request *req = arg;
    struct corral_server_rt *rt = req->srv->rt;
    struct MHD_Connection *conn = req->conn;
    dispatch(req);
    conn_resume(rt, conn); /* req may be freed from here on */
}

/* Hands req to a worker (its connection suspended meanwhile). False: run it here. */
static bool to_worker(struct corral_apiserver *srv, struct corral_request *req)
{
    if (!conn_suspend(srv->rt, req->conn))
        return false; /* stopping: finish it here */
    if (corral_workers_submit(srv->rt->workers, request_job, req) == 0)
        return true;
    conn_resume(srv->rt, req->conn);
    return false;
}

static bool is_path(const char *url, const char *const *paths)
{
    for (; *paths; paths++)
        if (strcmp(url, *paths) == 0)
            return true;
    return false;
}

/*
 * True for requests that are answered from memory at once and may run on the HTTP thread:
 * health and version, GETs of one object (or its status) and watches that start from a given
 * revision (they only set up a polled stream). Everything else (writes, lists, discovery,
 * proxied logs, watches that list first) goes to a worker.
 */
static bool runs_inline(struct corral_request *req)
{
    static const char *const plain[] = {"/healthz", "/livez", "/readyz", "/version", NULL};
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0)
        return false;
    if (is_path(req->url, plain))
        return true;
    if (corral_objects_classify(req) < 0)
        return false;
    if (strcmp(req->verb, "get") == 0)
        return req->shape == CORRAL_TARGET_OBJECT ||
               (req->shape == CORRAL_TARGET_SUBRESOURCE && strcmp(req->sub, "status") == 0);
    if (strcmp(req->verb, "watch") != 0)
        return false;
    const char *rv = corral_request_query(req, "resourceVersion");
    const char *initial = corral_request_query(req, "sendInitialEvents");
    return rv && *rv && strcmp(rv, "0") != 0 && !(initial && strcmp(initial, "true") == 0);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct corral_apiserver *srv = cls;
    struct corral_request *req = *con_cls;
    if (!req) {
        req = request_new(srv, conn, url, method);
        if (!req)
            return MHD_NO;
        *con_cls = req;
        if (body_too_large(req)) {
            corral_objects_classify(req); /* so metrics name the verb and resource */
            corral_reply_error(req, CORRAL_ETOOLARGE, "the request body is larger than %zu bytes",
                               srv->cfg.max_body);
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (!req->answered && append_body(req, upload_data, *upload_data_size) < 0)
            return MHD_NO;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->answered)
        return MHD_YES;
    if (req->too_large) {
        corral_objects_classify(req);
        corral_reply_error(req, CORRAL_ETOOLARGE, "the request body is larger than %zu bytes",
                           srv->cfg.max_body);
        return MHD_YES;
    }
    if (runs_inline(req) || !to_worker(srv, req))
        dispatch(req);
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct corral_apiserver *srv = cls;
    struct corral_request *req = *con_cls;
    if (!req)
        return;
    uint64_t dt = corral_now_ns() - req->start_ns;
    if (!req->verb)
        corral_objects_classify(req); /* refused before routing: name what was asked */
    corral_metrics_request(srv->metrics, req->verb ? req->verb : req->method,
                           req->res ? req->res->plural : "", req->code, dt);
    corral_auth_audit(srv->auth, req);
    corral_debug("apiserver", "%s %s -> %d (%.2f ms)", req->method, req->url, req->code,
                 (double)dt / 1e6);
    free(req->body);
    json_decref(req->warnings);
    free(req);
    *con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = 0;
    corral_debug("http", "%s", msg);
}

/* ---- lifecycle ---- */

int corral_server_init(struct corral_apiserver *srv, const struct corral_apiserver_config *cfg)
{
    memset(srv, 0, sizeof(*srv));
    srv->cfg = *cfg;
    srv->started = time(NULL);
    corral_resources_init();
    srv->metrics = corral_metrics_new();
    if (!srv->metrics)
        return -ENOMEM;
    struct corral_store_etcd_tls etls = {.ca_file = cfg->etcd_ca, .cert_file = cfg->etcd_cert,
                                         .key_file = cfg->etcd_key};
    int rc = cfg->etcd ? corral_store_open_etcd_tls(cfg->etcd, "/corral", &etls, &srv->store)
                       : corral_store_open_sqlite(cfg->data_dir, &srv->store);
    if (rc == 0 && (cfg->history_events || cfg->history_s)) {
        struct corral_store_retention r = {
            .max_events = cfg->history_events ? cfg->history_events : CORRAL_STORE_HISTORY_EVENTS,
            .max_age_s = cfg->history_s ? cfg->history_s : CORRAL_STORE_HISTORY_AGE_S,
            .max_bytes = CORRAL_STORE_HISTORY_BYTES};
        corral_store_set_retention(srv->store, &r);
    }
    if (rc < 0) {
        corral_error("apiserver", "cannot open the store: %s", corral_strerror(rc));
        corral_metrics_free(srv->metrics);
        return rc;
    }
    return 0;
}

#define DRAIN_S 30 /* how long stopping waits for requests running on workers */

#define FD_RESERVE 256          /* descriptors kept for the store, logs and node-agent proxies */
#define FD_WANT (1u << 20)      /* the most descriptors asked for */

/*
 * How many connections to accept. Every watch is a connection of its own (HTTP/1.1), so a
 * cluster of a few hundred nodes needs more than libmicrohttpd's default (FD_SETSIZE - 4):
 * raise the soft descriptor limit to the hard one and accept what it allows, less a reserve.
 */
static unsigned connection_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1000;
    if (rl.rlim_cur < rl.rlim_max && rl.rlim_cur < FD_WANT) {
        rl.rlim_cur = rl.rlim_max < FD_WANT ? rl.rlim_max : FD_WANT;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur > FD_WANT)
        rl.rlim_cur = FD_WANT;
    return rl.rlim_cur > 2 * FD_RESERVE ? (unsigned)(rl.rlim_cur - FD_RESERVE)
                                        : (unsigned)rl.rlim_cur / 2;
}

/* HTTP threads: one per CPU (they never block), at least 2, at most 16. */
static unsigned http_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 2 ? 2 : n > 16 ? 16 : (unsigned)n;
}

/* Stops the waker and the workers and frees what rt_start() made. */
static void rt_stop(struct corral_apiserver *srv)
{
    struct corral_server_rt *rt = srv->rt;
    if (!rt)
        return;
    atomic_store(&rt->closing, true);
    if (rt->waker_started)
        pthread_join(rt->waker, NULL);
    corral_workers_free(rt->workers);
    pthread_cond_destroy(&rt->drained);
    pthread_mutex_destroy(&rt->mu);
    free(rt);
    srv->rt = NULL;
}

/* Creates the worker pool and starts the waker. Returns 0 or -errno. */
static int rt_start(struct corral_apiserver *srv)
{
    struct corral_server_rt *rt = calloc(1, sizeof(*rt));
    if (!rt)
        return -ENOMEM;
    pthread_mutex_init(&rt->mu, NULL);
    pthread_cond_init(&rt->drained, NULL);
    srv->rt = rt;
    int rc = corral_workers_new(&rt->workers);
    if (rc == 0) {
        rc = -pthread_create(&rt->waker, NULL, waker_main, srv);
        rt->waker_started = rc == 0;
    }
    if (rc < 0) {
        corral_error("apiserver", "cannot start the request workers: %s", strerror(-rc));
        rt_stop(srv);
    }
    return rc;
}

/*
 * Stops suspending connections, ends the parked streams and waits (up to DRAIN_S) for the
 * requests running on workers. Returns true when no connection is left suspended.
 */
static bool rt_drain(struct corral_apiserver *srv)
{
    struct corral_server_rt *rt = srv->rt;
    atomic_store(&rt->closing, true);
    resume_parked(rt); /* they poll once more, see the server stopping, and end */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += DRAIN_S;
    pthread_mutex_lock(&rt->mu);
    int rc = 0;
    while (atomic_load(&rt->suspended) > 0 && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&rt->drained, &rt->mu, &ts);
    pthread_mutex_unlock(&rt->mu);
    return atomic_load(&rt->suspended) == 0;
}

static int parse_listen(const char *listen, struct sockaddr_in *addr)
{
    char host[64];
    const char *colon = strrchr(listen, ':');
    if (!colon || (size_t)(colon - listen) >= sizeof(host))
        return -EINVAL;
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = 0;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535)
        return -EINVAL;
    memset(addr, 0, sizeof(*addr));
    addr->sin_family = AF_INET;
    addr->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &addr->sin_addr) != 1)
        return -EINVAL;
    return 0;
}

static bool is_loopback(const struct sockaddr_in *addr)
{
    return (ntohl(addr->sin_addr.s_addr) >> 24) == 127;
}

int corral_server_start(struct corral_apiserver *srv)
{
    struct sockaddr_in addr;
    if (parse_listen(srv->cfg.listen, &addr) < 0) {
        corral_error("apiserver", "--listen %s: expected IPv4:PORT", srv->cfg.listen);
        return -EINVAL;
    }
    if (srv->cfg.insecure_http && !is_loopback(&addr)) {
        corral_error("apiserver", "refusing plain HTTP on %s: --insecure-http is allowed only on "
                     "a loopback address (127.0.0.0/8); use TLS for anything reachable from "
                     "other machines",
                     srv->cfg.listen);
        return -EPERM;
    }
    struct corral_tls_options tls = {0};
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (!srv->cfg.insecure_http) {
        int rc = corral_auth_tls_options(srv->auth, &tls);
        if (rc < 0) {
            corral_error("apiserver", "TLS is required but no serving certificate is "
                         "configured (run `corral init` and pass --cluster-dir): %s",
                         corral_strerror(rc));
            return rc;
        }
        flags |= MHD_USE_TLS;
    }
    int rc = rt_start(srv);
    if (rc < 0)
        return rc;
    srv->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, http_threads(), MHD_OPTION_CONNECTION_LIMIT,
        connection_limit(),
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)120, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_POOL_BYTES,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log,
        NULL, tls.cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, tls.cert,
        MHD_OPTION_HTTPS_MEM_KEY, tls.key, tls.trust ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END,
        tls.trust, MHD_OPTION_END);
    if (!srv->mhd) {
        corral_error("apiserver", "cannot listen on %s: %s", srv->cfg.listen, strerror(errno));
        rt_stop(srv);
        return -EADDRINUSE;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_BIND_PORT);
    char host[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &addr.sin_addr, host, sizeof(host));
    snprintf(srv->url, sizeof(srv->url), "%s://%s:%u", srv->cfg.insecure_http ? "http" : "https",
             host, info ? info->port : ntohs(addr.sin_port));
    return 0;
}

void corral_server_stop(struct corral_apiserver *srv)
{
    atomic_store(&srv->stopping, true);
    if (srv->mhd) {
        MHD_socket lsock = MHD_quiesce_daemon(srv->mhd);
        if (rt_drain(srv)) {
            MHD_stop_daemon(srv->mhd); /* in-flight requests on the HTTP threads finish */
            if (lsock != MHD_INVALID_SOCKET)
                close(lsock);
            rt_stop(srv);
        } else {
            corral_error("apiserver", "requests still running after %d s; exiting without "
                         "waiting for them", DRAIN_S);
        }
        srv->mhd = NULL;
    }
    if (srv->store)
        corral_store_close(srv->store);
    srv->store = NULL;
    corral_metrics_free(srv->metrics);
    srv->metrics = NULL;
    corral_resources_shutdown();
}
