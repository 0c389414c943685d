/* SPDX-License-Identifier: MIT */
/*
 * A small unit test harness: typed checks that print both sides, one executable per module,
 * ending with the plain "N passed, N failed" line that CI reads. Each TEST runs in order; a
 * failing check records the failure and the test goes on.
 */
#ifndef VP_TEST_HARNESS_H
#define VP_TEST_HARNESS_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_passed, t_failed, t_cur_failed;

/* A fresh scratch folder /tmp/vp-NAME-XXXXXX in buf ("" when it cannot be made). */
static inline void t_mkdtemp(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "/tmp/vp-%s-XXXXXX", name);
    if (!mkdtemp(buf))
        buf[0] = 0;
}

/* Removes a scratch folder and everything in it. */
static inline void t_rmtree(const char *path)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (path[0] && system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", path);
}
static const char *t_cur_name;

#define FAIL_AT(...)                                                                               \
    do {                                                                                           \
        fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, t_cur_name);                            \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
        t_cur_failed = 1;                                                                          \
    } while (0)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            FAIL_AT("check failed: %s", #cond);                                                    \
    } while (0)

#define CHECK_INT(a, b)                                                                            \
    do {                                                                                           \
        long long x_ = (long long)(a), y_ = (long long)(b);                                        \
        if (x_ != y_)                                                                              \
            FAIL_AT("%s == %s: %lld != %lld", #a, #b, x_, y_);                                     \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *x_ = (a), *y_ = (b);                                                           \
        if (!x_ || !y_ || strcmp(x_, y_) != 0)                                                     \
            FAIL_AT("%s == %s: \"%s\" != \"%s\"", #a, #b, x_ ? x_ : "(null)", y_ ? y_ : "(null)"); \
    } while (0)

#define CHECK_MEM(a, alen, b, blen)                                                                \
    do {                                                                                           \
        size_t xl_ = (size_t)(alen), yl_ = (size_t)(blen);                                         \
        if (xl_ != yl_ || memcmp((a), (b), xl_) != 0)                                              \
            FAIL_AT("%s == %s: \"%.*s\" != \"%.*s\"", #a, #b, (int)xl_, (const char *)(a),         \
                    (int)yl_, (const char *)(b));                                                  \
    } while (0)

/* Checks a vp_status is VP_OK (prints its name otherwise). */
#define CHECK_OK(expr)                                                                             \
    do {                                                                                           \
        int st_ = (int)(expr);                                                                     \
        if (st_ != 0)                                                                              \
            FAIL_AT("%s returned %s", #expr, vp_status_name((vp_status)st_));                      \
    } while (0)

#define TEST(name) static void name(void)

#define RUN(name)                                                                                  \
    do {                                                                                           \
        t_cur_name = #name;                                                                        \
        t_cur_failed = 0;                                                                          \
        name();                                                                                    \
        if (t_cur_failed) {                                                                        \
            t_failed++;                                                                            \
            fprintf(stderr, "FAIL %s\n", #name);                                                   \
        } else {                                                                                   \
            t_passed++;                                                                            \
        }                                                                                          \
    } while (0)

#define DONE()                                                                                     \
    do {                                                                                           \
        printf("%d passed, %d failed\n", t_passed, t_failed);                                      \
        return t_failed ? 1 : 0;                                                                   \
    } while (0)

#endif
