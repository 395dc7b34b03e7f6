/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kubelet: `corral kubelet` (see kubelet.h). main() stays thin: parse, discover, then either
 * print the Node or hand everything to the agent.
 */
#include "kubelet.h"

#include "agent.h"
#include "log.h"
#include "quantity.h"
#include "topology.h"
#include "yamljson.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUBSYS "kubelet"

static const char usage_text[] =
    "usage: corral kubelet --topology FILE.xml --print-node [node options]\n"
    "       corral kubelet --apiserver URL --kubeconfig FILE --name NAME --state-dir DIR\n"
    "                      [--topology FILE.xml] [--address 127.0.0.N] [options]\n"
    "\n"
    "Discovers this machine (or the hwloc XML export given with --topology) and registers it\n"
    "as a Node, then runs the pods bound to it.\n"
    "\n"
    "  --topology FILE        load an hwloc XML export instead of the live machine\n"
    "  --print-node           print the Node object as JSON and exit\n"
    "  --apiserver URL        the API server to join\n"
    "  --kubeconfig FILE      credentials for the API server\n"
    "  --state-dir DIR        where pod logs and state live\n"
    "  --name NAME            node name (default: the host name, lower-cased)\n"
    "  --address IP           address to serve on and publish as InternalIP\n"
    "  --port N               HTTPS port for logs (default 10250; 0 picks a free one)\n"
    "  --provider NAME        corral.io/provider label\n"
    "  --zone ZONE, --region REGION   topology.kubernetes.io labels\n"
    "  --label KEY=VALUE      extra node label (repeatable)\n"
    "  --taint KEY[=VALUE]:EFFECT     node taint (repeatable)\n"
    "  --max-pods N           pods capacity (default 110)\n"
    "  --reserve-cpu Q, --reserve-memory Q   held back from allocatable (quantities)\n"
    "  --lease-duration D     Lease duration (default 40s)\n"
    "  --heartbeat-interval D Lease renewal interval (default 5s)\n"
    "  --node-status-interval D  full Node status refresh (default 60s)\n"
    "  --backoff-initial D, --backoff-max D  container restart back-off (default 10s, 5m)\n"
    "  --log-max-size Q, --log-max-files N   container log rotation (default 10Mi, 5)\n"
    "  --no-cgroups           do not put containers into cgroups\n"
    "  --config FILE          YAML with any of these settings (camelCase keys: stateDir,\n"
    "                         maxPods, heartbeatInterval, labels: {K: V}, taints: [...], ...);\n"
    "                         options on the command line win\n"
    "Durations are Go-style (500ms, 10s, 1m30s).\n";

enum {
    OPT_TOPOLOGY = 256,
    OPT_PRINT_NODE,
    OPT_APISERVER,
    OPT_KUBECONFIG,
    OPT_STATE_DIR,
    OPT_NAME,
    OPT_ADDRESS,
    OPT_PORT,
    OPT_PROVIDER,
    OPT_ZONE,
    OPT_REGION,
    OPT_LABEL,
    OPT_TAINT,
    OPT_MAX_PODS,
    OPT_RESERVE_CPU,
    OPT_RESERVE_MEMORY,
    OPT_LEASE_DURATION,
    OPT_HEARTBEAT,
    OPT_STATUS_INTERVAL,
    OPT_BACKOFF_INITIAL,
    OPT_BACKOFF_MAX,
    OPT_LOG_MAX_SIZE,
    OPT_LOG_MAX_FILES,
    OPT_NO_CGROUPS,
    OPT_CONFIG,
    OPT_HELP,
};

static const struct option long_options[] = {
    {"topology", required_argument, NULL, OPT_TOPOLOGY},
    {"print-node", no_argument, NULL, OPT_PRINT_NODE},
    {"apiserver", required_argument, NULL, OPT_APISERVER},
    {"kubeconfig", required_argument, NULL, OPT_KUBECONFIG},
    {"state-dir", required_argument, NULL, OPT_STATE_DIR},
    {"name", required_argument, NULL, OPT_NAME},
    {"address", required_argument, NULL, OPT_ADDRESS},
    {"port", required_argument, NULL, OPT_PORT},
    {"provider", required_argument, NULL, OPT_PROVIDER},
    {"zone", required_argument, NULL, OPT_ZONE},
    {"region", required_argument, NULL, OPT_REGION},
    {"label", required_argument, NULL, OPT_LABEL},
    {"taint", required_argument, NULL, OPT_TAINT},
    {"max-pods", required_argument, NULL, OPT_MAX_PODS},
    {"reserve-cpu", required_argument, NULL, OPT_RESERVE_CPU},
    {"reserve-memory", required_argument, NULL, OPT_RESERVE_MEMORY},
    {"lease-duration", required_argument, NULL, OPT_LEASE_DURATION},
    {"heartbeat-interval", required_argument, NULL, OPT_HEARTBEAT},
    {"node-status-interval", required_argument, NULL, OPT_STATUS_INTERVAL},
    {"backoff-initial", required_argument, NULL, OPT_BACKOFF_INITIAL},
    {"backoff-max", required_argument, NULL, OPT_BACKOFF_MAX},
    {"log-max-size", required_argument, NULL, OPT_LOG_MAX_SIZE},
    {"log-max-files", required_argument, NULL, OPT_LOG_MAX_FILES},
    {"no-cgroups", no_argument, NULL, OPT_NO_CGROUPS},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

int corral_kubelet_parse_duration(const char *s, int64_t *ms)
{
    static const struct {
        const char *unit;
        double ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    if (!s || !*s)
        return -EINVAL;
    double total = 0;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || v < 0)
            return -EINVAL;
        p = end;
        double scale = 0;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            size_t n = strlen(units[i].unit);
            if (strncmp(p, units[i].unit, n) == 0) { /* "ms" is tried before "m" */
                scale = units[i].ms;
                p += n;
                break;
            }
        }
        if (scale == 0) {
            if (*p || total != 0)
                return -EINVAL;
            scale = 1000; /* a bare number is seconds */
        }
        total += v * scale;
    }
    if (total > 9.2e15)
        return -EINVAL;
    *ms = (int64_t)(total + 0.5);
    return 0;
}

static int parse_int(const char *opt, const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "corral kubelet: %s: \"%s\" is not a number in [%ld, %ld]\n", opt, s, min,
                max);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static int parse_ms(const char *opt, const char *s, int64_t *out)
{
    if (corral_kubelet_parse_duration(s, out) == 0 && *out > 0)
        return 0;
    fprintf(stderr, "corral kubelet: %s: \"%s\" is not a positive duration (e.g. 10s, 500ms)\n",
            opt, s);
    return -EINVAL;
}

static int parse_milli(const char *opt, const char *s, int64_t *out, bool bytes)
{
    struct corral_quantity q;
    if (corral_quantity_parse(s, &q) == 0) {
        *out = bytes ? corral_quantity_value(&q) : corral_quantity_milli(&q);
        if (*out >= 0)
            return 0;
    }
    fprintf(stderr, "corral kubelet: %s: \"%s\" is not a quantity (e.g. 500m, 2Gi)\n", opt, s);
    return -EINVAL;
}

static void set_defaults(struct corral_kubelet_options *o)
{
    memset(o, 0, sizeof(*o));
    o->node.port = 10250;
    o->node.labels = json_object();
    o->node.taints = json_array();
    o->lease_duration_ms = 40000;
    o->heartbeat_ms = 5000;
    o->status_interval_ms = 60000;
    o->backoff_initial_ms = 10000;
    o->backoff_max_ms = 300000;
    o->log_max_bytes = 10 * 1024 * 1024;
    o->log_max_files = 5;
    o->cgroups = true;
}

static int apply_option(struct corral_kubelet_options *o, int c, const char *arg)
{
    char err[256];
    long v;
    json_t *taint;
    switch (c) {
    case OPT_TOPOLOGY:
        o->topology = arg;
        return 0;
    case OPT_PRINT_NODE:
        o->print_node = true;
        return 0;
    case OPT_APISERVER:
        o->apiserver = arg;
        return 0;
    case OPT_KUBECONFIG:
        o->kubeconfig = arg;
        return 0;
    case OPT_STATE_DIR:
        o->state_dir = arg;
        return 0;
    case OPT_NAME:
        o->node.name = arg;
        return 0;
    case OPT_ADDRESS:
        o->node.address = arg;
        return 0;
    case OPT_PROVIDER:
        o->node.provider = arg;
        return 0;
    case OPT_ZONE:
        o->node.zone = arg;
        return 0;
    case OPT_REGION:
        o->node.region = arg;
        return 0;
    case OPT_NO_CGROUPS:
        o->cgroups = false;
        return 0;
    case OPT_CONFIG:
        return 0; /* read before the other options: see load_config() */
    case OPT_PORT:
        if (parse_int("--port", arg, 0, 65535, &v) < 0)
            return -EINVAL;
        o->node.port = (int)v;
        return 0;
    case OPT_MAX_PODS:
        if (parse_int("--max-pods", arg, 1, 100000, &v) < 0)
            return -EINVAL;
        o->node.max_pods = (int)v;
        return 0;
    case OPT_LOG_MAX_FILES:
        if (parse_int("--log-max-files", arg, 1, 100, &v) < 0)
            return -EINVAL;
        o->log_max_files = (int)v;
        return 0;
    case OPT_LABEL:
        if (corral_node_parse_label(arg, o->node.labels, err, sizeof(err)) == 0)
            return 0;
        fprintf(stderr, "corral kubelet: --label: %s\n", err);
        return -EINVAL;
    case OPT_TAINT:
        if (corral_node_parse_taint(arg, &taint, err, sizeof(err)) == 0)
            return json_array_append_new(o->node.taints, taint);
        fprintf(stderr, "corral kubelet: --taint: %s\n", err);
        return -EINVAL;
    case OPT_RESERVE_CPU:
        return parse_milli("--reserve-cpu", arg, &o->node.reserved_cpu_milli, false);
    case OPT_RESERVE_MEMORY:
        return parse_milli("--reserve-memory", arg, &o->node.reserved_memory_bytes, true);
    case OPT_LOG_MAX_SIZE:
        return parse_milli("--log-max-size", arg, &o->log_max_bytes, true);
    case OPT_LEASE_DURATION:
        return parse_ms("--lease-duration", arg, &o->lease_duration_ms);
    case OPT_HEARTBEAT:
        return parse_ms("--heartbeat-interval", arg, &o->heartbeat_ms);
    case OPT_STATUS_INTERVAL:
        return parse_ms("--node-status-interval", arg, &o->status_interval_ms);
    case OPT_BACKOFF_INITIAL:
        return parse_ms("--backoff-initial", arg, &o->backoff_initial_ms);
    case OPT_BACKOFF_MAX:
        return parse_ms("--backoff-max", arg, &o->backoff_max_ms);
    default:
        return -EINVAL;
    }
}

static int check_options(const struct corral_kubelet_options *o)
{
    if (o->print_node)
        return 0;
    const char *missing = !o->apiserver    ? "--apiserver"
                          : !o->kubeconfig ? "--kubeconfig"
                          : !o->state_dir  ? "--state-dir"
                                           : NULL;
    if (missing) {
        fprintf(stderr, "corral kubelet: %s is required to join a cluster (or use --print-node)\n",
                missing);
        return -EINVAL;
    }
    if (o->heartbeat_ms >= o->lease_duration_ms) {
        fprintf(stderr, "corral kubelet: --heartbeat-interval must be shorter than "
                        "--lease-duration\n");
        return -EINVAL;
    }
    if (o->log_max_bytes < 4096) {
        fprintf(stderr, "corral kubelet: --log-max-size must be at least 4Ki\n");
        return -EINVAL;
    }
    return 0;
}

/* ---- --config FILE --------------------------------------------------------------------- */

static const struct {
    const char *key;
    int opt;
} config_keys[] = {
    {"topology", OPT_TOPOLOGY},
    {"apiserver", OPT_APISERVER},
    {"kubeconfig", OPT_KUBECONFIG},
    {"stateDir", OPT_STATE_DIR},
    {"name", OPT_NAME},
    {"address", OPT_ADDRESS},
    {"port", OPT_PORT},
    {"provider", OPT_PROVIDER},
    {"zone", OPT_ZONE},
    {"region", OPT_REGION},
    {"maxPods", OPT_MAX_PODS},
    {"reserveCpu", OPT_RESERVE_CPU},
    {"reserveMemory", OPT_RESERVE_MEMORY},
    {"leaseDuration", OPT_LEASE_DURATION},
    {"heartbeatInterval", OPT_HEARTBEAT},
    {"nodeStatusInterval", OPT_STATUS_INTERVAL},
    {"backoffInitial", OPT_BACKOFF_INITIAL},
    {"backoffMax", OPT_BACKOFF_MAX},
    {"logMaxSize", OPT_LOG_MAX_SIZE},
    {"logMaxFiles", OPT_LOG_MAX_FILES},
};

/* A scalar as option text: strings as they are, numbers printed; into buf when needed. */
static const char *scalar_text(const json_t *v, char *buf, size_t len)
{
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v))
        snprintf(buf, len, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, len, "%g", json_real_value(v));
    else
        return NULL;
    return buf;
}

static int config_taint(struct corral_kubelet_options *o, const char *file, const json_t *t)
{
    char spec[512];
    if (json_is_object(t)) {
        const char *key = json_string_value(json_object_get(t, "key"));
        const char *value = json_string_value(json_object_get(t, "value"));
        const char *effect = json_string_value(json_object_get(t, "effect"));
        snprintf(spec, sizeof(spec), "%s%s%s:%s", key ? key : "", value ? "=" : "",
                 value ? value : "", effect ? effect : "");
    } else if (json_is_string(t)) {
        snprintf(spec, sizeof(spec), "%s", json_string_value(t));
    } else {
        fprintf(stderr,
                "corral kubelet: %s: taints: each taint is \"key[=value]:Effect\" or "
                "{key, value, effect}\n",
                file);
        return -EINVAL;
    }
    return apply_option(o, OPT_TAINT, spec);
}

static int config_entry(struct corral_kubelet_options *o, const char *file, const char *key,
                        const json_t *v)
{
    char buf[64], spec[512];
    if (strcmp(key, "labels") == 0 && json_is_object(v)) {
        const char *k;
        json_t *val;
        json_object_foreach((json_t *)v, k, val)
        {
            snprintf(spec, sizeof(spec), "%s=%s", k,
                     json_is_string(val) ? json_string_value(val) : "(not a string)");
            if (apply_option(o, OPT_LABEL, spec) < 0)
                return -EINVAL;
        }
        return 0;
    }
    if (strcmp(key, "taints") == 0 && json_is_array(v)) {
        size_t i;
        json_t *t;
        json_array_foreach(v, i, t)
        {
            if (config_taint(o, file, t) < 0)
                return -EINVAL;
        }
        return 0;
    }
    if (strcmp(key, "cgroups") == 0 && json_is_boolean(v)) {
        o->cgroups = json_is_true(v);
        return 0;
    }
    for (size_t i = 0; i < sizeof(config_keys) / sizeof(config_keys[0]); i++) {
        if (strcmp(key, config_keys[i].key) != 0)
            continue;
        int opt = config_keys[i].opt;
        bool kept = opt == OPT_TOPOLOGY || opt == OPT_APISERVER || opt == OPT_KUBECONFIG ||
                    opt == OPT_STATE_DIR || opt == OPT_NAME || opt == OPT_ADDRESS ||
                    opt == OPT_PROVIDER || opt == OPT_ZONE || opt == OPT_REGION;
        if (kept && !json_is_string(v)) { /* these keep a pointer to the text */
            fprintf(stderr, "corral kubelet: %s: %s must be a string\n", file, key);
            return -EINVAL;
        }
        const char *text = scalar_text(v, buf, sizeof(buf));
        if (!text) {
            fprintf(stderr, "corral kubelet: %s: %s must be a string or a number\n", file, key);
            return -EINVAL;
        }
        /* numbers are parsed at once; strings stay in the config document, which lives on */
        return apply_option(o, opt, text);
    }
    fprintf(stderr, "corral kubelet: %s: unknown setting \"%s\" (or of the wrong type)\n", file,
            key);
    return -EINVAL;
}

/* Finds --config FILE (or --config=FILE) before the options proper are parsed. */
static const char *config_path(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            path = argv[i] + 9;
        else if (strcmp(argv[i], "--") == 0)
            break;
    }
    return path;
}

static int load_config(struct corral_kubelet_options *o, const char *path)
{
    json_t *docs = NULL;
    struct corral_parse_error pe = {0};
    int rc = corral_yaml_load_file(path, &docs, &pe);
    if (rc < 0) {
        if (pe.line)
            fprintf(stderr, "corral kubelet: %s:%d:%d: %s\n", path, pe.line, pe.column, pe.message);
        else
            fprintf(stderr, "corral kubelet: %s: %s\n", path, strerror(-rc));
        return -EINVAL;
    }
    o->config = json_incref(json_array_get(docs, 0));
    json_decref(docs);
    if (!json_is_object(o->config)) {
        fprintf(stderr, "corral kubelet: %s: expected a mapping of settings\n", path);
        return -EINVAL;
    }
    const char *key;
    json_t *v;
    json_object_foreach(o->config, key, v)
    {
        if (config_entry(o, path, key, v) < 0)
            return -EINVAL;
    }
    return 0;
}

int corral_kubelet_parse_args(int argc, char **argv, struct corral_kubelet_options *opts)
{
    set_defaults(opts);
    const char *config = config_path(argc, argv);
    if (config && load_config(opts, config) < 0)
        return -EINVAL;
    optind = 1;
    opterr = 0;
    for (;;) {
        int c = getopt_long(argc, argv, "", long_options, NULL);
        if (c == -1)
            break;
        if (c == OPT_HELP) {
            fputs(usage_text, stdout);
            return 1;
        }
        if (c == '?' || c == ':') {
            fprintf(stderr, "corral kubelet: unknown option or missing value: %s\n",
                    argv[optind - 1]);
            fputs(usage_text, stderr);
            return -EINVAL;
        }
        if (apply_option(opts, c, optarg) < 0)
            return -EINVAL;
    }
    if (optind < argc) {
        fprintf(stderr, "corral kubelet: unexpected argument \"%s\"\n", argv[optind]);
        return -EINVAL;
    }
    return check_options(opts);
}

void corral_kubelet_options_free(struct corral_kubelet_options *opts)
{
    json_decref(opts->node.labels);
    json_decref(opts->node.taints);
    json_decref(opts->config);
    opts->node.labels = opts->node.taints = opts->config = NULL;
}

static int print_node(const struct corral_topology *topo, const struct corral_kubelet_options *o)
{
    char err[512];
    json_t *node = corral_node_build(topo, &o->node, err, sizeof(err));
    if (!node) {
        fprintf(stderr, "corral kubelet: %s\n", err);
        return 1;
    }
    int rc = json_dumpf(node, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
    fputc('\n', stdout);
    json_decref(node);
    return rc == 0 && fflush(stdout) == 0 ? 0 : 1;
}

int corral_kubelet_main(int argc, char **argv)
{
    struct corral_kubelet_options opts;
    int rc = corral_kubelet_parse_args(argc, argv, &opts);
    if (rc != 0) {
        corral_kubelet_options_free(&opts);
        return rc > 0 ? 0 : 2;
    }
    char err[1024];
    struct corral_topology *topo = NULL;
    rc = corral_topology_load(opts.topology, &topo, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "corral kubelet: %s\n", err);
        corral_kubelet_options_free(&opts);
        return 1;
    }
    int status;
    if (opts.print_node) {
        status = print_node(topo, &opts);
    } else {
        status = corral_agent_run(&opts, topo);
    }
    corral_topology_free(topo);
    corral_kubelet_options_free(&opts);
    return status;
}
