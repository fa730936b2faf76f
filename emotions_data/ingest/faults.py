"""Which failures are the item's and which are the machine's, and URLs safe to store.

A video fails for good (``failed`` in the manifest, skipped by the next run) only for what is
wrong with *it*: a dead link, a private post, a file ffmpeg cannot decode. A fault of the
environment (no space, an I/O error, a temporary file that vanished, a killed worker) says
nothing about the video: it is never recorded, the run stops with one line
(:class:`~emotions_data.schema.errors.EnvironmentFault`) and the next run retries the item.

``stored_url`` strips credentials from a URL before it is written anywhere (``source_url``,
ids, completion records); the original URL is only handed to the downloader.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

#: Messages (yt-dlp's, ffmpeg's stderr) that name a fault of the machine, not of the video.
_ENVIRONMENT = re.compile(
    r"no space left on device|errno 28\b|enospc|input/output error|errno 5\b|"
    r"disk quota exceeded|read-only file system|too many open files|cannot allocate memory|"
    r"out of memory|stale file handle"
)
#: A missing file is the machine's fault unless it is the input itself (``<file>`` in ffmpeg's
#: messages, see ``ingest.mediapass``): another run, or a cleaner, removed a temporary file.
_MISSING_FILE = re.compile(r"no such file or directory")


def is_environment_message(message: str | None) -> bool:
    """Whether a tool's error message names a fault of the environment (see module doc)."""
    if not message:
        return False
    low = message.lower()
    if _ENVIRONMENT.search(low):
        return True
    return bool(_MISSING_FILE.search(low)) and "<file>" not in low


# --------------------------------------------------------------------------- credentials

#: Query parameters that carry a secret: ``token``, ``access_token``, ``api_key``, ``sig``,
#: ``signature``, ``password``, ``session``/``sessionid``, ``auth``, ``secret``, cloud signed-URL
#: parameters (``X-Amz-Signature``, ``X-Amz-Credential``, ``X-Amz-Security-Token``,
#: ``X-Goog-Signature``, ``X-Goog-Credential``), and any ``*_token``/``*-secret``/... variant.
_SECRET_PARAM = re.compile(
    r"(?:^|[_.-])(?:token|secret|password|passwd|pwd|pass|signature|sig|sign|auth|authorization|"
    r"credential|session|sessionid|session_id|api[_-]?key|apikey|access[_-]?key)$",
    re.IGNORECASE,
)


def _is_secret_param(piece: str) -> bool:
    name = unquote(piece.partition("=")[0]).strip()
    return bool(name) and _SECRET_PARAM.search(name) is not None


def _strip_params(part: str) -> tuple[str, list[str]]:
    pieces = part.split("&")
    kept = [p for p in pieces if not _is_secret_param(p)]
    removed = [unquote(p.partition("=")[2]) for p in pieces if _is_secret_param(p)]
    return "&".join(kept), [r for r in removed if r]


def url_secrets(url: str) -> list[str]:
    """The secret values in ``url`` (user-info password, secret query values), for redaction."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found = [s for s in (parts.password, parts.username) if s]
    for part in (parts.query, parts.fragment):
        found += _strip_params(part)[1]
    return [unquote(s) for s in found] + found


def stored_url(url: str) -> str:
    """``url`` without user-info (``user:password@``) and without secret query parameters.

    Unchanged, character for character, when it holds no credentials (ids are hashes of it).
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    query, _ = _strip_params(parts.query)
    fragment, _ = _strip_params(parts.fragment) if "=" in parts.fragment else (parts.fragment, [])
    if (netloc, query, fragment) == (parts.netloc, parts.query, parts.fragment):
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))
