/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log: levelled logging to stderr, one line per message, prefixed with a UTC timestamp, the
 * level and the subsystem. The level comes from corral_log_set_level() or CORRAL_LOG
 * (error|warn|info|debug). Thread-safe: each line is written with a single write(2).
 * Secrets (keys, tokens) are never passed to these functions.
 */
#ifndef CORRAL_LOG_H
#define CORRAL_LOG_H

enum corral_log_level {
    CORRAL_LOG_ERROR = 0,
    CORRAL_LOG_WARN = 1,
    CORRAL_LOG_INFO = 2,
    CORRAL_LOG_DEBUG = 3,
};

void corral_log_set_level(enum corral_log_level level);
/* Reads CORRAL_LOG from the environment; unknown values are ignored. */
void corral_log_init_from_env(void);
enum corral_log_level corral_log_get_level(void);

void corral_log(enum corral_log_level level, const char *subsys, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define corral_error(subsys, ...) corral_log(CORRAL_LOG_ERROR, subsys, __VA_ARGS__)
#define corral_warn(subsys, ...) corral_log(CORRAL_LOG_WARN, subsys, __VA_ARGS__)
#define corral_info(subsys, ...) corral_log(CORRAL_LOG_INFO, subsys, __VA_ARGS__)
#define corral_debug(subsys, ...)                                                                  \
    do {                                                                                           \
        if (corral_log_get_level() >= CORRAL_LOG_DEBUG)                                            \
            corral_log(CORRAL_LOG_DEBUG, subsys, __VA_ARGS__);                                     \
    } while (0)

#endif
