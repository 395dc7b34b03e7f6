/* SPDX-License-Identifier: Apache-2.0 */
/*
 * routes: the apiserver's one table of {method, path pattern, handler}. Patterns are split on
 * '/'; `*` matches one segment and `**` the rest of the path. The first matching row wins.
 */
#ifndef CORRAL_ROUTES_H
#define CORRAL_ROUTES_H

#include "server.h"

/* Authenticates, finds the route and runs its handler; always answers the request. */
void corral_routes_dispatch(struct corral_request *req);

/* Calls fn for every (method, pattern) the table serves; for tests that sweep all routes. */
void corral_routes_foreach(void (*fn)(const char *method, const char *pattern, void *ctx),
                           void *ctx);

#endif
