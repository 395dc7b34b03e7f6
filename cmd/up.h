/* SPDX-License-Identifier: Apache-2.0 */
/*
 * up: `corral up`, the all-in-one cluster (see up.c).
 */
#ifndef CORRAL_UP_H
#define CORRAL_UP_H

/* Runs `corral up`. Returns the process exit status. */
int corral_up_main(int argc, char **argv);

#endif
