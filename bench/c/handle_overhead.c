/*
 * What a handle check costs at the C ABI: ns per call of exports that do (almost) nothing
 * but look up their handles, single-threaded and with many threads sharing one client.
 * No server is needed (no request is sent).
 *
 *   gcc -O2 -I include bench/c/handle_overhead.c -o /tmp/handle_overhead \
 *       -L pyfasts3 -Wl,-rpath,$PWD/pyfasts3 -lfasts3 -pthread
 *   /tmp/handle_overhead [threads]      (default 64)
 *
 * Measured calls:
 *   get_many(client, NULL, 0)    client lookup + the panic boundary, nothing else
 *   get_many(client, 0, token)   ... plus a cancel-token lookup
 *   token_new + token_free       a handle's registration and removal
 *   get_into(cancelled watching token)  a call that ends at once: the SIGINT watch's install
 *                                and restore (the Python main thread's per-call path) plus
 *                                entering the calling thread's runtime
 */
#define _POSIX_C_SOURCE 200809L
#include "fasts3.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static fasts3_client *g_client;
static fasts3_cancel_token *g_token, *g_watching_cancelled;
enum { CALLS = 2000000 };

static void *empty_batches(void *arg) {
    long calls = (long)(size_t)arg;
    for (long i = 0; i < calls; i++) {
        if (fasts3_get_many(g_client, NULL, 0, NULL, NULL, NULL) != FASTS3_OK) abort();
    }
    return NULL;
}

/* The best of 5 runs: the machine is shared, the minimum is the least disturbed. */
static double per_call(const char *what, long calls, void (*body)(long)) {
    double best = 1e30;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now();
        body(calls);
        double ns = (now() - t0) * 1e9 / (double)calls;
        if (ns < best) best = ns;
    }
    printf("%-44s %7.1f ns/call (best of 5)\n", what, best);
    return best;
}

static void run_empty(long calls) { empty_batches((void *)(size_t)calls); }

static void run_with_token(long calls) {
    for (long i = 0; i < calls; i++) {
        if (fasts3_get_many(g_client, NULL, 0, g_token, NULL, NULL) != FASTS3_OK) abort();
    }
}

static void run_token_lifecycle(long calls) {
    for (long i = 0; i < calls; i++) {
        fasts3_cancel_token *t = NULL;
        if (fasts3_cancel_token_new(&t, NULL) != FASTS3_OK) abort();
        fasts3_cancel_token_free(t);
    }
}

static void run_watched_cancelled(long calls) {
    uint8_t buf[16];
    uint64_t written;
    for (long i = 0; i < calls; i++) {
        if (fasts3_get_into(g_client, (const uint8_t *)"b", 1, (const uint8_t *)"k", 1, 0, buf, sizeof buf,
                            g_watching_cancelled, &written, NULL) != FASTS3_CANCELLED) abort();
    }
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 64;
    fasts3_config *config = NULL;
    if (fasts3_config_new(&config, NULL) != FASTS3_OK) return 1;
    fasts3_config_set(config, "endpoint_url", "http://127.0.0.1:9", NULL);
    fasts3_config_set(config, "region", "us-east-1", NULL);
    fasts3_config_set(config, "anonymous", "true", NULL);
    if (fasts3_client_new(config, &g_client, NULL) != FASTS3_OK) {
        fprintf(stderr, "client_new: %s\n", fasts3_last_error_message());
        return 1;
    }
    fasts3_config_free(config);
    if (fasts3_cancel_token_new(&g_token, NULL) != FASTS3_OK) return 1;
    if (fasts3_cancel_token_new(&g_watching_cancelled, NULL) != FASTS3_OK) return 1;
    fasts3_cancel_token_watch_sigint(g_watching_cancelled);
    fasts3_cancel_token_cancel(g_watching_cancelled);

    per_call("get_many(client, count 0), 1 thread", CALLS, run_empty);
    per_call("get_many(client, count 0, token), 1 thread", CALLS, run_with_token);
    per_call("cancel_token_new + cancel_token_free", CALLS, run_token_lifecycle);
    per_call("get_into(cancelled SIGINT-watching token)", CALLS / 10, run_watched_cancelled);

    pthread_t *tid = malloc(sizeof *tid * (size_t)threads);
    long each = CALLS / threads;
    double best = 1e30;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now();
        for (int i = 0; i < threads; i++) pthread_create(&tid[i], NULL, empty_batches, (void *)(size_t)each);
        for (int i = 0; i < threads; i++) pthread_join(tid[i], NULL);
        double wall = (now() - t0) * 1e9 / (double)(each * threads);
        if (wall < best) best = wall;
    }
    printf("%-44s %7.1f ns/call (wall / total calls, best of 5)\n", "get_many(shared client), threads", best);
    printf("(%d threads sharing one client)\n", threads);
    free(tid);
    fasts3_cancel_token_free(g_token);
    fasts3_cancel_token_free(g_watching_cancelled);
    fasts3_client_free(g_client);
    return 0;
}
