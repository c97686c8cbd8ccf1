/*
 * quickstart.c: read one S3 object into your own buffer with libfasts3.
 *
 *   gcc -std=c11 -Wall -I include examples/quickstart.c -o quickstart \
 *       -L pyfasts3 -Wl,-rpath,"$PWD/pyfasts3" -lfasts3
 *   AWS_ENDPOINT_URL=http://127.0.0.1:9000 AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... \
 *       ./quickstart my-bucket path/to/object
 *
 * Endpoint, region and credentials come from the environment exactly as the AWS SDKs read
 * them (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_PROFILE, ~/.aws/...).
 */
#include "fasts3.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    fasts3_object_page *page = NULL;

    /* HEAD: how big is it? */
    if (fasts3_head(client, (const uint8_t *)bucket, strlen(bucket), (const uint8_t *)key, strlen(key), NULL, &page,
                    &err) != FASTS3_OK) {
        fail("fasts3_head", err);
        goto done;
    }
    fasts3_object_page_view info;
    fasts3_object_page_get_view(page, &info, NULL);
    uint64_t size = info.sizes[0];
    printf("s3://%s/%s: %" PRIu64 " bytes, ETag %s, Content-Type %s\n", bucket, key, size,
           (const char *)info.etags.data + info.etags.offsets[0],
           (const char *)info.content_types.data + info.content_types.offsets[0]);

    /* Read the whole object into a buffer we own, with parallel ranged GETs. */
    if (size > SIZE_MAX) { fprintf(stderr, "object too large for this machine\n"); goto done; }
    buf = malloc(size ? (size_t)size : 1);
    if (buf == NULL) { fprintf(stderr, "cannot allocate %" PRIu64 " bytes\n", size); goto done; }
    uint64_t written = 0;
    if (fasts3_get_into(client, (const uint8_t *)bucket, strlen(bucket), (const uint8_t *)key, strlen(key), 0, buf,
                        (size_t)size, NULL, &written, &err) != FASTS3_OK) {
        fail("fasts3_get_into", err);
        goto done;
    }

    printf("read %" PRIu64 " bytes; first bytes:", written);
    for (uint64_t i = 0; i < written && i < 16; i++) printf(" %02x", buf[i]);
    printf("\n");
    rc = 0;

done:
    free(buf);
    fasts3_object_page_free(page); /* every *_free accepts NULL */
    fasts3_client_free(client);
    return rc;
}
