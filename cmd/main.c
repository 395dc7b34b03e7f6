/* SPDX-License-Identifier: Apache-2.0 */
/*
 * corral: one executable, many subcommands (as k3s does). This file only dispatches; each
 * subcommand's code lives in its own directory and is listed once in the table below.
 */
#include "corral-config.h"
#include "apiserver.h"
#include "init.h"
#include "kubelet.h"
#include "log.h"
#include "scheduler.h"
#include "up.h"

#include <stdio.h>
#include <string.h>

struct subcommand {
    const char *name;
    int (*main)(int argc, char **argv);
    const char *summary;
};

static const struct subcommand subcommands[] = {
    {"apiserver", corral_apiserver_main, "serve the Kubernetes API from the embedded store"},
    {"init", corral_init_main, "create the cluster CA, certificates, tokens and admin kubeconfig"},
    {"kubelet", corral_kubelet_main, "run the node agent (kubelet-lite) or print this node"},
    {"up", corral_up_main, "start an all-in-one cluster with simulated GPU nodes and examples"},
    {"scheduler", corral_scheduler_main, "schedule pods onto nodes and GPUs (watch, bind, explain)"},
    {"sim", corral_sim_main, "replay node and pod lists through the scheduler, no apiserver"},
    {NULL, NULL, NULL},
};

static int usage(FILE *out)
{
    fprintf(out, "usage: corral <command> [options]\n\ncommands:\n");
    for (const struct subcommand *s = subcommands; s->name; s++)
        fprintf(out, "  %-12s %s\n", s->name, s->summary);
    fprintf(out, "\n`corral <command> --help` describes each command's options.\n");
    return out == stdout ? 0 : 2;
}

int main(int argc, char **argv)
{
    corral_log_init_from_env();
    if (argc < 2)
        return usage(stderr);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0)
        return usage(stdout);
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("corral %s\n", CORRAL_VERSION);
        return 0;
    }
    for (const struct subcommand *s = subcommands; s->name; s++)
        if (strcmp(argv[1], s->name) == 0)
            return s->main(argc - 1, argv + 1);
    fprintf(stderr, "corral: unknown command \"%s\"\n", argv[1]);
    return usage(stderr);
}
