/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hooks: what particular kinds do beyond storing objects — Service cluster IPs and node
 * ports, Job selectors, namespace deletion (handed to nslifecycle), CustomResourceDefinition
 * registration, pod binding and the pod log proxy to the node agent. objects.c calls these at
 * fixed points of every write; they return 0 or an error code with *status explaining it.
 */
#ifndef CORRAL_HOOKS_H
#define CORRAL_HOOKS_H

#include "server.h"

#include <jansson.h>

int corral_hooks_before_create(struct corral_apiserver *srv, const struct corral_resource *res,
                               json_t *obj, json_t **status);
int corral_hooks_before_update(struct corral_apiserver *srv, const struct corral_resource *res,
                               json_t *obj, const json_t *old, json_t **status);
int corral_hooks_before_delete(struct corral_apiserver *srv, const struct corral_resource *res,
                               const json_t *obj, json_t **status);
/* After a successful write (deleted = the object is gone). obj is borrowed; may be NULL. */
void corral_hooks_after_write(struct corral_apiserver *srv, const struct corral_resource *res,
                              const json_t *obj, bool deleted);

/* Registers every stored CRD and reserves every stored Service IP. Call at start-up. */
int corral_hooks_load(struct corral_apiserver *srv);
void corral_hooks_unload(void);

/*
 * Binds pod ns/name to binding.target.name, copying binding annotations onto the pod and
 * setting PodScheduled=True. Returns 0, CORRAL_ENOTFOUND, CORRAL_ECONFLICT (already bound),
 * CORRAL_EINVALID.
 */
int corral_hooks_bind(struct corral_apiserver *srv, const char *ns, const char *name,
                      const json_t *binding, json_t **status);

/* GET pods/NAME/log: proxies to the node agent that runs the pod. */
void corral_hooks_pod_log(struct corral_request *req);

#endif
