/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics: a small fixed-size open-addressing table of (verb, resource, code) counters and a
 * per-verb latency histogram, guarded by one mutex (the critical section is a few adds; a
 * request costs far more). Names follow the kube-apiserver's (apiserver_request_total, ...).
 */
#include "metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SERIES 1024
#define MAX_VERBS 16

static const double buckets_s[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                   0.1,    0.25,  0.5,    1,     2.5,  5,     10,  60};
#define N_BUCKETS (sizeof(buckets_s) / sizeof(buckets_s[0]))

struct series {
    char verb[24];
    char resource[64];
    int code;
    uint64_t count;
};

struct histogram {
    char verb[24];
    uint64_t counts[N_BUCKETS + 1];
    double sum_s;
    uint64_t total;
};

struct corral_metrics {
    pthread_mutex_t lock;
    struct series series[MAX_SERIES];
    size_t n_series;
    struct histogram hist[MAX_VERBS];
    size_t n_hist;
    atomic_int watchers;
};

struct corral_metrics *corral_metrics_new(void)
{
    struct corral_metrics *m = calloc(1, sizeof(*m));
    if (m)
        pthread_mutex_init(&m->lock, NULL);
    return m;
}

void corral_metrics_free(struct corral_metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static struct series *find_series(struct corral_metrics *m, const char *verb,
                                  const char *resource, int code)
{
    for (size_t i = 0; i < m->n_series; i++) {
        struct series *s = &m->series[i];
        if (s->code == code && strcmp(s->verb, verb) == 0 && strcmp(s->resource, resource) == 0)
            return s;
    }
    if (m->n_series == MAX_SERIES)
        return NULL;
    struct series *s = &m->series[m->n_series++];
    snprintf(s->verb, sizeof(s->verb), "%s", verb);
    snprintf(s->resource, sizeof(s->resource), "%s", resource);
    s->code = code;
    return s;
}

static struct histogram *find_histogram(struct corral_metrics *m, const char *verb)
{
    for (size_t i = 0; i < m->n_hist; i++)
        if (strcmp(m->hist[i].verb, verb) == 0)
            return &m->hist[i];
    if (m->n_hist == MAX_VERBS)
        return NULL;
    struct histogram *h = &m->hist[m->n_hist++];
    snprintf(h->verb, sizeof(h->verb), "%s", verb);
    return h;
}

void corral_metrics_request(struct corral_metrics *m, const char *verb, const char *resource,
                            int code, uint64_t duration_ns)
{
    if (!m)
        return;
    double s = (double)duration_ns / 1e9;
    pthread_mutex_lock(&m->lock);
    struct series *se = find_series(m, verb, resource, code);
    if (se)
        se->count++;
    struct histogram *h = find_histogram(m, verb);
    if (h) {
        size_t b = 0;
        while (b < N_BUCKETS && s > buckets_s[b])
            b++;
        h->counts[b]++;
        h->sum_s += s;
        h->total++;
    }
    pthread_mutex_unlock(&m->lock);
}

void corral_metrics_watchers(struct corral_metrics *m, int delta)
{
    if (m)
        atomic_fetch_add(&m->watchers, delta);
}

struct text {
    char *buf;
    size_t len, cap;
};

static void emit(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(struct text *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (t->buf && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = (t->cap + (size_t)n + 1) * 2;
        char *nb = realloc(t->buf, cap);
        if (!nb)
            return;
        t->buf = nb;
        t->cap = cap;
    }
}

static void render_requests(struct corral_metrics *m, struct text *t)
{
    emit(t, "# HELP apiserver_request_total Requests by verb, resource and HTTP code.\n"
            "# TYPE apiserver_request_total counter\n");
    for (size_t i = 0; i < m->n_series; i++) {
        struct series *s = &m->series[i];
        emit(t, "apiserver_request_total{verb=\"%s\",resource=\"%s\",code=\"%d\"} %llu\n",
             s->verb, s->resource, s->code, (unsigned long long)s->count);
    }
    emit(t, "# HELP apiserver_request_duration_seconds Request latency by verb.\n"
            "# TYPE apiserver_request_duration_seconds histogram\n");
    for (size_t i = 0; i < m->n_hist; i++) {
        struct histogram *h = &m->hist[i];
        uint64_t cum = 0;
        for (size_t b = 0; b < N_BUCKETS; b++) {
            cum += h->counts[b];
            emit(t, "apiserver_request_duration_seconds_bucket{verb=\"%s\",le=\"%g\"} %llu\n",
                 h->verb, buckets_s[b], (unsigned long long)cum);
        }
        emit(t, "apiserver_request_duration_seconds_bucket{verb=\"%s\",le=\"+Inf\"} %llu\n",
             h->verb, (unsigned long long)h->total);
        emit(t, "apiserver_request_duration_seconds_sum{verb=\"%s\"} %.6f\n", h->verb, h->sum_s);
        emit(t, "apiserver_request_duration_seconds_count{verb=\"%s\"} %llu\n", h->verb,
             (unsigned long long)h->total);
    }
}

static void render_store(struct corral_store *store, struct text *t)
{
    struct corral_store_stats st = {0};
    corral_store_stats(store, &st);
    emit(t, "# HELP corral_store_objects Objects held by the store.\n"
            "# TYPE corral_store_objects gauge\ncorral_store_objects %llu\n",
         (unsigned long long)st.objects);
    emit(t, "# HELP corral_store_revision Newest committed revision.\n"
            "# TYPE corral_store_revision gauge\ncorral_store_revision %lld\n",
         (long long)st.rev);
    emit(t, "# HELP corral_store_commits_total Durable commits (group-committed batches).\n"
            "# TYPE corral_store_commits_total counter\ncorral_store_commits_total %llu\n",
         (unsigned long long)st.commits);
    emit(t, "# HELP corral_store_committed_writes_total Writes covered by those commits.\n"
            "# TYPE corral_store_committed_writes_total counter\n"
            "corral_store_committed_writes_total %llu\n",
         (unsigned long long)st.committed_ops);
    emit(t, "# HELP corral_store_commit_duration_seconds Time spent committing.\n"
            "# TYPE corral_store_commit_duration_seconds summary\n"
            "corral_store_commit_duration_seconds_sum %.6f\n"
            "corral_store_commit_duration_seconds_count %llu\n"
            "# HELP corral_store_commit_duration_max_seconds Slowest commit so far.\n"
            "# TYPE corral_store_commit_duration_max_seconds gauge\n"
            "corral_store_commit_duration_max_seconds %.6f\n",
         (double)st.commit_ns_total / 1e9, (unsigned long long)st.commits,
         (double)st.commit_ns_max / 1e9);
    emit(t, "# HELP corral_store_bytes Bytes of the stored objects as plain JSON.\n"
            "# TYPE corral_store_bytes gauge\ncorral_store_bytes %llu\n",
         (unsigned long long)st.bytes);
    emit(t, "# HELP corral_store_memory_bytes Memory the store's objects take, packed.\n"
            "# TYPE corral_store_memory_bytes gauge\n"
            "corral_store_memory_bytes{part=\"objects\"} %llu\n"
            "corral_store_memory_bytes{part=\"history\"} %llu\n"
            "corral_store_memory_bytes{part=\"dictionaries\"} %llu\n"
            "# HELP corral_store_dictionaries Packing dictionaries alive.\n"
            "# TYPE corral_store_dictionaries gauge\ncorral_store_dictionaries %llu\n",
         (unsigned long long)st.mem, (unsigned long long)st.history_mem,
         (unsigned long long)st.dict_mem, (unsigned long long)st.dicts);
}

char *corral_metrics_render(struct corral_metrics *m, struct corral_store *store)
{
    struct text t = {0};
    pthread_mutex_lock(&m->lock);
    render_requests(m, &t);
    pthread_mutex_unlock(&m->lock);
    emit(&t, "# HELP apiserver_registered_watchers Open watch streams.\n"
             "# TYPE apiserver_registered_watchers gauge\napiserver_registered_watchers %d\n",
         atomic_load(&m->watchers));
    if (store)
        render_store(store, &t);
    return t.buf;
}
