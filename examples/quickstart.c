/*
 * quickstart.c: libfasts3 in one page. Reads one S3 object into your own buffer, then writes
 * a small object of its own, reads two byte ranges of it, lists its prefix and deletes it.
 *
 *   gcc -std=c11 -Wall -I include examples/quickstart.c -o quickstart \
 *       -L pyfasts3 -Wl,-rpath,"$PWD/pyfasts3" -lfasts3
 *   AWS_ENDPOINT_URL=http://127.0.0.1:9000 AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... \
 *       ./quickstart my-bucket path/to/object
 *
 * Endpoint, region and credentials come from the environment exactly as the AWS SDKs read
 * them (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_PROFILE, ~/.aws/...). The object
 * it writes is fasts3-quickstart-<pid>/hello.txt in the same bucket, created only if no such
 * key exists, and deleted before it exits.
 */
#define _POSIX_C_SOURCE 200809L /* getpid */

#include "fasts3.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A (ptr, len) argument pair from a C string: keys and buckets are passed that way. */
#define SL(s) (const uint8_t *)(s), strlen(s)

/* Print what went wrong, from the error object the failed call handed back, and free it.
 * (NULL may be passed for `err` by callers that do not want one: every fallible call takes
 * it last.) */
static int fail(const char *what, fasts3_error *err) {
    const char *code = fasts3_error_code(err), *request_id = fasts3_error_request_id(err);
    fprintf(stderr, "%s failed: %s%s%s: %s%s%s\n", what, fasts3_status_name(fasts3_error_status(err)),
            *code ? ", " : "", code, fasts3_error_message(err), *request_id ? ", request id " : "", request_id);
    fasts3_error_free(err);
    return 1;
}

/* The library must have the major ABI version of the header this program was built with,
 * and at least its minor version (minor versions only add). */
static bool abi_compatible(uint32_t want_major, uint32_t want_minor) {
    return fasts3_abi_version() == want_major && fasts3_abi_minor_version() >= want_minor;
}

/* String `i` of a page's packed string table. */
static const char *string_at(fasts3_strings s, size_t i) { return (const char *)s.data + s.offsets[i]; }

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s BUCKET KEY\n", argv[0]);
        return 2;
    }
    const char *bucket = argv[1], *key = argv[2];
    if (!abi_compatible(FASTS3_ABI_VERSION, FASTS3_ABI_MINOR_VERSION)) {
        fprintf(stderr, "libfasts3 %s has ABI %u.%u, this program was built for %u.%u\n", fasts3_version(),
                (unsigned)fasts3_abi_version(), (unsigned)fasts3_abi_minor_version(),
                (unsigned)FASTS3_ABI_VERSION, (unsigned)FASTS3_ABI_MINOR_VERSION);
        return 1;
    }

    /* A NULL config means "everything from the environment". To set options instead:
     * fasts3_config_new(&cfg, NULL); fasts3_config_set(cfg, "part_size", "8388608", NULL); ... */
    fasts3_client *client = NULL;
    fasts3_error *err = NULL;
    if (fasts3_client_new(NULL, &client, &err) != FASTS3_OK) return fail("fasts3_client_new", err);

    int rc = 1;
    uint8_t *buf = NULL;
    fasts3_object_page *page = NULL, *listing = NULL;
    char prefix[64], new_key[96];
    snprintf(prefix, sizeof prefix, "fasts3-quickstart-%ld/", (long)getpid());
    snprintf(new_key, sizeof new_key, "%shello.txt", prefix);
    bool written = false;

    /* HEAD: how big is it? */
    fasts3_object_page_view info;
    if (fasts3_head(client, SL(bucket), SL(key), NULL, &page, &err) != FASTS3_OK) {
        fail("fasts3_head", err);
        goto done;
    }
    if (fasts3_object_page_get_view(page, &info, &err) != FASTS3_OK) {
        fail("fasts3_object_page_get_view", err);
        goto done;
    }
    uint64_t size = info.sizes[0];
    printf("s3://%s/%s: %" PRIu64 " bytes, ETag %s, Content-Type %s\n", bucket, key, size,
           string_at(info.etags, 0), string_at(info.content_types, 0));

    /* Read the whole object into a buffer we own, with parallel ranged GETs. */
    if (size > SIZE_MAX) { fprintf(stderr, "object too large for this machine\n"); goto done; }
    buf = malloc(size ? (size_t)size : 1);
    if (buf == NULL) { fprintf(stderr, "cannot allocate %" PRIu64 " bytes\n", size); goto done; }
    uint64_t got = 0;
    if (fasts3_get_into(client, SL(bucket), SL(key), 0, buf, (size_t)size, NULL, &got, &err) != FASTS3_OK) {
        fail("fasts3_get_into", err);
        goto done;
    }
    printf("read %" PRIu64 " bytes; first bytes:", got);
    for (uint64_t i = 0; i < got && i < 16; i++) printf(" %02x", buf[i]);
    printf("\n");

    /* Write an object from a buffer we own: one PUT here; a large buffer is sent as parallel
     * parts straight from it. `if_none_match`: create only, never overwrite. */
    const char *text = "Hello from the libfasts3 C quickstart";
    fasts3_put_options put = {0};
    put.struct_size = sizeof put;
    put.content_type = "text/plain";
    put.if_none_match = 1;
    uint32_t parts = 0;
    if (fasts3_put_from(client, SL(bucket), SL(new_key), (const uint8_t *)text, strlen(text), &put, NULL, &parts,
                        &err) != FASTS3_OK) {
        fail("fasts3_put_from", err);
        goto done;
    }
    written = true;
    printf("wrote s3://%s/%s: %zu bytes, %" PRIu32 " parts (0: a single PUT)\n", bucket, new_key, strlen(text), parts);

    /* Two byte ranges of it in one call, packed into one buffer: the first 5 bytes and the
     * last 10 (a negative offset counts from the end). All come from one version of it. */
    fasts3_range ranges[2] = {{0, 5}, {-10, 10}};
    uint8_t packed[15];
    uint64_t lengths[2] = {0, 0};
    if (fasts3_get_ranges(client, SL(bucket), SL(new_key), ranges, 2, FASTS3_DEFAULT_MAX_GAP, packed, sizeof packed,
                          NULL, NULL, lengths, &err) != FASTS3_OK) {
        fail("fasts3_get_ranges", err);
        goto done;
    }
    printf("ranges: \"%.*s\" \"%.*s\"\n", (int)lengths[0], (const char *)packed, (int)lengths[1],
           (const char *)packed + ranges[0].length);

    /* List the prefix, all pages into one (fasts3_list_cursor_new/_next go page by page). */
    fasts3_object_page_view list;
    if (fasts3_list_all(client, SL(bucket), SL(prefix), NULL, false, NULL, &listing, &err) != FASTS3_OK) {
        fail("fasts3_list_all", err);
        goto done;
    }
    if (fasts3_object_page_get_view(listing, &list, &err) != FASTS3_OK) {
        fail("fasts3_object_page_get_view", err);
        goto done;
    }
    printf("listed s3://%s/%s: %zu object%s\n", bucket, prefix, list.count, list.count == 1 ? "" : "s");
    for (size_t i = 0; i < list.count; i++) printf("  %s %" PRIu64 " bytes\n", string_at(list.keys, i), list.sizes[i]);

    /* Delete what we wrote. */
    if (fasts3_delete(client, SL(bucket), SL(new_key), NULL, &err) != FASTS3_OK) {
        fail("fasts3_delete", err);
        goto done;
    }
    written = false;
    printf("deleted s3://%s/%s\n", bucket, new_key);
    rc = 0;

done:
    /* After a failure, still remove the object this program created. */
    if (written && fasts3_delete(client, SL(bucket), SL(new_key), NULL, &err) != FASTS3_OK) fail("fasts3_delete", err);
    free(buf);
    fasts3_object_page_free(listing); /* every *_free accepts NULL */
    fasts3_object_page_free(page);
    fasts3_client_free(client);
    return rc;
}
