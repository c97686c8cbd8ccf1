/*
 * C-level test of libfasts3's asynchronous interface (completion queue, submit, cancel),
 * run under ASan/UBSan/LSan by tests/c/run_c_tests.py against the bucket it seeds for
 * test_fasts3.c (same environment variables):
 *   FASTS3_TEST_ENDPOINT, FASTS3_TEST_ACCESS_KEY_ID, FASTS3_TEST_SECRET_ACCESS_KEY,
 *   FASTS3_TEST_REGION, FASTS3_TEST_BUCKET
 * Objects used: small (SMALL_SIZE bytes of pattern(i)), multi (MULTI_SIZE bytes), empty.
 * Writes "async/put", "async/multi", "async/multi-sync" and "async/single" in the bucket.
 *
 * Prints one line per check ("ok"/"FAIL"), then "N passed, M failed"; exits 1 on failure.
 */
#define _POSIX_C_SOURCE 200809L

#include "fasts3.h"
#include "check.h"

#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* CHECK, SL, SMALL_SIZE, MULTI_SIZE, pattern(), pattern_mismatch(): check.h. */

static const char *env(const char *name) {
    const char *v = getenv(name);
    if (v == NULL || v[0] == '\0') {
        fprintf(stderr, "missing environment variable %s\n", name);
        exit(2);
    }
    return v;
}

static const char *g_bucket;

static fasts3_client *make_client(void) {
    fasts3_config *config = NULL;
    fasts3_client *client = NULL;
    const char *options[][2] = {
        {"endpoint_url", env("FASTS3_TEST_ENDPOINT")},
        {"region", env("FASTS3_TEST_REGION")},
        {"access_key_id", env("FASTS3_TEST_ACCESS_KEY_ID")},
        {"secret_access_key", env("FASTS3_TEST_SECRET_ACCESS_KEY")},
        {"part_size", "262144"},
    };
    if (fasts3_config_new(&config, NULL) != FASTS3_OK) return NULL;
    for (size_t i = 0; i < sizeof options / sizeof options[0]; i++) {
        if (fasts3_config_set(config, options[i][0], options[i][1], NULL) != FASTS3_OK) {
            fasts3_config_free(config);
            return NULL;
        }
    }
    if (fasts3_client_new(config, &client, NULL) != FASTS3_OK) client = NULL;
    fasts3_config_free(config);
    return client;
}

static bool fd_readable(int fd, int timeout_ms) {
    struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
    return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

/* Wait on the queue's fd and pop one completion (NULL after 20 s without any). */
static fasts3_completion *next_completion(fasts3_completion_queue *q) {
    int fd = fasts3_completion_queue_fd(q);
    for (int waited = 0; waited < 20000; waited += 100) {
        fasts3_completion *c = NULL;
        if (fasts3_completion_queue_pop(q, &c, NULL) != FASTS3_OK) return NULL;
        if (c != NULL) return c;
        fd_readable(fd, 100);
    }
    return NULL;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_submit_and_complete(fasts3_client *client) {
    printf("# submit, poll the fd, pop\n");
    fasts3_completion_queue *q = NULL;
    CHECK(fasts3_completion_queue_new(&q, NULL) == FASTS3_OK && q != NULL, "completion_queue_new");
    int fd = fasts3_completion_queue_fd(q);
    CHECK(fd >= 0, "completion_queue_fd is a descriptor (%d)", fd);
    CHECK(!fd_readable(fd, 0), "an empty queue's fd is not readable");

    uint8_t *multi = malloc(MULTI_SIZE);
    memset(multi, 0, MULTI_SIZE);
    uint8_t *upload = malloc(SMALL_SIZE * 7);
    for (size_t i = 0; i < SMALL_SIZE * 7; i++) upload[i] = pattern(i + 3);
    uint8_t missing_buf[16];
    fasts3_op *op = NULL;

    CHECK(fasts3_submit_get_into(client, q, SL(g_bucket), SL("multi"), 0, multi, MULTI_SIZE, NULL, 1, &op, NULL) ==
              FASTS3_OK && op != NULL, "submit_get_into(multi) returns at once with an op");
    fasts3_op_free(op); /* does not cancel */
    CHECK(fasts3_submit_get(client, q, SL(g_bucket), SL("small"), 10, FASTS3_TO_END, NULL, 2, NULL, NULL) == FASTS3_OK,
          "submit_get(small from 10), no op handle wanted");
    CHECK(fasts3_submit_get_into(client, q, SL(g_bucket), SL("no/such/key"), 0, missing_buf, sizeof missing_buf,
                                 NULL, 3, NULL, NULL) == FASTS3_OK, "submit_get_into(missing key)");
    CHECK(fasts3_submit_put_from(client, q, SL(g_bucket), SL("async/put"), upload, SMALL_SIZE * 7, NULL, 4,
                                 NULL, NULL) == FASTS3_OK, "submit_put_from(async/put)");
    CHECK(fasts3_submit_get(client, q, SL(g_bucket), SL("empty"), 0, FASTS3_TO_END, NULL, 5, NULL, NULL) == FASTS3_OK,
          "submit_get(empty)");

    bool seen[6] = {false};
    for (int n = 0; n < 5; n++) {
        fasts3_completion *c = next_completion(q);
        if (!CHECK(c != NULL, "completion %d arrived", n + 1)) break;
        uint64_t ud = fasts3_completion_user_data(c);
        fasts3_status st = fasts3_completion_status(c);
        if (ud < 6) seen[ud] = true;
        switch (ud) {
        case 1:
            CHECK(st == FASTS3_OK && fasts3_completion_written(c) == MULTI_SIZE, "multi: OK, %u bytes written",
                  MULTI_SIZE);
            CHECK(pattern_mismatch(multi, MULTI_SIZE, 0) == -1, "multi: every byte is right");
            break;
        case 2: {
            fasts3_bytes *b = NULL, *again = NULL;
            CHECK(st == FASTS3_OK && fasts3_completion_written(c) == SMALL_SIZE - 10, "small: OK, 90 bytes");
            CHECK(fasts3_completion_take_bytes(c, &b, NULL) == FASTS3_OK && b != NULL, "small: take_bytes");
            CHECK(fasts3_completion_take_bytes(c, &again, NULL) == FASTS3_OK && again == NULL,
                  "small: a second take_bytes gives NULL");
            uint8_t *data = NULL;
            size_t len = 0;
            CHECK(fasts3_bytes_data(b, &data, &len, NULL) == FASTS3_OK && len == SMALL_SIZE - 10 &&
                      pattern_mismatch(data, len, 10) == -1, "small: the bytes are right");
            fasts3_bytes_free(b);
            break;
        }
        case 3:
            CHECK(st == FASTS3_NO_SUCH_KEY, "missing key: NO_SUCH_KEY (got %d)", (int)st);
            CHECK(strcmp(fasts3_completion_code(c), "NoSuchKey") == 0 && fasts3_completion_http_status(c) == 404,
                  "missing key: code %s, HTTP %u", fasts3_completion_code(c),
                  (unsigned)fasts3_completion_http_status(c));
            CHECK(strstr(fasts3_completion_message(c), "no/such/key") != NULL, "missing key: message names it: %s",
                  fasts3_completion_message(c));
            CHECK(fasts3_completion_written(c) == 0, "missing key: 0 written");
            break;
        case 4:
            CHECK(st == FASTS3_OK && fasts3_completion_written(c) == SMALL_SIZE * 7, "put: OK, 700 bytes");
            CHECK(fasts3_completion_message(c)[0] == '\0' && fasts3_completion_code(c)[0] == '\0',
                  "put: no message, no code on success");
            break;
        case 5: {
            fasts3_bytes *b = NULL;
            CHECK(st == FASTS3_OK && fasts3_completion_written(c) == 0, "empty: OK, 0 bytes");
            CHECK(fasts3_completion_take_bytes(c, &b, NULL) == FASTS3_OK && b != NULL, "empty: an (empty) result");
            fasts3_bytes_free(b);
            break;
        }
        default:
            CHECK(false, "unexpected user_data %llu", (unsigned long long)ud);
        }
        fasts3_completion_free(c);
    }
    CHECK(seen[1] && seen[2] && seen[3] && seen[4] && seen[5], "every op completed once");
    fasts3_completion *none = (fasts3_completion *)upload;
    CHECK(fasts3_completion_queue_pop(q, &none, NULL) == FASTS3_OK && none == NULL, "then pop gives NULL");
    CHECK(!fd_readable(fd, 0), "and the fd is no longer readable");

    /* The upload landed. */
    CHECK(fasts3_submit_get(client, q, SL(g_bucket), SL("async/put"), 0, FASTS3_TO_END, NULL, 6, NULL, NULL) == FASTS3_OK,
          "submit_get(async/put)");
    fasts3_completion *c = next_completion(q);
    if (CHECK(c != NULL && fasts3_completion_status(c) == FASTS3_OK, "async/put read back")) {
        fasts3_bytes *b = NULL;
        uint8_t *data = NULL;
        size_t len = 0;
        fasts3_completion_take_bytes(c, &b, NULL);
        CHECK(b != NULL && fasts3_bytes_data(b, &data, &len, NULL) == FASTS3_OK && len == SMALL_SIZE * 7 &&
                  pattern_mismatch(data, len, 3) == -1, "async/put holds the uploaded bytes");
        fasts3_bytes_free(b);
    }
    fasts3_completion_free(c);
    free(multi);
    free(upload);
    fasts3_completion_queue_free(q);
}

static void test_cancel_and_free(fasts3_client *client) {
    printf("# cancel, and freeing a queue with ops running\n");
    fasts3_completion_queue *q = NULL;
    fasts3_completion_queue_new(&q, NULL);
    uint8_t *buf = calloc(1, MULTI_SIZE);
    fasts3_op *op = NULL;
    CHECK(fasts3_submit_get_into(client, q, SL(g_bucket), SL("multi"), 0, buf, MULTI_SIZE, NULL, 42, &op, NULL) ==
              FASTS3_OK, "submit_get_into(multi)");
    fasts3_op_cancel(op);
    fasts3_op_cancel(op); /* twice is fine */
    fasts3_completion *c = next_completion(q);
    fasts3_status st = fasts3_completion_status(c);
    CHECK(c != NULL && fasts3_completion_user_data(c) == 42 && (st == FASTS3_CANCELLED || st == FASTS3_OK),
          "the cancelled op completes (CANCELLED, or OK if it won the race: %d)", (int)st);
    if (st == FASTS3_CANCELLED) CHECK(strstr(fasts3_completion_message(c), "cancel") != NULL, "message: %s",
                                      fasts3_completion_message(c));
    fasts3_completion_free(c);
    fasts3_op_cancel(op); /* after completion: nothing happens */
    fasts3_op_free(op);

    /* Free the queue while reads into these buffers run: it cancels them and returns only
     * once none writes any more. */
    enum { N = 6 };
    uint8_t *bufs[N];
    for (int i = 0; i < N; i++) {
        bufs[i] = calloc(1, MULTI_SIZE);
        fasts3_submit_get_into(client, q, SL(g_bucket), SL("multi"), 0, bufs[i], MULTI_SIZE, NULL, (uint64_t)i, NULL, NULL);
    }
    sleep_ms(5);
    fasts3_completion_queue_free(q);
    uint8_t *snap = malloc(MULTI_SIZE);
    bool unchanged = true;
    for (int i = 0; i < N; i++) {
        memcpy(snap, bufs[i], MULTI_SIZE);
        sleep_ms(20);
        unchanged = unchanged && memcmp(snap, bufs[i], MULTI_SIZE) == 0;
    }
    CHECK(unchanged, "no buffer changes after completion_queue_free returned");
    for (int i = 0; i < N; i++) free(bufs[i]);
    free(snap);
    free(buf);
}

static void test_arguments(fasts3_client *client) {
    printf("# arguments\n");
    fasts3_completion_queue *q = NULL;
    fasts3_completion_queue_new(&q, NULL);
    uint8_t b[4];
    fasts3_op *op = (fasts3_op *)b;
    CHECK(fasts3_completion_queue_new(NULL, NULL) == FASTS3_NULL_POINTER, "queue_new(NULL)");
    CHECK(fasts3_completion_queue_fd(NULL) == -1, "queue_fd(NULL) is -1");
    CHECK(fasts3_submit_get_into(client, NULL, SL(g_bucket), SL("small"), 0, b, 4, NULL, 0, &op, NULL) ==
              FASTS3_NULL_POINTER && op == (fasts3_op *)b, "submit with a NULL queue: NULL_POINTER, out_op untouched");
    CHECK(fasts3_submit_get_into(NULL, q, SL(g_bucket), SL("small"), 0, b, 4, NULL, 0, NULL, NULL) == FASTS3_NULL_POINTER,
          "submit with a NULL client");
    CHECK(fasts3_submit_get_into(client, q, SL(g_bucket), SL("small"), 0, NULL, 4, NULL, 0, NULL, NULL) ==
              FASTS3_NULL_POINTER, "submit_get_into with a NULL buf of length 4");
    CHECK(fasts3_submit_get_into(client, q, SL(g_bucket), (const uint8_t *)"\xff", 1, 0, b, 4, NULL, 0, NULL, NULL) ==
              FASTS3_INVALID_ARGUMENT, "submit with a key that is not UTF-8");
    CHECK(fasts3_submit_get_into(client, (const fasts3_completion_queue *)client, SL(g_bucket), SL("small"), 0, b, 4,
                                 NULL, 0, NULL, NULL) == FASTS3_INVALID_HANDLE, "submit to a client pointer as queue");
    CHECK(fasts3_submit_get(client, q, SL(g_bucket), SL("small"), (uint64_t)1 << 63, 1, NULL, 0, NULL, NULL) ==
              FASTS3_INVALID_ARGUMENT, "submit_get with an offset past 2^63");
    CHECK(fasts3_submit_put_from(client, q, SL(g_bucket), SL("x"), NULL, 3, NULL, 0, NULL, NULL) == FASTS3_NULL_POINTER,
          "submit_put_from with NULL data of length 3");
    CHECK(fasts3_completion_queue_pop(q, NULL, NULL) == FASTS3_NULL_POINTER, "pop(NULL out)");
    fasts3_completion *none = NULL;
    CHECK(fasts3_completion_queue_pop(q, &none, NULL) == FASTS3_OK && none == NULL,
          "nothing was queued by the refused submits");
    CHECK(fasts3_completion_status(NULL) == FASTS3_NULL_POINTER && fasts3_completion_user_data(NULL) == 0 &&
              fasts3_completion_written(NULL) == 0 && fasts3_completion_message(NULL)[0] == '\0' &&
              fasts3_completion_code(NULL)[0] == '\0' && fasts3_completion_http_status(NULL) == 0,
          "completion accessors accept NULL");
    fasts3_bytes *out = NULL;
    CHECK(fasts3_completion_take_bytes(NULL, &out, NULL) == FASTS3_NULL_POINTER, "take_bytes(NULL)");
    fasts3_completion_free(NULL);
    fasts3_op_free(NULL);
    fasts3_op_cancel(NULL);
    fasts3_completion_queue_free(NULL);
    CHECK(true, "the _free functions and op_cancel accept NULL");
    fasts3_completion_queue_free(q);
}

/* A failed completion hands over the same error object a blocking call gives (request id,
 * bucket and key included), once; its own accessors stay valid after that object is freed.
 * An upload's completion counts its parts as fasts3_put_from does. */
static void test_completion_error_object(fasts3_client *client) {
    printf("# the error object of a completion, and an upload's parts\n");
    fasts3_completion_queue *q = NULL;
    fasts3_completion_queue_new(&q, NULL);
    uint8_t buf[16];
    fasts3_error *sync_err = NULL;
    uint64_t written = 0;
    CHECK(fasts3_get_into(client, SL(g_bucket), SL("no/such/key"), 0, buf, sizeof buf, NULL, &written, &sync_err) ==
              FASTS3_NO_SUCH_KEY && sync_err != NULL, "blocking get_into(missing key) gives an error object");
    CHECK(sync_err != NULL && fasts3_last_error_request_id()[0] != '\0' &&
              strcmp(fasts3_last_error_request_id(), fasts3_error_request_id(sync_err)) == 0,
          "the thread's last error has its request id too (\"%s\")", fasts3_last_error_request_id());
    CHECK(fasts3_submit_get_into(client, q, SL(g_bucket), SL("no/such/key"), 0, buf, sizeof buf, NULL, 77, NULL,
                                 NULL) == FASTS3_OK, "submit_get_into(missing key)");
    fasts3_completion *c = next_completion(q);
    if (CHECK(c != NULL && fasts3_completion_status(c) == FASTS3_NO_SUCH_KEY, "its completion says NO_SUCH_KEY")) {
        const char *message = fasts3_completion_message(c);
        fasts3_error *e = fasts3_completion_take_error(c);
        if (CHECK(e != NULL, "completion_take_error gives the error object")) {
            CHECK(fasts3_error_status(e) == FASTS3_NO_SUCH_KEY && fasts3_error_http_status(e) == 404 &&
                      strcmp(fasts3_error_code(e), "NoSuchKey") == 0,
                  "status, HTTP 404, code %s", fasts3_error_code(e));
            CHECK(fasts3_error_request_id(e)[0] != '\0', "request id \"%s\"", fasts3_error_request_id(e));
            CHECK(strcmp(fasts3_error_bucket(e), g_bucket) == 0 && strcmp(fasts3_error_key(e), "no/such/key") == 0,
                  "bucket %s, key %s", fasts3_error_bucket(e), fasts3_error_key(e));
            CHECK(strcmp(fasts3_error_message(e), message) == 0, "the completion's message: %s", fasts3_error_message(e));
            if (sync_err != NULL) {
                CHECK(fasts3_error_status(e) == fasts3_error_status(sync_err) &&
                          fasts3_error_http_status(e) == fasts3_error_http_status(sync_err) &&
                          strcmp(fasts3_error_code(e), fasts3_error_code(sync_err)) == 0 &&
                          strcmp(fasts3_error_bucket(e), fasts3_error_bucket(sync_err)) == 0 &&
                          strcmp(fasts3_error_key(e), fasts3_error_key(sync_err)) == 0 &&
                          strcmp(fasts3_error_message(e), fasts3_error_message(sync_err)) == 0 &&
                          fasts3_error_request_id(sync_err)[0] != '\0',
                      "the same error as the blocking call's (message: %s)", fasts3_error_message(sync_err));
            }
        }
        CHECK(fasts3_completion_take_error(c) == NULL, "a second completion_take_error gives NULL");
        fasts3_error_free(e);
        /* The completion's strings are its own: still readable with the error freed (ASan
         * would report a use after free otherwise). */
        CHECK(strstr(message, "no/such/key") != NULL && strcmp(fasts3_completion_code(c), "NoSuchKey") == 0 &&
                  fasts3_completion_http_status(c) == 404, "the completion's accessors after the error is freed");
    }
    fasts3_completion_free(c);
    fasts3_error_free(sync_err);

    CHECK(fasts3_submit_get(client, q, SL(g_bucket), SL("small"), 0, FASTS3_TO_END, NULL, 78, NULL, NULL) == FASTS3_OK,
          "submit_get(small)");
    c = next_completion(q);
    CHECK(c != NULL && fasts3_completion_status(c) == FASTS3_OK && fasts3_completion_take_error(c) == NULL,
          "a successful completion has no error object");
    fasts3_completion_free(c);
    CHECK(fasts3_completion_take_error(NULL) == NULL, "completion_take_error(NULL) is NULL");

    /* 11 MiB in 5 MiB parts: 3 parts, as the blocking call counts them. */
    size_t big_len = 11u << 20;
    uint8_t *big = malloc(big_len);
    for (size_t i = 0; i < big_len; i++) big[i] = pattern(i);
    fasts3_put_options options = {0};
    options.struct_size = sizeof options;
    options.multipart_threshold = 5u << 20;
    options.part_size = 5u << 20;
    uint32_t sync_parts = 0;
    fasts3_status st = fasts3_put_from(client, SL(g_bucket), SL("async/multi-sync"), big, big_len, &options, NULL,
                                       &sync_parts, NULL);
    CHECK(st == FASTS3_OK && sync_parts == 3, "blocking put_from: 3 parts (got %u)", (unsigned)sync_parts);
    CHECK(fasts3_submit_put_from(client, q, SL(g_bucket), SL("async/multi"), big, big_len, &options, 79, NULL, NULL) ==
              FASTS3_OK, "submit_put_from(11 MiB, 5 MiB parts)");
    c = next_completion(q);
    CHECK(c != NULL && fasts3_completion_status(c) == FASTS3_OK && fasts3_completion_written(c) == big_len &&
              fasts3_completion_parts(c) == sync_parts,
          "its completion: OK, %zu bytes, %u parts", big_len, (unsigned)fasts3_completion_parts(c));
    fasts3_completion_free(c);
    CHECK(fasts3_submit_put_from(client, q, SL(g_bucket), SL("async/single"), big, 100, NULL, 80, NULL, NULL) ==
              FASTS3_OK, "submit_put_from(100 bytes)");
    c = next_completion(q);
    CHECK(c != NULL && fasts3_completion_status(c) == FASTS3_OK && fasts3_completion_parts(c) == 0,
          "a single PUT: 0 parts, as fasts3_put_from says");
    fasts3_completion_free(c);
    CHECK(fasts3_completion_parts(NULL) == 0, "completion_parts(NULL) is 0");
    free(big);
    fasts3_completion_queue_free(q);
}

int main(void) {
    g_bucket = env("FASTS3_TEST_BUCKET");
    fasts3_client *client = make_client();
    if (!CHECK(client != NULL, "client")) {
        printf("%d passed, %d failed\n", g_passed, g_failed);
        return 1;
    }
    test_submit_and_complete(client);
    test_cancel_and_free(client);
    test_arguments(client);
    test_completion_error_object(client);

    /* An op keeps its own reference to the client: free the client while one runs. */
    printf("# client freed while an op runs\n");
    fasts3_completion_queue *q = NULL;
    fasts3_completion_queue_new(&q, NULL);
    uint8_t *buf = calloc(1, MULTI_SIZE);
    CHECK(fasts3_submit_get_into(client, q, SL(g_bucket), SL("multi"), 0, buf, MULTI_SIZE, NULL, 9, NULL, NULL) == FASTS3_OK,
          "submit_get_into(multi)");
    fasts3_client_free(client);
    fasts3_completion *c = next_completion(q);
    CHECK(c != NULL && fasts3_completion_status(c) == FASTS3_OK && pattern_mismatch(buf, MULTI_SIZE, 0) == -1,
          "the op completes with the right bytes after its client was freed");
    fasts3_completion_free(c);
    fasts3_completion_queue_free(q);
    free(buf);

    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
