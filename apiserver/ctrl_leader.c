/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctrl_leader: leader election for the built-in controllers (see ctrl_leader.h).
 *
 * One thread runs the election loop: read the Lease; create it, renew it (ours), or take it
 * over (somebody else's, silent for LEASE_S on our clock) with a write conditional on the
 * revision read, so that of two contenders exactly one succeeds. The term is published with
 * an atomic; runners poll it.
 */
#include "ctrl_leader.h"
#include "ctrl_util.h"
#include "error.h"
#include "log.h"
#include "meta.h"
#include "objects.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LEASE_NS "kube-system"
#define LEASE_NAME "corral-controllers"
#define LEASE_S 15
#define RENEW_DEADLINE_S 10
#define RETRY_MS 2000
#define NS_PER_S 1000000000ull

struct corral_ctrl_leader {
    struct corral_apiserver *srv;
    char identity[320];
    bool elect; /* false: always leading (embedded store) */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    _Atomic uint64_t term; /* 0 = not leading */
    uint64_t terms;        /* terms started so far */
    uint64_t renewed_ns;   /* our last successful renewal */
    char seen[400];        /* holder and renewTime last observed */
    uint64_t seen_ns;      /* when that record was first observed */
};

uint64_t corral_ctrl_leader_term(struct corral_ctrl_leader *l)
{
    return l ? atomic_load(&l->term) : 1;
}

static const char *lease_str(const json_t *lease, const char *field)
{
    const char *v = json_string_value(json_object_get(json_object_get(lease, "spec"), field));
    return v ? v : "";
}

static void now_micro(char out[28])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    corral_meta_format_microtime(&ts, out);
}

static void set_leading(struct corral_ctrl_leader *l, bool leading)
{
    uint64_t cur = atomic_load(&l->term);
    if (leading && !cur) {
        atomic_store(&l->term, ++l->terms);
        corral_info("leader", "%s leads the controllers", l->identity);
    } else if (!leading && cur) {
        atomic_store(&l->term, 0);
        corral_warn("leader", "%s no longer leads the controllers", l->identity);
    }
}

static int create_lease(struct corral_ctrl_leader *l)
{
    char ts[28];
    now_micro(ts);
    json_t *lease = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:i, s:s, s:s, s:i}}", "apiVersion",
                              "coordination.k8s.io/v1", "kind", "Lease", "metadata", "name",
                              LEASE_NAME, "namespace", LEASE_NS, "spec", "holderIdentity",
                              l->identity, "leaseDurationSeconds", LEASE_S, "acquireTime", ts,
                              "renewTime", ts, "leaseTransitions", 0);
    return corral_objects_create(l->srv, corral_ctrl_kinds()->leases, LEASE_NS, lease, NULL);
}

/* Writes lease (stolen) with us as holder; acquire also sets acquireTime and transitions. */
static int claim(struct corral_ctrl_leader *l, json_t *lease, bool acquire)
{
    char ts[28];
    now_micro(ts);
    json_t *spec = json_object_get(lease, "spec");
    if (!json_is_object(spec)) {
        spec = json_object();
        json_object_set_new(lease, "spec", spec);
    }
    json_object_set_new(spec, "holderIdentity", json_string(l->identity));
    json_object_set_new(spec, "leaseDurationSeconds", json_integer(LEASE_S));
    json_object_set_new(spec, "renewTime", json_string(ts));
    if (acquire) {
        json_object_set_new(spec, "acquireTime", json_string(ts));
        json_object_set_new(spec, "leaseTransitions",
                            json_integer(corral_ctrl_int(spec, "leaseTransitions", 0) + 1));
    }
    return corral_objects_update(l->srv, corral_ctrl_kinds()->leases, lease, false, NULL);
}

/* One round of the election. Returns whether we lead after it. */
static bool elect_once(struct corral_ctrl_leader *l)
{
    json_t *lease = NULL;
    uint64_t now = corral_now_ns();
    int rc = corral_objects_get(l->srv, corral_ctrl_kinds()->leases, LEASE_NS, LEASE_NAME, &lease);
    if (rc == CORRAL_ENOTFOUND)
        return create_lease(l) == 0;
    bool leading = atomic_load(&l->term) != 0;
    if (rc < 0)
        return leading && now - l->renewed_ns < RENEW_DEADLINE_S * NS_PER_S;
    const char *holder = lease_str(lease, "holderIdentity");
    if (strcmp(holder, l->identity) == 0) {
        if (claim(l, lease, !leading) == 0) {
            l->renewed_ns = now;
            return true;
        }
        return leading && now - l->renewed_ns < RENEW_DEADLINE_S * NS_PER_S;
    }
    char record[400];
    snprintf(record, sizeof(record), "%s|%s", holder, lease_str(lease, "renewTime"));
    if (strcmp(record, l->seen) != 0) {
        snprintf(l->seen, sizeof(l->seen), "%s", record);
        l->seen_ns = now;
    }
    long duration =
        (long)corral_ctrl_int(json_object_get(lease, "spec"), "leaseDurationSeconds", LEASE_S);
    if (*holder && now - l->seen_ns < (uint64_t)duration * NS_PER_S) {
        json_decref(lease);
        return false; /* somebody else leads */
    }
    if (claim(l, lease, true) == 0) {
        l->renewed_ns = now;
        return true;
    }
    return false;
}

static void *leader_main(void *arg)
{
    struct corral_ctrl_leader *l = arg;
    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        pthread_mutex_unlock(&l->mu);
        set_leading(l, elect_once(l));
        pthread_mutex_lock(&l->mu);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += RETRY_MS / 1000;
        while (!l->stop && pthread_cond_timedwait(&l->cv, &l->mu, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* On a clean shutdown: hand the Lease over at once. */
static void release(struct corral_ctrl_leader *l)
{
    json_t *lease = NULL;
    if (!atomic_load(&l->term) ||
        corral_objects_get(l->srv, corral_ctrl_kinds()->leases, LEASE_NS, LEASE_NAME, &lease) < 0)
        return;
    if (strcmp(lease_str(lease, "holderIdentity"), l->identity) != 0) {
        json_decref(lease);
        return;
    }
    json_object_set_new(json_object_get(lease, "spec"), "holderIdentity", json_string(""));
    corral_objects_update(l->srv, corral_ctrl_kinds()->leases, lease, false, NULL);
    atomic_store(&l->term, 0);
}

int corral_ctrl_leader_start(struct corral_apiserver *srv, struct corral_ctrl_leader **out)
{
    struct corral_ctrl_leader *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->srv = srv;
    l->elect = srv->cfg.etcd != NULL;
    char host[256] = "localhost";
    gethostname(host, sizeof(host) - 1);
    const char *listen = srv->cfg.listen ? srv->cfg.listen : "";
    size_t n = strlen(listen);
    char uid[37] = "";
    if (n < 2 || strcmp(listen + n - 2, ":0") == 0)
        corral_meta_new_uid(uid); /* a port picked at random: not stable, so make it unique */
    snprintf(l->identity, sizeof(l->identity), "%s_%s%s%s", host, listen, *uid ? "_" : "", uid);
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    if (!l->elect) {
        atomic_store(&l->term, 1);
        *out = l;
        return 0;
    }
    if (pthread_create(&l->thread, NULL, leader_main, l) != 0) {
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->cv);
        free(l);
        return -EAGAIN;
    }
    *out = l;
    return 0;
}

void corral_ctrl_leader_stop(struct corral_ctrl_leader *l)
{
    if (!l)
        return;
    if (l->elect) {
        pthread_mutex_lock(&l->mu);
        l->stop = true;
        pthread_cond_signal(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
        release(l);
    }
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    free(l);
}
