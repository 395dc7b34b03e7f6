/* SPDX-License-Identifier: Apache-2.0 */
/*
 * objects: the REST verbs on stored kinds — get, list, watch, create, update (PUT), patch,
 * delete, deletecollection — and the subresources (status, binding, scale, log, eviction).
 *
 * A handler reads parse → validate → act → reply. Writes go through the store with the
 * revision the handler read, so concurrent writers get 409 Conflict rather than lost updates.
 * The same functions are used by the built-in controllers (corral_objects_* below), which
 * act as the system and skip HTTP entirely.
 */
#ifndef CORRAL_OBJECTS_H
#define CORRAL_OBJECTS_H

#include "server.h"

/* Route handler for everything under /api/v1 and /apis/G/V. */
void corral_objects_dispatch(struct corral_request *req);

/*
 * Parses a resource URL into req->res, shape, ns, name and sub. Returns 0 or CORRAL_ENOTFOUND
 * (without replying). Exposed for tests and for the auth sweep.
 */
int corral_objects_parse_target(struct corral_request *req);

/*
 * Fills req's target and verb from its method and URL when it names a resource (for metrics
 * and audit on requests answered before routing). Returns 0 or CORRAL_ENOTFOUND.
 */
int corral_objects_classify(struct corral_request *req);

/* Creates the namespaces every cluster has (default, kube-system, ...). Returns 0 or error. */
int corral_objects_bootstrap(struct corral_apiserver *srv);

/*
 * Server-internal writes used by controllers. obj is stolen. On success *out (if not NULL)
 * receives the stored object as new JSON. Return 0 or a corral error code.
 */
int corral_objects_create(struct corral_apiserver *srv, const struct corral_resource *res,
                          const char *ns, json_t *obj, json_t **out);
int corral_objects_update(struct corral_apiserver *srv, const struct corral_resource *res,
                          json_t *obj, bool status_only, json_t **out);
/* Deletes now (grace 0), honouring finalizers. */
int corral_objects_delete(struct corral_apiserver *srv, const struct corral_resource *res,
                          const char *ns, const char *name);
/* What an HTTP DELETE's DeleteOptions carry, for corral_objects_delete_with(). */
struct corral_delete_options {
    long grace;              /* seconds; -1 = the object's default (pods: their spec's) */
    const char *propagation; /* NULL or "Background", "Foreground", "Orphan" */
    const char *uid;         /* precondition: delete only this incarnation (NULL = any) */
};
/*
 * Deletes as an HTTP DELETE with those options would (graceful pod deletion, finalizers added
 * for Foreground/Orphan). Returns 0, CORRAL_ENOTFOUND, CORRAL_ECONFLICT (precondition failed)
 * or another error.
 */
int corral_objects_delete_with(struct corral_apiserver *srv, const struct corral_resource *res,
                               const char *ns, const char *name,
                               const struct corral_delete_options *opts);
/* Reads one object as new JSON. Returns 0 or CORRAL_ENOTFOUND. */
int corral_objects_get(struct corral_apiserver *srv, const struct corral_resource *res,
                       const char *ns, const char *name, json_t **out);

#endif
