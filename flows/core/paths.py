"""Where things live under the lake root; nothing may escape it."""

from __future__ import annotations

import re

from flows.core.errors import UnsafePathError
from flows.core.settings import LakeSettings, get_settings

_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.=\-]*$")


def safe_relative(path: str) -> str:
    """`path` normalised; raises if it is absolute, has `..`, a scheme or odd characters."""
    if not path or "://" in path or path.startswith(("/", "~")) or "\\" in path:
        raise UnsafePathError(f"{path!r} must be a relative path inside the lake")
    segments = [segment for segment in path.split("/") if segment not in ("", ".")]
    for segment in segments:
        if segment == ".." or not _SEGMENT.match(segment):
            raise UnsafePathError(
                f"{path!r} has the segment {segment!r}: use letters, digits, '_', '-', '.', '='"
                " and no '..'"
            )
    if not segments:
        raise UnsafePathError(f"{path!r} names no location inside the lake")
    return "/".join(segments)


def safe_name(name: str) -> str:
    """`name` if it is one safe path segment (a table or source name), else raise."""
    if "/" in name or safe_relative(name) != name:
        raise UnsafePathError(f"{name!r} must be a single name: letters, digits, '_', '-', '.'")
    return name


def lake_location(path: str, settings: LakeSettings | None = None) -> str:
    """The absolute location (folder path or `s3://` URI) of `path` under the lake root."""
    settings = settings or get_settings()
    return f"{settings.root}/{safe_relative(path)}"
