/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests for common/client.h against a small real HTTP server (libmicrohttpd) started here on
 * 127.0.0.1 with a port the kernel picks. The server plays a scripted apiserver: echo
 * endpoints, Status errors, watch streams cut at awkward byte boundaries, and a tiny pod
 * collection with list pagination, watch-from-revision and compaction (410) for the informer.
 */
#include "client.h"
#include "error.h"
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------------ */
/* The fake apiserver                                                                          */

struct fake {
    struct MHD_Daemon *d;
    int port;
    atomic_int connections;
    atomic_bool quit;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    json_t *pods;   /* name -> pod */
    json_t *events; /* [{rv, type, object}] */
    long long rv;   /* current revision */
    long long compacted;
    int generation;     /* bumped to end every open watch */
    bool gone_as_event; /* 410 as an ERROR event in a 200 stream instead of HTTP 410 */
    int lists;          /* list requests served */
    int watches;        /* watch requests served */
};

static struct fake F;

struct upload {
    char *data;
    size_t len;
};

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static enum MHD_Result reply_json(struct MHD_Connection *conn, unsigned code, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return ret;
}

static json_t *status_json(int code, const char *reason, const char *msg)
{
    return json_pack("{s:s,s:s,s:{},s:s,s:s,s:s,s:i}", "kind", "Status", "apiVersion", "v1",
                     "metadata", "status", "Failure", "message", msg, "reason", reason, "code",
                     code);
}

static const char *arg(struct MHD_Connection *conn, const char *key)
{
    return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, key);
}

static enum MHD_Result echo(struct MHD_Connection *conn, const char *url, const char *method,
                            struct upload *up)
{
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    const char *fs = arg(conn, "fieldSelector");
    const char *imp = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Impersonate-User");
    json_t *o = json_pack("{s:s,s:s,s:s?,s:s?,s:s?,s:s?,s:s#}", "method", method, "path", url,
                          "auth", auth, "contentType", ct, "fieldSelector", fs, "impersonate", imp,
                          "body", up->data ? up->data : "", up->len);
    return reply_json(conn, strcmp(method, "POST") == 0 ? 201 : 200, o);
}

/* /status/CODE/REASON -> a Status error reply. */
static enum MHD_Result status_route(struct MHD_Connection *conn, const char *url)
{
    int code = atoi(url + 8);
    const char *reason = strchr(url + 8, '/');
    reason = reason ? reason + 1 : "";
    char msg[128];
    snprintf(msg, sizeof(msg), "thing \"x\" failed with %s", reason);
    return reply_json(conn, (unsigned)code, status_json(code, reason, msg));
}

static enum MHD_Result text_route(struct MHD_Connection *conn, unsigned code, const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "text/plain");
    enum MHD_Result ret = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return ret;
}

/* A scripted stream: pieces written one per reader call with a pause between them. */
struct script {
    const char *const *pieces;
    size_t i;
    bool endless; /* after the pieces, stay open until quit */
};

static const char *const split_script[] = {
    "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"1\"}}}",
    "\n{\"type\":\"MODI",
    "FIED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"2\"},",
    "\"data\":\"br{ace\\\"s }] and \\\\\"}}{\"type\":\"DELETED\",\"obj",
    "ect\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"3\"}}}\r\n  ",
    "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"9\"}}}",
    NULL,
};

static const char *const error_script[] = {
    "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"1\"}}}\n",
    "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":"
    "\"Failure\",\"message\":\"too old resource version: 1 (5)\",\"reason\":\"Expired\","
    "\"code\":410}}\n",
    NULL,
};

static const char *const truncated_script[] = {
    "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"1\"}}}\n",
    "{\"type\":\"MODIFIED\",\"object\":{\"meta",
    NULL,
};

static const char *const junk_script[] = {"<html>oops</html>", NULL};

static ssize_t script_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct script *s = cls;
    const char *p = s->pieces[s->i];
    if (!p) {
        while (s->endless && !atomic_load(&F.quit))
            sleep_ms(10);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    sleep_ms(5);
    size_t n = strlen(p);
    CHECK(n <= max);
    memcpy(buf, p, n);
    s->i++;
    return (ssize_t)n;
}

static enum MHD_Result script_route(struct MHD_Connection *conn, const char *const *pieces,
                                    bool endless)
{
    struct script *s = calloc(1, sizeof(*s));
    s->pieces = pieces;
    s->endless = endless;
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, script_read, s, free);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return ret;
}

/* ---- the pod collection ---- */

static json_t *fake_list(struct MHD_Connection *conn)
{
    const char *limit_s = arg(conn, "limit"), *cont = arg(conn, "continue");
    size_t limit = limit_s ? (size_t)atoi(limit_s) : 0;
    json_t *items = json_array();
    char rv[32];
    pthread_mutex_lock(&F.lock);
    F.lists++;
    const char *name;
    json_t *pod;
    bool more = false;
    const char *last = NULL;
    /* jansson iterates in insertion order; the tests insert names in sorted order */
    json_object_foreach(F.pods, name, pod)
    {
        if (cont && strcmp(name, cont) <= 0)
            continue;
        if (limit && json_array_size(items) == limit) {
            more = true;
            break;
        }
        json_t *copy = json_deep_copy(pod);
        json_object_del(copy, "kind");
        json_object_del(copy, "apiVersion");
        json_array_append_new(items, copy);
        last = name;
    }
    snprintf(rv, sizeof(rv), "%lld", F.rv);
    json_t *list = json_pack("{s:s,s:s,s:{s:s},s:o}", "kind", "PodList", "apiVersion", "v1",
                             "metadata", "resourceVersion", rv, "items", items);
    if (more)
        json_object_set_new(json_object_get(list, "metadata"), "continue", json_string(last));
    pthread_mutex_unlock(&F.lock);
    return list;
}

struct fake_watch {
    long long after;
    int generation;
    char *pending;
    size_t off;
};

static void fake_watch_free(void *cls)
{
    struct fake_watch *w = cls;
    free(w->pending);
    free(w);
}

/* Next event after w->after as text, or NULL (waits a little for one). Lock held. */
static char *fake_next_event(struct fake_watch *w)
{
    size_t i;
    json_t *ev;
    json_array_foreach(F.events, i, ev)
    {
        long long rv = json_integer_value(json_object_get(ev, "rv"));
        if (rv <= w->after)
            continue;
        w->after = rv;
        json_t *out = json_pack("{s:O,s:O}", "type", json_object_get(ev, "type"), "object",
                                json_object_get(ev, "object"));
        char *text = json_dumps(out, JSON_COMPACT);
        json_decref(out);
        size_t n = strlen(text);
        text = realloc(text, n + 2);
        text[n] = '\n';
        text[n + 1] = '\0';
        return text;
    }
    return NULL;
}

static ssize_t fake_watch_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct fake_watch *w = cls;
    for (;;) {
        if (w->pending) {
            size_t n = strlen(w->pending + w->off);
            if (n > max)
                n = max;
            memcpy(buf, w->pending + w->off, n);
            w->off += n;
            if (!w->pending[w->off]) {
                free(w->pending);
                w->pending = NULL;
                w->off = 0;
            }
            return (ssize_t)n;
        }
        pthread_mutex_lock(&F.lock);
        bool ended = atomic_load(&F.quit) || F.generation != w->generation;
        if (!ended && !(w->pending = fake_next_event(w))) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 20 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&F.cond, &F.lock, &ts);
        }
        pthread_mutex_unlock(&F.lock);
        if (ended)
            return MHD_CONTENT_READER_END_OF_STREAM;
    }
}

static enum MHD_Result fake_watch_route(struct MHD_Connection *conn)
{
    const char *rv_s = arg(conn, "resourceVersion");
    long long after = rv_s ? atoll(rv_s) : 0;
    pthread_mutex_lock(&F.lock);
    F.watches++;
    bool gone = after < F.compacted, as_event = F.gone_as_event;
    int gen = F.generation;
    pthread_mutex_unlock(&F.lock);
    if (gone && !as_event)
        return reply_json(conn, 410, status_json(410, "Expired", "too old resource version"));
    if (gone)
        return script_route(conn, error_script + 1, false);
    struct fake_watch *w = calloc(1, sizeof(*w));
    w->after = after;
    w->generation = gen;
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096,
                                                               fake_watch_read, w, fake_watch_free);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result route(struct MHD_Connection *conn, const char *url, const char *method,
                             struct upload *up)
{
    if (strncmp(url, "/echo", 5) == 0)
        return echo(conn, url, method, up);
    if (strncmp(url, "/status/", 8) == 0)
        return status_route(conn, url);
    if (strcmp(url, "/text404") == 0)
        return text_route(conn, 404, "page not found");
    if (strcmp(url, "/notjson") == 0)
        return text_route(conn, 200, "hello");
    if (strcmp(url, "/slow") == 0) {
        sleep_ms(1500);
        return text_route(conn, 200, "late");
    }
    if (strcmp(url, "/watch/split") == 0)
        return script_route(conn, split_script, false);
    if (strcmp(url, "/watch/error") == 0)
        return script_route(conn, error_script, false);
    if (strcmp(url, "/watch/truncated") == 0)
        return script_route(conn, truncated_script, false);
    if (strcmp(url, "/watch/junk") == 0)
        return script_route(conn, junk_script, false);
    if (strcmp(url, "/watch/endless") == 0)
        return script_route(conn, split_script + 5, true);
    if (strcmp(url, "/api/v1/namespaces/default/pods") == 0) {
        const char *watch = arg(conn, "watch");
        if (watch && strcmp(watch, "true") == 0)
            return fake_watch_route(conn);
        return reply_json(conn, 200, fake_list(conn));
    }
    return reply_json(conn, 404, status_json(404, "NotFound", "no route"));
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *data,
                               size_t *size, void **con_cls)
{
    struct upload *up = *con_cls;
    if (!up) {
        *con_cls = calloc(1, sizeof(struct upload));
        return MHD_YES;
    }
    if (*size) {
        up->data = realloc(up->data, up->len + *size + 1);
        memcpy(up->data + up->len, data, *size);
        up->len += *size;
        up->data[up->len] = '\0';
        *size = 0;
        return MHD_YES;
    }
    return route(conn, url, method, up);
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    struct upload *up = *con_cls;
    if (up)
        free(up->data);
    free(up);
    *con_cls = NULL;
}

static void notify_conn(void *cls, struct MHD_Connection *conn, void **socket_context,
                        enum MHD_ConnectionNotificationCode toe)
{
    if (toe == MHD_CONNECTION_NOTIFY_STARTED)
        atomic_fetch_add(&F.connections, 1);
}

static void fake_start(void)
{
    memset(&F, 0, sizeof(F));
    pthread_mutex_init(&F.lock, NULL);
    pthread_cond_init(&F.cond, NULL);
    F.pods = json_object();
    F.events = json_array();
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    F.d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0,
        NULL, NULL, handler, NULL, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_NOTIFY_COMPLETED,
        completed, NULL, MHD_OPTION_NOTIFY_CONNECTION, notify_conn, NULL, MHD_OPTION_END);
    CHECK(F.d != NULL);
    F.port = MHD_get_daemon_info(F.d, MHD_DAEMON_INFO_BIND_PORT)->port;
    CHECK(F.port > 0);
}

static void fake_stop(void)
{
    atomic_store(&F.quit, true);
    pthread_mutex_lock(&F.lock);
    pthread_cond_broadcast(&F.cond);
    pthread_mutex_unlock(&F.lock);
    MHD_stop_daemon(F.d);
    json_decref(F.pods);
    json_decref(F.events);
    pthread_cond_destroy(&F.cond);
    pthread_mutex_destroy(&F.lock);
}

/* Records a change to the pod collection as the next revision. Lock held. */
static void fake_change_locked(const char *type, const char *name)
{
    F.rv++;
    char rv[32];
    snprintf(rv, sizeof(rv), "%lld", F.rv);
    json_t *pod =
        json_pack("{s:s,s:s,s:{s:s,s:s,s:s}}", "kind", "Pod", "apiVersion", "v1", "metadata",
                  "name", name, "namespace", "default", "resourceVersion", rv);
    if (strcmp(type, "DELETED") == 0)
        json_object_del(F.pods, name);
    else
        json_object_set(F.pods, name, pod);
    json_array_append_new(
        F.events, json_pack("{s:I,s:s,s:o}", "rv", (json_int_t)F.rv, "type", type, "object", pod));
}

static void fake_change(const char *type, const char *name)
{
    pthread_mutex_lock(&F.lock);
    fake_change_locked(type, name);
    pthread_cond_broadcast(&F.cond);
    pthread_mutex_unlock(&F.lock);
}

/*
 * Changes that no watch sees: made, then compacted away, and every open watch ended in the
 * same critical section, so the informer's next watch gets 410 and must re-list.
 */
static void fake_hidden_changes(void)
{
    pthread_mutex_lock(&F.lock);
    fake_change_locked("DELETED", "p1");
    fake_change_locked("MODIFIED", "p3");
    F.compacted = F.rv;
    json_array_clear(F.events);
    F.generation++;
    pthread_cond_broadcast(&F.cond);
    pthread_mutex_unlock(&F.lock);
}

static struct corral_client *new_client(const char *token)
{
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", F.port);
    struct corral_client_config cfg = {.server = url, .token = token, .timeout_ms = 5000};
    struct corral_client *c = NULL;
    CHECK_INT_EQ(corral_client_new(&cfg, &c), 0);
    return c;
}

/* ------------------------------------------------------------------------------------------ */
/* Tests                                                                                       */

static void test_config_errors(void)
{
    struct corral_client *c = (struct corral_client *)1;
    struct corral_client_config cfg = {.server = "ftp://x"};
    CHECK_INT_EQ(corral_client_new(&cfg, &c), -EINVAL);
    CHECK(c == NULL);
    cfg.server = NULL;
    CHECK_INT_EQ(corral_client_new(&cfg, &c), -EINVAL);
    cfg.server = "https://127.0.0.1:1";
    cfg.cert_pem = "-----BEGIN CERTIFICATE-----";
    CHECK_INT_EQ(corral_client_new(&cfg, &c), -EINVAL); /* certificate without key */
    cfg.cert_pem = NULL;
    cfg.ca_file = "/nonexistent/ca.crt";
    CHECK_INT_EQ(corral_client_new(&cfg, &c), -ENOENT);
    cfg.ca_file = NULL;
    cfg.token = "abc\r\nX-Evil: 1";
    CHECK_INT_EQ(corral_client_new(&cfg, &c), -EINVAL);
    cfg.token = NULL;
    const char *bad_headers[] = {"X-Ok: 1", "no colon", NULL};
    cfg.extra_headers = bad_headers;
    CHECK_INT_EQ(corral_client_new(&cfg, &c), -EINVAL);
    cfg.extra_headers = NULL;
    cfg.token = "abc";
    cfg.server = "https://127.0.0.1:1///";
    CHECK_INT_EQ(corral_client_new(&cfg, &c), 0);
    CHECK_STR_EQ(corral_client_server(c), "https://127.0.0.1:1");
    corral_client_free(c);
}

static void test_paths(void)
{
    char *p = corral_client_path("v1", "pods", "default", "web-0", "binding");
    CHECK_STR_EQ(p, "/api/v1/namespaces/default/pods/web-0/binding");
    free(p);
    p = corral_client_path("apps/v1", "deployments", NULL, NULL, NULL);
    CHECK_STR_EQ(p, "/apis/apps/v1/deployments");
    free(p);
    p = corral_client_path("v1", NULL, "team a", NULL, NULL);
    CHECK_STR_EQ(p, "/api/v1/namespaces/team%20a");
    CHECK_INT_EQ(corral_client_query_add(&p, "fieldSelector", "spec.nodeName=gpu-1"), 0);
    CHECK_INT_EQ(corral_client_query_add(&p, "limit", "500"), 0);
    CHECK_STR_EQ(p, "/api/v1/namespaces/team%20a?fieldSelector=spec.nodeName%3Dgpu-1&limit=500");
    free(p);
    CHECK(corral_client_path("", "pods", NULL, NULL, NULL) == NULL);
}

static void test_extra_headers_and_clone(void)
{
    fake_start();
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", F.port);
    const char *headers[] = {"Impersonate-User: alice", NULL};
    struct corral_client_config cfg = {.server = url, .token = "t", .extra_headers = headers};
    struct corral_client *c, *c2;
    json_t *out;
    CHECK_INT_EQ(corral_client_new(&cfg, &c), 0);
    CHECK_INT_EQ(corral_client_clone(c, &c2), 0);
    corral_client_free(c);
    CHECK_INT_EQ(corral_client_get(c2, "/echo", &out), 0);
    CHECK_STR_EQ(json_string_value(json_object_get(out, "impersonate")), "alice");
    CHECK_STR_EQ(json_string_value(json_object_get(out, "auth")), "Bearer t");
    json_decref(out);
    corral_client_free(c2);
    fake_stop();
}

static void test_request_methods(void)
{
    fake_start();
    struct corral_client *c = new_client("s3cret-token");
    json_t *obj = json_pack("{s:s}", "kind", "Pod"), *out = NULL;
    CHECK_INT_EQ(corral_client_get(c, "/echo?fieldSelector=a%3Db", &out), 0);
    CHECK_STR_EQ(json_string_value(json_object_get(out, "method")), "GET");
    CHECK_STR_EQ(json_string_value(json_object_get(out, "auth")), "Bearer s3cret-token");
    CHECK_STR_EQ(json_string_value(json_object_get(out, "fieldSelector")), "a=b");
    json_decref(out);
    CHECK_INT_EQ(corral_client_create(c, "/echo", obj, &out), 0);
    CHECK_STR_EQ(json_string_value(json_object_get(out, "method")), "POST");
    CHECK_STR_EQ(json_string_value(json_object_get(out, "body")), "{\"kind\":\"Pod\"}");
    CHECK_STR_EQ(json_string_value(json_object_get(out, "contentType")), "application/json");
    json_decref(out);
    CHECK_INT_EQ(corral_client_update(c, "/echo", obj, &out), 0);
    CHECK_STR_EQ(json_string_value(json_object_get(out, "method")), "PUT");
    json_decref(out);
    CHECK_INT_EQ(corral_client_patch(c, "/echo", CORRAL_PATCH_STRATEGIC, obj, &out), 0);
    CHECK_STR_EQ(json_string_value(json_object_get(out, "method")), "PATCH");
    CHECK_STR_EQ(json_string_value(json_object_get(out, "contentType")),
                 "application/strategic-merge-patch+json");
    json_decref(out);
    CHECK_INT_EQ(corral_client_delete(c, "/echo", NULL, &out), 0);
    CHECK_STR_EQ(json_string_value(json_object_get(out, "method")), "DELETE");
    CHECK_STR_EQ(json_string_value(json_object_get(out, "body")), "");
    json_decref(out);
    CHECK_INT_EQ(corral_client_get(c, "/echo", NULL), 0); /* back to GET after DELETE */
    /* all of the above went over one kept-alive connection */
    CHECK_INT_EQ(atomic_load(&F.connections), 1);
    json_decref(obj);
    corral_client_free(c);
    fake_stop();
}

static void test_error_replies(void)
{
    fake_start();
    struct corral_client *c = new_client(NULL);
    json_t *out = (json_t *)1;
    CHECK_INT_EQ(corral_client_get(c, "/status/404/NotFound", &out), CORRAL_ENOTFOUND);
    CHECK(out == NULL);
    CHECK_STR_EQ(corral_client_error(c), "thing \"x\" failed with NotFound");
    CHECK_INT_EQ(corral_client_get(c, "/status/409/AlreadyExists", NULL), CORRAL_EEXISTS);
    CHECK_INT_EQ(corral_client_get(c, "/status/409/Conflict", NULL), CORRAL_ECONFLICT);
    CHECK_INT_EQ(corral_client_get(c, "/status/422/Invalid", NULL), CORRAL_EINVALID);
    CHECK_INT_EQ(corral_client_get(c, "/status/410/Expired", NULL), CORRAL_EGONE);
    CHECK_INT_EQ(corral_client_get(c, "/status/401/Unauthorized", NULL), CORRAL_EUNAUTHORIZED);
    CHECK_INT_EQ(corral_client_get(c, "/status/403/Forbidden", NULL), CORRAL_EFORBIDDEN);
    CHECK_INT_EQ(corral_client_get(c, "/status/500/InternalError", NULL), CORRAL_EINTERNAL);
    CHECK_INT_EQ(corral_client_get(c, "/status/503/ServiceUnavailable", NULL), CORRAL_EUNAVAILABLE);
    CHECK_INT_EQ(corral_client_get(c, "/text404", NULL), CORRAL_ENOTFOUND);
    CHECK_STR_CONTAINS(corral_client_error(c), "page not found");
    CHECK_INT_EQ(corral_client_get(c, "/notjson", NULL), -EPROTO);
    /* the raw interface hands back any status without judging it */
    struct corral_response r;
    CHECK_INT_EQ(corral_client_request(c, "GET", "/notjson", NULL, NULL, 0, &r), 0);
    CHECK_INT_EQ(r.status, 200);
    CHECK_STR_EQ(r.body, "hello");
    CHECK_STR_EQ(r.content_type, "text/plain");
    CHECK(r.json == NULL);
    corral_response_clear(&r);
    CHECK_INT_EQ(corral_client_request(c, "GET", "no-slash", NULL, NULL, 0, &r), -EINVAL);
    corral_client_free(c);
    fake_stop();
}

static void test_transport_errors(void)
{
    fake_start();
    int port = F.port;
    struct corral_client_config cfg = {.timeout_ms = 300};
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
    cfg.server = url;
    struct corral_client *c = NULL;
    CHECK_INT_EQ(corral_client_new(&cfg, &c), 0);
    CHECK_INT_EQ(corral_client_get(c, "/slow", NULL), CORRAL_ETIMEOUT);
    corral_client_free(c);
    fake_stop();
    /* nothing listens on the port any more */
    CHECK_INT_EQ(corral_client_new(&cfg, &c), 0);
    CHECK_INT_EQ(corral_client_get(c, "/echo", NULL), CORRAL_EUNAVAILABLE);
    CHECK_STR_CONTAINS(corral_client_error(c), url);
    corral_client_free(c);
}

struct collected {
    json_t *events; /* ["ADDED a 1", ...] */
    int stop_after; /* return 42 after this many events (0 = never) */
};

static const char *type_name(enum corral_watch_type t)
{
    static const char *names[] = {"?", "ADDED", "MODIFIED", "DELETED", "BOOKMARK"};
    return names[t];
}

static int collect(enum corral_watch_type t, json_t *obj, void *ctx)
{
    struct collected *col = ctx;
    const json_t *meta = json_object_get(obj, "metadata");
    const char *name = json_string_value(json_object_get(meta, "name"));
    const char *rv = json_string_value(json_object_get(meta, "resourceVersion"));
    char line[160];
    snprintf(line, sizeof(line), "%s %s %s", type_name(t), name ? name : "-", rv ? rv : "-");
    json_array_append_new(col->events, json_string(line));
    if (col->stop_after && (int)json_array_size(col->events) >= col->stop_after)
        return 42;
    return 0;
}

static void check_events(const json_t *events, const char *const *want)
{
    size_t n = 0;
    for (; want[n]; n++) {
        CHECK(n < json_array_size(events));
        CHECK_STR_EQ(json_string_value(json_array_get(events, n)), want[n]);
    }
    CHECK_INT_EQ(json_array_size(events), n);
}

static void test_watch_chunks(void)
{
    fake_start();
    struct corral_client *c = new_client(NULL);
    struct collected col = {.events = json_array()};
    CHECK_INT_EQ(corral_client_watch(c, "/watch/split", 0, collect, &col), 0);
    const char *want[] = {"ADDED a 1", "MODIFIED a 2", "DELETED a 3", "BOOKMARK - 9", NULL};
    check_events(col.events, want);
    json_array_clear(col.events);
    col.stop_after = 2;
    CHECK_INT_EQ(corral_client_watch(c, "/watch/split", 0, collect, &col), 42);
    CHECK_INT_EQ(json_array_size(col.events), 2);
    json_decref(col.events);
    corral_client_free(c);
    fake_stop();
}

static void test_watch_errors(void)
{
    fake_start();
    struct corral_client *c = new_client(NULL);
    struct collected col = {.events = json_array()};
    CHECK_INT_EQ(corral_client_watch(c, "/watch/error", 0, collect, &col), CORRAL_EGONE);
    CHECK_STR_CONTAINS(corral_client_error(c), "too old resource version");
    CHECK_INT_EQ(json_array_size(col.events), 1);
    CHECK_INT_EQ(corral_client_watch(c, "/watch/truncated", 0, collect, &col), CORRAL_EUNAVAILABLE);
    CHECK_INT_EQ(corral_client_watch(c, "/watch/junk", 0, collect, &col), -EPROTO);
    CHECK_INT_EQ(corral_client_watch(c, "/status/410/Expired", 0, collect, &col), CORRAL_EGONE);
    CHECK_INT_EQ(corral_client_watch(c, "/status/403/Forbidden", 0, collect, &col),
                 CORRAL_EFORBIDDEN);
    CHECK_STR_EQ(corral_client_error(c), "thing \"x\" failed with Forbidden");
    json_decref(col.events);
    corral_client_free(c);
    fake_stop();
}

struct watch_thread {
    struct corral_client *c;
    struct collected col;
    int rc;
};

static void *watch_main(void *arg)
{
    struct watch_thread *wt = arg;
    wt->rc = corral_client_watch(wt->c, "/watch/endless", 0, collect, &wt->col);
    return NULL;
}

static void test_watch_stop(void)
{
    fake_start();
    struct watch_thread wt = {.c = new_client(NULL), .col.events = json_array()};
    pthread_t th;
    CHECK_INT_EQ(pthread_create(&th, NULL, watch_main, &wt), 0);
    for (int i = 0; i < 500 && json_array_size(wt.col.events) == 0; i++)
        sleep_ms(10);
    CHECK_INT_EQ(json_array_size(wt.col.events), 1);
    corral_client_stop(wt.c);
    pthread_join(th, NULL);
    CHECK_INT_EQ(wt.rc, -ECANCELED);
    CHECK(corral_client_stopped(wt.c));
    CHECK_INT_EQ(corral_client_get(wt.c, "/echo", NULL), -ECANCELED);
    CHECK_INT_EQ(corral_client_sleep(wt.c, 10000), -ECANCELED);
    json_decref(wt.col.events);
    corral_client_free(wt.c);
    fake_stop();
}

/* ---- informer ---- */

struct informer_thread {
    struct corral_informer *inf;
    struct corral_client *c;
    struct collected col;
    pthread_mutex_t lock;
    int synced;
    int rc;
};

static int inf_event(enum corral_watch_type t, json_t *obj, void *ctx)
{
    struct informer_thread *it = ctx;
    CHECK_STR_EQ(json_string_value(json_object_get(obj, "kind")), "Pod");
    CHECK_STR_EQ(json_string_value(json_object_get(obj, "apiVersion")), "v1");
    pthread_mutex_lock(&it->lock);
    int rc = collect(t, obj, &it->col);
    pthread_mutex_unlock(&it->lock);
    return rc;
}

static int inf_synced(void *ctx)
{
    struct informer_thread *it = ctx;
    pthread_mutex_lock(&it->lock);
    it->synced++;
    pthread_mutex_unlock(&it->lock);
    return 0;
}

static void *informer_main(void *arg)
{
    struct informer_thread *it = arg;
    it->rc = corral_informer_run(it->inf);
    return NULL;
}

static size_t informer_events(struct informer_thread *it)
{
    pthread_mutex_lock(&it->lock);
    size_t n = json_array_size(it->col.events);
    pthread_mutex_unlock(&it->lock);
    return n;
}

static void wait_events(struct informer_thread *it, size_t n)
{
    for (int i = 0; i < 500 && informer_events(it) < n; i++)
        sleep_ms(10);
    CHECK_INT_EQ(informer_events(it), n);
}

static void informer_scenario(bool gone_as_event)
{
    fake_start();
    F.gone_as_event = gone_as_event;
    fake_change("ADDED", "p1");
    fake_change("ADDED", "p2");
    fake_change("ADDED", "p3");
    struct informer_thread it = {.c = new_client(NULL), .col.events = json_array()};
    pthread_mutex_init(&it.lock, NULL);
    struct corral_informer_config cfg = {
        .path = "/api/v1/namespaces/default/pods",
        .on_event = inf_event,
        .on_synced = inf_synced,
        .ctx = &it,
        .backoff_min_ms = 10,
        .page_size = 2, /* forces a continue page */
    };
    CHECK_INT_EQ(corral_informer_new(it.c, &cfg, &it.inf), 0);
    pthread_t th;
    CHECK_INT_EQ(pthread_create(&th, NULL, informer_main, &it), 0);
    wait_events(&it, 3);
    CHECK(corral_informer_synced(it.inf));
    fake_change("MODIFIED", "p2");
    fake_change("ADDED", "p4");
    wait_events(&it, 5);
    json_t *p4 = corral_informer_get(it.inf, "default", "p4");
    CHECK(p4 != NULL);
    json_decref(p4);
    fake_hidden_changes();
    wait_events(&it, 7);
    const char *want[] = {"ADDED p1 1", "ADDED p2 2",    "ADDED p3 3",   "MODIFIED p2 4",
                          "ADDED p4 5", "MODIFIED p3 7", "DELETED p1 1", NULL};
    pthread_mutex_lock(&it.lock);
    check_events(it.col.events, want);
    CHECK_INT_EQ(it.synced, 2);
    pthread_mutex_unlock(&it.lock);
    CHECK_INT_EQ(corral_informer_count(it.inf), 3);
    CHECK(corral_informer_get(it.inf, "default", "p1") == NULL);
    char rv[32];
    corral_informer_resource_version(it.inf, rv, sizeof(rv));
    CHECK_STR_EQ(rv, "7");
    corral_informer_stop(it.inf);
    pthread_join(th, NULL);
    CHECK_INT_EQ(it.rc, 0);
    CHECK(F.lists >= 4); /* two pages, twice */
    corral_informer_free(it.inf);
    corral_client_free(it.c);
    json_decref(it.col.events);
    pthread_mutex_destroy(&it.lock);
    fake_stop();
}

static void test_informer_relist_http410(void)
{
    informer_scenario(false);
}

static void test_informer_relist_error_event(void)
{
    informer_scenario(true);
}

static int stop_at_two(enum corral_watch_type t, json_t *obj, void *ctx)
{
    return ++*(int *)ctx == 2 ? -EIO : 0;
}

static void test_informer_callback_error_and_backoff(void)
{
    fake_start();
    fake_change("ADDED", "p1");
    fake_change("ADDED", "p2");
    struct corral_client *c = new_client(NULL);
    int seen = 0;
    struct corral_informer_config cfg = {
        .path = "/api/v1/namespaces/default/pods", .on_event = stop_at_two, .ctx = &seen};
    struct corral_informer *inf;
    CHECK_INT_EQ(corral_informer_new(c, &cfg, &inf), 0);
    CHECK_INT_EQ(corral_informer_run(inf), -EIO);
    corral_informer_free(inf);
    cfg.path = NULL;
    CHECK_INT_EQ(corral_informer_new(c, &cfg, &inf), -EINVAL);
    corral_client_free(c);
    fake_stop();
    /* a server that is gone: the informer retries until stopped */
    struct informer_thread it = {.c = new_client(NULL), .col.events = json_array()};
    pthread_mutex_init(&it.lock, NULL);
    struct corral_informer_config cfg2 = {.path = "/api/v1/namespaces/default/pods",
                                          .on_event = inf_event,
                                          .ctx = &it,
                                          .backoff_min_ms = 5,
                                          .backoff_max_ms = 20};
    CHECK_INT_EQ(corral_informer_new(it.c, &cfg2, &it.inf), 0);
    pthread_t th;
    CHECK_INT_EQ(pthread_create(&th, NULL, informer_main, &it), 0);
    sleep_ms(100);
    CHECK(!corral_informer_synced(it.inf));
    corral_informer_stop(it.inf);
    pthread_join(th, NULL);
    CHECK_INT_EQ(it.rc, 0);
    corral_informer_free(it.inf);
    corral_client_free(it.c);
    json_decref(it.col.events);
    pthread_mutex_destroy(&it.lock);
}

CORRAL_TESTS(CORRAL_TEST(config_errors), CORRAL_TEST(paths), CORRAL_TEST(request_methods),
             CORRAL_TEST(extra_headers_and_clone), CORRAL_TEST(error_replies),
             CORRAL_TEST(transport_errors), CORRAL_TEST(watch_chunks), CORRAL_TEST(watch_errors),
             CORRAL_TEST(watch_stop), CORRAL_TEST(informer_relist_http410),
             CORRAL_TEST(informer_relist_error_event),
             CORRAL_TEST(informer_callback_error_and_backoff))
