/* SPDX-License-Identifier: Apache-2.0 */
/*
 * authn: authentication of apiserver requests (see authn.h).
 *
 * The token table is an array of {sha256 hex, identity, expiry} swapped as a whole under a
 * rwlock on reload. A token is checked by hashing it and comparing that hash with every entry
 * using CRYPTO_memcmp-style constant-time comparison, without stopping at a match, so the time
 * taken says nothing about which entry (or how much of one) matched. Client certificates go
 * through one shared OpenSSL verifier (thread-safe) built from the cluster CA; since a
 * keep-alive connection presents the same certificate on every request, verified identities
 * are cached by the certificate's SHA-256 (direct-mapped, until notAfter, re-verified every
 * CERT_CACHE_TTL_S), which turns a chain verification into a hash and a lookup.
 */
#include "authn.h"

#include "error.h"
#include "init.h"
#include "log.h"
#include "meta.h"
#include "pki.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define NODE_PREFIX "system:node:"
#define CERT_CACHE_SLOTS 1024
#define CERT_CACHE_TTL_S 600
#define KUBELET_SIGNER "kubernetes.io/kube-apiserver-client-kubelet"

struct token_entry {
    char sha256[65];
    struct corral_identity id; /* without system:authenticated */
    time_t expires;            /* 0 = never */
};

struct token_table {
    struct token_entry *e;
    size_t n;
};

struct cert_slot {
    char sha256[65]; /* of the DER; "" = empty */
    time_t valid_until;
    struct corral_identity id; /* without system:authenticated */
};

struct corral_authn {
    struct corral_pki_verifier *verifier; /* NULL: client certificates not accepted */
    pthread_mutex_t cache_lock;           /* guards cache */
    struct cert_slot *cache;              /* CERT_CACHE_SLOTS verified certificates */
    char *tokens_file;
    pthread_rwlock_t lock; /* guards tokens */
    struct token_table tokens;
    char *ca_cert, *ca_key; /* node join; NULL = disabled */
    int node_cert_days;
};

static void set_why(char *why, size_t len, const char *text)
{
    if (why && len)
        snprintf(why, len, "%s", text);
}

bool corral_identity_in_group(const struct corral_identity *id, const char *group)
{
    for (int i = 0; i < id->n_groups; i++)
        if (strcmp(id->groups[i], group) == 0)
            return true;
    return false;
}

const char *corral_identity_node(const struct corral_identity *id)
{
    size_t n = strlen(NODE_PREFIX);
    if (strncmp(id->name, NODE_PREFIX, n) != 0 || !id->name[n] ||
        !corral_identity_in_group(id, "system:nodes"))
        return NULL;
    return id->name + n;
}

/* Adds group unless present; false when there is no room. */
static bool add_group(struct corral_identity *id, const char *group)
{
    if (corral_identity_in_group(id, group))
        return true;
    if (id->n_groups >= CORRAL_AUTHN_MAX_GROUPS || strlen(group) >= sizeof(id->groups[0]))
        return false;
    snprintf(id->groups[id->n_groups++], sizeof(id->groups[0]), "%s", group);
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* The token table                                                                             */

static bool is_hex64(const char *s)
{
    return s && strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

/* Fills an identity from a token table item's user, uid and groups. */
static int item_identity(const json_t *item, struct corral_identity *id)
{
    const char *user = json_string_value(json_object_get(item, "user"));
    const char *uid = json_string_value(json_object_get(item, "uid"));
    const json_t *groups = json_object_get(item, "groups"), *g;
    size_t i;
    if (!user || !user[0] || strlen(user) >= sizeof(id->name) || (groups && !json_is_array(groups)))
        return -EINVAL;
    snprintf(id->name, sizeof(id->name), "%s", user);
    snprintf(id->uid, sizeof(id->uid), "%s", uid ? uid : "");
    id->method = CORRAL_AUTHN_TOKEN;
    json_array_foreach(groups, i, g)
    {
        /* keep a slot free for system:authenticated */
        if (!json_is_string(g) || id->n_groups >= CORRAL_AUTHN_MAX_GROUPS - 1 ||
            !add_group(id, json_string_value(g)))
            return -EINVAL;
    }
    return 0;
}

static int parse_entry(const json_t *item, struct token_entry *e)
{
    const char *hash = json_string_value(json_object_get(item, "sha256"));
    const char *expires = json_string_value(json_object_get(item, "expires"));
    memset(e, 0, sizeof(*e));
    if (!is_hex64(hash) || item_identity(item, &e->id))
        return -EINVAL;
    memcpy(e->sha256, hash, 65);
    if (expires) {
        struct timespec ts;
        if (corral_meta_parse_time(expires, &ts))
            return -EINVAL;
        e->expires = ts.tv_sec;
    }
    return 0;
}

static int parse_table(const char *path, const char *text, struct token_table *out)
{
    json_error_t jerr;
    json_t *doc = json_loads(text, 0, &jerr), *items = json_object_get(doc, "items"), *item;
    size_t i;
    int rc = 0;
    out->n = 0;
    out->e = NULL;
    if (!json_is_array(items)) {
        corral_error("authn", "%s: not a token table (%s)", path, doc ? "no items" : jerr.text);
        json_decref(doc);
        return -EINVAL;
    }
    if (json_array_size(items) && !(out->e = calloc(json_array_size(items), sizeof(*out->e))))
        rc = -ENOMEM;
    json_array_foreach(items, i, item)
    {
        if (rc || (rc = parse_entry(item, &out->e[i])))
            break;
        out->n++;
    }
    if (rc == -EINVAL)
        corral_error("authn", "%s: item %zu is malformed (sha256, user and groups are required)",
                     path, i);
    if (rc) {
        free(out->e);
        out->e = NULL;
        out->n = 0;
    }
    json_decref(doc);
    return rc;
}

static void table_free(struct token_table *t)
{
    if (t->e)
        explicit_bzero(t->e, t->n * sizeof(*t->e));
    free(t->e);
    t->e = NULL;
    t->n = 0;
}

int corral_authn_reload_tokens(struct corral_authn *a)
{
    if (!a->tokens_file)
        return 0;
    char *text;
    struct token_table fresh, old;
    int rc = corral_pki_read_file(a->tokens_file, &text, NULL);
    if (rc) {
        corral_error("authn", "cannot read %s: %s", a->tokens_file, strerror(-rc));
        return rc;
    }
    rc = parse_table(a->tokens_file, text, &fresh);
    corral_pki_free_secret(text);
    if (rc)
        return rc;
    pthread_rwlock_wrlock(&a->lock);
    old = a->tokens;
    a->tokens = fresh;
    pthread_rwlock_unlock(&a->lock);
    table_free(&old);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Construction                                                                                */

static int dup_opt(char **dst, const char *src)
{
    *dst = src ? strdup(src) : NULL;
    return src && !*dst ? -ENOMEM : 0;
}

int corral_authn_new(const struct corral_authn_config *cfg, struct corral_authn **out)
{
    *out = NULL;
    struct corral_authn *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    pthread_rwlock_init(&a->lock, NULL);
    pthread_mutex_init(&a->cache_lock, NULL);
    a->node_cert_days = cfg->node_cert_days > 0 ? cfg->node_cert_days : 365;
    int rc;
    if ((rc = dup_opt(&a->tokens_file, cfg->tokens_file)) ||
        (rc = dup_opt(&a->ca_cert, cfg->ca_key_pem ? cfg->ca_cert_pem : NULL)) ||
        (rc = dup_opt(&a->ca_key, cfg->ca_cert_pem ? cfg->ca_key_pem : NULL)))
        goto err_free;
    if (cfg->client_ca_pem && (rc = corral_pki_verifier_new(cfg->client_ca_pem, &a->verifier))) {
        corral_error("authn", "the client CA does not hold a certificate");
        goto err_free;
    }
    rc = -ENOMEM;
    if (a->verifier && !(a->cache = calloc(CERT_CACHE_SLOTS, sizeof(*a->cache))))
        goto err_free;
    if ((rc = corral_authn_reload_tokens(a)))
        goto err_free;
    *out = a;
    return 0;
err_free:
    corral_authn_free(a);
    return rc;
}

void corral_authn_free(struct corral_authn *a)
{
    if (!a)
        return;
    corral_pki_verifier_free(a->verifier);
    free(a->cache);
    pthread_mutex_destroy(&a->cache_lock);
    table_free(&a->tokens);
    pthread_rwlock_destroy(&a->lock);
    free(a->tokens_file);
    free(a->ca_cert);
    corral_pki_free_secret(a->ca_key);
    free(a);
}

static int read_in(const char *dir, const char *rel, char **out, bool optional)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    int rc = corral_pki_read_file(path, out, NULL);
    if (rc == -ENOENT && optional)
        return 0;
    if (rc)
        corral_error("authn", "cannot read %s: %s", path, strerror(-rc));
    return rc;
}

int corral_authn_new_from_dir(const char *dir, struct corral_authn **out)
{
    char tokens[PATH_MAX], *ca = NULL, *ca_key = NULL;
    snprintf(tokens, sizeof(tokens), "%s/%s", dir, CORRAL_INIT_TOKENS);
    int rc = read_in(dir, CORRAL_INIT_CA_CERT, &ca, false);
    if (!rc)
        rc = read_in(dir, CORRAL_INIT_CA_KEY, &ca_key, true);
    if (!rc) {
        struct corral_authn_config cfg = {
            .client_ca_pem = ca, .tokens_file = tokens, .ca_cert_pem = ca, .ca_key_pem = ca_key};
        rc = corral_authn_new(&cfg, out);
    }
    free(ca);
    corral_pki_free_secret(ca_key);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Requests                                                                                    */

static int cert_verify(struct corral_authn *a, const unsigned char *der, size_t len,
                       struct corral_identity *id, time_t *not_after, char *why, size_t why_len)
{
    struct corral_pki_subject s;
    int rc =
        corral_pki_verify_der(a->verifier, der, len, 0, CORRAL_PKI_USAGE_CLIENT, &s, why, why_len);
    if (rc)
        return CORRAL_EUNAUTHORIZED;
    rc = CORRAL_EUNAUTHORIZED;
    if (!s.cn[0] || strlen(s.cn) >= sizeof(id->name)) {
        set_why(why, why_len, "the client certificate has no usable subject CN");
        goto out;
    }
    snprintf(id->name, sizeof(id->name), "%s", s.cn);
    id->method = CORRAL_AUTHN_CERT;
    *not_after = s.not_after;
    for (size_t i = 0; i < s.n_orgs; i++) {
        if (id->n_groups >= CORRAL_AUTHN_MAX_GROUPS - 1 || !add_group(id, s.orgs[i])) {
            set_why(why, why_len, "the client certificate names too many or too long groups");
            goto out;
        }
    }
    rc = 0;
out:
    corral_pki_subject_clear(&s);
    return rc;
}

/* The cache slot for a certificate: its hash's first 16 bits (lowercase hex) pick it. */
static struct cert_slot *cert_slot_of(struct corral_authn *a, const char *hash)
{
    unsigned idx = 0;
    for (int i = 0; i < 4; i++)
        idx = idx * 16 + (unsigned)(hash[i] <= '9' ? hash[i] - '0' : hash[i] - 'a' + 10);
    return &a->cache[idx % CERT_CACHE_SLOTS];
}

/* Identity of a client certificate: from the cache when verified recently, else verified. */
static int cert_identity(struct corral_authn *a, const unsigned char *der, size_t len,
                         struct corral_identity *id, char *why, size_t why_len)
{
    char hash[65];
    time_t now = time(NULL), not_after = 0;
    corral_pki_sha256_hex(der, len, hash);
    struct cert_slot *slot = cert_slot_of(a, hash);
    pthread_mutex_lock(&a->cache_lock);
    bool hit = strcmp(slot->sha256, hash) == 0 && slot->valid_until > now;
    if (hit)
        *id = slot->id;
    pthread_mutex_unlock(&a->cache_lock);
    if (hit)
        return 0;
    int rc = cert_verify(a, der, len, id, &not_after, why, why_len);
    if (rc)
        return rc;
    pthread_mutex_lock(&a->cache_lock);
    memcpy(slot->sha256, hash, sizeof(hash));
    slot->valid_until = not_after < now + CERT_CACHE_TTL_S ? not_after : now + CERT_CACHE_TTL_S;
    slot->id = *id;
    pthread_mutex_unlock(&a->cache_lock);
    return 0;
}

/* Compares hash with every entry; copies the match. Returns 0, or CORRAL_EUNAUTHORIZED. */
static int token_lookup(struct corral_authn *a, const char *hash, struct corral_identity *id,
                        char *why, size_t why_len)
{
    const struct token_entry *match = NULL;
    pthread_rwlock_rdlock(&a->lock);
    for (size_t i = 0; i < a->tokens.n; i++) {
        bool eq = corral_pki_equal(hash, 64, a->tokens.e[i].sha256, 64);
        match = eq ? &a->tokens.e[i] : match;
    }
    int rc = CORRAL_EUNAUTHORIZED;
    if (!match)
        set_why(why, why_len, "invalid bearer token");
    else if (match->expires && match->expires <= time(NULL))
        set_why(why, why_len, "token expired");
    else {
        *id = match->id;
        rc = 0;
    }
    pthread_rwlock_unlock(&a->lock);
    return rc;
}

static int token_identity(struct corral_authn *a, const char *authorization,
                          struct corral_identity *id, char *why, size_t why_len)
{
    const char *p = authorization;
    if (strncasecmp(p, "Bearer ", 7) != 0) {
        set_why(why, why_len, "unsupported Authorization scheme (only Bearer tokens)");
        return CORRAL_EUNAUTHORIZED;
    }
    p += 7;
    while (*p == ' ')
        p++;
    size_t n = strlen(p);
    while (n > 0 && p[n - 1] == ' ')
        n--;
    if (n == 0) {
        set_why(why, why_len, "empty bearer token");
        return CORRAL_EUNAUTHORIZED;
    }
    char hash[65];
    corral_pki_sha256_hex(p, n, hash);
    return token_lookup(a, hash, id, why, why_len);
}

static void anonymous(struct corral_identity *id)
{
    memset(id, 0, sizeof(*id));
    snprintf(id->name, sizeof(id->name), "system:anonymous");
    add_group(id, "system:unauthenticated");
}

int corral_authn_request(struct corral_authn *a, const char *authorization,
                         const unsigned char *peer_der, size_t peer_len,
                         struct corral_identity *out, char *why, size_t why_len)
{
    bool presented = false;
    char cert_why[160] = "";
    memset(out, 0, sizeof(*out));
    if (peer_der && peer_len && a->verifier) {
        presented = true;
        if (cert_identity(a, peer_der, peer_len, out, cert_why, sizeof(cert_why)) == 0)
            goto ok;
        memset(out, 0, sizeof(*out));
    }
    if (authorization && authorization[0]) {
        presented = true;
        if (token_identity(a, authorization, out, why, why_len) == 0)
            goto ok;
        memset(out, 0, sizeof(*out));
    } else if (presented) {
        set_why(why, why_len, cert_why);
    }
    if (presented) {
        anonymous(out);
        return CORRAL_EUNAUTHORIZED;
    }
    anonymous(out);
    return 0;
ok:
    add_group(out, "system:authenticated");
    return 0;
}

bool corral_authn_anonymous_allowed(const char *method, const char *path)
{
    static const char *const exact[] = {"/version", "/healthz", "/readyz", "/livez"};
    if (!method || !path || (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0))
        return false;
    size_t n = strcspn(path, "?");
    for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++) {
        size_t m = strlen(exact[i]);
        if (n == m && strncmp(path, exact[i], m) == 0)
            return true;
        /* /healthz/etcd, /readyz/ping, ... (not /version/...) */
        if (i > 0 && n > m + 1 && strncmp(path, exact[i], m) == 0 && path[m] == '/' &&
            !memchr(path, '.', n))
            return true;
    }
    return false;
}

/* ------------------------------------------------------------------------------------------ */
/* Node join                                                                                   */

/* Decodes spec.request (base64 of a PEM CSR). Returns 0 and *pem (caller frees). */
static int csr_pem(const json_t *csr, char **pem)
{
    const char *b64 = json_string_value(json_object_get(json_object_get(csr, "spec"), "request"));
    size_t len;
    *pem = NULL;
    if (!b64 || corral_pki_base64_decode(b64, pem, &len) != 0)
        return CORRAL_EINVALID;
    return 0;
}

int corral_authn_csr_node(const json_t *csr, char *name, size_t len)
{
    char *pem;
    struct corral_pki_subject s;
    if (csr_pem(csr, &pem))
        return CORRAL_EINVALID;
    int rc = corral_pki_csr_subject(pem, &s);
    free(pem);
    if (rc)
        return CORRAL_EINVALID;
    size_t p = strlen(NODE_PREFIX);
    rc = strncmp(s.cn, NODE_PREFIX, p) == 0 && s.cn[p] && strlen(s.cn + p) < len ? 0
                                                                                 : CORRAL_EINVALID;
    if (rc == 0)
        snprintf(name, len, "%s", s.cn + p);
    corral_pki_subject_clear(&s);
    return rc;
}

/* Checks signerName and usages. */
static int csr_spec_ok(const json_t *csr, char *why, size_t len)
{
    static const char *const allowed[] = {"digital signature", "key encipherment", "client auth"};
    const json_t *spec = json_object_get(csr, "spec"), *u;
    const char *signer = json_string_value(json_object_get(spec, "signerName"));
    size_t i;
    if (!signer || strcmp(signer, KUBELET_SIGNER) != 0) {
        set_why(why, len, "spec.signerName must be " KUBELET_SIGNER);
        return CORRAL_EINVALID;
    }
    json_array_foreach(json_object_get(spec, "usages"), i, u)
    {
        const char *s = json_string_value(u);
        bool ok = false;
        for (size_t k = 0; s && k < sizeof(allowed) / sizeof(allowed[0]); k++)
            ok = ok || strcmp(s, allowed[k]) == 0;
        if (!ok) {
            set_why(why, len,
                    "spec.usages may only hold digital signature, key encipherment "
                    "and client auth");
            return CORRAL_EINVALID;
        }
    }
    return 0;
}

static int csr_allowed(const struct corral_identity *who, const char *node, bool node_exists,
                       char *why, size_t len)
{
    const char *self = corral_identity_node(who);
    if (corral_identity_in_group(who, "system:masters") || (self && strcmp(self, node) == 0))
        return 0;
    if (corral_identity_in_group(who, "system:bootstrappers")) {
        if (!node_exists)
            return 0;
        set_why(why, len,
                "a node with this name exists already; a bootstrap token cannot take "
                "it over (delete the Node first to re-join)");
        return CORRAL_EFORBIDDEN;
    }
    set_why(why, len,
            "only a bootstrap token, the node itself or a cluster admin may request a "
            "node certificate");
    return CORRAL_EFORBIDDEN;
}

/* Records the requester and the signed certificate in the object. */
static int csr_fill(json_t *csr, const struct corral_identity *who, const char *cert_pem)
{
    char now[21];
    corral_meta_format_time(time(NULL), now);
    json_t *spec = json_object_get(csr, "spec"), *groups = json_array();
    for (int i = 0; groups && i < who->n_groups; i++)
        json_array_append_new(groups, json_string(who->groups[i]));
    json_object_set_new(spec, "username", json_string(who->name));
    json_object_set_new(spec, "groups", groups);
    if (who->uid[0])
        json_object_set_new(spec, "uid", json_string(who->uid));
    char *b64 = corral_pki_base64_encode(cert_pem, strlen(cert_pem));
    json_t *status = json_pack("{s:[{s:s,s:s,s:s,s:s,s:s,s:s}],s:s?}", "conditions", "type",
                               "Approved", "status", "True", "reason", "AutoApproved", "message",
                               "node certificate approved and signed by corral", "lastUpdateTime",
                               now, "lastTransitionTime", now, "certificate", b64);
    free(b64);
    if (!status || !b64)
        return -ENOMEM;
    return json_object_set_new(csr, "status", status) ? -ENOMEM : 0;
}

int corral_authn_sign_csr(struct corral_authn *a, const struct corral_identity *who, json_t *csr,
                          bool node_exists, char *why, size_t why_len)
{
    char node[256], *pem = NULL, *cert = NULL;
    if (!a->ca_key) {
        set_why(why, why_len, "node join is disabled: the apiserver has no CA key");
        return -ENOTSUP;
    }
    int rc = csr_spec_ok(csr, why, why_len);
    if (!rc && (rc = corral_authn_csr_node(csr, node, sizeof(node))))
        set_why(why, why_len,
                "spec.request must be a base64 PEM certificate request for "
                "CN=system:node:<name>, O=system:nodes");
    if (!rc)
        rc = csr_allowed(who, node, node_exists, why, why_len);
    if (!rc && (rc = csr_pem(csr, &pem)) == 0)
        rc = corral_pki_sign_node_csr(a->ca_cert, a->ca_key, pem, node, a->node_cert_days, &cert,
                                      why, why_len);
    if (!rc)
        rc = csr_fill(csr, who, cert);
    if (!rc)
        corral_info("authn", "signed a client certificate for node %s, requested by %s", node,
                    who->name);
    free(pem);
    free(cert);
    return rc;
}
