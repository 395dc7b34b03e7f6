/* SPDX-License-Identifier: Apache-2.0 */
/*
 * table: server-side Tables (meta.k8s.io/v1) for `kubectl get`, with the columns users know
 * from Kubernetes plus corral's GPU columns (the GPUs a pod was given, a node's GPU model and
 * count). Rows are computed from the stored objects; kubectl prints the cells as they are.
 */
#ifndef CORRAL_TABLE_H
#define CORRAL_TABLE_H

#include "resources.h"

#include <jansson.h>

extern const struct corral_column corral_columns_namespace[];
extern const struct corral_column corral_columns_node[];
extern const struct corral_column corral_columns_pod[];
extern const struct corral_column corral_columns_service[];
extern const struct corral_column corral_columns_endpoints[];
extern const struct corral_column corral_columns_configmap[];
extern const struct corral_column corral_columns_secret[];
extern const struct corral_column corral_columns_event[];
extern const struct corral_column corral_columns_deployment[];
extern const struct corral_column corral_columns_replicaset[];
extern const struct corral_column corral_columns_job[];
extern const struct corral_column corral_columns_lease[];
extern const struct corral_column corral_columns_podgroup[];
extern const struct corral_column corral_columns_crd[];
extern const struct corral_column corral_columns_serviceaccount[];
extern const struct corral_column corral_columns_rolebinding[];
extern const struct corral_column corral_columns_csr[];

void corral_row_namespace(const struct corral_resource *res, const json_t *obj, long now,
                          json_t *cells);
void corral_row_node(const struct corral_resource *res, const json_t *obj, long now,
                     json_t *cells);
void corral_row_pod(const struct corral_resource *res, const json_t *obj, long now,
                    json_t *cells);
void corral_row_service(const struct corral_resource *res, const json_t *obj, long now,
                        json_t *cells);
void corral_row_endpoints(const struct corral_resource *res, const json_t *obj, long now,
                          json_t *cells);
void corral_row_configmap(const struct corral_resource *res, const json_t *obj, long now,
                          json_t *cells);
void corral_row_secret(const struct corral_resource *res, const json_t *obj, long now,
                       json_t *cells);
void corral_row_event(const struct corral_resource *res, const json_t *obj, long now,
                      json_t *cells);
void corral_row_deployment(const struct corral_resource *res, const json_t *obj, long now,
                           json_t *cells);
void corral_row_replicaset(const struct corral_resource *res, const json_t *obj, long now,
                           json_t *cells);
void corral_row_job(const struct corral_resource *res, const json_t *obj, long now,
                    json_t *cells);
void corral_row_lease(const struct corral_resource *res, const json_t *obj, long now,
                      json_t *cells);
void corral_row_podgroup(const struct corral_resource *res, const json_t *obj, long now,
                         json_t *cells);
void corral_row_serviceaccount(const struct corral_resource *res, const json_t *obj, long now,
                               json_t *cells);
/* RoleBinding and ClusterRoleBinding: Name, Role ("ClusterRole/edit"), Age; wide: subjects. */
void corral_row_rolebinding(const struct corral_resource *res, const json_t *obj, long now,
                            json_t *cells);
void corral_row_csr(const struct corral_resource *res, const json_t *obj, long now,
                    json_t *cells);
/*
 * Name and Created At (RFC 3339), as Kubernetes prints CustomResourceDefinitions, Roles and
 * ClusterRoles.
 */
void corral_row_crd(const struct corral_resource *res, const json_t *obj, long now,
                    json_t *cells);
/*
 * CRD objects: Name, then each additionalPrinterColumn (by its JSONPath; "date" columns as
 * ages), or Name and Age when the CRD declares none.
 */
void corral_row_custom(const struct corral_resource *res, const json_t *obj, long now,
                       json_t *cells);

/* The default row (Name, Age) for kinds without columns. */
void corral_row_default(const struct corral_resource *res, const json_t *obj, long now,
                        json_t *cells);

/* The columnDefinitions array for res (new reference). */
json_t *corral_table_columns(const struct corral_resource *res);

/*
 * One Table row for obj: {cells, object: PartialObjectMetadata} (or the full object when
 * include_object is true). New reference.
 */
json_t *corral_table_row(const struct corral_resource *res, const json_t *obj, long now,
                         int include_object);

#endif
