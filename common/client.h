/* SPDX-License-Identifier: Apache-2.0 */
/*
 * client: the HTTP client every corral daemon uses to talk to the apiserver (libcurl).
 *
 * A struct corral_client holds the server URL, the TLS and credential settings and ONE libcurl
 * easy handle (plus the multi handle that drives it), so consecutive calls reuse the same
 * keep-alive connection. A client is NOT thread-safe: use it from one thread at a time. The
 * single exception is corral_client_stop(), which any thread may call to make the call in
 * progress (and every later call) return -ECANCELED promptly; that is how a daemon shuts a
 * watch down. Threads that need their own connection take a corral_client_clone().
 *
 * Errors: every call returns 0 or a negative code from common/error.h. Transport failures are
 * CORRAL_EUNAVAILABLE (cannot connect, connection lost), CORRAL_ETIMEOUT, -EPROTO (TLS or HTTP
 * protocol failure, e.g. an untrusted server certificate) or -ECANCELED (stopped). The object
 * helpers also map a non-2xx reply to a code with corral_error_from_http() (404 ->
 * CORRAL_ENOTFOUND, 409 AlreadyExists -> CORRAL_EEXISTS, 409 Conflict -> CORRAL_ECONFLICT,
 * 410 -> CORRAL_EGONE, ...). corral_client_error() then says what happened in words (the
 * server's Status message, or libcurl's description); it never contains credentials.
 *
 * Watches: corral_client_watch() streams `GET ...?watch=true` and calls back once per event as
 * the bytes arrive, whatever the chunk boundaries (events may be split across reads or packed
 * several to a read; newlines between them are optional). A 410 Gone reply or an ERROR event
 * with code 410 is returned as CORRAL_EGONE: the caller must re-list.
 *
 * Informers: corral_informer_run() is list+watch done once for everybody: it lists (following
 * `continue` pages), delivers ADDED/MODIFIED/DELETED callbacks, watches from the list's
 * resourceVersion, re-lists on 410 (delivering the difference as events, so DELETED is never
 * lost), re-watches when the server ends a watch, and reconnects with exponential back-off on
 * errors. It keeps the current objects in a cache that corral_informer_get() reads.
 *
 * Credentials: a bearer token is sent as `Authorization: Bearer ...` on every request, client
 * certificates are presented during the TLS handshake. The server certificate is always
 * verified (against ca_file/ca_pem, else the system store) unless insecure_skip_verify is set.
 */
#ifndef CORRAL_CLIENT_H
#define CORRAL_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Settings for corral_client_new(). Strings are copied; NULL means "not set". */
struct corral_client_config {
    const char *server;    /* base URL, "https://127.0.0.1:6443" (required; http or https) */
    const char *ca_file;   /* PEM file with the CA(s) to trust for the server */
    const char *ca_pem;    /* or the CA PEM text itself (wins over ca_file) */
    const char *cert_file; /* client certificate (PEM) ... */
    const char *key_file;  /* ... and its private key (PEM) */
    const char *cert_pem;  /* or both in memory (win over the files) */
    const char *key_pem;
    const char *token;         /* bearer token */
    bool insecure_skip_verify; /* do not verify the server certificate: only when asked */
    int connect_timeout_ms;    /* 0 = 10 s */
    int timeout_ms;            /* whole request, watches excepted; 0 = 60 s */
    const char *user_agent;    /* NULL = "corral/VERSION" */
    /* Extra request headers, "Name: value", NULL-terminated (e.g. "Impersonate-User: alice").
     * Copied. */
    const char *const *extra_headers;
};

struct corral_client;

/*
 * Creates a client. Returns 0 and *out (free with corral_client_free()), -EINVAL with a logged
 * reason when cfg is unusable (no server, not an http(s) URL, certificate without key, ...),
 * or -ENOMEM. No connection is made until the first request.
 */
int corral_client_new(const struct corral_client_config *cfg, struct corral_client **out);

/* A new client with the same settings and its own connection. Returns 0, -ENOMEM. */
int corral_client_clone(const struct corral_client *c, struct corral_client **out);

void corral_client_free(struct corral_client *c);

/*
 * Thread-safe. Makes the request or watch running on c return -ECANCELED as soon as possible
 * (normally within milliseconds), and every later call on c too. Irreversible: stop is for
 * shutting down.
 */
void corral_client_stop(struct corral_client *c);
bool corral_client_stopped(const struct corral_client *c);

/* Words describing the last failure on c ("" if none). Borrowed, valid until the next call. */
const char *corral_client_error(const struct corral_client *c);

/* The server base URL without a trailing slash. Borrowed. */
const char *corral_client_server(const struct corral_client *c);

/*
 * Sleeps ms milliseconds unless c is stopped meanwhile. Returns 0, or -ECANCELED (stopped).
 * Used for back-off between retries.
 */
int corral_client_sleep(struct corral_client *c, int ms);

/* ------------------------------------------------------------------------------------------ */
/* Raw requests                                                                                */

struct corral_response {
    long status;        /* HTTP status */
    char *content_type; /* the reply's Content-Type, NULL if none */
    char *body;         /* the body, NUL-terminated (never NULL after success) */
    size_t len;         /* body length without the NUL */
    json_t *json;       /* the body parsed as JSON when it is JSON, else NULL */
};

/* Frees what r holds and zeroes it. */
void corral_response_clear(struct corral_response *r);

/*
 * Sends method (GET, POST, PUT, PATCH, DELETE) to path ("/api/v1/pods?limit=500"; must start
 * with '/') with an optional body (body NULL = none; content_type NULL = application/json).
 * Returns 0 once any HTTP reply has arrived, whatever its status (the caller owns *out and
 * clears it), or a transport error (out is then zeroed).
 */
int corral_client_request(struct corral_client *c, const char *method, const char *path,
                          const char *content_type, const char *body, size_t len,
                          struct corral_response *out);

/* As corral_client_request() with a JSON body (borrowed; NULL = none). */
int corral_client_request_json(struct corral_client *c, const char *method, const char *path,
                               const json_t *body, const char *content_type,
                               struct corral_response *out);

/*
 * 0 for a 2xx reply, else the project code for its status and Status reason; also records the
 * Status message as corral_client_error(c) when c is not NULL.
 */
int corral_client_reply_error(struct corral_client *c, const struct corral_response *r);

/* ------------------------------------------------------------------------------------------ */
/* Objects. Each returns 0 and, when out is not NULL, the reply object in *out (new reference;  */
/* caller decrefs), or a transport error, or the code for a non-2xx reply (see the head).      */

int corral_client_get(struct corral_client *c, const char *path, json_t **out);
/* POST obj to the collection path. */
int corral_client_create(struct corral_client *c, const char *path, const json_t *obj,
                         json_t **out);
/* PUT obj to the object path (metadata.resourceVersion in obj makes it conditional). */
int corral_client_update(struct corral_client *c, const char *path, const json_t *obj,
                         json_t **out);

enum corral_patch_type {
    CORRAL_PATCH_MERGE,     /* application/merge-patch+json (RFC 7386) */
    CORRAL_PATCH_STRATEGIC, /* application/strategic-merge-patch+json */
    CORRAL_PATCH_JSON,      /* application/json-patch+json (RFC 6902) */
};
int corral_client_patch(struct corral_client *c, const char *path, enum corral_patch_type type,
                        const json_t *patch, json_t **out);

/* DELETE with optional DeleteOptions (borrowed; NULL = none). */
int corral_client_delete(struct corral_client *c, const char *path, const json_t *options,
                         json_t **out);

/* ------------------------------------------------------------------------------------------ */
/* Paths                                                                                       */

/*
 * Builds a REST path: api_version "v1" -> /api/v1, "apps/v1" -> /apis/apps/v1; then
 * /namespaces/NS when ns is not NULL, /RESOURCE, /NAME and /SUBRESOURCE when not NULL. Name
 * and namespace are percent-encoded. resource NULL gives the namespace itself
 * (.../namespaces/NS). Returns a malloc'd string (caller frees) or NULL on ENOMEM or when
 * api_version is empty.
 *   corral_client_path("v1", "pods", "default", "web-0", "binding")
 *     = "/api/v1/namespaces/default/pods/web-0/binding"
 */
char *corral_client_path(const char *api_version, const char *resource, const char *ns,
                         const char *name, const char *subresource);

/*
 * Appends "?key=value" (or "&key=value" when *path already has a query) to the malloc'd
 * *path, percent-encoding value, reallocating *path. Returns 0 or -ENOMEM (*path untouched).
 *   corral_client_query_add(&p, "fieldSelector", "spec.nodeName=gpu-1")
 */
int corral_client_query_add(char **path, const char *key, const char *value);

/* ------------------------------------------------------------------------------------------ */
/* Watches                                                                                     */

enum corral_watch_type {
    CORRAL_WATCH_ADDED = 1,
    CORRAL_WATCH_MODIFIED,
    CORRAL_WATCH_DELETED,
    CORRAL_WATCH_BOOKMARK, /* object carries only metadata.resourceVersion */
};

/*
 * Called once per event; object is borrowed (json_incref() to keep it). Return 0 to go on, or
 * anything else to end the watch: corral_client_watch() then returns that value.
 */
typedef int (*corral_watch_fn)(enum corral_watch_type type, json_t *object, void *ctx);

/*
 * Watches path (a collection path with any query, e.g.
 * "/api/v1/pods?fieldSelector=spec.nodeName%3Dgpu-1&resourceVersion=1042"); `watch=true` is
 * added, and `timeoutSeconds=timeout_s` when timeout_s > 0 (the client then also gives up
 * 30 s after that, in case the server never ends the stream). Blocks, calling fn per event.
 * Returns 0 when the server ended the stream normally (re-watch from the last resourceVersion
 * seen), CORRAL_EGONE when that resourceVersion is too old (re-list), fn's non-zero value,
 * -ECANCELED when stopped, another code for an error reply or ERROR event, or a transport
 * error.
 */
int corral_client_watch(struct corral_client *c, const char *path, int timeout_s,
                        corral_watch_fn fn, void *ctx);

/* ------------------------------------------------------------------------------------------ */
/* Informers: list + watch, forever                                                            */

struct corral_informer_config {
    /* Collection path with an optional query: "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1".
     * Must not contain watch, resourceVersion, limit or continue. */
    const char *path;
    /* ADDED / MODIFIED / DELETED, on the thread in corral_informer_run(). object is borrowed
     * and shared with the cache: do not modify it (json_deep_copy() to change a copy); for
     * DELETED it is the last state known. kind and apiVersion are filled in when the server
     * left them out of list items. A non-zero return ends corral_informer_run() with it. */
    corral_watch_fn on_event;
    /* Optional: called after each complete (re)list has been delivered as events. */
    int (*on_synced)(void *ctx);
    void *ctx;
    int backoff_min_ms;  /* first retry delay after an error; 0 = 200 ms */
    int backoff_max_ms;  /* cap of the doubling delay; 0 = 30 s */
    int watch_timeout_s; /* timeoutSeconds per watch; 0 = 300 */
    int page_size;       /* list limit per page; 0 = 500 */
};

struct corral_informer;

/*
 * Creates an informer that will use client c (borrowed; it must outlive the informer and be
 * used by no other thread while corral_informer_run() runs). Returns 0 and *out, -EINVAL if
 * cfg->path or cfg->on_event is missing, -ENOMEM.
 */
int corral_informer_new(struct corral_client *c, const struct corral_informer_config *cfg,
                        struct corral_informer **out);

/*
 * Runs list+watch until corral_informer_stop() (then returns 0) or until a callback returns
 * non-zero (then returns that value). Failures on the server side or the network are retried
 * with back-off and logged as warnings; they never end the loop.
 */
int corral_informer_run(struct corral_informer *inf);

/* Thread-safe: stops corral_informer_run() (by stopping the client). */
void corral_informer_stop(struct corral_informer *inf);

/*
 * Thread-safe. The cached object ns/name (ns NULL or "" for cluster-scoped), as a new
 * reference (caller decrefs), or NULL when absent.
 */
json_t *corral_informer_get(struct corral_informer *inf, const char *ns, const char *name);

/* Thread-safe. Number of cached objects. */
size_t corral_informer_count(struct corral_informer *inf);

/* Thread-safe. true once the first list has been delivered. */
bool corral_informer_synced(struct corral_informer *inf);

/* Thread-safe. The newest resourceVersion seen (list, event or bookmark), "" before the first
 * list. Copies it into buf (NUL-terminated, truncated to len). */
void corral_informer_resource_version(struct corral_informer *inf, char *buf, size_t len);

void corral_informer_free(struct corral_informer *inf);

#endif
