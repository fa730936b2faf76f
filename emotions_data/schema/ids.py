"""The stable ``video_id`` that runs through every stage (docs/design.md "Ids")."""

from __future__ import annotations

import hashlib
import re

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def url_video_id(url: str) -> str:
    """First 16 hex characters of sha256(url): the id when the platform gives none."""
    return hashlib.sha256(url.strip().encode("utf-8")).hexdigest()[:16]


def platform_video_id(platform: str, native_id: str) -> str:
    """``<platform>-<native id>``, lower-case platform, unsafe characters replaced by ``_``."""
    plat = _UNSAFE.sub("_", platform.strip().lower()).strip("_") or "unknown"
    native = _UNSAFE.sub("_", str(native_id).strip()).strip("_")
    return f"{plat}-{native}"


def make_video_id(url: str, platform: str | None = None, native_id: str | None = None) -> str:
    if platform and native_id:
        return platform_video_id(platform, native_id)
    return url_video_id(url)
