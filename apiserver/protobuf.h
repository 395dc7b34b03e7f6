/* SPDX-License-Identifier: Apache-2.0 */
/*
 * protobuf: reads the Kubernetes protobuf envelope (`k8s\0` + runtime.Unknown) that kubectl's
 * typed clients send for some writes (`kubectl create namespace`, `create configmap`,
 * `create secret`, `auth can-i`; kubectl-compat.md §5.11): Namespace, ConfigMap, Secret, the
 * RBAC kinds (`kubectl create role/clusterrole/rolebinding/clusterrolebinding`) and the access
 * reviews field by field, and the workload kinds kubectl's generators build (`kubectl create
 * deployment|job|service|serviceaccount`) from descriptor tables of their messages. Other
 * kinds, and fields the tables do not describe holding a non-zero value, are refused with 415
 * and a message saying to send JSON.
 */
#ifndef CORRAL_PROTOBUF_H
#define CORRAL_PROTOBUF_H

#include <jansson.h>
#include <stddef.h>

/*
 * Decodes buf[0..len) into a JSON object (new reference). Returns 0, CORRAL_EMEDIATYPE for a
 * kind it does not decode, or CORRAL_EBADREQUEST for a malformed message; err explains.
 */
int corral_protobuf_decode(const unsigned char *buf, size_t len, json_t **out, char *err,
                           size_t errlen);

#endif
