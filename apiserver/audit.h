/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit: the apiserver's audit log, one JSON object per line, in the shape of Kubernetes'
 * audit.k8s.io/v1 Event at level Metadata (so existing audit tooling reads it):
 *
 *   {"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"<uuid>",
 *    "stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods","verb":"create",
 *    "user":{"username":"alice","groups":["team-a","system:authenticated"]},
 *    "impersonatedUser":{"username":"bob","groups":[...]},   (only with kubectl --as)
 *    "sourceIPs":["127.0.0.1"],"userAgent":"kubectl/v1.32.4 ...",
 *    "objectRef":{"resource":"pods","namespace":"default","name":"web","apiGroup":"",
 *                 "apiVersion":"v1","subresource":"status"},
 *    "responseStatus":{"code":201},
 *    "requestReceivedTimestamp":"...","stageTimestamp":"..."}
 *
 * Which requests: every mutating one (create, update, patch, delete, deletecollection, and the
 * POSTs of subresources such as binding), whatever its outcome (401, 403 and failures
 * included); reads are not logged. corral_audit_wants() says so for a verb. Request bodies are
 * never logged, so no secret reaches the log.
 *
 * The file is opened O_APPEND, created 0600; each event is one write(2) under a mutex, so
 * lines from concurrent requests never interleave. Thread-safe.
 */
#ifndef CORRAL_AUDIT_H
#define CORRAL_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct corral_audit;

/* What one request did. Strings may be NULL (left out of the line). */
struct corral_audit_event {
    const char *user;
    const char *const *groups; /* n_groups entries */
    size_t n_groups;
    const char *impersonated_user; /* when user acted as someone else (kubectl --as) */
    const char *const *impersonated_groups;
    size_t n_impersonated_groups;
    const char *verb;        /* Kubernetes verb: create, update, patch, delete, ... */
    const char *request_uri; /* path and query */
    const char *api_group;   /* "" for core */
    const char *api_version; /* "v1" */
    const char *resource;    /* "pods" */
    const char *subresource; /* "status", "binding" */
    const char *ns;
    const char *name;
    const char *source_ip;
    const char *user_agent;
    int code;             /* HTTP status of the reply */
    uint64_t received_ns; /* CLOCK_REALTIME ns when the request arrived; 0 = now */
};

/* Opens (creating 0600) path for appending. Returns 0 and *out, or -errno (logged). */
int corral_audit_open(const char *path, struct corral_audit **out);

void corral_audit_close(struct corral_audit *a);

/* true for the verbs that are logged (the mutating ones). */
bool corral_audit_wants(const char *verb);

/*
 * Appends one line for ev. Returns 0, -ENOMEM, or -errno from write(2) (also logged once per
 * failure streak: an audit log that cannot be written is an operational emergency).
 */
int corral_audit_log(struct corral_audit *a, const struct corral_audit_event *ev);

#endif
