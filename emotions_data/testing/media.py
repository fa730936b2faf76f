"""Tiny generated media (ffmpeg lavfi sources) for tests, benchmarks and the demo.

Nothing is downloaded and no media is committed: every clip is made here, deterministically.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from emotions_data.schema.atomic import atomic_path
from emotions_data.schema.errors import ServiceError

#: Distinct colours for class-coded clips (one per class index, cycling).
PALETTE = ("red", "blue", "green", "yellow", "magenta", "cyan", "orange", "white")


def ffmpeg_binary() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        raise ServiceError(
            "ffmpeg not found on PATH; install Debian's ffmpeg (scripts/setup.sh does)"
        )
    return path


def _run(args: list[str]) -> None:
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise ServiceError(f"ffmpeg failed making test media: {tail[0]}")


def make_clip(
    path: str | Path,
    *,
    width: int = 160,
    height: int = 288,
    duration: float = 2.0,
    fps: int = 15,
    audio: bool = True,
    source: str = "testsrc2",
    color: str = "red",
    motion: float = 0.0,
    tone_hz: float = 440.0,
    noise_seed: int | None = None,
    layout: int | None = None,
    crf: int = 28,
) -> Path:
    """Write an h264 (+ aac) mp4 made from lavfi sources.

    ``source`` is ``testsrc2`` (moving test card), ``color`` (flat ``color``, optionally with a
    moving white box when ``motion`` > 0, in pixels per frame) or ``noise`` (seeded noise).
    ``layout`` (for ``color``) adds a black block whose place and size depend on it, so clips of
    one colour are still different videos (a perceptual hash tells them apart).
    """
    path = Path(path)
    size = f"{width}x{height}"
    if source == "testsrc2":
        video = f"testsrc2=size={size}:rate={fps}:duration={duration}"
    elif source == "color":
        video = f"color=c={color}:size={size}:rate={fps}:duration={duration}"
        if layout is not None:
            # a black and a white block in two of 3 x 3 places, then smaller blocks: 18 layouts
            # that differ in luma whatever the background colour
            div = 3 if (layout // 9) % 2 == 0 else 5
            bw, bh = width // div, height // div
            for cell, shade in ((layout % 9, "black"), ((layout + 4) % 9, "white")):
                x, y = (cell % 3) * (width - bw) // 2, (cell // 3) * (height - bh) // 2
                video += f",drawbox=x={x}:y={y}:w={bw}:h={bh}:color={shade}:t=fill"
        if motion > 0:
            box = max(8, min(width, height) // 5)
            # a white box that scrolls sideways by ``motion`` pixels per frame (drawbox alone
            # cannot move in ffmpeg 5: its position is evaluated once)
            video += (
                f",drawbox=x=0:y={height // 3}:w={box}:h={box}:color=white:t=fill"
                f",scroll=h={motion / width:.5f}"
            )
    elif source == "noise":
        seed = noise_seed if noise_seed is not None else 1
        video = (
            f"color=c=gray:size={size}:rate={fps}:duration={duration},"
            f"noise=alls=60:allf=t+u:all_seed={seed}"
        )
    else:
        raise ValueError(f"unknown source {source!r}; allowed: testsrc2, color, noise")
    args = [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", video]
    if audio:
        args += [
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency={tone_hz}:sample_rate=44100:duration={duration}",
        ]
    args += [
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-crf",
        str(crf),
        "-pix_fmt",
        "yuv420p",
        "-g",
        str(fps),
    ]
    if audio:
        args += ["-c:a", "aac", "-b:a", "64k", "-shortest"]
    with atomic_path(path, suffix=".mp4") as tmp:
        _run([*args, "-f", "mp4", str(tmp)])
    return path


def make_class_clip(
    path: str | Path,
    class_index: int,
    *,
    width: int = 128,
    height: int = 128,
    duration: float = 2.0,
    fps: int = 10,
    audio: bool = True,
    variant: int | None = None,
) -> Path:
    """A clip whose colour, motion and tone encode ``class_index`` (a learnable synthetic class).

    ``variant`` makes distinct clips of one class (a block placed differently, a slightly
    different tone), so they are not duplicates of each other.
    """
    return make_clip(
        path,
        width=width,
        height=height,
        duration=duration,
        fps=fps,
        audio=audio,
        source="color",
        color=PALETTE[class_index % len(PALETTE)],
        motion=2.0 + 3.0 * (class_index % 4),
        tone_hz=220.0 * (1 + class_index) + 5.0 * (variant or 0),
        layout=variant,
    )


def reencode(src: str | Path, dst: str | Path, *, width: int, height: int, crf: int = 32) -> Path:
    """A re-encoded, resized copy of ``src`` (a repost on another platform)."""
    args = [
        ffmpeg_binary(),
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-i",
        str(src),
        "-vf",
        f"scale={width}:{height}",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-crf",
        str(crf),
        "-c:a",
        "aac",
        "-b:a",
        "48k",
    ]
    with atomic_path(dst, suffix=".mp4") as tmp:
        _run([*args, "-f", "mp4", str(tmp)])
    return Path(dst)


def make_truncated(src: str | Path, dst: str | Path, keep_fraction: float = 0.3) -> Path:
    """A copy of ``src`` cut after ``keep_fraction`` of its bytes (a broken download)."""
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: max(1, int(len(data) * keep_fraction))])
    return Path(dst)
