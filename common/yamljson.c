/* SPDX-License-Identifier: Apache-2.0 */
/*
 * yamljson: a libyaml event parser that builds jansson values, and a libyaml emitter that writes
 * them back. The builder keeps a stack of open containers; anchors are kept in a JSON object
 * keyed by anchor name, so an alias is a reference-counted share of the anchored value.
 */
#include "yamljson.h"
#include "error.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define YAML_MAX_DEPTH 128

struct builder {
    json_t *stack[YAML_MAX_DEPTH];
    json_t *pending_key[YAML_MAX_DEPTH]; /* key waiting for its value, per mapping level */
    char *anchor_of[YAML_MAX_DEPTH];     /* anchor to record when the container closes */
    json_t *merged[YAML_MAX_DEPTH];      /* `<<` values, applied under explicit keys at close */
    int depth;
    json_t *anchors;
    json_t *docs;
    json_t *root;
    struct corral_parse_error *err;
};

static int fail(struct corral_parse_error *err, const yaml_mark_t *mark, const char *fmt,
                const char *arg)
{
    if (err) {
        err->line = mark ? (int)mark->line + 1 : 0;
        err->column = mark ? (int)mark->column + 1 : 0;
        snprintf(err->message, sizeof(err->message), fmt, arg ? arg : "");
    }
    return CORRAL_EPARSE;
}

static bool is_one_of(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return true;
    return false;
}

static const char *const yaml_true[] = {"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE",
                                        "on", "On", "ON", NULL};
static const char *const yaml_false[] = {"n", "N", "no", "No", "NO", "false", "False", "FALSE",
                                         "off", "Off", "OFF", NULL};
static const char *const yaml_null[] = {"", "~", "null", "Null", "NULL", NULL};

/* Integer forms: [-+]digits, 0x..., 0o..., 0b..., with '_' separators. */
static bool resolve_int(const char *s, json_int_t *out)
{
    char clean[80];
    size_t n = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '_')
            continue;
        if (n + 1 >= sizeof(clean))
            return false;
        clean[n++] = *p;
    }
    clean[n] = 0;
    const char *p = clean;
    int base = 10;
    bool neg = false;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
        base = 16, p += 2;
    else if (p[0] == '0' && p[1] == 'o')
        base = 8, p += 2;
    else if (p[0] == '0' && p[1] == 'b')
        base = 2, p += 2;
    else if (p[0] == '0' && p[1])
        base = 8, p += 1;
    if (!*p)
        return false;
    for (const char *q = p; *q; q++) {
        int d = isdigit((unsigned char)*q)   ? *q - '0'
                : isxdigit((unsigned char)*q) ? tolower((unsigned char)*q) - 'a' + 10
                                              : 99;
        if (d >= base)
            return false;
    }
    errno = 0;
    unsigned long long v = strtoull(p, NULL, base);
    if (errno || v > (unsigned long long)INT64_MAX + (neg ? 1u : 0u))
        return false;
    *out = neg ? (json_int_t)(0 - v) : (json_int_t)v;
    return true;
}

static bool resolve_float(const char *s, double *out)
{
    if (is_one_of(s, (const char *const[]){".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF",
                                           NULL})) {
        *out = INFINITY;
        return true;
    }
    if (is_one_of(s, (const char *const[]){"-.inf", "-.Inf", "-.INF", NULL})) {
        *out = -INFINITY;
        return true;
    }
    /* [-+]?(digits)?.digits([eE][-+]?digits)? or digits[eE]... */
    const char *p = s;
    bool digits = false, dot = false, exp = false;
    if (*p == '+' || *p == '-')
        p++;
    for (; *p; p++) {
        if (isdigit((unsigned char)*p) || *p == '_')
            digits = true;
        else if (*p == '.' && !dot && !exp)
            dot = true;
        else if ((*p == 'e' || *p == 'E') && digits && !exp) {
            exp = true;
            if (p[1] == '+' || p[1] == '-')
                p++;
        } else
            return false;
    }
    if (!digits || (!dot && !exp))
        return false;
    char *end;
    *out = strtod(s, &end);
    return *end == 0;
}

/* Plain-scalar type resolution: null, bool, int, float, else string. New reference. */
static json_t *resolve_plain(const char *s)
{
    json_int_t i;
    double d;
    if (is_one_of(s, yaml_null))
        return json_null();
    if (is_one_of(s, yaml_true))
        return json_true();
    if (is_one_of(s, yaml_false))
        return json_false();
    if (resolve_int(s, &i))
        return json_integer(i);
    if (resolve_float(s, &d) && isfinite(d))
        return json_real(d);
    return json_string(s);
}

static json_t *scalar_value(const yaml_event_t *ev, struct corral_parse_error *err, int *rc)
{
    const char *v = (const char *)ev->data.scalar.value;
    const char *tag = (const char *)ev->data.scalar.tag;
    *rc = 0;
    if (tag && strcmp(tag, YAML_STR_TAG) == 0)
        return json_stringn(v, ev->data.scalar.length);
    if (tag && (strcmp(tag, YAML_INT_TAG) == 0 || strcmp(tag, YAML_FLOAT_TAG) == 0 ||
                strcmp(tag, YAML_BOOL_TAG) == 0 || strcmp(tag, YAML_NULL_TAG) == 0)) {
        json_t *r = resolve_plain(v);
        if (json_is_string(r)) {
            json_decref(r);
            *rc = fail(err, &ev->start_mark, "cannot read \"%s\" as the tagged type", v);
            return NULL;
        }
        return r;
    }
    if (!ev->data.scalar.plain_implicit)
        return json_stringn(v, ev->data.scalar.length);
    if (strlen(v) != ev->data.scalar.length) /* embedded NUL: keep as string */
        return json_stringn(v, ev->data.scalar.length);
    return resolve_plain(v);
}

/* Merges src (a mapping, or a sequence of mappings) into dst without overriding keys. */
static int merge_into(json_t *dst, json_t *src, const yaml_mark_t *mark,
                      struct corral_parse_error *err)
{
    if (json_is_array(src)) {
        size_t i;
        json_t *m;
        json_array_foreach(src, i, m)
        {
            int rc = merge_into(dst, m, mark, err);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    if (!json_is_object(src))
        return fail(err, mark, "merge key << needs a mapping or a list of mappings%s", NULL);
    const char *k;
    json_t *v;
    json_object_foreach(src, k, v)
    {
        if (!json_object_get(dst, k))
            json_object_set(dst, k, v);
    }
    return 0;
}

/* Adds v (stolen) to the innermost container, or makes it the document root. */
static int attach(struct builder *b, json_t *v, const yaml_mark_t *mark)
{
    if (!v)
        return -ENOMEM;
    if (b->depth == 0) {
        json_decref(b->root);
        b->root = v;
        return 0;
    }
    json_t *top = b->stack[b->depth - 1];
    if (json_is_array(top))
        return json_array_append_new(top, v) ? -ENOMEM : 0;
    json_t **key = &b->pending_key[b->depth - 1];
    if (!*key) {
        if (!json_is_string(v) && !json_is_integer(v) && !json_is_boolean(v) &&
            !json_is_null(v) && !json_is_real(v)) {
            json_decref(v);
            return fail(b->err, mark, "mapping keys must be scalars%s", NULL);
        }
        if (!json_is_string(v)) { /* `1: x` or `true: y`: use the literal text as key */
            char buf[64];
            if (json_is_integer(v))
                snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
            else if (json_is_real(v))
                snprintf(buf, sizeof(buf), "%g", json_real_value(v));
            else
                snprintf(buf, sizeof(buf), "%s",
                         json_is_null(v) ? "null" : json_is_true(v) ? "true" : "false");
            json_decref(v);
            v = json_string(buf);
        }
        *key = v;
        return 0;
    }
    const char *k = json_string_value(*key);
    int rc = 0;
    if (strcmp(k, "<<") == 0) {
        if (!b->merged[b->depth - 1])
            b->merged[b->depth - 1] = json_object();
        rc = merge_into(b->merged[b->depth - 1], v, mark, b->err);
        json_decref(v);
    } else if (json_object_get(top, k)) {
        rc = fail(b->err, mark, "duplicate mapping key \"%s\"", k);
        json_decref(v);
    } else {
        rc = json_object_set_new(top, k, v) ? -ENOMEM : 0;
    }
    json_decref(*key);
    *key = NULL;
    return rc;
}

static int open_container(struct builder *b, json_t *c, const yaml_char_t *anchor,
                          const yaml_mark_t *mark)
{
    if (!c)
        return -ENOMEM;
    if (b->depth >= YAML_MAX_DEPTH) {
        json_decref(c);
        return fail(b->err, mark, "nesting deeper than 128 levels%s", NULL);
    }
    b->stack[b->depth] = c;
    b->pending_key[b->depth] = NULL;
    b->anchor_of[b->depth] = anchor ? strdup((const char *)anchor) : NULL;
    b->merged[b->depth] = NULL;
    b->depth++;
    return 0;
}

static int close_container(struct builder *b, const yaml_mark_t *mark)
{
    b->depth--;
    json_t *c = b->stack[b->depth];
    char *anchor = b->anchor_of[b->depth];
    json_decref(b->pending_key[b->depth]);
    json_t *merged = b->merged[b->depth];
    if (merged) {
        merge_into(c, merged, mark, b->err); /* cannot fail: merged is an object */
        json_decref(merged);
    }
    if (anchor)
        json_object_set(b->anchors, anchor, c);
    free(anchor);
    return attach(b, c, mark);
}

static bool expecting_key(const struct builder *b)
{
    return b->depth > 0 && json_is_object(b->stack[b->depth - 1]) &&
           !b->pending_key[b->depth - 1];
}

static int on_scalar(struct builder *b, const yaml_event_t *ev)
{
    int rc = 0;
    json_t *v;
    /* Keys keep their literal text: `n: 1` has the key "n", not false. */
    if (expecting_key(b))
        v = json_stringn((const char *)ev->data.scalar.value, ev->data.scalar.length);
    else
        v = scalar_value(ev, b->err, &rc);
    if (rc < 0)
        return rc;
    if (ev->data.scalar.anchor && v)
        json_object_set(b->anchors, (const char *)ev->data.scalar.anchor, v);
    return attach(b, v, &ev->start_mark);
}

static int on_alias(struct builder *b, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    json_t *v = json_object_get(b->anchors, name);
    if (!v)
        return fail(b->err, &ev->start_mark, "unknown alias *%s", name);
    return attach(b, json_incref(v), &ev->start_mark);
}

static int on_document_end(struct builder *b)
{
    if (b->root && !json_is_null(b->root))
        json_array_append(b->docs, b->root);
    json_decref(b->root);
    b->root = NULL;
    json_object_clear(b->anchors);
    return 0;
}

static int handle_event(struct builder *b, const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        return on_scalar(b, ev);
    case YAML_ALIAS_EVENT:
        return on_alias(b, ev);
    case YAML_SEQUENCE_START_EVENT:
        return open_container(b, json_array(), ev->data.sequence_start.anchor, &ev->start_mark);
    case YAML_MAPPING_START_EVENT:
        return open_container(b, json_object(), ev->data.mapping_start.anchor, &ev->start_mark);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        return close_container(b, &ev->start_mark);
    case YAML_DOCUMENT_END_EVENT:
        return on_document_end(b);
    default:
        return 0;
    }
}

static void builder_release(struct builder *b)
{
    while (b->depth > 0) {
        b->depth--;
        json_decref(b->stack[b->depth]);
        json_decref(b->pending_key[b->depth]);
        json_decref(b->merged[b->depth]);
        free(b->anchor_of[b->depth]);
    }
    json_decref(b->root);
    json_decref(b->anchors);
}

static int load_yaml(const char *buf, size_t len, json_t *docs, struct corral_parse_error *err)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return -ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    struct builder b = {.anchors = json_object(), .docs = docs, .err = err};
    int rc = 0;
    for (bool done = false; !done && rc == 0;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = fail(err, &parser.problem_mark, "%s", parser.problem);
            if (err && parser.context) {
                size_t n = strlen(err->message);
                snprintf(err->message + n, sizeof(err->message) - n, " (%s)", parser.context);
            }
            break;
        }
        done = ev.type == YAML_STREAM_END_EVENT;
        rc = handle_event(&b, &ev);
        yaml_event_delete(&ev);
    }
    builder_release(&b);
    yaml_parser_delete(&parser);
    return rc;
}

/* JSON: one or more concatenated values. */
static int load_json(const char *buf, size_t len, json_t *docs, struct corral_parse_error *err)
{
    size_t off = 0;
    while (off < len) {
        while (off < len && isspace((unsigned char)buf[off]))
            off++;
        if (off >= len)
            break;
        json_error_t je;
        json_t *v = json_loadb(buf + off, len - off, JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY, &je);
        if (!v) {
            if (err) {
                /* line numbers are relative to off: count the lines before it */
                int extra = 0;
                for (size_t i = 0; i < off; i++)
                    extra += buf[i] == '\n';
                err->line = je.line + extra;
                err->column = je.column;
                snprintf(err->message, sizeof(err->message), "%s", je.text);
            }
            return CORRAL_EPARSE;
        }
        off += je.position;
        if (json_is_null(v))
            continue; /* a null document is no document, as in YAML (`--- ~`) */
        json_array_append_new(docs, v);
    }
    return 0;
}

int corral_yaml_load(const char *buf, size_t len, json_t **docs, struct corral_parse_error *err)
{
    if (err)
        memset(err, 0, sizeof(*err));
    json_t *out = json_array();
    if (!out)
        return -ENOMEM;
    size_t i = 0;
    if (len >= 3 && (unsigned char)buf[0] == 0xEF && (unsigned char)buf[1] == 0xBB &&
        (unsigned char)buf[2] == 0xBF)
        i = 3; /* byte-order mark */
    size_t j = i;
    while (j < len && isspace((unsigned char)buf[j]))
        j++;
    bool json = j < len && (buf[j] == '{' || buf[j] == '[');
    int rc = json ? load_json(buf + i, len - i, out, err) : load_yaml(buf + i, len - i, out, err);
    if (json && buf[j] == '[' && rc == CORRAL_EPARSE) {
        /* A document that opens with `[` may still be YAML: a flow sequence (`[a, b]`) or
         * a stream of them (`[a]\n--- [b]`, which is how two arrays are dumped). Keep the
         * JSON error if YAML cannot read it either: it is the more precise one for what
         * looked like JSON. A `{` opener stays JSON, as the Kubernetes decoder has it. */
        json_t *yaml_docs = json_array();
        struct corral_parse_error yaml_err;
        if (!yaml_docs) {
            rc = -ENOMEM;
        } else if (load_yaml(buf + i, len - i, yaml_docs, &yaml_err) == 0) {
            json_decref(out);
            out = yaml_docs;
            rc = 0;
            if (err)
                memset(err, 0, sizeof(*err));
        } else {
            json_decref(yaml_docs);
        }
    }
    if (rc < 0) {
        json_decref(out);
        return rc;
    }
    *docs = out;
    return 0;
}

int corral_yaml_load_file(const char *path, json_t **docs, struct corral_parse_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return -ENOMEM;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    int rc = ferror(f) ? -EIO : corral_yaml_load(buf, len, docs, err);
    free(buf);
    fclose(f);
    return rc;
}

/* ---- emitter ---- */

struct outbuf {
    char *data;
    size_t len, cap;
};

static int out_write(void *ctx, unsigned char *buf, size_t size)
{
    struct outbuf *o = ctx;
    if (o->len + size + 1 > o->cap) {
        size_t cap = (o->len + size + 1) * 2;
        char *nd = realloc(o->data, cap);
        if (!nd)
            return 0;
        o->data = nd;
        o->cap = cap;
    }
    memcpy(o->data + o->len, buf, size);
    o->len += size;
    o->data[o->len] = 0;
    return 1;
}

static int emit_scalar(yaml_emitter_t *em, const char *s, size_t len, bool quote)
{
    yaml_event_t ev;
    yaml_scalar_style_t style = quote ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE;
    if (!quote && memchr(s, '\n', len))
        style = YAML_LITERAL_SCALAR_STYLE;
    yaml_scalar_event_initialize(&ev, NULL, (yaml_char_t *)YAML_STR_TAG, (yaml_char_t *)s,
                                 (int)len, !quote, !quote, style);
    return yaml_emitter_emit(em, &ev) ? 0 : -ENOMEM;
}

/* True if s, written plain, would read back as something other than this string. */
static bool needs_quotes(const char *s)
{
    json_t *v = resolve_plain(s);
    bool q = !json_is_string(v);
    json_decref(v);
    return q;
}

static int emit_value(yaml_emitter_t *em, const json_t *v)
{
    yaml_event_t ev;
    char buf[64];
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
        if (!yaml_emitter_emit(em, &ev))
            return -ENOMEM;
        const char *k;
        json_t *child;
        json_object_foreach((json_t *)v, k, child)
        {
            if (emit_scalar(em, k, strlen(k), needs_quotes(k)) < 0 || emit_value(em, child) < 0)
                return -ENOMEM;
        }
        yaml_mapping_end_event_initialize(&ev);
        return yaml_emitter_emit(em, &ev) ? 0 : -ENOMEM;
    }
    case JSON_ARRAY: {
        yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE);
        if (!yaml_emitter_emit(em, &ev))
            return -ENOMEM;
        size_t i;
        json_t *child;
        json_array_foreach(v, i, child)
        {
            if (emit_value(em, child) < 0)
                return -ENOMEM;
        }
        yaml_sequence_end_event_initialize(&ev);
        return yaml_emitter_emit(em, &ev) ? 0 : -ENOMEM;
    }
    case JSON_STRING: {
        const char *s = json_string_value(v);
        return emit_scalar(em, s, json_string_length(v), needs_quotes(s));
    }
    case JSON_INTEGER:
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return emit_scalar(em, buf, strlen(buf), false);
    case JSON_REAL:
        snprintf(buf, sizeof(buf), "%.17g", json_real_value(v));
        if (!strpbrk(buf, ".eE"))
            strcat(buf, ".0");
        return emit_scalar(em, buf, strlen(buf), false);
    case JSON_TRUE:
        return emit_scalar(em, "true", 4, false);
    case JSON_FALSE:
        return emit_scalar(em, "false", 5, false);
    default:
        return emit_scalar(em, "null", 4, false);
    }
}

static int emit_document(yaml_emitter_t *em, const json_t *v, bool implicit)
{
    yaml_event_t ev;
    yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, implicit);
    if (!yaml_emitter_emit(em, &ev) || emit_value(em, v) < 0)
        return -ENOMEM;
    yaml_document_end_event_initialize(&ev, 1);
    return yaml_emitter_emit(em, &ev) ? 0 : -ENOMEM;
}

static char *dump_docs(const json_t *const *docs, size_t n)
{
    yaml_emitter_t em;
    struct outbuf o = {0};
    yaml_event_t ev;
    if (!yaml_emitter_initialize(&em))
        return NULL;
    yaml_emitter_set_output(&em, out_write, &o);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_width(&em, -1);
    int rc = yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) &&
                     yaml_emitter_emit(&em, &ev)
                 ? 0
                 : -ENOMEM;
    /* With several documents the first one opens with `---` too: a stream that began with
     * `{}` or `[]` would otherwise read back as JSON and stop at the next `---`. */
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = emit_document(&em, docs[i], n == 1);
    if (rc == 0) {
        yaml_stream_end_event_initialize(&ev);
        rc = yaml_emitter_emit(&em, &ev) ? 0 : -ENOMEM;
    }
    yaml_emitter_delete(&em);
    if (rc < 0) {
        free(o.data);
        return NULL;
    }
    return o.data ? o.data : strdup("");
}

char *corral_yaml_dump(const json_t *value)
{
    return dump_docs(&value, 1);
}

char *corral_yaml_dump_all(const json_t *docs)
{
    size_t n = json_array_size(docs);
    const json_t **arr = calloc(n ? n : 1, sizeof(*arr));
    if (!arr)
        return NULL;
    for (size_t i = 0; i < n; i++)
        arr[i] = json_array_get(docs, i);
    char *s = dump_docs(arr, n);
    free(arr);
    return s;
}
