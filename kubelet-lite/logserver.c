/* SPDX-License-Identifier: Apache-2.0 */
/*
 * logserver: the HTTPS log endpoint (see logserver.h).
 *
 * libmicrohttpd runs a thread per connection. A log request gets a writer thread that pushes
 * the selected log text (then, when following, what gets appended) into a pipe; the response's
 * content callback reads that pipe. A client that goes away closes the read end, the writer's
 * next write fails with EPIPE and it stops. The agent ignores SIGPIPE.
 */
#include "logserver.h"

#include "error.h"
#include "log.h"
#include "logs.h"
#include "meta.h"
#include "pki.h"
#include "status.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SUBSYS "logserver"
#define FOLLOW_POLL_MS 100

struct corral_logserver {
    struct MHD_Daemon *mhd;
    struct corral_runtime *rt;
    struct corral_pki_verifier *verifier; /* NULL: loopback peers only */
    char *cert, *key, *trust;
    int port;
    atomic_bool stopping;
};

struct stream {
    struct corral_logserver *ls;
    struct corral_log_target target;
    struct corral_log_query q;
    bool follow;
    char ns[254], pod[254], container[254];
    int fd[2];
    pthread_t thread;
};

/* ---- replies ------------------------------------------------------------------------------ */

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned code, const char *type,
                             const char *body)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result rc = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result reply_status(struct MHD_Connection *conn, int err, const char *message)
{
    json_t *st = corral_status_from_error(err, message);
    char *text = st ? json_dumps(st, JSON_COMPACT) : NULL;
    int code = corral_status_code(st);
    enum MHD_Result rc = reply(conn, (unsigned)code, "application/json", text ? text : "{}");
    free(text);
    json_decref(st);
    return rc;
}

/* ---- authentication ------------------------------------------------------------------------ */

static bool peer_is_loopback(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr || ci->client_addr->sa_family != AF_INET)
        return false;
    const struct sockaddr_in *in = (const struct sockaddr_in *)ci->client_addr;
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
}

/* 0 when the peer may read logs; else a reason in why. */
static int authenticate(struct corral_logserver *ls, struct MHD_Connection *conn, char *why,
                        size_t len)
{
    if (!ls->verifier) {
        if (peer_is_loopback(conn))
            return 0;
        snprintf(why, len, "this node knows no cluster CA and serves loopback peers only");
        return CORRAL_EFORBIDDEN;
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    unsigned n = 0;
    const gnutls_datum_t *peers =
        ci && ci->tls_session ? gnutls_certificate_get_peers(ci->tls_session, &n) : NULL;
    if (!peers || n == 0) {
        snprintf(why, len, "a client certificate issued by the cluster CA is required");
        return CORRAL_EUNAUTHORIZED;
    }
    struct corral_pki_subject s;
    int rc = corral_pki_verify_der(ls->verifier, peers[0].data, peers[0].size, 0,
                                   CORRAL_PKI_USAGE_CLIENT, &s, why, len);
    if (rc < 0)
        return CORRAL_EUNAUTHORIZED;
    bool master = false;
    for (size_t i = 0; i < s.n_orgs; i++)
        master |= strcmp(s.orgs[i], "system:masters") == 0;
    if (!master)
        snprintf(why, len, "user \"%s\" may not read container logs on this node", s.cn);
    corral_pki_subject_clear(&s);
    return master ? 0 : CORRAL_EFORBIDDEN;
}

/* ---- query parameters --------------------------------------------------------------------------
 */

static bool flag(struct MHD_Connection *conn, const char *key)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, key);
    return v && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

static int number(struct MHD_Connection *conn, const char *key, int64_t *out)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, key);
    if (!v)
        return 0;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || end == v || *end || n < 0)
        return -EINVAL;
    *out = n;
    return 1;
}

static int parse_query(struct MHD_Connection *conn, struct corral_log_query *q, char *why,
                       size_t len)
{
    int64_t v;
    memset(q, 0, sizeof(*q));
    q->tail_lines = -1;
    q->limit_bytes = -1;
    q->timestamps = flag(conn, "timestamps");
    int rc = number(conn, "tailLines", &v);
    if (rc > 0)
        q->tail_lines = v;
    if (rc >= 0 && (rc = number(conn, "limitBytes", &v)) > 0)
        q->limit_bytes = v;
    if (rc >= 0 && (rc = number(conn, "sinceSeconds", &v)) > 0) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        q->since_ns = ((int64_t)now.tv_sec - v) * 1000000000 + now.tv_nsec;
    }
    if (rc < 0) {
        snprintf(why, len, "tailLines, limitBytes and sinceSeconds must be non-negative integers");
        return -EINVAL;
    }
    const char *since = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "sinceTime");
    struct timespec ts;
    if (since && corral_meta_parse_time(since, &ts) < 0) {
        snprintf(why, len, "sinceTime \"%s\" is not an RFC 3339 time", since);
        return -EINVAL;
    }
    if (since)
        q->since_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    return 0;
}

/* ---- streaming ----------------------------------------------------------------------------- */

static int to_pipe(void *ctx, const char *data, size_t len)
{
    struct stream *s = ctx;
    while (len > 0) {
        ssize_t w = write(s->fd[1], data, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -EPIPE; /* the reader is gone */
        data += w;
        len -= (size_t)w;
    }
    return 0;
}

static void *writer_main(void *arg)
{
    struct stream *s = arg;
    struct corral_log_cursor cur;
    int rc = corral_log_read(s->target.path, s->target.max_files, &s->q, to_pipe, s, &cur);
    if (rc == -ENOENT)
        rc = 0; /* nothing logged yet */
    while (rc == 0 && s->follow && !atomic_load(&s->ls->stopping)) {
        bool alive =
            corral_runtime_log_running(s->ls->rt, s->ns, s->pod, s->container, s->target.restart);
        rc = corral_log_follow(s->target.path, &s->q, to_pipe, s, &cur);
        if (!alive)
            break; /* that was the last of it */
        struct pollfd p = {s->fd[1], POLLERR, 0};
        if (poll(&p, 1, FOLLOW_POLL_MS) > 0)
            break; /* the reader closed its end */
    }
    close(s->fd[1]);
    return NULL;
}

static ssize_t read_stream(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct stream *s = cls;
    (void)pos;
    for (;;) {
        ssize_t n = read(s->fd[0], buf, max);
        if (n > 0)
            return n;
        if (n == 0)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (errno != EINTR)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
}

static void free_stream(void *cls)
{
    struct stream *s = cls;
    close(s->fd[0]); /* the writer's next write fails and it ends */
    pthread_join(s->thread, NULL);
    free(s);
}

static enum MHD_Result serve_logs(struct corral_logserver *ls, struct MHD_Connection *conn,
                                  const char *ns, const char *pod, const char *container)
{
    char why[512] = "";
    struct stream *s = calloc(1, sizeof(*s));
    if (!s)
        return reply_status(conn, -ENOMEM, NULL);
    s->ls = ls;
    s->follow = flag(conn, "follow");
    snprintf(s->ns, sizeof(s->ns), "%s", ns);
    snprintf(s->pod, sizeof(s->pod), "%s", pod);
    snprintf(s->container, sizeof(s->container), "%s", container);
    int rc = parse_query(conn, &s->q, why, sizeof(why));
    if (rc == 0)
        rc = corral_runtime_log_target(ls->rt, ns, pod, container, flag(conn, "previous"),
                                       &s->target, why, sizeof(why));
    if (rc < 0) {
        free(s);
        return reply_status(conn, rc == -ENOENT ? CORRAL_ENOTFOUND : CORRAL_EBADREQUEST, why);
    }
    if (pipe2(s->fd, O_CLOEXEC) < 0 || pthread_create(&s->thread, NULL, writer_main, s) != 0) {
        free(s);
        return reply_status(conn, -EAGAIN, "cannot start streaming the log");
    }
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, read_stream, s, free_stream);
    if (!r) {
        free_stream(s);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "text/plain");
    enum MHD_Result ok = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ok;
}

/* Splits /containerLogs/NS/POD/CONTAINER. Returns 0 or -EINVAL. */
static int split_path(const char *url, char *ns, char *pod, char *container, size_t len)
{
    const char *p = url + strlen("/containerLogs/");
    const char *a = strchr(p, '/'), *b = a ? strchr(a + 1, '/') : NULL;
    if (!a || !b || a == p || b == a + 1 || !b[1] || strchr(b + 1, '/'))
        return -EINVAL;
    snprintf(ns, len, "%.*s", (int)(a - p), p);
    snprintf(pod, len, "%.*s", (int)(b - a - 1), a + 1);
    snprintf(container, len, "%s", b + 1);
    return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    struct corral_logserver *ls = cls;
    static int marker;
    (void)version;
    (void)upload;
    if (!*con_cls) {
        *con_cls = &marker; /* headers only so far */
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0; /* bodies are ignored */
        return MHD_YES;
    }
    if (strcmp(url, "/healthz") == 0)
        return reply(conn, MHD_HTTP_OK, "text/plain", "ok");
    if (strcmp(method, "GET") != 0)
        return reply_status(conn, CORRAL_EMETHOD, "only GET is served here");
    char why[512] = "";
    int rc = authenticate(ls, conn, why, sizeof(why));
    if (rc < 0)
        return reply_status(conn, rc, why);
    char ns[254], pod[254], container[254];
    if (strncmp(url, "/containerLogs/", 15) != 0 ||
        split_path(url, ns, pod, container, sizeof(ns)) < 0)
        return reply_status(conn, CORRAL_ENOTFOUND,
                            "not found: this endpoint serves /containerLogs/NS/POD/CONTAINER");
    return serve_logs(ls, conn, ns, pod, container);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    (void)cls;
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    corral_debug(SUBSYS, "%s", line);
}

int corral_logserver_start(const struct corral_logserver_config *cfg, struct corral_logserver **out)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->port)};
    if (inet_pton(AF_INET, cfg->address, &addr.sin_addr) != 1) {
        corral_error(SUBSYS, "--address %s: expected an IPv4 address", cfg->address);
        return -EINVAL;
    }
    struct corral_logserver *ls = calloc(1, sizeof(*ls));
    if (!ls)
        return -ENOMEM;
    ls->rt = cfg->runtime;
    ls->cert = strdup(cfg->cert_pem);
    ls->key = strdup(cfg->key_pem);
    ls->trust = cfg->client_ca_pem ? strdup(cfg->client_ca_pem) : NULL;
    int rc = -ENOMEM;
    if (!ls->cert || !ls->key || (cfg->client_ca_pem && !ls->trust))
        goto err_free;
    if (ls->trust && (rc = corral_pki_verifier_new(ls->trust, &ls->verifier)) < 0) {
        corral_error(SUBSYS, "the cluster CA in the kubeconfig does not parse");
        goto err_free;
    }
    ls->mhd = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_TLS |
            MHD_USE_ERROR_LOG,
        0, NULL, NULL, on_request, ls, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_HTTPS_MEM_CERT, ls->cert, MHD_OPTION_HTTPS_MEM_KEY, ls->key,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)3600,
        ls->trust ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END, ls->trust, MHD_OPTION_END);
    if (!ls->mhd) {
        rc = -EADDRINUSE;
        corral_error(SUBSYS, "cannot serve HTTPS on %s:%d: %s", cfg->address, cfg->port,
                     strerror(errno));
        goto err_verifier;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(ls->mhd, MHD_DAEMON_INFO_BIND_PORT);
    ls->port = info ? info->port : cfg->port;
    *out = ls;
    return 0;

err_verifier:
    corral_pki_verifier_free(ls->verifier);
err_free:
    free(ls->cert);
    corral_pki_free_secret(ls->key);
    free(ls->trust);
    free(ls);
    return rc;
}

int corral_logserver_port(const struct corral_logserver *ls)
{
    return ls->port;
}

void corral_logserver_stop(struct corral_logserver *ls)
{
    if (!ls)
        return;
    atomic_store(&ls->stopping, true);
    MHD_stop_daemon(ls->mhd);
    corral_pki_verifier_free(ls->verifier);
    free(ls->cert);
    corral_pki_free_secret(ls->key);
    free(ls->trust);
    free(ls);
}
