/* SPDX-License-Identifier: Apache-2.0 */
/*
 * apiserver: the `corral apiserver` subcommand (options, start-up, signal handling).
 */
#ifndef CORRAL_APISERVER_H
#define CORRAL_APISERVER_H

/* Runs the apiserver until SIGTERM/SIGINT. Returns the process exit code. */
int corral_apiserver_main(int argc, char **argv);

#endif
