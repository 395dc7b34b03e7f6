/* SPDX-License-Identifier: Apache-2.0 */
/*
 * error: the table behind corral_strerror() and corral_error_http(). Adding a project code
 * means adding one row here; nothing else maps codes to text or HTTP statuses.
 */
#include "error.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

struct error_row {
    int code;
    int http;
    const char *reason;
    const char *text;
};

static const struct error_row error_table[] = {
    {CORRAL_ENOTFOUND, 404, "NotFound", "not found"},
    {CORRAL_EEXISTS, 409, "AlreadyExists", "already exists"},
    {CORRAL_ECONFLICT, 409, "Conflict", "the object has been modified"},
    {CORRAL_EINVALID, 422, "Invalid", "invalid object"},
    {CORRAL_EGONE, 410, "Expired", "requested revision has been compacted"},
    {CORRAL_EBADREQUEST, 400, "BadRequest", "bad request"},
    {CORRAL_EUNAUTHORIZED, 401, "Unauthorized", "unauthorized"},
    {CORRAL_EFORBIDDEN, 403, "Forbidden", "forbidden"},
    {CORRAL_ETOOLARGE, 413, "RequestEntityTooLarge", "request entity too large"},
    {CORRAL_EMEDIATYPE, 415, "UnsupportedMediaType", "unsupported media type"},
    {CORRAL_EMETHOD, 405, "MethodNotAllowed", "method not allowed"},
    {CORRAL_ETIMEOUT, 504, "Timeout", "timed out"},
    {CORRAL_EUNAVAILABLE, 503, "ServiceUnavailable", "service unavailable"},
    {CORRAL_EPARSE, 400, "BadRequest", "syntax error"},
    {CORRAL_EABI, 500, "InternalError", "incompatible plugin ABI"},
    {CORRAL_EUNSCHEDULABLE, 500, "InternalError", "no node fits"},
    {CORRAL_EINTERNAL, 500, "InternalError", "internal error"},
    /* errno values that carry a natural HTTP meaning */
    {-ENOENT, 404, "NotFound", NULL},
    {-EEXIST, 409, "AlreadyExists", NULL},
    {-EINVAL, 400, "BadRequest", NULL},
    {-E2BIG, 413, "RequestEntityTooLarge", NULL},
    {-ETIMEDOUT, 504, "Timeout", NULL},
    {-EACCES, 403, "Forbidden", NULL},
    {-EPERM, 403, "Forbidden", NULL},
};

static const struct error_row *error_find(int err)
{
    for (size_t i = 0; i < sizeof(error_table) / sizeof(error_table[0]); i++)
        if (error_table[i].code == err)
            return &error_table[i];
    return NULL;
}

const char *corral_strerror(int err)
{
    const struct error_row *row = error_find(err);
    if (row && row->text)
        return row->text;
    if (err < 0 && err > CORRAL_EBASE)
        return strerror(-err);
    return "unknown error";
}

int corral_error_http(int err, const char **reason)
{
    const struct error_row *row = error_find(err);
    if (!row) {
        *reason = "InternalError";
        return 500;
    }
    *reason = row->reason;
    return row->http;
}

/*
 * Codes that never travel over HTTP as themselves: they share a status and reason with a
 * wire code (EPARSE is sent as BadRequest, EABI and EUNSCHEDULABLE as InternalError).
 */
static bool error_on_wire(int code)
{
    return code != CORRAL_EPARSE && code != CORRAL_EABI && code != CORRAL_EUNSCHEDULABLE;
}

/* The project rows come first in error_table; the loops below stop at the first errno row. */
static int error_from_status(int http)
{
    switch (http) {
    case 409:
        return CORRAL_ECONFLICT;
    case 429:
    case 502:
        return CORRAL_EUNAVAILABLE;
    default:
        break;
    }
    for (const struct error_row *row = error_table; row->code < CORRAL_ELAST; row++)
        if (row->http == http && error_on_wire(row->code))
            return row->code;
    if (http >= 500)
        return CORRAL_EINTERNAL;
    return CORRAL_EBADREQUEST;
}

int corral_error_from_http(int http, const char *reason)
{
    if (http < 400)
        return 0;
    if (reason && strcmp(reason, "Gone") == 0)
        return CORRAL_EGONE;
    for (const struct error_row *row = error_table; row->code < CORRAL_ELAST; row++)
        if (reason && strcmp(row->reason, reason) == 0 && row->http == http &&
            error_on_wire(row->code))
            return row->code;
    return error_from_status(http);
}
