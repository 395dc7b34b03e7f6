/* SPDX-License-Identifier: Apache-2.0 */
/*
 * meta: see meta.h. Validation messages follow the wording of k8s.io/apimachinery so that
 * users see familiar text.
 */
#include "meta.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

json_t *corral_meta_path(const json_t *obj, const char *dotted)
{
    const json_t *cur = obj;
    char part[256];
    for (const char *p = dotted; cur && p && *p;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n >= sizeof(part))
            return NULL;
        memcpy(part, p, n);
        part[n] = 0;
        cur = json_object_get(cur, part);
        p = dot ? dot + 1 : NULL;
    }
    return (json_t *)cur;
}

json_t *corral_meta_get(json_t *obj, bool create)
{
    json_t *m = json_object_get(obj, "metadata");
    if (!json_is_object(m) && create && json_is_object(obj)) {
        m = json_object();
        json_object_set_new(obj, "metadata", m);
    }
    return json_is_object(m) ? m : NULL;
}

static const char *meta_string(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), key));
}

const char *corral_meta_name(const json_t *obj)
{
    return meta_string(obj, "name");
}

const char *corral_meta_namespace(const json_t *obj)
{
    return meta_string(obj, "namespace");
}

const char *corral_meta_kind(const json_t *obj)
{
    return json_string_value(json_object_get(obj, "kind"));
}

const char *corral_meta_api_version(const json_t *obj)
{
    return json_string_value(json_object_get(obj, "apiVersion"));
}

json_t *corral_meta_labels(const json_t *obj)
{
    json_t *l = json_object_get(json_object_get(obj, "metadata"), "labels");
    return json_is_object(l) ? l : NULL;
}

json_t *corral_meta_annotations(const json_t *obj)
{
    json_t *a = json_object_get(json_object_get(obj, "metadata"), "annotations");
    return json_is_object(a) ? a : NULL;
}

void corral_meta_new_uid(char out[37])
{
    unsigned char b[16];
    size_t got = 0;
    while (got < sizeof(b)) {
        ssize_t n = getrandom(b + got, sizeof(b) - got, 0);
        if (n > 0)
            got += (size_t)n;
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
             b[13], b[14], b[15]);
}

void corral_meta_format_time(time_t t, char out[21])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void corral_meta_format_microtime(const struct timespec *ts, char out[28])
{
    struct tm tm;
    gmtime_r(&ts->tv_sec, &tm);
    char base[32];
    size_t n = strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(base + n, sizeof(base) - n, ".%06dZ", (int)(ts->tv_nsec / 1000) % 1000000);
    memcpy(out, base, 27);
    out[27] = 0;
}

int corral_meta_parse_time(const char *s, struct timespec *out)
{
    struct tm tm = {0};
    if (!s)
        return -EINVAL;
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return -EINVAL;
    long nsec = 0;
    if (*p == '.') {
        long scale = 100000000;
        for (p++; isdigit((unsigned char)*p); p++, scale /= 10)
            nsec += (*p - '0') * scale;
    }
    time_t t = timegm(&tm);
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int hh, mm;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2)
            return -EINVAL;
        t -= (*p == '+' ? 1 : -1) * (hh * 3600 + mm * 60);
        p += 6;
    } else {
        return -EINVAL;
    }
    if (*p)
        return -EINVAL;
    out->tv_sec = t;
    out->tv_nsec = nsec;
    return 0;
}

void corral_meta_format_age(int64_t s, char *out, size_t len)
{
    if (s < 0)
        s = 0;
    if (s < 120)
        snprintf(out, len, "%llds", (long long)s);
    else if (s < 600)
        snprintf(out, len, "%lldm%llds", (long long)(s / 60), (long long)(s % 60));
    else if (s < 3 * 3600)
        snprintf(out, len, "%lldm", (long long)(s / 60));
    else if (s < 8 * 3600)
        snprintf(out, len, "%lldh%lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
    else if (s < 48 * 3600)
        snprintf(out, len, "%lldh", (long long)(s / 3600));
    else if (s < 8 * 86400)
        snprintf(out, len, "%lldd%lldh", (long long)(s / 86400), (long long)(s % 86400 / 3600));
    else
        snprintf(out, len, "%lldd", (long long)(s / 86400));
}

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

const char *corral_meta_check_dns_label(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0)
        return "must be non-empty";
    if (n > 63)
        return "must be no more than 63 characters";
    for (size_t i = 0; i < n; i++)
        if (!is_lower_alnum(s[i]) && !(s[i] == '-' && i > 0 && i + 1 < n))
            return "a lowercase RFC 1123 label must consist of lower case alphanumeric "
                   "characters or '-', and must start and end with an alphanumeric character";
    return NULL;
}

const char *corral_meta_check_dns_subdomain(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0)
        return "must be non-empty";
    if (n > 253)
        return "must be no more than 253 characters";
    for (size_t i = 0; i < n; i++) {
        bool edge = i == 0 || i + 1 == n || s[i - 1] == '.' || s[i + 1] == '.';
        if (is_lower_alnum(s[i]) || ((s[i] == '-' || s[i] == '.') && !edge))
            continue;
        return "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
               "characters, '-' or '.', and must start and end with an alphanumeric character";
    }
    return NULL;
}

static bool is_alnum(char c)
{
    return isalnum((unsigned char)c) != 0;
}

static const char *check_qualified_name(const char *s, size_t n)
{
    if (n == 0)
        return "name part must be non-empty";
    if (n > 63)
        return "name part must be no more than 63 characters";
    for (size_t i = 0; i < n; i++) {
        bool inner = i > 0 && i + 1 < n;
        if (!is_alnum(s[i]) && !(inner && strchr("-_.", s[i])))
            return "name part must consist of alphanumeric characters, '-', '_' or '.', and "
                   "must start and end with an alphanumeric character";
    }
    return NULL;
}

const char *corral_meta_check_label_key(const char *s)
{
    if (!s || !*s)
        return "name part must be non-empty";
    const char *slash = strchr(s, '/');
    if (!slash)
        return check_qualified_name(s, strlen(s));
    char prefix[256];
    size_t pn = (size_t)(slash - s);
    if (pn == 0 || pn >= sizeof(prefix))
        return "prefix part must be a DNS subdomain of at most 253 characters";
    memcpy(prefix, s, pn);
    prefix[pn] = 0;
    if (corral_meta_check_dns_subdomain(prefix))
        return "prefix part a lowercase RFC 1123 subdomain must consist of lower case "
               "alphanumeric characters, '-' or '.'";
    return check_qualified_name(slash + 1, strlen(slash + 1));
}

const char *corral_meta_check_label_value(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0)
        return NULL;
    if (n > 63)
        return "must be no more than 63 characters";
    for (size_t i = 0; i < n; i++) {
        bool inner = i > 0 && i + 1 < n;
        if (!is_alnum(s[i]) && !(inner && strchr("-_.", s[i])))
            return "a valid label must be an empty string or consist of alphanumeric "
                   "characters, '-', '_' or '.', and must start and end with an alphanumeric "
                   "character";
    }
    return NULL;
}

uint64_t corral_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
