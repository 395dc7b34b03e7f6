/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cache_pack: packed objects, their classes and dictionaries (see cache_pack.h).
 *
 * Locking: the packer's mutex guards the class table and each class's schedule, samples and
 * current dictionary; it is held for a lookup and a few counters per pack, never while
 * compressing or training. Reference counts and the live-byte counters are atomics.
 *
 * Invariants: a class's `cur` is its `none` dictionary (version 0, no zstd dictionary) or a
 * trained one; a packed object with zlen == len holds its text as it is and references its
 * class's `none`; every dictionary referenced by a packed object belongs to that object's class.
 */
#include "cache_pack.h"
#include "store_backend.h"

#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zdict.h>
#include <zstd.h>

#define LOG "store"
#define LEVEL 1                     /* zstd level: with a dictionary, 3 saves 2 % more */
#define SAMPLES 64                  /* recent objects a class trains from */
#define SAMPLE_MAX (16u << 10)      /* larger objects are not sampled */
#define FIRST_TRAIN 64              /* writes before the first dictionary */
#define TRAIN_STEP_MAX 65536        /* most writes between two trainings */
#define TRAIN_MIN_LIVE (64u << 10)  /* live plain bytes a class needs for a dictionary */
#define DICT_MIN 4096
#define DICT_MAX 16384
#define RAW_MAX 1024                /* without a dictionary, smaller objects stay as they are */
#define ADOPT_PCT 90                /* a new dictionary must pack the samples to <= 90 % */
#define DRIFT_MIN_PLAIN (256u << 10) /* plain bytes written before drift is judged */
#define CLASS_SLOTS 512             /* hash table of kinds, a power of two above CLASS_MAX */
#define CLASS_MAX 256               /* beyond this many kinds, new kinds share the class "" */
#define KIND_MAX 63
#define CTX_BUF_KEEP (64u << 10) /* larger buffers are freed after use */
#define CTX_ZSTD_KEEP (256u << 10) /* so is a larger compression context */

struct pack_class;

struct corral_pack_dict {
    int refs; /* atomic */
    uint32_t version;
    struct pack_class *cls;
    ZSTD_CDict *cd; /* NULL for a class's version 0 */
    ZSTD_DDict *dd;
    size_t mem;
};

struct sample {
    char *data;
    size_t len;
};

struct pack_class {
    char kind[KIND_MAX + 1];
    struct corral_packer *pk;
    struct corral_pack_dict *none;
    struct corral_pack_dict *cur;
    uint64_t live_plain; /* atomic: plain bytes of this class's live packed objects */
    uint64_t writes;
    uint64_t next_train;
    uint32_t versions;
    bool training;
    uint64_t since_plain, since_packed; /* atomic: written since the current dictionary */
    double adopt_ratio;                 /* packed/plain of the samples at adoption */
    struct sample samples[SAMPLES];     /* a ring of the newest */
    size_t nsamples, sample_next;
};

struct corral_packer {
    pthread_mutex_t mu;
    struct pack_class *slots[CLASS_SLOTS];
    size_t nclasses;
    uint64_t trainings, adoptions;               /* under mu */
    uint64_t dicts, dict_bytes;                  /* atomic */
    uint64_t live_plain, live_packed;            /* atomic */
};

/* ---- zstd contexts ------------------------------------------------------------------------- */

/*
 * Contexts are shared by every thread through a free list: a context is held only while one
 * object is (un)packed, so there are about as many as threads packing at once (a few), not one
 * per thread that ever packed (the apiserver runs dozens of workers; a compression context
 * grows to 47 KB and a decompression one is 96 KB). The list lives as long as the process.
 */
struct zctx {
    ZSTD_CCtx *cc;
    ZSTD_DCtx *dc;
    char *buf; /* the text without its digits */
    size_t cap;
    char *zbuf; /* compressed output */
    size_t zcap;
    struct zctx *next;
};

static pthread_mutex_t ctx_mu = PTHREAD_MUTEX_INITIALIZER;
static struct zctx *ctx_free;

static void ctx_destroy(struct zctx *t)
{
    ZSTD_freeCCtx(t->cc);
    ZSTD_freeDCtx(t->dc);
    free(t->buf);
    free(t->zbuf);
    free(t);
}

/* A context from the free list, or a new one; NULL on ENOMEM. Give it back with ctx_put. */
static struct zctx *ctx_get(void)
{
    pthread_mutex_lock(&ctx_mu);
    struct zctx *t = ctx_free;
    if (t)
        ctx_free = t->next;
    pthread_mutex_unlock(&ctx_mu);
    if (t)
        return t;
    if (!(t = calloc(1, sizeof(*t))))
        return NULL;
    t->cc = ZSTD_createCCtx();
    t->dc = ZSTD_createDCtx();
    if (!t->cc || !t->dc) {
        ctx_destroy(t);
        return NULL;
    }
    /* The length and the dictionary are known from elsewhere: no frame fields for them. */
    ZSTD_CCtx_setParameter(t->cc, ZSTD_c_compressionLevel, LEVEL);
    ZSTD_CCtx_setParameter(t->cc, ZSTD_c_contentSizeFlag, 0);
    ZSTD_CCtx_setParameter(t->cc, ZSTD_c_checksumFlag, 0);
    ZSTD_CCtx_setParameter(t->cc, ZSTD_c_dictIDFlag, 0);
    return t;
}

static void ctx_put(struct zctx *t)
{
    if (ZSTD_sizeof_CCtx(t->cc) > CTX_ZSTD_KEEP) { /* grown by a large object */
        ctx_destroy(t);
        return;
    }
    if (t->zcap > CTX_BUF_KEEP) { /* a large object passed: do not keep its buffers */
        free(t->zbuf);
        t->zbuf = NULL;
        t->zcap = 0;
    }
    if (t->cap > CTX_BUF_KEEP) {
        free(t->buf);
        t->buf = NULL;
        t->cap = 0;
    }
    pthread_mutex_lock(&ctx_mu);
    t->next = ctx_free;
    ctx_free = t;
    pthread_mutex_unlock(&ctx_mu);
}

static int grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t ncap = need < 4096 ? 4096 : need + need / 2;
    char *nb = realloc(*buf, ncap);
    if (!nb)
        return -ENOMEM;
    *buf = nb;
    *cap = ncap;
    return 0;
}

/* Compresses src into t->zbuf. Returns the frame's length, or 0 when it is not smaller. */
static size_t compress_with(struct zctx *t, const ZSTD_CDict *cd, const char *src, size_t n)
{
    if (grow(&t->zbuf, &t->zcap, ZSTD_compressBound(n)) != 0)
        return 0;
    ZSTD_CCtx_reset(t->cc, ZSTD_reset_session_only);
    if (ZSTD_isError(ZSTD_CCtx_refCDict(t->cc, cd)))
        return 0;
    size_t z = ZSTD_compress2(t->cc, t->zbuf, t->zcap, src, n);
    return ZSTD_isError(z) || z >= n ? 0 : z;
}

/* ---- dictionaries ------------------------------------------------------------------------- */

static struct corral_pack_dict *dict_ref(struct corral_pack_dict *d)
{
    __atomic_add_fetch(&d->refs, 1, __ATOMIC_RELAXED);
    return d;
}

static void dict_unref(struct corral_pack_dict *d)
{
    if (!d || __atomic_sub_fetch(&d->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    struct corral_packer *pk = d->cls->pk;
    if (d->cd) {
        __atomic_sub_fetch(&pk->dicts, 1, __ATOMIC_RELAXED);
        __atomic_sub_fetch(&pk->dict_bytes, d->mem, __ATOMIC_RELAXED);
    }
    ZSTD_freeCDict(d->cd);
    ZSTD_freeDDict(d->dd);
    free(d);
}

/* A new dictionary of cls from content (NULL: version 0). NULL on ENOMEM. */
static struct corral_pack_dict *dict_new(struct pack_class *cls, const void *content, size_t len)
{
    struct corral_pack_dict *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->refs = 1;
    d->cls = cls;
    d->mem = sizeof(*d);
    if (content) {
        d->cd = ZSTD_createCDict(content, len, LEVEL);
        d->dd = ZSTD_createDDict(content, len);
        if (!d->cd || !d->dd) {
            ZSTD_freeCDict(d->cd);
            ZSTD_freeDDict(d->dd);
            free(d);
            return NULL;
        }
        d->mem += ZSTD_sizeof_CDict(d->cd) + ZSTD_sizeof_DDict(d->dd);
        __atomic_add_fetch(&cls->pk->dicts, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&cls->pk->dict_bytes, d->mem, __ATOMIC_RELAXED);
    }
    return d;
}

/* ---- classes ------------------------------------------------------------------------------ */

static void skip_ws(const char **p, const char *end)
{
    while (*p < end && (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r'))
        (*p)++;
}

/* Moves past the string at *p (on its opening quote). Sets *esc when it holds an escape. */
static int skip_string(const char **p, const char *end, bool *esc)
{
    (*p)++;
    while (*p < end) {
        char c = *(*p)++;
        if (c == '\\') {
            *esc = true;
            if (*p >= end)
                return -1;
            (*p)++;
        } else if (c == '"') {
            return 0;
        }
    }
    return -1;
}

static int skip_value(const char **p, const char *end)
{
    bool esc;
    if (*p < end && **p == '"')
        return skip_string(p, end, &esc);
    int depth = 0;
    while (*p < end) {
        char c = **p;
        if (c == '"') {
            if (skip_string(p, end, &esc) < 0)
                return -1;
            continue;
        }
        if (depth == 0 && (c == ',' || c == '}' || c == ']'))
            return 0;
        (*p)++;
        if (c == '{' || c == '[')
            depth++;
        else if ((c == '}' || c == ']') && --depth == 0)
            return 0;
    }
    return depth == 0 ? 0 : -1;
}

/* The top-level "kind" of a JSON object text: returns its length (0: none) and *kind. */
static size_t scan_kind(const char *text, size_t len, const char **kind)
{
    const char *p = text, *end = text + len;
    skip_ws(&p, end);
    if (p >= end || *p++ != '{')
        return 0;
    for (;;) {
        skip_ws(&p, end);
        if (p >= end || *p != '"')
            return 0;
        const char *k = p + 1;
        bool esc = false;
        if (skip_string(&p, end, &esc) < 0)
            return 0;
        bool is_kind = !esc && p - k == 5 && memcmp(k, "kind\"", 5) == 0;
        skip_ws(&p, end);
        if (p >= end || *p++ != ':')
            return 0;
        skip_ws(&p, end);
        if (is_kind) {
            if (p >= end || *p != '"')
                return 0;
            const char *v = p + 1;
            esc = false;
            if (skip_string(&p, end, &esc) < 0 || esc)
                return 0;
            *kind = v;
            return (size_t)(p - 1 - v);
        }
        if (skip_value(&p, end) < 0)
            return 0;
        skip_ws(&p, end);
        if (p >= end || *p++ != ',')
            return 0;
    }
}

static uint32_t kind_hash(const char *kind, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)kind[i]) * 16777619u;
    return h;
}

static struct pack_class *class_new(struct corral_packer *pk, const char *kind, size_t len)
{
    struct pack_class *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    memcpy(c->kind, kind, len);
    c->pk = pk;
    c->next_train = FIRST_TRAIN;
    c->none = dict_new(c, NULL, 0);
    if (!c->none) {
        free(c);
        return NULL;
    }
    c->cur = dict_ref(c->none);
    return c;
}

/* The class of kind, made when new (mu held). NULL on ENOMEM. */
static struct pack_class *class_find(struct corral_packer *pk, const char *kind, size_t len)
{
    if (len > KIND_MAX)
        len = 0;
    uint32_t i = kind_hash(kind, len) & (CLASS_SLOTS - 1);
    for (struct pack_class *c; (c = pk->slots[i]); i = (i + 1) & (CLASS_SLOTS - 1))
        if (strlen(c->kind) == len && memcmp(c->kind, kind, len) == 0)
            return c;
    if (pk->nclasses >= CLASS_MAX && len)
        return class_find(pk, "", 0);
    struct pack_class *c = class_new(pk, kind, len);
    if (c) {
        pk->slots[i] = c;
        pk->nclasses++;
    }
    return c;
}

static void class_free(struct pack_class *c)
{
    for (size_t i = 0; i < c->nsamples; i++)
        free(c->samples[i].data);
    dict_unref(c->cur);
    dict_unref(c->none);
    free(c);
}

/* Keeps a copy of src among the class's newest samples (mu held); skipped on ENOMEM. */
static void sample_push(struct pack_class *c, const char *src, size_t n)
{
    if (n > SAMPLE_MAX)
        return;
    char *copy = malloc(n ? n : 1);
    if (!copy)
        return;
    memcpy(copy, src, n);
    struct sample *s = &c->samples[c->sample_next];
    if (c->nsamples == SAMPLES)
        free(s->data);
    else
        c->nsamples++;
    *s = (struct sample){copy, n};
    c->sample_next = (c->sample_next + 1) % SAMPLES;
}

/* What one pack does outside the lock: its dictionary, and a training when it made one due. */
struct plan {
    struct pack_class *cls;
    struct corral_pack_dict *dict; /* reference */
    bool train;
    struct corral_pack_dict *old; /* reference: the dictionary a training competes with */
    struct sample taken[SAMPLES];
    size_t ntaken;
};

static uint64_t next_step(uint64_t writes)
{
    uint64_t step = writes * 15;
    return writes + (step < TRAIN_STEP_MAX ? step : TRAIN_STEP_MAX);
}

/* Decides, for one write of n bytes to cls, whether a training is due (mu held). */
static void class_schedule(struct pack_class *c, const char *src, size_t n, struct plan *plan)
{
    c->writes++;
    uint64_t plain = __atomic_load_n(&c->since_plain, __ATOMIC_RELAXED);
    if (c->cur->cd && plain >= DRIFT_MIN_PLAIN &&
        (double)__atomic_load_n(&c->since_packed, __ATOMIC_RELAXED) >
            2.0 * c->adopt_ratio * (double)plain &&
        c->next_train > c->writes + SAMPLES) {
        c->next_train = c->writes + SAMPLES; /* drifted: train again on fresh samples */
        __atomic_store_n(&c->since_plain, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&c->since_packed, 0, __ATOMIC_RELAXED);
    }
    if (c->writes + SAMPLES > c->next_train)
        sample_push(c, src, n);
    if (c->training || c->writes < c->next_train)
        return;
    if (__atomic_load_n(&c->live_plain, __ATOMIC_RELAXED) + n < TRAIN_MIN_LIVE ||
        c->nsamples < SAMPLES / 4) {
        c->next_train = c->writes + (c->writes > SAMPLES ? c->writes : SAMPLES);
        return;
    }
    c->training = true;
    plan->train = true;
    plan->old = dict_ref(c->cur);
    memcpy(plan->taken, c->samples, c->nsamples * sizeof(*c->samples));
    plan->ntaken = c->nsamples;
    c->nsamples = c->sample_next = 0;
}

/* Looks the class up and takes its dictionary; sets up a training when one is due. */
static int plan_make(struct corral_packer *pk, const char *src, size_t n, struct plan *plan)
{
    const char *kind = "";
    size_t klen = scan_kind(src, n, &kind);
    memset(plan, 0, sizeof(*plan));
    pthread_mutex_lock(&pk->mu);
    struct pack_class *c = class_find(pk, kind, klen);
    if (c) {
        plan->cls = c;
        plan->dict = dict_ref(c->cur);
        class_schedule(c, src, n, plan);
    }
    pthread_mutex_unlock(&pk->mu);
    return c ? 0 : -ENOMEM;
}

/* ---- training ----------------------------------------------------------------------------- */

/* Bytes the samples take packed with d (as corral_packer_pack would store them). */
static size_t sample_cost(struct zctx *t, const struct corral_pack_dict *d,
                          const struct sample *s, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t z = 0;
        if (d->cd || s[i].len >= RAW_MAX)
            z = compress_with(t, d->cd, s[i].data, s[i].len);
        total += z ? z : s[i].len;
    }
    return total;
}

/*
 * Trains a dictionary from the samples: zstd's trainer, or, when it declines (too few or too
 * alike samples), the newest samples themselves as raw content. Returns it or NULL.
 */
static struct corral_pack_dict *dict_train(struct pack_class *c, const struct sample *s, size_t n,
                                           size_t plain)
{
    size_t cap = 2 * plain / n;
    cap = cap < DICT_MIN ? DICT_MIN : cap > DICT_MAX ? DICT_MAX : cap;
    char *all = malloc(plain), *dict = malloc(cap);
    size_t *sizes = malloc(n * sizeof(*sizes));
    struct corral_pack_dict *d = NULL;
    if (!all || !dict || !sizes)
        goto out;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(all + off, s[i].data, s[i].len);
        off += s[i].len;
        sizes[i] = s[i].len;
    }
    size_t dl = ZDICT_trainFromBuffer(dict, cap, all, sizes, (unsigned)n);
    if (ZDICT_isError(dl)) {
        dl = plain < cap ? plain : cap; /* the newest bytes last: zstd prefers near matches */
        memcpy(dict, all + plain - dl, dl);
    }
    d = dict_new(c, dict, dl);
out:
    free(all);
    free(dict);
    free(sizes);
    return d;
}

static void plan_train(struct corral_packer *pk, struct plan *plan)
{
    struct pack_class *c = plan->cls;
    struct zctx *t = ctx_get();
    size_t plain = 0, before = 0, after = 0;
    for (size_t i = 0; i < plan->ntaken; i++)
        plain += plan->taken[i].len;
    struct corral_pack_dict *d = t && plain ? dict_train(c, plan->taken, plan->ntaken, plain)
                                            : NULL;
    if (d) {
        before = sample_cost(t, plan->old, plan->taken, plan->ntaken);
        after = sample_cost(t, d, plan->taken, plan->ntaken);
    }
    bool adopt = d && after * 100 <= before * ADOPT_PCT;
    struct corral_pack_dict *drop = adopt ? NULL : d;
    pthread_mutex_lock(&pk->mu);
    pk->trainings += d != NULL;
    if (adopt) {
        drop = c->cur;
        c->cur = d;
        d->version = ++c->versions;
        c->adopt_ratio = (double)after / (double)plain;
        __atomic_store_n(&c->since_plain, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&c->since_packed, 0, __ATOMIC_RELAXED);
        pk->adoptions++;
    }
    c->training = false;
    c->next_train = next_step(c->writes);
    pthread_mutex_unlock(&pk->mu);
    if (d)
        corral_debug(LOG, "kind \"%s\": dictionary from %zu objects packs them %zu -> %zu bytes"
                     " (%zu before)%s", c->kind, plan->ntaken, plain, after, before,
                     adopt ? ", adopted" : "");
    if (t)
        ctx_put(t);
    dict_unref(drop);
    dict_unref(plan->old);
    for (size_t i = 0; i < plan->ntaken; i++)
        free(plan->taken[i].data);
}

/* ---- packing ------------------------------------------------------------------------------ */

static size_t ndigits(int64_t v)
{
    size_t n = 1;
    for (uint64_t u = v < 0 ? 0 : (uint64_t)v; u >= 10; u /= 10)
        n++;
    return n;
}

/* Counts p among the live objects of its class. */
static void count_live(const struct corral_packed *p)
{
    struct pack_class *c = p->dict->cls;
    __atomic_add_fetch(&c->live_plain, p->len, __ATOMIC_RELAXED);
    __atomic_add_fetch(&c->pk->live_plain, p->len, __ATOMIC_RELAXED);
    __atomic_add_fetch(&c->pk->live_packed, corral_packed_size(p), __ATOMIC_RELAXED);
}

/* A packed object for src (n bytes) with d (reference stolen, swapped for version 0 when the
 * text stays as it is). NULL on ENOMEM. */
static struct corral_packed *pack_with(struct zctx *t, struct corral_pack_dict *d,
                                       const char *src, size_t n, size_t rv_off)
{
    size_t z = 0;
    if (d->cd || n >= RAW_MAX)
        z = compress_with(t, d->cd, src, n);
    if (z == 0 && d != d->cls->none) {
        dict_unref(d);
        d = dict_ref(d->cls->none);
    }
    size_t dl = z ? z : n;
    struct corral_packed *p = malloc(sizeof(*p) + dl);
    if (!p) {
        dict_unref(d);
        return NULL;
    }
    p->refs = 1;
    p->rv_off = (uint32_t)rv_off;
    p->len = (uint32_t)n;
    p->zlen = (uint32_t)dl;
    p->dict = d;
    memcpy(p->data, z ? t->zbuf : src, dl);
    __atomic_add_fetch(&d->cls->since_plain, n, __ATOMIC_RELAXED);
    __atomic_add_fetch(&d->cls->since_packed, dl, __ATOMIC_RELAXED);
    count_live(p);
    return p;
}

struct corral_packed *corral_packer_pack(struct corral_packer *pk, const char *text, size_t len,
                                         size_t rv_off, size_t rv_len)
{
    if (rv_off > len || rv_len > len - rv_off || (rv_off == 0 && rv_len) ||
        len - rv_len > UINT32_MAX || rv_off > UINT32_MAX)
        return NULL;
    struct zctx *t = ctx_get();
    if (!t)
        return NULL;
    struct corral_packed *p = NULL;
    struct plan plan = {0};
    size_t n = len - rv_len;
    const char *src = text;
    if (rv_len) {
        if (grow(&t->buf, &t->cap, n ? n : 1) != 0)
            goto out;
        memcpy(t->buf, text, rv_off);
        memcpy(t->buf + rv_off, text + rv_off + rv_len, len - rv_off - rv_len);
        src = t->buf;
    }
    if (plan_make(pk, src, n, &plan) == 0)
        p = pack_with(t, plan.dict, src, n, rv_off);
out:
    ctx_put(t);
    if (plan.train)
        plan_train(pk, &plan);
    return p;
}

struct corral_packed *corral_packer_pack_blob(struct corral_packer *pk,
                                              const struct corral_blob *b)
{
    size_t n = 0;
    while (b->rv_off && b->rv_off + n < b->len && b->data[b->rv_off + n] >= '0' &&
           b->data[b->rv_off + n] <= '9')
        n++;
    return corral_packer_pack(pk, b->data, b->len, b->rv_off, n);
}

struct corral_packed *corral_packed_copy(const struct corral_packed *p)
{
    struct corral_packed *q = malloc(corral_packed_size(p));
    if (!q)
        return NULL;
    memcpy(q, p, corral_packed_size(p));
    q->refs = 1;
    if (q->dict) {
        dict_ref(q->dict);
        count_live(q);
    }
    return q;
}

struct corral_packed *corral_packed_raw(const char *text, size_t len)
{
    if (len > UINT32_MAX)
        return NULL;
    struct corral_packed *p = malloc(sizeof(*p) + len);
    if (!p)
        return NULL;
    *p = (struct corral_packed){.refs = 1, .len = (uint32_t)len, .zlen = (uint32_t)len};
    memcpy(p->data, text, len);
    return p;
}

struct corral_packed *corral_packed_ref(struct corral_packed *p)
{
    if (p)
        __atomic_add_fetch(&p->refs, 1, __ATOMIC_RELAXED);
    return p;
}

void corral_packed_unref(struct corral_packed *p)
{
    if (!p || __atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    struct corral_pack_dict *d = p->dict;
    if (d) {
        struct corral_packer *pk = d->cls->pk;
        __atomic_sub_fetch(&d->cls->live_plain, p->len, __ATOMIC_RELAXED);
        __atomic_sub_fetch(&pk->live_plain, p->len, __ATOMIC_RELAXED);
        __atomic_sub_fetch(&pk->live_packed, corral_packed_size(p), __ATOMIC_RELAXED);
        dict_unref(d);
    }
    free(p);
}

size_t corral_packed_plain_len(const struct corral_packed *p, int64_t rev)
{
    return p->len + (p->rv_off ? ndigits(rev) : 0);
}

size_t corral_packed_size(const struct corral_packed *p)
{
    return sizeof(*p) + p->zlen;
}

/* Decodes p's text into out (p->len bytes). Returns 0 or -1 (logged). */
static int unpack_into(const struct corral_packed *p, char *out)
{
    if (p->zlen == p->len) {
        memcpy(out, p->data, p->len);
        return 0;
    }
    struct zctx *t = ctx_get();
    if (!t)
        return -1;
    const ZSTD_DDict *dd = p->dict ? p->dict->dd : NULL;
    size_t n = dd ? ZSTD_decompress_usingDDict(t->dc, out, p->len, p->data, p->zlen, dd)
                  : ZSTD_decompressDCtx(t->dc, out, p->len, p->data, p->zlen);
    ctx_put(t);
    if (ZSTD_isError(n) || n != p->len) {
        corral_error(LOG, "a packed object does not decode: %s",
                     ZSTD_isError(n) ? ZSTD_getErrorName(n) : "wrong length");
        return -1;
    }
    return 0;
}

struct corral_blob *corral_packed_blob(const struct corral_packed *p, int64_t rev)
{
    if (!p)
        return NULL;
    char digits[24];
    size_t nd = p->rv_off ? (size_t)snprintf(digits, sizeof(digits), "%" PRId64, rev) : 0;
    struct corral_blob *b = corral_store_blob_alloc(p->len + nd, p->rv_off);
    if (!b)
        return NULL;
    if (unpack_into(p, b->data) != 0) {
        corral_blob_unref(b);
        return NULL;
    }
    if (nd) {
        memmove(b->data + p->rv_off + nd, b->data + p->rv_off, p->len - p->rv_off);
        memcpy(b->data + p->rv_off, digits, nd);
    }
    return b;
}

/* ---- the packer --------------------------------------------------------------------------- */

int corral_packer_new(struct corral_packer **out)
{
    struct corral_packer *pk = calloc(1, sizeof(*pk));
    if (!pk)
        return -ENOMEM;
    pthread_mutex_init(&pk->mu, NULL);
    *out = pk;
    return 0;
}

void corral_packer_free(struct corral_packer *pk)
{
    if (!pk)
        return;
    for (size_t i = 0; i < CLASS_SLOTS; i++)
        if (pk->slots[i])
            class_free(pk->slots[i]);
    pthread_mutex_destroy(&pk->mu);
    free(pk);
}

void corral_packer_stats(struct corral_packer *pk, struct corral_packer_stats *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&pk->mu);
    out->classes = pk->nclasses;
    out->trainings = pk->trainings;
    out->adoptions = pk->adoptions;
    pthread_mutex_unlock(&pk->mu);
    out->dicts = __atomic_load_n(&pk->dicts, __ATOMIC_RELAXED);
    out->dict_bytes = __atomic_load_n(&pk->dict_bytes, __ATOMIC_RELAXED);
    out->live_plain = __atomic_load_n(&pk->live_plain, __ATOMIC_RELAXED);
    out->live_packed = __atomic_load_n(&pk->live_packed, __ATOMIC_RELAXED);
}
