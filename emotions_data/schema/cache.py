"""The training-cache contract between ``prepare`` (writer) and the baseline (reader).

One folder per video, ``<root>/cache/<video_id>/`` (the videos manifest's ``cache_path``)::

    frames.npy   uint8   (S, Fc, H, W, 3)  S uniform TSN segments, Fc consecutive frames each
    logmel.npy   float32 (n_mels, T)       log-mel spectrogram of the 16 kHz mono audio
    mfcc.npy     float32 (n_mfcc, T)       MFCCs over the same hop
    meta.json    the CacheMeta fields below

``Fc`` may exceed the model's F so training can take a random F-frame window in each segment.
Every array is a plain ``.npy`` so it can be memory-mapped (``np.load(..., mmap_mode="r")``).
A video without audio gets all-zero features and ``has_audio: false``. The folder is written
under a temporary name and renamed, so a folder with ``meta.json`` is always complete.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from emotions_data.schema.errors import EmotionsDataError

CACHE_VERSION = 1
FRAMES_FILE, LOGMEL_FILE, MFCC_FILE, META_FILE = "frames.npy", "logmel.npy", "mfcc.npy", "meta.json"


class CacheError(EmotionsDataError):
    """A cache folder is missing, incomplete or inconsistent."""


@dataclass(frozen=True)
class CacheMeta:
    video_id: str
    n_segments: int
    frames_per_segment: int
    height: int
    width: int
    duration_s: float
    source_fps: float
    has_audio: bool
    sample_rate: int = 16_000
    hop_length: int = 160
    n_mels: int = 64
    n_mfcc: int = 32
    version: int = CACHE_VERSION


@dataclass
class CacheEntry:
    meta: CacheMeta
    frames: npt.NDArray[np.uint8]
    logmel: npt.NDArray[np.float32]
    mfcc: npt.NDArray[np.float32]


def write_cache(
    folder: str | Path,
    meta: CacheMeta,
    frames: npt.NDArray[np.uint8],
    logmel: npt.NDArray[np.float32],
    mfcc: npt.NDArray[np.float32],
) -> Path:
    """Write one video's cache atomically (staging folder + rename)."""
    folder = Path(folder)
    expected = (meta.n_segments, meta.frames_per_segment, meta.height, meta.width, 3)
    if frames.shape != expected or frames.dtype != np.uint8:
        raise CacheError(
            f"{folder}: frames must be uint8 {expected}, got {frames.dtype} {frames.shape}"
        )
    if logmel.shape[0] != meta.n_mels or mfcc.shape[0] != meta.n_mfcc:
        raise CacheError(f"{folder}: audio features do not match n_mels/n_mfcc of the meta")
    staging = folder.with_name(f".{folder.name}.partial")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    np.save(staging / FRAMES_FILE, frames)
    np.save(staging / LOGMEL_FILE, logmel.astype(np.float32, copy=False))
    np.save(staging / MFCC_FILE, mfcc.astype(np.float32, copy=False))
    (staging / META_FILE).write_text(json.dumps(asdict(meta), indent=1))
    if folder.exists():
        shutil.rmtree(folder)
    staging.rename(folder)
    return folder


def read_cache_meta(folder: str | Path) -> CacheMeta:
    folder = Path(folder)
    try:
        data = json.loads((folder / META_FILE).read_text())
        meta = CacheMeta(**data)
    except FileNotFoundError:
        raise CacheError(f"{folder}: no cache here (missing {META_FILE})") from None
    except (ValueError, TypeError) as exc:
        raise CacheError(f"{folder}: unreadable {META_FILE} ({exc})") from None
    if meta.version != CACHE_VERSION:
        raise CacheError(
            f"{folder}: cache version {meta.version}, expected {CACHE_VERSION}; re-run prepare"
        )
    return meta


def read_cache(folder: str | Path, mmap: bool = True) -> CacheEntry:
    """Load one video's cache, memory-mapped by default; raise ``CacheError`` if it is broken."""
    folder = Path(folder)
    meta = read_cache_meta(folder)
    mode: Literal["r"] | None = "r" if mmap else None
    try:
        frames = np.load(folder / FRAMES_FILE, mmap_mode=mode)
        logmel = np.load(folder / LOGMEL_FILE, mmap_mode=mode)
        mfcc = np.load(folder / MFCC_FILE, mmap_mode=mode)
    except (OSError, ValueError) as exc:
        raise CacheError(f"{folder}: corrupt cache array ({exc})") from None
    expected = (meta.n_segments, meta.frames_per_segment, meta.height, meta.width, 3)
    if frames.shape != expected or frames.dtype != np.uint8:
        raise CacheError(
            f"{folder}: frames are {frames.dtype} {frames.shape}, expected uint8 {expected}"
        )
    if (
        logmel.ndim != 2
        or logmel.shape[0] != meta.n_mels
        or mfcc.ndim != 2
        or mfcc.shape[0] != meta.n_mfcc
    ):
        raise CacheError(f"{folder}: audio features do not match the meta (n_mels/n_mfcc)")
    return CacheEntry(meta=meta, frames=frames, logmel=logmel, mfcc=mfcc)
