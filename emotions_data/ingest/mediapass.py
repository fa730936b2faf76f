"""One ffmpeg decode of the original gives every output of ``prepare``.

Decoding dominates the cost (docs/benchmarks.md, "prepare"), so the original is decoded exactly once and
the decoded frames are scaled once to the normalised size, then split (ffmpeg ``split``
filter) into three branches:

1. the normalised mp4 (short side, fps, h264/aac), plus a 16 kHz mono WAV from the audio;
2. the cache frames: the centre square, scaled to ``cache_size`` square in one step that also
   converts to raw RGB, at the normalised fps (the model random-crops 112 px from these);
3. the hash frames: ``framehash.HASH_FPS`` a second, RGB, squashed to ``HASH_SIDE`` square
   (aspect ignored, so a resized repost still matches; bars are found and cut later).

The graph is built with ffmpeg-python (which escapes commas in filter arguments itself) and
run with an argument list (no shell). Any failure becomes a ``MediaError`` with one line of
ffmpeg's stderr, inside the worker (``ffmpeg.Error`` cannot be pickled).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from emotions_data.ingest.faults import is_environment_message
from emotions_data.ingest.framehash import HASH_FPS, HASH_SIDE
from emotions_data.ingest.probe import MediaError, ProbeResult, ffmpeg_binary


@dataclass(frozen=True)
class PassSettings:
    short_side: int
    fps: float
    video_codec: str
    preset: str
    crf: int
    audio_codec: str
    audio_bitrate: str
    sample_rate: int
    cache_size: int
    threads: int


@dataclass
class PassOutput:
    frames: npt.NDArray[np.uint8]  # (N, cache_size, cache_size, 3)
    hash_frames: npt.NDArray[np.uint8]  # (N, HASH_SIDE, HASH_SIDE, 3) RGB, HASH_FPS a second
    fps: float  # the frame rate of the cache frames


def _even(x: float) -> int:
    return max(2, round(x / 2.0) * 2)


def normalised_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """Output size with the short side at ``short_side`` (never upscaled), both even."""
    short = min(width, height)
    target = min(short_side, short)
    scale = target / short
    return _even(width * scale), _even(height * scale)


def output_fps(source_fps: float, target_fps: float) -> float:
    """The normalised rate: ``target_fps``, or the source's rate when that is lower."""
    if source_fps <= 0:
        return target_fps
    return min(source_fps, target_fps)


def run_pass(
    source: Path,
    info: ProbeResult,
    settings: PassSettings,
    work: Path,
    *,
    normalized: Path | None,
    wav: Path | None,
) -> PassOutput:
    """Decode ``source`` once; write ``normalized`` (mp4) and ``wav`` when given.

    ``work`` is an empty scratch folder for the raw frame files. Raise ``MediaError`` when
    ffmpeg fails or decodes much less than the probed duration (a truncated file).
    """
    import ffmpeg

    fps = output_fps(info.fps, settings.fps)
    frames_raw, hash_raw = work / "frames.rgb", work / "hash.rgb"
    # the decoder too gets ``threads``: the parallelism comes from the workers, and a
    # frame-threaded decoder next to a busy worker only adds CPU (5 % measured at 2 cores)
    inp = ffmpeg.input(str(source), threads=settings.threads)
    video = inp.video
    if info.fps <= 0 or info.fps > fps + 0.01:
        video = video.filter("fps", fps=round(fps, 3))
    # scaled to the normalised size once, before the split: the cache and hash branches then
    # scale from 360p, not from the original (a second full-size scale cost ~10 % more CPU)
    width, height = normalised_size(info.width, info.height, settings.short_side)
    video = video.filter("scale", width, height)
    branches = video.filter_multi_output("split", 3 if normalized is not None else 2)
    c, side = settings.cache_size, min(width, height)
    # centre square first (free: a crop only moves pointers), then one scale that also
    # converts to RGB; a scale followed by a crop needs a second, format-only scale to RGB
    # (measured: the cache branch cost 2x as much). Area: a box-filter downscale, no aliasing.
    cache_v = branches[0].filter("crop", side, side).filter("scale", c, c, flags="area")
    cache_v = cache_v.filter("format", "rgb24")
    # the fps filter first: only the few hash frames are scaled
    hash_v = branches[1].filter("fps", fps=HASH_FPS).filter("scale", HASH_SIDE, HASH_SIDE)
    hash_v = hash_v.filter("format", "rgb24")
    outputs = [
        ffmpeg.output(cache_v, str(frames_raw), format="rawvideo", pix_fmt="rgb24"),
        ffmpeg.output(hash_v, str(hash_raw), format="rawvideo", pix_fmt="rgb24"),
    ]
    if normalized is not None:
        norm_v = branches[2]
        streams = [norm_v, inp.audio] if info.has_audio else [norm_v]
        audio_opts = (
            {"acodec": settings.audio_codec, "audio_bitrate": settings.audio_bitrate}
            if info.has_audio
            else {}
        )
        outputs.append(
            ffmpeg.output(
                *streams,
                str(normalized),
                format="mp4",
                vcodec=settings.video_codec,
                preset=settings.preset,
                crf=settings.crf,
                pix_fmt="yuv420p",
                movflags="+faststart",
                threads=settings.threads,
                **audio_opts,
            )
        )
    if wav is not None and info.has_audio:
        outputs.append(
            ffmpeg.output(
                inp.audio, str(wav), format="wav", ac=1, ar=settings.sample_rate, acodec="pcm_s16le"
            )
        )
    # global options go first: ffmpeg-python would append them after the last output
    compiled = ffmpeg.merge_outputs(*outputs).compile(cmd=ffmpeg_binary())
    args = [
        compiled[0],
        "-hide_banner",
        "-nostdin",
        "-y",
        "-loglevel",
        "error",
        "-filter_complex_threads",
        str(settings.threads),
        *compiled[1:],
    ]
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        lines = [ln.replace(str(source), "<file>") for ln in proc.stderr.splitlines() if ln.strip()]
        # a line naming a full disk or an I/O error wins: the caller must not blame the video
        faults = [ln for ln in lines if is_environment_message(ln)]
        reason = (faults or lines or [f"exit code {proc.returncode}"])[-1]
        raise MediaError(f"ffmpeg could not decode the file: {reason}")
    frames = np.fromfile(frames_raw, dtype=np.uint8)
    hashes = np.fromfile(hash_raw, dtype=np.uint8)
    n = len(frames) // (c * c * 3)
    if n == 0:
        raise MediaError("no video frame could be decoded")
    expected = info.duration_s * fps
    if expected >= 4 and n < 0.9 * expected:
        raise MediaError(
            f"truncated: decoded {n / fps:.1f} s of the {info.duration_s:.1f} s the file declares"
        )
    frames = frames[: n * c * c * 3].reshape(n, c, c, 3)
    n_hash = len(hashes) // (HASH_SIDE * HASH_SIDE * 3)
    if n_hash == 0:
        raise MediaError("no video frame could be decoded for the hash")
    hash_frames = hashes[: n_hash * HASH_SIDE * HASH_SIDE * 3].reshape(
        n_hash, HASH_SIDE, HASH_SIDE, 3
    )
    return PassOutput(frames=frames, hash_frames=hash_frames, fps=fps)


def tsn_indices(n_frames: int, segments: int, per_segment: int) -> npt.NDArray[np.int64]:
    """(segments, per_segment) frame indices: ``per_segment`` consecutive frames centred in each
    of ``segments`` equal parts of the clip (TSN); indices repeat when the clip is short."""
    seg_len = n_frames / segments
    centres = (np.arange(segments) + 0.5) * seg_len
    starts = np.clip(np.floor(centres - per_segment / 2), 0, max(0, n_frames - per_segment))
    idx = starts[:, None].astype(np.int64) + np.arange(per_segment)[None, :]
    return np.asarray(np.clip(idx, 0, n_frames - 1), dtype=np.int64)
