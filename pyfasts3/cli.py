"""The ``pyfasts3`` command line (also ``python -m pyfasts3``): commands shaped like
``aws s3``'s.

    pyfasts3 ls [-r] [--json] [--human-readable] [--summarize] s3://bucket[/prefix]
    pyfasts3 head s3://bucket/key          object metadata as JSON
    pyfasts3 cat s3://bucket/key           object bytes to stdout
    pyfasts3 cp [-r] s3://bucket/key-or-prefix LOCAL   (LOCAL "-" = stdout)
    pyfasts3 cp [-r] LOCAL s3://bucket/key-or-prefix   upload (parallel with -r)
    pyfasts3 cp [-r] s3://... s3://...                 server-side copy
    pyfasts3 rm [-r] s3://bucket/key-or-prefix

Client options: ``--endpoint-url``, ``--region``, ``--profile``, ``--no-sign-request``; else
the AWS environment (AWS_ENDPOINT_URL, AWS_REGION, AWS_PROFILE, keys, config files...).

Downloads land in a temporary file beside the target (``.NAME.RANDOM.pyfasts3-part``),
renamed over it only when complete: an interrupted copy never leaves a torn file. Uploads
read the local file through a memory map (large files go up as a parallel multipart upload,
aborted on failure, so an interrupted upload never leaves a partial object). Large
objects are read with parallel ranged GETs straight into a memory map of that file; many
small ones are fetched concurrently in batches (``get_many``). A progress bar (tqdm) is shown
when stderr is a terminal.

Exit codes as ``aws s3``: 0 success; 1 an S3 or local error (missing key or bucket, denied,
nothing listed, a failed transfer or delete; message on stderr); 2 usage errors and ``mv``
(not available yet); 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Iterable, List, Optional, Sequence, Tuple

from ._paths import split_object, split_prefix
from .client import Client
from .errors import S3Error

#: Objects at least this large are downloaded one at a time, in parallel parts, into a
#: memory-mapped file; smaller ones are fetched concurrently with get_many.
LARGE_OBJECT = 8 << 20
#: get_many batch limits (objects, bytes).
BATCH_OBJECTS = 64
BATCH_BYTES = 64 << 20

#: Files uploaded (and objects copied) at once by ``cp -r``; each large one is itself split
#: into parallel parts within the client's concurrency budget.
TRANSFER_WORKERS = 16

NOT_AVAILABLE = "is not available yet in pyfasts3 (use cp, then rm)"


class UsageError(Exception):
    """A command line that cannot be run as given (exit 2)."""


def human_size(n: int) -> str:
    """Sizes as ``aws s3 ls --human-readable`` prints them: "12 Bytes", "1.5 KiB"..."""
    if n < 1024:
        return f"{n} Byte" if n == 1 else f"{n} Bytes"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        value /= 1024
        if value < 1024 or unit == "PiB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def _s3_url(bucket: str, key: str = "") -> str:
    return f"s3://{bucket}/{key}"


def _is_s3(path: str) -> bool:
    return path.startswith("s3://")


def _local_time(dt: Optional[datetime]) -> str:
    return dt.astimezone().strftime("%Y-%m-%d %H:%M:%S") if dt else " " * 19


# -- commands -------------------------------------------------------------------------


def cmd_ls(client: Client, args) -> int:
    if not args.path:
        raise UsageError("listing buckets is not available in pyfasts3 yet: give s3://bucket[/prefix]")
    bucket, prefix = split_prefix(args.path)
    out = sys.stdout
    count = total = prefixes = 0
    # aws s3 ls shows names relative to the "directory" part of the prefix.
    base = prefix[: prefix.rfind("/") + 1]
    if args.recursive:
        entries: Iterable[Tuple[str, Any]] = (("obj", info) for info in client.list_objects(
            f"{bucket}/{prefix}", parallel=True))
    else:
        entries = _level(client, bucket, prefix)
    for kind, item in entries:
        if kind == "pre":
            if args.json:
                out.write(json.dumps({"type": "prefix", "prefix": item, "path": _s3_url(bucket, item)}) + "\n")
            else:
                out.write(f"{'PRE':>30} {item[len(base):]}\n")
            prefixes += 1
            continue
        count += 1
        total += item.size
        if args.json:
            out.write(json.dumps({
                "type": "object", "key": item.key, "path": _s3_url(bucket, item.key), "size": item.size,
                "last_modified": item.last_modified.isoformat() if item.last_modified else None,
                "etag": item.etag,
            }) + "\n")
        else:
            size = human_size(item.size) if args.human_readable else str(item.size)
            name = item.key if args.recursive else item.key[len(base):]
            out.write(f"{_local_time(item.last_modified)} {size:>10} {name}\n")
    if args.summarize and not args.json:
        size = human_size(total) if args.human_readable else f"{total} Bytes"
        out.write(f"\nTotal Objects: {count}\n   Total Size: {size}\n")
    # Like aws s3 ls: nothing listed is exit 1.
    return 0 if count or prefixes else 1


def _level(client: Client, bucket: str, prefix: str):
    """One level of the listing (delimiter "/"): prefixes and objects in S3's order."""
    for _, page in client._pages(f"{bucket}/{prefix}", "/", 1000):
        items: List[Tuple[str, str, Any]] = [(p, "pre", p) for p in page.common_prefixes]
        items += [(info.key, "obj", info) for info in page.infos(bucket)]
        items.sort(key=lambda t: t[0].encode("utf-8"))
        for _, kind, item in items:
            yield kind, item


def cmd_head(client: Client, args) -> int:
    info = client.head(args.path)
    print(json.dumps({
        "path": _s3_url(info.bucket, info.key), "bucket": info.bucket, "key": info.key, "size": info.size,
        "etag": info.etag, "last_modified": info.last_modified.isoformat() if info.last_modified else None,
        "content_type": info.content_type,
    }, indent=2))
    return 0


def _stream_to_stdout(client: Client, path: str) -> int:
    out = sys.stdout.buffer
    chunk = bytearray(8 << 20)
    view = memoryview(chunk)
    with client.open(path, block_size=8 << 20) as f:
        while True:
            n = f.readinto(view)
            if not n:
                break
            out.write(view[:n])
    out.flush()
    return 0


def cmd_cat(client: Client, args) -> int:
    return _stream_to_stdout(client, args.path)


def cmd_cp(client: Client, args) -> int:
    src, dst = args.src, args.dst
    if _is_s3(dst):
        if _is_s3(src):
            return _cp_s3_to_s3(client, src, dst, args)
        return _upload(client, src, dst, args)
    if not _is_s3(src):
        raise UsageError(f"cp needs an s3:// source and a local destination, got {src!r} -> {dst!r}")
    if args.recursive:
        return _cp_recursive(client, src, dst, args)
    bucket, key = split_object(src)
    if dst == "-":
        return _stream_to_stdout(client, src)
    if dst.endswith(("/", os.sep)) or os.path.isdir(dst):
        os.makedirs(dst, exist_ok=True)
        dst = os.path.join(dst, key.rsplit("/", 1)[-1])
    info = client.head(src)
    with _Progress(info.size, 1, args) as progress:
        _download(client, f"{bucket}/{key}", dst, info.size, info.etag)
        progress.update(info.size)
    if not args.quiet:
        print(f"download: {src} to {dst}")
    return 0


def _safe_relative(rel: str) -> Optional[str]:
    """The local relative path for key suffix ``rel``, or None when it would escape the
    destination (``..`` components) or names no file."""
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts) or rel.endswith("/"):
        return None
    return os.path.join(*parts)


def _cp_recursive(client: Client, src: str, dst: str, args) -> int:
    bucket, prefix = split_prefix(src)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    objects = list(client.list_objects(f"{bucket}/{prefix}", parallel=True))
    plan = []
    failed = 0
    for info in objects:
        rel = _safe_relative(info.key[len(prefix):])
        if rel is None:
            if not info.key.endswith("/"):  # directory markers are skipped silently
                print(f"warning: skipping s3://{bucket}/{info.key}: not a safe local path", file=sys.stderr)
            continue
        plan.append((info, os.path.join(dst, rel)))
    if not plan:
        if not objects:
            print(f"fatal error: no objects under {_s3_url(bucket, prefix)}", file=sys.stderr)
            return 1
        return 0
    total = sum(info.size for info, _ in plan)
    with _Progress(total, len(plan), args) as progress:
        small = [(i, d) for i, d in plan if i.size < LARGE_OBJECT]
        large = [(i, d) for i, d in plan if i.size >= LARGE_OBJECT]
        # Double-buffered: each batch is read into one of two reused buffers (no allocation,
        # zeroing or page faults per object) and written out by one thread while the next
        # batch downloads. One writer, not several: files created in one directory take its
        # lock in turn, and writers waiting for it spin (bench/README.md, "Command line
        # copies": 4 writers against 1).
        arenas = [bytearray(), bytearray()]
        with ThreadPoolExecutor(max_workers=1) as writer:
            pending = None
            for n, batch in enumerate(_batches(small)):
                try:
                    contents, changed = _read_batch(client, bucket, batch, arenas, n % 2)
                except S3Error:
                    # Find out which object failed, and still copy the others.
                    contents, changed = None, batch
                # An object whose size is not the listed one changed since the listing: copied
                # on its own (what it is now, or an error saying it changed).
                failed += sum(_download_one(client, bucket, info, local, progress, args) for info, local in changed)
                if pending is not None:
                    failed += pending.result()
                    pending = None
                if contents:
                    pending = writer.submit(_write_batch, bucket, *zip(*contents), progress, args)
            if pending is not None:
                failed += pending.result()
        for info, local in large:
            failed += _download_one(client, bucket, info, local, progress, args)
    if failed:
        print(f"fatal error: {failed} of {len(plan)} downloads failed", file=sys.stderr)
        return 1
    return 0


def _batches(items):
    batch, size = [], 0
    for item in items:
        if batch and (len(batch) >= BATCH_OBJECTS or size + item[0].size > BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += item[0].size
    if batch:
        yield batch


def _read_batch(client: Client, bucket: str, batch, arenas: List[bytearray], slot: int):
    """Read ``batch`` into ``arenas[slot]`` (grown when too small), each object into a slice
    one byte longer than its listed size, so that one grown since the listing shows:
    ``([((info, local), bytes view)...], [(info, local) whose size changed...])``."""
    need = sum(info.size + 1 for info, _ in batch)
    if len(arenas[slot]) < need:
        arenas[slot] = bytearray(need)
    whole = memoryview(arenas[slot])
    views, at = [], 0
    for info, _ in batch:
        views.append(whole[at:at + info.size + 1])
        at += info.size + 1
    written = client.get_many([f"{bucket}/{info.key}" for info, _ in batch], out=views)
    contents, changed = [], []
    for item, view, n in zip(batch, views, written):
        if n == item[0].size:
            contents.append((item, view[:n]))
        else:
            changed.append(item)
    return contents, changed


def _write_batch(bucket: str, batch, arrays, progress, args) -> int:
    """Write a downloaded batch's files; returns how many failed."""
    def write(info, local, data) -> int:
        try:
            _write_atomically(local, data)
        except OSError as e:
            print(f"download failed: {_s3_url(bucket, info.key)} to {local} {e}", file=sys.stderr)
            return 1
        progress.update(info.size)
        if not args.quiet:
            progress.write(f"download: {_s3_url(bucket, info.key)} to {local}")
        return 0

    return sum(write(info, local, data) for (info, local), data in zip(batch, arrays))


def _download_one(client: Client, bucket: str, info, local: str, progress, args) -> int:
    try:
        _download(client, f"{bucket}/{info.key}", local, info.size, info.etag)
    except (S3Error, OSError) as e:
        print(f"download failed: {_s3_url(bucket, info.key)} to {local} {e}", file=sys.stderr)
        return 1
    progress.update(info.size)
    if not args.quiet:
        progress.write(f"download: {_s3_url(bucket, info.key)} to {local}")
    return 0


def _download(client: Client, path: str, local: str, size: int, etag: str) -> None:
    from .io import download_to_file

    parent = os.path.dirname(os.path.abspath(local))
    os.makedirs(parent, exist_ok=True)
    download_to_file(client, path, local, size=size, etag=etag)


def _write_atomically(local: str, data) -> None:
    from .io import replaced_atomically, write_in_pieces

    os.makedirs(os.path.dirname(os.path.abspath(local)), exist_ok=True)
    with replaced_atomically(local) as f:
        # In small pieces, as io.download_to_file writes (see FILE_WRITE_CHUNK there).
        write_in_pieces(f.fileno(), memoryview(data).cast("B"), 0)


# -- uploads, copies, deletes -------------------------------------------------------------


def _upload_file(client: Client, local: str, path: str) -> int:
    """Upload one local file to ``path`` from a memory map of it (no copy); returns its size."""
    import mmap

    with open(local, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:  # an empty file cannot be mapped
            client.put_from(b"", path)
        else:
            with mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ) as mm:
                client.put_from(mm, path)
    return size


def _upload(client: Client, src: str, dst: str, args) -> int:
    bucket, key = split_prefix(dst)
    if args.recursive:
        if not os.path.isdir(src):
            raise UsageError(f"cp -r needs a local directory as source, got {src!r}")
        prefix = key if not key or key.endswith("/") else key + "/"
        plan = []
        for root, dirs, files in os.walk(src):
            dirs.sort()
            for name in sorted(files):
                local = os.path.join(root, name)
                rel = os.path.relpath(local, src).replace(os.sep, "/")
                plan.append((local, f"{bucket}/{prefix}{rel}", os.path.getsize(local)))
        return _run_transfers(plan, lambda local, path: _upload_file(client, local, path), "upload", args)
    if os.path.isdir(src):
        raise UsageError(f"{src!r} is a directory: use cp -r to upload a directory")
    if not key or key.endswith("/"):
        key += os.path.basename(src)
    size = os.path.getsize(src)  # FileNotFoundError (exit 1) for a missing source
    with _Progress(size, 1, args) as progress:
        _upload_file(client, src, f"{bucket}/{key}")
        progress.update(size)
    if not args.quiet:
        print(f"upload: {src} to {_s3_url(bucket, key)}")
    return 0


def _cp_s3_to_s3(client: Client, src: str, dst: str, args) -> int:
    if args.recursive:
        sb, sp = split_prefix(src)
        db, dp = split_prefix(dst)
        sp = sp if not sp or sp.endswith("/") else sp + "/"
        dp = dp if not dp or dp.endswith("/") else dp + "/"
        objects = [info for info in client.list_objects(f"{sb}/{sp}", parallel=True) if not info.key.endswith("/")]
        if not objects:
            print(f"fatal error: no objects under {_s3_url(sb, sp)}", file=sys.stderr)
            return 1
        plan = [(_s3_url(sb, info.key), f"{db}/{dp}{info.key[len(sp):]}", info.size) for info in objects]
        return _run_transfers(plan, lambda s, d: client.copy(s[len("s3://"):], d), "copy", args)
    sb, sk = split_object(src)
    db, dk = split_prefix(dst)
    if not dk or dk.endswith("/"):
        dk += sk.rsplit("/", 1)[-1]
    client.copy(f"{sb}/{sk}", f"{db}/{dk}")
    if not args.quiet:
        print(f"copy: {src} to {_s3_url(db, dk)}")
    return 0


def _run_transfers(plan, transfer, verb: str, args) -> int:
    """Run ``transfer(source, bucket/key)`` for each ``(source, bucket/key, size)`` of ``plan``
    on a thread pool, printing ``verb: source to s3://...`` lines as they finish (aws s3
    style); failures are reported and counted, the others still run. Exit code 0 or 1."""
    if not plan:
        return 0
    failed = 0
    with _Progress(sum(size for _, _, size in plan), len(plan), args) as progress:
        with ThreadPoolExecutor(max_workers=min(TRANSFER_WORKERS, len(plan))) as pool:
            futures = [(pool.submit(transfer, source, path), source, path, size) for source, path, size in plan]
            for future, source, path, size in futures:
                try:
                    future.result()
                except (S3Error, OSError) as e:
                    failed += 1
                    print(f"{verb} failed: {source} to s3://{path} {e}", file=sys.stderr)
                    continue
                progress.update(size)
                if not args.quiet:
                    progress.write(f"{verb}: {source} to s3://{path}")
    if failed:
        print(f"fatal error: {failed} of {len(plan)} {verb}s failed", file=sys.stderr)
        return 1
    return 0


def cmd_rm(client: Client, args) -> int:
    if not _is_s3(args.path):
        raise UsageError(f"rm needs an s3:// path, got {args.path!r}")
    if not args.recursive:
        # As aws s3 rm: one key, deleted whether or not it exists.
        bucket, key = split_object(args.path)
        client.delete(f"{bucket}/{key}")
        if not args.quiet:
            print(f"delete: {_s3_url(bucket, key)}")
        return 0
    bucket, prefix = split_prefix(args.path)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    keys = [info.key for info in client.list_objects(f"{bucket}/{prefix}", parallel=True)]
    if not keys:
        print(f"fatal error: no objects under {_s3_url(bucket, prefix)}", file=sys.stderr)
        return 1
    # Directory markers ("dir/") after the files, deepest first: some servers map them to
    # real directories that must be empty to go.
    keys.sort(key=lambda k: (k.endswith("/"), -k.count("/") if k.endswith("/") else 0))
    failures = dict(client.delete_many([f"{bucket}/{k}" for k in keys]))
    for k in keys:
        error = failures.get(f"{bucket}/{k}")
        if error is not None:
            print(f"delete failed: {_s3_url(bucket, k)} {error}", file=sys.stderr)
        elif not args.quiet:
            print(f"delete: {_s3_url(bucket, k)}")
    if failures:
        print(f"fatal error: {len(failures)} of {len(keys)} deletes failed", file=sys.stderr)
        return 1
    return 0


class _Progress:
    """A tqdm byte counter on stderr when it is a terminal; otherwise silent. ``write``
    prints a line without breaking the bar."""

    def __init__(self, total: int, files: int, args):
        self._bar = None
        self._lock = threading.Lock()  # several writer threads report
        if sys.stderr.isatty() and not args.quiet and not args.no_progress:
            try:
                from tqdm import tqdm
            except ImportError:  # the bar is optional: `pip install pyfasts3[cli]`
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                                 desc=f"{files} file{'s' if files != 1 else ''}", file=sys.stderr,
                                 dynamic_ncols=True, leave=False)

    def __enter__(self) -> "_Progress":
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.close()

    def update(self, n: int) -> None:
        if self._bar is not None:
            with self._lock:
                self._bar.update(n)

    def write(self, line: str) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.write(line, file=sys.stdout)
            else:
                print(line)


def cmd_not_available(client: Optional[Client], args) -> int:
    raise UsageError(f"{args.command} {NOT_AVAILABLE}")


# -- parsing and main -------------------------------------------------------------------


def _common_options() -> argparse.ArgumentParser:
    # SUPPRESS: an option given before the command is not reset by the subcommand's default.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--endpoint-url", default=argparse.SUPPRESS, help="S3 endpoint (else AWS_ENDPOINT_URL)")
    common.add_argument("--region", default=argparse.SUPPRESS, help="region (else AWS_REGION / config)")
    common.add_argument("--profile", default=argparse.SUPPRESS, help="profile from the shared config files")
    common.add_argument("--no-sign-request", action="store_true", default=argparse.SUPPRESS,
                        help="send unsigned requests (public buckets)")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="pyfasts3", parents=[common],
        description="Fast S3 transfers from the command line (pyfasts3). Paths: s3://bucket/key.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("ls", parents=[common], help="list objects and prefixes")
    p.add_argument("path", nargs="?", help="s3://bucket[/prefix]")
    p.add_argument("-r", "--recursive", action="store_true", help="every object under the prefix")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--human-readable", action="store_true", help="sizes as KiB, MiB, GiB")
    p.add_argument("--summarize", action="store_true", help="print the object count and total size")
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser("head", parents=[common], help="object metadata (HEAD) as JSON")
    p.add_argument("path", help="s3://bucket/key")
    p.set_defaults(func=cmd_head)

    p = sub.add_parser("cat", parents=[common], help="write an object's bytes to stdout")
    p.add_argument("path", help="s3://bucket/key")
    p.set_defaults(func=cmd_cat)

    p = sub.add_parser("cp", parents=[common], help="download, upload or copy objects")
    p.add_argument("src", help="s3://bucket/key (s3://bucket/prefix with -r), or a local file (directory with -r)")
    p.add_argument("dst", help="local file or directory ('-' for stdout), or s3://bucket/key-or-prefix")
    p.add_argument("-r", "--recursive", action="store_true", help="every object under the prefix / file under the directory")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_cp)

    p = sub.add_parser("rm", parents=[common], help="delete an object, or with -r everything under a prefix")
    p.add_argument("path", help="s3://bucket/key, or s3://bucket/prefix with -r")
    p.add_argument("-r", "--recursive", action="store_true", help="every object under the prefix")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(func=cmd_rm)

    p = sub.add_parser("mv", parents=[common], help="not available yet (use cp, then rm)")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_not_available)
    return parser


def make_client(args) -> Client:
    return Client(
        endpoint_url=getattr(args, "endpoint_url", None),
        region=getattr(args, "region", None),
        profile=getattr(args, "profile", None),
        anonymous=bool(getattr(args, "no_sign_request", False)),
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and args.func is not cmd_not_available:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        if args.func is cmd_not_available:
            return cmd_not_available(None, args)
        with make_client(args) as client:
            return args.func(client, args)
    except UsageError as e:
        print(f"pyfasts3: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cancelled: ctrl-c received", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of our stdout went away (`pyfasts3 cat ... | head`): stop quietly.
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 141
    except FileNotFoundError as e:
        where = _where(e)
        print(f"fatal error: {e}{where}", file=sys.stderr)
        return 1
    except (S3Error, OSError, ValueError) as e:
        print(f"fatal error: {e}{_where(e)}", file=sys.stderr)
        return 1


def _where(e: BaseException) -> str:
    bucket, key = getattr(e, "bucket", None), getattr(e, "key", None)
    if bucket and f"s3://{bucket}" not in str(e):
        return f" ({_s3_url(bucket, key or '')})"
    return ""
