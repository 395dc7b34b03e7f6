/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store: the backend-independent half of the storage interface (store.h): blobs, events and
 * lists, argument checks, the dispatch to the backend's ops, and the stamped documents the
 * backends share (store_backend.h).
 *
 * Every public entry point checks its arguments here once, so a backend only ever sees a valid
 * key, a JSON object and a non-NULL output where one is required. Bad arguments get -EINVAL
 * (and a stolen object is released even then).
 */
#include "store.h"
#include "store_backend.h"

#include "error.h"
#include "meta.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* "\u0001" + 32 hex digits: the placeholder as it appears in compact JSON output. */
#define PH_ESCAPE "\\u0001"
#define PH_ESCAPE_LEN 6
#define PH_HEX_LEN 32
#define PH_LEN (PH_ESCAPE_LEN + PH_HEX_LEN)

struct corral_blob *corral_store_blob_alloc(size_t len, uint32_t rv_off)
{
    struct corral_blob *b = malloc(sizeof(*b) + len + 1);
    if (!b)
        return NULL;
    b->refs = 1;
    b->rv_off = rv_off;
    b->len = len;
    b->data[len] = '\0';
    return b;
}

struct corral_blob *corral_store_blob_make(const char *data, size_t len, uint32_t rv_off)
{
    struct corral_blob *b = corral_store_blob_alloc(len, rv_off);
    if (b && len)
        memcpy(b->data, data, len);
    return b;
}

struct corral_blob *corral_blob_new(const char *data, size_t len)
{
    return corral_store_blob_make(data, len, 0);
}

struct corral_blob *corral_blob_ref(struct corral_blob *b)
{
    if (b)
        __atomic_add_fetch(&b->refs, 1, __ATOMIC_RELAXED);
    return b;
}

void corral_blob_unref(struct corral_blob *b)
{
    if (b && __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) == 0)
        free(b);
}

json_t *corral_blob_json(const struct corral_blob *b)
{
    if (!b)
        return NULL;
    return json_loadb(b->data, b->len, 0, NULL);
}

void corral_store_event_clear(struct corral_store_event *ev)
{
    if (!ev)
        return;
    free(ev->key);
    corral_blob_unref(ev->value);
    corral_blob_unref(ev->prev);
    memset(ev, 0, sizeof(*ev));
}

void corral_store_list_clear(struct corral_store_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++) {
        corral_blob_unref(l->items[i]);
        free(l->keys[i]);
    }
    free(l->items);
    free(l->keys);
    memset(l, 0, sizeof(*l));
}

/* ---- argument checks ---------------------------------------------------------------------- */

static int check_path_chars(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return -EINVAL;
    return 0;
}

int corral_store_check_key(const char *key)
{
    if (!key || key[0] != '/')
        return -EINVAL;
    size_t len = strnlen(key, CORRAL_STORE_KEY_MAX + 1);
    if (len < 2 || len > CORRAL_STORE_KEY_MAX || key[len - 1] == '/')
        return -EINVAL;
    return check_path_chars(key, len);
}

int corral_store_check_prefix(const char *prefix)
{
    if (!prefix || prefix[0] != '/')
        return -EINVAL;
    size_t len = strnlen(prefix, CORRAL_STORE_KEY_MAX + 1);
    if (len > CORRAL_STORE_KEY_MAX || prefix[len - 1] != '/')
        return -EINVAL;
    return check_path_chars(prefix, len);
}

/* ---- stamped documents -------------------------------------------------------------------- */

static _Thread_local uint64_t nonce_state;

static uint64_t nonce_next(void)
{
    if (nonce_state == 0) {
        if (getrandom(&nonce_state, sizeof(nonce_state), 0) != sizeof(nonce_state))
            nonce_state = corral_now_ns() ^ (uint64_t)(uintptr_t)&nonce_state;
        nonce_state |= 1;
    }
    /* splitmix64 */
    uint64_t z = (nonce_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

int corral_store_doc_make(json_t *obj, struct corral_store_doc *doc)
{
    memset(doc, 0, sizeof(*doc));
    if (!json_is_object(obj))
        return -EINVAL;
    json_t *meta = json_object_get(obj, "metadata");
    if (meta && !json_is_object(meta))
        return -EINVAL;
    if (!meta && json_object_set_new(obj, "metadata", json_object()) != 0)
        return -ENOMEM;
    meta = json_object_get(obj, "metadata");
    if (!meta)
        return -ENOMEM;

    char hex[PH_HEX_LEN + 1], ph[PH_HEX_LEN + 2], needle[PH_LEN + 1];
    snprintf(hex, sizeof(hex), "%016" PRIx64 "%016" PRIx64, nonce_next(), nonce_next());
    snprintf(ph, sizeof(ph), "\x01%s", hex);
    snprintf(needle, sizeof(needle), PH_ESCAPE "%s", hex);
    if (json_object_set_new(meta, "resourceVersion", json_string(ph)) != 0)
        return -ENOMEM;

    char *out = json_dumps(obj, JSON_COMPACT);
    if (!out)
        return -ENOMEM;
    size_t len = strlen(out);
    char *at = memmem(out, len, needle, PH_LEN);
    if (!at || at == out || at[-1] != '"' || at[PH_LEN] != '"') {
        free(out); /* cannot happen: jansson always escapes U+0001 this way */
        return CORRAL_EINTERNAL;
    }
    doc->json = out;
    doc->len = len;
    doc->ph_off = (size_t)(at - out);
    doc->ph_len = PH_LEN;
    return 0;
}

void corral_store_doc_clear(struct corral_store_doc *doc)
{
    if (!doc)
        return;
    free(doc->json);
    memset(doc, 0, sizeof(*doc));
}

struct corral_blob *corral_store_blob_splice(const char *data, size_t len, size_t off,
                                             size_t old_len, int64_t rev)
{
    char digits[24];
    int nd = snprintf(digits, sizeof(digits), "%" PRId64, rev);
    size_t new_len = len - old_len + (size_t)nd;
    if (off > UINT32_MAX)
        return NULL;
    struct corral_blob *b = malloc(sizeof(*b) + new_len + 1);
    if (!b)
        return NULL;
    b->refs = 1;
    b->rv_off = (uint32_t)off;
    b->len = new_len;
    memcpy(b->data, data, off);
    memcpy(b->data + off, digits, (size_t)nd);
    memcpy(b->data + off + nd, data + off + old_len, len - off - old_len);
    b->data[new_len] = '\0';
    return b;
}

struct corral_blob *corral_store_doc_stamp(const struct corral_store_doc *doc, int64_t rev)
{
    return corral_store_blob_splice(doc->json, doc->len, doc->ph_off, doc->ph_len, rev);
}

/* Length of the digit run at data[off] when it is a quoted decimal; 0 otherwise. */
static size_t digit_run(const char *data, size_t len, size_t off)
{
    if (off == 0 || off >= len || data[off - 1] != '"')
        return 0;
    size_t n = 0;
    while (off + n < len && data[off + n] >= '0' && data[off + n] <= '9')
        n++;
    if (off + n >= len || data[off + n] != '"')
        return 0;
    return n;
}

static size_t rv_digits(const struct corral_blob *b)
{
    return digit_run(b->data, b->len, b->rv_off);
}

size_t corral_store_rev_digits(const char *data, size_t len, size_t off, int64_t rev)
{
    size_t n = digit_run(data, len, off);
    char digits[24];
    int nd = snprintf(digits, sizeof(digits), "%" PRId64, rev);
    return n == (size_t)nd && memcmp(data + off, digits, n) == 0 ? n : 0;
}

struct corral_blob *corral_store_blob_restamp(const struct corral_blob *b, int64_t rev)
{
    size_t n = rv_digits(b);
    if (n == 0)
        return NULL;
    return corral_store_blob_splice(b->data, b->len, b->rv_off, n, rev);
}

bool corral_store_blob_check_rev(const struct corral_blob *b, int64_t rev)
{
    return corral_store_rev_digits(b->data, b->len, b->rv_off, rev) != 0;
}

/* ---- dispatch ----------------------------------------------------------------------------- */

int corral_store_get(struct corral_store *st, const char *key, struct corral_store_obj *out)
{
    if (!st || !out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if (corral_store_check_key(key) != 0)
        return -EINVAL;
    return st->ops->get(st, key, out);
}

int corral_store_list(struct corral_store *st, const struct corral_store_list_opts *opts,
                      struct corral_store_list *out)
{
    if (!st || !opts || !out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if (corral_store_check_prefix(opts->prefix) != 0)
        return -EINVAL;
    return st->ops->list(st, opts, out);
}

int corral_store_snapshot(struct corral_store *st, const struct corral_store_list_opts *opts,
                          struct corral_store_snapshot **out)
{
    if (!st || !opts || !out || opts->filter || corral_store_check_prefix(opts->prefix) != 0)
        return -EINVAL;
    *out = NULL;
    return st->ops->snapshot(st, opts, out);
}

static int check_write(struct corral_store *st, const char *key, struct corral_store_obj *out)
{
    if (out)
        memset(out, 0, sizeof(*out));
    if (!st || corral_store_check_key(key) != 0)
        return -EINVAL;
    return 0;
}

int corral_store_create(struct corral_store *st, const char *key, json_t *obj,
                        struct corral_store_obj *out)
{
    if (check_write(st, key, out) != 0 || !json_is_object(obj)) {
        json_decref(obj);
        return -EINVAL;
    }
    return st->ops->create(st, key, obj, out);
}

int corral_store_update(struct corral_store *st, const char *key, json_t *obj, int64_t expect_rev,
                        struct corral_store_obj *out)
{
    if (check_write(st, key, out) != 0 || !json_is_object(obj) || expect_rev < 0) {
        json_decref(obj);
        return -EINVAL;
    }
    return st->ops->update(st, key, obj, expect_rev, out);
}

int corral_store_delete(struct corral_store *st, const char *key, int64_t expect_rev,
                        struct corral_store_obj *out)
{
    if (check_write(st, key, out) != 0 || expect_rev < 0)
        return -EINVAL;
    return st->ops->remove(st, key, expect_rev, out);
}

int corral_store_events(struct corral_store *st, const char *prefix, int64_t after,
                        struct corral_store_event *out, size_t max, int timeout_ms, int64_t *seen)
{
    if (!st || !out || max == 0 || after < 0 || timeout_ms < 0 ||
        corral_store_check_prefix(prefix) != 0)
        return -EINVAL;
    int64_t dummy;
    return st->ops->events(st, prefix, after, out, max, timeout_ms, seen ? seen : &dummy);
}

int corral_store_compact(struct corral_store *st, int64_t rev)
{
    if (!st || rev < 0)
        return -EINVAL;
    return st->ops->compact(st, rev);
}

void corral_store_stats(struct corral_store *st, struct corral_store_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (st)
        st->ops->stats(st, out);
}

int64_t corral_store_revision(struct corral_store *st)
{
    return st ? st->ops->revision(st) : 0;
}

void corral_store_set_retention(struct corral_store *st, const struct corral_store_retention *r)
{
    if (st && r)
        st->ops->set_retention(st, r);
}

void corral_store_shutdown(struct corral_store *st)
{
    if (st)
        st->ops->shutdown(st);
}

void corral_store_close(struct corral_store *st)
{
    if (st)
        st->ops->close(st);
}
