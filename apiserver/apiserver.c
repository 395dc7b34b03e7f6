/* SPDX-License-Identifier: Apache-2.0 */
/*
 * apiserver: `corral apiserver` — parse options, build the server, serve until a signal.
 *
 * Start-up loads the store (every object into memory), registers stored CRDs, creates the
 * namespaces every cluster has, starts the controllers, then listens and prints exactly one
 * line "listening on URL" on stdout. SIGTERM/SIGINT stop accepting, let in-flight requests and
 * writes finish, close the store and exit 0.
 */
#include "apiserver.h"
#include "auth.h"
#include "controllers.h"
#include "error.h"
#include "hooks.h"
#include "log.h"
#include "nslifecycle.h"
#include "objects.h"
#include "server.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: corral apiserver [options]\n"
            "  --listen HOST:PORT        address to serve on (default 127.0.0.1:6443; port 0 "
            "picks one)\n"
            "  --data-dir DIR            embedded store directory (default /var/lib/corral)\n"
            "  --etcd-servers URLS       use etcd (comma-separated URLs) instead of SQLite\n"
            "  --etcd-cafile F, --etcd-certfile F, --etcd-keyfile F   TLS to etcd\n"
            "  --cluster-dir DIR         what `corral init --dir DIR` wrote: certificates, CA, "
            "tokens\n"
            "  --audit-log-path FILE     append a JSON line per mutating request\n"
            "  --tls-cert-file F, --tls-private-key-file F, --client-ca-file F\n"
            "  --insecure-http           plain HTTP, no authentication (loopback only)\n"
            "  --max-body-bytes N        largest request body (default 3145728)\n"
            "  --max-list N              most objects in one list page (default 10000)\n"
            "  --max-watch-seconds N     longest watch stream (default 3600)\n"
            "  --node-grace-seconds N    lease age before a node is NotReady (default 10)\n"
            "  --watch-history-events N  watch events kept for resuming (default 100000)\n"
            "  --watch-history-seconds N ... and for how long at most (default 300)\n"
            "  --no-controllers          do not run the built-in controllers\n");
}

enum {
    OPT_LISTEN = 1,
    OPT_DATA,
    OPT_ETCD,
    OPT_ETCD_CA,
    OPT_ETCD_CERT,
    OPT_ETCD_KEY,
    OPT_CLUSTER,
    OPT_AUDIT,
    OPT_CERT,
    OPT_KEY,
    OPT_CA,
    OPT_INSECURE,
    OPT_BODY,
    OPT_LIST,
    OPT_WATCH,
    OPT_GRACE,
    OPT_HIST_EVENTS,
    OPT_HIST_SECONDS,
    OPT_NOCTRL,
    OPT_HELP,
};

static const struct option options[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"data-dir", required_argument, NULL, OPT_DATA},
    {"etcd-servers", required_argument, NULL, OPT_ETCD},
    {"etcd-cafile", required_argument, NULL, OPT_ETCD_CA},
    {"etcd-certfile", required_argument, NULL, OPT_ETCD_CERT},
    {"etcd-keyfile", required_argument, NULL, OPT_ETCD_KEY},
    {"cluster-dir", required_argument, NULL, OPT_CLUSTER},
    {"audit-log-path", required_argument, NULL, OPT_AUDIT},
    {"tls-cert-file", required_argument, NULL, OPT_CERT},
    {"tls-private-key-file", required_argument, NULL, OPT_KEY},
    {"client-ca-file", required_argument, NULL, OPT_CA},
    {"insecure-http", no_argument, NULL, OPT_INSECURE},
    {"max-body-bytes", required_argument, NULL, OPT_BODY},
    {"max-list", required_argument, NULL, OPT_LIST},
    {"max-watch-seconds", required_argument, NULL, OPT_WATCH},
    {"node-grace-seconds", required_argument, NULL, OPT_GRACE},
    {"watch-history-events", required_argument, NULL, OPT_HIST_EVENTS},
    {"watch-history-seconds", required_argument, NULL, OPT_HIST_SECONDS},
    {"no-controllers", no_argument, NULL, OPT_NOCTRL},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static int parse_positive(const char *s, const char *flag, unsigned long *out)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*end || v == 0) {
        fprintf(stderr, "corral apiserver: %s wants a positive number, not \"%s\"\n", flag, s);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static int parse_options(int argc, char **argv, struct corral_apiserver_config *cfg,
                         struct corral_auth_config *acfg)
{
    int c;
    unsigned long v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case OPT_LISTEN: cfg->listen = optarg; break;
        case OPT_DATA: cfg->data_dir = optarg; break;
        case OPT_ETCD: cfg->etcd = optarg; break;
        case OPT_ETCD_CA: cfg->etcd_ca = optarg; break;
        case OPT_ETCD_CERT: cfg->etcd_cert = optarg; break;
        case OPT_ETCD_KEY: cfg->etcd_key = optarg; break;
        case OPT_CLUSTER: acfg->cluster_dir = cfg->cluster_dir = optarg; break;
        case OPT_AUDIT: acfg->audit_log = optarg; break;
        case OPT_CERT: acfg->tls_cert_file = optarg; break;
        case OPT_KEY: acfg->tls_key_file = optarg; break;
        case OPT_CA: acfg->client_ca_file = optarg; break;
        case OPT_INSECURE: acfg->insecure_http = cfg->insecure_http = true; break;
        case OPT_BODY: rc = parse_positive(optarg, "--max-body-bytes", &v); cfg->max_body = v; break;
        case OPT_LIST: rc = parse_positive(optarg, "--max-list", &v); cfg->max_list = v; break;
        case OPT_WATCH:
            rc = parse_positive(optarg, "--max-watch-seconds", &v);
            cfg->max_watch_s = (unsigned)v;
            break;
        case OPT_GRACE:
            rc = parse_positive(optarg, "--node-grace-seconds", &v);
            cfg->node_grace_s = (unsigned)v;
            break;
        case OPT_HIST_EVENTS:
            rc = parse_positive(optarg, "--watch-history-events", &v);
            cfg->history_events = v;
            break;
        case OPT_HIST_SECONDS:
            rc = parse_positive(optarg, "--watch-history-seconds", &v);
            cfg->history_s = v;
            break;
        case OPT_NOCTRL: cfg->controllers = false; break;
        case OPT_HELP: usage(stdout); exit(0);
        default: usage(stderr); return -EINVAL;
        }
        if (rc < 0)
            return rc;
    }
    if (optind < argc) {
        fprintf(stderr, "corral apiserver: unexpected argument \"%s\"\n", argv[optind]);
        return -EINVAL;
    }
    return 0;
}

static int ensure_dir(const char *dir)
{
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        corral_error("apiserver", "cannot create --data-dir %s: %s", dir, strerror(errno));
        return -errno;
    }
    return 0;
}

static int wait_for_signal(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    int sig = 0;
    sigwait(&set, &sig);
    return sig;
}

static int run(struct corral_apiserver *srv, const struct corral_auth_config *acfg)
{
    int rc = corral_auth_new(acfg, srv, &srv->auth);
    if (rc < 0)
        return rc;
    rc = corral_hooks_load(srv);
    if (rc == 0)
        rc = corral_objects_bootstrap(srv);
    if (rc == 0)
        rc = corral_nslifecycle_start(srv);
    if (rc == 0 && srv->cfg.controllers)
        rc = corral_controllers_start(srv, &srv->controllers);
    if (rc == 0)
        rc = corral_server_start(srv);
    if (rc < 0)
        return rc;
    printf("listening on %s\n", srv->url);
    fflush(stdout);
    corral_info("apiserver", "listening on %s (store: %s)", srv->url,
                srv->cfg.etcd ? "etcd" : "sqlite");
    int sig = wait_for_signal();
    corral_info("apiserver", "signal %d: finishing in-flight requests", sig);
    return 0;
}

int corral_apiserver_main(int argc, char **argv)
{
    struct corral_apiserver_config cfg = {
        .listen = "127.0.0.1:6443",
        .data_dir = "/var/lib/corral",
        .max_body = 3 * 1024 * 1024,
        .max_list = 10000,
        .request_timeout_s = 60,
        .max_watch_s = 3600,
        .controllers = true,
        .node_grace_s = 10,
    };
    struct corral_auth_config acfg = {0};
    if (parse_options(argc, argv, &cfg, &acfg) < 0)
        return 2;
    if (!cfg.etcd && ensure_dir(cfg.data_dir) < 0)
        return 1;
    /* Signals are taken synchronously by the main thread; every other thread blocks them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct corral_apiserver srv;
    int rc = corral_server_init(&srv, &cfg);
    if (rc == 0) {
        rc = run(&srv, &acfg);
        corral_controllers_stop(srv.controllers);
        srv.controllers = NULL;
        corral_nslifecycle_stop();
        corral_server_stop(&srv);
        corral_auth_free(srv.auth);
        corral_hooks_unload();
    }
    curl_global_cleanup();
    return rc < 0 ? 1 : 0;
}
