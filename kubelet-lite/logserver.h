/* SPDX-License-Identifier: Apache-2.0 */
/*
 * logserver: the agent's HTTPS endpoint, which the API server proxies `kubectl logs [-f]` to.
 *
 *   GET /containerLogs/NAMESPACE/POD/CONTAINER?follow=&tailLines=&timestamps=&previous=
 *       &sinceSeconds=&sinceTime=&limitBytes=     (the kubelet's path and parameters)
 *   GET /healthz                                  ("ok", no authentication)
 *
 * Callers must present a client certificate issued by the cluster CA to a member of
 * system:masters (the API server's kubelet-client certificate is one). When the agent knows no
 * cluster CA (a plain-HTTP development cluster), only loopback peers are served. Errors are
 * Kubernetes Status objects, which the API server passes on to kubectl. Following streams until
 * the container stops or the client goes away; each request is served by its own thread.
 */
#ifndef CORRAL_KUBELET_LOGSERVER_H
#define CORRAL_KUBELET_LOGSERVER_H

#include "runtime.h"

struct corral_logserver_config {
    const char *address;  /* IPv4 address to listen on */
    int port;             /* 0 picks a free port */
    const char *cert_pem; /* serving certificate and key */
    const char *key_pem;
    const char *client_ca_pem;      /* the cluster CA; NULL: loopback peers only */
    struct corral_runtime *runtime; /* borrowed */
};

struct corral_logserver;

/* Starts listening. Returns 0 and *out, or -errno with a logged reason. */
int corral_logserver_start(const struct corral_logserver_config *cfg,
                           struct corral_logserver **out);

/* The port actually bound. */
int corral_logserver_port(const struct corral_logserver *ls);

/* Stops serving (open streams are ended) and frees ls. */
void corral_logserver_stop(struct corral_logserver *ls);

#endif
