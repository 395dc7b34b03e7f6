/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pki: keys, certificates, CSRs, verification and tokens on OpenSSL 3 (see pki.h).
 *
 * Internally everything is an EVP_PKEY or X509 built from PEM text on entry and rendered back to
 * PEM on exit. Key PEM text passes through BIO_s_secmem() buffers, and every copy we make is
 * wiped before it is freed. OpenSSL failures are logged by their error code only (never with
 * key material) and returned as CORRAL_EINTERNAL.
 */
#include "pki.h"

#include "error.h"
#include "log.h"
#include "meta.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PKI_BACKDATE_S 300
#define PKI_MAX_FILE (16u << 20)

/* Logs the newest OpenSSL error for what and clears the queue. Returns CORRAL_EINTERNAL. */
static int ssl_fail(const char *what)
{
    unsigned long e = ERR_peek_last_error();
    char text[256];
    ERR_error_string_n(e, text, sizeof(text));
    corral_error("pki", "%s: %s", what, e ? text : "failed");
    ERR_clear_error();
    return CORRAL_EINTERNAL;
}

void corral_pki_free_secret(char *secret)
{
    if (!secret)
        return;
    OPENSSL_cleanse(secret, strlen(secret));
    free(secret);
}

static char *strdup_n(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* ------------------------------------------------------------------------------------------ */
/* PEM in and out                                                                              */

static char *bio_string(BIO *b)
{
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    return n >= 0 ? strdup_n(data, (size_t)n) : NULL;
}

static EVP_PKEY *key_from_pem(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (!k)
        ERR_clear_error();
    return k;
}

static X509 *cert_from_pem(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (!x)
        ERR_clear_error();
    return x;
}

static int key_to_pem(EVP_PKEY *k, char **out)
{
    BIO *b = BIO_new(BIO_s_secmem());
    int rc = 0;
    *out = NULL;
    if (!b)
        return -ENOMEM;
    if (PEM_write_bio_PKCS8PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) != 1)
        rc = ssl_fail("writing a private key");
    else if (!(*out = bio_string(b)))
        rc = -ENOMEM;
    BIO_free(b);
    return rc;
}

static int cert_to_pem(X509 *x, char **out)
{
    BIO *b = BIO_new(BIO_s_mem());
    int rc = 0;
    *out = NULL;
    if (!b)
        return -ENOMEM;
    if (PEM_write_bio_X509(b, x) != 1)
        rc = ssl_fail("writing a certificate");
    else if (!(*out = bio_string(b)))
        rc = -ENOMEM;
    BIO_free(b);
    return rc;
}

static EVP_PKEY *key_generate(enum corral_pki_key_type type)
{
    EVP_PKEY *k = NULL;
    if (type == CORRAL_PKI_KEY_ECDSA_P256)
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    else if (type == CORRAL_PKI_KEY_RSA_2048)
        k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    if (!k)
        ssl_fail("generating a key");
    return k;
}

int corral_pki_key_new(enum corral_pki_key_type type, char **key_pem)
{
    *key_pem = NULL;
    if (type != CORRAL_PKI_KEY_ECDSA_P256 && type != CORRAL_PKI_KEY_RSA_2048)
        return -EINVAL;
    EVP_PKEY *k = key_generate(type);
    if (!k)
        return CORRAL_EINTERNAL;
    int rc = key_to_pem(k, key_pem);
    EVP_PKEY_free(k);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Building certificates                                                                       */

struct build {
    EVP_PKEY *pub;        /* the subject's key */
    X509 *issuer;         /* NULL: self-signed */
    EVP_PKEY *issuer_key; /* signs */
    const char *cn;
    const char *const *orgs;
    const char *const *dns_names;
    const char *const *ip_addrs;
    unsigned usage;
    bool ca;
    int days;
};

static int set_serial(X509 *x)
{
    unsigned char raw[16];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return ssl_fail("random serial");
    raw[0] = (unsigned char)((raw[0] & 0x7f) | 0x01); /* positive, non-zero, 127 bits */
    BIGNUM *bn = BN_bin2bn(raw, sizeof(raw), NULL);
    int ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    return ok ? 0 : ssl_fail("setting the serial");
}

static int name_add(X509_NAME *n, const char *field, const char *value)
{
    if (!value || !value[0])
        return -EINVAL;
    if (!X509_NAME_add_entry_by_txt(n, field, MBSTRING_UTF8, (const unsigned char *)value, -1, -1,
                                    0))
        return ssl_fail("adding a subject entry");
    return 0;
}

/* Fills a subject name: O entries, then CN (the order kubeadm uses). */
static int name_fill(X509_NAME *n, const char *cn, const char *const *orgs)
{
    int rc;
    for (size_t i = 0; orgs && orgs[i]; i++)
        if ((rc = name_add(n, "O", orgs[i])))
            return rc;
    return name_add(n, "CN", cn);
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    X509_EXTENSION *ex = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
    if (!ex)
        return ssl_fail("making an extension");
    int ok = X509_add_ext(x, ex, -1);
    X509_EXTENSION_free(ex);
    return ok ? 0 : ssl_fail("adding an extension");
}

static int san_push(GENERAL_NAMES *gens, int type, ASN1_STRING *value)
{
    GENERAL_NAME *g = GENERAL_NAME_new();
    if (!g) {
        ASN1_STRING_free(value);
        return -ENOMEM;
    }
    GENERAL_NAME_set0_value(g, type, value);
    if (!sk_GENERAL_NAME_push(gens, g)) {
        GENERAL_NAME_free(g);
        return -ENOMEM;
    }
    return 0;
}

static int san_dns(GENERAL_NAMES *gens, const char *name)
{
    const char *bad = strcmp(name, "localhost") == 0 ? NULL : corral_meta_check_dns_subdomain(name);
    if (bad) {
        corral_error("pki", "\"%s\" is not a DNS name for a certificate: %s", name, bad);
        return -EINVAL;
    }
    ASN1_IA5STRING *s = ASN1_IA5STRING_new();
    if (!s || !ASN1_STRING_set(s, name, (int)strlen(name))) {
        ASN1_IA5STRING_free(s);
        return -ENOMEM;
    }
    return san_push(gens, GEN_DNS, s);
}

static int san_ip(GENERAL_NAMES *gens, const char *ip)
{
    ASN1_OCTET_STRING *o = a2i_IPADDRESS(ip);
    if (!o) {
        ERR_clear_error();
        corral_error("pki", "\"%s\" is not an IP address", ip);
        return -EINVAL;
    }
    return san_push(gens, GEN_IPADD, o);
}

static int add_san(X509 *x, const char *const *dns, const char *const *ips)
{
    if ((!dns || !dns[0]) && (!ips || !ips[0]))
        return 0;
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    int rc = gens ? 0 : -ENOMEM;
    for (size_t i = 0; !rc && dns && dns[i]; i++)
        rc = san_dns(gens, dns[i]);
    for (size_t i = 0; !rc && ips && ips[i]; i++)
        rc = san_ip(gens, ips[i]);
    if (!rc && !X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT))
        rc = ssl_fail("adding subjectAltName");
    GENERAL_NAMES_free(gens);
    return rc;
}

static int add_extensions(X509 *x, const struct build *b)
{
    char eku[64] = "";
    int rc;
    if (b->usage & CORRAL_PKI_USAGE_SERVER)
        strcat(eku, "serverAuth");
    if (b->usage & CORRAL_PKI_USAGE_CLIENT)
        strcat(eku, eku[0] ? ",clientAuth" : "clientAuth");
    bool rsa = EVP_PKEY_get_base_id(b->pub) == EVP_PKEY_RSA;
    const char *ku = b->ca ? "critical,keyCertSign,cRLSign,digitalSignature"
                     : rsa ? "critical,digitalSignature,keyEncipherment"
                           : "critical,digitalSignature";
    if ((rc = add_ext(x, b->issuer, NID_basic_constraints,
                      b->ca ? "critical,CA:TRUE" : "critical,CA:FALSE")) ||
        (rc = add_ext(x, b->issuer, NID_key_usage, ku)) ||
        (rc = add_ext(x, b->issuer, NID_subject_key_identifier, "hash")) ||
        (rc = add_ext(x, b->issuer, NID_authority_key_identifier, "keyid:always")))
        return rc;
    if (eku[0] && (rc = add_ext(x, b->issuer, NID_ext_key_usage, eku)))
        return rc;
    return add_san(x, b->dns_names, b->ip_addrs);
}

static int set_validity(X509 *x, int days)
{
    if (!X509_gmtime_adj(X509_getm_notBefore(x), -PKI_BACKDATE_S) ||
        !X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL))
        return ssl_fail("setting validity");
    return 0;
}

/* Builds and signs a certificate as b describes. Returns 0 and *out (X509_free). */
static int cert_build(const struct build *b, X509 **out)
{
    *out = NULL;
    X509 *x = X509_new();
    if (!x)
        return -ENOMEM;
    int rc;
    if (!X509_set_version(x, X509_VERSION_3) || !X509_set_pubkey(x, b->pub)) {
        rc = ssl_fail("starting a certificate");
        goto err_free;
    }
    if ((rc = set_serial(x)) || (rc = name_fill(X509_get_subject_name(x), b->cn, b->orgs)) ||
        (rc = set_validity(x, b->days)))
        goto err_free;
    X509_NAME *issuer = b->issuer ? X509_get_subject_name(b->issuer) : X509_get_subject_name(x);
    if (!X509_set_issuer_name(x, issuer)) {
        rc = ssl_fail("setting the issuer");
        goto err_free;
    }
    if ((rc = add_extensions(x, b)))
        goto err_free;
    if (X509_sign(x, b->issuer_key, EVP_sha256()) <= 0) {
        rc = ssl_fail("signing a certificate");
        goto err_free;
    }
    *out = x;
    return 0;
err_free:
    X509_free(x);
    return rc;
}

static int build_to_pem(const struct build *b, char **cert_pem)
{
    X509 *x;
    int rc = cert_build(b, &x);
    if (rc)
        return rc;
    rc = cert_to_pem(x, cert_pem);
    X509_free(x);
    return rc;
}

int corral_pki_ca_new(const char *cn, int days, enum corral_pki_key_type type, char **cert_pem,
                      char **key_pem)
{
    *cert_pem = *key_pem = NULL;
    if (!cn || !cn[0] || days <= 0)
        return -EINVAL;
    EVP_PKEY *k = key_generate(type);
    if (!k)
        return CORRAL_EINTERNAL;
    struct build b = {.pub = k, .issuer_key = k, .cn = cn, .ca = true, .days = days};
    int rc = build_to_pem(&b, cert_pem);
    if (!rc && (rc = key_to_pem(k, key_pem))) {
        free(*cert_pem);
        *cert_pem = NULL;
    }
    EVP_PKEY_free(k);
    return rc;
}

static int spec_check(const struct corral_pki_cert_spec *spec)
{
    if (!spec->cn || !spec->cn[0] || spec->days <= 0 ||
        !(spec->usage & (CORRAL_PKI_USAGE_SERVER | CORRAL_PKI_USAGE_CLIENT))) {
        corral_error("pki", "a certificate needs a CN, a usage and a validity of at least a day");
        return -EINVAL;
    }
    return 0;
}

/* Loads the CA pair; returns 0 or -EINVAL (with a log line) when either does not parse. */
static int load_ca(const char *cert_pem, const char *key_pem, X509 **ca, EVP_PKEY **key)
{
    *ca = cert_pem ? cert_from_pem(cert_pem) : NULL;
    *key = key_pem ? key_from_pem(key_pem) : NULL;
    if (*ca && *key && X509_check_private_key(*ca, *key) == 1)
        return 0;
    ERR_clear_error();
    corral_error("pki", "the CA certificate or key does not parse, or they do not match");
    X509_free(*ca);
    EVP_PKEY_free(*key);
    *ca = NULL;
    *key = NULL;
    return -EINVAL;
}

int corral_pki_issue(const char *ca_cert_pem, const char *ca_key_pem,
                     const struct corral_pki_cert_spec *spec, const char *key_pem,
                     enum corral_pki_key_type type, char **cert_pem, char **new_key_pem)
{
    X509 *ca;
    EVP_PKEY *ca_key, *k;
    *cert_pem = NULL;
    if (new_key_pem)
        *new_key_pem = NULL;
    if (spec_check(spec) || (!key_pem && !new_key_pem))
        return -EINVAL;
    int rc = load_ca(ca_cert_pem, ca_key_pem, &ca, &ca_key);
    if (rc)
        return rc;
    k = key_pem ? key_from_pem(key_pem) : key_generate(type);
    if (!k) {
        rc = key_pem ? -EINVAL : CORRAL_EINTERNAL;
        goto err_ca;
    }
    struct build b = {.pub = k,
                      .issuer = ca,
                      .issuer_key = ca_key,
                      .cn = spec->cn,
                      .orgs = spec->orgs,
                      .dns_names = spec->dns_names,
                      .ip_addrs = spec->ip_addrs,
                      .usage = spec->usage,
                      .days = spec->days};
    if ((rc = build_to_pem(&b, cert_pem)))
        goto err_key;
    if (!key_pem && (rc = key_to_pem(k, new_key_pem))) {
        free(*cert_pem);
        *cert_pem = NULL;
    }
err_key:
    EVP_PKEY_free(k);
err_ca:
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* CSRs                                                                                        */

int corral_pki_csr_new(const char *key_pem, const char *cn, const char *const *orgs, char **csr_pem)
{
    *csr_pem = NULL;
    EVP_PKEY *k = key_pem ? key_from_pem(key_pem) : NULL;
    if (!k)
        return -EINVAL;
    X509_REQ *req = X509_REQ_new();
    BIO *b = BIO_new(BIO_s_mem());
    int rc = -ENOMEM;
    if (!req || !b)
        goto out;
    if ((rc = name_fill(X509_REQ_get_subject_name(req), cn, orgs)))
        goto out;
    if (!X509_REQ_set_version(req, X509_REQ_VERSION_1) || !X509_REQ_set_pubkey(req, k) ||
        X509_REQ_sign(req, k, EVP_sha256()) <= 0 || PEM_write_bio_X509_REQ(b, req) != 1) {
        rc = ssl_fail("making a certificate request");
        goto out;
    }
    rc = (*csr_pem = bio_string(b)) ? 0 : -ENOMEM;
out:
    BIO_free(b);
    X509_REQ_free(req);
    EVP_PKEY_free(k);
    return rc;
}

static void set_why(char *why, size_t len, const char *text)
{
    if (why && len)
        snprintf(why, len, "%s", text);
}

/* Copies the UTF-8 text of an entry; NULL when it holds a NUL byte or on ENOMEM. */
static char *entry_text(const X509_NAME_ENTRY *e)
{
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
    char *s = NULL;
    if (n >= 0 && memchr(utf8, '\0', (size_t)n) == NULL)
        s = strdup_n((const char *)utf8, (size_t)n);
    OPENSSL_free(utf8);
    return s;
}

/* Checks that a CSR subject is exactly O=system:nodes, CN=system:node:<name>. */
static bool node_subject_ok(X509_NAME *n, const char *node_name)
{
    char want[300];
    int cns = 0, os = 0;
    bool ok = true;
    snprintf(want, sizeof(want), "system:node:%s", node_name);
    for (int i = 0; ok && i < X509_NAME_entry_count(n); i++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(n, i);
        int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
        char *v = entry_text(e);
        if (nid == NID_commonName)
            ok = ++cns == 1 && v && strcmp(v, want) == 0;
        else if (nid == NID_organizationName)
            ok = ++os == 1 && v && strcmp(v, "system:nodes") == 0;
        else
            ok = false;
        free(v);
    }
    return ok && cns == 1 && os == 1;
}

static bool key_strong_enough(EVP_PKEY *k)
{
    char group[64] = "";
    size_t len = 0;
    switch (EVP_PKEY_get_base_id(k)) {
    case EVP_PKEY_RSA:
        return EVP_PKEY_get_bits(k) >= 2048;
    case EVP_PKEY_EC:
        if (!EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                            &len))
            return false;
        return strcmp(group, "prime256v1") == 0 || strcmp(group, "secp384r1") == 0;
    default:
        return false;
    }
}

/* Parses and checks a node CSR; returns its public key (EVP_PKEY_free) or NULL with why. */
static EVP_PKEY *node_csr_key(const char *csr_pem, const char *node_name, char *why, size_t len)
{
    BIO *b = BIO_new_mem_buf(csr_pem, -1);
    X509_REQ *req = b ? PEM_read_bio_X509_REQ(b, NULL, NULL, NULL) : NULL;
    EVP_PKEY *pub = req ? X509_REQ_get_pubkey(req) : NULL;
    BIO_free(b);
    if (!req || !pub)
        set_why(why, len, "the certificate request does not parse");
    else if (X509_REQ_verify(req, pub) != 1)
        set_why(why, len, "the certificate request's signature does not verify");
    else if (!node_subject_ok(X509_REQ_get_subject_name(req), node_name))
        set_why(why, len,
                "the request's subject must be exactly "
                "CN=system:node:<node name>, O=system:nodes");
    else if (!key_strong_enough(pub))
        set_why(why, len, "the request's key must be ECDSA P-256/P-384 or RSA of 2048+ bits");
    else {
        X509_REQ_free(req);
        return pub;
    }
    ERR_clear_error();
    EVP_PKEY_free(pub);
    X509_REQ_free(req);
    return NULL;
}

int corral_pki_sign_node_csr(const char *ca_cert_pem, const char *ca_key_pem, const char *csr_pem,
                             const char *node_name, int days, char **cert_pem, char *why,
                             size_t why_len)
{
    *cert_pem = NULL;
    const char *bad = node_name ? corral_meta_check_dns_subdomain(node_name) : "missing";
    if (bad || days <= 0 || !csr_pem) {
        set_why(why, why_len, bad ? "the node name is not a DNS subdomain" : "bad validity");
        return CORRAL_EINVALID;
    }
    EVP_PKEY *pub = node_csr_key(csr_pem, node_name, why, why_len);
    if (!pub)
        return CORRAL_EINVALID;
    X509 *ca;
    EVP_PKEY *ca_key;
    int rc = load_ca(ca_cert_pem, ca_key_pem, &ca, &ca_key);
    if (rc == 0) {
        char cn[300];
        const char *orgs[] = {"system:nodes", NULL};
        snprintf(cn, sizeof(cn), "system:node:%s", node_name);
        struct build b = {.pub = pub,
                          .issuer = ca,
                          .issuer_key = ca_key,
                          .cn = cn,
                          .orgs = orgs,
                          .usage = CORRAL_PKI_USAGE_CLIENT,
                          .days = days};
        rc = build_to_pem(&b, cert_pem);
        X509_free(ca);
        EVP_PKEY_free(ca_key);
    } else {
        rc = CORRAL_EINTERNAL;
    }
    EVP_PKEY_free(pub);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Reading certificates                                                                        */

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void corral_pki_subject_clear(struct corral_pki_subject *s)
{
    free(s->cn);
    strv_free(s->orgs, s->n_orgs);
    strv_free(s->dns_names, s->n_dns);
    strv_free(s->ip_addrs, s->n_ips);
    memset(s, 0, sizeof(*s));
}

static int strv_push(char ***v, size_t *n, char *s)
{
    if (!s)
        return -EINVAL;
    char **nv = realloc(*v, (*n + 1) * sizeof(char *));
    if (!nv) {
        free(s);
        return -ENOMEM;
    }
    nv[(*n)++] = s;
    *v = nv;
    return 0;
}

static int name_entries(X509_NAME *n, struct corral_pki_subject *out)
{
    int rc = 0;
    for (int i = 0; !rc && i < X509_NAME_entry_count(n); i++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(n, i);
        int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
        if (nid == NID_commonName) {
            free(out->cn);
            rc = (out->cn = entry_text(e)) ? 0 : -EINVAL;
        } else if (nid == NID_organizationName) {
            rc = strv_push(&out->orgs, &out->n_orgs, entry_text(e));
        }
    }
    if (!rc && !out->cn)
        rc = (out->cn = strdup("")) ? 0 : -ENOMEM;
    return rc;
}

static int subject_names(X509 *x, struct corral_pki_subject *out)
{
    return name_entries(X509_get_subject_name(x), out);
}

int corral_pki_csr_subject(const char *csr_pem, struct corral_pki_subject *out)
{
    memset(out, 0, sizeof(*out));
    BIO *b = csr_pem ? BIO_new_mem_buf(csr_pem, -1) : NULL;
    X509_REQ *req = b ? PEM_read_bio_X509_REQ(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (!req) {
        ERR_clear_error();
        return -EINVAL;
    }
    int rc = name_entries(X509_REQ_get_subject_name(req), out);
    X509_REQ_free(req);
    if (rc)
        corral_pki_subject_clear(out);
    return rc;
}

static char *ip_text(const ASN1_OCTET_STRING *o)
{
    char buf[INET6_ADDRSTRLEN];
    int len = ASN1_STRING_length(o);
    const unsigned char *d = ASN1_STRING_get0_data(o);
    if ((len != 4 && len != 16) || !inet_ntop(len == 4 ? AF_INET : AF_INET6, d, buf, sizeof(buf)))
        return NULL;
    return strdup(buf);
}

static int subject_sans(X509 *x, struct corral_pki_subject *out)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int rc = 0;
    for (int i = 0; !rc && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type == GEN_DNS) {
            const ASN1_STRING *s = g->d.dNSName;
            rc = strv_push(
                &out->dns_names, &out->n_dns,
                strdup_n((const char *)ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s)));
        } else if (g->type == GEN_IPADD) {
            rc = strv_push(&out->ip_addrs, &out->n_ips, ip_text(g->d.iPAddress));
        }
    }
    GENERAL_NAMES_free(gens);
    return rc;
}

static time_t asn1_time(const ASN1_TIME *t)
{
    struct tm tm;
    if (!t || !ASN1_TIME_to_tm(t, &tm))
        return 0;
    return timegm(&tm);
}

static int subject_fill(X509 *x, struct corral_pki_subject *out)
{
    memset(out, 0, sizeof(*out));
    int rc = subject_names(x, out);
    if (!rc)
        rc = subject_sans(x, out);
    if (rc) {
        corral_pki_subject_clear(out);
        return rc;
    }
    out->not_before = asn1_time(X509_get0_notBefore(x));
    out->not_after = asn1_time(X509_get0_notAfter(x));
    uint32_t xku = X509_get_extended_key_usage(x);
    if (xku & XKU_SSL_SERVER)
        out->usage |= CORRAL_PKI_USAGE_SERVER;
    if (xku & XKU_SSL_CLIENT)
        out->usage |= CORRAL_PKI_USAGE_CLIENT;
    out->is_ca = X509_check_ca(x) > 0;
    return 0;
}

int corral_pki_cert_subject(const char *cert_pem, struct corral_pki_subject *out)
{
    memset(out, 0, sizeof(*out));
    X509 *x = cert_pem ? cert_from_pem(cert_pem) : NULL;
    if (!x)
        return -EINVAL;
    int rc = subject_fill(x, out);
    X509_free(x);
    return rc;
}

bool corral_pki_key_matches(const char *cert_pem, const char *key_pem)
{
    X509 *x = cert_pem ? cert_from_pem(cert_pem) : NULL;
    EVP_PKEY *k = key_pem ? key_from_pem(key_pem) : NULL;
    bool ok = x && k && X509_check_private_key(x, k) == 1;
    ERR_clear_error();
    X509_free(x);
    EVP_PKEY_free(k);
    return ok;
}

/* ------------------------------------------------------------------------------------------ */
/* Verification                                                                                */

struct corral_pki_verifier {
    X509_STORE *store;
};

int corral_pki_verifier_new(const char *ca_pem, struct corral_pki_verifier **out)
{
    *out = NULL;
    struct corral_pki_verifier *v = calloc(1, sizeof(*v));
    BIO *b = ca_pem ? BIO_new_mem_buf(ca_pem, -1) : NULL;
    int n = 0, rc = -ENOMEM;
    if (!v || !b || !(v->store = X509_STORE_new()))
        goto err;
    X509 *x;
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
        int ok = X509_STORE_add_cert(v->store, x);
        X509_free(x);
        if (!ok)
            goto err;
        n++;
    }
    ERR_clear_error();
    rc = -EINVAL;
    if (n == 0)
        goto err;
    BIO_free(b);
    *out = v;
    return 0;
err:
    ERR_clear_error();
    BIO_free(b);
    corral_pki_verifier_free(v);
    return rc;
}

void corral_pki_verifier_free(struct corral_pki_verifier *v)
{
    if (!v)
        return;
    X509_STORE_free(v->store);
    free(v);
}

static int verify_x509(struct corral_pki_verifier *v, X509 *x, time_t now, unsigned usage,
                       struct corral_pki_subject *out, char *why, size_t why_len)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int rc = -ENOMEM;
    if (!ctx || !X509_STORE_CTX_init(ctx, v->store, x, NULL))
        goto out;
    X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), now ? now : time(NULL));
    if (usage == CORRAL_PKI_USAGE_CLIENT)
        X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
    else if (usage == CORRAL_PKI_USAGE_SERVER)
        X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
    rc = CORRAL_EUNAUTHORIZED;
    if (X509_verify_cert(ctx) != 1) {
        set_why(why, why_len, X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
        goto out;
    }
    if (X509_check_ca(x) > 0) {
        set_why(why, why_len, "a CA certificate cannot identify a user");
        goto out;
    }
    rc = out ? subject_fill(x, out) : 0;
out:
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    return rc;
}

int corral_pki_verify_pem(struct corral_pki_verifier *v, const char *cert_pem, time_t now,
                          unsigned usage, struct corral_pki_subject *out, char *why, size_t why_len)
{
    X509 *x = cert_pem ? cert_from_pem(cert_pem) : NULL;
    if (!x) {
        set_why(why, why_len, "the certificate does not parse");
        return -EINVAL;
    }
    int rc = verify_x509(v, x, now, usage, out, why, why_len);
    X509_free(x);
    return rc;
}

int corral_pki_verify_der(struct corral_pki_verifier *v, const unsigned char *der, size_t len,
                          time_t now, unsigned usage, struct corral_pki_subject *out, char *why,
                          size_t why_len)
{
    const unsigned char *p = der;
    X509 *x = len <= LONG_MAX ? d2i_X509(NULL, &p, (long)len) : NULL;
    if (!x || p != der + len) {
        ERR_clear_error();
        X509_free(x);
        set_why(why, why_len, "the certificate does not parse");
        return -EINVAL;
    }
    int rc = verify_x509(v, x, now, usage, out, why, why_len);
    X509_free(x);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Tokens                                                                                      */

/* Fills out[0..len) with random [a-z0-9] characters, without modulo bias. */
static int random_alnum(char *out, size_t len)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char raw[64];
    size_t have = 0;
    while (have < len) {
        if (RAND_bytes(raw, sizeof(raw)) != 1)
            return ssl_fail("random bytes");
        for (size_t i = 0; i < sizeof(raw) && have < len; i++)
            if (raw[i] < 252) /* 252 = 7 * 36 */
                out[have++] = alphabet[raw[i] % 36];
    }
    OPENSSL_cleanse(raw, sizeof(raw));
    return 0;
}

int corral_pki_token_new(size_t len, char **out)
{
    *out = NULL;
    if (len == 0 || len > 4096)
        return -EINVAL;
    char *t = calloc(1, len + 1);
    if (!t)
        return -ENOMEM;
    int rc = random_alnum(t, len);
    if (rc) {
        corral_pki_free_secret(t);
        return rc;
    }
    *out = t;
    return 0;
}

int corral_pki_bootstrap_token_new(char **out, char id[7])
{
    char *t = calloc(1, 6 + 1 + 16 + 1);
    *out = NULL;
    if (!t)
        return -ENOMEM;
    int rc = random_alnum(t, 6);
    t[6] = '.';
    if (!rc)
        rc = random_alnum(t + 7, 16);
    if (rc) {
        corral_pki_free_secret(t);
        return rc;
    }
    memcpy(id, t, 6);
    id[6] = '\0';
    *out = t;
    return 0;
}

void corral_pki_sha256_hex(const void *data, size_t len, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32) {
        ssl_fail("sha256"); /* never expected; leave an impossible digest */
        memset(md, 0, sizeof(md));
        n = 32;
    }
    for (unsigned i = 0; i < n; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

bool corral_pki_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    return alen == blen && CRYPTO_memcmp(a, b, alen) == 0;
}

char *corral_pki_base64_encode(const void *data, size_t len)
{
    if (len > INT_MAX / 2)
        return NULL;
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (!out)
        return NULL;
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

int corral_pki_base64_decode(const char *text, char **out, size_t *out_len)
{
    size_t n = strlen(text), m = 0, pad = 0;
    char *clean = malloc(n + 1), *dec = NULL;
    *out = NULL;
    if (!clean)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (!strchr(" \t\r\n", text[i]))
            clean[m++] = text[i];
    clean[m] = '\0';
    int rc = -EINVAL;
    if (m % 4 != 0 || m > INT_MAX)
        goto out;
    pad = (m && clean[m - 1] == '=') + (m > 1 && clean[m - 2] == '=');
    if (!(dec = malloc(m / 4 * 3 + 1))) {
        rc = -ENOMEM;
        goto out;
    }
    int got = m ? EVP_DecodeBlock((unsigned char *)dec, (unsigned char *)clean, (int)m) : 0;
    if (got < 0 || (size_t)got < pad)
        goto out;
    dec[got - pad] = '\0';
    *out_len = (size_t)got - pad;
    *out = dec;
    dec = NULL;
    rc = 0;
out:
    if (dec)
        free(dec);
    OPENSSL_cleanse(clean, m);
    free(clean);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Files                                                                                       */

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void sync_dir_of(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof(dir), ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int corral_pki_write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    int fd = mkstemp(tmp); /* created 0600 */
    if (fd < 0)
        return -errno;
    int rc = fchmod(fd, mode) ? -errno : 0;
    if (!rc)
        rc = write_all(fd, data, len);
    if (!rc && fsync(fd))
        rc = -errno;
    if (close(fd) && !rc)
        rc = -errno;
    if (!rc && rename(tmp, path))
        rc = -errno;
    if (rc) {
        unlink(tmp);
        return rc;
    }
    sync_dir_of(path);
    return 0;
}

int corral_pki_read_file(const char *path, char **out, size_t *len)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    int rc = fstat(fd, &st) ? -errno : 0;
    if (!rc && st.st_size > (off_t)PKI_MAX_FILE)
        rc = -EFBIG;
    char *buf = rc ? NULL : malloc((size_t)st.st_size + 1);
    size_t got = 0;
    if (!rc && !buf)
        rc = -ENOMEM;
    while (!rc && got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            rc = n < 0 ? -errno : -EIO;
        else
            got += (size_t)n;
    }
    close(fd);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[got] = '\0';
    *out = buf;
    if (len)
        *len = got;
    return 0;
}
