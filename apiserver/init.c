/* SPDX-License-Identifier: Apache-2.0 */
/*
 * init: `corral init` (see init.h for what it writes).
 *
 * Everything is generated in memory first (CA, serving and admin certificates, tokens, the
 * kubeconfig) and only then written, each file atomically with its final mode, so a failure
 * while generating leaves the directory untouched. The CA check happens before anything is
 * generated: an existing CA is never replaced without --force.
 */
#include "init.h"

#include "error.h"
#include "kubeconfig.h"
#include "log.h"
#include "meta.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define INIT_DEFAULT_PORT 6443
#define INIT_DEFAULT_TTL_S (24L * 3600L)
#define INIT_MAX_NAMES 256

/* The subjectAltNames of the serving certificate. */
struct names {
    char *dns[INIT_MAX_NAMES + 1];
    size_t n_dns;
    char *ips[INIT_MAX_NAMES + 1];
    size_t n_ips;
    char server_host[INET6_ADDRSTRLEN + 2]; /* host part of the kubeconfig's server URL */
};

/* Everything init writes, generated before any file is touched. */
struct material {
    char *ca_cert, *ca_key;
    char *srv_cert, *srv_key;
    char *adm_cert, *adm_key;
    char *kcl_cert, *kcl_key; /* apiserver -> node agent client certificate */
    char *admin_token;
    char **boot; /* bootstrap tokens */
    size_t n_boot;
    time_t boot_expiry;
    json_t *tokens; /* the hashed token table */
    char *kubeconfig;
    char *boot_file; /* text of DIR/bootstrap-tokens */
};

static void names_clear(struct names *n)
{
    for (size_t i = 0; i < n->n_dns; i++)
        free(n->dns[i]);
    for (size_t i = 0; i < n->n_ips; i++)
        free(n->ips[i]);
    memset(n, 0, sizeof(*n));
}

static int strv_add_unique(char **v, size_t *n, const char *s)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(v[i], s) == 0)
            return 0;
    if (*n >= INIT_MAX_NAMES) {
        corral_error("init", "more than %d names for the serving certificate", INIT_MAX_NAMES);
        return -E2BIG;
    }
    if (!(v[*n] = strdup(s)))
        return -ENOMEM;
    v[++*n] = NULL;
    return 0;
}

/* Canonical text of an IP address, or false when s is not one. */
static bool ip_canonical(const char *s, char *out, size_t len, bool *unspecified)
{
    unsigned char raw[16];
    int af = strchr(s, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(af, s, raw) != 1 || !inet_ntop(af, raw, out, (socklen_t)len))
        return false;
    static const unsigned char zero[16];
    *unspecified = memcmp(raw, zero, af == AF_INET ? 4 : 16) == 0;
    return true;
}

/* Adds every address of every local interface, and the host name: what 0.0.0.0 listens on. */
static int names_add_interfaces(struct names *n)
{
    struct ifaddrs *ifs, *i;
    char buf[INET6_ADDRSTRLEN], host[256];
    int rc = 0;
    if (getifaddrs(&ifs) != 0)
        return -errno;
    for (i = ifs; i && !rc; i = i->ifa_next) {
        if (!i->ifa_addr ||
            (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
            continue;
        const void *a = i->ifa_addr->sa_family == AF_INET
                            ? (const void *)&((struct sockaddr_in *)i->ifa_addr)->sin_addr
                            : (const void *)&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
        if (i->ifa_addr->sa_family == AF_INET6 && IN6_IS_ADDR_LINKLOCAL((const struct in6_addr *)a))
            continue; /* a scope-less link-local address means nothing in a certificate */
        if (inet_ntop(i->ifa_addr->sa_family, a, buf, sizeof(buf)))
            rc = strv_add_unique(n->ips, &n->n_ips, buf);
    }
    freeifaddrs(ifs);
    if (!rc && gethostname(host, sizeof(host)) == 0 && !corral_meta_check_dns_subdomain(host))
        rc = strv_add_unique(n->dns, &n->n_dns, host);
    return rc;
}

static int names_add(struct names *n, const char *addr)
{
    char canon[INET6_ADDRSTRLEN];
    bool any = false;
    if (ip_canonical(addr, canon, sizeof(canon), &any)) {
        if (any)
            return names_add_interfaces(n);
        if (!n->server_host[0])
            snprintf(n->server_host, sizeof(n->server_host), strchr(canon, ':') ? "[%s]" : "%s",
                     canon);
        return strv_add_unique(n->ips, &n->n_ips, canon);
    }
    const char *bad = corral_meta_check_dns_subdomain(addr);
    if (bad) {
        corral_error("init", "--address \"%s\" is neither an IP address nor a DNS name: %s", addr,
                     bad);
        return -EINVAL;
    }
    if (!n->server_host[0])
        snprintf(n->server_host, sizeof(n->server_host), "%s", addr);
    return strv_add_unique(n->dns, &n->n_dns, addr);
}

static int names_build(struct names *n, const char *const *addresses)
{
    memset(n, 0, sizeof(*n));
    int rc = strv_add_unique(n->ips, &n->n_ips, "127.0.0.1");
    if (!rc)
        rc = strv_add_unique(n->dns, &n->n_dns, "localhost");
    for (size_t i = 0; !rc && addresses && addresses[i]; i++)
        rc = names_add(n, addresses[i]);
    if (!n->server_host[0])
        snprintf(n->server_host, sizeof(n->server_host), "127.0.0.1");
    if (rc)
        names_clear(n);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Generation                                                                                  */

static void material_clear(struct material *m)
{
    free(m->ca_cert);
    corral_pki_free_secret(m->ca_key);
    free(m->srv_cert);
    corral_pki_free_secret(m->srv_key);
    free(m->adm_cert);
    corral_pki_free_secret(m->adm_key);
    free(m->kcl_cert);
    corral_pki_free_secret(m->kcl_key);
    corral_pki_free_secret(m->admin_token);
    for (size_t i = 0; i < m->n_boot; i++)
        corral_pki_free_secret(m->boot[i]);
    free(m->boot);
    json_decref(m->tokens);
    corral_pki_free_secret(m->kubeconfig);
    corral_pki_free_secret(m->boot_file);
    memset(m, 0, sizeof(*m));
}

static int gen_certs(struct material *m, const struct corral_init_opts *o, const struct names *n)
{
    static const char *const admin_orgs[] = {"system:masters", NULL};
    struct corral_pki_cert_spec srv = {
        .cn = "corral-apiserver",
        .dns_names = (const char *const *)n->dns,
        .ip_addrs = (const char *const *)n->ips,
        .usage = CORRAL_PKI_USAGE_SERVER,
        .days = o->cert_days,
    };
    struct corral_pki_cert_spec adm = {
        .cn = "admin",
        .orgs = admin_orgs,
        .usage = CORRAL_PKI_USAGE_CLIENT,
        .days = o->cert_days,
    };
    struct corral_pki_cert_spec kcl = {
        .cn = CORRAL_INIT_KUBELET_CLIENT_CN,
        .usage = CORRAL_PKI_USAGE_CLIENT,
        .days = o->cert_days,
    };
    int rc = corral_pki_ca_new("corral-ca", o->ca_days, o->key_type, &m->ca_cert, &m->ca_key);
    if (!rc)
        rc = corral_pki_issue(m->ca_cert, m->ca_key, &srv, NULL, o->key_type, &m->srv_cert,
                              &m->srv_key);
    if (!rc)
        rc = corral_pki_issue(m->ca_cert, m->ca_key, &adm, NULL, o->key_type, &m->adm_cert,
                              &m->adm_key);
    if (!rc)
        rc = corral_pki_issue(m->ca_cert, m->ca_key, &kcl, NULL, o->key_type, &m->kcl_cert,
                              &m->kcl_key);
    return rc;
}

/* Appends a token table entry for token (hashed here). */
static int token_entry(json_t *items, const char *token, const char *user, const char *group,
                       const char *expires, const char *boot_id)
{
    char hash[65], uid[37];
    corral_pki_sha256_hex(token, strlen(token), hash);
    corral_meta_new_uid(uid);
    json_t *e =
        json_pack("{s:s,s:s,s:s,s:[s]}", "sha256", hash, "user", user, "uid", uid, "groups", group);
    if (e && expires)
        json_object_set_new(e, "expires", json_string(expires));
    if (e && boot_id)
        json_object_set_new(e, "bootstrapId", json_string(boot_id));
    return e && json_array_append_new(items, e) == 0 ? 0 : -ENOMEM;
}

static int gen_boot_token(struct material *m, json_t *items, const char *expires)
{
    char id[7], user[64];
    char **v = realloc(m->boot, (m->n_boot + 1) * sizeof(char *));
    if (!v)
        return -ENOMEM;
    m->boot = v;
    int rc = corral_pki_bootstrap_token_new(&m->boot[m->n_boot], id);
    if (rc)
        return rc;
    m->n_boot++;
    snprintf(user, sizeof(user), "system:bootstrap:%s", id);
    return token_entry(items, m->boot[m->n_boot - 1], user, "system:bootstrappers", expires, id);
}

static int gen_tokens(struct material *m, const struct corral_init_opts *o)
{
    char expires[21];
    json_t *items = json_array();
    m->tokens = json_pack("{s:s,s:s,s:o}", "apiVersion", "corral.io/v1", "kind", "TokenList",
                          "items", items);
    if (!m->tokens)
        return -ENOMEM;
    int rc = corral_pki_token_new(32, &m->admin_token);
    if (!rc)
        rc = token_entry(items, m->admin_token, "admin", "system:masters", NULL, NULL);
    m->boot_expiry = time(NULL) + o->token_ttl_s;
    corral_meta_format_time(m->boot_expiry, expires);
    for (int i = 0; !rc && i < o->bootstrap_tokens; i++)
        rc = gen_boot_token(m, items, expires);
    return rc;
}

static int gen_boot_file(struct material *m)
{
    char expires[21];
    corral_meta_format_time(m->boot_expiry, expires);
    size_t cap = 128 + m->n_boot * 64, len = 0;
    if (!(m->boot_file = calloc(1, cap)))
        return -ENOMEM;
    len += (size_t)snprintf(m->boot_file, cap, "# corral node bootstrap tokens: TOKEN EXPIRES\n");
    for (size_t i = 0; i < m->n_boot; i++)
        len += (size_t)snprintf(m->boot_file + len, cap - len, "%s %s\n", m->boot[i], expires);
    return 0;
}

static int gen_kubeconfig(struct material *m, const struct corral_init_opts *o,
                          const struct names *n)
{
    char server[INET6_ADDRSTRLEN + 32];
    snprintf(server, sizeof(server), "https://%s:%d", n->server_host, o->port);
    struct corral_kubeconfig cert = {
        .context = "admin@corral",
        .cluster = "corral",
        .user = "admin",
        .server = server,
        .ca_pem = m->ca_cert,
        .cert_pem = m->adm_cert,
        .key_pem = m->adm_key,
    };
    struct corral_kubeconfig tok = {
        .context = "admin-token@corral",
        .cluster = "corral",
        .user = "admin-token",
        .server = server,
        .ca_pem = m->ca_cert,
        .token = m->admin_token,
    };
    const struct corral_kubeconfig *ctxs[] = {&cert, &tok};
    m->kubeconfig = corral_kubeconfig_render(ctxs, 2);
    return m->kubeconfig ? 0 : -ENOMEM;
}

static int generate(struct material *m, const struct corral_init_opts *o, const struct names *n)
{
    int rc;
    memset(m, 0, sizeof(*m));
    if ((rc = gen_certs(m, o, n)) || (rc = gen_tokens(m, o)) || (rc = gen_boot_file(m)) ||
        (rc = gen_kubeconfig(m, o, n)))
        material_clear(m);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Files                                                                                       */

static int mkdir_private(const char *path)
{
    if (mkdir(path, 0700) == 0 || errno == EEXIST)
        return 0;
    int rc = -errno;
    corral_error("init", "cannot create %s: %s", path, strerror(-rc));
    return rc;
}

static void join(char *out, size_t len, const char *dir, const char *rel)
{
    snprintf(out, len, "%s/%s", dir, rel);
}

static int put(const char *dir, const char *rel, const char *data, mode_t mode)
{
    char path[PATH_MAX];
    join(path, sizeof(path), dir, rel);
    int rc = corral_pki_write_file(path, data, strlen(data), mode);
    if (rc)
        corral_error("init", "cannot write %s: %s", path, strerror(-rc));
    return rc;
}

static int write_material(const struct material *m, const char *dir)
{
    char *tokens = json_dumps(m->tokens, JSON_INDENT(2));
    int rc = tokens ? 0 : -ENOMEM;
    if (!rc && !(rc = put(dir, CORRAL_INIT_CA_KEY, m->ca_key, 0600)) &&
        !(rc = put(dir, CORRAL_INIT_CA_CERT, m->ca_cert, 0644)) &&
        !(rc = put(dir, CORRAL_INIT_SERVER_KEY, m->srv_key, 0600)) &&
        !(rc = put(dir, CORRAL_INIT_SERVER_CERT, m->srv_cert, 0644)) &&
        !(rc = put(dir, CORRAL_INIT_ADMIN_KEY, m->adm_key, 0600)) &&
        !(rc = put(dir, CORRAL_INIT_ADMIN_CERT, m->adm_cert, 0644)) &&
        !(rc = put(dir, CORRAL_INIT_KUBELET_CLIENT_KEY, m->kcl_key, 0600)) &&
        !(rc = put(dir, CORRAL_INIT_KUBELET_CLIENT_CERT, m->kcl_cert, 0644)) &&
        !(rc = put(dir, CORRAL_INIT_TOKENS, tokens, 0600)) &&
        !(rc = put(dir, CORRAL_INIT_ADMIN_TOKEN, m->admin_token, 0600)) &&
        !(rc = put(dir, CORRAL_INIT_BOOTSTRAP_TOKENS, m->boot_file, 0600)))
        rc = put(dir, CORRAL_INIT_KUBECONFIG, m->kubeconfig, 0600);
    free(tokens);
    return rc;
}

/* -EEXIST (with the reason logged) when a CA is already there and force is not set. */
static int check_existing_ca(const char *dir, bool force)
{
    const char *files[] = {CORRAL_INIT_CA_CERT, CORRAL_INIT_CA_KEY};
    char path[PATH_MAX];
    for (size_t i = 0; i < 2; i++) {
        join(path, sizeof(path), dir, files[i]);
        if (access(path, F_OK) != 0)
            continue;
        if (force) {
            corral_warn("init",
                        "--force: replacing the cluster CA in %s/pki; every certificate "
                        "and kubeconfig made from the old one stops working",
                        dir);
            return 0;
        }
        corral_error("init",
                     "%s already exists: refusing to replace the cluster CA (use --force "
                     "to replace it and every certificate signed by it)",
                     path);
        return -EEXIST;
    }
    return 0;
}

static void print_summary(const struct corral_init_opts *o, const struct material *m,
                          const struct names *n)
{
    char expires[21];
    corral_meta_format_time(m->boot_expiry, expires);
    printf("corral init: cluster credentials written to %s\n", o->dir);
    printf("  cluster CA           %s/%s\n", o->dir, CORRAL_INIT_CA_CERT);
    printf("  API serving cert     %s/%s for", o->dir, CORRAL_INIT_SERVER_CERT);
    for (size_t i = 0; i < n->n_ips; i++)
        printf(" %s", n->ips[i]);
    for (size_t i = 0; i < n->n_dns; i++)
        printf(" %s", n->dns[i]);
    printf("\n  admin kubeconfig     %s/%s\n", o->dir, CORRAL_INIT_KUBECONFIG);
    printf("  admin token          %s/%s\n", o->dir, CORRAL_INIT_ADMIN_TOKEN);
    printf("  bootstrap tokens     %s/%s (%zu, expiring %s)\n", o->dir,
           CORRAL_INIT_BOOTSTRAP_TOKENS, m->n_boot, expires);
    printf("\nStart the apiserver on port %d, then:\n  kubectl --kubeconfig %s/%s get nodes\n",
           o->port, o->dir, CORRAL_INIT_KUBECONFIG);
}

static int opts_normalize(struct corral_init_opts *o)
{
    if (!o->dir || !o->dir[0]) {
        corral_error("init", "--dir is required");
        return -EINVAL;
    }
    o->port = o->port ? o->port : INIT_DEFAULT_PORT;
    o->token_ttl_s = o->token_ttl_s ? o->token_ttl_s : INIT_DEFAULT_TTL_S;
    o->cert_days = o->cert_days ? o->cert_days : 365;
    o->ca_days = o->ca_days ? o->ca_days : 3650;
    if (o->port < 1 || o->port > 65535 || o->bootstrap_tokens < 0 || o->bootstrap_tokens > 1000 ||
        o->token_ttl_s < 60 || o->cert_days < 1 || o->ca_days < o->cert_days) {
        corral_error("init", "out of range: port 1-65535, 0-1000 bootstrap tokens, token TTL >= "
                             "1m, certificate days >= 1 and not beyond the CA's");
        return -EINVAL;
    }
    return 0;
}

int corral_init_run(const struct corral_init_opts *opts)
{
    struct corral_init_opts o = *opts;
    struct names n;
    struct material m;
    char pki[PATH_MAX];
    int rc = opts_normalize(&o);
    if (rc)
        return rc;
    if ((rc = mkdir_private(o.dir)))
        return rc;
    join(pki, sizeof(pki), o.dir, "pki");
    if ((rc = mkdir_private(pki)) || (rc = check_existing_ca(o.dir, o.force)))
        return rc;
    if ((rc = names_build(&n, o.addresses)))
        return rc;
    if ((rc = generate(&m, &o, &n)))
        goto err_names;
    if ((rc = write_material(&m, o.dir)) == 0 && !o.quiet)
        print_summary(&o, &m, &n);
    material_clear(&m);
err_names:
    names_clear(&n);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Command line                                                                                */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: corral init --dir DIR [options]\n"
            "Creates the cluster CA, the API serving certificate, admin credentials, node\n"
            "bootstrap tokens and an admin kubeconfig in DIR.\n\n"
            "  --dir DIR              where to write (created 0700)\n"
            "  --address ADDR         IP or DNS name the apiserver is reached at; repeatable or\n"
            "                         comma-separated; 0.0.0.0 means every local address.\n"
            "                         127.0.0.1 and localhost are always included\n"
            "  --port N               apiserver port written to the kubeconfig (6443)\n"
            "  --force                replace an existing CA and everything signed by it\n"
            "  --bootstrap-tokens N   node bootstrap tokens to create (1)\n"
            "  --token-ttl DURATION   bootstrap token lifetime, e.g. 30m, 24h, 7d (24h)\n"
            "  --days N               certificate validity (365)\n"
            "  --ca-days N            CA validity (3650)\n"
            "  --key-type ecdsa|rsa   ECDSA P-256 (default) or RSA 2048 keys\n");
}

/* Parses "90", "90s", "30m", "24h", "7d" into seconds; -1 when malformed. */
static long parse_duration(const char *s)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || v < 0)
        return -1;
    long mul = *end == '\0' || strcmp(end, "s") == 0 ? 1
               : strcmp(end, "m") == 0               ? 60
               : strcmp(end, "h") == 0               ? 3600
               : strcmp(end, "d") == 0               ? 86400
                                                     : 0;
    if (mul == 0 || v > LONG_MAX / mul)
        return -1;
    return v * mul;
}

static int parse_int(const char *s, const char *flag, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > INT_MAX) {
        corral_error("init", "%s: \"%s\" is not a non-negative number", flag, s);
        return -EINVAL;
    }
    *out = (int)v;
    return 0;
}

/* Splits comma-separated values into the NULL-terminated list (each a malloc'd copy). */
static int add_addresses(const char *s, char **list, size_t *n)
{
    while (*s) {
        size_t len = strcspn(s, ",");
        if (len > 0) {
            if (*n >= INIT_MAX_NAMES) {
                corral_error("init", "too many --address values");
                return -E2BIG;
            }
            if (!(list[*n] = strndup(s, len)))
                return -ENOMEM;
            list[++*n] = NULL;
        }
        s += len + (s[len] == ',');
    }
    return 0;
}

enum {
    OPT_DIR = 256,
    OPT_ADDRESS,
    OPT_PORT,
    OPT_FORCE,
    OPT_BOOT,
    OPT_TTL,
    OPT_DAYS,
    OPT_CA_DAYS,
    OPT_KEY_TYPE,
    OPT_HELP
};

static const struct option init_options[] = {
    {"dir", required_argument, NULL, OPT_DIR},
    {"address", required_argument, NULL, OPT_ADDRESS},
    {"port", required_argument, NULL, OPT_PORT},
    {"force", no_argument, NULL, OPT_FORCE},
    {"bootstrap-tokens", required_argument, NULL, OPT_BOOT},
    {"token-ttl", required_argument, NULL, OPT_TTL},
    {"days", required_argument, NULL, OPT_DAYS},
    {"ca-days", required_argument, NULL, OPT_CA_DAYS},
    {"key-type", required_argument, NULL, OPT_KEY_TYPE},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* Applies one option. Returns 0, 1 for --help, or -EINVAL. */
static int apply_option(int opt, char *arg, struct corral_init_opts *o, char **addrs,
                        size_t *n_addrs)
{
    switch (opt) {
    case OPT_DIR:
        o->dir = arg;
        return 0;
    case OPT_ADDRESS:
        return add_addresses(arg, addrs, n_addrs);
    case OPT_PORT:
        return parse_int(arg, "--port", &o->port);
    case OPT_FORCE:
        o->force = true;
        return 0;
    case OPT_BOOT:
        return parse_int(arg, "--bootstrap-tokens", &o->bootstrap_tokens);
    case OPT_TTL:
        if ((o->token_ttl_s = parse_duration(arg)) > 0)
            return 0;
        corral_error("init", "--token-ttl: \"%s\" is not a duration like 30m, 24h or 7d", arg);
        return -EINVAL;
    case OPT_DAYS:
        return parse_int(arg, "--days", &o->cert_days);
    case OPT_CA_DAYS:
        return parse_int(arg, "--ca-days", &o->ca_days);
    case OPT_KEY_TYPE:
        if (strcmp(arg, "ecdsa") == 0 || strcmp(arg, "rsa") == 0) {
            o->key_type = arg[0] == 'r' ? CORRAL_PKI_KEY_RSA_2048 : CORRAL_PKI_KEY_ECDSA_P256;
            return 0;
        }
        corral_error("init", "--key-type must be ecdsa or rsa");
        return -EINVAL;
    case OPT_HELP:
        return 1;
    default:
        return -EINVAL;
    }
}

int corral_init_main(int argc, char **argv)
{
    char *addrs[INIT_MAX_NAMES + 1] = {NULL};
    size_t n_addrs = 0;
    struct corral_init_opts o = {.addresses = (const char *const *)addrs, .bootstrap_tokens = 1};
    int opt, rc = 0;
    optind = 0;
    while (rc == 0 && (opt = getopt_long(argc, argv, "", init_options, NULL)) != -1)
        rc = apply_option(opt, optarg, &o, addrs, &n_addrs);
    if (rc == 1) {
        usage(stdout);
        rc = 0;
        goto out;
    }
    if (rc == 0 && optind < argc) {
        corral_error("init", "unexpected argument \"%s\"", argv[optind]);
        rc = -EINVAL;
    }
    if (rc) {
        usage(stderr);
        rc = 2;
        goto out;
    }
    rc = corral_init_run(&o);
    if (rc && rc != -EEXIST && rc != -EINVAL)
        corral_error("init", "failed: %s", corral_strerror(rc));
    rc = rc ? 1 : 0;
out:
    for (size_t i = 0; i < n_addrs; i++)
        free(addrs[i]);
    return rc;
}
