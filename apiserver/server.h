/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server: the apiserver's HTTP layer on libmicrohttpd.
 *
 * Threads: a few HTTP threads (libmicrohttpd's epoll thread pool, one per CPU) read requests
 * and write replies and never block. Requests answered from memory at once (GET of one object,
 * a watch from a given revision, health) run on them; everything that may block (a durable write
 * waits for its group commit, a proxied log waits for the node agent) runs on a worker thread
 * (workers.h) while its connection is suspended, and may block freely. A watch's stream is
 * polled on the HTTP threads; with nothing to send it is parked (suspended) until the store's
 * revision moves, so idle watchers cost no thread and an event costs no thread switch per
 * watcher. A request is read fully (bounded by the body limit), routed through the static table
 * in routes.c, and answered exactly once through the corral_reply_* functions below; errors are
 * turned into a Kubernetes Status in one place (corral_reply_error).
 */
#ifndef CORRAL_SERVER_H
#define CORRAL_SERVER_H

#include "resources.h"
#include "store.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct MHD_Connection;
struct corral_metrics;
struct corral_controllers;
struct corral_auth;
struct corral_server_rt;

struct corral_apiserver_config {
    const char *listen;        /* "127.0.0.1:6443" */
    const char *data_dir;
    const char *etcd;          /* etcd endpoints; NULL = embedded SQLite */
    const char *etcd_ca;       /* etcd TLS: CA, client certificate and key files */
    const char *etcd_cert;
    const char *etcd_key;
    bool insecure_http;
    const char *cluster_dir;   /* what `corral init --dir` wrote (certificates, tokens) */
    size_t max_body;           /* bytes */
    size_t max_list;           /* objects per list page when the client asks for more */
    unsigned request_timeout_s;
    unsigned max_watch_s;      /* longest a watch stays open (randomised 50-100%) */
    bool controllers;          /* run the built-in controllers */
    unsigned node_grace_s;     /* lease age after which a node is NotReady */
    unsigned long history_events; /* watch history kept (0 = the store's default) */
    unsigned long history_s;
};

struct corral_apiserver {
    struct corral_apiserver_config cfg;
    struct corral_store *store;
    struct corral_metrics *metrics;
    struct corral_controllers *controllers;
    struct corral_auth *auth;
    struct MHD_Daemon *mhd;
    struct corral_server_rt *rt; /* workers and parked streams (server.c) */
    char url[128];
    atomic_bool stopping;
    atomic_int inflight_writes;
    time_t started;
};

/* Who is asking (filled by authentication; "system:anonymous" on the loopback dev listener). */
struct corral_user {
    char name[256];
    char groups[8][128];
    int n_groups;
};

/* The authenticated caller when it impersonates someone (kubectl --as): for the audit log. */
struct corral_impersonator {
    bool active;
    struct corral_user real;
};

enum corral_target_shape {
    CORRAL_TARGET_COLLECTION,
    CORRAL_TARGET_OBJECT,
    CORRAL_TARGET_SUBRESOURCE,
};

struct corral_request {
    struct corral_apiserver *srv;
    struct MHD_Connection *conn;
    const char *method;
    const char *url;
    char *body;
    size_t body_len, body_cap;
    bool too_large;
    bool answered;
    /* resource target, for /api and /apis paths */
    const struct corral_resource *res;
    enum corral_target_shape shape;
    char ns[256];
    char name[256];
    char sub[32];
    const char *verb; /* get, list, watch, create, update, patch, delete, deletecollection */
    struct corral_user user;
    struct corral_impersonator impersonator;
    int code;
    uint64_t start_ns;
    uint64_t received_ns; /* wall clock, for the audit log */
    json_t *warnings;     /* texts sent back as Warning headers (kubectl prints them) */
};

/* Builds the server (store opened, routes ready) without listening. Returns 0 or -errno. */
int corral_server_init(struct corral_apiserver *srv, const struct corral_apiserver_config *cfg);
/* Starts listening; fills srv->url. Returns 0 or -errno (with a log line saying why). */
int corral_server_start(struct corral_apiserver *srv);
/* Stops accepting, lets in-flight requests finish, closes the store. */
void corral_server_stop(struct corral_apiserver *srv);

/* Query parameter value (decoded), or NULL. */
const char *corral_request_query(const struct corral_request *req, const char *key);
/* Request header value, or NULL. */
const char *corral_request_header(const struct corral_request *req, const char *key);

/*
 * Adds a warning to the reply: a `Warning: 299 - "text"` header, which kubectl prints as
 * "Warning: text". Call before replying.
 */
void corral_request_warn(struct corral_request *req, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Parses the request body as JSON or YAML (by Content-Type) into one object. Returns 0 and
 * *out (new reference) or CORRAL_EBADREQUEST / CORRAL_EMEDIATYPE after replying.
 */
int corral_request_body_object(struct corral_request *req, json_t **out);

/* Reply helpers. Each queues exactly one response; they return 0 (or -ENOMEM). */
int corral_reply_json(struct corral_request *req, int code, json_t *body); /* steals body */
int corral_reply_blob(struct corral_request *req, int code, struct corral_blob *blob); /* steals */
int corral_reply_text(struct corral_request *req, int code, const char *content_type,
                      const char *text, size_t len);
/* A Status for err with message (printf-style); details kind/name taken from req->res/name. */
int corral_reply_error(struct corral_request *req, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Replies with a ready-made Status object (steals it); the HTTP code is status.code. */
int corral_reply_status(struct corral_request *req, json_t *status);

/*
 * A list reply: prefix_json + blobs joined by ',' + suffix_json, without copying the blobs.
 * Steals the blob references (the array itself is copied).
 */
int corral_reply_list(struct corral_request *req, const char *prefix_json,
                      struct corral_blob **blobs, size_t n, const char *suffix_json);

/*
 * A streamed reply: read(ctx, buf, max) is called on a worker thread (it may block) whenever the
 * client can take more; it returns bytes written, 0 to end the stream, or -1 on error. done(ctx)
 * is called once when the connection finishes. content_type is copied.
 */
int corral_reply_stream(struct corral_request *req, const char *content_type,
                        long (*read)(void *ctx, char *buf, size_t max), void (*done)(void *ctx),
                        void *ctx);

/*
 * A streamed reply from a source that never blocks, polled on an HTTP thread: poll(ctx, buf,
 * max) returns bytes written, 0 when it has nothing now, or -1 to end the stream. After a 0 the
 * stream is parked until the store's revision moves (or at most a second), then polled again;
 * once the server is stopping it ends. done(ctx) is called once when the connection finishes.
 */
int corral_reply_poll_stream(struct corral_request *req, const char *content_type,
                             long (*poll)(void *ctx, char *buf, size_t max),
                             void (*done)(void *ctx), void *ctx);

/* True when the Accept header asks for a meta.k8s.io Table. */
bool corral_request_wants_table(const struct corral_request *req);

#endif
