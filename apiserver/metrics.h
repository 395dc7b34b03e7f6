/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics: the apiserver's Prometheus counters and histograms, rendered in the text exposition
 * format at /metrics: requests by verb, resource and code; request latency by verb; watchers;
 * store commits and their latency (read from the store's own counters at scrape time).
 */
#ifndef CORRAL_METRICS_H
#define CORRAL_METRICS_H

#include "store.h"

#include <stdint.h>

struct corral_metrics;

/* Returns a new registry or NULL on ENOMEM. */
struct corral_metrics *corral_metrics_new(void);
void corral_metrics_free(struct corral_metrics *m);

/* Records one finished request. Thread-safe. */
void corral_metrics_request(struct corral_metrics *m, const char *verb, const char *resource,
                            int code, uint64_t duration_ns);

/* Adjusts the open-watch gauge by delta. */
void corral_metrics_watchers(struct corral_metrics *m, int delta);

/* Renders everything as Prometheus text. Returns a malloc'd string (caller frees). */
char *corral_metrics_render(struct corral_metrics *m, struct corral_store *store);

#endif
