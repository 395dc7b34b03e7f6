/* SPDX-License-Identifier: Apache-2.0 */
/*
 * validate: server-side defaulting, validation and field-selector fields for each built-in
 * kind. The registry (resources.c) points at these; handlers never call them directly.
 *
 * Validation reports every problem it finds as a cause with the exact field path
 * ("spec.containers[0].resources.limits.cpu") so that a 422 names each bad field, and it never
 * modifies the object. Defaulting fills what Kubernetes fills (restartPolicy, protocols,
 * requests from limits, ...), so objects read back look like a real cluster's.
 */
#ifndef CORRAL_VALIDATE_H
#define CORRAL_VALIDATE_H

#include "status.h"

#include <jansson.h>
#include <stddef.h>

/* Seconds a pod tolerates a not-ready/unreachable node before eviction, unless it says. */
#define CORRAL_DEFAULT_TOLERATION_SECONDS 20

/* Metadata checks shared by every kind (name syntax, labels, annotations). */
void corral_validate_metadata(const json_t *obj, int name_rule, struct corral_field_errors *fe);
enum { CORRAL_NAME_SUBDOMAIN = 0, CORRAL_NAME_LABEL = 1, CORRAL_NAME_DNS1035 = 2,
       CORRAL_NAME_PATH_SEGMENT = 3 };

/* Validates a PodSpec at field path prefix (e.g. "spec" or "spec.template.spec"). */
void corral_validate_pod_spec(const json_t *spec, const char *prefix,
                              struct corral_field_errors *fe);
/* Applies PodSpec defaults in place. */
void corral_default_pod_spec(json_t *spec);

void corral_default_namespace(json_t *obj);
void corral_default_pod(json_t *obj);
void corral_default_service(json_t *obj);
void corral_default_secret(json_t *obj);
void corral_default_deployment(json_t *obj);
void corral_default_replicaset(json_t *obj);
void corral_default_job(json_t *obj);
/* Custom objects: prunes fields their CRD schema does not declare, then fills its defaults. */
void corral_default_custom(json_t *obj);

void corral_validate_generic(const json_t *obj, const json_t *old, struct corral_field_errors *fe);
void corral_validate_namespace(const json_t *obj, const json_t *old,
                               struct corral_field_errors *fe);
void corral_validate_node(const json_t *obj, const json_t *old, struct corral_field_errors *fe);
void corral_validate_pod(const json_t *obj, const json_t *old, struct corral_field_errors *fe);
void corral_validate_service(const json_t *obj, const json_t *old, struct corral_field_errors *fe);
void corral_validate_configmap(const json_t *obj, const json_t *old,
                               struct corral_field_errors *fe);
void corral_validate_secret(const json_t *obj, const json_t *old, struct corral_field_errors *fe);
void corral_validate_event(const json_t *obj, const json_t *old, struct corral_field_errors *fe);
void corral_validate_deployment(const json_t *obj, const json_t *old,
                                struct corral_field_errors *fe);
void corral_validate_replicaset(const json_t *obj, const json_t *old,
                                struct corral_field_errors *fe);
void corral_validate_job(const json_t *obj, const json_t *old, struct corral_field_errors *fe);
void corral_validate_rbac(const json_t *obj, const json_t *old, struct corral_field_errors *fe);
void corral_validate_crd(const json_t *obj, const json_t *old, struct corral_field_errors *fe);
void corral_validate_podgroup(const json_t *obj, const json_t *old,
                              struct corral_field_errors *fe);
void corral_validate_custom(const json_t *obj, const json_t *old, struct corral_field_errors *fe);

/* Returned by field functions for a field the kind does not support in selectors. */
extern const char corral_field_unsupported[];

/*
 * Field-selector values. Each returns the field's value as text (into buf when it has to be
 * formatted), "" for a supported field the object lacks, or corral_field_unsupported.
 */
const char *corral_field_generic(const json_t *obj, const char *field, char *buf, size_t len);
const char *corral_field_namespace(const json_t *obj, const char *field, char *buf, size_t len);
const char *corral_field_node(const json_t *obj, const char *field, char *buf, size_t len);
const char *corral_field_pod(const json_t *obj, const char *field, char *buf, size_t len);
const char *corral_field_secret(const json_t *obj, const char *field, char *buf, size_t len);
const char *corral_field_event(const json_t *obj, const char *field, char *buf, size_t len);

/* Looks up a dotted path ("spec.nodeName") and formats scalars as text. NULL if absent. */
const char *corral_json_path_text(const json_t *obj, const char *path, char *buf, size_t len);

#endif
