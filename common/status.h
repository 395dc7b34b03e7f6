/* SPDX-License-Identifier: Apache-2.0 */
/*
 * status: Kubernetes `Status` objects, the one shape every error reply takes.
 *
 * Validation collects field errors into a corral_field_errors list; corral_status_invalid()
 * turns it into a 422 Status whose details.causes name each bad field, which is what kubectl
 * prints ("The Pod \"x\" is invalid: spec.containers[0].image: Required value").
 */
#ifndef CORRAL_STATUS_H
#define CORRAL_STATUS_H

#include <jansson.h>

/* A Status{status: Failure} for err (a corral code or -errno). New reference. */
json_t *corral_status_from_error(int err, const char *message);

/* Adds details {name, group, kind} to status (borrowed). kind is the resource ("pods"). */
void corral_status_set_details(json_t *status, const char *group, const char *kind,
                               const char *name);

/* Status{status: Success, code 200}. New reference. */
json_t *corral_status_success(void);

/* HTTP code recorded in status (defaults to 500). */
int corral_status_code(const json_t *status);

/* Field errors collected during validation. */
struct corral_field_errors {
    json_t *causes; /* array of {reason, message, field} */
};

void corral_field_errors_init(struct corral_field_errors *fe);
void corral_field_errors_clear(struct corral_field_errors *fe);
/*
 * Records one cause. reason is a metav1.CauseType ("FieldValueRequired", "FieldValueInvalid",
 * "FieldValueNotSupported", "FieldValueDuplicate", "FieldValueTooLong", "FieldValueForbidden").
 * The message is printf-formatted.
 */
void corral_field_error(struct corral_field_errors *fe, const char *reason, const char *field,
                        const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int corral_field_errors_count(const struct corral_field_errors *fe);

/*
 * A 422 Invalid Status for object kind/name ("Pod", "bad") carrying every recorded cause;
 * group is the API group ("" for core). New reference; fe is left untouched.
 */
json_t *corral_status_invalid(const char *group, const char *kind, const char *name,
                              const struct corral_field_errors *fe);

#endif
