/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scheduler: the subcommands this directory provides to cmd/main.c.
 *   corral sim        replay node and pod lists through the framework (sim.c)
 *   corral scheduler  schedule pods of a running cluster (daemon.c)
 */
#ifndef CORRAL_SCHED_SCHEDULER_H
#define CORRAL_SCHED_SCHEDULER_H

/* `corral sim ...`; argv[0] is "sim". Returns the process exit status. */
int corral_sim_main(int argc, char **argv);

/* `corral scheduler ...`; argv[0] is "scheduler". Returns the process exit status. */
int corral_scheduler_main(int argc, char **argv);

#endif
