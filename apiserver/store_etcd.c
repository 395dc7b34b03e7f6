/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_etcd: the store on etcd v3 through its JSON gateway (/v3/kv/range, /v3/kv/txn,
 * /v3/kv/compaction, /v3/watch), with libcurl, so that several apiservers can share one etcd.
 *
 * etcd is the source of truth and does the concurrency control: create is a txn comparing the
 * key's create_revision with 0, update and delete compare its mod_revision with expect_rev (or
 * that it exists, when expect_rev is 0), so the checks hold across apiservers. etcd's revision
 * is the store revision: global, persistent, increasing. A write is acknowledged once etcd
 * committed it (etcd syncs its WAL before answering).
 *
 * Reads and watches come from the same in-memory cache as the SQLite backend (cache.c), fed by
 * one watch stream on the key prefix: the open lists the prefix (pages pinned to one revision),
 * the watch goes on from there. A write returns after the cache has applied its revision, so
 * an apiserver reads its own writes. The watch thread is the cache's single mutator; it also
 * runs the history retention and compactions. When etcd has compacted past the watch (the stream
 * is cancelled with compact_revision), the backend re-lists and replaces the cache; watchers
 * then get CORRAL_EGONE and re-list, as Kubernetes clients do on 410. The history starts at the
 * revision this apiserver loaded, so watchers cannot resume from before its start (again as
 * with kube-apiserver's watch cache).
 *
 * Stored values: "<off>:<json>", the object's compact JSON with metadata.resourceVersion empty
 * ("") at byte off of the JSON. The revision etcd assigns is unknown until etcd answers, so it
 * is spliced in whenever a value is read (list, watch event) at that offset: no JSON parsing.
 * Keys: prefix + store key ("/corral" + "/registry/pods/default/web-0").
 *
 * Transport: a pool of curl easy handles (kept-alive connections) for unary calls; endpoints are
 * tried in turn when one cannot be connected to (only then, since a request that was sent may
 * have been applied). Failures are CORRAL_EUNAVAILABLE. https:// endpoints verify etcd's
 * certificate (against ca_file, else the system's CAs) and present a client certificate when
 * one is configured.
 */
#include "cache.h"
#include "store.h"
#include "store_backend.h"

#include "error.h"
#include "log.h"
#include "meta.h"
#include "pki.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG "store-etcd"
#define PAGE_SIZE 1000
#define CALL_TIMEOUT_MS 30000
#define CONNECT_TIMEOUT_MS 5000
#define WRITE_VISIBLE_MS 10000 /* how long a write waits for the watch to bring it */
#define ETCD_COMPACT_EVERY_NS (300ull * 1000000000ull) /* compacts etcd like kube-apiserver */

struct buf {
    char *data;
    size_t len, cap;
};

struct etcd_store {
    struct corral_store base;
    struct corral_cache cache;
    char **endpoints;
    size_t nendpoints;
    unsigned endpoint; /* atomic: the one in use */
    char *prefix;      /* etcd key prefix, no trailing '/' */
    size_t prefix_len;
    char *range_key, *range_end;          /* base64 of prefix "/" and prefix "0": every store key */
    char *ca_file, *cert_file, *key_file; /* TLS, NULL = not set */

    pthread_mutex_t pool_mu;
    CURL **pool;
    size_t npool, pool_cap;

    pthread_t thread;
    bool thread_started;
    CURLM *multi;
    bool stop;         /* atomic */
    int64_t watch_rev; /* newest revision applied (watch thread) */
    uint64_t etcd_compact_ns;
    uint64_t maint_ns;
    int64_t etcd_compacted;

    pthread_mutex_t req_mu; /* compaction requests to the watch thread */
    pthread_cond_t req_cv;
    int64_t req_compact;
    uint64_t req_seq, done_seq;

    pthread_mutex_t wr_mu; /* writes in flight, for shutdown */
    pthread_cond_t wr_cv;
    unsigned writers;
    bool closing;

    uint64_t commits, commit_ns_total, commit_ns_max; /* atomic */
};

static struct etcd_store *es(struct corral_store *st)
{
    return (struct etcd_store *)st;
}

static bool stopping(struct etcd_store *s)
{
    return __atomic_load_n(&s->stop, __ATOMIC_ACQUIRE);
}

/* ---- buffers and JSON helpers ------------------------------------------------------------- */

static int buf_add(struct buf *b, const char *p, size_t n)
{
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

static size_t buf_write_cb(char *p, size_t size, size_t n, void *ctx)
{
    return buf_add(ctx, p, size * n) == 0 ? size * n : 0;
}

/* etcd's int64 fields come as JSON strings. */
static int64_t jint(const json_t *obj, const char *name)
{
    const json_t *v = json_object_get(obj, name);
    if (json_is_string(v))
        return strtoll(json_string_value(v), NULL, 10);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

static json_t *jint_new(int64_t v)
{
    char s[24];
    snprintf(s, sizeof(s), "%" PRId64, v);
    return json_string(s);
}

static json_t *b64(const void *data, size_t len)
{
    char *e = corral_pki_base64_encode(data, len);
    json_t *j = e ? json_string(e) : NULL;
    free(e);
    return j;
}

/* The base64 etcd key for a store key. NULL on ENOMEM. */
static json_t *etcd_key(struct etcd_store *s, const char *key)
{
    size_t klen = strlen(key);
    char *full = malloc(s->prefix_len + klen);
    if (!full)
        return NULL;
    memcpy(full, s->prefix, s->prefix_len);
    memcpy(full + s->prefix_len, key, klen);
    json_t *j = b64(full, s->prefix_len + klen);
    free(full);
    return j;
}

/* ---- stored values ------------------------------------------------------------------------ */

/* "<off>:<json>" with the placeholder of doc removed. Returns the base64 JSON string or NULL. */
static json_t *value_encode(const struct corral_store_doc *doc)
{
    char head[24];
    int hl = snprintf(head, sizeof(head), "%zu:", doc->ph_off);
    size_t len = (size_t)hl + doc->len - doc->ph_len;
    char *v = malloc(len);
    if (!v)
        return NULL;
    memcpy(v, head, (size_t)hl);
    memcpy(v + hl, doc->json, doc->ph_off);
    memcpy(v + hl + doc->ph_off, doc->json + doc->ph_off + doc->ph_len,
           doc->len - doc->ph_off - doc->ph_len);
    json_t *j = b64(v, len);
    free(v);
    return j;
}

/* Finds the JSON of a stored value ("OFF:JSON") and the offset of its resourceVersion's
 * digits. Returns false when the value is not ours. */
static bool value_split(const char *v, size_t len, const char **json, size_t *jlen, size_t *off)
{
    size_t i = 0;
    *off = 0;
    while (i < len && i < 12 && v[i] >= '0' && v[i] <= '9')
        *off = *off * 10 + (size_t)(v[i++] - '0');
    if (i == 0 || i >= len || v[i] != ':')
        return false;
    *json = v + i + 1;
    *jlen = len - i - 1;
    return *off != 0 && *off < *jlen && (*json)[*off - 1] == '"' && (*json)[*off] == '"';
}

/* The object in a stored value, stamped with rev. NULL when the value is not ours, or ENOMEM. */
static struct corral_blob *value_decode(const char *v, size_t len, int64_t rev)
{
    const char *json;
    size_t jlen, off;
    if (!value_split(v, len, &json, &jlen, &off))
        return NULL;
    return corral_store_blob_splice(json, jlen, off, 0, rev);
}

/* The object in a stored value, packed. NULL when the value is not ours, or ENOMEM. */
static struct corral_packed *value_pack(struct etcd_store *s, const char *v, size_t len)
{
    const char *json;
    size_t jlen, off;
    if (!value_split(v, len, &json, &jlen, &off))
        return NULL;
    return corral_packer_pack(s->cache.packer, json, jlen, off, 0);
}

struct etcd_kv {
    char *key; /* the store key (prefix stripped); owned */
    int64_t create_rev, mod_rev;
    char *value; /* decoded bytes; owned; NULL when absent */
    size_t vlen;
};

static void kv_clear(struct etcd_kv *kv)
{
    free(kv->key);
    free(kv->value);
    memset(kv, 0, sizeof(*kv));
}

/* Decodes an etcd KeyValue. Returns 0, -EINVAL (not base64, not under the prefix), -ENOMEM. */
static int kv_parse(struct etcd_store *s, const json_t *j, struct etcd_kv *kv)
{
    memset(kv, 0, sizeof(*kv));
    const char *k = json_string_value(json_object_get(j, "key"));
    const char *v = json_string_value(json_object_get(j, "value"));
    char *full;
    size_t flen;
    if (!k)
        return -EINVAL;
    int rc = corral_pki_base64_decode(k, &full, &flen);
    if (rc != 0)
        return rc;
    if (flen <= s->prefix_len || memcmp(full, s->prefix, s->prefix_len) != 0) {
        free(full);
        return -EINVAL;
    }
    memmove(full, full + s->prefix_len, flen - s->prefix_len + 1);
    kv->key = full;
    kv->create_rev = jint(j, "create_revision");
    kv->mod_rev = jint(j, "mod_revision");
    if (v && (rc = corral_pki_base64_decode(v, &kv->value, &kv->vlen)) != 0) {
        kv_clear(kv);
        return rc;
    }
    return 0;
}

/* ---- unary calls -------------------------------------------------------------------------- */

static CURL *handle_get(struct etcd_store *s)
{
    CURL *h = NULL;
    pthread_mutex_lock(&s->pool_mu);
    if (s->npool)
        h = s->pool[--s->npool];
    pthread_mutex_unlock(&s->pool_mu);
    return h ? h : curl_easy_init();
}

static void handle_put(struct etcd_store *s, CURL *h)
{
    pthread_mutex_lock(&s->pool_mu);
    if (s->npool == s->pool_cap) {
        size_t cap = s->pool_cap ? s->pool_cap * 2 : 16;
        CURL **p = realloc(s->pool, cap * sizeof(*p));
        if (p) {
            s->pool = p;
            s->pool_cap = cap;
        }
    }
    if (s->npool < s->pool_cap) {
        s->pool[s->npool++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&s->pool_mu);
    if (h)
        curl_easy_cleanup(h);
}

static void set_common(struct etcd_store *s, CURL *h, const char *url, struct curl_slist *headers)
{
    curl_easy_setopt(h, CURLOPT_URL, url);
    if (s->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, s->ca_file);
    if (s->cert_file) {
        curl_easy_setopt(h, CURLOPT_SSLCERT, s->cert_file);
        curl_easy_setopt(h, CURLOPT_SSLKEY, s->key_file);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 10L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 5L);
}

/* Turns an etcd error reply into a project code, logging etcd's message. */
static int etcd_error(const char *url, long status, const json_t *reply)
{
    const char *msg = json_string_value(json_object_get(reply, "message"));
    if (!msg)
        msg = json_string_value(json_object_get(reply, "error"));
    if (msg && strstr(msg, "required revision has been compacted"))
        return CORRAL_EGONE;
    corral_warn(LOG, "%s: HTTP %ld: %s", url, status, msg ? msg : "no reply");
    if (msg && (strstr(msg, "too large") || strstr(msg, "larger than max")))
        return CORRAL_ETOOLARGE; /* etcd's 1.5 MiB request limit, or the gateway's 2 MiB */
    return CORRAL_EUNAVAILABLE;
}

/* One POST to one endpoint. Returns 0 and *reply, -ECONNREFUSED (not sent), or an error. */
static int post_once(struct etcd_store *s, CURL *h, const char *ep, const char *path,
                     const char *body, json_t **reply)
{
    char url[512];
    struct buf out = {0};
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    snprintf(url, sizeof(url), "%s%s", ep, path);
    set_common(s, h, url, hdr);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)CALL_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, buf_write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &out);
    CURLcode cc = curl_easy_perform(h);
    curl_slist_free_all(hdr);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    int rc = 0;
    if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST) {
        rc = -ECONNREFUSED;
    } else if (cc != CURLE_OK) {
        corral_warn(LOG, "%s: %s", url, curl_easy_strerror(cc));
        rc = CORRAL_EUNAVAILABLE;
    } else {
        *reply = out.data ? json_loadb(out.data, out.len, 0, NULL) : NULL;
        if (status != 200 || !json_is_object(*reply)) {
            rc = etcd_error(url, status, *reply);
            json_decref(*reply);
            *reply = NULL;
        }
    }
    free(out.data);
    return rc;
}

/*
 * POSTs body (borrowed) to path, moving to the next endpoint only when one cannot be reached.
 * Returns 0 and *reply (caller decrefs), CORRAL_EGONE for a compacted revision, or
 * CORRAL_EUNAVAILABLE (logged).
 */
static int etcd_post(struct etcd_store *s, const char *path, const json_t *body, json_t **reply)
{
    *reply = NULL;
    char *text = json_dumps(body, JSON_COMPACT);
    CURL *h = text ? handle_get(s) : NULL;
    if (!h) {
        free(text);
        return -ENOMEM;
    }
    int rc = -ECONNREFUSED;
    for (size_t i = 0; i < s->nendpoints && rc == -ECONNREFUSED; i++) {
        unsigned ep = __atomic_load_n(&s->endpoint, __ATOMIC_RELAXED);
        rc = post_once(s, h, s->endpoints[ep % s->nendpoints], path, text, reply);
        if (rc == -ECONNREFUSED)
            __atomic_compare_exchange_n(&s->endpoint, &ep, (ep + 1) % s->nendpoints, false,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    }
    free(text);
    handle_put(s, h);
    if (rc == -ECONNREFUSED) {
        corral_warn(LOG, "no etcd endpoint reachable (%s ...)", s->endpoints[0]);
        rc = CORRAL_EUNAVAILABLE;
    }
    return rc;
}

/* ---- loading ------------------------------------------------------------------------------ */

/* Adds one listed key to the map being built. */
static int snapshot_add(struct etcd_store *s, const json_t *j, struct corral_cache_map *m)
{
    struct etcd_kv kv;
    int rc = kv_parse(s, j, &kv);
    if (rc != 0)
        return rc == -ENOMEM ? rc : 0; /* not ours */
    struct corral_packed *p = kv.value ? value_pack(s, kv.value, kv.vlen) : NULL;
    if (!p) {
        corral_warn(LOG, "%s%s: not a corral value; ignored", s->prefix, kv.key);
        kv_clear(&kv);
        return 0;
    }
    struct corral_cache_entry *e = corral_cache_entry_new(kv.key, p, kv.create_rev, kv.mod_rev);
    kv_clear(&kv);
    if (!e || corral_cache_map_insert(m, e) != 0) {
        corral_cache_entry_free(e);
        return -ENOMEM;
    }
    return 0;
}

/* Moves a range request on to the first key after the last one of kvs. Returns 0 or an error. */
static int page_next(json_t *req, const json_t *kvs)
{
    const json_t *last = json_array_get(kvs, json_array_size(kvs) - 1);
    const char *k = json_string_value(json_object_get(last, "key"));
    char *key;
    size_t len;
    int rc = k ? corral_pki_base64_decode(k, &key, &len) : -EINVAL;
    if (rc != 0)
        return rc;
    json_t *next = b64(key, len + 1); /* key + "\0" */
    free(key);
    return next && json_object_set_new(req, "key", next) == 0 ? 0 : -ENOMEM;
}

/* Lists every key under the prefix at one revision into m. Returns 0 and *rev, or an error. */
static int snapshot_load(struct etcd_store *s, struct corral_cache_map *m, int64_t *rev)
{
    json_t *req = json_pack("{s:s, s:s, s:o}", "key", s->range_key, "range_end", s->range_end,
                            "limit", jint_new(PAGE_SIZE));
    if (!req)
        return -ENOMEM;
    int rc = 0;
    bool more = true;
    *rev = 0;
    while (rc == 0 && more) {
        json_t *reply;
        if ((rc = etcd_post(s, "/v3/kv/range", req, &reply)) != 0)
            break;
        if (*rev == 0) {
            *rev = jint(json_object_get(reply, "header"), "revision");
            json_object_set_new(req, "revision", jint_new(*rev)); /* later pages: same view */
        }
        const json_t *kvs = json_object_get(reply, "kvs"), *j;
        size_t i;
        json_array_foreach(kvs, i, j) if (rc == 0) rc = snapshot_add(s, j, m);
        more = json_is_true(json_object_get(reply, "more")) && json_array_size(kvs);
        if (rc == 0 && more)
            rc = page_next(req, kvs);
        json_decref(reply);
    }
    json_decref(req);
    return rc;
}

/* ---- the watch ---------------------------------------------------------------------------- */

/*
 * Fills *ch for an etcd event on kv, given the cached state cur. Returns false when there is
 * nothing to apply: a delete of what the cache never had, or a value that is not ours.
 */
static bool event_change(struct etcd_store *s, const struct etcd_kv *kv, bool del,
                         const struct corral_cache_entry *cur, struct corral_cache_change *ch)
{
    *ch = (struct corral_cache_change){
        .rev = kv->mod_rev,
        .ts = (int64_t)time(NULL),
        .create_rev = cur && del ? cur->create_rev : kv->create_rev,
        .prev_rev = cur ? cur->mod_rev : 0,
        .prev = cur ? corral_packed_ref(cur->value) : NULL,
    };
    if (del) { /* the last state, at the deletion's revision; unpacked when a watcher asks */
        ch->type = CORRAL_EVENT_DELETED;
        ch->value = cur ? corral_packed_ref(cur->value) : NULL;
    } else {
        ch->type = cur ? CORRAL_EVENT_MODIFIED : CORRAL_EVENT_ADDED;
        ch->plain = kv->value ? value_decode(kv->value, kv->vlen, kv->mod_rev) : NULL;
        ch->value = ch->plain ? corral_packer_pack_blob(s->cache.packer, ch->plain) : NULL;
    }
    return ch->value != NULL;
}

/* Applies one etcd event to the cache (watch thread only). Returns 0 or -ENOMEM. */
static int apply_event(struct etcd_store *s, const json_t *ev)
{
    struct etcd_kv kv;
    int rc = kv_parse(s, json_object_get(ev, "kv"), &kv);
    if (rc != 0)
        return rc == -ENOMEM ? rc : 0;
    const char *type = json_string_value(json_object_get(ev, "type"));
    bool del = type && strcmp(type, "DELETE") == 0; /* PUT, the default, is left out */
    const struct corral_cache_entry *cur = corral_cache_peek(&s->cache, kv.key);
    struct corral_cache_change ch;
    if (!event_change(s, &kv, del, cur, &ch)) {
        if (!del || cur)
            corral_warn(LOG, "%s%s@%" PRId64 ": not a corral value; ignored", s->prefix, kv.key,
                        kv.mod_rev);
        corral_cache_change_clear(&ch);
        corral_cache_advance(&s->cache, kv.mod_rev);
        kv_clear(&kv);
        return 0;
    }
    rc = corral_cache_prepare(&s->cache, &ch, kv.key);
    if (rc == 0)
        rc = corral_cache_reserve(&s->cache, 1, ch.type == CORRAL_EVENT_ADDED);
    kv_clear(&kv);
    if (rc != 0) {
        corral_cache_change_clear(&ch);
        return rc;
    }
    corral_cache_apply(&s->cache, &ch, 1, ch.rev, NULL, NULL);
    return 0;
}

struct stream {
    struct etcd_store *s;
    struct buf line;
    int result; /* why the stream ended: 0 = still fine */
};

/* Handles one watch message. Returns 0 to go on or why the watch must end. */
static int watch_message(struct etcd_store *s, const char *text, size_t len)
{
    json_t *msg = json_loadb(text, len, 0, NULL);
    if (!msg)
        return CORRAL_EUNAVAILABLE;
    json_t *res = json_object_get(msg, "result");
    int rc = 0;
    if (!res) {
        corral_warn(LOG, "watch: %s", json_string_value(json_object_get(msg, "error")));
        rc = CORRAL_EUNAVAILABLE;
    } else if (json_is_true(json_object_get(res, "canceled"))) {
        int64_t compact = jint(res, "compact_revision");
        corral_warn(LOG, "watch cancelled%s", compact ? ": revision compacted" : "");
        rc = compact ? CORRAL_EGONE : CORRAL_EUNAVAILABLE;
    } else {
        const json_t *events = json_object_get(res, "events"), *ev;
        size_t i;
        json_array_foreach(events, i, ev) if (rc == 0) rc = apply_event(s, ev);
        if (rc == 0 && !events && !json_is_true(json_object_get(res, "created")))
            corral_cache_advance(&s->cache, jint(json_object_get(res, "header"), "revision"));
        s->watch_rev = corral_cache_revision(&s->cache);
    }
    json_decref(msg);
    return rc;
}

static size_t stream_write_cb(char *p, size_t size, size_t n, void *ctx)
{
    struct stream *st = ctx;
    if (buf_add(&st->line, p, size * n) != 0) {
        st->result = -ENOMEM;
        return 0;
    }
    char *nl;
    while ((nl = memchr(st->line.data, '\n', st->line.len))) {
        size_t len = (size_t)(nl - st->line.data);
        int rc = len ? watch_message(st->s, st->line.data, len) : 0;
        memmove(st->line.data, nl + 1, st->line.len - len - 1);
        st->line.len -= len + 1;
        if (rc != 0) {
            st->result = rc;
            return 0; /* ends the transfer */
        }
    }
    return size * n;
}

/* Compaction requests, retention (once a second) and etcd's own compaction (watch thread). */
static void maintenance(struct etcd_store *s)
{
    pthread_mutex_lock(&s->req_mu);
    uint64_t seq = s->req_seq;
    int64_t upto = s->req_compact;
    pthread_mutex_unlock(&s->req_mu);
    uint64_t now = corral_now_ns();
    if (seq == s->done_seq && now - s->maint_ns < 1000000000ull)
        return;
    s->maint_ns = now;
    corral_cache_trim(&s->cache);

    int64_t compacted = corral_cache_compact(&s->cache, upto, (int64_t)time(NULL), NULL, NULL);
    bool asked = seq != s->done_seq && upto > 0;
    if (compacted > s->etcd_compacted &&
        (asked || now - s->etcd_compact_ns > ETCD_COMPACT_EVERY_NS)) {
        json_t *req = json_pack("{s:o}", "revision", jint_new(compacted)), *reply = NULL;
        int rc = req ? etcd_post(s, "/v3/kv/compaction", req, &reply) : -ENOMEM;
        if (rc == 0 || rc == CORRAL_EGONE) /* GONE: another apiserver compacted further */
            s->etcd_compacted = compacted;
        s->etcd_compact_ns = now;
        json_decref(req);
        json_decref(reply);
    }
    if (seq != s->done_seq) {
        pthread_mutex_lock(&s->req_mu);
        s->done_seq = seq;
        pthread_cond_broadcast(&s->req_cv);
        pthread_mutex_unlock(&s->req_mu);
    }
}

/* Runs the multi handle until the transfer ends or the store stops. */
static void stream_run(struct etcd_store *s, CURL *h, struct stream *st)
{
    curl_multi_add_handle(s->multi, h);
    int running = 1;
    while (running && !stopping(s) && st->result == 0) {
        if (curl_multi_perform(s->multi, &running) != CURLM_OK)
            break;
        maintenance(s);
        if (running)
            curl_multi_poll(s->multi, NULL, 0, 1000, NULL);
    }
    int msgs;
    CURLMsg *m;
    while ((m = curl_multi_info_read(s->multi, &msgs)))
        if (m->msg == CURLMSG_DONE && m->data.result != CURLE_OK && st->result == 0 &&
            !stopping(s)) {
            corral_warn(LOG, "watch: %s", curl_easy_strerror(m->data.result));
            st->result = CORRAL_EUNAVAILABLE;
        }
    curl_multi_remove_handle(s->multi, h);
}

/* Streams events after s->watch_rev until the stream breaks. Returns why it ended. */
static int watch_once(struct etcd_store *s)
{
    json_t *req =
        json_pack("{s:{s:s, s:s, s:o, s:b}}", "create_request", "key", s->range_key, "range_end",
                  s->range_end, "start_revision", jint_new(s->watch_rev + 1), "progress_notify", 1);
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    CURL *h = body ? curl_easy_init() : NULL;
    if (!h) {
        free(body);
        return -ENOMEM;
    }
    char url[512];
    unsigned ep = __atomic_load_n(&s->endpoint, __ATOMIC_RELAXED) % s->nendpoints;
    snprintf(url, sizeof(url), "%s/v3/watch", s->endpoints[ep]);
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    struct stream st = {.s = s};
    set_common(s, h, url, hdr);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, stream_write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &st);
    stream_run(s, h, &st);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdr);
    free(body);
    free(st.line.data);
    if (st.result == 0 && !stopping(s)) {
        /* the server ended the stream: try the next endpoint */
        __atomic_compare_exchange_n(&s->endpoint, &ep, (ep + 1) % s->nendpoints, false,
                                    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
        st.result = CORRAL_EUNAVAILABLE;
    }
    return st.result;
}

/* etcd compacted past the watch: read everything again and replace the cache. */
static int resync(struct etcd_store *s)
{
    struct corral_cache_map m;
    int64_t rev;
    corral_cache_map_init(&m);
    int rc = snapshot_load(s, &m, &rev);
    if (rc == 0) {
        corral_cache_replace(&s->cache, &m, rev);
        s->watch_rev = rev;
        corral_info(LOG, "re-listed %zu objects at revision %" PRId64, s->cache.map.count, rev);
    }
    corral_cache_map_destroy(&m);
    return rc;
}

/* Sleeps ms unless the store stops, still serving compaction requests. */
static void backoff(struct etcd_store *s, int ms)
{
    uint64_t end = corral_now_ns() + (uint64_t)ms * 1000000ull;
    while (!stopping(s) && corral_now_ns() < end) {
        maintenance(s);
        curl_multi_poll(s->multi, NULL, 0, 100, NULL);
    }
}

static void *watch_thread(void *arg)
{
    struct etcd_store *s = arg;
    int delay = 0;
    while (!stopping(s)) {
        int rc = watch_once(s);
        if (stopping(s))
            break;
        if (rc == CORRAL_EGONE)
            rc = resync(s);
        delay = rc == 0 ? 0 : (delay ? (delay * 2 > 5000 ? 5000 : delay * 2) : 100);
        if (delay)
            backoff(s, delay);
    }
    /* answer any compaction request still waiting */
    pthread_mutex_lock(&s->req_mu);
    s->done_seq = s->req_seq;
    pthread_cond_broadcast(&s->req_cv);
    pthread_mutex_unlock(&s->req_mu);
    return NULL;
}

/* ---- writes ------------------------------------------------------------------------------- */

static void note_commit(struct etcd_store *s, uint64_t ns)
{
    __atomic_add_fetch(&s->commits, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&s->commit_ns_total, ns, __ATOMIC_RELAXED);
    if (ns > __atomic_load_n(&s->commit_ns_max, __ATOMIC_RELAXED))
        __atomic_store_n(&s->commit_ns_max, ns, __ATOMIC_RELAXED);
}

/* The compare for "key is at expect_rev", or "key exists" when expect_rev is 0. */
static json_t *cmp_rev(json_t *key, int64_t expect_rev)
{
    if (expect_rev)
        return json_pack("[{s:s, s:O, s:o}]", "target", "MOD", "key", key, "mod_revision",
                         jint_new(expect_rev));
    return json_pack("[{s:s, s:O, s:s, s:s}]", "target", "CREATE", "key", key, "result", "GREATER",
                     "create_revision", "0");
}

/*
 * Runs a txn of compare / success op / failure range of key. Returns 0 with *reply when it
 * succeeded, CORRAL_ENOTFOUND, CORRAL_ECONFLICT (or CORRAL_EEXISTS for a create) when the
 * compare failed, or a transport error. Steals cmp and op.
 */
static int txn(struct etcd_store *s, json_t *key, json_t *cmp, json_t *op, bool create,
               json_t **reply)
{
    json_t *req = json_pack("{s:o, s:[o], s:[{s:{s:O}}]}", "compare", cmp, "success", op, "failure",
                            "request_range", "key", key);
    if (!req)
        return -ENOMEM; /* json_pack released cmp and op */
    uint64_t t0 = corral_now_ns();
    int rc = etcd_post(s, "/v3/kv/txn", req, reply);
    json_decref(req);
    if (rc != 0)
        return rc;
    note_commit(s, corral_now_ns() - t0);
    if (json_is_true(json_object_get(*reply, "succeeded")))
        return 0;
    const json_t *range =
        json_object_get(json_array_get(json_object_get(*reply, "responses"), 0), "response_range");
    bool exists = json_array_size(json_object_get(range, "kvs")) > 0;
    json_decref(*reply);
    *reply = NULL;
    if (create)
        return CORRAL_EEXISTS;
    return exists ? CORRAL_ECONFLICT : CORRAL_ENOTFOUND;
}

/* The first response of a txn reply, of the given kind ("response_put", ...). */
static const json_t *txn_response(const json_t *reply, const char *kind)
{
    return json_object_get(json_array_get(json_object_get(reply, "responses"), 0), kind);
}

/* After a successful write at rev: waits until the cache has it (read your writes). */
static void wait_visible(struct etcd_store *s, int64_t rev)
{
    if (corral_cache_wait_rev(&s->cache, rev, WRITE_VISIBLE_MS) != 0)
        corral_warn(LOG, "revision %" PRId64 " committed but not seen on the watch yet", rev);
}

/* Counts a write in, unless the store is shutting down. */
static bool write_enter(struct etcd_store *s)
{
    pthread_mutex_lock(&s->wr_mu);
    bool ok = !s->closing;
    if (ok)
        s->writers++;
    pthread_mutex_unlock(&s->wr_mu);
    return ok;
}

static void write_leave(struct etcd_store *s)
{
    pthread_mutex_lock(&s->wr_mu);
    if (--s->writers == 0)
        pthread_cond_broadcast(&s->wr_cv);
    pthread_mutex_unlock(&s->wr_mu);
}

/* The txn of a create or update. Returns 0 once etcd committed it (and the cache has it). */
static int etcd_put_doc(struct etcd_store *s, const char *key, const struct corral_store_doc *doc,
                        int64_t expect_rev, bool create, struct corral_store_obj *out)
{
    int rc;
    json_t *k = etcd_key(s, key), *v = value_encode(doc), *reply = NULL;
    json_t *cmp = !k       ? NULL
                  : create ? json_pack("[{s:s, s:O, s:s}]", "target", "CREATE", "key", k,
                                       "create_revision", "0")
                           : cmp_rev(k, expect_rev);
    json_t *op =
        k && v ? json_pack("{s:{s:O, s:O, s:b}}", "request_put", "key", k, "value", v, "prev_kv", 1)
               : NULL;
    if (cmp && op) {
        rc = txn(s, k, cmp, op, create, &reply);
    } else {
        json_decref(cmp);
        json_decref(op);
        rc = -ENOMEM;
    }
    if (rc == 0) {
        int64_t rev = jint(json_object_get(reply, "header"), "revision");
        const json_t *prev = json_object_get(txn_response(reply, "response_put"), "prev_kv");
        wait_visible(s, rev);
        if (out) {
            out->value = corral_store_doc_stamp(doc, rev);
            out->mod_rev = rev;
            out->create_rev = create ? rev : jint(prev, "create_revision");
        }
    }
    json_decref(reply);
    json_decref(k);
    json_decref(v);
    return rc;
}

static int etcd_put(struct corral_store *st, const char *key, json_t *obj, int64_t expect_rev,
                    bool create, struct corral_store_obj *out)
{
    struct etcd_store *s = es(st);
    struct corral_store_doc doc;
    int rc = corral_store_doc_make(obj, &doc);
    json_decref(obj);
    if (rc != 0)
        return rc;
    if (!write_enter(s)) {
        corral_store_doc_clear(&doc);
        return CORRAL_EUNAVAILABLE;
    }
    rc = etcd_put_doc(s, key, &doc, expect_rev, create, out);
    write_leave(s);
    corral_store_doc_clear(&doc);
    return rc;
}

static int etcd_create(struct corral_store *st, const char *key, json_t *obj,
                       struct corral_store_obj *out)
{
    return etcd_put(st, key, obj, 0, true, out);
}

static int etcd_update(struct corral_store *st, const char *key, json_t *obj, int64_t expect_rev,
                       struct corral_store_obj *out)
{
    return etcd_put(st, key, obj, expect_rev, false, out);
}

/* The deleted object of a delete reply, stamped with the deletion's revision. */
static void deleted_obj(struct etcd_store *s, const json_t *reply, int64_t rev,
                        struct corral_store_obj *out)
{
    const json_t *prev = json_array_get(
        json_object_get(txn_response(reply, "response_delete_range"), "prev_kvs"), 0);
    struct etcd_kv kv;
    if (kv_parse(s, prev, &kv) != 0)
        return;
    out->value = kv.value ? value_decode(kv.value, kv.vlen, rev) : NULL;
    out->create_rev = kv.create_rev;
    out->mod_rev = rev;
    kv_clear(&kv);
}

static int etcd_remove_key(struct etcd_store *s, const char *key, int64_t expect_rev,
                           struct corral_store_obj *out)
{
    json_t *k = etcd_key(s, key), *reply = NULL;
    json_t *cmp = k ? cmp_rev(k, expect_rev) : NULL;
    json_t *op =
        k ? json_pack("{s:{s:O, s:b}}", "request_delete_range", "key", k, "prev_kv", 1) : NULL;
    int rc = -ENOMEM;
    if (cmp && op) {
        rc = txn(s, k, cmp, op, false, &reply);
    } else {
        json_decref(cmp);
        json_decref(op);
    }
    if (rc == 0) {
        int64_t rev = jint(json_object_get(reply, "header"), "revision");
        wait_visible(s, rev);
        if (out)
            deleted_obj(s, reply, rev, out);
    }
    json_decref(reply);
    json_decref(k);
    return rc;
}

static int etcd_remove(struct corral_store *st, const char *key, int64_t expect_rev,
                       struct corral_store_obj *out)
{
    struct etcd_store *s = es(st);
    if (!write_enter(s))
        return CORRAL_EUNAVAILABLE;
    int rc = etcd_remove_key(s, key, expect_rev, out);
    write_leave(s);
    return rc;
}

/* ---- the other ops ------------------------------------------------------------------------ */

static int etcd_get(struct corral_store *st, const char *key, struct corral_store_obj *out)
{
    return corral_cache_get(&es(st)->cache, key, out);
}

static int etcd_list(struct corral_store *st, const struct corral_store_list_opts *opts,
                     struct corral_store_list *out)
{
    return corral_cache_list(&es(st)->cache, opts, out);
}

static int etcd_snapshot(struct corral_store *st, const struct corral_store_list_opts *opts,
                         struct corral_store_snapshot **out)
{
    return corral_cache_snapshot(&es(st)->cache, opts, out);
}

static int etcd_events(struct corral_store *st, const char *prefix, int64_t after,
                       struct corral_store_event *out, size_t max, int timeout_ms, int64_t *seen)
{
    return corral_cache_events(&es(st)->cache, prefix, after, out, max, timeout_ms, seen);
}

/* Asks the watch thread to compact (the cache's single mutator) and waits until it did. */
static int etcd_compact(struct corral_store *st, int64_t rev)
{
    struct etcd_store *s = es(st);
    pthread_mutex_lock(&s->req_mu);
    if (rev > s->req_compact)
        s->req_compact = rev;
    uint64_t seq = ++s->req_seq;
    curl_multi_wakeup(s->multi);
    while (s->done_seq < seq && !stopping(s))
        pthread_cond_wait(&s->req_cv, &s->req_mu);
    pthread_mutex_unlock(&s->req_mu);
    return 0;
}

static void etcd_stats(struct corral_store *st, struct corral_store_stats *out)
{
    struct etcd_store *s = es(st);
    corral_cache_stats(&s->cache, out);
    out->commits = __atomic_load_n(&s->commits, __ATOMIC_RELAXED);
    out->committed_ops = out->commits;
    out->commit_ns_total = __atomic_load_n(&s->commit_ns_total, __ATOMIC_RELAXED);
    out->commit_ns_max = __atomic_load_n(&s->commit_ns_max, __ATOMIC_RELAXED);
}

static int64_t etcd_revision(struct corral_store *st)
{
    return corral_cache_revision(&es(st)->cache);
}

static void etcd_set_retention(struct corral_store *st, const struct corral_store_retention *r)
{
    corral_cache_set_retention(&es(st)->cache, r);
    etcd_compact(st, 0); /* apply it now */
}

static void etcd_free(struct etcd_store *s)
{
    for (size_t i = 0; i < s->npool; i++)
        curl_easy_cleanup(s->pool[i]);
    free(s->pool);
    if (s->multi)
        curl_multi_cleanup(s->multi);
    for (size_t i = 0; i < s->nendpoints; i++)
        free(s->endpoints[i]);
    free(s->endpoints);
    free(s->prefix);
    free(s->range_key);
    free(s->range_end);
    free(s->ca_file);
    free(s->cert_file);
    free(s->key_file);
    corral_cache_destroy(&s->cache);
    pthread_mutex_destroy(&s->pool_mu);
    pthread_mutex_destroy(&s->req_mu);
    pthread_cond_destroy(&s->req_cv);
    pthread_mutex_destroy(&s->wr_mu);
    pthread_cond_destroy(&s->wr_cv);
    free(s);
}

/* Refuses new writes, waits for those in flight (the watch still runs, so they complete), then
 * stops the watch thread and ends watch waits. */
static void etcd_shutdown(struct corral_store *st)
{
    struct etcd_store *s = es(st);
    pthread_mutex_lock(&s->wr_mu);
    s->closing = true;
    while (s->writers > 0)
        pthread_cond_wait(&s->wr_cv, &s->wr_mu);
    bool join = s->thread_started;
    s->thread_started = false;
    pthread_mutex_unlock(&s->wr_mu);
    __atomic_store_n(&s->stop, true, __ATOMIC_RELEASE);
    if (join) {
        curl_multi_wakeup(s->multi);
        pthread_join(s->thread, NULL);
    }
    corral_cache_shutdown(&s->cache);
}

static void etcd_close(struct corral_store *st)
{
    etcd_shutdown(st);
    etcd_free(es(st));
}

static const struct corral_store_ops etcd_ops = {
    .name = "etcd",
    .get = etcd_get,
    .list = etcd_list,
    .create = etcd_create,
    .update = etcd_update,
    .remove = etcd_remove,
    .events = etcd_events,
    .compact = etcd_compact,
    .stats = etcd_stats,
    .close = etcd_close,
    .revision = etcd_revision,
    .set_retention = etcd_set_retention,
    .shutdown = etcd_shutdown,
    .snapshot = etcd_snapshot,
};

/* ---- opening ------------------------------------------------------------------------------ */

/* Splits "http://a:2379,http://b:2379" into s->endpoints. Returns 0 or -EINVAL / -ENOMEM. */
static int parse_endpoints(struct etcd_store *s, const char *list)
{
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        while (n > 0 && p[n - 1] == '/')
            n--; /* no trailing slash: paths are appended */
        if (n > 0) {
            if ((strncmp(p, "http://", 7) != 0 && strncmp(p, "https://", 8) != 0) || n > 400) {
                corral_error(LOG, "etcd endpoint \"%.*s\": want http://host:port", (int)n, p);
                return -EINVAL;
            }
            char **e = realloc(s->endpoints, (s->nendpoints + 1) * sizeof(*e));
            if (!e)
                return -ENOMEM;
            s->endpoints = e;
            if (!(s->endpoints[s->nendpoints] = strndup(p, n)))
                return -ENOMEM;
            s->nendpoints++;
        }
        p += strcspn(p, ",");
        if (*p == ',')
            p++;
    }
    if (s->nendpoints == 0) {
        corral_error(LOG, "no etcd endpoint given");
        return -EINVAL;
    }
    return 0;
}

/* Sets the key prefix and the range that covers every store key under it. */
static int set_prefix(struct etcd_store *s, const char *prefix)
{
    size_t n = strlen(prefix);
    while (n > 0 && prefix[n - 1] == '/')
        n--; /* "/corral/" is "/corral"; "/" is no prefix at all */
    if (prefix[0] != '/' || n > 256) {
        corral_error(LOG, "etcd key prefix \"%s\": want a path such as /corral", prefix);
        return -EINVAL;
    }
    s->prefix = strndup(prefix, n);
    char *r = malloc(n + 1);
    if (!s->prefix || !r) {
        free(r);
        return -ENOMEM;
    }
    s->prefix_len = n;
    memcpy(r, prefix, n);
    r[n] = '/';
    s->range_key = corral_pki_base64_encode(r, n + 1);
    r[n] = '0'; /* '/' + 1 */
    s->range_end = corral_pki_base64_encode(r, n + 1);
    free(r);
    return s->range_key && s->range_end ? 0 : -ENOMEM;
}

/* Copies one TLS file setting after checking that the file can be read. */
static int tls_file(const char *what, const char *path, char **out)
{
    if (!path)
        return 0;
    if (access(path, R_OK) != 0) {
        corral_error(LOG, "etcd %s %s: %s", what, path, strerror(errno));
        return -EINVAL;
    }
    *out = strdup(path);
    return *out ? 0 : -ENOMEM;
}

static int set_tls(struct etcd_store *s, const struct corral_store_etcd_tls *tls)
{
    if (!tls)
        return 0;
    if (!tls->cert_file != !tls->key_file) {
        corral_error(LOG, "etcd client certificate and key go together: give both or neither");
        return -EINVAL;
    }
    int rc = tls_file("CA file", tls->ca_file, &s->ca_file);
    if (rc == 0)
        rc = tls_file("certificate", tls->cert_file, &s->cert_file);
    if (rc == 0)
        rc = tls_file("key", tls->key_file, &s->key_file);
    return rc;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static struct etcd_store *etcd_alloc(void)
{
    struct etcd_store *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    if (corral_cache_init(&s->cache) != 0) {
        free(s);
        return NULL;
    }
    s->base.ops = &etcd_ops;
    pthread_mutex_init(&s->pool_mu, NULL);
    pthread_mutex_init(&s->req_mu, NULL);
    pthread_cond_init(&s->req_cv, NULL);
    pthread_mutex_init(&s->wr_mu, NULL);
    pthread_cond_init(&s->wr_cv, NULL);
    return s;
}

/* Lists the prefix into the cache. */
static int initial_load(struct etcd_store *s)
{
    struct corral_cache_map m;
    int64_t rev;
    corral_cache_map_init(&m);
    int rc = snapshot_load(s, &m, &rev);
    if (rc == 0) {
        corral_cache_replace(&s->cache, &m, rev);
        s->watch_rev = rev;
    }
    corral_cache_map_destroy(&m);
    return rc;
}

int corral_store_open_etcd(const char *endpoints, const char *prefix, struct corral_store **out)
{
    return corral_store_open_etcd_tls(endpoints, prefix, NULL, out);
}

int corral_store_open_etcd_tls(const char *endpoints, const char *prefix,
                               const struct corral_store_etcd_tls *tls, struct corral_store **out)
{
    if (!endpoints || !prefix || !out)
        return -EINVAL;
    *out = NULL;
    pthread_once(&curl_once, curl_init_once);
    struct etcd_store *s = etcd_alloc();
    if (!s)
        return -ENOMEM;
    uint64_t t0 = corral_now_ns();
    int err = parse_endpoints(s, endpoints);
    if (err == 0)
        err = set_prefix(s, prefix);
    if (err == 0)
        err = set_tls(s, tls);
    if (err == 0 && !(s->multi = curl_multi_init()))
        err = -ENOMEM;
    if (err == 0 && (err = initial_load(s)) != 0)
        corral_error(LOG, "%s: cannot list %s: %s", s->endpoints[0], prefix, corral_strerror(err));
    if (err != 0)
        goto err_free;
    int rc = pthread_create(&s->thread, NULL, watch_thread, s);
    if (rc != 0) {
        err = -rc;
        goto err_free;
    }
    s->thread_started = true;
    corral_info(LOG, "%s%s: %zu objects at revision %" PRId64 ", loaded in %.0f ms",
                s->endpoints[0], s->prefix, s->cache.map.count, s->watch_rev,
                (corral_now_ns() - t0) / 1e6);
    *out = &s->base;
    return 0;

err_free:
    etcd_free(s);
    return err;
}
