/* SPDX-License-Identifier: Apache-2.0 */
/*
 * structural: CRD schemas applied to custom objects (see structural.h).
 *
 * Each walk carries the field path being visited in one buffer ("spec.items[2].name"),
 * extended and truncated back as it descends, so messages name fields the way Kubernetes
 * does. The walks never modify the schema.
 */
#include "structural.h"
#include "error.h"

#include <ctype.h>
#include <math.h>
#include <regex.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_MAX_LEN 1024
#define INVALID "FieldValueInvalid"
#define REQUIRED "FieldValueRequired"
#define UNSUPPORTED "FieldValueNotSupported"
#define DUPLICATE "FieldValueDuplicate"

struct walk {
    char path[PATH_MAX_LEN];
    struct corral_field_errors *fe;
};

/* Appends ".key" (or "key" at the root) to the path; returns the old length. */
static size_t push_key(char *path, const char *key)
{
    size_t n = strlen(path);
    snprintf(path + n, PATH_MAX_LEN - n, "%s%s", n ? "." : "", key);
    return n;
}

static size_t push_index(char *path, size_t i)
{
    size_t n = strlen(path);
    snprintf(path + n, PATH_MAX_LEN - n, "[%zu]", i);
    return n;
}

static bool is_true(const json_t *schema, const char *key)
{
    return json_is_true(json_object_get(schema, key));
}

static bool preserves_unknown(const json_t *schema)
{
    return is_true(schema, "x-kubernetes-preserve-unknown-fields");
}

/* ---- pruning ---- */

static size_t prune_value(const json_t *schema, json_t *value, bool root);

static size_t prune_object(const json_t *schema, json_t *obj, bool root)
{
    json_t *props = json_object_get(schema, "properties");
    json_t *extra = json_object_get(schema, "additionalProperties");
    bool keep_unknown = preserves_unknown(schema) || json_is_true(extra) ||
                        is_true(schema, "x-kubernetes-embedded-resource");
    size_t removed = 0;
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(obj, tmp, k, v)
    {
        if (root && (!strcmp(k, "apiVersion") || !strcmp(k, "kind") || !strcmp(k, "metadata")))
            continue;
        const json_t *sub = json_object_get(props, k);
        if (!sub && json_is_object(extra))
            sub = extra;
        if (sub) {
            removed += prune_value(sub, v, false);
        } else if (!keep_unknown) {
            json_object_del(obj, k);
            removed++;
        }
    }
    return removed;
}

static size_t prune_value(const json_t *schema, json_t *value, bool root)
{
    if (!json_is_object(schema))
        return 0;
    size_t removed = 0;
    if (json_is_object(value)) {
        removed = prune_object(schema, value, root);
    } else if (json_is_array(value)) {
        size_t i;
        json_t *e;
        json_array_foreach(value, i, e)
        {
            removed += prune_value(json_object_get(schema, "items"), e, false);
        }
    }
    return removed;
}

size_t corral_structural_prune(const json_t *schema, json_t *obj)
{
    return prune_value(schema, obj, true);
}

/* ---- defaults ---- */

static void default_value(const json_t *schema, json_t *value, bool root)
{
    if (!json_is_object(schema))
        return;
    if (json_is_array(value)) {
        size_t i;
        json_t *e;
        json_array_foreach(value, i, e)
        {
            default_value(json_object_get(schema, "items"), e, false);
        }
        return;
    }
    if (!json_is_object(value))
        return;
    json_t *props = json_object_get(schema, "properties");
    const char *k;
    json_t *sub;
    json_object_foreach(props, k, sub)
    {
        if (root && !strcmp(k, "metadata"))
            continue;
        json_t *have = json_object_get(value, k);
        json_t *def = json_object_get(sub, "default");
        if (!have && def && !json_is_null(def))
            json_object_set_new(value, k, json_deep_copy(def));
        else if (have)
            default_value(sub, have, false);
    }
    json_t *extra = json_object_get(schema, "additionalProperties");
    if (json_is_object(extra)) {
        json_object_foreach(value, k, sub)
        {
            if (!json_object_get(props, k))
                default_value(extra, sub, false);
        }
    }
}

void corral_structural_default(const json_t *schema, json_t *obj)
{
    default_value(schema, obj, true);
}

/* ---- validation ---- */

static const char *type_of(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    default:
        return "null";
    }
}

/* The value as Kubernetes prints it in "Invalid value: X" (JSON for scalars). */
static char *show(const json_t *v)
{
    if (json_is_object(v) || json_is_array(v))
        return strdup(json_is_object(v) ? "\"object\"" : "\"array\"");
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    return s ? s : strdup("?");
}

static void invalid(struct walk *w, const json_t *v, const char *fmt, const char *a, const char *b)
{
    char detail[512];
    snprintf(detail, sizeof(detail), fmt, a, b);
    char *shown = show(v);
    corral_field_error(w->fe, INVALID, w->path, "Invalid value: %s: %s in body %s",
                       shown ? shown : "?", w->path, detail);
    free(shown);
}

static bool type_matches(const char *type, const json_t *v)
{
    if (!strcmp(type, "object"))
        return json_is_object(v);
    if (!strcmp(type, "array"))
        return json_is_array(v);
    if (!strcmp(type, "string"))
        return json_is_string(v);
    if (!strcmp(type, "boolean"))
        return json_is_boolean(v);
    if (!strcmp(type, "number"))
        return json_is_number(v);
    if (!strcmp(type, "integer"))
        return json_is_integer(v) ||
               (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)));
    return true;
}

/* Returns false (after recording why) when v has the wrong type; deeper checks then stop. */
static bool check_type(struct walk *w, const json_t *schema, const json_t *v)
{
    const char *type = json_string_value(json_object_get(schema, "type"));
    if (json_is_null(v)) {
        if (is_true(schema, "nullable") ||
            (!type && !is_true(schema, "x-kubernetes-int-or-string")))
            return false; /* nothing more to check on null */
        corral_field_error(w->fe, INVALID, w->path,
                           "Invalid value: \"null\": %s in body must be of type %s: \"null\"",
                           w->path, type ? type : "integer,string");
        return false;
    }
    if (is_true(schema, "x-kubernetes-int-or-string")) {
        if (json_is_integer(v) || json_is_string(v))
            return true;
        char got[32];
        snprintf(got, sizeof(got), "\"%s\"", type_of(v));
        corral_field_error(w->fe, INVALID, w->path,
                           "Invalid value: \"%s\": %s in body must be of type integer,string: %s",
                           type_of(v), w->path, got);
        return false;
    }
    if (!type || type_matches(type, v))
        return true;
    corral_field_error(w->fe, INVALID, w->path,
                       "Invalid value: \"%s\": %s in body must be of type %s: \"%s\"", type_of(v),
                       w->path, type, type_of(v));
    return false;
}

static void check_enum(struct walk *w, const json_t *schema, const json_t *v)
{
    json_t *values = json_object_get(schema, "enum");
    if (!json_is_array(values))
        return;
    size_t i;
    json_t *e;
    json_array_foreach(values, i, e) if (json_equal(e, (json_t *)v)) return;
    char list[1024] = "";
    size_t n = 0;
    json_array_foreach(values, i, e)
    {
        char *s = show(e);
        if (s && n < sizeof(list))
            n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", i ? ", " : "", s);
        free(s);
    }
    char *shown = show(v);
    corral_field_error(w->fe, UNSUPPORTED, w->path, "Unsupported value: %s: supported values: %s",
                       shown ? shown : "?", list);
    free(shown);
}

static void check_number(struct walk *w, const json_t *schema, const json_t *v)
{
    if (!json_is_number(v))
        return;
    double x = json_number_value(v);
    char lim[64];
    json_t *min = json_object_get(schema, "minimum"), *max = json_object_get(schema, "maximum");
    if (json_is_number(min)) {
        bool excl = is_true(schema, "exclusiveMinimum");
        snprintf(lim, sizeof(lim), "%.15g", json_number_value(min));
        if (excl ? x <= json_number_value(min) : x < json_number_value(min))
            invalid(w, v, "should be greater than %s%s", excl ? "" : "or equal to ", lim);
    }
    if (json_is_number(max)) {
        bool excl = is_true(schema, "exclusiveMaximum");
        snprintf(lim, sizeof(lim), "%.15g", json_number_value(max));
        if (excl ? x >= json_number_value(max) : x > json_number_value(max))
            invalid(w, v, "should be less than %s%s", excl ? "" : "or equal to ", lim);
    }
    json_t *mult = json_object_get(schema, "multipleOf");
    if (json_is_number(mult) && json_number_value(mult) > 0) {
        double q = x / json_number_value(mult);
        snprintf(lim, sizeof(lim), "%.15g", json_number_value(mult));
        if (fabs(q - round(q)) > 1e-9)
            invalid(w, v, "should be a multiple of %s%s", lim, "");
    }
    const char *format = json_string_value(json_object_get(schema, "format"));
    if (format && !strcmp(format, "int32") && json_is_integer(v) &&
        (json_integer_value(v) < INT32_MIN || json_integer_value(v) > INT32_MAX))
        invalid(w, v, "must be of type %s%s", "int32", "");
}

/* Translates ECMA-262 escapes POSIX ERE lacks. Returns a new string (caller frees). */
static char *posix_pattern(const char *p)
{
    size_t cap = strlen(p) * 12 + 1;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t n = 0;
    for (; *p; p++) {
        const char *rep = NULL;
        if (p[0] == '\\' && p[1]) {
            switch (p[1]) {
            case 'd':
                rep = "[0-9]";
                break;
            case 'D':
                rep = "[^0-9]";
                break;
            case 'w':
                rep = "[A-Za-z0-9_]";
                break;
            case 'W':
                rep = "[^A-Za-z0-9_]";
                break;
            case 's':
                rep = "[[:space:]]";
                break;
            case 'S':
                rep = "[^[:space:]]";
                break;
            default:
                break;
            }
        }
        if (rep) {
            n += (size_t)snprintf(out + n, cap - n, "%s", rep);
            p++;
        } else {
            out[n++] = *p;
        }
    }
    out[n] = 0;
    return out;
}

#define PATTERN_MAX_REPEAT 1000

/* The repeat count of a {n}, {n,} or {n,m} at p (the larger bound), or -1 if p is not one. */
static long repeat_count(const char *p, const char **end)
{
    if (*p != '{' || !isdigit((unsigned char)p[1]))
        return -1;
    char *e;
    long n = strtol(p + 1, &e, 10);
    if (*e == ',' && isdigit((unsigned char)e[1]))
        n = strtol(e + 1, &e, 10);
    else if (*e == ',')
        e++;
    if (*e != '}')
        return -1;
    *end = e;
    return n;
}

/*
 * Whether a pattern would cost the regex compiler more than it may spend: a repetition of a
 * repetition (`a++`, `a{2}{3}`), a repeat count over 1000, or counted
 * repetitions nested to more than 1000 copies. glibc expands each such repetition into copies
 * of its operand, so `x+++…` or `(a{1000}){1000}` takes gigabytes; Kubernetes (Go's regexp)
 * refuses them too ("invalid nested repetition operator", "invalid repeat count").
 */
static const char *pattern_cost_error(const char *p)
{
    long inner[1001] = {1}; /* per open group: the largest copy count inside it */
    int depth = 0;
    int after_quantifier = 0; /* 1 right after a quantifier, 2 after its lazy `?` */
    long last_atom = 1; /* copies of the atom just read (a group's inside, or 1) */
    for (; *p; p++) {
        const char *end = p;
        long n = repeat_count(p, &end);
        bool quant = n >= 0 || *p == '*' || *p == '+' || *p == '?';
        if (quant) {
            if (after_quantifier == 1 && *p == '?') {
                after_quantifier = 2; /* `+?`: the lazy form, which Go accepts */
                continue;
            }
            if (after_quantifier)
                return "invalid nested repetition operator";
            if (n > PATTERN_MAX_REPEAT)
                return "invalid repeat count (over 1000)";
            long copies = last_atom * (n > 0 ? n : 1);
            if (copies > PATTERN_MAX_REPEAT)
                return "expression too large (nested repetitions over 1000 copies)";
            if (copies > inner[depth])
                inner[depth] = copies;
            after_quantifier = 1;
            p = end;
            continue;
        }
        after_quantifier = 0;
        last_atom = 1;
        if (*p == '\\' && p[1]) {
            p++;
        } else if (*p == '[') { /* a bracket expression is one atom */
            const char *q = p + 1;
            if (*q == '^')
                q++;
            if (*q == ']')
                q++;
            while (*q && *q != ']')
                q++;
            if (!*q)
                return NULL; /* unbalanced: regcomp refuses it */
            p = q;
        } else if (*p == '(') {
            if (++depth >= (int)(sizeof(inner) / sizeof(inner[0])))
                return "expression too deeply nested";
            inner[depth] = 1;
        } else if (*p == ')' && depth > 0) {
            last_atom = inner[depth--];
            if (last_atom > inner[depth])
                inner[depth] = last_atom;
        }
    }
    return NULL;
}

/* The first costly pattern in schema or its sub-schemas (path extended to it), or NULL. */
static const char *costly_pattern(const json_t *schema, char *path)
{
    if (!json_is_object(schema))
        return NULL;
    const char *pattern = json_string_value(json_object_get(schema, "pattern"));
    const char *why = pattern ? pattern_cost_error(pattern) : NULL;
    if (why) {
        push_key(path, "pattern");
        return why;
    }
    /* only the keywords that hold schemas: a default or an enum value is data */
    static const char *const single[] = {"additionalProperties", "items", "not"};
    static const char *const lists[] = {"items", "allOf", "anyOf", "oneOf"};
    const char *key;
    json_t *sub;
    size_t n = push_key(path, "properties");
    json_object_foreach(json_object_get(schema, "properties"), key, sub)
    {
        size_t m = push_key(path, key);
        if ((why = costly_pattern(sub, path)))
            return why;
        path[m] = 0;
    }
    path[n] = 0;
    for (size_t k = 0; k < sizeof(single) / sizeof(single[0]); k++) {
        n = push_key(path, single[k]);
        if ((why = costly_pattern(json_object_get(schema, single[k]), path)))
            return why;
        path[n] = 0;
    }
    for (size_t k = 0; k < sizeof(lists) / sizeof(lists[0]); k++) {
        size_t i;
        n = push_key(path, lists[k]);
        json_array_foreach(json_object_get(schema, lists[k]), i, sub)
        {
            size_t m = push_index(path, i);
            if ((why = costly_pattern(sub, path)))
                return why;
            path[m] = 0;
        }
        path[n] = 0;
    }
    return NULL;
}

int corral_structural_check_patterns(const json_t *schema, char *path, size_t len,
                                     const char **why)
{
    char at[PATH_MAX_LEN];
    snprintf(at, sizeof(at), "%s", path);
    *why = costly_pattern(schema, at);
    if (!*why)
        return 0;
    snprintf(path, len, "%s", at);
    return CORRAL_EINVALID;
}

static void check_pattern(struct walk *w, const char *pattern, const json_t *v)
{
    if (pattern_cost_error(pattern))
        return; /* refused when the CRD is written; never handed to the compiler */
    char *posix = posix_pattern(pattern);
    regex_t re;
    if (!posix || regcomp(&re, posix, REG_EXTENDED | REG_NOSUB) != 0) {
        free(posix);
        return; /* an expression POSIX cannot express: not checked (see structural.h) */
    }
    if (regexec(&re, json_string_value(v), 0, NULL, 0) != 0) {
        char quoted[600];
        snprintf(quoted, sizeof(quoted), "'%s'", pattern);
        invalid(w, v, "should match %s%s", quoted, "");
    }
    regfree(&re);
    free(posix);
}

static void check_bound(struct walk *w, const json_t *schema, const json_t *v, const char *key,
                        size_t have, bool at_least, const char *unit)
{
    json_t *lim = json_object_get(schema, key);
    if (!json_is_integer(lim))
        return;
    size_t want = (size_t)json_integer_value(lim);
    if (at_least ? have >= want : have <= want)
        return;
    char detail[96];
    snprintf(detail, sizeof(detail), "%zu %s", want, unit);
    invalid(w, v, at_least ? "should have at least %s%s" : "should have at most %s%s", detail, "");
}

static void check_string(struct walk *w, const json_t *schema, const json_t *v)
{
    if (!json_is_string(v))
        return;
    const char *s = json_string_value(v);
    size_t chars = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        chars += (*p & 0xC0) != 0x80; /* UTF-8 code points */
    json_t *minl = json_object_get(schema, "minLength");
    json_t *maxl = json_object_get(schema, "maxLength");
    char detail[64];
    if (json_is_integer(minl) && chars < (size_t)json_integer_value(minl)) {
        snprintf(detail, sizeof(detail), "%lld", (long long)json_integer_value(minl));
        invalid(w, v, "should be at least %s chars long%s", detail, "");
    }
    if (json_is_integer(maxl) && chars > (size_t)json_integer_value(maxl)) {
        snprintf(detail, sizeof(detail), "%lld", (long long)json_integer_value(maxl));
        invalid(w, v, "should be at most %s chars long%s", detail, "");
    }
    const char *pattern = json_string_value(json_object_get(schema, "pattern"));
    if (pattern)
        check_pattern(w, pattern, v);
}

static void validate_value(struct walk *w, const json_t *schema, const json_t *v, bool root);

/* Elements of an x-kubernetes-list-type set or map list must be unique. */
static void check_list_type(struct walk *w, const json_t *schema, const json_t *v)
{
    const char *lt = json_string_value(json_object_get(schema, "x-kubernetes-list-type"));
    if (!lt || (strcmp(lt, "set") && strcmp(lt, "map")))
        return;
    json_t *keys = json_object_get(schema, "x-kubernetes-list-map-keys");
    for (size_t i = 1; i < json_array_size(v); i++) {
        json_t *a = json_array_get(v, i);
        for (size_t j = 0; j < i; j++) {
            json_t *b = json_array_get(v, j);
            bool same = true;
            if (!strcmp(lt, "set")) {
                same = json_equal(a, b);
            } else {
                size_t k;
                json_t *key;
                json_array_foreach(keys, k, key)
                {
                    const char *name = json_string_value(key);
                    same &= name && json_equal(json_object_get(a, name), json_object_get(b, name));
                }
            }
            if (!same)
                continue;
            size_t base = push_index(w->path, i);
            const char *key0 = json_string_value(json_array_get(keys, 0));
            char *shown = show(!strcmp(lt, "set") || !key0 ? a : json_object_get(a, key0));
            corral_field_error(w->fe, DUPLICATE, w->path, "Duplicate value: %s",
                               shown ? shown : "?");
            free(shown);
            w->path[base] = 0;
            break;
        }
    }
}

static void check_array(struct walk *w, const json_t *schema, const json_t *v)
{
    if (!json_is_array(v))
        return;
    check_bound(w, schema, v, "minItems", json_array_size(v), true, "items");
    check_bound(w, schema, v, "maxItems", json_array_size(v), false, "items");
    check_list_type(w, schema, v);
    const json_t *items = json_object_get(schema, "items");
    if (!json_is_object(items))
        return;
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        size_t base = push_index(w->path, i);
        validate_value(w, items, e, false);
        w->path[base] = 0;
    }
}

static void check_object(struct walk *w, const json_t *schema, const json_t *v, bool root)
{
    if (!json_is_object(v))
        return;
    check_bound(w, schema, v, "minProperties", json_object_size(v), true, "properties");
    check_bound(w, schema, v, "maxProperties", json_object_size(v), false, "properties");
    size_t i;
    json_t *req;
    json_array_foreach(json_object_get(schema, "required"), i, req)
    {
        const char *name = json_string_value(req);
        if (!name || json_object_get(v, name))
            continue;
        size_t base = push_key(w->path, name);
        corral_field_error(w->fe, REQUIRED, w->path, "Required value");
        w->path[base] = 0;
    }
    json_t *props = json_object_get(schema, "properties");
    json_t *extra = json_object_get(schema, "additionalProperties");
    const char *k;
    json_t *child;
    json_object_foreach((json_t *)v, k, child)
    {
        if (root && (!strcmp(k, "metadata") || !strcmp(k, "apiVersion") || !strcmp(k, "kind")))
            continue;
        const json_t *sub = json_object_get(props, k);
        if (!sub && json_is_object(extra))
            sub = extra;
        if (!sub)
            continue;
        size_t base = push_key(w->path, k);
        validate_value(w, sub, child, false);
        w->path[base] = 0;
    }
}

/* Validates v against each schema of a combinator; returns how many accepted it. */
static size_t count_accepting(struct walk *w, const json_t *schemas, const json_t *v, bool root)
{
    size_t ok = 0, i;
    json_t *s;
    json_array_foreach(schemas, i, s)
    {
        struct corral_field_errors fe;
        corral_field_errors_init(&fe);
        struct walk sub = {.fe = &fe};
        memcpy(sub.path, w->path, sizeof(sub.path));
        validate_value(&sub, s, v, root);
        ok += corral_field_errors_count(&fe) == 0;
        corral_field_errors_clear(&fe);
    }
    return ok;
}

static void check_combinators(struct walk *w, const json_t *schema, const json_t *v, bool root)
{
    json_t *all = json_object_get(schema, "allOf");
    size_t i;
    json_t *s;
    json_array_foreach(all, i, s) validate_value(w, s, v, root);
    json_t *any = json_object_get(schema, "anyOf"), *one = json_object_get(schema, "oneOf");
    if (json_array_size(any) > 0 && count_accepting(w, any, v, root) == 0)
        invalid(w, v, "should match at least one schema in anyOf%s%s", "", "");
    if (json_array_size(one) > 0) {
        size_t n = count_accepting(w, one, v, root);
        if (n != 1)
            invalid(w, v, "should match exactly one schema in oneOf%s%s",
                    n ? " (it matches several)" : "", "");
    }
    json_t *not = json_object_get(schema, "not");
    if (json_is_object(not )) {
        json_t *wrap = json_pack("[O]", not );
        if (count_accepting(w, wrap, v, root) == 1)
            invalid(w, v, "must not match the schema in not%s%s", "", "");
        json_decref(wrap);
    }
}

static void validate_value(struct walk *w, const json_t *schema, const json_t *v, bool root)
{
    if (!json_is_object(schema) || !v)
        return;
    if (!check_type(w, schema, v))
        return;
    check_enum(w, schema, v);
    check_number(w, schema, v);
    check_string(w, schema, v);
    check_array(w, schema, v);
    check_object(w, schema, v, root);
    check_combinators(w, schema, v, root);
}

void corral_structural_validate(const json_t *schema, const json_t *obj,
                                struct corral_field_errors *fe)
{
    struct walk w = {.fe = fe};
    validate_value(&w, schema, obj, true);
}
