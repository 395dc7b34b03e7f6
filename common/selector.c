/* SPDX-License-Identifier: Apache-2.0 */
/*
 * selector: a small recursive-descent parser over the Kubernetes selector grammar
 *   selector    := requirement (',' requirement)*
 *   requirement := '!' key | key | key ('='|'=='|'!=') value | key ('in'|'notin') '(' values ')'
 * producing an array of requirements, and a matcher that walks them.
 */
#include "selector.h"
#include "error.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lexer {
    const char *p;
    char *err;
    size_t errlen;
};

static int lex_fail(struct lexer *lx, const char *fmt, ...)
{
    if (lx->err && lx->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(lx->err, lx->errlen, fmt, ap);
        va_end(ap);
    }
    return CORRAL_EBADREQUEST;
}

static void skip_space(struct lexer *lx)
{
    while (isspace((unsigned char)*lx->p))
        lx->p++;
}

static bool is_word_char(char c)
{
    return c && !isspace((unsigned char)c) && !strchr("!=,()", c);
}

/* Reads a key or value; returns a malloc'd string (possibly empty). */
static char *read_word(struct lexer *lx)
{
    skip_space(lx);
    const char *start = lx->p;
    while (is_word_char(*lx->p))
        lx->p++;
    return strndup(start, (size_t)(lx->p - start));
}

static int push_value(struct corral_requirement *r, char *v)
{
    char **nv = realloc(r->values, (r->n_values + 1) * sizeof(*nv));
    if (!nv) {
        free(v);
        return -ENOMEM;
    }
    r->values = nv;
    r->values[r->n_values++] = v;
    return 0;
}

static void requirement_clear(struct corral_requirement *r)
{
    free(r->key);
    for (size_t i = 0; i < r->n_values; i++)
        free(r->values[i]);
    free(r->values);
}

static int parse_set(struct lexer *lx, struct corral_requirement *r)
{
    skip_space(lx);
    if (*lx->p != '(')
        return lex_fail(lx, "expected '(' after %s", r->op == CORRAL_SEL_IN ? "in" : "notin");
    lx->p++;
    for (;;) {
        char *v = read_word(lx);
        if (!v || push_value(r, v) < 0)
            return -ENOMEM;
        skip_space(lx);
        if (*lx->p == ',') {
            lx->p++;
            continue;
        }
        if (*lx->p == ')') {
            lx->p++;
            return 0;
        }
        return lex_fail(lx, "expected ',' or ')' in value set for \"%s\"", r->key);
    }
}

static int parse_operator(struct lexer *lx, struct corral_requirement *r, bool fields_only)
{
    skip_space(lx);
    const char *p = lx->p;
    if (p[0] == '!' && p[1] == '=') {
        r->op = CORRAL_SEL_NE, lx->p += 2;
    } else if (p[0] == '=' && p[1] == '=') {
        r->op = CORRAL_SEL_EQ, lx->p += 2;
    } else if (p[0] == '=') {
        r->op = CORRAL_SEL_EQ, lx->p += 1;
    } else if (!fields_only && strncmp(p, "in", 2) == 0 && !is_word_char(p[2])) {
        r->op = CORRAL_SEL_IN, lx->p += 2;
        return parse_set(lx, r);
    } else if (!fields_only && strncmp(p, "notin", 5) == 0 && !is_word_char(p[5])) {
        r->op = CORRAL_SEL_NOTIN, lx->p += 5;
        return parse_set(lx, r);
    } else if (!fields_only && (*p == ',' || *p == 0)) {
        r->op = CORRAL_SEL_EXISTS;
        return 0;
    } else {
        return lex_fail(lx, "invalid selector near \"%s\": expected an operator", p);
    }
    char *v = read_word(lx);
    return v ? push_value(r, v) : -ENOMEM;
}

static int parse_requirement(struct lexer *lx, struct corral_requirement *r, bool fields_only)
{
    skip_space(lx);
    bool negated = false;
    if (*lx->p == '!') {
        if (fields_only)
            return lex_fail(lx, "field selectors do not support '!key'");
        negated = true;
        lx->p++;
    }
    r->key = read_word(lx);
    if (!r->key)
        return -ENOMEM;
    if (!*r->key)
        return lex_fail(lx, "invalid selector: empty key near \"%s\"", lx->p);
    if (negated) {
        r->op = CORRAL_SEL_NOT_EXISTS;
        return 0;
    }
    return parse_operator(lx, r, fields_only);
}

static int push_requirement(struct corral_selector *sel, struct corral_requirement *r)
{
    struct corral_requirement *nr = realloc(sel->reqs, (sel->n_reqs + 1) * sizeof(*nr));
    if (!nr)
        return -ENOMEM;
    sel->reqs = nr;
    sel->reqs[sel->n_reqs++] = *r;
    return 0;
}

static int parse_string(const char *s, bool fields_only, struct corral_selector **out,
                        char *errbuf, size_t errlen)
{
    struct corral_selector *sel = calloc(1, sizeof(*sel));
    if (!sel)
        return -ENOMEM;
    struct lexer lx = {.p = s ? s : "", .err = errbuf, .errlen = errlen};
    skip_space(&lx);
    int rc = 0;
    while (*lx.p && rc == 0) {
        struct corral_requirement r = {0};
        rc = parse_requirement(&lx, &r, fields_only);
        if (rc == 0)
            rc = push_requirement(sel, &r);
        if (rc < 0) {
            requirement_clear(&r);
            break;
        }
        skip_space(&lx);
        if (*lx.p == ',')
            lx.p++;
        else if (*lx.p)
            rc = lex_fail(&lx, "invalid selector near \"%s\"", lx.p);
    }
    if (rc < 0) {
        corral_selector_free(sel);
        return rc;
    }
    *out = sel;
    return 0;
}

int corral_selector_parse(const char *s, struct corral_selector **out, char *errbuf,
                          size_t errlen)
{
    return parse_string(s, false, out, errbuf, errlen);
}

int corral_field_selector_parse(const char *s, struct corral_selector **out, char *errbuf,
                                size_t errlen)
{
    return parse_string(s, true, out, errbuf, errlen);
}

static const struct {
    const char *name;
    enum corral_selector_op op;
} json_ops[] = {
    {"In", CORRAL_SEL_IN},       {"NotIn", CORRAL_SEL_NOTIN}, {"Exists", CORRAL_SEL_EXISTS},
    {"DoesNotExist", CORRAL_SEL_NOT_EXISTS}, {"Gt", CORRAL_SEL_GT}, {"Lt", CORRAL_SEL_LT},
};

static int expression_from_json(const json_t *e, struct corral_requirement *r, char *errbuf,
                                size_t errlen)
{
    const char *key = json_string_value(json_object_get(e, "key"));
    const char *op = json_string_value(json_object_get(e, "operator"));
    if (!key || !op) {
        snprintf(errbuf, errlen, "matchExpressions: key and operator are required");
        return CORRAL_EINVALID;
    }
    size_t i;
    for (i = 0; i < sizeof(json_ops) / sizeof(json_ops[0]); i++)
        if (strcmp(op, json_ops[i].name) == 0)
            break;
    if (i == sizeof(json_ops) / sizeof(json_ops[0])) {
        snprintf(errbuf, errlen, "matchExpressions: unsupported operator \"%s\"", op);
        return CORRAL_EINVALID;
    }
    r->key = strdup(key);
    r->op = json_ops[i].op;
    json_t *vals = json_object_get(e, "values");
    size_t j;
    json_t *v;
    json_array_foreach(vals, j, v)
    {
        if (!json_is_string(v)) {
            snprintf(errbuf, errlen, "matchExpressions: values must be strings");
            return CORRAL_EINVALID;
        }
        char *s = strdup(json_string_value(v));
        if (!s || push_value(r, s) < 0)
            return -ENOMEM;
    }
    bool needs_values = r->op == CORRAL_SEL_IN || r->op == CORRAL_SEL_NOTIN;
    bool one_value = r->op == CORRAL_SEL_GT || r->op == CORRAL_SEL_LT;
    bool no_values = r->op == CORRAL_SEL_EXISTS || r->op == CORRAL_SEL_NOT_EXISTS;
    if ((needs_values && r->n_values == 0) || (one_value && r->n_values != 1) ||
        (no_values && r->n_values != 0)) {
        snprintf(errbuf, errlen, "matchExpressions: wrong number of values for %s", op);
        return CORRAL_EINVALID;
    }
    return 0;
}

static int add_expressions(struct corral_selector *sel, const json_t *exprs, char *errbuf,
                           size_t errlen)
{
    size_t i;
    json_t *e;
    json_array_foreach(exprs, i, e)
    {
        struct corral_requirement r = {0};
        int rc = expression_from_json(e, &r, errbuf, errlen);
        if (rc == 0)
            rc = push_requirement(sel, &r);
        if (rc < 0) {
            requirement_clear(&r);
            return rc;
        }
    }
    return 0;
}

static int add_match_labels(struct corral_selector *sel, const json_t *map)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)map, k, v)
    {
        if (!json_is_string(v))
            return CORRAL_EINVALID;
        struct corral_requirement r = {.key = strdup(k), .op = CORRAL_SEL_EQ};
        char *val = strdup(json_string_value(v));
        int rc = (!r.key || !val) ? -ENOMEM : push_value(&r, val);
        if (rc == 0)
            rc = push_requirement(sel, &r);
        if (rc < 0) {
            requirement_clear(&r);
            return rc;
        }
    }
    return 0;
}

int corral_selector_from_json(const json_t *js, struct corral_selector **out, char *errbuf,
                              size_t errlen)
{
    struct corral_selector *sel = calloc(1, sizeof(*sel));
    if (!sel)
        return -ENOMEM;
    int rc = 0;
    if (json_is_array(js)) {
        rc = add_expressions(sel, js, errbuf, errlen);
    } else if (json_is_object(js)) {
        json_t *ml = json_object_get(js, "matchLabels");
        if (json_is_object(ml))
            rc = add_match_labels(sel, ml);
        if (rc == 0)
            rc = add_expressions(sel, json_object_get(js, "matchExpressions"), errbuf, errlen);
    }
    if (rc < 0) {
        corral_selector_free(sel);
        return rc;
    }
    *out = sel;
    return 0;
}

int corral_selector_from_map(const json_t *map, struct corral_selector **out)
{
    struct corral_selector *sel = calloc(1, sizeof(*sel));
    if (!sel)
        return -ENOMEM;
    int rc = json_is_object(map) ? add_match_labels(sel, map) : 0;
    if (rc < 0) {
        corral_selector_free(sel);
        return rc;
    }
    *out = sel;
    return 0;
}

static bool in_values(const struct corral_requirement *r, const char *v)
{
    for (size_t i = 0; i < r->n_values; i++)
        if (strcmp(r->values[i], v) == 0)
            return true;
    return false;
}

static bool compare_int(const char *have, const char *want, bool greater)
{
    char *e1, *e2;
    long long a = strtoll(have, &e1, 10), b = strtoll(want, &e2, 10);
    if (*e1 || *e2 || !*have || !*want)
        return false;
    return greater ? a > b : a < b;
}

static bool requirement_match(const struct corral_requirement *r, const char *v)
{
    switch (r->op) {
    case CORRAL_SEL_EQ:
    case CORRAL_SEL_IN:
        return v && in_values(r, v);
    case CORRAL_SEL_NE:
    case CORRAL_SEL_NOTIN:
        return !v || !in_values(r, v);
    case CORRAL_SEL_EXISTS:
        return v != NULL;
    case CORRAL_SEL_NOT_EXISTS:
        return v == NULL;
    case CORRAL_SEL_GT:
        return v && compare_int(v, r->values[0], true);
    case CORRAL_SEL_LT:
        return v && compare_int(v, r->values[0], false);
    }
    return false;
}

bool corral_selector_match(const struct corral_selector *sel, corral_selector_lookup_fn lookup,
                           void *ctx)
{
    if (!sel)
        return true;
    for (size_t i = 0; i < sel->n_reqs; i++)
        if (!requirement_match(&sel->reqs[i], lookup(sel->reqs[i].key, ctx)))
            return false;
    return true;
}

static const char *label_lookup(const char *key, void *ctx)
{
    return json_string_value(json_object_get((const json_t *)ctx, key));
}

bool corral_selector_match_labels(const struct corral_selector *sel, const json_t *labels)
{
    return corral_selector_match(sel, label_lookup, (void *)labels);
}

bool corral_selector_is_empty(const struct corral_selector *sel)
{
    return !sel || sel->n_reqs == 0;
}

void corral_selector_free(struct corral_selector *sel)
{
    if (!sel)
        return;
    for (size_t i = 0; i < sel->n_reqs; i++)
        requirement_clear(&sel->reqs[i]);
    free(sel->reqs);
    free(sel);
}
