/* SPDX-License-Identifier: Apache-2.0 */
/*
 * controllers: the control-loop runner. Each controller names the store prefixes it follows
 * and a reconcile function; a thread per controller waits for events under those prefixes
 * (or a resync period) and calls reconcile with the whole current state, so a missed event
 * can only delay, never lose, convergence. The table of controllers is at the bottom.
 */
#include "controllers.h"
#include "error.h"
#include "log.h"
#include "meta.h"
#include "server.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct controller_def {
    const char *name;
    const char *prefixes[4];
    unsigned resync_ms;
    void (*reconcile)(struct corral_apiserver *srv);
};

struct runner {
    const struct controller_def *def;
    struct corral_apiserver *srv;
    pthread_t thread;
    int64_t cursor[4];
};

struct corral_controllers {
    struct runner *runners;
    size_t n;
};

static const struct controller_def controller_table[] = {
    {NULL, {NULL}, 0, NULL},
};

/* Waits until an event arrives under any prefix of the runner, or the resync period passes. */
static void wait_for_change(struct runner *r)
{
    uint64_t deadline = corral_now_ns() + (uint64_t)r->def->resync_ms * 1000000ull;
    while (!atomic_load(&r->srv->stopping) && corral_now_ns() < deadline) {
        bool changed = false;
        for (int i = 0; i < 4 && r->def->prefixes[i]; i++) {
            struct corral_store_event ev;
            int64_t seen = r->cursor[i];
            int n = corral_store_events(r->srv->store, r->def->prefixes[i], r->cursor[i], &ev, 1,
                                        i == 0 ? 200 : 0, &seen);
            if (n == CORRAL_EGONE) {
                r->cursor[i] = corral_store_revision(r->srv->store);
                changed = true;
            } else if (n > 0) {
                r->cursor[i] = ev.rev;
                corral_store_event_clear(&ev);
                changed = true;
            } else {
                r->cursor[i] = seen;
            }
        }
        if (changed)
            return;
    }
}

static void *runner_main(void *arg)
{
    struct runner *r = arg;
    for (int i = 0; i < 4; i++)
        r->cursor[i] = corral_store_revision(r->srv->store);
    while (!atomic_load(&r->srv->stopping)) {
        r->def->reconcile(r->srv);
        wait_for_change(r);
    }
    return NULL;
}

int corral_controllers_start(struct corral_apiserver *srv, struct corral_controllers **out)
{
    struct corral_controllers *c = calloc(1, sizeof(*c));
    size_t n = 0;
    while (controller_table[n].name)
        n++;
    if (!c || !(c->runners = calloc(n ? n : 1, sizeof(*c->runners)))) {
        free(c);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        struct runner *r = &c->runners[c->n];
        r->def = &controller_table[i];
        r->srv = srv;
        if (pthread_create(&r->thread, NULL, runner_main, r) != 0) {
            corral_controllers_stop(c);
            return -EAGAIN;
        }
        c->n++;
    }
    *out = c;
    return 0;
}

void corral_controllers_stop(struct corral_controllers *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        pthread_join(c->runners[i].thread, NULL);
    free(c->runners);
    free(c);
}
