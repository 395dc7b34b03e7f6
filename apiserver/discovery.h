/* SPDX-License-Identifier: Apache-2.0 */
/*
 * discovery: what kubectl asks before anything else (kubectl-compat.md §2, §4): aggregated
 * discovery (/api, /apis with the apidiscovery.k8s.io v2 content type), the legacy
 * APIVersions/APIGroupList/APIResourceList documents, and OpenAPI v3 (a root listing each
 * group-version, and per group-version documents whose patch operations carry the
 * fieldValidation parameter so kubectl relies on server-side validation).
 */
#ifndef CORRAL_DISCOVERY_H
#define CORRAL_DISCOVERY_H

#include "server.h"

void corral_discovery_api(struct corral_request *req);
void corral_discovery_apis(struct corral_request *req);
void corral_discovery_group(struct corral_request *req);
void corral_discovery_group_version(struct corral_request *req);
void corral_openapi_root(struct corral_request *req);
void corral_openapi_document(struct corral_request *req);

#endif
