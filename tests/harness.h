/* SPDX-License-Identifier: Apache-2.0 */
/*
 * harness: corral's tiny test harness (in the spirit of libuv's test/task.h).
 *
 * A test file defines `static void test_x(void)` functions and lists them once:
 *
 *     CORRAL_TESTS(
 *         CORRAL_TEST(quantity_parse),
 *         CORRAL_TEST(quantity_format))
 *
 * which expands to main(). `./test_quantity NAME` runs one test. A failed CHECK prints the file,
 * line, expression and (for the typed forms) both values, then aborts, so meson records the
 * failure and sanitizers still get to report.
 */
#ifndef CORRAL_TEST_HARNESS_H
#define CORRAL_TEST_HARNESS_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(expr)                                                                                \
    do {                                                                                           \
        if (!(expr)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #expr);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define CHECK_INT_EQ(a, b)                                                                         \
    do {                                                                                           \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                      \
        if (va_ != vb_) {                                                                          \
            fprintf(stderr, "%s:%d: CHECK_INT_EQ(%s, %s) failed: %lld != %lld\n", __FILE__,        \
                    __LINE__, #a, #b, va_, vb_);                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define CHECK_STR_EQ(a, b)                                                                         \
    do {                                                                                           \
        const char *sa_ = (a), *sb_ = (b);                                                         \
        if (!sa_ || !sb_ || strcmp(sa_, sb_) != 0) {                                               \
            fprintf(stderr, "%s:%d: CHECK_STR_EQ(%s, %s) failed: \"%s\" != \"%s\"\n", __FILE__,    \
                    __LINE__, #a, #b, sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)");                 \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define CHECK_STR_CONTAINS(hay, needle)                                                            \
    do {                                                                                           \
        const char *h_ = (hay), *n_ = (needle);                                                    \
        if (!h_ || !strstr(h_, n_)) {                                                              \
            fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__,         \
                    h_ ? h_ : "(null)", n_);                                                       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

struct corral_test {
    const char *name;
    void (*fn)(void);
};

#define CORRAL_TEST(name) {#name, test_##name}

#define CORRAL_TESTS(...)                                                                          \
    static const struct corral_test corral_tests_[] = {__VA_ARGS__};                               \
    int main(int argc, char **argv)                                                                \
    {                                                                                              \
        int ran = 0;                                                                               \
        for (size_t i = 0; i < sizeof(corral_tests_) / sizeof(corral_tests_[0]); i++) {            \
            if (argc > 1 && strcmp(argv[1], corral_tests_[i].name) != 0)                           \
                continue;                                                                          \
            fprintf(stderr, "-- %s\n", corral_tests_[i].name);                                     \
            corral_tests_[i].fn();                                                                 \
            fprintf(stderr, "ok %s\n", corral_tests_[i].name);                                     \
            ran++;                                                                                 \
        }                                                                                          \
        if (ran == 0) {                                                                            \
            fprintf(stderr, "no test named %s\n", argc > 1 ? argv[1] : "(none)");                  \
            return 1;                                                                              \
        }                                                                                          \
        return 0;                                                                                  \
    }

#endif
