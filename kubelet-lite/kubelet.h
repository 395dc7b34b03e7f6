/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kubelet: the `corral kubelet` subcommand: option parsing and the two modes,
 * `--print-node` (discover, print the Node as JSON, exit) and joining a cluster.
 */
#ifndef CORRAL_KUBELET_H
#define CORRAL_KUBELET_H

#include "node.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct corral_kubelet_options {
    const char *topology;           /* --topology FILE.xml, NULL for the live machine */
    bool print_node;                /* --print-node */
    const char *apiserver;          /* --apiserver URL */
    const char *kubeconfig;         /* --kubeconfig FILE */
    const char *state_dir;          /* --state-dir DIR */
    struct corral_node_config node; /* name, provider, zone, region, address, labels, taints */
    int64_t lease_duration_ms;      /* --lease-duration (default 40s) */
    int64_t heartbeat_ms;           /* --heartbeat-interval (default 5s) */
    int64_t status_interval_ms;     /* --node-status-interval (default 60s) */
    int64_t backoff_initial_ms;     /* --backoff-initial (default 10s) */
    int64_t backoff_max_ms;         /* --backoff-max (default 5m) */
    int64_t log_max_bytes;          /* --log-max-size (default 10Mi) */
    int log_max_files;              /* --log-max-files (default 5) */
    bool cgroups;                   /* false with --no-cgroups */
    json_t *config;                 /* the --config document (strings above may point into it) */
};

/* The entry point of `corral kubelet`. Returns the process exit status. */
int corral_kubelet_main(int argc, char **argv);

/*
 * Parses the command line into opts (defaults first). Labels and taints are new JSON values
 * in opts->node (release with corral_kubelet_options_free). Returns 0, 1 when --help was
 * printed, or -EINVAL after printing the reason to stderr.
 */
int corral_kubelet_parse_args(int argc, char **argv, struct corral_kubelet_options *opts);
void corral_kubelet_options_free(struct corral_kubelet_options *opts);

/*
 * Parses a Go-style duration ("500ms", "10s", "1m30s", "2h"; a bare number is seconds) into
 * milliseconds. Returns 0 or -EINVAL.
 */
int corral_kubelet_parse_duration(const char *s, int64_t *ms);

#endif
