"""Value types returned by the API."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, Optional


@dataclass(frozen=True)
class ObjectInfo:
    """Metadata of one object, from HEAD or a listing.

    ``last_modified`` is an aware UTC datetime (None if the server sent none);
    ``content_type`` is only known from HEAD (None in listings); ``etag`` keeps its quotes.
    """

    bucket: str
    key: str
    size: int
    etag: str
    last_modified: Optional[datetime]
    content_type: Optional[str] = None


class Read(NamedTuple):
    """One read of :meth:`pyfasts3.Client.get_many`: ``length`` bytes of ``path`` from
    ``offset`` (``length`` None: to the end of the object), optionally pinned to the ETag a
    listing or HEAD gave (``if_match``: a changed object fails with ``ObjectChanged``) or to
    a version (``version_id``), and read in requests of ``part_size`` bytes (default: the
    client's). A plain ``(path, offset, length)`` tuple is the same read without a pin."""

    path: str
    offset: int = 0
    length: Optional[int] = None
    if_match: Optional[str] = None
    version_id: Optional[str] = None
    part_size: Optional[int] = None
