/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store: the apiserver's one storage interface.
 *
 * Keys are Kubernetes registry paths ("/registry/pods/default/web-0",
 * "/registry/nodes/gpu-1"); values are Kubernetes objects. Every successful write gets the next
 * global revision (a positive int64, as etcd's); an object's metadata.resourceVersion is the
 * revision that last modified it, and the store writes that field itself, so stored bytes,
 * replies and watch events always agree.
 *
 * Values are handed out as immutable, reference-counted blobs of compact JSON (struct
 * corral_blob). In memory the store keeps every object compressed against a dictionary trained on
 * objects of the same kind (cache_pack.h: a stored pod takes about 60 bytes instead of 1.4 KB)
 * and makes the plain blob when it is read; reads and watches never touch the disk, and a watch
 * event is decompressed once however many watchers take it. A write returns only once it is
 * durable; concurrent writes are batched into one commit (group commit).
 *
 * Watching: the store keeps a window of recent events (the watch history). A watcher asks for
 * events after a revision; if that revision is older than the window (compacted) the answer is
 * CORRAL_EGONE and the client must re-list, as with etcd and Kubernetes (410 Gone).
 *
 * Backends: SQLite in WAL mode (embedded, the default; store_sqlite.c) and etcd v3 through its
 * JSON gateway (store_etcd.c). Both sit behind struct corral_store_ops. Thread-safe: any
 * function may be called from any thread. With SQLite the watch history survives restarts; with
 * etcd it starts at the revision the store loaded (watchers resuming from before re-list).
 *
 * Bad arguments get -EINVAL from every call: a key must start with '/', not end with '/', be
 * printable ASCII without spaces and at most 1024 bytes; a prefix must start and end with '/';
 * an object must be a JSON object whose metadata, if present, is an object. Writes can also fail
 * with CORRAL_EUNAVAILABLE (the disk or etcd failed, the outcome of the write is then unknown
 * to the client, as with a 503; or the store is shutting down), CORRAL_ETOOLARGE (etcd's request
 * limit) and -ENOMEM.
 */
#ifndef CORRAL_STORE_H
#define CORRAL_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Immutable serialized object. data is NUL-terminated compact JSON. rv_off is the offset in data
 * of the first digit of metadata.resourceVersion when the store wrote it (0 = unknown: blobs
 * from corral_blob_new); the store uses it to restamp a deleted object without parsing it.
 */
struct corral_blob {
    int refs; /* atomic */
    uint32_t rv_off;
    size_t len;
    char data[];
};

/* Allocates a blob holding a copy of data[0..len) (NUL-terminated). refs = 1. NULL on ENOMEM. */
struct corral_blob *corral_blob_new(const char *data, size_t len);
struct corral_blob *corral_blob_ref(struct corral_blob *b);
void corral_blob_unref(struct corral_blob *b);
/* Parses the blob into a new JSON value (caller decrefs); NULL if it is not JSON. */
json_t *corral_blob_json(const struct corral_blob *b);

enum corral_event_type {
    CORRAL_EVENT_ADDED = 1,
    CORRAL_EVENT_MODIFIED,
    CORRAL_EVENT_DELETED,
};

struct corral_store_event {
    enum corral_event_type type;
    int64_t rev;
    char *key;                 /* owned by the event */
    struct corral_blob *value; /* the object after the change; for DELETED, the last state with
                                  resourceVersion = rev of the deletion */
    struct corral_blob *prev;  /* the object before the change; NULL for ADDED */
};

/* Releases the key and blob references held by ev (not ev itself). */
void corral_store_event_clear(struct corral_store_event *ev);

/* Result of a read or write of one object. */
struct corral_store_obj {
    struct corral_blob *value; /* a reference the caller must unref */
    int64_t create_rev;
    int64_t mod_rev;
};

struct corral_store_list_opts {
    const char *prefix;      /* "/registry/pods/default/" ; must end with '/' */
    const char *start_after; /* continue from the key after this one (exclusive); NULL = start */
    size_t limit;            /* 0 = no limit */
    /*
     * Optional filter: return false to skip an object (it does not count against limit). It runs
     * with the store's read lock held, so it must not call back into the store.
     */
    bool (*filter)(const struct corral_blob *value, void *ctx);
    void *filter_ctx;
};

struct corral_store_list {
    struct corral_blob **items; /* references; freed by corral_store_list_clear */
    char **keys;
    size_t n;
    int64_t rev; /* store revision the list reflects */
    bool more;   /* true if the prefix holds further objects after keys[n-1] (that pass the
                    filter, when there is one) */
};

void corral_store_list_clear(struct corral_store_list *l);

/*
 * A list taken at once, like corral_store_list(), that holds its objects in the store's compact
 * form and makes each plain blob only when asked: for walking many objects (a controller's
 * relist, a watch's initial events) without holding all of them as JSON at the same time.
 */
struct corral_store_snapshot;

struct corral_store_stats {
    uint64_t objects;
    int64_t rev;
    int64_t compacted_rev;  /* oldest revision a watch can still start after */
    uint64_t commits;       /* durable commits (batches) */
    uint64_t committed_ops; /* writes covered by those commits */
    uint64_t commit_ns_total;
    uint64_t commit_ns_max;
    uint64_t bytes; /* bytes of object data held in memory */
    /* Added by the store backends: */
    uint64_t history_events; /* events in the watch history */
    uint64_t history_bytes;  /* object bytes only the history keeps alive (old and deleted
                                versions) */
    /* Memory, as objects are held packed (bytes and history_bytes count plain JSON): */
    uint64_t mem;         /* the current objects, packed */
    uint64_t history_mem; /* the versions only the history keeps, packed */
    uint64_t dicts;       /* packing dictionaries alive */
    uint64_t dict_mem;    /* the memory they take */
};

/*
 * Watch-history retention. An event is dropped (compacted) as soon as any limit is exceeded;
 * 0 leaves that limit off. Defaults: CORRAL_STORE_HISTORY_EVENTS events, CORRAL_STORE_HISTORY_AGE_S
 * seconds, CORRAL_STORE_HISTORY_BYTES bytes.
 */
struct corral_store_retention {
    uint64_t max_events;
    uint64_t max_age_s;
    uint64_t max_bytes;
};

#define CORRAL_STORE_HISTORY_EVENTS 100000
#define CORRAL_STORE_HISTORY_AGE_S 300
#define CORRAL_STORE_HISTORY_BYTES (64ull << 20)

struct corral_store;

struct corral_store_ops {
    const char *name;
    int (*get)(struct corral_store *st, const char *key, struct corral_store_obj *out);
    int (*list)(struct corral_store *st, const struct corral_store_list_opts *opts,
                struct corral_store_list *out);
    int (*create)(struct corral_store *st, const char *key, json_t *obj,
                  struct corral_store_obj *out);
    int (*update)(struct corral_store *st, const char *key, json_t *obj, int64_t expect_rev,
                  struct corral_store_obj *out);
    int (*remove)(struct corral_store *st, const char *key, int64_t expect_rev,
                  struct corral_store_obj *out);
    int (*events)(struct corral_store *st, const char *prefix, int64_t after,
                  struct corral_store_event *out, size_t max, int timeout_ms, int64_t *seen);
    int (*compact)(struct corral_store *st, int64_t rev);
    void (*stats)(struct corral_store *st, struct corral_store_stats *out);
    void (*close)(struct corral_store *st);
    /* Added by the store backends: */
    int64_t (*revision)(struct corral_store *st);
    void (*set_retention)(struct corral_store *st, const struct corral_store_retention *r);
    void (*shutdown)(struct corral_store *st);
    int (*snapshot)(struct corral_store *st, const struct corral_store_list_opts *opts,
                    struct corral_store_snapshot **out);
};

struct corral_store {
    const struct corral_store_ops *ops;
};

/*
 * Opens (creating if needed) the embedded SQLite store in dir/corral.db. Loads every object and
 * the retained watch history into memory before returning. Returns 0 and *out, or -errno /
 * CORRAL_EUNAVAILABLE with a log line saying why.
 */
int corral_store_open_sqlite(const char *dir, struct corral_store **out);

/*
 * Opens the etcd-backed store against endpoints ("http://127.0.0.1:2379,..."), keys under
 * prefix ("/corral"). Returns 0 and *out, or CORRAL_EUNAVAILABLE.
 */
int corral_store_open_etcd(const char *endpoints, const char *prefix, struct corral_store **out);

/* TLS for https:// etcd endpoints: paths of PEM files, NULL = not set (as kube-apiserver's
 * --etcd-cafile, --etcd-certfile, --etcd-keyfile). */
struct corral_store_etcd_tls {
    const char *ca_file;   /* CAs that signed etcd's serving certificate (else the system's) */
    const char *cert_file; /* client certificate, for etcd --client-cert-auth */
    const char *key_file;  /* its private key */
};

/*
 * As corral_store_open_etcd(), with TLS settings (tls may be NULL). Returns -EINVAL (logged)
 * when a file cannot be read or only one of cert_file and key_file is given.
 */
int corral_store_open_etcd_tls(const char *endpoints, const char *prefix,
                               const struct corral_store_etcd_tls *tls, struct corral_store **out);

/*
 * Reads the object at key. Returns 0 and fills *out (caller unrefs out->value), or
 * CORRAL_ENOTFOUND.
 */
int corral_store_get(struct corral_store *st, const char *key, struct corral_store_obj *out);

/*
 * Lists objects under opts->prefix in key order. Returns 0 and fills *out (caller clears it).
 */
int corral_store_list(struct corral_store *st, const struct corral_store_list_opts *opts,
                      struct corral_store_list *out);

/*
 * Takes a snapshot of the objects under opts->prefix in key order (start_after and limit as for
 * corral_store_list; a filter is not supported: -EINVAL). Returns 0 and *out (free it with
 * corral_store_snapshot_free), -EINVAL or -ENOMEM.
 */
int corral_store_snapshot(struct corral_store *st, const struct corral_store_list_opts *opts,
                          struct corral_store_snapshot **out);

/* Objects in the snapshot; the store revision it reflects; whether the prefix holds more after
 * the last one (with a limit). */
size_t corral_store_snapshot_count(const struct corral_store_snapshot *s);
int64_t corral_store_snapshot_rev(const struct corral_store_snapshot *s);
bool corral_store_snapshot_more(const struct corral_store_snapshot *s);

/*
 * The i-th object (i below the count): *key borrowed from the snapshot, and a new plain blob in
 * *value (caller unrefs). Returns 0 or -ENOMEM.
 */
int corral_store_snapshot_item(const struct corral_store_snapshot *s, size_t i, const char **key,
                               struct corral_blob **value);

/* The i-th key (borrowed). */
const char *corral_store_snapshot_key(const struct corral_store_snapshot *s, size_t i);

void corral_store_snapshot_free(struct corral_store_snapshot *s);

/*
 * Creates key with obj. Steals the reference to obj. The store sets metadata.resourceVersion.
 * Returns 0 once durable, filling *out when not NULL (caller unrefs out->value), or
 * CORRAL_EEXISTS, CORRAL_EUNAVAILABLE.
 */
int corral_store_create(struct corral_store *st, const char *key, json_t *obj,
                        struct corral_store_obj *out);

/*
 * Replaces key with obj if its current mod revision equals expect_rev (0 = unconditionally).
 * Steals obj. Returns 0 once durable, CORRAL_ENOTFOUND, CORRAL_ECONFLICT.
 */
int corral_store_update(struct corral_store *st, const char *key, json_t *obj, int64_t expect_rev,
                        struct corral_store_obj *out);

/*
 * Deletes key if its mod revision equals expect_rev (0 = unconditionally). On success *out (if
 * not NULL) holds the deleted object with resourceVersion set to the deletion revision and
 * out->mod_rev = that revision. Returns 0, CORRAL_ENOTFOUND, CORRAL_ECONFLICT.
 */
int corral_store_delete(struct corral_store *st, const char *key, int64_t expect_rev,
                        struct corral_store_obj *out);

/*
 * Copies up to max events with revision > after and key starting with prefix into out (the
 * caller clears each with corral_store_event_clear). When there are none, waits up to timeout_ms
 * for one (0 = do not wait). *seen is set to the newest revision examined, so that the next call
 * can pass it as after even when no event matched the prefix (and for bookmarks).
 * Returns the number of events, CORRAL_EGONE if after is below the compacted revision
 * (stats.compacted_rev: the history no longer covers it; the client re-lists), or
 * CORRAL_EUNAVAILABLE once the store is shutting down.
 */
int corral_store_events(struct corral_store *st, const char *prefix, int64_t after,
                        struct corral_store_event *out, size_t max, int timeout_ms, int64_t *seen);

/* Drops watch history at or below rev. Returns 0. */
int corral_store_compact(struct corral_store *st, int64_t rev);

void corral_store_stats(struct corral_store *st, struct corral_store_stats *out);

/* Current revision (newest committed). */
int64_t corral_store_revision(struct corral_store *st);

/* Sets the watch-history retention (see struct corral_store_retention) and applies it at once. */
void corral_store_set_retention(struct corral_store *st, const struct corral_store_retention *r);

/*
 * Stops taking writes (later ones fail with CORRAL_EUNAVAILABLE), waits until every write
 * already submitted has finished (durable, or failed), and ends every watch wait (events()
 * returns CORRAL_EUNAVAILABLE from then on). Gets and lists keep working until close. For a
 * graceful stop: shutdown, stop the threads that use the store, close. Idempotent.
 */
void corral_store_shutdown(struct corral_store *st);

/* Finishes in-flight writes (shutdown, if not done yet), flushes and frees everything. No other
 * call may be running or made afterwards. */
void corral_store_close(struct corral_store *st);

#endif
