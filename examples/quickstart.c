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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Print what went wrong in the last libfasts3 call of this thread. */
static int fail(const char *what, fasts3_status status) {
    /* Copy the message before the next libfasts3 call: the pointer is only valid until then. */
    char message[1024];
    snprintf(message, sizeof message, "%s", fasts3_last_error_message());
    const char *code = fasts3_last_error_code();
    fprintf(stderr, "%s failed (status %d%s%s): %s\n", what, (int)status, *code ? ", " : "", code, message);
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s BUCKET KEY\n", argv[0]);
        return 2;
    }
    const char *bucket = argv[1], *key = argv[2];
    if (fasts3_abi_version() != FASTS3_ABI_VERSION) {
        fprintf(stderr, "libfasts3 ABI %u, this program was built for %u\n",
                (unsigned)fasts3_abi_version(), (unsigned)FASTS3_ABI_VERSION);
        return 1;
    }

    /* A NULL config means "everything from the environment". To set options instead:
     * fasts3_config_new(&cfg); fasts3_config_set(cfg, "part_size", "8388608"); ... */
    fasts3_client *client = NULL;
    fasts3_status s = fasts3_client_new(NULL, &client);
    if (s != FASTS3_OK) return fail("fasts3_client_new", s);

    int rc = 1;
    uint8_t *buf = NULL;
    fasts3_object_page *page = NULL;

    /* HEAD: how big is it? */
    s = fasts3_head(client, (const uint8_t *)bucket, strlen(bucket), (const uint8_t *)key, strlen(key), NULL, &page);
    if (s != FASTS3_OK) { fail("fasts3_head", s); goto done; }
    fasts3_object_page_view info;
    fasts3_object_page_get_view(page, &info);
    uint64_t size = info.sizes[0];
    printf("s3://%s/%s: %" PRIu64 " bytes, ETag %s, Content-Type %s\n", bucket, key, size,
           (const char *)info.etags.data + info.etags.offsets[0],
           (const char *)info.content_types.data + info.content_types.offsets[0]);

    /* Read the whole object into a buffer we own, with parallel ranged GETs. */
    if (size > SIZE_MAX) { fprintf(stderr, "object too large for this machine\n"); goto done; }
    buf = malloc(size ? (size_t)size : 1);
    if (buf == NULL) { fprintf(stderr, "cannot allocate %" PRIu64 " bytes\n", size); goto done; }
    uint64_t written = 0;
    s = fasts3_get_into(client, (const uint8_t *)bucket, strlen(bucket), (const uint8_t *)key, strlen(key),
                        0, buf, (size_t)size, NULL, &written);
    if (s != FASTS3_OK) { fail("fasts3_get_into", s); goto done; }

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
