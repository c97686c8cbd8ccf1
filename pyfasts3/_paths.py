"""Parsing "bucket/key" and "s3://bucket/key" paths."""
from __future__ import annotations

from typing import Tuple


def _strip_scheme(path: str) -> str:
    if not isinstance(path, str):
        raise TypeError(f"path must be a str like 'bucket/key', got {type(path).__name__}")
    return path[len("s3://"):] if path.startswith("s3://") else path


def split_object(path: str) -> Tuple[str, str]:
    """'bucket/key' or 's3://bucket/key' -> (bucket, key); the key may contain '/'."""
    bucket, sep, key = _strip_scheme(path).partition("/")
    if not bucket or not sep or not key:
        raise ValueError(f"expected 'bucket/key' or 's3://bucket/key', got {path!r}")
    return bucket, key


def split_prefix(path: str) -> Tuple[str, str]:
    """'bucket', 'bucket/prefix' or 's3://bucket/prefix' -> (bucket, prefix)."""
    bucket, _, prefix = _strip_scheme(path).partition("/")
    if not bucket:
        raise ValueError(f"expected 'bucket' or 'bucket/prefix', got {path!r}")
    return bucket, prefix
