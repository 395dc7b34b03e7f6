/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctrl_util: object helpers the built-in controllers share: owner references, status
 * conditions, timestamps, int-or-percent values, store keys, creating pods from a template and
 * the one-call writes (delete with options, status write-if-changed) they all use.
 */
#ifndef CORRAL_CTRL_UTIL_H
#define CORRAL_CTRL_UTIL_H

#include "ctrl.h"
#include "resources.h"

#include <jansson.h>
#include <stdbool.h>
#include <time.h>

#define CORRAL_CTRL_KEY_MAX 1024

/* The kinds the controllers touch, looked up once (never NULL after corral_ctrl_kinds()). */
struct corral_ctrl_kinds {
    const struct corral_resource *pods, *nodes, *leases, *services, *endpoints, *events,
        *replicasets, *deployments, *jobs;
};
const struct corral_ctrl_kinds *corral_ctrl_kinds(void);

/* Borrowed metadata.uid / deletionTimestamp presence. */
const char *corral_ctrl_uid(const json_t *obj);
bool corral_ctrl_deleting(const json_t *obj);
/* True when metadata.finalizers holds f. */
bool corral_ctrl_has_finalizer(const json_t *obj, const char *f);
/* Removes f from metadata.finalizers. Returns true if it was there. */
bool corral_ctrl_remove_finalizer(json_t *obj, const char *f);

/* The ownerReference with controller: true (borrowed), or NULL. */
json_t *corral_ctrl_controller_ref(const json_t *obj);
/* A new ownerReference to owner (controller, blockOwnerDeletion as given). */
json_t *corral_ctrl_owner_ref(const json_t *owner, bool controller, bool block);

/* Store key of ns/name of res into buf (CORRAL_CTRL_KEY_MAX); returns buf. */
const char *corral_ctrl_key(const struct corral_resource *res, const char *ns, const char *name,
                            char *buf);
/*
 * Splits a store key "/registry/[group/]plural/ns/name" into ns and name (pointers into key's
 * copy in buf). Returns 0 or -EINVAL.
 */
int corral_ctrl_split_key(const char *key, bool namespaced, char *buf, size_t len, const char **ns,
                          const char **name);

/* Parses an RFC 3339 time; 0 when s is NULL or malformed. */
time_t corral_ctrl_parse_time(const char *s);
/* The time at obj.field0.field1... (e.g. "metadata", "creationTimestamp", NULL). */
time_t corral_ctrl_time_at(const json_t *obj, ...);
/* Writes now as RFC 3339 into out[21] and returns out. */
const char *corral_ctrl_format_time(time_t t, char out[21]);

/* Borrowed condition of type in status.conditions, or NULL. */
json_t *corral_ctrl_condition(const json_t *status, const char *type);
/*
 * Sets condition type in status.conditions (created as needed). lastTransitionTime changes only
 * when status changes; extra_time ("lastUpdateTime", "lastProbeTime" or NULL) is set to now
 * whenever anything changes. Returns true when the condition changed.
 */
bool corral_ctrl_set_condition(json_t *status, const char *type, const char *cstatus,
                               const char *reason, const char *message, const char *extra_time,
                               time_t now);
/* Removes condition type. Returns true if it was there. */
bool corral_ctrl_remove_condition(json_t *status, const char *type);

/*
 * Resolves an IntOrString (an integer or "25%") against total, rounding a percentage up or
 * down. Returns 0 and *out, or -EINVAL (the value is neither). NULL v gives def.
 */
int corral_ctrl_int_or_percent(const json_t *v, int total, bool round_up, int def, int *out);

/* Integer at obj.field (or def when absent or not an integer). */
long long corral_ctrl_int(const json_t *obj, const char *field, long long def);

/*
 * A new Pod (JSON) from a PodTemplateSpec: labels, annotations and finalizers of the template,
 * its spec, the owner reference (borrowed, copied) and generateName prefix. Caller decrefs.
 */
json_t *corral_ctrl_pod_from_template(const json_t *tmpl, const json_t *owner_ref,
                                      const char *generate_name);

/*
 * Runs fn(ctx, i) for i in [0, n) several at a time, so that the durable commits of the writes
 * they make share batches: in rounds of 1, 2, 4, ... calls (each round on up to 16 threads),
 * stopping after a round in which a call failed (returned < 0), as Kubernetes' slowStartBatch
 * does. fn must be thread-safe (the server-internal write API is). rcs[i] receives each result
 * (-ECANCELED: not run). Returns how many succeeded.
 */
size_t corral_ctrl_run_many(size_t n, int (*fn)(void *ctx, size_t i), void *ctx, int *rcs);

/* Deletion options for corral_objects_delete_with() (see objects.h). */
struct corral_delete_options;

/*
 * Deletes ns/name of res with the given grace (-1 = the object's default) and propagation
 * (NULL = Background), only if its uid is still uid (NULL = any). Returns 0, CORRAL_ENOTFOUND
 * (already gone, or replaced by another object of that name) or another error.
 */
int corral_ctrl_delete(struct corral_ctrl *c, const struct corral_resource *res, const char *ns,
                       const char *name, const char *uid, long grace, const char *propagation);

/*
 * Writes obj's status if it differs from what old holds; obj is stolen, old borrowed. obj
 * must carry old's resourceVersion (a conflict is then reported). Returns 0 or an error.
 */
int corral_ctrl_write_status(struct corral_ctrl *c, const struct corral_resource *res,
                             const json_t *old, json_t *obj);

/*
 * Adoption and release, as Kubernetes controllers do them: adopt adds owner's controller
 * reference to the object ns/name of res (only while it still has no controller and is not
 * being deleted, and is still the incarnation uid), and finalizer when not NULL; release removes
 * owner's reference (only while owner is still its controller). Returns 0 (done, or nothing to do)
 * or an error.
 */
int corral_ctrl_adopt(struct corral_ctrl *c, const struct corral_resource *res, const char *ns,
                      const char *name, const char *uid, const json_t *owner,
                      const char *finalizer);
int corral_ctrl_release(struct corral_ctrl *c, const struct corral_resource *res, const char *ns,
                        const char *name, const json_t *owner);

#endif
