/* SPDX-License-Identifier: Apache-2.0 */
/*
 * selector: Kubernetes label selectors and field selectors.
 *
 * A selector is a conjunction of requirements `key op values`. Label selectors come either as
 * the query-string form (`app=web,tier!=db,env in (prod,staging),!canary,gpu`) or as a
 * metav1.LabelSelector JSON object (matchLabels + matchExpressions); node-affinity style
 * expressions may also use Gt and Lt. Field selectors use the same string form restricted to
 * `=`, `==` and `!=`. Matching asks a lookup callback for the value of each key, so the same
 * code serves labels (a JSON object) and fields (a path into the object).
 *
 * An empty selector matches everything. A NULL selector from corral_selector_from_json(NULL)
 * means "nothing selected" only where the caller says so; the functions here treat NULL as
 * match-all.
 */
#ifndef CORRAL_SELECTOR_H
#define CORRAL_SELECTOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

enum corral_selector_op {
    CORRAL_SEL_EQ,
    CORRAL_SEL_NE,
    CORRAL_SEL_IN,
    CORRAL_SEL_NOTIN,
    CORRAL_SEL_EXISTS,
    CORRAL_SEL_NOT_EXISTS,
    CORRAL_SEL_GT,
    CORRAL_SEL_LT,
};

struct corral_requirement {
    char *key;
    enum corral_selector_op op;
    char **values;
    size_t n_values;
};

struct corral_selector {
    struct corral_requirement *reqs;
    size_t n_reqs;
};

/* Returns the value of key in ctx, or NULL when absent. The string is borrowed. */
typedef const char *(*corral_selector_lookup_fn)(const char *key, void *ctx);

/*
 * Parses a label selector string. Returns 0 and *out (caller frees with corral_selector_free)
 * or CORRAL_EBADREQUEST with a message in errbuf.
 */
int corral_selector_parse(const char *s, struct corral_selector **out, char *errbuf,
                          size_t errlen);

/* Parses a field selector string (only =, ==, !=). Same ownership and errors. */
int corral_field_selector_parse(const char *s, struct corral_selector **out, char *errbuf,
                                size_t errlen);

/*
 * Builds a selector from a metav1.LabelSelector object, or from a bare list of
 * NodeSelectorRequirement-like expressions when `sel` is an array. Returns 0 or
 * CORRAL_EINVALID with errbuf naming the problem.
 */
int corral_selector_from_json(const json_t *sel, struct corral_selector **out, char *errbuf,
                              size_t errlen);

/* Builds an equality selector from a map of labels (Service.spec.selector style). */
int corral_selector_from_map(const json_t *map, struct corral_selector **out);

bool corral_selector_match(const struct corral_selector *sel, corral_selector_lookup_fn lookup,
                           void *ctx);

/* Matches against a JSON object of labels (NULL labels = no labels). */
bool corral_selector_match_labels(const struct corral_selector *sel, const json_t *labels);

bool corral_selector_is_empty(const struct corral_selector *sel);

void corral_selector_free(struct corral_selector *sel);

#endif
