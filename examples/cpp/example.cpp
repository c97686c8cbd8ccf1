/*
 * example.cpp: libfasts3 from C++17, with RAII handles and exceptions.
 *
 *   g++ -std=c++17 -Wall -I include examples/cpp/example.cpp -o fasts3-cpp-example \
 *       -L pyfasts3 -Wl,-rpath,"$PWD/pyfasts3" -lfasts3
 *   ./fasts3-cpp-example BUCKET PREFIX
 *
 * Endpoint, region and credentials come from the environment as for the AWS SDKs
 * (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...). PREFIX + "seed.bin" must exist and hold
 * pattern(size, 0) (see below; tests/test_embedding.py uploads it). The program reads it whole
 * and in ranges, writes two objects (one buffer with fasts3_put_from, one streamed in parts),
 * reads them back, lists PREFIX, and shows one failure with its error fields. Every byte read is
 * checked: any wrong byte or unexpected error prints "FAILED: ..." and exits with status 1.
 */
#include "fasts3.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace fasts3 {

// One failed call, built from the fasts3_error the call handed back (which it then frees).
class Error : public std::runtime_error {
public:
    explicit Error(fasts3_error *err)
        : std::runtime_error(std::string(fasts3_status_name(fasts3_error_status(err))) + ": " +
                             fasts3_error_message(err)),
          status(fasts3_error_status(err)), code(fasts3_error_code(err)),
          http_status(fasts3_error_http_status(err)), request_id(fasts3_error_request_id(err)),
          bucket(fasts3_error_bucket(err)), key(fasts3_error_key(err)) {
        fasts3_error_free(err);
    }
    fasts3_status status;
    std::string code;
    unsigned http_status;
    std::string request_id, bucket, key;
};

// Every fallible call ends with `fasts3_error **`: on failure it holds a new error we own.
// `err` is taken by reference, so it is read after the call in `check(call(..., &err), err)`
// has run (the order in which arguments are evaluated is unspecified).
inline void check(fasts3_status status, fasts3_error *const &err) {
    if (status != FASTS3_OK) throw Error(err);
}

// Owning handles: the matching _free function runs when the handle goes out of scope.
template <typename T, void (*Free)(T *)>
struct Deleter {
    void operator()(T *p) const { Free(p); }
};
using ClientPtr = std::unique_ptr<fasts3_client, Deleter<fasts3_client, fasts3_client_free>>;
using PagePtr = std::unique_ptr<fasts3_object_page, Deleter<fasts3_object_page, fasts3_object_page_free>>;
using UploadPtr = std::unique_ptr<fasts3_upload, Deleter<fasts3_upload, fasts3_upload_free>>;

inline const uint8_t *bytes(const std::string &s) { return reinterpret_cast<const uint8_t *>(s.data()); }

// String `i` of a packed string array of a page view.
inline std::string at(const fasts3_strings &s, size_t i) {
    return std::string(reinterpret_cast<const char *>(s.data) + s.offsets[i], s.offsets[i + 1] - s.offsets[i] - 1);
}

struct Object {
    std::string key;
    uint64_t size;
};

class Client {
public:
    // A client configured from the environment (a NULL config).
    Client() {
        fasts3_client *raw = nullptr;
        fasts3_error *err = nullptr;
        check(fasts3_client_new(nullptr, &raw, &err), err);
        client_.reset(raw);
    }

    // Fill `buf` from `offset` of the object; returns the number of bytes written.
    uint64_t get_into(const std::string &bucket, const std::string &key, uint64_t offset, std::vector<uint8_t> &buf) {
        uint64_t written = 0;
        fasts3_error *err = nullptr;
        check(fasts3_get_into(client_.get(), bytes(bucket), bucket.size(), bytes(key), key.size(), offset, buf.data(),
                              buf.size(), nullptr, &written, &err),
              err);
        return written;
    }

    // Read `ranges` of one object (one version of it), packed one after another into `buf`.
    std::vector<uint64_t> get_ranges(const std::string &bucket, const std::string &key,
                                     const std::vector<fasts3_range> &ranges, std::vector<uint8_t> &buf) {
        std::vector<uint64_t> lengths(ranges.size());
        fasts3_error *err = nullptr;
        check(fasts3_get_ranges(client_.get(), bytes(bucket), bucket.size(), bytes(key), key.size(), ranges.data(),
                                ranges.size(), FASTS3_DEFAULT_MAX_GAP, buf.data(), buf.size(), nullptr, nullptr,
                                lengths.data(), &err),
              err);
        return lengths;
    }

    // Upload `data` (straight from this buffer); returns the number of parts, 0 for one PUT.
    uint32_t put_from(const std::string &bucket, const std::string &key, const std::vector<uint8_t> &data,
                      const fasts3_put_options *options = nullptr) {
        uint32_t parts = 0;
        fasts3_error *err = nullptr;
        check(fasts3_put_from(client_.get(), bytes(bucket), bucket.size(), bytes(key), key.size(), data.data(),
                              data.size(), options, nullptr, &parts, &err),
              err);
        return parts;
    }

    // Start a streamed upload: write parts, then finish. Destroyed unfinished, it is aborted.
    UploadPtr upload(const std::string &bucket, const std::string &key) {
        fasts3_upload *raw = nullptr;
        fasts3_error *err = nullptr;
        check(fasts3_upload_begin(client_.get(), bytes(bucket), bucket.size(), bytes(key), key.size(), nullptr,
                                  nullptr, &raw, &err),
              err);
        return UploadPtr(raw);
    }

    std::vector<Object> list(const std::string &bucket, const std::string &prefix) {
        fasts3_object_page *raw = nullptr;
        fasts3_error *err = nullptr;
        check(fasts3_list_all(client_.get(), bytes(bucket), bucket.size(), bytes(prefix), prefix.size(), nullptr,
                              false, nullptr, &raw, &err),
              err);
        PagePtr page(raw);
        fasts3_object_page_view view{};
        check(fasts3_object_page_get_view(page.get(), &view, &err), err);
        std::vector<Object> objects;
        for (size_t i = 0; i < view.count; i++) objects.push_back({at(view.keys, i), view.sizes[i]});
        return objects;
    }

private:
    ClientPtr client_;
};

inline void write_part(fasts3_upload *upload, const uint8_t *data, size_t len) {
    fasts3_error *err = nullptr;
    check(fasts3_upload_write_part(upload, data, len, nullptr, &err), err);
}

inline uint32_t finish(fasts3_upload *upload) {
    uint32_t parts = 0;
    fasts3_error *err = nullptr;
    check(fasts3_upload_finish(upload, nullptr, &parts, &err), err);
    return parts;
}

}  // namespace fasts3

// The test data: byte `i` of an object written with `salt`. Not periodic, so a block
// delivered at the wrong offset shows. tests/test_embedding.py and examples/go use the same.
static uint8_t pattern_byte(uint64_t i, uint64_t salt) {
    return static_cast<uint8_t>((i * 0x9E3779B97F4A7C15ull + salt * 0xBF58476D1CE4E5B9ull) >> 56);
}

static std::vector<uint8_t> pattern(size_t size, uint64_t salt) {
    std::vector<uint8_t> data(size);
    for (size_t i = 0; i < size; i++) data[i] = pattern_byte(i, salt);
    return data;
}

// Throw unless `got[0..len)` holds bytes `[offset, offset + len)` of the object of `salt`.
static void expect_bytes(const char *what, const uint8_t *got, uint64_t len, uint64_t offset, uint64_t salt) {
    for (uint64_t i = 0; i < len; i++)
        if (got[i] != pattern_byte(offset + i, salt))
            throw std::runtime_error(std::string(what) + ": wrong byte at offset " + std::to_string(offset + i) +
                                     ": got " + std::to_string(got[i]) + ", expected " +
                                     std::to_string(pattern_byte(offset + i, salt)));
}

static void expect(bool ok, const std::string &what) {
    if (!ok) throw std::runtime_error(what);
}

// Read `key` whole (its size known) and check every byte.
static void read_back(fasts3::Client &client, const std::string &bucket, const std::string &key, uint64_t size,
                      uint64_t salt) {
    std::vector<uint8_t> buf(size);
    uint64_t written = client.get_into(bucket, key, 0, buf);
    expect(written == size, key + ": read " + std::to_string(written) + " bytes of " + std::to_string(size));
    expect_bytes(key.c_str(), buf.data(), written, 0, salt);
}

static void run(const std::string &bucket, const std::string &prefix) {
    const uint64_t MiB = 1 << 20;
    fasts3::Client client;

    // List the prefix: the seed object and its size.
    uint64_t seed_size = 0;
    bool found = false;
    for (const auto &object : client.list(bucket, prefix))
        if (object.key == prefix + "seed.bin") seed_size = object.size, found = true;
    expect(found, "no " + prefix + "seed.bin in the listing");

    // Read it whole into our own buffer.
    read_back(client, bucket, prefix + "seed.bin", seed_size, 0);
    std::printf("get_into: %llu bytes of seed.bin verified\n", (unsigned long long)seed_size);

    // Read ranges of it into one buffer: two close ones (one request), a far one, the last 100 bytes.
    std::vector<fasts3_range> ranges = {{0, 1000}, {5000, 3000}, {int64_t(seed_size / 2), 65536}, {-100, 100}};
    std::vector<uint8_t> packed(1000 + 3000 + 65536 + 100);
    std::vector<uint64_t> lengths = client.get_ranges(bucket, prefix + "seed.bin", ranges, packed);
    uint64_t at = 0;
    for (size_t i = 0; i < ranges.size(); i++) {
        uint64_t start = ranges[i].offset >= 0 ? uint64_t(ranges[i].offset) : seed_size - ranges[i].length;
        expect(lengths[i] == ranges[i].length, "range " + std::to_string(i) + " came back short");
        expect_bytes("get_ranges", packed.data() + at, lengths[i], start, 0);
        at += ranges[i].length;
    }
    std::printf("get_ranges: %zu ranges verified\n", ranges.size());

    // Write a buffer: above the multipart threshold it goes as parts sent straight from it.
    fasts3_put_options options{};
    options.struct_size = sizeof options;
    options.content_type = "application/octet-stream";
    options.multipart_threshold = 8 * MiB;
    options.part_size = 5 * MiB;
    const uint64_t put_size = 12 * MiB + 7;
    uint32_t parts = client.put_from(bucket, prefix + "cpp/put.bin", pattern(put_size, 1), &options);
    expect(parts == 3, "put_from sent " + std::to_string(parts) + " parts, expected 3");
    read_back(client, bucket, prefix + "cpp/put.bin", put_size, 1);
    std::printf("put_from: %llu bytes in %u parts, read back and verified\n", (unsigned long long)put_size, parts);

    // Stream an object of unknown size: each part is copied, so the buffer is reused at once.
    const uint64_t stream_size = 5 * MiB + 100000;
    std::vector<uint8_t> whole = pattern(stream_size, 2), chunk;
    fasts3::UploadPtr upload = client.upload(bucket, prefix + "cpp/stream.bin");
    for (uint64_t offset = 0; offset < stream_size; offset += 5 * MiB) {
        chunk.assign(whole.begin() + offset, whole.begin() + std::min(stream_size, offset + 5 * MiB));
        fasts3::write_part(upload.get(), chunk.data(), chunk.size());
        chunk.assign(chunk.size(), 0xEE);  // the library copied the part: overwriting it is fine
    }
    parts = fasts3::finish(upload.get());
    expect(parts == 2, "the streamed upload has " + std::to_string(parts) + " parts, expected 2");
    read_back(client, bucket, prefix + "cpp/stream.bin", stream_size, 2);
    std::printf("upload: %llu bytes streamed in %u parts, read back and verified\n",
                (unsigned long long)stream_size, parts);

    // List what we wrote.
    std::map<std::string, uint64_t> listed;
    for (const auto &object : client.list(bucket, prefix + "cpp/")) listed[object.key] = object.size;
    std::map<std::string, uint64_t> wanted = {{prefix + "cpp/put.bin", put_size}, {prefix + "cpp/stream.bin", stream_size}};
    expect(listed == wanted, "listing " + prefix + "cpp/ does not show the two objects written");
    std::printf("list: %zu objects under %scpp/ with the sizes written\n", listed.size(), prefix.c_str());

    // A failure: every field of the error object, as an exception.
    try {
        std::vector<uint8_t> buf(10);
        client.get_into(bucket, prefix + "no-such-key", 0, buf);
        expect(false, "reading a missing key succeeded");
    } catch (const fasts3::Error &e) {
        std::printf("expected failure: %s; status %s, code %s, HTTP %u, request id '%s', bucket %s, key %s\n",
                    e.what(), fasts3_status_name(e.status), e.code.c_str(), e.http_status, e.request_id.c_str(),
                    e.bucket.c_str(), e.key.c_str());
        expect(e.status == FASTS3_NO_SUCH_KEY && e.http_status == 404 && e.bucket == bucket &&
                   e.key == prefix + "no-such-key",
               "the missing key's error has the wrong fields");
    }
}

// The library must have the header's major ABI version and at least its minor version.
static bool abi_compatible(uint32_t want_major, uint32_t want_minor) {
    return fasts3_abi_version() == want_major && fasts3_abi_minor_version() >= want_minor;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s BUCKET PREFIX\n", argv[0]);
        return 2;
    }
    if (!abi_compatible(FASTS3_ABI_VERSION, FASTS3_ABI_MINOR_VERSION)) {
        std::fprintf(stderr, "FAILED: libfasts3 %s has ABI %u.%u, built for %u.%u\n", fasts3_version(),
                     unsigned(fasts3_abi_version()), unsigned(fasts3_abi_minor_version()), unsigned(FASTS3_ABI_VERSION),
                     unsigned(FASTS3_ABI_MINOR_VERSION));
        return 1;
    }
    try {
        run(argv[1], argv[2]);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "FAILED: %s\n", e.what());
        return 1;
    }
    std::printf("OK: all checks passed\n");
    return 0;
}
