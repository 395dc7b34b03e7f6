/* SPDX-License-Identifier: Apache-2.0 */
/*
 * workers: the blocking-work pool (see workers.h). One mutex guards the FIFO queue and the
 * counts; idle workers wait on one condition variable. Workers are detached: the pool counts
 * them, and corral_workers_free() waits until the count is zero.
 */
#include "workers.h"

#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#define WORKERS_KEEP 4      /* idle workers that never exit */
#define WORKER_IDLE_S 30    /* a worker beyond those exits after this long without a job */

struct job {
    void (*fn)(void *arg);
    void *arg;
    struct job *next;
};

struct corral_workers {
    pthread_mutex_t mu;
    pthread_cond_t work;   /* a job was queued, or the pool is closing */
    pthread_cond_t gone;   /* a worker exited */
    struct job *head, **tail;
    unsigned nqueued;      /* jobs in the queue */
    unsigned nworkers, nidle;
    bool closing;
};

int corral_workers_new(struct corral_workers **out)
{
    struct corral_workers *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->work, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&w->gone, NULL);
    w->tail = &w->head;
    *out = w;
    return 0;
}

/* Takes the next job, waiting for one (mu held). NULL when this worker should exit. */
static struct job *next_job(struct corral_workers *w)
{
    while (!w->head) {
        if (w->closing)
            return NULL;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += WORKER_IDLE_S;
        w->nidle++;
        int rc = pthread_cond_timedwait(&w->work, &w->mu, &ts);
        w->nidle--;
        if (rc == ETIMEDOUT && !w->head && w->nworkers > WORKERS_KEEP)
            return NULL;
    }
    struct job *j = w->head;
    w->nqueued--;
    w->head = j->next;
    if (!w->head)
        w->tail = &w->head;
    return j;
}

static void *worker_main(void *arg)
{
    struct corral_workers *w = arg;
    pthread_mutex_lock(&w->mu);
    struct job *j;
    while ((j = next_job(w))) {
        pthread_mutex_unlock(&w->mu);
        j->fn(j->arg);
        free(j);
        pthread_mutex_lock(&w->mu);
    }
    w->nworkers--;
    pthread_cond_broadcast(&w->gone);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Starts one more worker (mu held). Returns 0 or -errno. */
static int spawn(struct corral_workers *w)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    int rc = pthread_create(&t, &attr, worker_main, w);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        return -rc;
    w->nworkers++;
    return 0;
}

int corral_workers_submit(struct corral_workers *w, void (*fn)(void *arg), void *arg)
{
    struct job *j = malloc(sizeof(*j));
    if (!j)
        return -ENOMEM;
    *j = (struct job){fn, arg, NULL};
    pthread_mutex_lock(&w->mu);
    int rc = w->closing ? -EAGAIN : 0;
    /* idle workers already signalled may not have taken their jobs yet: count the queue */
    if (rc == 0 && w->nqueued >= w->nidle && w->nworkers < CORRAL_WORKERS_MAX && spawn(w) < 0) {
        corral_warn("workers", "cannot start a worker thread (%u running)", w->nworkers);
        rc = w->nworkers ? 0 : -EAGAIN; /* a running worker will take it */
    }
    if (rc == 0) {
        *w->tail = j;
        w->tail = &j->next;
        w->nqueued++;
        pthread_cond_signal(&w->work);
    }
    pthread_mutex_unlock(&w->mu);
    if (rc != 0)
        free(j);
    return rc;
}

void corral_workers_free(struct corral_workers *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->closing = true; /* workers finish the queue, then exit */
    pthread_cond_broadcast(&w->work);
    while (w->nworkers > 0)
        pthread_cond_wait(&w->gone, &w->mu);
    pthread_mutex_unlock(&w->mu);
    pthread_cond_destroy(&w->work);
    pthread_cond_destroy(&w->gone);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
