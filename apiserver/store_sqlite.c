/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_sqlite: the embedded store, one SQLite file DIR/corral.db in WAL mode, with every
 * object and the watch history held in memory (cache.c) so that reads and watches never touch
 * the disk.
 *
 * Durability. The connection runs journal_mode=WAL with synchronous=FULL: every COMMIT appends
 * the transaction's frames to the WAL and fsyncs the WAL before returning, so a commit that
 * returned survives kill -9 and power loss alike. (synchronous=NORMAL, the usual WAL setting,
 * only syncs at checkpoints: a power cut could then roll back transactions we had acknowledged.)
 * A write is acknowledged only after its COMMIT returned, and the in-memory state changes only
 * then, so a failed commit (disk full, I/O error) leaves memory as it was and the callers get
 * CORRAL_EUNAVAILABLE. locking_mode=EXCLUSIVE keeps a second process from opening the same file
 * (it would hand out the same revisions) and keeps the WAL index in process memory.
 *
 * Group commit. Callers serialize and pack their object in their own thread (store_backend.h,
 * cache_pack.h), queue an op and sleep on its semaphore. One commit thread takes everything
 * queued (up to BATCH_MAX), decides each op against the committed state plus the ops before it
 * in the batch (so that two racing updates with the same expect_rev resolve to exactly one
 * winner), assigns consecutive revisions, writes the whole batch in one transaction with one
 * fsync, applies it to memory under the write lock, wakes the watchers and then the callers.
 * While a commit is in flight the next batch queues up, so fsync cost is shared by every
 * concurrent writer.
 *
 * On disk the objects stay plain JSON, as before packing existed: the log is the durable truth,
 * the packed form is memory's only (a load packs every row again).
 *
 * Schema: kv(rev INTEGER PRIMARY KEY, key, create_rev, deleted, ts, rv_off, value) is a log of
 * versions, one row per write (a delete writes the object's last state, restamped with the
 * deletion revision, marked deleted); meta holds the revision counter and the compacted
 * revision. The current state and the watch history are both a replay of kv in revision order,
 * which is how the store loads (one sequential scan, one prepared statement). Rows at or below
 * the compacted revision that a later row at or below it superseded, and deletion rows at or
 * below it, are garbage: compaction deletes them (in the next transaction). Every write costs
 * one row and no secondary index. meta.rev is written in every transaction, so the revision
 * after a restart exceeds every revision ever acknowledged, deleted keys included.
 *
 * Watch history survives restarts: it is the kv rows above the compacted revision, so a watcher
 * can resume from its last revision after the apiserver restarts, and the store does not write
 * anything extra for it. Retention: see struct corral_store_retention (defaults: 100,000 events,
 * 5 minutes as etcd's default compaction in Kubernetes, 64 MiB of superseded versions); checked
 * after every batch and once a second while idle.
 */
#include "cache.h"
#include "store.h"
#include "store_backend.h"

#include "error.h"
#include "log.h"
#include "meta.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG "store"
#define BATCH_MAX 1024
#define OVERLAY_SLOTS (2 * BATCH_MAX) /* a power of two */
#define APP_ID 0x636f7231             /* "cor1" */
#define SCHEMA_VERSION 1

enum op_kind { OP_CREATE, OP_UPDATE, OP_DELETE, OP_COMPACT };

struct sq_op {
    enum op_kind kind;
    const char *key;
    struct corral_store_doc doc;
    struct corral_packed *packed; /* doc packed (creates and updates) */
    int64_t expect_rev; /* OP_COMPACT: the revision to compact to */
    struct corral_store_obj *out;
    int rc;
    bool used_overlay; /* decided against an earlier op of the same batch */
    struct corral_cache_change *change;
    sem_t done;
    struct sq_op *next;
};

/* What a key looks like to the commit thread: committed state plus the batch so far. */
struct view {
    const char *key;
    bool exists;
    int64_t create_rev;
    int64_t mod_rev;
    struct corral_packed *value; /* borrowed */
};

struct batch {
    struct sq_op *ops[BATCH_MAX];
    size_t nops;
    struct corral_cache_change ch[BATCH_MAX];
    size_t nch;
    size_t nadds;
    struct view pending[BATCH_MAX];
    size_t npending;
    int32_t slots[OVERLAY_SLOTS]; /* index into pending + 1; 0 = empty */
    uint32_t used[BATCH_MAX];     /* the slots pending[i] occupies, to clear them */
    int64_t compact_to;
};

struct sq_store {
    struct corral_store base;
    struct corral_cache cache;
    sqlite3 *db;
    sqlite3_stmt *ins, *set_meta, *del_row;
    char *path;

    pthread_t thread;
    pthread_mutex_t q_mu;
    pthread_cond_t q_cv;
    struct sq_op *q_head, **q_tail;
    bool closing;
    bool thread_started;

    /* The commit thread's own. */
    struct batch batch;
    int64_t rev;           /* newest committed revision */
    int64_t compacted_db;  /* compacted revision as stored */
    int64_t compacted_mem; /* compacted revision in memory, to store with the garbage */
    int64_t *garbage;      /* rows to delete, from compaction */
    size_t ngarbage, garbage_cap;

    /* Statistics (atomic). */
    uint64_t commits, committed_ops, commit_ns_total, commit_ns_max;
};

static struct sq_store *sq(struct corral_store *st)
{
    return (struct sq_store *)st;
}

static int64_t wall_now(void)
{
    return (int64_t)time(NULL);
}

/* ---- SQL helpers -------------------------------------------------------------------------- */

static int sql_exec(struct sq_store *s, const char *sql)
{
    char *err = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK) {
        corral_error(LOG, "%s: %s: %s", s->path, sql, err ? err : sqlite3_errstr(rc));
        sqlite3_free(err);
    }
    return rc;
}

/* Runs a one-row query and returns its first column as text in buf (empty when no row). */
static int sql_text(struct sq_store *s, const char *sql, char *buf, size_t len)
{
    sqlite3_stmt *st;
    buf[0] = '\0';
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        snprintf(buf, len, "%s", t ? (const char *)t : "");
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

static int meta_get(struct sq_store *s, const char *name, int64_t *out)
{
    char sql[128], buf[32];
    snprintf(sql, sizeof(sql), "SELECT value FROM meta WHERE name='%s'", name);
    int rc = sql_text(s, sql, buf, sizeof(buf));
    *out = buf[0] ? strtoll(buf, NULL, 10) : 0;
    return rc;
}

static int meta_set(struct sq_store *s, const char *name, int64_t value)
{
    sqlite3_bind_text(s->set_meta, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s->set_meta, 2, value);
    int rc = sqlite3_step(s->set_meta);
    sqlite3_reset(s->set_meta);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int insert_row(struct sq_store *s, const struct corral_cache_change *ch, const char *key)
{
    sqlite3_stmt *st = s->ins;
    sqlite3_bind_int64(st, 1, ch->rev);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, ch->create_rev);
    sqlite3_bind_int(st, 4, ch->type == CORRAL_EVENT_DELETED);
    sqlite3_bind_int64(st, 5, ch->ts);
    sqlite3_bind_int64(st, 6, ch->plain->rv_off);
    sqlite3_bind_blob64(st, 7, ch->plain->data, ch->plain->len, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int delete_row(struct sq_store *s, int64_t rev)
{
    sqlite3_bind_int64(s->del_row, 1, rev);
    int rc = sqlite3_step(s->del_row);
    sqlite3_reset(s->del_row);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* ---- the batch overlay -------------------------------------------------------------------- */

static uint32_t key_hash(const char *key)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

/* The overlay slot for key: holds its pending index + 1, or 0 where it would go. */
static int32_t *overlay_slot(struct batch *b, const char *key)
{
    uint32_t i = key_hash(key) & (OVERLAY_SLOTS - 1);
    while (b->slots[i] && strcmp(b->pending[b->slots[i] - 1].key, key) != 0)
        i = (i + 1) & (OVERLAY_SLOTS - 1);
    return &b->slots[i];
}

/* Fills *v with how key stands; returns true when an earlier op of the batch decided it. */
static bool view_of(struct sq_store *s, const char *key, struct view *v)
{
    int32_t *slot = overlay_slot(&s->batch, key);
    if (*slot) {
        *v = s->batch.pending[*slot - 1];
        return true;
    }
    const struct corral_cache_entry *e = corral_cache_peek(&s->cache, key);
    memset(v, 0, sizeof(*v));
    v->key = key;
    if (e) {
        v->exists = true;
        v->create_rev = e->create_rev;
        v->mod_rev = e->mod_rev;
        v->value = e->value;
    }
    return false;
}

static void view_set(struct sq_store *s, const struct view *v)
{
    int32_t *slot = overlay_slot(&s->batch, v->key);
    if (!*slot) {
        s->batch.used[s->batch.npending] = (uint32_t)(slot - s->batch.slots);
        s->batch.pending[s->batch.npending] = *v;
        *slot = (int32_t)++s->batch.npending;
    } else {
        s->batch.pending[*slot - 1] = *v;
    }
}

/* ---- deciding ops ------------------------------------------------------------------------- */

/* Checks op against v. Returns 0 when it may proceed, or its error. */
static int op_check(const struct sq_op *op, const struct view *v)
{
    if (op->kind == OP_CREATE)
        return v->exists ? CORRAL_EEXISTS : 0;
    if (!v->exists)
        return CORRAL_ENOTFOUND;
    if (op->expect_rev && op->expect_rev != v->mod_rev)
        return CORRAL_ECONFLICT;
    return 0;
}

/* Builds the change for op (checked against v) at revision rev. Returns 0 or -ENOMEM. */
static int op_change(struct sq_store *s, struct sq_op *op, const struct view *v, int64_t rev,
                     struct corral_cache_change *ch)
{
    memset(ch, 0, sizeof(*ch));
    ch->rev = rev;
    ch->ts = wall_now();
    if (op->kind == OP_CREATE) {
        ch->type = CORRAL_EVENT_ADDED;
        ch->create_rev = rev;
    } else {
        ch->type = op->kind == OP_UPDATE ? CORRAL_EVENT_MODIFIED : CORRAL_EVENT_DELETED;
        ch->create_rev = v->create_rev;
        ch->prev_rev = v->mod_rev;
        ch->prev = corral_packed_ref(v->value);
    }
    /* A delete's value is the last state, at the deletion's revision. A written one is copied
     * so that this thread's arena holds it, not the writer's (cache_pack.h). */
    ch->value = op->kind == OP_DELETE ? corral_packed_ref(v->value) : corral_packed_copy(op->packed);
    ch->plain = op->kind == OP_DELETE ? corral_packed_blob(v->value, rev)
                                      : corral_store_doc_stamp(&op->doc, rev);
    if (!ch->value || !ch->plain || corral_cache_prepare(&s->cache, ch, op->key) != 0) {
        corral_cache_change_clear(ch);
        return -ENOMEM;
    }
    return 0;
}

/* Decides one write op of the batch, adding its change when it succeeds. */
static void op_decide(struct sq_store *s, struct sq_op *op)
{
    struct batch *b = &s->batch;
    struct view v;
    op->used_overlay = view_of(s, op->key, &v);
    op->rc = op_check(op, &v);
    if (op->rc != 0)
        return;
    struct corral_cache_change *ch = &b->ch[b->nch];
    op->rc = op_change(s, op, &v, s->rev + (int64_t)b->nch + 1, ch);
    if (op->rc != 0)
        return;
    op->change = ch;
    b->nch++;
    b->nadds += ch->type == CORRAL_EVENT_ADDED;
    v.key = op->key;
    v.exists = ch->type != CORRAL_EVENT_DELETED;
    v.create_rev = ch->create_rev;
    v.mod_rev = ch->rev;
    v.value = ch->value;
    view_set(s, &v);
}

/* ---- committing --------------------------------------------------------------------------- */

static void garbage_add(void *ctx, const struct corral_cache_event *ev)
{
    struct sq_store *s = ctx;
    int64_t rows[2];
    size_t n = 0;
    if (ev->prev_rev)
        rows[n++] = ev->prev_rev;
    if (ev->type == CORRAL_EVENT_DELETED)
        rows[n++] = ev->rev;
    if (s->ngarbage + n > s->garbage_cap) {
        size_t cap = s->garbage_cap ? s->garbage_cap * 2 : 1024;
        int64_t *g = realloc(s->garbage, cap * sizeof(*g));
        if (!g)
            return; /* the rows stay on disk; loading replays them harmlessly */
        s->garbage = g;
        s->garbage_cap = cap;
    }
    for (size_t i = 0; i < n; i++)
        s->garbage[s->ngarbage++] = rows[i];
}

/* Writes the batch's changes, the pending garbage and meta in one transaction. */
static int write_txn(struct sq_store *s, const struct batch *b)
{
    int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    for (size_t i = 0; rc == SQLITE_OK && i < b->nch; i++)
        rc = insert_row(s, &b->ch[i], b->ch[i].key);
    for (size_t i = 0; rc == SQLITE_OK && i < s->ngarbage; i++)
        rc = delete_row(s, s->garbage[i]);
    if (rc == SQLITE_OK && b->nch)
        rc = meta_set(s, "rev", b->ch[b->nch - 1].rev);
    if (rc == SQLITE_OK && s->compacted_mem != s->compacted_db)
        rc = meta_set(s, "compacted", s->compacted_mem);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        int sys = sqlite3_system_errno(s->db);
        corral_error(LOG, "%s: commit of %zu writes failed: %s%s%s", s->path, b->nch,
                     sqlite3_errmsg(s->db), sys ? ": " : "", sys ? strerror(sys) : "");
        if (!sqlite3_get_autocommit(s->db))
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return CORRAL_EUNAVAILABLE;
    }
    s->ngarbage = 0;
    s->compacted_db = s->compacted_mem;
    return 0;
}

static void note_commit(struct sq_store *s, uint64_t ns, size_t ops)
{
    __atomic_add_fetch(&s->commits, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&s->committed_ops, ops, __ATOMIC_RELAXED);
    __atomic_add_fetch(&s->commit_ns_total, ns, __ATOMIC_RELAXED);
    if (ns > __atomic_load_n(&s->commit_ns_max, __ATOMIC_RELAXED))
        __atomic_store_n(&s->commit_ns_max, ns, __ATOMIC_RELAXED);
}

/* Makes the decided batch durable and visible. Returns 0 or the error for its writes. */
static int batch_commit(struct sq_store *s, struct batch *b)
{
    if (b->nch == 0 && s->ngarbage == 0 && s->compacted_mem == s->compacted_db)
        return 0;
    int rc = corral_cache_reserve(&s->cache, b->nch, b->nadds);
    if (rc != 0)
        return rc;
    uint64_t t0 = corral_now_ns();
    rc = write_txn(s, b);
    if (rc != 0)
        return rc;
    note_commit(s, corral_now_ns() - t0, b->nch);
    for (size_t i = 0; i < b->nops; i++) {
        struct sq_op *op = b->ops[i];
        if (op->change && op->out) {
            op->out->value = corral_blob_ref(op->change->plain);
            op->out->create_rev = op->change->create_rev;
            op->out->mod_rev = op->change->rev;
        }
    }
    if (b->nch) {
        s->rev = b->ch[b->nch - 1].rev;
        corral_cache_apply(&s->cache, b->ch, b->nch, s->rev, garbage_add, s);
    }
    return 0;
}

static void compact_now(struct sq_store *s, int64_t upto)
{
    s->compacted_mem = corral_cache_compact(&s->cache, upto, wall_now(), garbage_add, s);
}

/* Clears the batch. Its keys may be gone already (the callers have returned). */
static void batch_reset(struct batch *b)
{
    for (size_t i = 0; i < b->npending; i++)
        b->slots[b->used[i]] = 0;
    b->nops = b->nch = b->nadds = b->npending = 0;
    b->compact_to = 0;
}

static void batch_run(struct sq_store *s)
{
    struct batch *b = &s->batch;
    for (size_t i = 0; i < b->nops; i++) {
        struct sq_op *op = b->ops[i];
        op->change = NULL;
        if (op->kind == OP_COMPACT) {
            op->rc = 0;
            if (op->expect_rev > b->compact_to)
                b->compact_to = op->expect_rev;
        } else {
            op_decide(s, op);
        }
    }
    int rc = batch_commit(s, b);
    if (rc != 0) {
        for (size_t i = 0; i < b->nch; i++)
            corral_cache_change_clear(&b->ch[i]);
        for (size_t i = 0; i < b->nops; i++)
            if (b->ops[i]->rc == 0 || b->ops[i]->used_overlay)
                b->ops[i]->rc = b->ops[i]->kind == OP_COMPACT ? 0 : rc;
    }
    compact_now(s, b->compact_to);
    for (size_t i = 0; i < b->nops; i++)
        sem_post(&b->ops[i]->done);
    batch_reset(b);
}

/* ---- the commit thread -------------------------------------------------------------------- */

/* Takes up to BATCH_MAX queued ops into the batch (q_mu held). */
static void queue_take(struct sq_store *s)
{
    struct batch *b = &s->batch;
    while (s->q_head && b->nops < BATCH_MAX) {
        struct sq_op *op = s->q_head;
        s->q_head = op->next;
        b->ops[b->nops++] = op;
    }
    if (!s->q_head)
        s->q_tail = &s->q_head;
}

/* Time-based retention, leftover garbage and the heap's free pages, once a second while idle. */
static void idle_work(struct sq_store *s)
{
    compact_now(s, 0);
    if (s->ngarbage || s->compacted_mem != s->compacted_db)
        batch_commit(s, &s->batch);
    corral_cache_trim(&s->cache);
}

static bool idle_pending(struct sq_store *s)
{
    return s->ngarbage || s->compacted_mem != s->compacted_db || s->cache.hist.n ||
           corral_cache_trim_due(&s->cache);
}

static void *commit_thread(void *arg)
{
    struct sq_store *s = arg;
    pthread_mutex_lock(&s->q_mu);
    for (;;) {
        while (!s->q_head && !s->closing) {
            if (!idle_pending(s)) {
                pthread_cond_wait(&s->q_cv, &s->q_mu);
                continue;
            }
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += 1;
            if (pthread_cond_timedwait(&s->q_cv, &s->q_mu, &ts) == ETIMEDOUT) {
                pthread_mutex_unlock(&s->q_mu);
                idle_work(s);
                pthread_mutex_lock(&s->q_mu);
            }
        }
        if (!s->q_head)
            break; /* closing, and everything queued is done */
        queue_take(s);
        pthread_mutex_unlock(&s->q_mu);
        batch_run(s);
        pthread_mutex_lock(&s->q_mu);
    }
    pthread_mutex_unlock(&s->q_mu);
    if (s->ngarbage || s->compacted_mem != s->compacted_db)
        batch_commit(s, &s->batch);
    return NULL;
}

/* Queues op and waits for the commit thread to finish it. Returns op->rc. */
static int submit(struct sq_store *s, struct sq_op *op)
{
    sem_init(&op->done, 0, 0);
    op->next = NULL;
    pthread_mutex_lock(&s->q_mu);
    if (s->closing) {
        pthread_mutex_unlock(&s->q_mu);
        sem_destroy(&op->done);
        return CORRAL_EUNAVAILABLE;
    }
    *s->q_tail = op;
    s->q_tail = &op->next;
    pthread_cond_signal(&s->q_cv);
    pthread_mutex_unlock(&s->q_mu);
    while (sem_wait(&op->done) != 0)
        ; /* EINTR */
    sem_destroy(&op->done);
    return op->rc;
}

/* ---- the ops ------------------------------------------------------------------------------ */

static int sq_get(struct corral_store *st, const char *key, struct corral_store_obj *out)
{
    return corral_cache_get(&sq(st)->cache, key, out);
}

static int sq_list(struct corral_store *st, const struct corral_store_list_opts *opts,
                   struct corral_store_list *out)
{
    return corral_cache_list(&sq(st)->cache, opts, out);
}

static int sq_write(struct corral_store *st, enum op_kind kind, const char *key, json_t *obj,
                    int64_t expect_rev, struct corral_store_obj *out)
{
    struct sq_op op = {.kind = kind, .key = key, .expect_rev = expect_rev, .out = out};
    if (obj) {
        int rc = corral_store_doc_make(obj, &op.doc);
        json_decref(obj);
        if (rc != 0)
            return rc;
        op.packed = corral_packer_pack(sq(st)->cache.packer, op.doc.json, op.doc.len,
                                       op.doc.ph_off, op.doc.ph_len);
        if (!op.packed) {
            corral_store_doc_clear(&op.doc);
            return -ENOMEM;
        }
    }
    int rc = submit(sq(st), &op);
    corral_store_doc_clear(&op.doc);
    corral_packed_unref(op.packed);
    return rc;
}

static int sq_create(struct corral_store *st, const char *key, json_t *obj,
                     struct corral_store_obj *out)
{
    return sq_write(st, OP_CREATE, key, obj, 0, out);
}

static int sq_update(struct corral_store *st, const char *key, json_t *obj, int64_t expect_rev,
                     struct corral_store_obj *out)
{
    return sq_write(st, OP_UPDATE, key, obj, expect_rev, out);
}

static int sq_remove(struct corral_store *st, const char *key, int64_t expect_rev,
                     struct corral_store_obj *out)
{
    return sq_write(st, OP_DELETE, key, NULL, expect_rev, out);
}

static int sq_snapshot(struct corral_store *st, const struct corral_store_list_opts *opts,
                       struct corral_store_snapshot **out)
{
    return corral_cache_snapshot(&sq(st)->cache, opts, out);
}

static int sq_events(struct corral_store *st, const char *prefix, int64_t after,
                     struct corral_store_event *out, size_t max, int timeout_ms, int64_t *seen)
{
    return corral_cache_events(&sq(st)->cache, prefix, after, out, max, timeout_ms, seen);
}

static int sq_compact(struct corral_store *st, int64_t rev)
{
    struct sq_op op = {.kind = OP_COMPACT, .key = "", .expect_rev = rev};
    return submit(sq(st), &op);
}

static void sq_stats(struct corral_store *st, struct corral_store_stats *out)
{
    struct sq_store *s = sq(st);
    corral_cache_stats(&s->cache, out);
    out->commits = __atomic_load_n(&s->commits, __ATOMIC_RELAXED);
    out->committed_ops = __atomic_load_n(&s->committed_ops, __ATOMIC_RELAXED);
    out->commit_ns_total = __atomic_load_n(&s->commit_ns_total, __ATOMIC_RELAXED);
    out->commit_ns_max = __atomic_load_n(&s->commit_ns_max, __ATOMIC_RELAXED);
}

static int64_t sq_revision(struct corral_store *st)
{
    return corral_cache_revision(&sq(st)->cache);
}

static void sq_set_retention(struct corral_store *st, const struct corral_store_retention *r)
{
    corral_cache_set_retention(&sq(st)->cache, r);
    sq_compact(st, 0); /* apply it now */
}

static void sq_free(struct sq_store *s)
{
    sqlite3_finalize(s->ins);
    sqlite3_finalize(s->set_meta);
    sqlite3_finalize(s->del_row);
    if (s->db && sqlite3_close(s->db) != SQLITE_OK)
        corral_error(LOG, "%s: close: %s", s->path, sqlite3_errmsg(s->db));
    corral_cache_destroy(&s->cache);
    pthread_cond_destroy(&s->q_cv);
    pthread_mutex_destroy(&s->q_mu);
    free(s->garbage);
    free(s->path);
    free(s);
}

/* Refuses new writes, lets the commit thread drain the queue and exit, ends watch waits. */
static void sq_shutdown(struct corral_store *st)
{
    struct sq_store *s = sq(st);
    pthread_mutex_lock(&s->q_mu);
    s->closing = true;
    pthread_cond_signal(&s->q_cv);
    bool join = s->thread_started;
    s->thread_started = false;
    pthread_mutex_unlock(&s->q_mu);
    if (join)
        pthread_join(s->thread, NULL);
    corral_cache_shutdown(&s->cache);
}

static void sq_close(struct corral_store *st)
{
    sq_shutdown(st);
    sq_free(sq(st));
}

static const struct corral_store_ops sqlite_ops = {
    .name = "sqlite",
    .get = sq_get,
    .list = sq_list,
    .create = sq_create,
    .update = sq_update,
    .remove = sq_remove,
    .events = sq_events,
    .compact = sq_compact,
    .stats = sq_stats,
    .close = sq_close,
    .revision = sq_revision,
    .set_retention = sq_set_retention,
    .shutdown = sq_shutdown,
    .snapshot = sq_snapshot,
};

/* ---- opening ------------------------------------------------------------------------------ */

/* Sets the pragmas; refuses a file that is not ours or is held by another process. */
static int db_configure(struct sq_store *s)
{
    char mode[16], app[32];
    if (sql_exec(s, "PRAGMA locking_mode=EXCLUSIVE") != SQLITE_OK)
        return CORRAL_EUNAVAILABLE;
    int rc = sql_text(s, "PRAGMA journal_mode=WAL", mode, sizeof(mode));
    if (rc == SQLITE_BUSY) {
        corral_error(LOG, "%s: in use by another process", s->path);
        return CORRAL_EUNAVAILABLE;
    }
    if (rc != SQLITE_OK || strcmp(mode, "wal") != 0) {
        corral_error(LOG, "%s: cannot enable WAL mode: %s", s->path,
                     rc != SQLITE_OK ? sqlite3_errstr(rc) : mode);
        return CORRAL_EUNAVAILABLE;
    }
    if (sql_exec(s, "PRAGMA synchronous=FULL") != SQLITE_OK ||
        sql_exec(s, "PRAGMA journal_size_limit=67108864") != SQLITE_OK ||
        sql_text(s, "PRAGMA application_id", app, sizeof(app)) != SQLITE_OK)
        return CORRAL_EUNAVAILABLE;
    long id = strtol(app, NULL, 10);
    if (id != 0 && id != APP_ID) {
        corral_error(LOG, "%s: not a corral database (application_id %ld)", s->path, id);
        return CORRAL_EUNAVAILABLE;
    }
    return 0;
}

static int db_schema(struct sq_store *s)
{
    static const char schema[] =
        "BEGIN;"
        "PRAGMA application_id=1668248113;"
        "CREATE TABLE IF NOT EXISTS kv(rev INTEGER PRIMARY KEY, key TEXT NOT NULL,"
        " create_rev INTEGER NOT NULL, deleted INTEGER NOT NULL, ts INTEGER NOT NULL,"
        " rv_off INTEGER NOT NULL, value BLOB NOT NULL);"
        "CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL)"
        " WITHOUT ROWID;"
        "INSERT OR IGNORE INTO meta VALUES('schema',1),('rev',0),('compacted',0);"
        "COMMIT;";
    _Static_assert(APP_ID == 1668248113, "application_id in the schema");
    if (sql_exec(s, schema) != SQLITE_OK) {
        if (!sqlite3_get_autocommit(s->db))
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return CORRAL_EUNAVAILABLE;
    }
    int64_t version;
    if (meta_get(s, "schema", &version) != SQLITE_OK || version != SCHEMA_VERSION) {
        corral_error(LOG, "%s: schema version %lld, this corral reads %d", s->path,
                     (long long)version, SCHEMA_VERSION);
        return CORRAL_EUNAVAILABLE;
    }
    return 0;
}

/* Replays one kv row into the cache. */
static int load_row(struct sq_store *s, sqlite3_stmt *st)
{
    int64_t rev = sqlite3_column_int64(st, 0);
    const char *key = (const char *)sqlite3_column_text(st, 1);
    int64_t create_rev = sqlite3_column_int64(st, 2);
    bool deleted = sqlite3_column_int(st, 3) != 0;
    int64_t ts = sqlite3_column_int64(st, 4);
    int64_t rv_off = sqlite3_column_int64(st, 5);
    const void *data = sqlite3_column_blob(st, 6);
    size_t len = (size_t)sqlite3_column_bytes(st, 6);
    if (!key || !data || rv_off <= 0 || (uint64_t)rv_off >= len || rv_off > UINT32_MAX) {
        corral_error(LOG, "%s: row %lld is damaged", s->path, (long long)rev);
        return CORRAL_EUNAVAILABLE;
    }
    size_t digits = corral_store_rev_digits(data, len, (size_t)rv_off, rev);
    if (digits == 0) {
        corral_error(LOG, "%s: row %lld: resourceVersion does not match", s->path, (long long)rev);
        return CORRAL_EUNAVAILABLE;
    }
    struct corral_packed *p = NULL;
    if (!deleted) { /* a deletion row stands for the state it deletes, which memory has */
        p = corral_packer_pack(s->cache.packer, data, len, (size_t)rv_off, digits);
        if (!p)
            return -ENOMEM;
    }
    int rc = corral_cache_load(&s->cache, key, p, create_rev, rev, deleted, ts, garbage_add, s);
    if (rc == CORRAL_EINTERNAL) {
        corral_warn(LOG, "%s: row %lld deletes absent %s; ignored", s->path, (long long)rev, key);
        rc = 0;
    }
    if (rev > s->rev)
        s->rev = rev;
    return rc;
}

static int db_load(struct sq_store *s)
{
    int64_t rev, compacted;
    if (meta_get(s, "rev", &rev) != SQLITE_OK || meta_get(s, "compacted", &compacted) != SQLITE_OK)
        return CORRAL_EUNAVAILABLE;
    corral_cache_set_loaded(&s->cache, 0, compacted);
    s->compacted_db = s->compacted_mem = compacted;
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT rev, key, create_rev, deleted, ts, rv_off, value FROM kv"
                                " ORDER BY rev",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return CORRAL_EUNAVAILABLE;
    int err = 0;
    while (err == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
        err = load_row(s, st);
    sqlite3_finalize(st);
    if (err == 0 && rc != SQLITE_DONE) {
        corral_error(LOG, "%s: reading: %s", s->path, sqlite3_errstr(rc));
        err = CORRAL_EUNAVAILABLE;
    }
    if (err)
        return err;
    if (rev > s->rev)
        s->rev = rev;
    corral_cache_set_loaded(&s->cache, s->rev, compacted);
    compact_now(s, 0); /* the retention may have changed, or time passed */
    return 0;
}

static int db_prepare(struct sq_store *s)
{
    if (sqlite3_prepare_v3(s->db,
                           "INSERT INTO kv(rev, key, create_rev, deleted, ts, rv_off, value)"
                           " VALUES(?,?,?,?,?,?,?)",
                           -1, SQLITE_PREPARE_PERSISTENT, &s->ins, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(s->db, "UPDATE meta SET value=?2 WHERE name=?1", -1,
                           SQLITE_PREPARE_PERSISTENT, &s->set_meta, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(s->db, "DELETE FROM kv WHERE rev=?", -1, SQLITE_PREPARE_PERSISTENT,
                           &s->del_row, NULL) != SQLITE_OK) {
        corral_error(LOG, "%s: %s", s->path, sqlite3_errmsg(s->db));
        return CORRAL_EUNAVAILABLE;
    }
    return 0;
}

/* Makes the directory entries of a new database and WAL durable too. Returns 0 or -errno. */
static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        int err = -errno;
        corral_error(LOG, "%s: %s", dir, strerror(errno));
        if (fd >= 0)
            close(fd);
        return err;
    }
    close(fd);
    return 0;
}

static int db_open(struct sq_store *s, const char *dir)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        int err = -errno;
        corral_error(LOG, "%s: %s", dir, strerror(errno));
        return err;
    }
    if (asprintf(&s->path, "%s/corral.db", dir) < 0) {
        s->path = NULL;
        return -ENOMEM;
    }
    int rc = sqlite3_open_v2(
        s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        corral_error(LOG, "%s: %s", s->path, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        return CORRAL_EUNAVAILABLE;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, 200);
    int err = db_configure(s);
    if (err == 0)
        err = db_schema(s);
    if (err == 0)
        err = sync_dir(dir);
    if (err == 0)
        err = db_prepare(s);
    if (err == 0)
        err = db_load(s);
    return err;
}

static struct sq_store *sq_alloc(void)
{
    struct sq_store *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    if (corral_cache_init(&s->cache) != 0) {
        free(s);
        return NULL;
    }
    s->base.ops = &sqlite_ops;
    s->q_tail = &s->q_head;
    pthread_mutex_init(&s->q_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->q_cv, &ca);
    pthread_condattr_destroy(&ca);
    return s;
}

int corral_store_open_sqlite(const char *dir, struct corral_store **out)
{
    if (!dir || !*dir || !out)
        return -EINVAL;
    *out = NULL;
    struct sq_store *s = sq_alloc();
    if (!s)
        return -ENOMEM;
    uint64_t t0 = corral_now_ns();
    int err = db_open(s, dir);
    if (err != 0)
        goto err_free;
    int rc = pthread_create(&s->thread, NULL, commit_thread, s);
    if (rc != 0) {
        err = -rc;
        goto err_free;
    }
    s->thread_started = true;
    struct corral_store_stats stats;
    corral_cache_stats(&s->cache, &stats);
    corral_info(LOG, "%s: %llu objects, revision %lld, %llu history events, loaded in %.0f ms",
                s->path, (unsigned long long)stats.objects, (long long)stats.rev,
                (unsigned long long)stats.history_events, (corral_now_ns() - t0) / 1e6);
    *out = &s->base;
    return 0;

err_free:
    sq_free(s);
    return err;
}
