/*
 * C-level test of libfasts3's ABI (include/fasts3.h), run under ASan/UBSan/LSan by
 * tests/c/run_c_tests.py.
 *
 * Usage:
 *   test_fasts3 ENDPOINT ACCESS_KEY_ID SECRET_ACCESS_KEY REGION BUCKET
 * or with no arguments, from the environment:
 *   FASTS3_TEST_ENDPOINT, FASTS3_TEST_ACCESS_KEY_ID, FASTS3_TEST_SECRET_ACCESS_KEY,
 *   FASTS3_TEST_REGION, FASTS3_TEST_BUCKET
 * Optional environment:
 *   FASTS3_TEST_SMALL_ETAG            the ETag the server gave "small" on upload (quotes included)
 *   FASTS3_TEST_VERIFIES_SIGNATURES=1 the server checks SigV4: also test a wrong secret
 *
 * The bucket must be seeded beforehand (see seed() in run_c_tests.py; keep both in sync):
 *   small          SMALL_SIZE bytes of pattern(i), Content-Type text/plain
 *   multi          MULTI_SIZE bytes of pattern(i)  (about 12 parts of PART_SIZE)
 *   empty          0 bytes
 *   list/kNN       NN = 00..19, NN bytes each      (20 keys)
 *   list/sub1/a, list/sub1/b, list/sub2/a, list/sub2/b, list/sub3/a   (1 byte each)
 *
 * Prints one line per check ("ok"/"FAIL"), then "N passed, M failed"; exits 1 on failure.
 *
 * Build with -DFASTS3_TEST_INJECT_LEAK to deliberately skip one fasts3_object_page_free:
 * the runner uses that to prove LeakSanitizer catches a leaked libfasts3 object.
 */
#define _POSIX_C_SOURCE 200809L

#include "fasts3.h"
#include "check.h"

#include <inttypes.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- the seeded objects ---------------------------------------------------------------- */

/* SMALL_SIZE, MULTI_SIZE and pattern(): check.h. */
#define PART_SIZE 262144u
#define LIST_FLAT_KEYS 20u
#define LIST_NESTED_KEYS 5u
#define LIST_PREFIXES 3u

/* ---- reporting (CHECK: check.h) -------------------------------------------------------- */

static void section(const char *name) { printf("# %s\n", name); fflush(stdout); }

static const char *status_name(fasts3_status s) {
    switch (s) {
    case FASTS3_OK: return "OK";
    case FASTS3_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case FASTS3_NULL_POINTER: return "NULL_POINTER";
    case FASTS3_OUT_OF_MEMORY: return "OUT_OF_MEMORY";
    case FASTS3_INVALID_HANDLE: return "INVALID_HANDLE";
    case FASTS3_NO_SUCH_KEY: return "NO_SUCH_KEY";
    case FASTS3_NO_SUCH_BUCKET: return "NO_SUCH_BUCKET";
    case FASTS3_ACCESS_DENIED: return "ACCESS_DENIED";
    case FASTS3_INVALID_RANGE: return "INVALID_RANGE";
    case FASTS3_OBJECT_CHANGED: return "OBJECT_CHANGED";
    case FASTS3_PRECONDITION_FAILED: return "PRECONDITION_FAILED";
    case FASTS3_CHECKSUM_MISMATCH: return "CHECKSUM_MISMATCH";
    case FASTS3_CHECKSUM_UNAVAILABLE: return "CHECKSUM_UNAVAILABLE";
    case FASTS3_THROTTLED: return "THROTTLED";
    case FASTS3_NETWORK: return "NETWORK";
    case FASTS3_TIMEOUT: return "TIMEOUT";
    case FASTS3_CANCELLED: return "CANCELLED";
    case FASTS3_PANIC: return "PANIC";
    case FASTS3_CONFIG: return "CONFIG";
    case FASTS3_PROTOCOL: return "PROTOCOL";
    case FASTS3_TLS: return "TLS";
    case FASTS3_S3_ERROR: return "S3_ERROR";
    }
    return "(unknown status)";
}

/* This thread's last error, copied out: the pointers libfasts3 returns are only valid until
 * the next libfasts3 call from this thread, and fetching the code is such a call. */
typedef struct {
    char message[2048];
    char code[128];
    uint16_t http_status;
} last_error;

static void copy_cstr(char *dst, size_t cap, const char *src) {
    if (src == NULL) { snprintf(dst, cap, "<NULL>"); return; }
    snprintf(dst, cap, "%s", src);
}

static last_error get_last_error(void) {
    last_error e;
    copy_cstr(e.message, sizeof e.message, fasts3_last_error_message());
    copy_cstr(e.code, sizeof e.code, fasts3_last_error_code());
    e.http_status = fasts3_last_error_http_status();
    return e;
}

/* Check that `got` is `want`; on a failed call also check that a message was recorded. */
static bool check_status_impl(fasts3_status got, fasts3_status want, int line, const char *what) {
    if (got == FASTS3_OK || got != want) {
        last_error e = get_last_error();
        if (got != want) {
            return check_impl(false, __FILE__, line, "%s -> %s (want %s; last error: \"%s\" code=\"%s\" http=%u)",
                              what, status_name(got), status_name(want), e.message, e.code,
                              (unsigned)e.http_status);
        }
        return check_impl(true, __FILE__, line, "%s -> OK", what);
    }
    last_error e = get_last_error();
    return check_impl(e.message[0] != '\0', __FILE__, line, "%s -> %s, message \"%s\"", what, status_name(got),
                      e.message);
}

#define CHECK_STATUS(call, want, what) check_status_impl((call), (want), __LINE__, (what))

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (p == NULL) { fprintf(stderr, "out of memory\n"); exit(2); }
    return p;
}

/* ---- the environment ------------------------------------------------------------------- */

typedef struct {
    const char *endpoint, *access_key_id, *secret_access_key, *region, *bucket;
    const char *small_etag;     /* may be NULL */
    bool verifies_signatures;
} settings;

static settings g;

static const char *require_env(const char *name) {
    const char *v = getenv(name);
    if (v == NULL || *v == '\0') {
        fprintf(stderr, "test_fasts3: %s is not set (or pass 5 arguments)\n", name);
        exit(2);
    }
    return v;
}

static fasts3_config *make_config(const char *secret) {
    fasts3_config *config = NULL;
    if (fasts3_config_new(&config, NULL) != FASTS3_OK || config == NULL) return NULL;
    const char *options[][2] = {
        {"endpoint_url", g.endpoint}, {"region", g.region}, {"access_key_id", g.access_key_id},
        {"secret_access_key", secret}, {"part_size", "262144"}, {"max_concurrency", "8"},
    };
    for (size_t i = 0; i < sizeof options / sizeof options[0]; i++) {
        if (fasts3_config_set(config, options[i][0], options[i][1], NULL) != FASTS3_OK) {
            fprintf(stderr, "config_set(%s): %s\n", options[i][0], fasts3_last_error_message());
            fasts3_config_free(config);
            return NULL;
        }
    }
    return config;
}

/* ---- checks of a page's layout ----------------------------------------------------------- */

/* The packed-strings layout documented for fasts3_strings. */
static bool strings_well_formed(const fasts3_strings *s, const char *what) {
    bool ok = s->offsets != NULL && s->offsets[0] == 0 && s->offsets[s->count] == s->data_len &&
              (s->data_len == 0 || s->data != NULL);
    for (size_t i = 0; ok && i < s->count; i++) {
        size_t start = s->offsets[i], end = s->offsets[i + 1];
        ok = end > start && end <= s->data_len && s->data[end - 1] == '\0' &&
             strlen((const char *)s->data + start) == end - start - 1;
    }
    return CHECK(ok, "%s: %zu strings, %zu bytes: offsets start at 0, end at data_len, each "
                 "string NUL-terminated with no inner NUL", what, s->count, s->data_len);
}

static const char *str_at(const fasts3_strings *s, size_t i) {
    return (const char *)s->data + s->offsets[i];
}

/* ---- sections --------------------------------------------------------------------------- */

static void test_abi_and_free_null(void) {
    section("ABI version and NULL frees");
    CHECK(fasts3_abi_version() == FASTS3_ABI_VERSION, "fasts3_abi_version() == %u (got %" PRIu32 ")",
          (unsigned)FASTS3_ABI_VERSION, fasts3_abi_version());
    fasts3_config_free(NULL);
    fasts3_client_free(NULL);
    fasts3_cancel_token_free(NULL);
    fasts3_cancel_token_cancel(NULL);
    fasts3_list_cursor_free(NULL);
    fasts3_object_page_free(NULL);
    fasts3_bytes_free(NULL);
    CHECK(true, "config/client/cancel_token/list_cursor/object_page/bytes _free(NULL) and "
          "cancel_token_cancel(NULL) are no-ops");
}

static void test_config(void) {
    section("configuration");
    fasts3_config *config = NULL;
    CHECK_STATUS(fasts3_config_new(NULL, NULL), FASTS3_NULL_POINTER, "config_new(NULL)");
    CHECK_STATUS(fasts3_config_new(&config, NULL), FASTS3_OK, "config_new");
    CHECK(config != NULL, "config_new gives a non-NULL config");
    if (config == NULL) return;

    CHECK_STATUS(fasts3_config_set(config, "no_such_option", "1", NULL), FASTS3_INVALID_ARGUMENT,
                 "config_set(unknown option)");
    last_error e = get_last_error();
    CHECK(strstr(e.message, "no_such_option") != NULL, "its message names the option: \"%s\"", e.message);
    CHECK(e.code[0] == '\0' && e.http_status == 0, "no S3 code or HTTP status for a local error "
          "(code \"%s\", http %u)", e.code, (unsigned)e.http_status);

    CHECK_STATUS(fasts3_config_set(config, "part_size", "0", NULL), FASTS3_INVALID_ARGUMENT, "config_set(part_size=0)");
    CHECK_STATUS(fasts3_config_set(config, "part_size", "lots", NULL), FASTS3_INVALID_ARGUMENT,
                 "config_set(part_size=lots)");
    CHECK_STATUS(fasts3_config_set(config, "max_concurrency", "-3", NULL), FASTS3_INVALID_ARGUMENT,
                 "config_set(max_concurrency=-3)");
    CHECK_STATUS(fasts3_config_set(config, "path_style", "sideways", NULL), FASTS3_INVALID_ARGUMENT,
                 "config_set(path_style=sideways)");
    CHECK_STATUS(fasts3_config_set(config, "anonymous", "maybe", NULL), FASTS3_INVALID_ARGUMENT,
                 "config_set(anonymous=maybe)");
    CHECK_STATUS(fasts3_config_set(config, "region", "\xff\xfe", NULL), FASTS3_INVALID_ARGUMENT,
                 "config_set(region=<invalid UTF-8>)");
    CHECK_STATUS(fasts3_config_set(config, "\xc3\x28", "x", NULL), FASTS3_INVALID_ARGUMENT,
                 "config_set(<invalid UTF-8 name>)");
    CHECK_STATUS(fasts3_config_set(NULL, "region", "us-east-1", NULL), FASTS3_NULL_POINTER, "config_set(NULL config)");
    CHECK_STATUS(fasts3_config_set(config, NULL, "x", NULL), FASTS3_NULL_POINTER, "config_set(NULL name)");
    CHECK_STATUS(fasts3_config_set(config, "part_size", "1048576", NULL), FASTS3_OK, "config_set(part_size=1048576)");
    CHECK_STATUS(fasts3_config_set(config, "part_size", NULL, NULL), FASTS3_OK, "config_set(part_size=NULL) restores the default");
    CHECK_STATUS(fasts3_config_set(config, "path_style", "path", NULL), FASTS3_OK, "config_set(path_style=path)");

    /* Options are checked together when the client is made. */
    fasts3_client *client = NULL;
    CHECK_STATUS(fasts3_config_set(config, "access_key_id", "only-half", NULL), FASTS3_OK, "config_set(access_key_id) alone");
    CHECK_STATUS(fasts3_client_new(config, &client, NULL), FASTS3_INVALID_ARGUMENT,
                 "client_new with access_key_id but no secret_access_key");
    CHECK(client == NULL, "a failed client_new leaves *out alone");
    CHECK_STATUS(fasts3_config_set(config, "access_key_id", NULL, NULL), FASTS3_OK, "config_set(access_key_id=NULL)");
    CHECK_STATUS(fasts3_config_set(config, "endpoint_url", "not a url", NULL), FASTS3_OK, "config_set(endpoint_url=\"not a url\")");
    CHECK_STATUS(fasts3_client_new(config, &client, NULL), FASTS3_INVALID_ARGUMENT, "client_new with a malformed endpoint_url");
    CHECK_STATUS(fasts3_client_new(config, NULL, NULL), FASTS3_NULL_POINTER, "client_new(config, NULL)");
    fasts3_client_free(client);
    fasts3_config_free(config);
}

static fasts3_client *make_client(void) {
    section("client");
    fasts3_config *config = make_config(g.secret_access_key);
    CHECK(config != NULL, "config with endpoint_url, region, credentials, part_size=262144, max_concurrency=8");
    if (config == NULL) return NULL;
    fasts3_client *client = NULL;
    CHECK_STATUS(fasts3_client_new(config, &client, NULL), FASTS3_OK, "client_new");
    fasts3_config_free(config); /* clients made from a config do not depend on it */
    CHECK(client != NULL, "client_new gives a non-NULL client (config already freed)");
    return client;
}

static void test_head(const fasts3_client *c) {
    section("HEAD");
    fasts3_object_page *page = NULL;
    if (CHECK_STATUS(fasts3_head(c, SL(g.bucket), SL("small"), NULL, &page, NULL), FASTS3_OK, "head(small)")) {
        last_error e = get_last_error();
        CHECK(e.message[0] == '\0' && e.code[0] == '\0' && e.http_status == 0,
              "after a successful call the last error is empty");
        fasts3_object_page_view v;
        memset(&v, 0xAB, sizeof v);
        CHECK_STATUS(fasts3_object_page_get_view(page, &v, NULL), FASTS3_OK, "object_page_get_view");
        CHECK(v.count == 1 && v.keys.count == 1 && v.etags.count == 1 && v.content_types.count == 1 &&
              v.common_prefixes.count == 0,
              "one object: count=%zu keys=%zu etags=%zu content_types=%zu common_prefixes=%zu",
              v.count, v.keys.count, v.etags.count, v.content_types.count, v.common_prefixes.count);
        if (v.count == 1) {
            strings_well_formed(&v.keys, "head keys");
            strings_well_formed(&v.etags, "head etags");
            strings_well_formed(&v.content_types, "head content_types");
            strings_well_formed(&v.common_prefixes, "head common_prefixes");
            CHECK(strcmp(str_at(&v.keys, 0), "small") == 0, "key is \"small\" (got \"%s\")", str_at(&v.keys, 0));
            CHECK(v.sizes[0] == SMALL_SIZE, "size is %u (got %" PRIu64 ")", SMALL_SIZE, v.sizes[0]);
            const char *etag = str_at(&v.etags, 0);
            size_t elen = strlen(etag);
            CHECK(elen >= 3 && etag[0] == '"' && etag[elen - 1] == '"', "etag keeps its quotes: %s", etag);
            if (g.small_etag != NULL) {
                CHECK(strcmp(etag, g.small_etag) == 0, "etag is the one the upload returned (%s, got %s)",
                      g.small_etag, etag);
            }
            CHECK(strcmp(str_at(&v.content_types, 0), "text/plain") == 0, "content type is text/plain (got \"%s\")",
                  str_at(&v.content_types, 0));
            /* 2020-01-01 .. 2100-01-01, in ms since the epoch */
            CHECK(v.last_modified_ms[0] > INT64_C(1577836800000) && v.last_modified_ms[0] < INT64_C(4102444800000),
                  "last_modified_ms is a plausible time (%" PRId64 ")", v.last_modified_ms[0]);
        }
        CHECK_STATUS(fasts3_object_page_get_view(NULL, &v, NULL), FASTS3_NULL_POINTER, "object_page_get_view(NULL page)");
        CHECK_STATUS(fasts3_object_page_get_view(page, NULL, NULL), FASTS3_NULL_POINTER, "object_page_get_view(page, NULL)");
        fasts3_object_page_free(page);
    }

    page = NULL;
    if (CHECK_STATUS(fasts3_head(c, SL(g.bucket), SL("multi"), NULL, &page, NULL), FASTS3_OK, "head(multi)")) {
        fasts3_object_page_view v;
        fasts3_object_page_get_view(page, &v, NULL);
        CHECK(v.count == 1 && v.sizes[0] == MULTI_SIZE, "multi's size is %u", MULTI_SIZE);
#ifndef FASTS3_TEST_INJECT_LEAK
        fasts3_object_page_free(page);
#else
        printf("# FASTS3_TEST_INJECT_LEAK: the page of head(multi) is deliberately not freed\n");
#endif
    }

    page = NULL;
    if (CHECK_STATUS(fasts3_head(c, SL(g.bucket), SL("empty"), NULL, &page, NULL), FASTS3_OK, "head(empty)")) {
        fasts3_object_page_view v;
        fasts3_object_page_get_view(page, &v, NULL);
        CHECK(v.count == 1 && v.sizes[0] == 0, "empty's size is 0");
        fasts3_object_page_free(page);
    }

    page = (fasts3_object_page *)(uintptr_t)0x1; /* must be left alone on failure */
    CHECK_STATUS(fasts3_head(c, SL(g.bucket), SL("no/such/key"), NULL, &page, NULL), FASTS3_NO_SUCH_KEY, "head(missing key)");
    last_error e = get_last_error();
    CHECK(e.http_status == 404, "its HTTP status is 404 (got %u)", (unsigned)e.http_status);
    CHECK(page == (fasts3_object_page *)(uintptr_t)0x1, "a failed head leaves *out alone");

    CHECK_STATUS(fasts3_head(c, SL(g.bucket), SL("small"), NULL, NULL, NULL), FASTS3_NULL_POINTER, "head(..., out=NULL)");
    CHECK_STATUS(fasts3_head(NULL, SL(g.bucket), SL("small"), NULL, &page, NULL), FASTS3_NULL_POINTER, "head(NULL client)");
    CHECK_STATUS(fasts3_head(c, NULL, 3, SL("small"), NULL, &page, NULL), FASTS3_NULL_POINTER, "head(bucket=NULL, len 3)");
    CHECK_STATUS(fasts3_head(c, SL("bad\xff" "bucket"), SL("small"), NULL, &page, NULL), FASTS3_INVALID_ARGUMENT,
                 "head(<invalid UTF-8 bucket>)");
    CHECK_STATUS(fasts3_head(c, SL(g.bucket), SL("k\xe2\x82"), NULL, &page, NULL), FASTS3_INVALID_ARGUMENT,
                 "head(<truncated UTF-8 key>)");
    CHECK_STATUS(fasts3_head(c, SL(""), SL("small"), NULL, &page, NULL), FASTS3_INVALID_ARGUMENT, "head(empty bucket)");
}

/* Walk a whole listing; collect every key and prefix (as one joined string each) and check
 * every page's layout. */
typedef struct {
    size_t pages, keys, prefixes, max_page_entries;
    bool layout_ok, sizes_ok, content_types_empty, times_ok;
    char joined_keys[4096], joined_prefixes[1024];
} listing;

static fasts3_status walk(fasts3_list_cursor *cursor, listing *out) {
    memset(out, 0, sizeof *out);
    out->layout_ok = out->sizes_ok = out->content_types_empty = out->times_ok = true;
    for (;;) {
        fasts3_object_page *page = NULL;
        fasts3_status s = fasts3_list_next(cursor, NULL, &page, NULL);
        if (s != FASTS3_OK) return s;
        if (page == NULL) return FASTS3_OK;
        if (++out->pages > 100) { fasts3_object_page_free(page); return FASTS3_PROTOCOL; }
        fasts3_object_page_view v;
        if (fasts3_object_page_get_view(page, &v, NULL) != FASTS3_OK) {
            fasts3_object_page_free(page);
            return FASTS3_PROTOCOL;
        }
        char what[64];
        snprintf(what, sizeof what, "page %zu keys", out->pages);
        out->layout_ok &= v.keys.count == v.count && v.etags.count == v.count && v.content_types.count == v.count;
        out->layout_ok &= strings_well_formed(&v.keys, what);
        snprintf(what, sizeof what, "page %zu common_prefixes", out->pages);
        out->layout_ok &= strings_well_formed(&v.common_prefixes, what);
        for (size_t i = 0; i < v.count; i++) {
            const char *key = str_at(&v.keys, i);
            unsigned nn;
            uint64_t want = strncmp(key, "list/k", 6) == 0 && sscanf(key + 6, "%2u", &nn) == 1 ? nn : 1;
            out->sizes_ok &= v.sizes[i] == want;
            out->content_types_empty &= *str_at(&v.content_types, i) == '\0';
            out->times_ok &= v.last_modified_ms[i] > INT64_C(1577836800000);
            strncat(out->joined_keys, key, sizeof out->joined_keys - strlen(out->joined_keys) - 2);
            strcat(out->joined_keys, " ");
        }
        for (size_t i = 0; i < v.common_prefixes.count; i++) {
            strncat(out->joined_prefixes, str_at(&v.common_prefixes, i),
                    sizeof out->joined_prefixes - strlen(out->joined_prefixes) - 2);
            strcat(out->joined_prefixes, " ");
        }
        size_t entries = v.count + v.common_prefixes.count;
        if (entries > out->max_page_entries) out->max_page_entries = entries;
        out->keys += v.count;
        out->prefixes += v.common_prefixes.count;
        fasts3_object_page_free(page);
    }
}

static void expected_keys(char *buf, size_t cap, bool nested) {
    buf[0] = '\0';
    for (unsigned i = 0; i < LIST_FLAT_KEYS; i++) {
        size_t len = strlen(buf);
        snprintf(buf + len, cap - len, "list/k%02u ", i);
    }
    if (nested) strncat(buf, "list/sub1/a list/sub1/b list/sub2/a list/sub2/b list/sub3/a ", cap - strlen(buf) - 1);
}

static void test_list(const fasts3_client *c) {
    section("listing");
    char want[4096];
    listing l;
    fasts3_list_cursor *cursor = NULL;

    if (CHECK_STATUS(fasts3_list_cursor_new(c, SL(g.bucket), SL("list/"), NULL, NULL, 10, &cursor, NULL), FASTS3_OK,
                     "list_cursor_new(prefix \"list/\", page_size 10)")) {
        CHECK_STATUS(walk(cursor, &l), FASTS3_OK, "list_next until *out is NULL");
        expected_keys(want, sizeof want, true);
        CHECK(l.pages == 3 && l.keys == LIST_FLAT_KEYS + LIST_NESTED_KEYS && l.prefixes == 0,
              "3 pages, 25 keys, no common prefixes (got %zu pages, %zu keys, %zu prefixes)", l.pages, l.keys, l.prefixes);
        CHECK(l.max_page_entries == 10, "pages hold at most page_size entries (max %zu)", l.max_page_entries);
        CHECK(strcmp(l.joined_keys, want) == 0, "keys in order: %s", l.joined_keys);
        CHECK(l.layout_ok, "every page is well formed");
        CHECK(l.sizes_ok, "sizes match the seeded objects");
        CHECK(l.content_types_empty, "listing content types are empty strings");
        CHECK(l.times_ok, "listing last_modified_ms are plausible");
        fasts3_object_page *page = (fasts3_object_page *)(uintptr_t)0x1;
        CHECK_STATUS(fasts3_list_next(cursor, NULL, &page, NULL), FASTS3_OK, "list_next after the end");
        CHECK(page == NULL, "... keeps giving NULL");
        fasts3_list_cursor_free(cursor);
    }

    cursor = NULL;
    if (CHECK_STATUS(fasts3_list_cursor_new(c, SL(g.bucket), SL("list/"), "/", NULL, 10, &cursor, NULL), FASTS3_OK,
                     "list_cursor_new(prefix \"list/\", delimiter \"/\", page_size 10)")) {
        CHECK_STATUS(walk(cursor, &l), FASTS3_OK, "list_next until *out is NULL");
        expected_keys(want, sizeof want, false);
        CHECK(l.keys == LIST_FLAT_KEYS && l.prefixes == LIST_PREFIXES, "20 keys and 3 common prefixes (got %zu, %zu)",
              l.keys, l.prefixes);
        CHECK(strcmp(l.joined_keys, want) == 0, "keys at this level: %s", l.joined_keys);
        CHECK(strcmp(l.joined_prefixes, "list/sub1/ list/sub2/ list/sub3/ ") == 0,
              "common prefixes, each ending in the delimiter: %s", l.joined_prefixes);
        CHECK(l.max_page_entries <= 10 && l.pages >= 3, "%zu pages of at most 10 keys+prefixes", l.pages);
        CHECK(l.layout_ok, "every page is well formed");
        fasts3_list_cursor_free(cursor);
    }

    cursor = NULL;
    if (CHECK_STATUS(fasts3_list_cursor_new(c, SL(g.bucket), SL("list/"), NULL, "list/k17", 1000, &cursor, NULL),
                     FASTS3_OK, "list_cursor_new(start_after \"list/k17\")")) {
        CHECK_STATUS(walk(cursor, &l), FASTS3_OK, "list_next until *out is NULL");
        CHECK(l.pages == 1 && strcmp(l.joined_keys, "list/k18 list/k19 list/sub1/a list/sub1/b list/sub2/a "
                                     "list/sub2/b list/sub3/a ") == 0, "one page, keys after list/k17: %s", l.joined_keys);
        fasts3_list_cursor_free(cursor);
    }

    cursor = NULL;
    if (CHECK_STATUS(fasts3_list_cursor_new(c, SL(g.bucket), SL("nothing-here/"), NULL, NULL, 10, &cursor, NULL),
                     FASTS3_OK, "list_cursor_new(prefix with no objects)")) {
        CHECK_STATUS(walk(cursor, &l), FASTS3_OK, "list_next until *out is NULL");
        CHECK(l.pages == 1 && l.keys == 0 && l.prefixes == 0, "one empty page (got %zu pages, %zu keys)", l.pages, l.keys);
        fasts3_list_cursor_free(cursor);
    }

    cursor = NULL;
    CHECK_STATUS(fasts3_list_cursor_new(c, SL(g.bucket), SL(""), NULL, NULL, 0, &cursor, NULL), FASTS3_INVALID_ARGUMENT,
                 "list_cursor_new(page_size 0)");
    CHECK_STATUS(fasts3_list_cursor_new(c, SL(g.bucket), SL(""), NULL, NULL, 1001, &cursor, NULL), FASTS3_INVALID_ARGUMENT,
                 "list_cursor_new(page_size 1001)");
    CHECK_STATUS(fasts3_list_cursor_new(c, SL(g.bucket), SL(""), "", NULL, 10, &cursor, NULL), FASTS3_INVALID_ARGUMENT,
                 "list_cursor_new(empty delimiter)");
    CHECK_STATUS(fasts3_list_cursor_new(c, SL("\xc0\xaf"), SL(""), NULL, NULL, 10, &cursor, NULL), FASTS3_INVALID_ARGUMENT,
                 "list_cursor_new(<invalid UTF-8 bucket>)");
    CHECK_STATUS(fasts3_list_cursor_new(c, SL(g.bucket), SL("\x80"), NULL, NULL, 10, &cursor, NULL), FASTS3_INVALID_ARGUMENT,
                 "list_cursor_new(<invalid UTF-8 prefix>)");
    CHECK_STATUS(fasts3_list_cursor_new(c, SL(g.bucket), SL(""), "\xff", NULL, 10, &cursor, NULL), FASTS3_INVALID_ARGUMENT,
                 "list_cursor_new(<invalid UTF-8 delimiter>)");
    CHECK_STATUS(fasts3_list_cursor_new(NULL, SL(g.bucket), SL(""), NULL, NULL, 10, &cursor, NULL), FASTS3_NULL_POINTER,
                 "list_cursor_new(NULL client)");
    CHECK_STATUS(fasts3_list_cursor_new(c, SL(g.bucket), SL(""), NULL, NULL, 10, NULL, NULL), FASTS3_NULL_POINTER,
                 "list_cursor_new(..., out=NULL)");
    CHECK(cursor == NULL, "failed list_cursor_new calls leave *out alone");
    fasts3_object_page *page = NULL;
    CHECK_STATUS(fasts3_list_next(NULL, NULL, &page, NULL), FASTS3_NULL_POINTER, "list_next(NULL cursor)");

    /* A listing of a missing bucket fails on list_next, and the cursor can be retried. */
    if (CHECK_STATUS(fasts3_list_cursor_new(c, SL("no-such-bucket-fasts3-c"), SL(""), NULL, NULL, 10, &cursor, NULL),
                     FASTS3_OK, "list_cursor_new(missing bucket) sends nothing yet")) {
        CHECK_STATUS(fasts3_list_next(cursor, NULL, NULL, NULL), FASTS3_NULL_POINTER, "list_next(cursor, NULL, out=NULL)");
        CHECK_STATUS(fasts3_list_next(cursor, NULL, &page, NULL), FASTS3_NO_SUCH_BUCKET, "list_next(missing bucket)");
        last_error e = get_last_error();
        CHECK(strcmp(e.code, "NoSuchBucket") == 0 && e.http_status == 404,
              "code \"NoSuchBucket\", HTTP 404 (got \"%s\", %u)", e.code, (unsigned)e.http_status);
        CHECK_STATUS(fasts3_list_next(cursor, NULL, &page, NULL), FASTS3_NO_SUCH_BUCKET, "list_next again (retryable)");
        fasts3_list_cursor_free(cursor);
    }
}

/* Fill a buffer with bytes [offset, offset + len) of `key` and check the pattern. */
static void get_into_case(const fasts3_client *c, const char *key, uint64_t offset, size_t buf_len,
                          uint64_t want_written, const char *what) {
    uint8_t *buf = xmalloc(buf_len + 16);
    memset(buf, 0xEE, buf_len + 16);
    uint64_t written = UINT64_MAX;
    char desc[256];
    snprintf(desc, sizeof desc, "get_into(%s, offset %" PRIu64 ", buf_len %zu): %s", key, offset, buf_len, what);
    if (CHECK_STATUS(fasts3_get_into(c, SL(g.bucket), SL(key), offset, buf, buf_len, NULL, &written, NULL), FASTS3_OK, desc)) {
        CHECK(written == want_written, "  written = %" PRIu64 " (want %" PRIu64 ")", written, want_written);
        if (written <= buf_len) {
            long long bad = pattern_mismatch(buf, (size_t)written, offset);
            CHECK(bad < 0, "  the %" PRIu64 " bytes written match the pattern (first mismatch at %lld)", written, bad);
            bool untouched = true;
            for (size_t i = (size_t)written; i < buf_len + 16; i++) untouched &= buf[i] == 0xEE;
            CHECK(untouched, "  nothing is written past the %" PRIu64 " bytes read", written);
        }
    }
    free(buf);
}

static void test_get_into(const fasts3_client *c) {
    section("get_into (caller buffer)");
    get_into_case(c, "multi", 0, MULTI_SIZE, MULTI_SIZE, "whole object, 13 parts");
    get_into_case(c, "multi", 0, MULTI_SIZE + 1000, MULTI_SIZE, "buffer longer than the object");
    get_into_case(c, "multi", PART_SIZE - 1000, 5000, 5000, "crossing the first part boundary");
    get_into_case(c, "multi", 3 * PART_SIZE + 17, 2 * PART_SIZE + 3, 2 * PART_SIZE + 3, "unaligned, spanning 3 parts");
    get_into_case(c, "multi", MULTI_SIZE - 50, 100, 50, "the object ends first");
    get_into_case(c, "multi", MULTI_SIZE, 100, 0, "offset at the end");
    get_into_case(c, "multi", MULTI_SIZE + 10, 100, 0, "offset past the end");
    get_into_case(c, "small", 0, SMALL_SIZE, SMALL_SIZE, "small object");
    get_into_case(c, "small", 10, 20, 20, "inside a small object");
    get_into_case(c, "empty", 0, 10, 0, "empty object");

    uint64_t written = 12345;
    CHECK_STATUS(fasts3_get_into(c, SL(g.bucket), SL("small"), 0, NULL, 0, NULL, &written, NULL), FASTS3_OK,
                 "get_into(small, buf NULL, buf_len 0) checks existence");
    CHECK(written == 0, "  written = 0 (got %" PRIu64 ")", written);

    written = 777;
    uint8_t buf[64];
    CHECK_STATUS(fasts3_get_into(c, SL(g.bucket), SL("missing-key"), 0, buf, sizeof buf, NULL, &written, NULL),
                 FASTS3_NO_SUCH_KEY, "get_into(missing key)");
    last_error e = get_last_error();
    CHECK(e.message[0] != '\0', "  last_error_message is not empty: \"%s\"", e.message);
    CHECK(strcmp(e.code, "NoSuchKey") == 0, "  last_error_code is \"NoSuchKey\" (got \"%s\")", e.code);
    CHECK(e.http_status == 404, "  last_error_http_status is 404 (got %u)", (unsigned)e.http_status);
    CHECK(written == 777, "  *out_written is untouched on failure");
    CHECK_STATUS(fasts3_get_into(c, SL(g.bucket), SL("missing-key"), 0, NULL, 0, NULL, &written, NULL), FASTS3_NO_SUCH_KEY,
                 "get_into(missing key, buf_len 0)");

    CHECK_STATUS(fasts3_get_into(c, SL("no-such-bucket-fasts3-c"), SL("small"), 0, buf, sizeof buf, NULL, &written, NULL),
                 FASTS3_NO_SUCH_BUCKET, "get_into(missing bucket)");
    e = get_last_error();
    CHECK(strcmp(e.code, "NoSuchBucket") == 0 && e.http_status == 404,
          "  code \"NoSuchBucket\", HTTP 404 (got \"%s\", %u)", e.code, (unsigned)e.http_status);

    CHECK_STATUS(fasts3_get_into(NULL, SL(g.bucket), SL("small"), 0, buf, sizeof buf, NULL, &written, NULL),
                 FASTS3_NULL_POINTER, "get_into(NULL client)");
    CHECK_STATUS(fasts3_get_into(c, SL(g.bucket), SL("small"), 0, buf, sizeof buf, NULL, NULL, NULL),
                 FASTS3_NULL_POINTER, "get_into(..., out_written=NULL)");
    CHECK_STATUS(fasts3_get_into(c, SL(g.bucket), SL("small"), 0, NULL, 10, NULL, &written, NULL),
                 FASTS3_NULL_POINTER, "get_into(buf NULL, buf_len 10)");
    CHECK_STATUS(fasts3_get_into(c, SL(g.bucket), NULL, 5, 0, buf, sizeof buf, NULL, &written, NULL),
                 FASTS3_NULL_POINTER, "get_into(key NULL, key_len 5)");
    CHECK_STATUS(fasts3_get_into(c, SL("b\xff\xff"), SL("small"), 0, buf, sizeof buf, NULL, &written, NULL),
                 FASTS3_INVALID_ARGUMENT, "get_into(<invalid UTF-8 bucket>)");
    e = get_last_error();
    CHECK(strstr(e.message, "UTF-8") != NULL, "  message says why: \"%s\"", e.message);
    CHECK_STATUS(fasts3_get_into(c, SL(g.bucket), SL("\xed\xa0\x80"), 0, buf, sizeof buf, NULL, &written, NULL),
                 FASTS3_INVALID_ARGUMENT, "get_into(<surrogate, invalid UTF-8 key>)");
    CHECK_STATUS(fasts3_get_into(c, SL(""), SL("small"), 0, buf, sizeof buf, NULL, &written, NULL),
                 FASTS3_INVALID_ARGUMENT, "get_into(empty bucket)");
    CHECK_STATUS(fasts3_get_into(c, SL(g.bucket), SL(""), 0, buf, sizeof buf, NULL, &written, NULL),
                 FASTS3_INVALID_ARGUMENT, "get_into(empty key)");
    CHECK_STATUS(fasts3_get_into(c, SL(g.bucket), SL("small"), UINT64_MAX, buf, sizeof buf, NULL, &written, NULL),
                 FASTS3_INVALID_ARGUMENT, "get_into(offset UINT64_MAX)");
    CHECK(written == 777, "  *out_written untouched by every failed call");
}

static void test_writes(const fasts3_client *c) {
    section("put_from, delete, delete_many, copy");
    const size_t big = (11u << 20) + 123; /* 3 parts of 5 MiB with the threshold below */
    uint8_t *data = xmalloc(big), *back = xmalloc(big);
    for (size_t i = 0; i < big; i++) data[i] = (uint8_t)(i * 131 + (i >> 13));
    uint32_t parts = 99;
    CHECK_STATUS(fasts3_put_from(c, SL(g.bucket), SL("w/small"), data, 1000, NULL, NULL, &parts, NULL), FASTS3_OK,
                 "put_from(1000 bytes, options NULL)");
    CHECK(parts == 0, "  one PUT (parts = %u)", parts);
    fasts3_put_options options = {0};
    options.struct_size = sizeof options;
    options.multipart_threshold = 5u << 20;
    options.part_size = 5u << 20;
    const char *names[] = {"origin"}, *values[] = {"c-test"};
    options.content_type = "application/x-c-test";
    options.metadata_names = names;
    options.metadata_values = values;
    options.metadata_count = 1;
    CHECK_STATUS(fasts3_put_from(c, SL(g.bucket), SL("w/big"), data, big, &options, NULL, &parts, NULL), FASTS3_OK,
                 "put_from(11 MiB, multipart from the caller's buffer)");
    CHECK(parts == 3, "  3 parts (got %u)", parts);
    uint64_t written = 0;
    memset(back, 0, big);
    CHECK_STATUS(fasts3_get_into(c, SL(g.bucket), SL("w/big"), 0, back, big, NULL, &written, NULL), FASTS3_OK,
                 "get_into(w/big)");
    CHECK(written == big && memcmp(data, back, big) == 0, "  read back byte for byte");
    fasts3_object_page *page = NULL;
    if (CHECK_STATUS(fasts3_head(c, SL(g.bucket), SL("w/big"), NULL, &page, NULL), FASTS3_OK, "head(w/big)")) {
        fasts3_object_page_view view;
        fasts3_object_page_get_view(page, &view, NULL);
        CHECK(strcmp(str_at(&view.content_types, 0), "application/x-c-test") == 0, "  content type stored (%s)",
              str_at(&view.content_types, 0));
        fasts3_object_page_free(page);
    }

    options.if_none_match = 1;
    CHECK_STATUS(fasts3_put_from(c, SL(g.bucket), SL("w/small"), data, 10, &options, NULL, NULL, NULL),
                 FASTS3_PRECONDITION_FAILED, "put_from(if_none_match, key exists)");
    options.if_none_match = 0;
    /* A caller built against an older, shorter struct: the fields it lacks take defaults. */
    options.struct_size = sizeof(size_t);
    CHECK_STATUS(fasts3_put_from(c, SL(g.bucket), SL("w/x"), data, (5u << 20) + 1, &options, NULL, &parts, NULL),
                 FASTS3_OK, "put_from(options holding only struct_size)");
    CHECK(parts == 0, "  defaults: 5 MiB + 1 is one PUT below the 16 MiB threshold (parts = %u)", parts);
    options.struct_size = 0;
    CHECK_STATUS(fasts3_put_from(c, SL(g.bucket), SL("w/x"), data, 10, &options, NULL, NULL, NULL),
                 FASTS3_INVALID_ARGUMENT, "put_from(options.struct_size 0)");
    CHECK_STATUS(fasts3_delete(c, SL(g.bucket), SL("w/x"), NULL, NULL), FASTS3_OK, "delete(w/x)");
    CHECK_STATUS(fasts3_put_from(c, SL(g.bucket), SL("w/x"), NULL, 10, NULL, NULL, NULL, NULL), FASTS3_NULL_POINTER,
                 "put_from(data NULL, data_len 10)");
    CHECK_STATUS(fasts3_put_from(NULL, SL(g.bucket), SL("w/x"), data, 10, NULL, NULL, NULL, NULL), FASTS3_NULL_POINTER,
                 "put_from(NULL client)");

    fasts3_copy_options copy = {0};
    copy.struct_size = sizeof copy;
    copy.multipart_threshold = 5u << 20;
    copy.part_size = 5u << 20;
    CHECK_STATUS(fasts3_copy(c, SL(g.bucket), SL("w/big"), SL(g.bucket), SL("w/copy"), &copy, NULL, NULL), FASTS3_OK,
                 "copy(w/big -> w/copy, multipart)");
    memset(back, 0, big);
    CHECK_STATUS(fasts3_get_into(c, SL(g.bucket), SL("w/copy"), 0, back, big, NULL, &written, NULL), FASTS3_OK,
                 "get_into(w/copy)");
    CHECK(written == big && memcmp(data, back, big) == 0, "  the copy matches byte for byte");
    CHECK_STATUS(fasts3_copy(c, SL(g.bucket), SL("w/missing"), SL(g.bucket), SL("w/c2"), NULL, NULL, NULL),
                 FASTS3_NO_SUCH_KEY, "copy(missing source)");

    CHECK_STATUS(fasts3_delete(c, SL(g.bucket), SL("w/small"), NULL, NULL), FASTS3_OK, "delete(w/small)");
    CHECK_STATUS(fasts3_delete(c, SL(g.bucket), SL("w/small"), NULL, NULL), FASTS3_OK, "delete(w/small) again: S3 says OK");
    CHECK_STATUS(fasts3_delete(c, SL("no-such-bucket-fasts3-c"), SL("k"), NULL, NULL), FASTS3_NO_SUCH_BUCKET,
                 "delete(missing bucket)");
    fasts3_str keys[2] = {{(const uint8_t *)"w/big", 5}, {(const uint8_t *)"w/copy", 6}};
    fasts3_delete_result results[2];
    CHECK_STATUS(fasts3_delete_many(c, SL(g.bucket), keys, 2, NULL, results, NULL), FASTS3_OK, "delete_many(2 keys)");
    CHECK(results[0].status == FASTS3_OK && results[1].status == FASTS3_OK && results[0].error == NULL &&
          results[1].error == NULL, "  both deleted, no error objects");
    CHECK_STATUS(fasts3_delete_many(c, SL("no-such-bucket-fasts3-c"), keys, 2, NULL, results, NULL), FASTS3_NO_SUCH_BUCKET,
                 "delete_many(missing bucket)");
    for (size_t i = 0; i < 2; i++) {
        const fasts3_error *ke = results[i].error;
        CHECK(results[i].status == FASTS3_NO_SUCH_BUCKET && fasts3_error_status(ke) == FASTS3_NO_SUCH_BUCKET &&
                  strcmp(fasts3_error_code(ke), "NoSuchBucket") == 0 &&
                  strcmp(fasts3_error_bucket(ke), "no-such-bucket-fasts3-c") == 0 &&
                  strcmp(fasts3_error_key(ke), i == 0 ? "w/big" : "w/copy") == 0,
              "  key %zu reports it in its own error (\"%s\" %s/%s: %s)", i, fasts3_error_code(ke),
              fasts3_error_bucket(ke), fasts3_error_key(ke), fasts3_error_message(ke));
        fasts3_error_free(results[i].error);
    }
    CHECK_STATUS(fasts3_delete_many(c, SL(g.bucket), NULL, 2, NULL, results, NULL), FASTS3_NULL_POINTER,
                 "delete_many(keys NULL)");
    free(data);
    free(back);
}

static void test_streaming_upload(const fasts3_client *c) {
    section("streaming upload (fasts3_upload_*)");
    const size_t part = 5u << 20, total = 2 * part + 777;
    uint8_t *data = xmalloc(total), *back = xmalloc(total);
    for (size_t i = 0; i < total; i++) data[i] = pattern(i);
    fasts3_upload *up = NULL;
    fasts3_error *err = NULL;
    if (CHECK_STATUS(fasts3_upload_begin(c, SL(g.bucket), SL("w/streamed"), NULL, NULL, &up, &err), FASTS3_OK,
                     "upload_begin(w/streamed)")) {
        CHECK(err == NULL, "  success leaves *err NULL");
        CHECK_STATUS(fasts3_upload_write_part(up, data, part, NULL, NULL), FASTS3_OK, "write_part(1: 5 MiB)");
        /* The part was copied: scribbling on the caller's buffer now changes nothing stored. */
        memset(data, 0xEE, part);
        CHECK_STATUS(fasts3_upload_write_part(up, data + part, part, NULL, NULL), FASTS3_OK, "write_part(2: 5 MiB)");
        CHECK_STATUS(fasts3_upload_write_part(up, data + 2 * part, 777, NULL, NULL), FASTS3_OK,
                     "write_part(3: 777 bytes, the last)");
        CHECK_STATUS(fasts3_upload_write_part(up, data, 10, NULL, &err), FASTS3_INVALID_ARGUMENT,
                     "write_part after a short part is refused");
        CHECK(err != NULL && strcmp(fasts3_error_key(err), "w/streamed") == 0, "  the error names the key (%s)",
              fasts3_error_key(err));
        fasts3_error_free(err);
        CHECK_STATUS(fasts3_upload_write_part(up, NULL, 10, NULL, NULL), FASTS3_NULL_POINTER, "write_part(data NULL)");
        for (size_t i = 0; i < part; i++) data[i] = pattern(i);
        uint32_t parts = 0;
        CHECK_STATUS(fasts3_upload_finish(up, NULL, &parts, NULL), FASTS3_OK, "upload_finish");
        CHECK(parts == 3, "  3 parts (got %u)", parts);
        CHECK_STATUS(fasts3_upload_finish(up, NULL, NULL, NULL), FASTS3_INVALID_ARGUMENT, "finish twice is refused");
        fasts3_upload_free(up);
        uint64_t written = 0;
        memset(back, 0, total);
        CHECK_STATUS(fasts3_get_into(c, SL(g.bucket), SL("w/streamed"), 0, back, total, NULL, &written, NULL),
                     FASTS3_OK, "get_into(w/streamed)");
        CHECK(written == total && memcmp(data, back, total) == 0, "  read back byte for byte");
    }
    up = NULL;
    if (CHECK_STATUS(fasts3_upload_begin(c, SL(g.bucket), SL("w/abandoned"), NULL, NULL, &up, NULL), FASTS3_OK,
                     "upload_begin(w/abandoned)")) {
        CHECK_STATUS(fasts3_upload_write_part(up, data, part, NULL, NULL), FASTS3_OK, "write_part(5 MiB)");
        fasts3_upload_free(up); /* unfinished: aborted */
        fasts3_object_page *page = NULL;
        CHECK_STATUS(fasts3_head(c, SL(g.bucket), SL("w/abandoned"), NULL, &page, NULL), FASTS3_NO_SUCH_KEY,
                     "  freed unfinished: nothing stored");
        fasts3_object_page_free(page);
    }
    CHECK_STATUS(fasts3_upload_begin(c, SL(g.bucket), SL(""), NULL, NULL, &up, NULL), FASTS3_INVALID_ARGUMENT,
                 "upload_begin(empty key)");
    CHECK_STATUS(fasts3_upload_finish(NULL, NULL, NULL, NULL), FASTS3_NULL_POINTER, "upload_finish(NULL)");
    fasts3_upload_free(NULL);
    CHECK_STATUS(fasts3_delete(c, SL(g.bucket), SL("w/streamed"), NULL, NULL), FASTS3_OK, "delete(w/streamed)");
    free(data);
    free(back);
}

static void test_read_options(const fasts3_client *c) {
    section("read options (extensible struct: If-Match pin)");
    uint8_t buf[SMALL_SIZE];
    uint64_t written = 0;
    fasts3_read_options options = {0};
    options.struct_size = sizeof options;
    if (g.small_etag != NULL) {
        options.if_match = g.small_etag;
        if (CHECK_STATUS(fasts3_get_into_with_options(c, SL(g.bucket), SL("small"), 0, buf, sizeof buf, &options,
                                                      NULL, &written, NULL), FASTS3_OK, "get_into pinned to the current ETag")) {
            CHECK(written == SMALL_SIZE && pattern_mismatch(buf, SMALL_SIZE, 0) < 0, "  the object's bytes");
        }
    }
    options.if_match = "\"00000000000000000000000000000000\"";
    written = 4242;
    CHECK_STATUS(fasts3_get_into_with_options(c, SL(g.bucket), SL("small"), 0, buf, sizeof buf, &options, NULL,
                                              &written, NULL), FASTS3_OBJECT_CHANGED, "get_into pinned to another ETag");
    CHECK(written == 4242, "  *out_written untouched");
    fasts3_bytes *bytes = NULL;
    CHECK_STATUS(fasts3_get_with_options(c, SL(g.bucket), SL("small"), 0, FASTS3_TO_END, &options, NULL, &bytes, NULL),
                 FASTS3_OBJECT_CHANGED, "get pinned to another ETag");
    CHECK(bytes == NULL, "  *out untouched");

    /* A read's own part size (ABI 3.1): any size gives the same bytes; 0 is the client's,
       more than 5 GiB is refused before any request. */
    fasts3_read_options parts = {0};
    parts.struct_size = sizeof parts;
    uint8_t *multi = malloc(MULTI_SIZE);
    if (CHECK(multi != NULL, "malloc(MULTI_SIZE)")) {
        const uint64_t part_sizes[] = {0, 100000, MULTI_SIZE};
        for (size_t i = 0; i < sizeof part_sizes / sizeof part_sizes[0]; i++) {
            parts.part_size = part_sizes[i];
            memset(multi, 0, MULTI_SIZE);
            if (CHECK_STATUS(fasts3_get_into_with_options(c, SL(g.bucket), SL("multi"), 0, multi, MULTI_SIZE, &parts,
                                                          NULL, &written, NULL), FASTS3_OK,
                             part_sizes[i] == 0 ? "get_into(multi), part_size 0: the client's"
                                                : "get_into(multi) with the read's own part_size")) {
                CHECK(written == MULTI_SIZE && pattern_mismatch(multi, MULTI_SIZE, 0) < 0, "  the object's bytes");
            }
        }
        parts.part_size = (UINT64_C(5) << 30) + 1;
        CHECK_STATUS(fasts3_get_into_with_options(c, SL(g.bucket), SL("multi"), 0, multi, MULTI_SIZE, &parts, NULL,
                                                  &written, NULL), FASTS3_INVALID_ARGUMENT, "part_size over 5 GiB");
        free(multi);
    }

    /* A caller built against an older, shorter struct: the fields it lacks take defaults. */
    size_t only_size = sizeof(size_t);
    CHECK_STATUS(fasts3_get_into_with_options(c, SL(g.bucket), SL("small"), 0, buf, sizeof buf,
                                              (const fasts3_read_options *)&only_size, NULL, &written, NULL),
                 FASTS3_OK, "options holding only struct_size = sizeof(size_t)");
    CHECK(written == SMALL_SIZE, "  read the whole object unpinned");
    size_t zero = 0;
    CHECK_STATUS(fasts3_get_into_with_options(c, SL(g.bucket), SL("small"), 0, buf, sizeof buf,
                                              (const fasts3_read_options *)&zero, NULL, &written, NULL),
                 FASTS3_INVALID_ARGUMENT, "options with struct_size 0");
    CHECK_STATUS(fasts3_get_into_with_options(c, SL(g.bucket), SL("small"), 0, buf, sizeof buf, NULL, NULL,
                                              &written, NULL), FASTS3_OK, "NULL options: the defaults");
}

static void test_get(const fasts3_client *c) {
    section("get (library-allocated)");
    fasts3_bytes *bytes = NULL;
    uint8_t *data = NULL;
    size_t len = 0;

    if (CHECK_STATUS(fasts3_get(c, SL(g.bucket), SL("multi"), 0, FASTS3_TO_END, NULL, &bytes, NULL), FASTS3_OK,
                     "get(multi, 0, TO_END)")) {
        CHECK_STATUS(fasts3_bytes_data(bytes, &data, &len, NULL), FASTS3_OK, "bytes_data");
        CHECK(data != NULL && len == MULTI_SIZE, "  %zu bytes (want %u)", len, MULTI_SIZE);
        if (data != NULL && len == MULTI_SIZE) {
            long long bad = pattern_mismatch(data, len, 0);
            CHECK(bad < 0, "  match the pattern (first mismatch at %lld)", bad);
            data[0] ^= 0xff; /* the data is writable by the caller */
            data[len - 1] ^= 0xff;
        }
        CHECK_STATUS(fasts3_bytes_data(NULL, &data, &len, NULL), FASTS3_NULL_POINTER, "bytes_data(NULL)");
        CHECK_STATUS(fasts3_bytes_data(bytes, NULL, &len, NULL), FASTS3_NULL_POINTER, "bytes_data(bytes, NULL, &len)");
        CHECK_STATUS(fasts3_bytes_data(bytes, &data, NULL, NULL), FASTS3_NULL_POINTER, "bytes_data(bytes, &data, NULL)");
        fasts3_bytes_free(bytes);
    }

    bytes = NULL;
    if (CHECK_STATUS(fasts3_get(c, SL(g.bucket), SL("multi"), PART_SIZE - 7, 300000, NULL, &bytes, NULL), FASTS3_OK,
                     "get(multi, offset PART_SIZE-7, length 300000)")) {
        fasts3_bytes_data(bytes, &data, &len, NULL);
        CHECK(len == 300000 && pattern_mismatch(data, len, PART_SIZE - 7) < 0, "  300000 bytes of the pattern (got %zu)", len);
        fasts3_bytes_free(bytes);
    }

    bytes = NULL;
    if (CHECK_STATUS(fasts3_get(c, SL(g.bucket), SL("multi"), MULTI_SIZE - 10, 1000, NULL, &bytes, NULL), FASTS3_OK,
                     "get(multi, 10 bytes before the end, length 1000)")) {
        fasts3_bytes_data(bytes, &data, &len, NULL);
        CHECK(len == 10 && pattern_mismatch(data, len, MULTI_SIZE - 10) < 0, "  exactly the 10 bytes left (got %zu)", len);
        fasts3_bytes_free(bytes);
    }

    struct { const char *key; uint64_t offset, length; const char *what; } empties[] = {
        {"empty", 0, FASTS3_TO_END, "get(empty, 0, TO_END)"},
        {"small", SMALL_SIZE + 5, FASTS3_TO_END, "get(small, past the end)"},
        {"small", 0, 0, "get(small, length 0)"},
    };
    for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++) {
        bytes = NULL;
        if (CHECK_STATUS(fasts3_get(c, SL(g.bucket), SL(empties[i].key), empties[i].offset, empties[i].length, NULL,
                                    &bytes, NULL), FASTS3_OK, empties[i].what)) {
            data = NULL;
            len = 99;
            CHECK_STATUS(fasts3_bytes_data(bytes, &data, &len, NULL), FASTS3_OK, "bytes_data");
            CHECK(bytes != NULL && data != NULL && len == 0, "  empty result, data pointer still non-NULL");
            fasts3_bytes_free(bytes);
        }
    }

    bytes = (fasts3_bytes *)(uintptr_t)0x1;
    CHECK_STATUS(fasts3_get(c, SL(g.bucket), SL("missing-key"), 0, FASTS3_TO_END, NULL, &bytes, NULL), FASTS3_NO_SUCH_KEY,
                 "get(missing key)");
    CHECK(bytes == (fasts3_bytes *)(uintptr_t)0x1, "  *out untouched on failure");
    CHECK_STATUS(fasts3_get(c, SL(g.bucket), SL("small"), 0, FASTS3_TO_END, NULL, NULL, NULL), FASTS3_NULL_POINTER,
                 "get(..., out=NULL)");
    CHECK_STATUS(fasts3_get(NULL, SL(g.bucket), SL("small"), 0, FASTS3_TO_END, NULL, &bytes, NULL), FASTS3_NULL_POINTER,
                 "get(NULL client)");
    CHECK_STATUS(fasts3_get(c, SL("\xff"), SL("small"), 0, FASTS3_TO_END, NULL, &bytes, NULL), FASTS3_INVALID_ARGUMENT,
                 "get(<invalid UTF-8 bucket>)");
}

static void test_get_many(const fasts3_client *c) {
    section("get_many (batch)");
    uint8_t *whole = xmalloc(MULTI_SIZE);
    uint8_t *window = xmalloc(100000);
    uint8_t *small = xmalloc(200);
    memset(small, 0xEE, 200);
    const uint8_t *b = (const uint8_t *)g.bucket;
    size_t bl = strlen(g.bucket);
#define REQ(KEY, OFF, BUF, LEN)                                                                        \
    {.struct_size = sizeof(fasts3_get_request), .bucket = b, .bucket_len = bl, .key = (const uint8_t *)(KEY), \
     .key_len = strlen(KEY), .offset = (OFF), .buf = (BUF), .buf_len = (LEN)}
    fasts3_get_request reqs[] = {
        REQ("multi", 0, whole, MULTI_SIZE),                      /* 0: caller buffer, whole object */
        REQ("small", 0, NULL, FASTS3_TO_END),                    /* 1: allocated, whole object */
        REQ("multi", 300000, window, 100000),                    /* 2: caller buffer, a window */
        REQ("multi", PART_SIZE - 100, NULL, 50000),              /* 3: allocated, a window across a part boundary */
        REQ("empty", 0, NULL, FASTS3_TO_END),                    /* 4: allocated, empty object */
        REQ("small", 0, small, 200),                             /* 5: caller buffer longer than the object */
        REQ("multi", MULTI_SIZE - 3, NULL, FASTS3_TO_END),       /* 6: allocated, the last 3 bytes */
    };
    enum { N = sizeof reqs / sizeof reqs[0] };
    const struct { uint64_t offset, written; bool allocated; } want[N] = {
        {0, MULTI_SIZE, false}, {0, SMALL_SIZE, true}, {300000, 100000, false}, {PART_SIZE - 100, 50000, true},
        {0, 0, true}, {0, SMALL_SIZE, false}, {MULTI_SIZE - 3, 3, true},
    };
    fasts3_get_result results[N];
    memset(results, 0xAB, sizeof results);
    if (CHECK_STATUS(fasts3_get_many(c, reqs, N, NULL, results, NULL), FASTS3_OK,
                     "get_many: 7 reads, 3 into caller buffers and 4 allocated")) {
        for (size_t i = 0; i < N; i++) {
            const uint8_t *data = reqs[i].buf;
            size_t len = (size_t)results[i].written;
            if (want[i].allocated && results[i].bytes != NULL) {
                uint8_t *d = NULL;
                fasts3_bytes_data(results[i].bytes, &d, &len, NULL);
                data = d;
            }
            bool ok = results[i].status == FASTS3_OK && results[i].written == want[i].written &&
                      (results[i].bytes != NULL) == want[i].allocated && len == want[i].written &&
                      pattern_mismatch(data, len, want[i].offset) < 0;
            CHECK(ok, "  result %zu: status %s, written %" PRIu64 " (want %" PRIu64 "), %s, pattern ok", i,
                  status_name(results[i].status), results[i].written, want[i].written,
                  want[i].allocated ? "library-allocated bytes" : "caller buffer, bytes NULL");
        }
        CHECK(small[SMALL_SIZE] == 0xEE, "  nothing written past the end of the small object");
        for (size_t i = 0; i < N; i++) fasts3_bytes_free(results[i].bytes);
    }

    /* One failed read among good ones: the batch reports it and the rest still succeed. */
    fasts3_get_request mixed[] = {
        REQ("small", 0, NULL, FASTS3_TO_END),
        REQ("missing-key", 0, NULL, FASTS3_TO_END),
        REQ("multi", 0, window, 100000),
        REQ("missing-too", 0, small, 10),
    };
    fasts3_get_result mixed_results[4];
    CHECK_STATUS(fasts3_get_many(c, mixed, 4, NULL, mixed_results, NULL), FASTS3_NO_SUCH_KEY,
                 "get_many with missing keys at index 1 and 3");
    last_error e = get_last_error();
    CHECK(strstr(e.message, "1") != NULL && strstr(e.message, "missing-key") != NULL,
          "  the message is the lowest failed read's, with its index: \"%s\"", e.message);
    CHECK(strcmp(e.code, "NoSuchKey") == 0 && e.http_status == 404, "  code NoSuchKey, HTTP 404 (got \"%s\", %u)",
          e.code, (unsigned)e.http_status);
    CHECK(mixed_results[0].status == FASTS3_OK && mixed_results[0].bytes != NULL && mixed_results[0].written == SMALL_SIZE,
          "  result 0 succeeded with allocated bytes");
    CHECK(mixed_results[1].status == FASTS3_NO_SUCH_KEY && mixed_results[1].bytes == NULL, "  result 1 is NO_SUCH_KEY");
    CHECK(mixed_results[2].status == FASTS3_OK && mixed_results[2].written == 100000 &&
          pattern_mismatch(window, 100000, 0) < 0, "  result 2 succeeded into its caller buffer");
    CHECK(mixed_results[3].status == FASTS3_NO_SUCH_KEY && mixed_results[3].bytes == NULL, "  result 3 is NO_SUCH_KEY");
    CHECK(mixed_results[0].error == NULL && mixed_results[2].error == NULL, "  successful results carry no error");
    for (size_t i = 1; i < 4; i += 2) {
        const fasts3_error *re = mixed_results[i].error;
        CHECK(fasts3_error_status(re) == FASTS3_NO_SUCH_KEY && strcmp(fasts3_error_code(re), "NoSuchKey") == 0 &&
                  fasts3_error_http_status(re) == 404 && strcmp(fasts3_error_bucket(re), g.bucket) == 0 &&
                  strcmp(fasts3_error_key(re), i == 1 ? "missing-key" : "missing-too") == 0 &&
                  strstr(fasts3_error_message(re), i == 1 ? "request 1" : "request 3") != NULL,
              "  result %zu has its own error: %s %u, %s/%s, \"%s\"", i, fasts3_error_code(re),
              (unsigned)fasts3_error_http_status(re), fasts3_error_bucket(re), fasts3_error_key(re),
              fasts3_error_message(re));
    }
    for (size_t i = 0; i < 4; i++) {
        fasts3_bytes_free(mixed_results[i].bytes);
        fasts3_error_free(mixed_results[i].error);
    }
    fasts3_error *batch_err = NULL;
    CHECK_STATUS(fasts3_get_many(c, mixed, 4, NULL, mixed_results, &batch_err), FASTS3_NO_SUCH_KEY,
                 "get_many again, with err");
    CHECK(batch_err != NULL && batch_err != mixed_results[1].error && strcmp(fasts3_error_key(batch_err), "missing-key") == 0 &&
              strstr(fasts3_error_message(batch_err), "request 1") != NULL,
          "  *err is its own copy of the lowest failed read's error (key \"%s\")", fasts3_error_key(batch_err));
    fasts3_error_free(batch_err);
    for (size_t i = 0; i < 4; i++) {
        fasts3_bytes_free(mixed_results[i].bytes);
        fasts3_error_free(mixed_results[i].error);
    }

    /* Invalid batches: nothing is read and results are untouched. */
    fasts3_get_result untouched[3], sentinel[3];
    memset(sentinel, 0x5A, sizeof sentinel);

    fasts3_get_request overlap[] = {
        REQ("small", 0, whole, 100), REQ("small", 0, NULL, FASTS3_TO_END), REQ("small", 0, whole + 50, 100),
    };
    memcpy(untouched, sentinel, sizeof untouched);
    CHECK_STATUS(fasts3_get_many(c, overlap, 3, NULL, untouched, NULL), FASTS3_INVALID_ARGUMENT,
                 "get_many with overlapping caller buffers (requests 0 and 2)");
    CHECK(memcmp(untouched, sentinel, sizeof untouched) == 0, "  results untouched");
    e = get_last_error();
    CHECK(strstr(e.message, "overlap") != NULL, "  message: \"%s\"", e.message);

    fasts3_get_request adjacent[] = {REQ("small", 0, whole, 100), REQ("small", 0, whole + 100, 100)};
    fasts3_get_result adjacent_results[2];
    CHECK_STATUS(fasts3_get_many(c, adjacent, 2, NULL, adjacent_results, NULL), FASTS3_OK,
                 "get_many with adjacent (touching, not overlapping) caller buffers");

    fasts3_get_request bad_utf8[] = {REQ("small", 0, NULL, FASTS3_TO_END), REQ("sm\xff", 0, NULL, FASTS3_TO_END)};
    memcpy(untouched, sentinel, sizeof untouched);
    CHECK_STATUS(fasts3_get_many(c, bad_utf8, 2, NULL, untouched, NULL), FASTS3_INVALID_ARGUMENT,
                 "get_many with an invalid UTF-8 key in request 1");
    CHECK(memcmp(untouched, sentinel, sizeof untouched) == 0, "  results untouched (nothing allocated)");

    fasts3_get_request bad_bucket[] = {REQ("small", 0, NULL, FASTS3_TO_END)};
    bad_bucket[0].bucket = (const uint8_t *)"\xfe";
    bad_bucket[0].bucket_len = 1;
    memcpy(untouched, sentinel, sizeof untouched);
    CHECK_STATUS(fasts3_get_many(c, bad_bucket, 1, NULL, untouched, NULL), FASTS3_INVALID_ARGUMENT,
                 "get_many with an invalid UTF-8 bucket");
    CHECK(memcmp(untouched, sentinel, sizeof untouched) == 0, "  results untouched");

    /* struct_size: the stride of the array, the same in every request, at least this header's. */
    fasts3_get_request sizes[] = {REQ("small", 0, NULL, FASTS3_TO_END), REQ("small", 0, NULL, FASTS3_TO_END)};
    sizes[1].struct_size = sizeof(fasts3_get_request) + 8;
    memcpy(untouched, sentinel, sizeof untouched);
    CHECK_STATUS(fasts3_get_many(c, sizes, 2, NULL, untouched, NULL), FASTS3_INVALID_ARGUMENT,
                 "get_many with request 1's struct_size differing from request 0's");
    CHECK(memcmp(untouched, sentinel, sizeof untouched) == 0, "  results untouched");
    e = get_last_error();
    CHECK(strstr(e.message, "request 1") != NULL && strstr(e.message, "struct_size") != NULL, "  message: \"%s\"",
          e.message);
    sizes[0].struct_size = sizes[1].struct_size = sizeof(size_t);
    memcpy(untouched, sentinel, sizeof untouched);
    CHECK_STATUS(fasts3_get_many(c, sizes, 2, NULL, untouched, NULL), FASTS3_INVALID_ARGUMENT,
                 "get_many with struct_size smaller than this header's request");
    CHECK(memcmp(untouched, sentinel, sizeof untouched) == 0, "  results untouched");

    /* A later header's larger request (a field appended): libfasts3 steps by struct_size. */
    struct later_request {
        fasts3_get_request known;
        uint64_t appended;
    } later[2] = {{REQ("small", 0, NULL, FASTS3_TO_END), 0xFFFFFFFFFFFFFFFFull},
                  {REQ("multi", 300000, window, 100000), 0xFFFFFFFFFFFFFFFFull}};
    later[0].known.struct_size = later[1].known.struct_size = sizeof(struct later_request);
    fasts3_get_result later_results[2];
    memset(window, 0, 100000);
    if (CHECK_STATUS(fasts3_get_many(c, &later[0].known, 2, NULL, later_results, NULL), FASTS3_OK,
                     "get_many with requests of a later, larger layout")) {
        CHECK(later_results[0].written == SMALL_SIZE && later_results[0].bytes != NULL &&
                  later_results[1].written == 100000 && pattern_mismatch(window, 100000, 300000) < 0,
              "  both read, each into its own place");
        fasts3_bytes_free(later_results[0].bytes);
    }

    /* Per-read options: a read pinned to a wrong ETag fails alone; one pinned to the right
       ETag (when the lane knows it) succeeds. */
    fasts3_read_options stale = {.struct_size = sizeof stale, .if_match = "\"00000000000000000000000000000000\""};
    fasts3_read_options current = {.struct_size = sizeof current, .if_match = g.small_etag};
    fasts3_get_request pinned[] = {REQ("small", 0, NULL, FASTS3_TO_END), REQ("small", 0, NULL, FASTS3_TO_END)};
    pinned[0].options = &current;
    pinned[1].options = &stale;
    fasts3_get_result pinned_results[2];
    CHECK_STATUS(fasts3_get_many(c, pinned, 2, NULL, pinned_results, NULL), FASTS3_OBJECT_CHANGED,
                 "get_many with request 1 pinned to another ETag");
    CHECK(pinned_results[0].status == FASTS3_OK && pinned_results[0].written == SMALL_SIZE,
          "  request 0 (pinned to %s) read", g.small_etag ? g.small_etag : "nothing");
    CHECK(pinned_results[1].status == FASTS3_OBJECT_CHANGED && pinned_results[1].bytes == NULL &&
              fasts3_error_status(pinned_results[1].error) == FASTS3_OBJECT_CHANGED,
          "  request 1 failed alone with OBJECT_CHANGED");
    for (size_t i = 0; i < 2; i++) {
        fasts3_bytes_free(pinned_results[i].bytes);
        fasts3_error_free(pinned_results[i].error);
    }

    memcpy(untouched, sentinel, sizeof untouched);
    CHECK_STATUS(fasts3_get_many(NULL, reqs, 1, NULL, untouched, NULL), FASTS3_NULL_POINTER, "get_many(NULL client)");
    CHECK_STATUS(fasts3_get_many(c, NULL, 1, NULL, untouched, NULL), FASTS3_NULL_POINTER, "get_many(NULL requests, count 1)");
    CHECK_STATUS(fasts3_get_many(c, reqs, 1, NULL, NULL, NULL), FASTS3_NULL_POINTER, "get_many(NULL results, count 1)");
    CHECK(memcmp(untouched, sentinel, sizeof untouched) == 0, "  results untouched");
    CHECK_STATUS(fasts3_get_many(c, NULL, 0, NULL, NULL, NULL), FASTS3_OK, "get_many(count 0, NULL arrays)");
#undef REQ
    free(whole);
    free(window);
    free(small);
}

static void test_get_ranges_at(const fasts3_client *c) {
    section("get_ranges_at (ranges placed in one buffer)");
    uint8_t out[64];
    memset(out, 0xEE, sizeof out);
    /* In the object: 300000.., 10..; in out: the first at 40, the second at 0, the suffix at 20. */
    const fasts3_range ranges[] = {{300000, 16}, {10, 8}, {-4, 4}};
    const uint64_t places[] = {40, 0, 20};
    uint64_t lengths[3] = {99, 99, 99};
    if (CHECK_STATUS(fasts3_get_ranges_at(c, SL(g.bucket), SL("multi"), ranges, 3, FASTS3_DEFAULT_MAX_GAP, out,
                                          sizeof out, places, NULL, NULL, lengths, NULL),
                     FASTS3_OK, "get_ranges_at: 3 ranges at offsets 40, 0, 20")) {
        CHECK(lengths[0] == 16 && lengths[1] == 8 && lengths[2] == 4, "  lengths %" PRIu64 ", %" PRIu64 ", %" PRIu64,
              lengths[0], lengths[1], lengths[2]);
        CHECK(pattern_mismatch(out + 40, 16, 300000) < 0 && pattern_mismatch(out, 8, 10) < 0 &&
                  pattern_mismatch(out + 20, 4, MULTI_SIZE - 4) < 0,
              "  each range's bytes at its place");
        bool gaps_untouched = true;
        for (size_t i = 0; i < sizeof out; i++) {
            bool placed = i < 8 || (i >= 20 && i < 24) || (i >= 40 && i < 56);
            if (!placed && out[i] != 0xEE) gaps_untouched = false;
        }
        CHECK(gaps_untouched, "  bytes between the places untouched");
    }
    const uint64_t overlapping[] = {40, 0, 50};
    uint64_t untouched[3] = {99, 99, 99};
    CHECK_STATUS(fasts3_get_ranges_at(c, SL(g.bucket), SL("multi"), ranges, 3, FASTS3_DEFAULT_MAX_GAP, out, sizeof out,
                                      overlapping, NULL, NULL, untouched, NULL),
                 FASTS3_INVALID_ARGUMENT, "get_ranges_at with ranges 0 and 2 overlapping in the buffer");
    CHECK(untouched[0] == 99 && untouched[2] == 99, "  out_lengths untouched");
    const uint64_t outside[] = {50, 0, 20};
    CHECK_STATUS(fasts3_get_ranges_at(c, SL(g.bucket), SL("multi"), ranges, 3, FASTS3_DEFAULT_MAX_GAP, out, sizeof out,
                                      outside, NULL, NULL, untouched, NULL),
                 FASTS3_INVALID_ARGUMENT, "get_ranges_at with range 0 ending past the buffer");
}

static void test_cancel(const fasts3_client *c) {
    section("cancel tokens");
    fasts3_cancel_token *token = NULL;
    CHECK_STATUS(fasts3_cancel_token_new(NULL, NULL), FASTS3_NULL_POINTER, "cancel_token_new(NULL)");
    if (!CHECK_STATUS(fasts3_cancel_token_new(&token, NULL), FASTS3_OK, "cancel_token_new")) return;

    /* An untriggered token changes nothing. */
    uint8_t buf[SMALL_SIZE];
    uint64_t written = 0;
    CHECK_STATUS(fasts3_get_into(c, SL(g.bucket), SL("small"), 0, buf, sizeof buf, token, &written, NULL), FASTS3_OK,
                 "get_into with an untriggered token");
    CHECK(written == SMALL_SIZE, "  read everything");

    fasts3_cancel_token_cancel(token);
    fasts3_cancel_token_cancel(token); /* idempotent */
    written = 4242;
    CHECK_STATUS(fasts3_get_into(c, SL(g.bucket), SL("small"), 0, buf, sizeof buf, token, &written, NULL), FASTS3_CANCELLED,
                 "get_into with a token cancelled before the call");
    CHECK(written == 4242, "  *out_written untouched");
    uint8_t *big = xmalloc(MULTI_SIZE);
    CHECK_STATUS(fasts3_get_into(c, SL(g.bucket), SL("multi"), 0, big, MULTI_SIZE, token, &written, NULL), FASTS3_CANCELLED,
                 "get_into(multi) with a cancelled token");
    free(big);
    fasts3_bytes *bytes = NULL;
    CHECK_STATUS(fasts3_get(c, SL(g.bucket), SL("small"), 0, FASTS3_TO_END, token, &bytes, NULL), FASTS3_CANCELLED,
                 "get with a cancelled token");
    CHECK(bytes == NULL, "  nothing allocated");
    fasts3_object_page *page = NULL;
    CHECK_STATUS(fasts3_head(c, SL(g.bucket), SL("small"), token, &page, NULL), FASTS3_CANCELLED, "head with a cancelled token");
    CHECK(page == NULL, "  no page");

    fasts3_list_cursor *cursor = NULL;
    if (fasts3_list_cursor_new(c, SL(g.bucket), SL("list/"), NULL, NULL, 10, &cursor, NULL) == FASTS3_OK) {
        CHECK_STATUS(fasts3_list_next(cursor, token, &page, NULL), FASTS3_CANCELLED, "list_next with a cancelled token");
        CHECK(page == NULL, "  no page");
        listing l;
        CHECK_STATUS(walk(cursor, &l), FASTS3_OK, "the cursor did not advance: a listing without the token");
        CHECK(l.keys == LIST_FLAT_KEYS + LIST_NESTED_KEYS, "  still gives all 25 keys (got %zu)", l.keys);
        fasts3_list_cursor_free(cursor);
    }

    const uint8_t *b = (const uint8_t *)g.bucket;
    size_t bl = strlen(g.bucket);
    fasts3_get_request reqs[2] = {
        {sizeof(fasts3_get_request), b, bl, (const uint8_t *)"small", 5, 0, NULL, FASTS3_TO_END, NULL},
        {sizeof(fasts3_get_request), b, bl, (const uint8_t *)"small", 5, 0, buf, sizeof buf, NULL},
    };
    fasts3_get_result results[2];
    memset(results, 0xAB, sizeof results);
    CHECK_STATUS(fasts3_get_many(c, reqs, 2, token, results, NULL), FASTS3_CANCELLED, "get_many with a cancelled token");
    CHECK(results[0].status == FASTS3_CANCELLED && results[1].status == FASTS3_CANCELLED &&
          results[0].bytes == NULL && results[1].bytes == NULL &&
          fasts3_error_status(results[0].error) == FASTS3_CANCELLED &&
          fasts3_error_status(results[1].error) == FASTS3_CANCELLED,
          "  every result CANCELLED with its own error, no bytes");
    fasts3_error_free(results[0].error);
    fasts3_error_free(results[1].error);
    fasts3_cancel_token_free(token);
}

/* ---- versions, status names and per-call error objects ------------------------------------- */

#ifndef FASTS3_CRATE_VERSION
#error "compile with -DFASTS3_CRATE_VERSION='\"x.y.z\"' (run_c_tests.py reads it from Cargo.toml)"
#endif

static void test_versions_and_status_names(void) {
    section("versions and status names");
    CHECK(fasts3_abi_minor_version() == FASTS3_ABI_MINOR_VERSION, "fasts3_abi_minor_version() == %u (got %" PRIu32 ")",
          (unsigned)FASTS3_ABI_MINOR_VERSION, fasts3_abi_minor_version());
    const char *version = fasts3_version();
    CHECK(version != NULL && strcmp(version, FASTS3_CRATE_VERSION) == 0,
          "fasts3_version() is the crate version \"%s\" (got \"%s\")", FASTS3_CRATE_VERSION, version ? version : "<NULL>");
    CHECK(fasts3_version() == version, "  a static string: the same pointer every time");
#define NAME_CASE(s) {s, #s}
    const struct { fasts3_status status; const char *name; } all[] = {
        NAME_CASE(FASTS3_OK), NAME_CASE(FASTS3_INVALID_ARGUMENT), NAME_CASE(FASTS3_NULL_POINTER),
        NAME_CASE(FASTS3_OUT_OF_MEMORY), NAME_CASE(FASTS3_INVALID_HANDLE), NAME_CASE(FASTS3_NO_SUCH_KEY),
        NAME_CASE(FASTS3_NO_SUCH_BUCKET), NAME_CASE(FASTS3_ACCESS_DENIED), NAME_CASE(FASTS3_INVALID_RANGE),
        NAME_CASE(FASTS3_OBJECT_CHANGED), NAME_CASE(FASTS3_CHECKSUM_MISMATCH), NAME_CASE(FASTS3_CHECKSUM_UNAVAILABLE),
        NAME_CASE(FASTS3_PRECONDITION_FAILED), NAME_CASE(FASTS3_THROTTLED), NAME_CASE(FASTS3_NETWORK),
        NAME_CASE(FASTS3_TIMEOUT), NAME_CASE(FASTS3_CANCELLED), NAME_CASE(FASTS3_PANIC), NAME_CASE(FASTS3_CONFIG),
        NAME_CASE(FASTS3_PROTOCOL), NAME_CASE(FASTS3_TLS), NAME_CASE(FASTS3_S3_ERROR),
    };
#undef NAME_CASE
    size_t named = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        const char *got = fasts3_status_name(all[i].status);
        if (got != NULL && strcmp(got, all[i].name) == 0) {
            named++;
        } else {
            CHECK(false, "fasts3_status_name(%d) is \"%s\" (got \"%s\")", (int)all[i].status, all[i].name,
                  got ? got : "<NULL>");
        }
    }
    CHECK(named == sizeof all / sizeof all[0], "fasts3_status_name names all %zu statuses as the header does", named);
    const int32_t unknown[] = {-1, 1, 99, 208, 405, 501, 2147483647, -2147483647 - 1};
    bool all_unknown = true;
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *got = fasts3_status_name(unknown[i]);
        if (got == NULL || strcmp(got, "FASTS3_UNKNOWN") != 0) {
            all_unknown = false;
            CHECK(false, "fasts3_status_name(%" PRId32 ") is \"FASTS3_UNKNOWN\" (got \"%s\")", unknown[i],
                  got ? got : "<NULL>");
        }
    }
    CHECK(all_unknown, "values outside the enum are \"FASTS3_UNKNOWN\"");
}

typedef struct {
    const fasts3_client *client;
    fasts3_error *err;
    fasts3_status status;
} error_thread_call;

static void *failing_head_on_a_thread(void *arg) {
    error_thread_call *call = arg;
    fasts3_object_page *page = NULL;
    call->status = fasts3_head(call->client, SL(g.bucket), SL("no/such/thread-key"), NULL, &page, &call->err);
    return NULL;
}

static void test_per_call_errors(const fasts3_client *c) {
    section("per-call error objects");
    uint8_t buf[16];
    uint64_t written = 0;

    /* An S3 error: every field filled. */
    fasts3_error *err = (fasts3_error *)&written; /* junk: a failing call must overwrite it */
    CHECK_STATUS(fasts3_get_into(c, SL(g.bucket), SL("no/such/key"), 0, buf, sizeof buf, NULL, &written, &err),
                 FASTS3_NO_SUCH_KEY, "get_into(missing key, &err)");
    if (CHECK(err != NULL && err != (fasts3_error *)&written, "  *err is a new error")) {
        CHECK(fasts3_error_status(err) == FASTS3_NO_SUCH_KEY, "  status NO_SUCH_KEY (got %s)",
              fasts3_status_name(fasts3_error_status(err)));
        CHECK(strcmp(fasts3_error_code(err), "NoSuchKey") == 0, "  code \"NoSuchKey\" (got \"%s\")", fasts3_error_code(err));
        CHECK(fasts3_error_http_status(err) == 404, "  HTTP 404 (got %u)", (unsigned)fasts3_error_http_status(err));
        CHECK(fasts3_error_message(err)[0] != '\0', "  message \"%s\"", fasts3_error_message(err));
        CHECK(strcmp(fasts3_error_bucket(err), g.bucket) == 0, "  bucket \"%s\"", fasts3_error_bucket(err));
        CHECK(strcmp(fasts3_error_key(err), "no/such/key") == 0, "  key \"%s\"", fasts3_error_key(err));
        CHECK(fasts3_error_request_id(err)[0] != '\0', "  request id \"%s\" (x-amz-request-id)",
              fasts3_error_request_id(err));
        /* The object belongs to the call: later calls on this thread do not change it. */
        const char *message = fasts3_error_message(err);
        CHECK_STATUS(fasts3_get_into(c, SL(g.bucket), SL("small"), 0, buf, sizeof buf, NULL, &written, NULL), FASTS3_OK,
                     "  another call (which clears this thread's last error)");
        CHECK(fasts3_error_message(err) == message && strcmp(fasts3_error_code(err), "NoSuchKey") == 0 &&
                  fasts3_last_error_message()[0] == '\0',
              "  the error object is unchanged while the last error was cleared");
    }
    fasts3_error_free(err);

    /* HEAD's error response has no body: the code comes from the status, the request id from its header. */
    fasts3_object_page *page = NULL;
    err = NULL;
    CHECK_STATUS(fasts3_head(c, SL(g.bucket), SL("no/such/key"), NULL, &page, &err), FASTS3_NO_SUCH_KEY,
                 "head(missing key, &err)");
    CHECK(fasts3_error_status(err) == FASTS3_NO_SUCH_KEY && fasts3_error_http_status(err) == 404 &&
              strcmp(fasts3_error_key(err), "no/such/key") == 0 && fasts3_error_request_id(err)[0] != '\0',
          "  NO_SUCH_KEY, HTTP 404, key and request id (\"%s\") filled", fasts3_error_request_id(err));
    fasts3_error_free(err);

    /* Success sets *err to NULL. */
    err = (fasts3_error *)&written;
    CHECK_STATUS(fasts3_get_into(c, SL(g.bucket), SL("small"), 0, buf, sizeof buf, NULL, &written, &err), FASTS3_OK,
                 "get_into(small, &err)");
    CHECK(err == NULL, "  success sets *err = NULL");
    err = (fasts3_error *)&written;
    fasts3_config *config = NULL;
    CHECK_STATUS(fasts3_config_new(&config, &err), FASTS3_OK, "config_new(&config, &err)");
    CHECK(err == NULL, "  success sets *err = NULL (an export with no bucket)");
    fasts3_config_free(config);

    /* NULL err: the call still fails with its status, and the last error still works. */
    CHECK_STATUS(fasts3_get_into(c, SL(g.bucket), SL("no/such/key"), 0, buf, sizeof buf, NULL, &written, NULL),
                 FASTS3_NO_SUCH_KEY, "get_into(missing key, err NULL)");
    CHECK(strcmp(fasts3_last_error_code(), "NoSuchKey") == 0, "  the last error still has the code");

    /* A local failure: no S3 response, so no code, HTTP status or request id. */
    err = NULL;
    CHECK_STATUS(fasts3_get_into(c, SL(g.bucket), SL("small"), 0, NULL, 5, NULL, &written, &err), FASTS3_NULL_POINTER,
                 "get_into(buf NULL, len 5, &err)");
    CHECK(fasts3_error_status(err) == FASTS3_NULL_POINTER && fasts3_error_code(err)[0] == '\0' &&
              fasts3_error_http_status(err) == 0 && fasts3_error_request_id(err)[0] == '\0' &&
              strstr(fasts3_error_message(err), "buf") != NULL && strcmp(fasts3_error_key(err), "small") == 0,
          "  NULL_POINTER, no code/HTTP/request id, message \"%s\", key \"%s\"", fasts3_error_message(err),
          fasts3_error_key(err));
    fasts3_error_free(err);
    err = NULL;
    CHECK_STATUS(fasts3_config_set(NULL, "region", "x", &err), FASTS3_NULL_POINTER, "config_set(NULL, ..., &err)");
    CHECK(fasts3_error_status(err) == FASTS3_NULL_POINTER && fasts3_error_bucket(err)[0] == '\0' &&
              fasts3_error_key(err)[0] == '\0',
          "  an error about no object has empty bucket and key (message \"%s\")", fasts3_error_message(err));
    fasts3_error_free(err);

    /* A missing bucket on a listing names the bucket. */
    fasts3_list_cursor *cursor = NULL;
    if (CHECK_STATUS(fasts3_list_cursor_new(c, SL("no-such-bucket-fasts3-c"), SL(""), NULL, NULL, 10, &cursor, NULL),
                     FASTS3_OK, "list_cursor_new(missing bucket)")) {
        err = NULL;
        CHECK_STATUS(fasts3_list_next(cursor, NULL, &page, &err), FASTS3_NO_SUCH_BUCKET, "list_next(&err)");
        CHECK(strcmp(fasts3_error_code(err), "NoSuchBucket") == 0 &&
                  strcmp(fasts3_error_bucket(err), "no-such-bucket-fasts3-c") == 0 && fasts3_error_key(err)[0] == '\0',
              "  code \"%s\", bucket \"%s\", no key", fasts3_error_code(err), fasts3_error_bucket(err));
        fasts3_error_free(err);
        fasts3_list_cursor_free(cursor);
    }

    /* An error made on one thread is read on another (as a goroutine moved between calls would). */
    error_thread_call call = {c, NULL, FASTS3_OK};
    pthread_t tid;
    if (CHECK(pthread_create(&tid, NULL, failing_head_on_a_thread, &call) == 0, "start a thread that fails a HEAD")) {
        pthread_join(tid, NULL);
        CHECK(call.status == FASTS3_NO_SUCH_KEY && fasts3_error_status(call.err) == FASTS3_NO_SUCH_KEY &&
                  strcmp(fasts3_error_key(call.err), "no/such/thread-key") == 0,
              "  its error object reads the same here (key \"%s\")", fasts3_error_key(call.err));
        fasts3_error_free(call.err);
    }

    /* NULL is "no error" for every accessor, and fasts3_error_free(NULL) is a no-op. */
    CHECK(fasts3_error_status(NULL) == FASTS3_OK && fasts3_error_message(NULL)[0] == '\0' &&
              fasts3_error_code(NULL)[0] == '\0' && fasts3_error_http_status(NULL) == 0 &&
              fasts3_error_request_id(NULL)[0] == '\0' && fasts3_error_bucket(NULL)[0] == '\0' &&
              fasts3_error_key(NULL)[0] == '\0',
          "accessors on NULL: OK, empty strings, 0");
    fasts3_error_free(NULL);
}

/* ---- handles: use after free and double free are caught, not acted on ---------------------- */

/* What libfasts3 writes to stderr (fd 2) between capture_begin and capture_end. */
static int g_saved_stderr = -1;
static FILE *g_capture;

static void capture_begin(void) {
    fflush(stderr);
    g_capture = tmpfile();
    g_saved_stderr = dup(2);
    if (g_capture == NULL || g_saved_stderr < 0) { perror("capture_begin"); exit(2); }
    dup2(fileno(g_capture), 2);
}

static void capture_end(char *out, size_t cap) {
    fflush(stderr);
    dup2(g_saved_stderr, 2);
    close(g_saved_stderr);
    rewind(g_capture);
    size_t n = fread(out, 1, cap - 1, g_capture);
    out[n] = '\0';
    fclose(g_capture);
}

/* The last error names the argument and the handle type. */
static void check_invalid_handle_message(const char *argument, const char *type) {
    last_error e = get_last_error();
    char want[128];
    snprintf(want, sizeof want, "%s is not a live %s", argument, type);
    CHECK(strstr(e.message, want) != NULL, "  message says \"%s\": \"%s\"", want, e.message);
}

/* Free `ptr` a second time: libfasts3 must report it on stderr, naming the type, and not
 * touch the memory (ASan would report a double free). */
#define CHECK_DOUBLE_FREE(free_fn, ptr, type)                                                      \
    do {                                                                                           \
        char report_[1024];                                                                        \
        capture_begin();                                                                           \
        free_fn(ptr);                                                                              \
        capture_end(report_, sizeof report_);                                                      \
        CHECK(strstr(report_, #free_fn) != NULL && strstr(report_, "not a live " type) != NULL &&  \
                  strstr(report_, "double free") != NULL,                                          \
              #free_fn " twice: reported on stderr, memory untouched (\"%.*s\")",                  \
              (int)strcspn(report_, "\n"), report_);                                               \
    } while (0)

static void test_invalid_handles(const fasts3_client *c) {
    section("invalid handles");
    uint8_t buf[16];
    uint64_t written = 77;

    /* config */
    fasts3_config *config = make_config(g.secret_access_key);
    if (config == NULL) { CHECK(false, "config for the invalid-handle checks"); return; }
    fasts3_config_free(config);
    CHECK_STATUS(fasts3_config_set(config, "region", "us-east-1", NULL), FASTS3_INVALID_HANDLE, "config_set on a freed config");
    check_invalid_handle_message("config", "fasts3_config");
    fasts3_client *client = NULL;
    CHECK_STATUS(fasts3_client_new(config, &client, NULL), FASTS3_INVALID_HANDLE, "client_new from a freed config");
    CHECK(client == NULL, "  *out untouched");
    CHECK_DOUBLE_FREE(fasts3_config_free, config, "fasts3_config");

    /* client */
    config = make_config(g.secret_access_key);
    if (config == NULL || fasts3_client_new(config, &client, NULL) != FASTS3_OK) {
        CHECK(false, "client for the invalid-handle checks");
        fasts3_config_free(config);
        return;
    }
    fasts3_config_free(config);
    fasts3_client_free(client);
    CHECK_STATUS(fasts3_get_into(client, SL(g.bucket), SL("small"), 0, buf, sizeof buf, NULL, &written, NULL),
                 FASTS3_INVALID_HANDLE, "get_into on a freed client");
    check_invalid_handle_message("client", "fasts3_client");
    CHECK(written == 77, "  *out_written untouched");
    fasts3_object_page *page = NULL;
    CHECK_STATUS(fasts3_head(client, SL(g.bucket), SL("small"), NULL, &page, NULL), FASTS3_INVALID_HANDLE,
                 "head on a freed client");
    fasts3_list_cursor *cursor = NULL;
    CHECK_STATUS(fasts3_list_cursor_new(client, SL(g.bucket), SL(""), NULL, NULL, 10, &cursor, NULL), FASTS3_INVALID_HANDLE,
                 "list_cursor_new on a freed client");
    CHECK(page == NULL && cursor == NULL, "  no page, no cursor");
    CHECK_DOUBLE_FREE(fasts3_client_free, client, "fasts3_client");

    /* Handles of the wrong type, and pointers libfasts3 never made. */
    fasts3_config *other = NULL;
    if (fasts3_config_new(&other, NULL) == FASTS3_OK) {
        CHECK_STATUS(fasts3_get_into((const fasts3_client *)(void *)other, SL(g.bucket), SL("small"), 0, buf, sizeof buf,
                                     NULL, &written, NULL),
                     FASTS3_INVALID_HANDLE, "get_into given a config as its client");
        fasts3_config_free(other);
    }
    uint64_t not_a_handle[64] = {0};
    CHECK_STATUS(fasts3_get_into((const fasts3_client *)(void *)not_a_handle, SL(g.bucket), SL("small"), 0, buf,
                                 sizeof buf, NULL, &written, NULL),
                 FASTS3_INVALID_HANDLE, "get_into given a stack array as its client");
    CHECK_STATUS(fasts3_get_many((const fasts3_client *)(void *)not_a_handle, NULL, 0, NULL, NULL, NULL),
                 FASTS3_INVALID_HANDLE, "get_many(count 0) still checks its client");

    /* cancel token */
    fasts3_cancel_token *token = NULL;
    if (fasts3_cancel_token_new(&token, NULL) == FASTS3_OK) {
        fasts3_cancel_token_free(token);
        CHECK_STATUS(fasts3_get_into(c, SL(g.bucket), SL("small"), 0, buf, sizeof buf, token, &written, NULL),
                     FASTS3_INVALID_HANDLE, "get_into with a freed cancel token");
        check_invalid_handle_message("cancel", "fasts3_cancel_token");
        fasts3_bytes *bytes = NULL;
        CHECK_STATUS(fasts3_get(c, SL(g.bucket), SL("small"), 0, FASTS3_TO_END, token, &bytes, NULL), FASTS3_INVALID_HANDLE,
                     "get with a freed cancel token");
        CHECK(bytes == NULL, "  nothing allocated");
        char report[1024];
        capture_begin();
        fasts3_cancel_token_cancel(token);
        fasts3_cancel_token_watch_sigint(token);
        capture_end(report, sizeof report);
        CHECK(strstr(report, "fasts3_cancel_token_cancel") != NULL &&
                  strstr(report, "fasts3_cancel_token_watch_sigint") != NULL &&
                  strstr(report, "not a live fasts3_cancel_token") != NULL,
              "cancel and watch_sigint on a freed token: reported on stderr, ignored (\"%.*s\")",
              (int)strcspn(report, "\n"), report);
        CHECK_DOUBLE_FREE(fasts3_cancel_token_free, token, "fasts3_cancel_token");
    }

    /* object page */
    page = NULL;
    if (CHECK_STATUS(fasts3_head(c, SL(g.bucket), SL("small"), NULL, &page, NULL), FASTS3_OK, "head(small) for a page")) {
        fasts3_object_page_free(page);
        fasts3_object_page_view v;
        CHECK_STATUS(fasts3_object_page_get_view(page, &v, NULL), FASTS3_INVALID_HANDLE, "object_page_get_view on a freed page");
        check_invalid_handle_message("page", "fasts3_object_page");
        CHECK_DOUBLE_FREE(fasts3_object_page_free, page, "fasts3_object_page");
    }

    /* bytes */
    fasts3_bytes *bytes = NULL;
    if (CHECK_STATUS(fasts3_get(c, SL(g.bucket), SL("small"), 0, FASTS3_TO_END, NULL, &bytes, NULL), FASTS3_OK, "get(small)")) {
        fasts3_bytes_free(bytes);
        uint8_t *data = NULL;
        size_t len = 0;
        CHECK_STATUS(fasts3_bytes_data(bytes, &data, &len, NULL), FASTS3_INVALID_HANDLE, "bytes_data on freed bytes");
        check_invalid_handle_message("bytes", "fasts3_bytes");
        CHECK(data == NULL && len == 0, "  out-parameters untouched");
        CHECK_DOUBLE_FREE(fasts3_bytes_free, bytes, "fasts3_bytes");
    }

    /* list cursor */
    cursor = NULL;
    if (CHECK_STATUS(fasts3_list_cursor_new(c, SL(g.bucket), SL("list/"), NULL, NULL, 10, &cursor, NULL), FASTS3_OK,
                     "list_cursor_new")) {
        fasts3_list_cursor_free(cursor);
        page = NULL;
        CHECK_STATUS(fasts3_list_next(cursor, NULL, &page, NULL), FASTS3_INVALID_HANDLE, "list_next on a freed cursor");
        check_invalid_handle_message("cursor", "fasts3_list_cursor");
        CHECK_DOUBLE_FREE(fasts3_list_cursor_free, cursor, "fasts3_list_cursor");
    }
}

/* ---- SIGINT watchers: one installation per process, never clobbering another's ------------- */

/* The "application's" own SIGINT handler (like CPython's), and another library's, which
 * chains to the handler it replaced. Only atomics: they run as signal handlers. */
static atomic_int g_app_sigints, g_other_sigints;
static struct sigaction g_other_replaced;

static void app_on_sigint(int signo) { (void)signo; atomic_fetch_add(&g_app_sigints, 1); }

static void other_library_on_sigint(int signo, siginfo_t *info, void *context) {
    atomic_fetch_add(&g_other_sigints, 1);
    if (g_other_replaced.sa_flags & SA_SIGINFO) {
        g_other_replaced.sa_sigaction(signo, info, context);
    } else if (g_other_replaced.sa_handler != SIG_DFL && g_other_replaced.sa_handler != SIG_IGN) {
        g_other_replaced.sa_handler(signo);
    }
}

static void set_sigint(void (*handler)(int)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
}

/* SIGINT's current handler, as an address to compare. */
static uintptr_t sigint_handler(void) {
    struct sigaction sa;
    sigaction(SIGINT, NULL, &sa);
    return sa.sa_flags & SA_SIGINFO ? (uintptr_t)sa.sa_sigaction : (uintptr_t)sa.sa_handler;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double monotonic(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Wait up to `seconds` for SIGINT's handler to stop being `handler`. */
static bool wait_handler_replaced(uintptr_t handler, double seconds) {
    double until = monotonic() + seconds;
    while (sigint_handler() == handler) {
        if (monotonic() > until) return false;
        sleep_ms(1);
    }
    return true;
}

/* A server that accepts connections (the kernel does, into the backlog) and never answers:
 * a GET against it blocks until its read timeout. */
static int stalled_server(char *endpoint, size_t cap) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) != 0) {
        perror("stalled_server");
        if (fd >= 0) close(fd);
        return -1;
    }
    snprintf(endpoint, cap, "http://127.0.0.1:%u", (unsigned)ntohs(addr.sin_port));
    return fd;
}

typedef struct {
    const fasts3_client *client;
    fasts3_cancel_token *token;
    fasts3_status status;
    atomic_bool done;
    double ended_at;
} stalled_call;

static void *stalled_get(void *arg) {
    stalled_call *call = arg;
    uint8_t buf[16];
    uint64_t written = 0;
    call->status = fasts3_get_into(call->client, SL(g.bucket), SL("stalled"), 0, buf, sizeof buf, call->token, &written, NULL);
    call->ended_at = monotonic();
    atomic_store(&call->done, true);
    return NULL;
}

/* Start a GET against the stalled server with a new SIGINT-watching token. */
static bool start_stalled(stalled_call *call, pthread_t *tid, const fasts3_client *client) {
    memset(call, 0, sizeof *call);
    call->client = client;
    if (fasts3_cancel_token_new(&call->token, NULL) != FASTS3_OK) return false;
    fasts3_cancel_token_watch_sigint(call->token);
    if (pthread_create(tid, NULL, stalled_get, call) != 0) {
        fasts3_cancel_token_free(call->token);
        return false;
    }
    return true;
}

/* Wait up to `seconds` for the call to end (it always ends: at worst its read timeout). */
static bool ended_within(stalled_call *call, double seconds) {
    double until = monotonic() + seconds;
    while (!atomic_load(&call->done) && monotonic() < until) sleep_ms(1);
    return atomic_load(&call->done);
}

static void finish_stalled(stalled_call *call, pthread_t tid) {
    pthread_join(tid, NULL);
    fasts3_cancel_token_free(call->token);
}

static fasts3_client *stalled_client(const char *endpoint) {
    fasts3_config *config = make_config(g.secret_access_key);
    fasts3_client *client = NULL;
    /* Long enough that only SIGINT or the token can end a call within the test's patience;
     * short enough that a failing check does not hang the run. */
    if (config != NULL && fasts3_config_set(config, "endpoint_url", endpoint, NULL) == FASTS3_OK &&
        fasts3_config_set(config, "read_timeout", "6", NULL) == FASTS3_OK &&
        fasts3_client_new(config, &client, NULL) != FASTS3_OK) {
        client = NULL;
    }
    fasts3_config_free(config);
    return client;
}

static void test_sigint_watchers(void) {
    section("SIGINT watchers");
    char endpoint[64];
    int server = stalled_server(endpoint, sizeof endpoint);
    fasts3_client *client = server < 0 ? NULL : stalled_client(endpoint);
    if (!CHECK(client != NULL, "a client of a server that never answers (%s)", endpoint)) {
        if (server >= 0) close(server);
        return;
    }
    set_sigint(app_on_sigint);
    const uintptr_t app = (uintptr_t)app_on_sigint, other = (uintptr_t)other_library_on_sigint;
    stalled_call a, b;
    pthread_t ta, tb;

    /* Two watchers; the one that installed the handler finishes first. */
    if (start_stalled(&a, &ta, client)) {
        CHECK(wait_handler_replaced(app, 5), "the first watching call installs libfasts3's SIGINT handler");
        bool b_started = start_stalled(&b, &tb, client);
        sleep_ms(300); /* b is inside its call */
        fasts3_cancel_token_cancel(a.token);
        bool a_ended = ended_within(&a, 5);
        CHECK(a_ended && a.status == FASTS3_CANCELLED, "the installer ends first (%s, by its token)",
              a_ended ? status_name(a.status) : "still running");
        finish_stalled(&a, ta);
        if (b_started) {
            CHECK(sigint_handler() != app, "  the handler stays while the second call still watches");
            int app_before = atomic_load(&g_app_sigints);
            double sent = monotonic();
            kill(getpid(), SIGINT);
            bool ended = ended_within(&b, 3);
            CHECK(ended && b.status == FASTS3_CANCELLED,
                  "  SIGINT then cancels the second call (%s after %.2f s)", ended ? status_name(b.status) : "still running",
                  (ended ? b.ended_at : monotonic()) - sent);
            finish_stalled(&b, tb);
            CHECK(atomic_load(&g_app_sigints) == app_before + 1, "  and the application's handler ran once (chained)");
            CHECK(sigint_handler() == app, "  the last watcher restored the application's handler");
        }
    }

    /* Another library installs its SIGINT handler (chaining to ours) while we watch. */
    if (start_stalled(&a, &ta, client)) {
        CHECK(wait_handler_replaced(app, 5), "a watching call installs libfasts3's handler");
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = other_library_on_sigint;
        sa.sa_flags = SA_SIGINFO;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, &g_other_replaced);
        fasts3_cancel_token_cancel(a.token);
        bool a_ended = ended_within(&a, 5);
        CHECK(a_ended && a.status == FASTS3_CANCELLED, "  the call ends (%s)",
              a_ended ? status_name(a.status) : "still running");
        finish_stalled(&a, ta);
        CHECK(sigint_handler() == other, "  the other library's handler, installed meanwhile, is not overwritten");

        int app_before = atomic_load(&g_app_sigints), other_before = atomic_load(&g_other_sigints);
        kill(getpid(), SIGINT);
        CHECK(atomic_load(&g_other_sigints) == other_before + 1 && atomic_load(&g_app_sigints) == app_before + 1,
              "  SIGINT runs the other library's handler, then (through ours) the application's");

        /* A new watcher while the other library's handler is on top: ours, in its chain, sees SIGINT. */
        if (start_stalled(&b, &tb, client)) {
            sleep_ms(300);
            CHECK(sigint_handler() == other, "  a new watching call does not install over the other library's handler");
            kill(getpid(), SIGINT);
            bool ended = ended_within(&b, 3);
            CHECK(ended && b.status == FASTS3_CANCELLED, "  SIGINT reaches it through the other library's chain (%s)",
                  ended ? status_name(b.status) : "still running");
            finish_stalled(&b, tb);
            CHECK(sigint_handler() == other, "  and the other library's handler is still in place after it");
        }

        /* The other library uninstalls (restoring ours); the next watcher cleans up after itself. */
        sigaction(SIGINT, &g_other_replaced, NULL);
        if (start_stalled(&b, &tb, client)) {
            sleep_ms(200);
            fasts3_cancel_token_cancel(b.token);
            ended_within(&b, 5);
            finish_stalled(&b, tb);
            CHECK(sigint_handler() == app, "once ours is on top again, the last watcher restores the application's handler");
        }
    }

    /* Ours left in another library's chain, then the application puts its own handler back
     * (as CPython's signal.signal would): the next watcher must install ours again. */
    if (start_stalled(&a, &ta, client)) {
        wait_handler_replaced(app, 5);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = other_library_on_sigint;
        sa.sa_flags = SA_SIGINFO;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, &g_other_replaced);
        fasts3_cancel_token_cancel(a.token);
        ended_within(&a, 5);
        finish_stalled(&a, ta);
        set_sigint(app_on_sigint);
        if (start_stalled(&b, &tb, client)) {
            CHECK(wait_handler_replaced(app, 5),
                  "after the application reinstalled its handler, a new watching call installs ours again");
            int app_before = atomic_load(&g_app_sigints);
            kill(getpid(), SIGINT);
            bool ended = ended_within(&b, 3);
            CHECK(ended && b.status == FASTS3_CANCELLED && atomic_load(&g_app_sigints) == app_before + 1,
                  "  SIGINT cancels it (%s) and reaches the application's handler",
                  ended ? status_name(b.status) : "still running");
            finish_stalled(&b, tb);
            CHECK(sigint_handler() == app, "  and its end restores the application's handler");
        }
    }
    set_sigint(SIG_DFL);
    fasts3_client_free(client);
    close(server);
}

/* ---- threads: one client shared, last error per thread ------------------------------------ */

typedef struct {
    const fasts3_client *client;
    uint64_t offset;
    size_t len;
    bool ok;
    char error_before[128], error_after[128];
} worker;

static void *read_worker(void *arg) {
    worker *w = arg;
    uint8_t *buf = xmalloc(w->len);
    uint64_t written = 0;
    fasts3_status s = fasts3_get_into(w->client, SL(g.bucket), SL("multi"), w->offset, buf, w->len, NULL, &written, NULL);
    w->ok = s == FASTS3_OK && written == w->len && pattern_mismatch(buf, w->len, w->offset) < 0;
    free(buf);
    return NULL;
}

static void *error_worker(void *arg) {
    worker *w = arg;
    copy_cstr(w->error_before, sizeof w->error_before, fasts3_last_error_code());
    uint64_t written;
    uint8_t buf[8];
    fasts3_status s = fasts3_get_into(w->client, SL("no-such-bucket-fasts3-c"), SL("x"), 0, buf, sizeof buf, NULL, &written, NULL);
    copy_cstr(w->error_after, sizeof w->error_after, fasts3_last_error_code());
    w->ok = s == FASTS3_NO_SUCH_BUCKET;
    return NULL;
}

static void test_threads(const fasts3_client *c) {
    section("threads");
    enum { T = 4 };
    worker w[T];
    pthread_t tid[T];
    for (int i = 0; i < T; i++) {
        w[i] = (worker){.client = c, .offset = (uint64_t)i * 700001u, .len = 600000};
        pthread_create(&tid[i], NULL, read_worker, &w[i]);
    }
    bool all = true;
    for (int i = 0; i < T; i++) { pthread_join(tid[i], NULL); all &= w[i].ok; }
    CHECK(all, "4 threads read windows of multi through one client at once");

    uint8_t buf[8];
    uint64_t written;
    fasts3_get_into(c, SL(g.bucket), SL("missing-key"), 0, buf, sizeof buf, NULL, &written, NULL);
    worker ew = {.client = c};
    pthread_create(&tid[0], NULL, error_worker, &ew);
    pthread_join(tid[0], NULL);
    CHECK(ew.ok && ew.error_before[0] == '\0' && strcmp(ew.error_after, "NoSuchBucket") == 0,
          "another thread starts with no last error and gets its own (\"%s\" then \"%s\")", ew.error_before,
          ew.error_after);
    last_error e = get_last_error();
    CHECK(strcmp(e.code, "NoSuchKey") == 0, "this thread's last error is still its own NoSuchKey (got \"%s\")", e.code);
}

/* ---- lifetimes: a cursor outlives its client; a client survives fork() --------------------- */

static void test_lifetimes(void) {
    section("lifetimes");
    fasts3_config *config = make_config(g.secret_access_key);
    fasts3_client *client = NULL;
    fasts3_list_cursor *cursor = NULL;
    if (config == NULL || fasts3_client_new(config, &client, NULL) != FASTS3_OK) {
        CHECK(false, "second client");
        fasts3_config_free(config);
        return;
    }
    fasts3_config_free(config);
    CHECK_STATUS(fasts3_list_cursor_new(client, SL(g.bucket), SL("list/"), "/", NULL, 7, &cursor, NULL), FASTS3_OK,
                 "list_cursor_new on a second client");
    fasts3_client_free(client);
    listing l;
    CHECK_STATUS(walk(cursor, &l), FASTS3_OK, "the cursor keeps working after fasts3_client_free");
    CHECK(l.keys == LIST_FLAT_KEYS && l.prefixes == LIST_PREFIXES, "  20 keys and 3 prefixes in pages of 7 (got %zu, %zu)",
          l.keys, l.prefixes);
    fasts3_list_cursor_free(cursor);
}

static void test_fork(const fasts3_client *c) {
    section("fork");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        /* The child reuses the parent's client: libfasts3 rebuilds its runtime and pool. The
         * child leaves with _exit: its copy of the parent's runtime is abandoned on purpose
         * (it cannot be dropped without the parent's threads), so a leak check here would
         * only report that; the parent's leak check covers everything else. */
        uint8_t *buf = malloc(PART_SIZE * 2 + 10);
        uint64_t written = 0;
        int rc = 3;
        if (buf != NULL) {
            fasts3_status s = fasts3_get_into(c, SL(g.bucket), SL("multi"), 5, buf, PART_SIZE * 2 + 10, NULL, &written, NULL);
            rc = s == FASTS3_OK && written == PART_SIZE * 2 + 10 && pattern_mismatch(buf, (size_t)written, 5) < 0 ? 0 : 1;
            if (rc) fprintf(stderr, "child: %s: %s\n", status_name(s), fasts3_last_error_message());
        }
        _exit(rc);
    }
    int wstatus = 0;
    bool waited = pid > 0 && waitpid(pid, &wstatus, 0) == pid;
    CHECK(waited && WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0,
          "a forked child reads 2 parts through the parent's client (exit status %d)",
          waited && WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1);
    uint8_t buf[SMALL_SIZE];
    uint64_t written = 0;
    CHECK_STATUS(fasts3_get_into(c, SL(g.bucket), SL("small"), 0, buf, sizeof buf, NULL, &written, NULL), FASTS3_OK,
                 "the parent's client still works after the fork");
}

static void test_wrong_secret(void) {
    section("credentials");
    if (!g.verifies_signatures) {
        printf("# the server does not verify signatures: wrong-secret check not run\n");
        return;
    }
    fasts3_config *config = make_config("definitely-not-the-secret");
    fasts3_client *client = NULL;
    if (config == NULL || fasts3_client_new(config, &client, NULL) != FASTS3_OK) {
        CHECK(false, "client with a wrong secret");
        fasts3_config_free(config);
        return;
    }
    fasts3_config_free(config);
    uint8_t buf[16];
    uint64_t written;
    CHECK_STATUS(fasts3_get_into(client, SL(g.bucket), SL("small"), 0, buf, sizeof buf, NULL, &written, NULL),
                 FASTS3_ACCESS_DENIED, "get_into with a wrong secret");
    last_error e = get_last_error();
    CHECK(e.http_status == 403 && e.code[0] != '\0', "  HTTP 403 with an S3 code (got %u, \"%s\")",
          (unsigned)e.http_status, e.code);
    fasts3_client_free(client);
}

int main(int argc, char **argv) {
    if (argc == 6) {
        g = (settings){argv[1], argv[2], argv[3], argv[4], argv[5], NULL, false};
    } else if (argc == 1) {
        g = (settings){require_env("FASTS3_TEST_ENDPOINT"), require_env("FASTS3_TEST_ACCESS_KEY_ID"),
                       require_env("FASTS3_TEST_SECRET_ACCESS_KEY"), require_env("FASTS3_TEST_REGION"),
                       require_env("FASTS3_TEST_BUCKET"), NULL, false};
    } else {
        fprintf(stderr, "usage: %s [ENDPOINT ACCESS_KEY_ID SECRET_ACCESS_KEY REGION BUCKET]\n", argv[0]);
        return 2;
    }
    g.small_etag = getenv("FASTS3_TEST_SMALL_ETAG");
    const char *verifies = getenv("FASTS3_TEST_VERIFIES_SIGNATURES");
    g.verifies_signatures = verifies != NULL && strcmp(verifies, "1") == 0;
    printf("# libfasts3 C ABI test: %s, bucket %s\n", g.endpoint, g.bucket);

    test_abi_and_free_null();
    test_versions_and_status_names();
    test_config();
    fasts3_client *client = make_client();
    if (client != NULL) {
        test_head(client);
        test_list(client);
        test_get_into(client);
        test_get(client);
        test_read_options(client);
        test_get_many(client);
        test_get_ranges_at(client);
        test_writes(client);
        test_streaming_upload(client);
        test_per_call_errors(client);
        test_cancel(client);
        test_invalid_handles(client);
        test_threads(client);
        test_fork(client);
        fasts3_client_free(client);
    }
    test_lifetimes();
    test_wrong_secret();
    test_sigint_watchers();

    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
