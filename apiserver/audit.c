/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit: JSON-lines audit log (see audit.h). An event is rendered with jansson into one
 * compact line and written with a single write(2) while holding the log's mutex.
 */
#include "audit.h"

#include "log.h"
#include "meta.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct corral_audit {
    int fd;
    pthread_mutex_t lock;
    bool failing; /* the last write failed (logged once) */
};

int corral_audit_open(const char *path, struct corral_audit **out)
{
    *out = NULL;
    struct corral_audit *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    a->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (a->fd < 0) {
        int rc = -errno;
        corral_error("audit", "cannot open the audit log %s: %s", path, strerror(-rc));
        free(a);
        return rc;
    }
    pthread_mutex_init(&a->lock, NULL);
    *out = a;
    return 0;
}

void corral_audit_close(struct corral_audit *a)
{
    if (!a)
        return;
    fsync(a->fd);
    close(a->fd);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

bool corral_audit_wants(const char *verb)
{
    static const char *const mutating[] = {"create", "update", "patch", "delete",
                                           "deletecollection"};
    for (size_t i = 0; verb && i < sizeof(mutating) / sizeof(mutating[0]); i++)
        if (strcmp(verb, mutating[i]) == 0)
            return true;
    return false;
}

static void set_opt(json_t *obj, const char *key, const char *value)
{
    if (value)
        json_object_set_new(obj, key, json_string(value));
}

/* RFC 3339 with microseconds for a CLOCK_REALTIME nanosecond count (0 = now). */
static void format_ns(uint64_t ns, char out[28])
{
    struct timespec ts;
    if (ns == 0) {
        clock_gettime(CLOCK_REALTIME, &ts);
    } else {
        ts.tv_sec = (time_t)(ns / 1000000000u);
        ts.tv_nsec = (long)(ns % 1000000000u);
    }
    corral_meta_format_microtime(&ts, out);
}

static json_t *user_info(const char *user, const char *const *groups, size_t n)
{
    json_t *g = json_array();
    for (size_t i = 0; g && i < n; i++)
        json_array_append_new(g, json_string(groups[i]));
    return json_pack("{s:s,s:o*}", "username", user ? user : "", "groups", g);
}

static json_t *event_object_ref(const struct corral_audit_event *ev)
{
    if (!ev->resource)
        return NULL;
    json_t *ref = json_object();
    set_opt(ref, "resource", ev->resource);
    set_opt(ref, "namespace", ev->ns && ev->ns[0] ? ev->ns : NULL);
    set_opt(ref, "name", ev->name && ev->name[0] ? ev->name : NULL);
    set_opt(ref, "apiGroup", ev->api_group);
    set_opt(ref, "apiVersion", ev->api_version);
    set_opt(ref, "subresource", ev->subresource && ev->subresource[0] ? ev->subresource : NULL);
    return ref;
}

static json_t *event_json(const struct corral_audit_event *ev)
{
    char id[37], received[28], now[28];
    corral_meta_new_uid(id);
    format_ns(ev->received_ns, received);
    format_ns(0, now);
    json_t *e = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:{s:i},s:s,s:s}", "kind", "Event",
                          "apiVersion", "audit.k8s.io/v1", "level", "Metadata", "auditID", id,
                          "stage", "ResponseComplete", "verb", ev->verb ? ev->verb : "", "user",
                          user_info(ev->user, ev->groups, ev->n_groups), "responseStatus", "code",
                          ev->code, "requestReceivedTimestamp", received, "stageTimestamp", now);
    if (!e)
        return NULL;
    set_opt(e, "requestURI", ev->request_uri);
    if (ev->impersonated_user)
        json_object_set_new(
            e, "impersonatedUser",
            user_info(ev->impersonated_user, ev->impersonated_groups, ev->n_impersonated_groups));
    set_opt(e, "userAgent", ev->user_agent);
    if (ev->source_ip)
        json_object_set_new(e, "sourceIPs", json_pack("[s]", ev->source_ip));
    json_t *ref = event_object_ref(ev);
    if (ref)
        json_object_set_new(e, "objectRef", ref);
    return e;
}

static int write_line(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int corral_audit_log(struct corral_audit *a, const struct corral_audit_event *ev)
{
    json_t *e = event_json(ev);
    char *line = e ? json_dumps(e, JSON_COMPACT) : NULL;
    json_decref(e);
    if (!line)
        return -ENOMEM;
    size_t len = strlen(line);
    line[len] = '\n'; /* replaces the NUL: written by length */
    pthread_mutex_lock(&a->lock);
    int rc = write_line(a->fd, line, len + 1);
    if (rc && !a->failing)
        corral_error("audit", "cannot write the audit log: %s", strerror(-rc));
    a->failing = rc != 0;
    pthread_mutex_unlock(&a->lock);
    free(line);
    return rc;
}
