/* SPDX-License-Identifier: Apache-2.0 */
/*
 * status: builders for metav1.Status. The HTTP code and reason come from corral_error_http()
 * so that the mapping stays in error.c.
 */
#include "status.h"
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

json_t *corral_status_from_error(int err, const char *message)
{
    const char *reason;
    int code = corral_error_http(err, &reason);
    return json_pack("{s:s, s:s, s:{}, s:s, s:s, s:s, s:i}", "kind", "Status", "apiVersion",
                     "v1", "metadata", "status", "Failure", "message",
                     message ? message : corral_strerror(err), "reason", reason, "code", code);
}

void corral_status_set_details(json_t *status, const char *group, const char *kind,
                               const char *name)
{
    json_t *d = json_object_get(status, "details");
    if (!d) {
        d = json_object();
        json_object_set_new(status, "details", d);
    }
    if (name)
        json_object_set_new(d, "name", json_string(name));
    if (group && *group)
        json_object_set_new(d, "group", json_string(group));
    if (kind)
        json_object_set_new(d, "kind", json_string(kind));
}

json_t *corral_status_success(void)
{
    return json_pack("{s:s, s:s, s:{}, s:s, s:i}", "kind", "Status", "apiVersion", "v1",
                     "metadata", "status", "Success", "code", 200);
}

int corral_status_code(const json_t *status)
{
    json_t *c = json_object_get(status, "code");
    return json_is_integer(c) ? (int)json_integer_value(c) : 500;
}

void corral_field_errors_init(struct corral_field_errors *fe)
{
    fe->causes = json_array();
}

void corral_field_errors_clear(struct corral_field_errors *fe)
{
    json_decref(fe->causes);
    fe->causes = NULL;
}

void corral_field_error(struct corral_field_errors *fe, const char *reason, const char *field,
                        const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_array_append_new(fe->causes, json_pack("{s:s, s:s, s:s}", "reason", reason, "message",
                                                 msg, "field", field));
}

int corral_field_errors_count(const struct corral_field_errors *fe)
{
    return (int)json_array_size(fe->causes);
}

json_t *corral_status_invalid(const char *group, const char *kind, const char *name,
                              const struct corral_field_errors *fe)
{
    char msg[2048];
    int n = snprintf(msg, sizeof(msg), "%s \"%s\" is invalid: ", kind, name ? name : "");
    size_t i;
    json_t *c;
    json_array_foreach(fe->causes, i, c)
    {
        if (n >= (int)sizeof(msg))
            break;
        n += snprintf(msg + n, sizeof(msg) - (size_t)n, "%s%s: %s", i ? ", " : "",
                      json_string_value(json_object_get(c, "field")),
                      json_string_value(json_object_get(c, "message")));
    }
    json_t *st = corral_status_from_error(CORRAL_EINVALID, msg);
    corral_status_set_details(st, group, kind, name);
    json_object_set(json_object_get(st, "details"), "causes", fe->causes);
    return st;
}
