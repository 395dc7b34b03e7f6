/* SPDX-License-Identifier: Apache-2.0 */
/*
 * embedded: the scheduler profiles shipped in manifests/profiles/, compiled into the binary
 * (by embed.py at build time) so `corral sim --policy NAME` and the default profile work
 * without the source tree.
 */
#ifndef CORRAL_SCHED_EMBEDDED_H
#define CORRAL_SCHED_EMBEDDED_H

struct corral_embedded_profile {
    const char *name; /* file stem: "default", "fgd", ... */
    const char *text; /* the YAML */
};

/* Terminated by an entry with name NULL. */
extern const struct corral_embedded_profile corral_embedded_profiles[];

/* The profile called name (case-insensitive), or NULL. */
const struct corral_embedded_profile *corral_embedded_profile(const char *name);

#endif
