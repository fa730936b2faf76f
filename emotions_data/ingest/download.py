"""Download one URL with yt-dlp's Python API: the per-item function of ``fetch``.

``download_one`` takes a picklable ``DownloadTask`` and returns a picklable ``DownloadResult``;
it never raises for the item's own failure. yt-dlp writes into a per-URL staging folder
(``ROOT/.staging/<sha256(url)[:16]>/``); only a file that is an mp4 ffprobe can read is moved
(``os.replace``) to ``ROOT/media/<platform>/<video_id>.mp4``, so ``.part``/``-FragNN`` leftovers
or another container never reach a final name.

Ids (docs/design.md "Ids"): ``<platform>-<native id>`` when yt-dlp's extractor gives one, with
``platform`` its extractor key in lower case. yt-dlp's ``generic`` extractor (a direct file
URL, e.g. a CDN link or the loopback test server) takes its "id" from the file name, which
collides across hosts, so for ``generic`` the id is sha256(url)[:16] and the platform comes
from the input's ``platform`` column (else ``generic``). URLs are hashed and stored without
their credentials (``ingest.faults.stored_url``); only yt-dlp sees the original.

Every path is built with ``schema.safety.inside_root``. Once the mp4 has its final name, a
completion record ``ROOT/.fetch-done/<sha256(url)[:16]>.json`` (the result, size and sha256)
lets the next run adopt the file if this run dies before its manifest is written. An OSError
or a yt-dlp message that names the machine (no space, I/O error) is a ``fault``: the item is
not failed, the run stops and the next one retries it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emotions_data.ingest.faults import is_environment_message, stored_url, url_secrets
from emotions_data.ingest.probe import MediaError, ffmpeg_binary, probe
from emotions_data.ingest.profiles import PlatformProfile, redact
from emotions_data.schema.atomic import atomic_write_text, sha256_file
from emotions_data.schema.errors import describe_os_error
from emotions_data.schema.ids import platform_video_id, url_video_id
from emotions_data.schema.safety import (
    UnsafePathError,
    inside_root,
    is_safe_name,
    regular_file_inside,
)

#: Completion records of finished downloads, kept until the manifest holds their rows.
DONE_DIR = ".fetch-done"

#: Error kinds worth retrying: the same request may work a little later.
TRANSIENT = frozenset({"network", "rate_limited"})

# First match wins; checked against the lower-cased yt-dlp message.
_KIND_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("unsupported_url", re.compile(r"unsupported url|no suitable extractor|is not a valid url")),
    ("rate_limited", re.compile(r"http error 429|too many requests|rate.?limit")),
    (
        "geo_blocked",
        re.compile(r"geo.?restrict|not available (in|from) your (country|location)|geo.?block"),
    ),
    ("private", re.compile(r"private (video|account|post)|this video is private|is private")),
    (
        "login_required",
        re.compile(
            r"login|log in|sign in|cookies|authenticat|http error 401|http error 403|members.only"
        ),
    ),
    (
        "unavailable",
        re.compile(
            r"http error 404|http error 410|not found|unavailable|removed|deleted|"
            r"no longer available|does not exist"
        ),
    ),
    (
        "network",
        re.compile(
            r"timed out|timeout|connection|remote end closed|reset by peer|transporterror|"
            r"temporary failure|name resolution|http error 5\d\d|incomplete read|"
            r"content too short|did not get any data"
        ),
    ),
    ("bad_media", re.compile(r"ffmpeg|postprocess|merg|corrupt|invalid data")),
)


def classify(message: str) -> str:
    """The error kind of a yt-dlp error message (``other`` when nothing matches)."""
    low = message.lower()
    for kind, pattern in _KIND_PATTERNS:
        if pattern.search(low):
            return kind
    return "other"


def short_message(message: str, secrets: list[str], limit: int = 300) -> str:
    """One line of at most ``limit`` characters, secrets removed.

    Redacted before it is cut: a cut through a secret would leave its first part unredacted.
    """
    return redact(" ".join(message.split()), secrets)[:limit]


@dataclass(frozen=True)
class DownloadTask:
    url: str
    root: str
    platform_hint: str | None
    profile: PlatformProfile = field(default_factory=PlatformProfile)
    allow_file_urls: bool = False


@dataclass
class DownloadResult:
    url: str
    status: str  # ok | failed
    video_id: str
    platform: str
    error_kind: str | None = None
    error_message: str | None = None
    media_path: str | None = None  # relative to the root
    sha256: str | None = None
    bytes: int | None = None
    attempts: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    #: A fault of the environment (no space, I/O error): not the item's failure, never stored.
    fault: str | None = None

    def to_record(self) -> dict[str, Any]:
        """The JSON completion record of a finished download (the URL without credentials)."""
        meta = {
            k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in self.metadata.items()
        }
        return {
            "url": stored_url(self.url),
            "video_id": self.video_id,
            "platform": self.platform,
            "media_path": self.media_path,
            "sha256": self.sha256,
            "bytes": self.bytes,
            "metadata": meta,
        }


def done_record_path(root: str | Path, url: str) -> Path:
    return inside_root(root, DONE_DIR, f"{url_video_id(stored_url(url))}.json")


def adopt_finished(root: str | Path, url: str) -> DownloadResult | None:
    """The result of an earlier run's finished download of ``url``, if its file still matches.

    The completion record must name a safe id and platform and a regular file inside the root
    whose size and sha256 match; anything else is ignored (the URL is downloaded again).
    """
    try:
        record = json.loads(done_record_path(root, url).read_text(encoding="utf-8"))
        if not isinstance(record, dict) or record.get("url") != stored_url(url):
            return None
        if not (is_safe_name(record["video_id"]) and is_safe_name(record["platform"])):
            return None
        media = regular_file_inside(root, str(record["media_path"]))
        if media.stat().st_size != record["bytes"] or sha256_file(media) != record["sha256"]:
            return None
        meta = dict(record.get("metadata") or {})
    except (OSError, ValueError, KeyError, TypeError, UnsafePathError):
        return None
    if isinstance(meta.get("fetched_at"), str):
        meta["fetched_at"] = dt.datetime.fromisoformat(meta["fetched_at"])
    return DownloadResult(
        url=url,
        status="ok",
        video_id=str(record["video_id"]),
        platform=str(record["platform"]),
        media_path=str(record["media_path"]),
        sha256=str(record["sha256"]),
        bytes=int(record["bytes"]),
        metadata=meta,
    )


class _Logger:
    """Swallow yt-dlp's output; keep the last error line for the result."""

    def __init__(self) -> None:
        self.last_error = ""

    def debug(self, msg: str) -> None:
        return

    info = warning = debug

    def error(self, msg: str) -> None:
        self.last_error = msg


def _ydl_options(task: DownloadTask, staging: Path, logger: _Logger) -> dict[str, Any]:
    from yt_dlp.utils import parse_bytes

    prof = task.profile
    opts: dict[str, Any] = {
        # one mp4 with video and audio: mp4/m4a pairs merge without re-encoding
        "format": "bv*[ext=mp4]+ba[ext=m4a]/b[ext=mp4]/bv*+ba/b",
        "merge_output_format": "mp4",
        "outtmpl": {"default": "media.%(ext)s"},
        "paths": {"home": str(staging), "temp": str(staging)},
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "noplaylist": True,
        "logger": logger,
        "cachedir": False,
        "overwrites": True,
        # yt-dlp's own retries cover a broken transfer; we retry whole items with backoff
        "retries": 1,
        "fragment_retries": 1,
        "extractor_retries": 0,
        "socket_timeout": prof.socket_timeout_s,
    }
    if task.allow_file_urls:
        opts["enable_file_urls"] = True
    if prof.cookies_file:
        opts["cookiefile"] = str(Path(prof.cookies_file).expanduser())
    proxy = prof.resolved_proxy()
    if proxy:
        opts["proxy"] = proxy
    if prof.user_agent:
        opts["http_headers"] = {"User-Agent": prof.user_agent}
    if prof.sleep_interval_s > 0:
        opts["sleep_interval"] = prof.sleep_interval_s
    if prof.rate_limit:
        opts["ratelimit"] = parse_bytes(prof.rate_limit)
    return opts


def _downloaded_file(info: dict[str, Any], staging: Path) -> Path | None:
    for item in info.get("requested_downloads") or []:
        path = item.get("filepath")
        if path and Path(path).is_file():
            return Path(path)
    # fall back to the staging folder, ignoring yt-dlp's temporary pieces
    finals = [
        p
        for p in staging.iterdir()
        if p.is_file() and not re.search(r"\.part$|\.ytdl$|-Frag\d+|\.temp\.|^\.", p.name)
    ]
    return max(finals, key=lambda p: p.stat().st_size) if finals else None


def _remux_to_mp4(src: Path, dst: Path) -> None:
    args = [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(src)]
    args += ["-map", "0:v:0", "-map", "0:a:0?", "-c", "copy", "-f", "mp4", str(dst)]
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise MediaError(f"cannot remux the {src.suffix or 'downloaded'} file to mp4")


def _ids(task: DownloadTask, info: dict[str, Any]) -> tuple[str, str]:
    extractor = str(info.get("extractor_key") or info.get("extractor") or "generic").lower()
    native = info.get("id")
    if extractor == "generic" or not native:
        return (task.platform_hint or "generic").lower(), url_video_id(stored_url(task.url))
    return extractor, platform_video_id(extractor, str(native))


def _metadata(info: dict[str, Any]) -> dict[str, Any]:
    def as_int(value: Any) -> int | None:
        return int(value) if isinstance(value, int | float) else None

    return {
        "title": info.get("title"),
        "uploader_id": info.get("uploader_id") or info.get("channel_id"),
        "upload_date": info.get("upload_date"),
        "view_count": as_int(info.get("view_count")),
        "like_count": as_int(info.get("like_count")),
    }


def guess_ids(url: str, platform_hint: str | None) -> tuple[str, str]:
    """Platform and video_id before any download, from the URL alone (for failures, caps).

    A URL a platform extractor recognises gives ``<platform>-<native id>`` (yt-dlp's
    ``get_temp_id``), so a failed item already has the id its success would have.
    """
    from yt_dlp.extractor import gen_extractor_classes

    for ie in gen_extractor_classes():
        if ie.ie_key() == "Generic":
            continue
        try:
            if not ie.suitable(url):
                continue
            native = ie.get_temp_id(url)
        except Exception:  # a broken regex in one extractor must not stop the run
            continue
        platform = ie.ie_key().lower()
        if native:
            return platform, platform_video_id(platform, str(native))
        return platform, url_video_id(url)
    return (platform_hint or "generic").lower(), url_video_id(url)


def download_one(task: DownloadTask) -> DownloadResult:
    """Download one URL (retrying transient errors with exponential backoff and jitter)."""
    from yt_dlp import YoutubeDL
    from yt_dlp.utils import YoutubeDLError

    root = Path(task.root)
    secrets = task.profile.secrets() + url_secrets(task.url)
    guess_platform, guess_id = guess_ids(stored_url(task.url), task.platform_hint)

    def failed(kind: str, message: str, attempts: int) -> DownloadResult:
        return DownloadResult(
            url=task.url,
            status="failed",
            video_id=guess_id,
            platform=guess_platform,
            error_kind=kind,
            error_message=short_message(message, secrets),
            attempts=attempts,
        )

    def fault(message: str) -> DownloadResult:
        result = failed("environment", message, attempts)
        result.fault = result.error_message
        return result

    staging = inside_root(root, ".staging", url_video_id(stored_url(task.url)))
    attempts = 0
    try:
        info: dict[str, Any] | None = None
        while info is None:
            attempts += 1
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            logger = _Logger()
            try:
                with YoutubeDL(_ydl_options(task, staging, logger)) as ydl:
                    got = ydl.extract_info(task.url, download=True)
                if got is None or got.get("_type") == "playlist" or "entries" in got:
                    return failed("unsupported_url", "the URL is a playlist, not one video", 1)
                info = dict(got)
            except YoutubeDLError as exc:
                message = str(exc) or logger.last_error
                message = re.sub(r"^ERROR:\s*", "", message)
                if is_environment_message(message):
                    return fault(message)
                kind = classify(message)
                if kind in TRANSIENT and attempts <= task.profile.retries:
                    base = task.profile.backoff_s * 2 ** (attempts - 1)
                    time.sleep(base + random.uniform(0, task.profile.backoff_s))
                    continue
                return failed(kind, message, attempts)
        source = _downloaded_file(info, staging)
        if source is None:
            return failed("bad_media", "yt-dlp reported success but wrote no file", attempts)
        if source.suffix.lower() != ".mp4":
            remuxed = staging / "remuxed.mp4"
            _remux_to_mp4(source, remuxed)
            source = remuxed
        media_info = probe(source)  # raises MediaError for a file ffprobe cannot read
        platform, video_id = _ids(task, info)
        rel = f"media/{platform}/{video_id}.mp4"
        final = inside_root(root, "media", platform, f"{video_id}.mp4", what="media path")
        final.parent.mkdir(parents=True, exist_ok=True)
        digest, size = sha256_file(source), source.stat().st_size
        with open(source, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(source, final)
        result = DownloadResult(
            url=task.url,
            status="ok",
            video_id=video_id,
            platform=platform,
            media_path=rel,
            sha256=digest,
            bytes=size,
            attempts=attempts,
            metadata={
                **_metadata(info),
                **media_info.to_columns(),  # prepare reuses this probe
                "fetched_at": dt.datetime.now(dt.UTC),
            },
        )
        # the next run adopts this file even if the driver dies before writing the manifest
        record = json.dumps(result.to_record(), default=str)
        atomic_write_text(done_record_path(root, task.url), record)
        return result
    except MediaError as exc:
        if is_environment_message(str(exc)):
            return fault(str(exc))
        return failed("bad_media", str(exc), attempts)
    except UnsafePathError as exc:  # an id or platform that would leave the root
        return failed("other", str(exc), attempts)
    except OSError as exc:  # disk full, I/O error: the machine's fault, not the video's
        return fault(describe_os_error(exc))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
