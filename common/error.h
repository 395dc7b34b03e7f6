/* SPDX-License-Identifier: Apache-2.0 */
/*
 * error: corral's one error convention.
 *
 * Every function that can fail returns 0 (or a non-negative count) on success and a negative
 * number on failure: either a negated errno (-ENOMEM, -EINVAL, -ENOENT, ...) or one of the
 * project codes below, which sit far below any errno value. corral_strerror() names both.
 * corral_error_http() maps a code to the HTTP status and Kubernetes `reason` that the apiserver
 * answers with, so the mapping lives in exactly one table.
 */
#ifndef CORRAL_ERROR_H
#define CORRAL_ERROR_H

enum corral_error {
    CORRAL_EBASE = -20000,
    CORRAL_ENOTFOUND = CORRAL_EBASE,   /* object does not exist (404 NotFound) */
    CORRAL_EEXISTS,                    /* object already exists (409 AlreadyExists) */
    CORRAL_ECONFLICT,                  /* stale resourceVersion (409 Conflict) */
    CORRAL_EINVALID,                   /* object fails validation (422 Invalid) */
    CORRAL_EGONE,                      /* revision compacted (410 Expired) */
    CORRAL_EBADREQUEST,                /* malformed request (400 BadRequest) */
    CORRAL_EUNAUTHORIZED,              /* no or bad credentials (401) */
    CORRAL_EFORBIDDEN,                 /* authenticated but not allowed (403) */
    CORRAL_ETOOLARGE,                  /* body over the limit (413 RequestEntityTooLarge) */
    CORRAL_EMEDIATYPE,                 /* unsupported content type (415) */
    CORRAL_EMETHOD,                    /* method not allowed (405) */
    CORRAL_ETIMEOUT,                   /* request ran out of time (504 Timeout) */
    CORRAL_EUNAVAILABLE,               /* store or peer unavailable (503 ServiceUnavailable) */
    CORRAL_EPARSE,                     /* YAML/JSON/CSV syntax error */
    CORRAL_EABI,                       /* plugin built for another ABI */
    CORRAL_EUNSCHEDULABLE,             /* no node fits the pod */
    CORRAL_EINTERNAL,                  /* a bug or an unexpected state (500) */
    CORRAL_ELAST
};

/* Returns a static, human-readable description of err (negative errno or project code). */
const char *corral_strerror(int err);

/*
 * Maps err to an HTTP status code and a Kubernetes Status reason ("NotFound", ...).
 * *reason is a static string. Unknown codes map to 500 InternalError.
 */
int corral_error_http(int err, const char **reason);

/*
 * The reverse, for clients: maps an HTTP status and the reply's Status `reason` (NULL or "" when
 * the body carried none) to a project code. Returns 0 for 1xx-3xx statuses. The reason decides
 * when it is known ("AlreadyExists" and "Conflict" are both 409); otherwise the status does.
 */
int corral_error_from_http(int http, const char *reason);

#endif
