/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log: see log.h. The level is a relaxed atomic so that hot paths can test it cheaply.
 */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = CORRAL_LOG_INFO;

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

void corral_log_set_level(enum corral_log_level level)
{
    atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
}

enum corral_log_level corral_log_get_level(void)
{
    return (enum corral_log_level)atomic_load_explicit(&log_level, memory_order_relaxed);
}

void corral_log_init_from_env(void)
{
    const char *v = getenv("CORRAL_LOG");
    if (!v)
        return;
    for (int i = 0; i < 4; i++)
        if (strcasecmp(v, level_names[i]) == 0)
            corral_log_set_level((enum corral_log_level)i);
}

void corral_log(enum corral_log_level level, const char *subsys, const char *fmt, ...)
{
    if ((int)level > atomic_load_explicit(&log_level, memory_order_relaxed))
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, level_names[level], subsys);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
