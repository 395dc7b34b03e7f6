/* SPDX-License-Identifier: Apache-2.0 */
/*
 * prober: runs httpGet and tcpSocket probes (and httpGet lifecycle hooks) for the runtime, as
 * the kubelet does: an HTTP(S) GET whose status 200-399 is success (certificates are not
 * verified, redirects are not followed), or a TCP connect that succeeds.
 *
 * One thread drives all of them with a libcurl multi handle, so a slow or silent endpoint
 * costs a socket, not a thread, and never blocks the runtime loop. Results come back through
 * the done callback, called on the prober's thread.
 */
#ifndef CORRAL_KUBELET_PROBER_H
#define CORRAL_KUBELET_PROBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum corral_probe_kind { CORRAL_PROBE_HTTP, CORRAL_PROBE_TCP };

struct corral_probe_request {
    enum corral_probe_kind kind;
    const char *host; /* IP or name */
    int port;
    const char *path;           /* HTTP: "/healthz" (NULL: "/") */
    bool https;                 /* HTTP: scheme HTTPS */
    const char *const *headers; /* HTTP: "Name: value" strings, NULL-terminated, may be NULL */
    int timeout_ms;
};

/*
 * Called once per submitted request, on the prober thread. message says why a probe failed
 * ("HTTP probe failed with statuscode: 500", "dial tcp 127.0.0.1:81: connection refused");
 * borrowed for the call.
 */
typedef void (*corral_probe_done_fn)(void *ctx, uint64_t token, bool success, const char *message);

struct corral_prober;

/* Starts the prober thread. Returns 0 and *out, or -errno. */
int corral_prober_new(corral_probe_done_fn done, void *ctx, struct corral_prober **out);

/* Queues req (copied); its result is reported with token. Thread-safe. Returns 0 or -ENOMEM. */
int corral_prober_submit(struct corral_prober *p, uint64_t token,
                         const struct corral_probe_request *req);

/* Stops the thread (pending probes are dropped without callbacks) and frees p. */
void corral_prober_free(struct corral_prober *p);

#endif
