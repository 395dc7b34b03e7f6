/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctrl_extract: partial JSON reading (see ctrl_extract.h).
 *
 * A recursive descent over objects only: at each level the member key is compared with the
 * first segment of the remaining paths; a member named whole is handed to json_loadb() (which
 * validates it), a member on the way to a path is descended into, any other member is skipped
 * by scanning (strings with their escapes, nested brackets counted). Skipped bytes are not
 * validated: the store only holds documents it serialised itself.
 */
#include "ctrl_extract.h"

#include <stdbool.h>
#include <string.h>

#define MAX_PATHS 32

struct scan {
    const char *p, *end;
};

static void skip_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

/* Skips the string at s->p (on its opening quote). Returns 0 or -1. */
static int skip_string(struct scan *s)
{
    s->p++;
    while (s->p < s->end) {
        char c = *s->p++;
        if (c == '\\') {
            if (s->p >= s->end)
                return -1;
            s->p++;
        } else if (c == '"') {
            return 0;
        }
    }
    return -1;
}

static int skip_value(struct scan *s)
{
    skip_ws(s);
    if (s->p >= s->end)
        return -1;
    if (*s->p == '"')
        return skip_string(s);
    if (*s->p == '{' || *s->p == '[') {
        int depth = 0;
        while (s->p < s->end) {
            char c = *s->p;
            if (c == '"') {
                if (skip_string(s) < 0)
                    return -1;
                continue;
            }
            s->p++;
            if (c == '{' || c == '[')
                depth++;
            else if ((c == '}' || c == ']') && --depth == 0)
                return 0;
        }
        return -1;
    }
    while (s->p < s->end && *s->p != ',' && *s->p != '}' && *s->p != ']' && *s->p != ' ' &&
           *s->p != '\n' && *s->p != '\t' && *s->p != '\r')
        s->p++;
    return 0;
}

/* Reads a member key: *key and *klen point into the text (escaped keys are never wanted). */
static int read_key(struct scan *s, const char **key, size_t *klen, bool *escaped)
{
    skip_ws(s);
    if (s->p >= s->end || *s->p != '"')
        return -1;
    const char *start = s->p + 1;
    if (skip_string(s) < 0)
        return -1;
    *key = start;
    *klen = (size_t)(s->p - 1 - start);
    *escaped = memchr(start, '\\', *klen) != NULL;
    skip_ws(s);
    if (s->p >= s->end || *s->p != ':')
        return -1;
    s->p++;
    return 0;
}

/* Whether path's first segment is key; *rest receives what follows it ("" if nothing). */
static bool segment_is(const char *path, const char *key, size_t klen, const char **rest)
{
    const char *dot = strchr(path, '.');
    size_t n = dot ? (size_t)(dot - path) : strlen(path);
    if (n != klen || memcmp(path, key, klen) != 0)
        return false;
    *rest = dot ? dot + 1 : "";
    return true;
}

static int extract_object(struct scan *s, const char *const *paths, size_t npaths, json_t *out);

/* Handles one member whose value starts at s->p. */
static int member(struct scan *s, const char *key, size_t klen, const char *const *paths,
                  size_t npaths, json_t *out)
{
    const char *sub[MAX_PATHS];
    size_t nsub = 0;
    bool whole = false;
    for (size_t i = 0; i < npaths; i++) {
        const char *rest;
        if (!segment_is(paths[i], key, klen, &rest))
            continue;
        if (!*rest)
            whole = true;
        else if (nsub < MAX_PATHS)
            sub[nsub++] = rest;
    }
    char name[256];
    if ((!whole && !nsub) || klen >= sizeof(name))
        return skip_value(s);
    memcpy(name, key, klen);
    name[klen] = 0;
    skip_ws(s);
    const char *start = s->p;
    if (whole) {
        if (skip_value(s) < 0)
            return -1;
        json_t *v = json_loadb(start, (size_t)(s->p - start), JSON_DECODE_ANY, NULL);
        if (!v)
            return -1;
        return json_object_set_new(out, name, v) == 0 ? 0 : -1;
    }
    if (s->p >= s->end || *s->p != '{')
        return skip_value(s); /* a path through something that is not an object */
    json_t *obj = json_object();
    if (!obj || extract_object(s, sub, nsub, obj) < 0) {
        json_decref(obj);
        return -1;
    }
    return json_object_set_new(out, name, obj) == 0 ? 0 : -1;
}

static int extract_object(struct scan *s, const char *const *paths, size_t npaths, json_t *out)
{
    skip_ws(s);
    if (s->p >= s->end || *s->p != '{')
        return -1;
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return 0;
    }
    for (;;) {
        const char *key;
        size_t klen;
        bool escaped;
        if (read_key(s, &key, &klen, &escaped) < 0)
            return -1;
        int rc = escaped ? skip_value(s) : member(s, key, klen, paths, npaths, out);
        if (rc < 0)
            return -1;
        skip_ws(s);
        if (s->p >= s->end)
            return -1;
        char c = *s->p++;
        if (c == '}')
            return 0;
        if (c != ',')
            return -1;
    }
}

json_t *corral_ctrl_extract(const char *text, size_t len, const char *const *paths)
{
    size_t n = 0;
    while (paths[n] && n < MAX_PATHS)
        n++;
    struct scan s = {text, text + len};
    json_t *out = json_object();
    if (!out || extract_object(&s, paths, n, out) < 0) {
        json_decref(out);
        return NULL;
    }
    return out;
}

json_t *corral_ctrl_extract_blob(const struct corral_blob *b, const char *const *paths)
{
    return b ? corral_ctrl_extract(b->data, b->len, paths) : NULL;
}
