"""ffprobe a media file into a small picklable record (never raises for a bad file)."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from emotions_data.schema.errors import ServiceError


class MediaError(Exception):
    """A file ffmpeg/ffprobe cannot read; a plain, picklable exception (ffmpeg.Error is not)."""


@dataclass(frozen=True)
class ProbeResult:
    duration_s: float
    width: int
    height: int
    fps: float
    has_audio: bool
    audio_sample_rate: int | None
    video_codec: str | None
    audio_codec: str | None

    def to_columns(self) -> dict[str, Any]:
        return asdict(self)


#: The videos-manifest columns an ffprobe fills (fetch's check of the file, reused by prepare).
PROBE_COLUMNS = tuple(f.name for f in fields(ProbeResult))


def ffmpeg_binary() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        raise ServiceError("ffmpeg not found on PATH; install Debian's ffmpeg")
    return path


def ffprobe_binary() -> str:
    path = shutil.which("ffprobe")
    if path is None:
        raise ServiceError("ffprobe not found on PATH; install Debian's ffmpeg")
    return path


def _rate(text: str | None) -> float:
    if not text or text in ("0/0", "N/A"):
        return 0.0
    num, _, den = text.partition("/")
    try:
        return float(num) / float(den or 1)
    except (ValueError, ZeroDivisionError):
        return 0.0


def _rotation(stream: dict[str, Any]) -> int:
    tags = stream.get("tags") or {}
    rotate = tags.get("rotate")
    for side in stream.get("side_data_list") or []:
        if "rotation" in side:
            rotate = side["rotation"]
    try:
        return int(float(rotate)) % 180 if rotate is not None else 0
    except ValueError:
        return 0


def probe(path: str | Path, *, timeout_s: float = 60.0) -> ProbeResult:
    """Probe ``path``; raise ``MediaError`` (one line) when it is not a readable video."""
    args = [
        ffprobe_binary(),
        "-v",
        "error",
        "-show_streams",
        "-show_format",
        "-of",
        "json",
        str(path),
    ]
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise MediaError(f"ffprobe timed out after {timeout_s:.0f} s") from None
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        reason = lines[-1] if lines else f"exit code {proc.returncode}"
        raise MediaError(f"ffprobe cannot read the file: {reason.replace(str(path), '<file>')}")
    try:
        info = json.loads(proc.stdout or "{}")
    except ValueError:
        raise MediaError("ffprobe printed no readable JSON") from None
    streams = info.get("streams") or []
    video = next((s for s in streams if s.get("codec_type") == "video"), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    if video is None:
        raise MediaError("no video stream")
    width, height = int(video.get("width") or 0), int(video.get("height") or 0)
    if width <= 0 or height <= 0:
        raise MediaError("video stream has no frame size")
    if _rotation(video) == 90:
        width, height = height, width
    duration = 0.0
    for source in (info.get("format") or {}, video):
        try:
            duration = float(source.get("duration") or 0.0)
        except ValueError:
            duration = 0.0
        if duration > 0:
            break
    fps = _rate(video.get("avg_frame_rate")) or _rate(video.get("r_frame_rate"))
    rate = audio.get("sample_rate") if audio else None
    return ProbeResult(
        duration_s=duration,
        width=width,
        height=height,
        fps=round(fps, 3),
        has_audio=audio is not None,
        audio_sample_rate=int(rate) if rate else None,
        video_codec=video.get("codec_name"),
        audio_codec=audio.get("codec_name") if audio else None,
    )
