/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pki: corral's certificates, keys and tokens (OpenSSL 3, EVP APIs only).
 *
 * Everything crosses this interface as PEM text, so callers never touch OpenSSL types:
 * `corral init` creates the cluster CA and the certificates signed by it, the apiserver signs
 * the CSRs of joining nodes and verifies client certificates, and kubelet-lite makes its key
 * and CSR. Keys are written as unencrypted PKCS#8 ("BEGIN PRIVATE KEY"), which OpenSSL, GnuTLS
 * (libmicrohttpd) and Go (kubectl) all read. Default keys are ECDSA P-256.
 *
 * Certificates follow what kubectl (Go crypto/x509) demands: server certificates carry their
 * names as subjectAltNames (a CN-only certificate is refused) and the serverAuth extended key
 * usage; client certificates carry clientAuth, the user in the subject CN and the groups in O.
 * Serial numbers are random 127-bit numbers; notBefore is backdated 5 minutes for clock skew.
 *
 * Secrets: PEM keys and tokens returned here are malloc'd; free them with
 * corral_pki_free_secret(), which wipes them first. Nothing here logs a key or a token.
 * All functions are thread-safe.
 */
#ifndef CORRAL_PKI_H
#define CORRAL_PKI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

enum corral_pki_key_type {
    CORRAL_PKI_KEY_ECDSA_P256 = 0,
    CORRAL_PKI_KEY_RSA_2048,
};

enum corral_pki_usage {
    CORRAL_PKI_USAGE_SERVER = 1u << 0, /* extendedKeyUsage serverAuth */
    CORRAL_PKI_USAGE_CLIENT = 1u << 1, /* extendedKeyUsage clientAuth */
};

/* What a new certificate says. Lists are NULL-terminated arrays (NULL = empty). */
struct corral_pki_cert_spec {
    const char *cn;               /* subject CN (the user, for client certificates) */
    const char *const *orgs;      /* subject O entries (the groups) */
    const char *const *dns_names; /* subjectAltName DNS entries */
    const char *const *ip_addrs;  /* subjectAltName IP entries ("127.0.0.1", "::1") */
    unsigned usage;               /* CORRAL_PKI_USAGE_* bits; at least one */
    int days;                     /* validity from now (> 0) */
};

/* Wipes and frees a secret (key PEM, token). NULL is fine. */
void corral_pki_free_secret(char *secret);

/* Generates a private key. Returns 0 and *key_pem (PKCS#8 PEM; free with
 * corral_pki_free_secret), -EINVAL for an unknown type, -ENOMEM, or CORRAL_EINTERNAL. */
int corral_pki_key_new(enum corral_pki_key_type type, char **key_pem);

/*
 * Creates a self-signed CA (CN = cn, basicConstraints CA:TRUE, keyCertSign) valid for days.
 * Returns 0 with *cert_pem (caller frees) and *key_pem (free with corral_pki_free_secret), or
 * -EINVAL / -ENOMEM / CORRAL_EINTERNAL.
 */
int corral_pki_ca_new(const char *cn, int days, enum corral_pki_key_type type, char **cert_pem,
                      char **key_pem);

/*
 * Issues a certificate signed by the CA for spec. When key_pem is NULL a new key of type is
 * generated and returned in *new_key_pem (free with corral_pki_free_secret); otherwise the
 * certificate is for key_pem's public key and new_key_pem may be NULL. Returns 0 and
 * *cert_pem (caller frees), -EINVAL when spec is malformed (no CN, bad IP text, DNS name that
 * is not a valid name, no usage, days <= 0) or a PEM does not parse, -ENOMEM, CORRAL_EINTERNAL.
 */
int corral_pki_issue(const char *ca_cert_pem, const char *ca_key_pem,
                     const struct corral_pki_cert_spec *spec, const char *key_pem,
                     enum corral_pki_key_type type, char **cert_pem, char **new_key_pem);

/*
 * Creates a PKCS#10 certificate request for key_pem with subject CN = cn and O = orgs
 * (NULL-terminated, may be NULL). Returns 0 and *csr_pem (caller frees), -EINVAL, -ENOMEM.
 */
int corral_pki_csr_new(const char *key_pem, const char *cn, const char *const *orgs,
                       char **csr_pem);

/*
 * Signs a joining node's CSR: checks the request's self-signature, that its subject is exactly
 * CN=system:node:<node_name>, O=system:nodes, that node_name is a DNS-1123 subdomain and that
 * the key is ECDSA P-256/P-384 or RSA >= 2048 bits; then issues a clientAuth certificate for
 * days with that subject (extensions in the CSR are ignored). Returns 0 and *cert_pem (caller
 * frees); CORRAL_EINVALID with a reason in why (may be NULL) when the request is refused;
 * -ENOMEM; CORRAL_EINTERNAL.
 */
int corral_pki_sign_node_csr(const char *ca_cert_pem, const char *ca_key_pem, const char *csr_pem,
                             const char *node_name, int days, char **cert_pem, char *why,
                             size_t why_len);

/* The identity in a certificate. */
struct corral_pki_subject {
    char *cn;    /* subject CN (malloc'd; "" when absent) */
    char **orgs; /* subject O entries (malloc'd array of malloc'd strings) */
    size_t n_orgs;
    char **dns_names; /* subjectAltName DNS entries */
    size_t n_dns;
    char **ip_addrs; /* subjectAltName IP entries as text */
    size_t n_ips;
    time_t not_before, not_after;
    unsigned usage; /* CORRAL_PKI_USAGE_* present in extendedKeyUsage */
    bool is_ca;
};

void corral_pki_subject_clear(struct corral_pki_subject *s);

/* Reads the first certificate in cert_pem. Returns 0 and fills *out (clear it), -EINVAL. */
int corral_pki_cert_subject(const char *cert_pem, struct corral_pki_subject *out);

/*
 * Reads a certificate request's subject (cn and orgs only; the signature is not checked here,
 * corral_pki_sign_node_csr() does that). Returns 0 and fills *out (clear it), -EINVAL.
 */
int corral_pki_csr_subject(const char *csr_pem, struct corral_pki_subject *out);

/*
 * Verifies certificates against a set of trusted CAs, reusable and thread-safe (the apiserver
 * keeps one for client certificates).
 */
struct corral_pki_verifier;

/* Trusts every certificate in ca_pem. Returns 0 and *out, -EINVAL (no certificate), -ENOMEM. */
int corral_pki_verifier_new(const char *ca_pem, struct corral_pki_verifier **out);
void corral_pki_verifier_free(struct corral_pki_verifier *v);

/*
 * Verifies a certificate (PEM or DER) against the trusted CAs at time now (0 = the current
 * time) for usage (one CORRAL_PKI_USAGE_* bit, or 0 for any). Returns 0 and fills *out when not
 * NULL (clear it), or CORRAL_EUNAUTHORIZED with the reason in why ("certificate has expired",
 * "unable to get local issuer certificate", ...), or -EINVAL when it does not parse.
 */
int corral_pki_verify_pem(struct corral_pki_verifier *v, const char *cert_pem, time_t now,
                          unsigned usage, struct corral_pki_subject *out, char *why,
                          size_t why_len);
int corral_pki_verify_der(struct corral_pki_verifier *v, const unsigned char *der, size_t len,
                          time_t now, unsigned usage, struct corral_pki_subject *out, char *why,
                          size_t why_len);

/* true when key_pem is the private key of cert_pem's public key. */
bool corral_pki_key_matches(const char *cert_pem, const char *key_pem);

/* ------------------------------------------------------------------------------------------ */
/* Tokens                                                                                      */

/*
 * A random token of len characters from [a-z0-9] (CSPRNG). Returns 0 and *out (free with
 * corral_pki_free_secret), -EINVAL (len 0), -ENOMEM, CORRAL_EINTERNAL (no entropy).
 */
int corral_pki_token_new(size_t len, char **out);

/*
 * A bootstrap token in the kubeadm format "<id>.<secret>" ([a-z0-9]{6} "." [a-z0-9]{16}).
 * Returns 0 and *out (free with corral_pki_free_secret) and copies the id into id[7].
 */
int corral_pki_bootstrap_token_new(char **out, char id[7]);

/* SHA-256 of data[0..len) as 64 lowercase hex digits + NUL. */
void corral_pki_sha256_hex(const void *data, size_t len, char out[65]);

/* Constant-time comparison of two equal-length byte strings (false when lengths differ). */
bool corral_pki_equal(const void *a, size_t alen, const void *b, size_t blen);

/* Standard base64 of data (no line breaks). Returns a malloc'd string or NULL (ENOMEM). */
char *corral_pki_base64_encode(const void *data, size_t len);

/*
 * Decodes standard base64 (whitespace ignored). Returns 0 and *out (malloc'd, NUL-terminated;
 * *out_len without the NUL), -EINVAL when text is not base64, -ENOMEM.
 */
int corral_pki_base64_decode(const char *text, char **out, size_t *out_len);

/* ------------------------------------------------------------------------------------------ */
/* Files                                                                                       */

/*
 * Writes data to path atomically (a temporary file in the same directory, fsync, rename) with
 * permissions mode (0600 for keys and tokens; the mode is set before any byte is written).
 * Returns 0 or -errno.
 */
int corral_pki_write_file(const char *path, const void *data, size_t len, mode_t mode);

/*
 * Reads a whole file (at most 16 MiB). Returns 0 and *out (malloc'd, NUL-terminated; free with
 * corral_pki_free_secret if it is a secret), or -errno (-EFBIG when too large).
 */
int corral_pki_read_file(const char *path, char **out, size_t *len);

#endif
