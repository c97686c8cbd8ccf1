"""Value types returned by the API."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Optional


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
