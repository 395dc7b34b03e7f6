/* SPDX-License-Identifier: Apache-2.0 */
/*
 * logs: container log files, written the way the kubelet's CRI runtimes write them and read
 * back the way `kubectl logs` asks for them.
 *
 * A file holds one entry per line: "2024-05-01T12:00:00.123456789Z stdout F text" (RFC 3339
 * nanosecond time, stream, F for a full line or P for a piece of a line whose end has not
 * arrived yet, then the text). When a write would push the file past max_bytes it is rotated
 * (path -> path.1 -> path.2 ...), keeping max_files files in all. Readers see the rotated
 * files oldest first, then the live one.
 *
 * The writer is used by one thread (the runtime loop); readers (the log server) open the files
 * independently and may run concurrently with it.
 */
#ifndef CORRAL_KUBELET_LOGS_H
#define CORRAL_KUBELET_LOGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum corral_log_stream { CORRAL_LOG_STDOUT = 0, CORRAL_LOG_STDERR = 1 };

struct corral_log_writer {
    int fd;
    char path[1024];
    int64_t size;
    int64_t max_bytes;
    int max_files;
};

/*
 * Opens (appending to) path. max_bytes >= 4096, max_files >= 1. Returns 0 or -errno. The
 * directory must exist.
 */
int corral_log_open(struct corral_log_writer *w, const char *path, int64_t max_bytes,
                    int max_files);

/*
 * Records len bytes the container wrote to stream, split into entries: each complete line an
 * F entry, a trailing piece without newline a P entry. Rotates as needed. Returns 0 or -errno.
 */
int corral_log_write(struct corral_log_writer *w, enum corral_log_stream stream, const char *buf,
                     size_t len);

void corral_log_close(struct corral_log_writer *w);

/* What `kubectl logs` can ask for (pods/NAME/log query parameters). */
struct corral_log_query {
    bool timestamps;     /* prefix each entry with its RFC 3339 time */
    int64_t tail_lines;  /* only the last N lines; -1: all */
    int64_t since_ns;    /* only entries at or after this CLOCK_REALTIME time (ns); 0: all */
    int64_t limit_bytes; /* stop after this many bytes of output; -1: no limit */
};

/* Receives output; returns 0 to go on or non-zero to stop (that value is returned). */
typedef int (*corral_log_sink)(void *ctx, const char *data, size_t len);

/* Where a reader stopped, so that following can go on from there. */
struct corral_log_cursor {
    dev_t dev;
    ino_t ino;       /* the file being read (it may be rotated away meanwhile) */
    off_t offset;    /* bytes of it already consumed */
    int64_t emitted; /* output bytes so far (for limit_bytes) */
};

/*
 * Writes the entries of path (and its rotated files) that q selects to sink, and leaves in
 * *cur where the live file ended. Returns 0, 1 when limit_bytes was reached, the sink's
 * non-zero value, -ENOENT when there is no log at all, or -errno.
 */
int corral_log_read(const char *path, int max_files, const struct corral_log_query *q,
                    corral_log_sink sink, void *ctx, struct corral_log_cursor *cur);

/*
 * Follow step: writes whatever was appended since *cur (crossing a rotation if one happened)
 * and advances *cur; cur->emitted grows by what was written. Returns 0 (go on following), 1
 * when limit_bytes has been reached, the sink's non-zero value, or -errno.
 */
int corral_log_follow(const char *path, const struct corral_log_query *q, corral_log_sink sink,
                      void *ctx, struct corral_log_cursor *cur);

/* Formats now (CLOCK_REALTIME) as RFC 3339 with nanoseconds into out (31 bytes). */
void corral_log_timestamp(char out[31]);

#endif
