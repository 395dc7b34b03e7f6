/* SPDX-License-Identifier: Apache-2.0 */
/*
 * watch: the watch stream (see watch.h), a polled stream (corral_reply_poll_stream): an HTTP
 * thread calls stream_poll(), which takes what the store has after the cursor without waiting;
 * when there is nothing the server parks the stream until the revision moves, and polls it at
 * least once a second so that shutdown, deadlines and heartbeats are noticed. Output is staged
 * in a small buffer and handed to libmicrohttpd as the socket takes it.
 */
#include "watch.h"
#include "error.h"
#include "log.h"
#include "meta.h"
#include "metrics.h"
#include "selector.h"
#include "status.h"
#include "table.h"

#include <inttypes.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define EVENT_BATCH 64
#define IDLE_HEARTBEAT_NS (30ull * 1000000000ull)

bool corral_objects_match(const struct corral_resource *res, struct corral_selector *labels,
                          struct corral_selector *fields, const json_t *obj);
int corral_objects_parse_selectors(struct corral_request *req, struct corral_selector **labels,
                                   struct corral_selector **fields);

struct watch {
    struct corral_apiserver *srv;
    const struct corral_resource *res;
    char prefix[1024];
    struct corral_selector *labels, *fields;
    bool filtered;
    int64_t cursor;
    bool bookmarks;
    bool initial_end_bookmark;
    bool table;
    bool columns_sent;
    uint64_t deadline_ns;
    uint64_t last_send_ns;
    char *buf;
    size_t len, off, cap;
    struct corral_store_snapshot *initial; /* unpacked one event at a time */
    size_t initial_idx;
    bool initial_pending;
    bool done;
};

static int out_append(struct watch *w, const char *data, size_t n)
{
    if (w->len + n > w->cap) {
        size_t cap = (w->len + n) * 2 + 4096;
        char *nb = realloc(w->buf, cap);
        if (!nb)
            return -ENOMEM;
        w->buf = nb;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, data, n);
    w->len += n;
    return 0;
}

static const char *type_name(enum corral_event_type t)
{
    return t == CORRAL_EVENT_ADDED ? "ADDED" : t == CORRAL_EVENT_MODIFIED ? "MODIFIED" : "DELETED";
}

static void emit_table_event(struct watch *w, const char *type, const json_t *obj, int64_t rev)
{
    char rv[32];
    snprintf(rv, sizeof(rv), "%" PRId64, rev);
    json_t *row = corral_table_row(w->res, obj, (long)time(NULL), 0);
    json_t *table = json_pack("{s:s, s:s, s:{s:s}, s:o, s:[o]}", "kind", "Table", "apiVersion",
                              "meta.k8s.io/v1", "metadata", "resourceVersion", rv,
                              "columnDefinitions",
                              w->columns_sent ? json_null() : corral_table_columns(w->res),
                              "rows", row);
    w->columns_sent = true;
    json_t *ev = json_pack("{s:s, s:o}", "type", type, "object", table);
    char *text = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    if (text) {
        out_append(w, text, strlen(text));
        out_append(w, "\n", 1);
    }
    free(text);
}

/* Emits one event; obj is parsed only when needed (tables), blob is used verbatim. */
static void emit(struct watch *w, const char *type, const struct corral_blob *blob,
                 const json_t *obj, int64_t rev)
{
    if (w->table) {
        json_t *parsed = obj ? NULL : corral_blob_json(blob);
        emit_table_event(w, type, obj ? obj : parsed, rev);
        json_decref(parsed);
        return;
    }
    char head[64];
    int n = snprintf(head, sizeof(head), "{\"type\":\"%s\",\"object\":", type);
    out_append(w, head, (size_t)n);
    out_append(w, blob->data, blob->len);
    out_append(w, "}\n", 2);
}

static void emit_bookmark(struct watch *w, bool initial_end)
{
    char api[128], text[512];
    int n = snprintf(text, sizeof(text),
                     "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"%s\",\"apiVersion\":\"%s\","
                     "\"metadata\":{\"resourceVersion\":\"%" PRId64 "\"%s}}}\n",
                     w->res->kind, corral_resource_api_version(w->res, api, sizeof(api)),
                     w->cursor,
                     initial_end ? ",\"annotations\":{\"k8s.io/initial-events-end\":\"true\"}"
                                 : "");
    out_append(w, text, (size_t)n);
}

static void emit_gone(struct watch *w)
{
    char msg[160];
    snprintf(msg, sizeof(msg), "too old resource version: %" PRId64, w->cursor);
    json_t *st = corral_status_from_error(CORRAL_EGONE, msg);
    json_t *ev = json_pack("{s:s, s:o}", "type", "ERROR", "object", st);
    char *text = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    if (text) {
        out_append(w, text, strlen(text));
        out_append(w, "\n", 1);
    }
    free(text);
}

static bool matches(struct watch *w, const struct corral_blob *b)
{
    if (!b)
        return false;
    json_t *obj = corral_blob_json(b);
    bool m = obj && corral_objects_match(w->res, w->labels, w->fields, obj);
    json_decref(obj);
    return m;
}

static void handle_event(struct watch *w, const struct corral_store_event *ev)
{
    if (!w->filtered) {
        emit(w, type_name(ev->type), ev->value, NULL, ev->rev);
        return;
    }
    bool now = ev->type != CORRAL_EVENT_DELETED && matches(w, ev->value);
    bool before = ev->type == CORRAL_EVENT_ADDED ? false
                  : ev->type == CORRAL_EVENT_DELETED ? matches(w, ev->value) || matches(w, ev->prev)
                                                     : matches(w, ev->prev);
    if (now && before)
        emit(w, "MODIFIED", ev->value, NULL, ev->rev);
    else if (now)
        emit(w, "ADDED", ev->value, NULL, ev->rev);
    else if (before)
        emit(w, "DELETED", ev->value, NULL, ev->rev);
}

static void emit_initial(struct watch *w)
{
    size_t end = w->initial_idx + EVENT_BATCH, n = corral_store_snapshot_count(w->initial);
    for (; w->initial_idx < n && w->initial_idx < end; w->initial_idx++) {
        const char *key;
        struct corral_blob *b = NULL;
        if (corral_store_snapshot_item(w->initial, w->initial_idx, &key, &b) < 0)
            continue;
        if (!w->filtered || matches(w, b))
            emit(w, "ADDED", b, NULL, corral_store_snapshot_rev(w->initial));
        corral_blob_unref(b);
    }
    if (w->initial_idx >= n) {
        w->initial_pending = false;
        if (w->initial_end_bookmark)
            emit_bookmark(w, true);
        corral_store_snapshot_free(w->initial);
        w->initial = NULL;
    }
}

/*
 * Fills the staging buffer with the next events, if there are any; never waits. Returns true
 * when more may be ready at once (a full batch was taken, or initial events remain).
 */
static bool refill(struct watch *w)
{
    if (w->initial_pending) {
        emit_initial(w);
        return w->initial_pending;
    }
    uint64_t now = corral_now_ns();
    if (atomic_load(&w->srv->stopping) || now >= w->deadline_ns) {
        w->done = true;
        return false;
    }
    struct corral_store_event evs[EVENT_BATCH];
    int64_t seen = w->cursor;
    int n = corral_store_events(w->srv->store, w->prefix, w->cursor, evs, EVENT_BATCH, 0, &seen);
    if (n == CORRAL_EGONE) {
        emit_gone(w);
        w->done = true;
        return false;
    }
    for (int i = 0; i < n; i++) {
        handle_event(w, &evs[i]);
        corral_store_event_clear(&evs[i]);
    }
    if (seen > w->cursor)
        w->cursor = seen;
    if (w->len == 0 && now - w->last_send_ns > IDLE_HEARTBEAT_NS) {
        if (w->bookmarks)
            emit_bookmark(w, false);
        else
            out_append(w, "\n", 1); /* whitespace between events: lets a dead peer surface */
    }
    return n == EVENT_BATCH;
}

/* Returns bytes staged into buf, 0 when there is nothing yet, -1 at the end of the stream. */
static long stream_poll(void *ctx, char *buf, size_t max)
{
    struct watch *w = ctx;
    if (w->off >= w->len) {
        w->off = w->len = 0;
        bool more = true;
        while (w->len == 0 && more && !w->done)
            more = refill(w);
        if (w->len == 0)
            return w->done ? -1 : 0;
    }
    size_t n = w->len - w->off;
    if (n > max)
        n = max;
    memcpy(buf, w->buf + w->off, n);
    w->off += n;
    w->last_send_ns = corral_now_ns();
    return (long)n;
}

static void watch_free(void *ctx)
{
    struct watch *w = ctx;
    corral_metrics_watchers(w->srv->metrics, -1);
    corral_selector_free(w->labels);
    corral_selector_free(w->fields);
    corral_store_snapshot_free(w->initial);
    free(w->buf);
    free(w);
}

static uint64_t watch_duration_ns(struct corral_request *req)
{
    const char *t = corral_request_query(req, "timeoutSeconds");
    if (t && strtol(t, NULL, 10) > 0)
        return (uint64_t)strtol(t, NULL, 10) * 1000000000ull;
    unsigned max = req->srv->cfg.max_watch_s ? req->srv->cfg.max_watch_s : 3600;
    unsigned r = 0;
    if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
        r = 0;
    return ((uint64_t)max / 2 + r % (max / 2 + 1)) * 1000000000ull;
}

static bool flag(struct corral_request *req, const char *key)
{
    const char *v = corral_request_query(req, key);
    return v && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

/* Resolves where the stream starts. Returns 0 or replies 400/410. */
static int start_position(struct corral_request *req, struct watch *w)
{
    const char *rv = corral_request_query(req, "resourceVersion");
    bool initial = !rv || !*rv || strcmp(rv, "0") == 0 || flag(req, "sendInitialEvents");
    if (initial) {
        struct corral_store_list_opts opts = {.prefix = w->prefix};
        int rc = corral_store_snapshot(w->srv->store, &opts, &w->initial);
        if (rc < 0) {
            corral_reply_error(req, rc, "cannot list for the watch: %s", corral_strerror(rc));
            return rc;
        }
        w->cursor = corral_store_snapshot_rev(w->initial);
        w->initial_pending = true;
        w->initial_end_bookmark = flag(req, "sendInitialEvents");
        return 0;
    }
    char *end;
    long long v = strtoll(rv, &end, 10);
    if (*end || v < 0) {
        corral_reply_error(req, CORRAL_EBADREQUEST, "invalid resourceVersion \"%s\"", rv);
        return CORRAL_EBADREQUEST;
    }
    w->cursor = v;
    return 0;
}

void corral_watch_serve(struct corral_request *req)
{
    struct watch *w = calloc(1, sizeof(*w));
    if (!w) {
        corral_reply_error(req, -ENOMEM, NULL);
        return;
    }
    w->srv = req->srv;
    w->res = req->res;
    corral_resource_key(req->res, req->res->namespaced && *req->ns ? req->ns : NULL, NULL,
                        w->prefix, sizeof(w->prefix));
    if (corral_objects_parse_selectors(req, &w->labels, &w->fields) < 0) {
        free(w);
        return;
    }
    w->filtered = !corral_selector_is_empty(w->labels) || !corral_selector_is_empty(w->fields);
    w->bookmarks = flag(req, "allowWatchBookmarks");
    w->table = corral_request_wants_table(req);
    w->deadline_ns = corral_now_ns() + watch_duration_ns(req);
    w->last_send_ns = corral_now_ns();
    corral_metrics_watchers(w->srv->metrics, 1);
    if (start_position(req, w) < 0) {
        watch_free(w);
        return;
    }
    const char *ct = w->table ? "application/json;as=Table;v=v1;g=meta.k8s.io"
                              : "application/json";
    corral_reply_poll_stream(req, ct, stream_poll, watch_free, w);
}
