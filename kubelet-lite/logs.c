/* SPDX-License-Identifier: Apache-2.0 */
/*
 * logs: CRI-format container logs with rotation (see logs.h).
 *
 * Every entry is written with one write(2) on an O_APPEND descriptor, so a concurrent reader
 * sees whole entries or a not-yet-finished last line, which it leaves for the next read
 * (readers only consume lines that end in '\n'). tailLines counts entries, as the kubelet's
 * reader does; it needs to know how many there are before it can skip, so it makes two passes
 * over the files instead of buffering them.
 */
#include "logs.h"

#include "meta.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_ENTRY 16384 /* longer lines are split into P entries */

void corral_log_timestamp(char out[31])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(out, 31, "%Y-%m-%dT%H:%M:%S", &tm);
    size_t n = strlen(out);
    snprintf(out + n, 31 - n, ".%09ldZ", ts.tv_nsec % 1000000000L);
}

/* ---- writer ---------------------------------------------------------------------------- */

int corral_log_open(struct corral_log_writer *w, const char *path, int64_t max_bytes, int max_files)
{
    memset(w, 0, sizeof(*w));
    if (max_bytes < 4096 || max_files < 1)
        return -EINVAL;
    int n = snprintf(w->path, sizeof(w->path), "%s", path);
    if (n < 0 || (size_t)n >= sizeof(w->path) - 8)
        return -ENAMETOOLONG;
    w->max_bytes = max_bytes;
    w->max_files = max_files;
    w->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (w->fd < 0)
        return -errno;
    struct stat st;
    w->size = fstat(w->fd, &st) == 0 ? st.st_size : 0;
    return 0;
}

static void rotated_name(const char *path, int k, char *out, size_t len)
{
    if (k == 0)
        snprintf(out, len, "%s", path);
    else
        snprintf(out, len, "%s.%d", path, k);
}

static int rotate(struct corral_log_writer *w)
{
    char from[1040], to[1040];
    rotated_name(w->path, w->max_files - 1, to, sizeof(to));
    if (w->max_files > 1)
        unlink(to); /* the oldest goes */
    for (int k = w->max_files - 2; k >= 0; k--) {
        rotated_name(w->path, k, from, sizeof(from));
        rotated_name(w->path, k + 1, to, sizeof(to));
        if (rename(from, to) < 0 && errno != ENOENT)
            return -errno;
    }
    close(w->fd);
    int flags = O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | (w->max_files == 1 ? O_TRUNC : 0);
    w->fd = open(w->path, flags, 0640);
    w->size = 0;
    return w->fd < 0 ? -errno : 0;
}

static int write_entry(struct corral_log_writer *w, const char *ts, const char *stream, char tag,
                       const char *text, size_t len)
{
    char head[64];
    int hn = snprintf(head, sizeof(head), "%s %s %c ", ts, stream, tag);
    struct iovec iov[3] = {{head, (size_t)hn}, {(void *)text, len}, {"\n", 1}};
    int64_t total = hn + (int64_t)len + 1;
    if (w->size > 0 && w->size + total > w->max_bytes) {
        int rc = rotate(w);
        if (rc < 0)
            return rc;
    }
    ssize_t n = writev(w->fd, iov, 3);
    if (n < 0)
        return -errno;
    w->size += n;
    return 0;
}

int corral_log_write(struct corral_log_writer *w, enum corral_log_stream stream, const char *buf,
                     size_t len)
{
    if (w->fd < 0)
        return -EBADF;
    char ts[31];
    corral_log_timestamp(ts);
    const char *name = stream == CORRAL_LOG_STDERR ? "stderr" : "stdout";
    while (len > 0) {
        const char *nl = memchr(buf, '\n', len);
        size_t n = nl ? (size_t)(nl - buf) : len;
        char tag = nl ? 'F' : 'P';
        if (n > MAX_ENTRY) {
            n = MAX_ENTRY;
            tag = 'P';
        }
        int rc = write_entry(w, ts, name, tag, buf, n);
        if (rc < 0)
            return rc;
        size_t used = n + (tag == 'F');
        buf += used;
        len -= used;
    }
    return 0;
}

void corral_log_close(struct corral_log_writer *w)
{
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
}

/* ---- reader ---------------------------------------------------------------------------- */

struct reader {
    const struct corral_log_query *q;
    corral_log_sink sink;
    void *ctx;
    bool counting;      /* first pass of tailLines: only count */
    int64_t lines;      /* complete lines seen (F entries) */
    int64_t skip_lines; /* lines to leave out (tailLines) */
    int64_t *emitted;
};

struct entry {
    int64_t ts_ns;
    const char *ts;
    size_t ts_len;
    char tag;
    const char *text;
    size_t len;
};

/* Splits "TS STREAM TAG TEXT" (line without its '\n'). Returns 0 or -EINVAL. */
static int parse_entry(char *line, size_t len, struct entry *e)
{
    char *sp1 = memchr(line, ' ', len);
    char *sp2 = sp1 ? memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - line)) : NULL;
    if (!sp1 || !sp2 || (size_t)(sp2 + 3 - line) > len || sp2[2] != ' ')
        return -EINVAL;
    *sp1 = '\0';
    struct timespec ts;
    if (corral_meta_parse_time(line, &ts) < 0)
        return -EINVAL;
    e->ts_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    e->ts = line;
    e->ts_len = (size_t)(sp1 - line);
    e->tag = sp2[1];
    e->text = sp2 + 3;
    e->len = len - (size_t)(sp2 + 3 - line);
    return 0;
}

static int emit(struct reader *r, const char *data, size_t len)
{
    int64_t limit = r->q->limit_bytes;
    if (len == 0)
        return 0;
    if (limit >= 0 && *r->emitted + (int64_t)len > limit)
        len = (size_t)(limit - *r->emitted);
    int rc = len ? r->sink(r->ctx, data, len) : 0;
    *r->emitted += (int64_t)len;
    if (rc)
        return rc;
    return limit >= 0 && *r->emitted >= limit ? 1 : 0;
}

static int handle_entry(struct reader *r, const struct entry *e)
{
    if (r->q->since_ns > 0 && e->ts_ns < r->q->since_ns)
        return 0;
    bool full = e->tag == 'F';
    bool skipped = r->lines < r->skip_lines;
    r->lines++; /* tailLines counts entries, as the kubelet does */
    if (r->counting || skipped)
        return 0;
    int rc = 0;
    if (r->q->timestamps) {
        rc = emit(r, e->ts, e->ts_len);
        if (!rc)
            rc = emit(r, " ", 1);
    }
    if (!rc)
        rc = emit(r, e->text, e->len);
    if (!rc && full)
        rc = emit(r, "\n", 1);
    return rc;
}

/* Reads the complete lines of f from *offset on; advances *offset past them. */
static int read_stream(struct reader *r, FILE *f, off_t *offset)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    if (fseeko(f, *offset, SEEK_SET) < 0)
        return -errno;
    while (rc == 0 && (n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] != '\n')
            break; /* the writer is mid-entry: leave it for next time */
        *offset += n;
        struct entry e;
        if (parse_entry(line, (size_t)n - 1, &e) == 0)
            rc = handle_entry(r, &e);
    }
    free(line);
    return rc;
}

static int read_file_from(struct reader *r, const char *path, off_t offset,
                          struct corral_log_cursor *cur)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    int rc = read_stream(r, f, &offset);
    if (cur) {
        struct stat st;
        if (fstat(fileno(f), &st) == 0) {
            cur->dev = st.st_dev;
            cur->ino = st.st_ino;
        }
        cur->offset = offset;
    }
    fclose(f);
    return rc;
}

static int pass(struct reader *r, const char *path, int max_files, struct corral_log_cursor *cur)
{
    char name[1040];
    bool any = false;
    for (int k = max_files - 1; k >= 0; k--) {
        rotated_name(path, k, name, sizeof(name));
        int rc = read_file_from(r, name, 0, k == 0 ? cur : NULL);
        if (rc == -ENOENT)
            continue;
        if (rc < 0 || rc > 0)
            return rc;
        any = true;
    }
    return any ? 0 : -ENOENT;
}

int corral_log_read(const char *path, int max_files, const struct corral_log_query *q,
                    corral_log_sink sink, void *ctx, struct corral_log_cursor *cur)
{
    struct corral_log_cursor local = {0};
    if (!cur)
        cur = &local;
    memset(cur, 0, sizeof(*cur));
    struct reader r = {.q = q, .sink = sink, .ctx = ctx, .emitted = &cur->emitted};
    if (q->tail_lines >= 0) {
        r.counting = true;
        int rc = pass(&r, path, max_files, NULL);
        if (rc != 0)
            return rc;
        r.skip_lines = r.lines > q->tail_lines ? r.lines - q->tail_lines : 0;
        r.lines = 0;
        r.counting = false;
    }
    if (q->limit_bytes == 0)
        return 1;
    return pass(&r, path, max_files, cur);
}

/* Finds which of path, path.1, ... is the file cur was reading. Returns k or -1. */
static int find_rotated(const char *path, int max_files, const struct corral_log_cursor *cur)
{
    char name[1040];
    for (int k = 0; k < max_files; k++) {
        struct stat st;
        rotated_name(path, k, name, sizeof(name));
        if (stat(name, &st) == 0 && st.st_ino == cur->ino && st.st_dev == cur->dev)
            return k;
    }
    return -1;
}

int corral_log_follow(const char *path, const struct corral_log_query *q, corral_log_sink sink,
                      void *ctx, struct corral_log_cursor *cur)
{
    struct corral_log_query follow = *q;
    follow.tail_lines = -1;
    struct reader r = {.q = &follow, .sink = sink, .ctx = ctx, .emitted = &cur->emitted};
    if (follow.limit_bytes >= 0 && cur->emitted >= follow.limit_bytes)
        return 1;
    int k = cur->ino ? find_rotated(path, 64, cur) : -1;
    char name[1040];
    if (k < 0) { /* never opened, or rotated out of sight: start on the live file */
        cur->offset = 0;
        k = 0;
    }
    for (; k >= 0; k--) {
        rotated_name(path, k, name, sizeof(name));
        int rc = read_file_from(&r, name, cur->offset, cur);
        if (rc == -ENOENT)
            return 0;
        if (rc != 0)
            return rc;
        if (k > 0)
            cur->offset = 0; /* go on with the next newer file from its start */
    }
    return 0;
}
