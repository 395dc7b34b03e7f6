/* SPDX-License-Identifier: Apache-2.0 */
/*
 * resources: the registry of kinds the apiserver serves.
 *
 * Built-in kinds are one static table (resources.c); CustomResourceDefinitions add entries at
 * run time. Each entry says where the kind lives in the URL space (group, version, plural,
 * scope), what discovery advertises (short names, categories, verbs, subresources), how its
 * objects are defaulted and validated, which fields field selectors may name, and how a Table
 * row is printed. Lookups are safe from any thread; entries are never freed while the server
 * runs (a deleted CRD is marked gone, not freed).
 */
#ifndef CORRAL_RESOURCES_H
#define CORRAL_RESOURCES_H

#include "status.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

enum corral_subresource {
    CORRAL_SUB_NONE = 0,
    CORRAL_SUB_STATUS = 1 << 0,
    CORRAL_SUB_BINDING = 1 << 1,
    CORRAL_SUB_LOG = 1 << 2,
    CORRAL_SUB_SCALE = 1 << 3,
    CORRAL_SUB_EVICTION = 1 << 4,
};

struct corral_resource;

/* One printed column of `kubectl get`. */
struct corral_column {
    const char *name;
    const char *type;   /* "string", "integer", "date" */
    const char *format; /* "name" for the Name column, else "" */
    int priority;       /* 0 shown by default, 1 only with -o wide */
    const char *description;
    const char *json_path; /* CRD additionalPrinterColumns: ".spec.size"; NULL for built-ins */
};

/*
 * Appends to cells (an empty JSON array) one value per column of res, Name and Age included.
 * now is the wall-clock time in seconds (for ages).
 */
typedef void (*corral_row_fn)(const struct corral_resource *res, const json_t *obj, long now,
                              json_t *cells);

/* Validates obj (old is the stored object on update, NULL on create). Adds causes to fe. */
typedef void (*corral_validate_fn)(const json_t *obj, const json_t *old,
                                   struct corral_field_errors *fe);

/* Applies server-side defaults to obj in place (on create and update). */
typedef void (*corral_default_fn)(json_t *obj);

/* Returns the value of a field-selector field for obj, or NULL if the kind lacks it. */
typedef const char *(*corral_field_fn)(const json_t *obj, const char *field, char *buf,
                                       size_t buflen);

struct corral_resource {
    const char *group;    /* "" for core */
    const char *version;  /* "v1" */
    const char *kind;     /* "Pod" */
    const char *list_kind; /* "PodList" */
    const char *plural;   /* "pods" */
    const char *singular; /* "pod" */
    const char *short_names[4];
    bool namespaced;
    bool in_all_category; /* `kubectl get all` */
    bool has_spec;        /* generation tracks spec changes */
    bool stored;          /* false for virtual kinds (reviews) that are answered, never stored */
    unsigned subresources;
    corral_default_fn defaults;
    corral_validate_fn validate;
    corral_field_fn field;
    const struct corral_column *columns; /* terminated by name == NULL; NULL = Name, Age */
    corral_row_fn row;
    /* Set for kinds registered from a CRD. */
    json_t *crd;       /* the CRD object (owned) */
    bool gone;         /* CRD deleted: no longer served */
};

/* Registers the built-in kinds. Call once at start-up. */
void corral_resources_init(void);
/* Frees CRD-backed entries; no lookups may run concurrently or afterwards. */
void corral_resources_shutdown(void);

/*
 * Finds the kind served at group/version/plural. Returns a borrowed entry or NULL. A served
 * plural may also be matched by its kind's singular (for convenience in the CLI).
 */
const struct corral_resource *corral_resource_find(const char *group, const char *version,
                                                   const char *plural);

/* Finds by apiVersion ("apps/v1") and kind ("Deployment"). Borrowed or NULL. */
const struct corral_resource *corral_resource_find_kind(const char *api_version,
                                                        const char *kind);

/* Calls fn for every served entry in registration order. */
void corral_resources_foreach(void (*fn)(const struct corral_resource *res, void *ctx),
                              void *ctx);

/*
 * Registers (or replaces) the kinds described by a CustomResourceDefinition object. Returns 0,
 * or CORRAL_EINVALID with causes in fe. The CRD is borrowed (copied).
 */
int corral_resources_register_crd(const json_t *crd, struct corral_field_errors *fe);

/* Stops serving the kinds of the CRD named name ("widgets.example.com"). */
void corral_resources_unregister_crd(const char *name);

/*
 * The resource as Kubernetes names it in messages: "deployments.apps", or "pods" for the core
 * group. Written into buf; returns buf.
 */
const char *corral_resource_qualified(const struct corral_resource *res, char *buf, size_t len);

/* "apps/v1" or "v1" for res, written into buf. */
const char *corral_resource_api_version(const struct corral_resource *res, char *buf,
                                        size_t len);

/*
 * The store key of an object or a collection: "/registry/[group/]plural/[ns/]name". With
 * name == NULL returns the collection prefix (ending in '/'); with ns == NULL on a namespaced
 * kind returns the all-namespaces prefix. Writes into buf; returns buf or NULL if too long.
 */
const char *corral_resource_key(const struct corral_resource *res, const char *ns,
                                const char *name, char *buf, size_t len);

#endif
