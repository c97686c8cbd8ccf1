"""quickstart.py: the pyfasts3 API in one page.

    python examples/quickstart.py BUCKET [PREFIX]

Endpoint, region and credentials come from the environment exactly as boto3 reads them
(AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE...).
"""
import sys

import numpy as np

import pyfasts3


def main() -> int:
    if len(sys.argv) not in (2, 3):
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    bucket = sys.argv[1]
    prefix = sys.argv[2] if len(sys.argv) == 3 else ""

    # Client() reads the environment; pass endpoint_url=..., part_size=... etc. to override.
    with pyfasts3.Client() as client:
        # List the keys under the prefix (all pages), and one level with a delimiter.
        keys = client.list_keys(f"{bucket}/{prefix}")
        print(f"{len(keys)} keys under s3://{bucket}/{prefix}")
        level = client.list_keys(f"{bucket}/{prefix}", delimiter="/")
        print(f"at this level: {level[:5]}{' ...' if len(level) > 5 else ''}")
        if not keys:
            return 0

        # HEAD: size, ETag, content type, last-modified.
        path = f"{bucket}/{keys[0]}"
        info = client.head(path)
        print(f"{path}: {info.size} bytes, etag {info.etag}, {info.content_type}, {info.last_modified}")

        # get_into: fill a buffer you own (any writable buffer: numpy, bytearray, mmap...).
        buf = np.empty(info.size, dtype=np.uint8)
        n = client.get_into(buf, path)
        print(f"get_into wrote {n} bytes; first bytes: {buf[:16].tobytes().hex(' ')}")

        # get: a new uint8 array holding a range of the object (or all of it).
        head16 = client.get(path, offset=0, length=16)
        assert head16.tobytes() == buf[:16].tobytes()

        # get_many: several whole objects concurrently, one array per path, in order.
        arrays = client.get_many([f"{bucket}/{k}" for k in keys[:8]])
        for key, arr in zip(keys, arrays):
            print(f"  {key}: {arr.nbytes} bytes")

        # Errors are exceptions carrying the S3 code and HTTP status.
        try:
            client.head(f"{bucket}/{prefix}no-such-key-for-the-quickstart")
        except pyfasts3.NoSuchKey as e:
            print(f"as expected: {type(e).__name__}: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
