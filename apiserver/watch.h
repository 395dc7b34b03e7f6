/* SPDX-License-Identifier: Apache-2.0 */
/*
 * watch: streams watch events (`GET ...?watch=true`) as newline-separated
 * {"type","object"} JSON, from the store's event history.
 *
 * - resourceVersion=N resumes after revision N; a compacted N answers an ERROR event with a
 *   410 Expired Status (what client-go expects, so it re-lists);
 * - without a resourceVersion (or with "0") the current objects arrive first as ADDED events;
 * - label and field selectors apply to both the old and the new state of each object, so an
 *   object that stops matching is reported DELETED and one that starts matching ADDED;
 * - allowWatchBookmarks=true adds BOOKMARK events while idle; sendInitialEvents=true ends the
 *   initial events with the "k8s.io/initial-events-end" bookmark;
 * - with the Table Accept header each event carries a one-row Table (kubectl get -w).
 * The stream stays open for timeoutSeconds, or 30-60 minutes by default.
 */
#ifndef CORRAL_WATCH_H
#define CORRAL_WATCH_H

#include "server.h"

/* Answers req with a watch stream (or an error Status). */
void corral_watch_serve(struct corral_request *req);

#endif
