/*
 * What the C tests (test_fasts3.c, test_async.c) share: the check helpers, and the byte
 * pattern of the objects tests/c/run_c_tests.py seeds for them.
 *
 * Every check prints one line, "ok   <what>" or "FAIL <what>   [file.c:line]", and is
 * counted; a test's main() ends by printing "N passed, M failed" (g_passed, g_failed), the
 * line the runner reads.
 */
#ifndef FASTS3_TESTS_CHECK_H
#define FASTS3_TESTS_CHECK_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ---- checks ------------------------------------------------------------------------------ */

static int g_passed, g_failed;

static inline bool check_impl(bool ok, const char *file, int line, const char *fmt, ...) {
    va_list ap;
    printf("%s ", ok ? "ok  " : "FAIL");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    if (!ok) {
        const char *slash = strrchr(file, '/');
        printf("   [%s:%d]", slash ? slash + 1 : file, line);
    }
    printf("\n");
    fflush(stdout);
    if (ok) g_passed++; else g_failed++;
    return ok;
}

/* CHECK(condition, printf-style description): counts and prints the check, returns `condition`. */
#define CHECK(cond, ...) check_impl((cond), __FILE__, __LINE__, __VA_ARGS__)

/* A (ptr, len) argument pair from a C string. */
#define SL(s) (const uint8_t *)(s), strlen(s)

/* ---- the seeded objects (see seed() in run_c_tests.py; keep both in sync) ---------------- */

#define SMALL_SIZE 100u                           /* "small": SMALL_SIZE bytes of pattern(i) */
#define MULTI_SIZE (3u * 1024u * 1024u + 12345u)  /* "multi": MULTI_SIZE bytes of pattern(i) */

static inline uint8_t pattern(uint64_t i) { return (uint8_t)((i * 31u + 7u) & 0xffu); }

/* Index of the first byte of buf[0..len) that is not pattern(start + i), or -1. */
static inline long long pattern_mismatch(const uint8_t *buf, size_t len, uint64_t start) {
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != pattern(start + i)) return (long long)i;
    }
    return -1;
}

#endif
