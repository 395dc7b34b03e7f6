/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctrl_events: the Event recorder shared by the built-in controllers. Controllers post
 * (object, type, reason, message) without waiting; one thread writes core/v1 Events through
 * the server-internal API, aggregating repeats into count/lastTimestamp as client-go's
 * EventRecorder does, and rate-limited per object (a burst of 25, then one per 5 minutes) as
 * its spam filter does. The queue is bounded: when it is full new Events are dropped (and
 * counted in a warning), so a storm of Events can never stall a controller.
 */
#ifndef CORRAL_CTRL_EVENTS_H
#define CORRAL_CTRL_EVENTS_H

#include "server.h"

#include <jansson.h>

struct corral_ctrl_recorder;

/* Starts the recorder thread. Returns 0 and *out, or -errno. */
int corral_ctrl_recorder_start(struct corral_apiserver *srv, struct corral_ctrl_recorder **out);

/* Writes what is queued, stops the thread and frees everything (NULL is fine). */
void corral_ctrl_recorder_stop(struct corral_ctrl_recorder *r);

/*
 * Queues an Event about obj (borrowed; its identity is copied now). component names the
 * source ("replicaset-controller"); type is "Normal" or "Warning". Thread-safe.
 */
void corral_ctrl_recorder_post(struct corral_ctrl_recorder *r, const char *component,
                               const json_t *obj, const char *type, const char *reason,
                               const char *message);

#endif
