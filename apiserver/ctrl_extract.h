/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctrl_extract: reads a few members out of a stored object without parsing all of it. Every
 * controller sees every pod event but needs a handful of fields (owner, phase, readiness, ...);
 * parsing the whole 1.5 KB document into jansson for each of them cost more server CPU than the
 * write itself. This scanner walks the JSON text, builds values only for the members asked
 * for, and skips the rest byte by byte.
 */
#ifndef CORRAL_CTRL_EXTRACT_H
#define CORRAL_CTRL_EXTRACT_H

#include "store.h"

#include <jansson.h>
#include <stddef.h>

/*
 * Paths are member chains separated by '.', e.g. "metadata.ownerReferences", "status.phase",
 * "kind"; a path names a whole value (object, array or scalar), taken as it is. Keys that
 * contain '.' cannot be named (ask for their parent object). The list ends with NULL.
 *
 * Returns a new object holding only the requested members that exist (with the objects on
 * their way), or NULL when text is not a JSON object or is malformed along the way.
 */
json_t *corral_ctrl_extract(const char *text, size_t len, const char *const *paths);

/* The same on a store blob (NULL blob: NULL). */
json_t *corral_ctrl_extract_blob(const struct corral_blob *b, const char *const *paths);

#endif
