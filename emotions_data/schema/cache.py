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
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from emotions_data.schema.errors import EmotionsDataError
from emotions_data.schema.safety import check_inside_root

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
    *,
    root: str | Path | None = None,
) -> Path:
    """Write one video's cache atomically (staging folder + rename).

    With ``root`` (a dataset root), the folder and its staging twin must lie inside it, links
    resolved, before anything is deleted or renamed (``schema.safety``).
    """
    folder = Path(folder)
    expected = (meta.n_segments, meta.frames_per_segment, meta.height, meta.width, 3)
    if frames.shape != expected or frames.dtype != np.uint8:
        raise CacheError(
            f"{folder}: frames must be uint8 {expected}, got {frames.dtype} {frames.shape}"
        )
    if logmel.shape[0] != meta.n_mels or mfcc.shape[0] != meta.n_mfcc:
        raise CacheError(f"{folder}: audio features do not match n_mels/n_mfcc of the meta")
    staging = folder.with_name(f".{folder.name}.partial")
    if root is not None:
        check_inside_root(root, folder, what="cache folder")
        check_inside_root(root, staging, what="cache folder")
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
    except (OSError, ValueError, TypeError) as exc:
        raise CacheError(f"{folder}: unreadable {META_FILE} ({exc})") from None
    sizes = (meta.n_segments, meta.frames_per_segment, meta.height, meta.width, meta.n_mels)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (*sizes, meta.n_mfcc)):
        raise CacheError(f"{folder}: {META_FILE} sizes must be integers, got {sizes}")
    if meta.version != CACHE_VERSION:
        raise CacheError(
            f"{folder}: cache version {meta.version}, expected {CACHE_VERSION}; re-run prepare"
        )
    return meta


def _load_array(path: Path, mode: Literal["r"] | None) -> npt.NDArray[Any]:
    """``np.load`` of one cache array; any malformed file (bad magic or header, truncated,
    an absurd shape) is a one-line ``CacheError`` naming it, never a numpy traceback."""
    try:
        array: npt.NDArray[Any] = np.load(path, mmap_mode=mode, allow_pickle=False)
    except FileNotFoundError:
        raise CacheError(f"{path}: missing cache array") from None
    # numpy raises ValueError for most bad headers, but EOFError for an empty file,
    # OverflowError for a negative shape and MemoryError for a huge one read without mmap
    except (OSError, ValueError, EOFError, OverflowError, MemoryError, SyntaxError) as exc:
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise CacheError(f"{path}: corrupt cache array ({reason})") from None
    return array


def read_cache(folder: str | Path, mmap: bool = True, check_values: bool = False) -> CacheEntry:
    """Load one video's cache, memory-mapped by default; raise ``CacheError`` if it is broken.

    Shapes and dtypes are always checked against ``meta.json`` (headers only, cheap).
    ``check_values`` also reads the audio features and rejects any NaN or infinity (a single
    one would turn the whole model NaN); frames are uint8 and cannot hold one.
    """
    folder = Path(folder)
    meta = read_cache_meta(folder)
    mode: Literal["r"] | None = "r" if mmap else None
    frames = _load_array(folder / FRAMES_FILE, mode)
    logmel = _load_array(folder / LOGMEL_FILE, mode)
    mfcc = _load_array(folder / MFCC_FILE, mode)
    expected = (meta.n_segments, meta.frames_per_segment, meta.height, meta.width, 3)
    if frames.shape != expected or frames.dtype != np.uint8:
        raise CacheError(
            f"{folder}: frames are {frames.dtype} {frames.shape}, expected uint8 {expected}"
        )
    if min(expected) < 1:
        raise CacheError(f"{folder}: empty frames {expected}; re-run prepare")
    for name, array, rows in (("logmel", logmel, meta.n_mels), ("mfcc", mfcc, meta.n_mfcc)):
        if array.ndim != 2 or array.shape[0] != rows or array.dtype != np.float32:
            raise CacheError(
                f"{folder}: {name} is {array.dtype} {array.shape}, expected float32 ({rows}, T)"
            )
    if logmel.shape[1] != mfcc.shape[1]:
        raise CacheError(
            f"{folder}: logmel has {logmel.shape[1]} steps but mfcc {mfcc.shape[1]}; re-run prepare"
        )
    if check_values:
        for name, array in (("logmel", logmel), ("mfcc", mfcc)):
            bad = int(array.size - np.count_nonzero(np.isfinite(array)))
            if bad:
                raise CacheError(f"{folder}: {name} holds {bad} non-finite value(s)")
    return CacheEntry(meta=meta, frames=frames, logmel=logmel, mfcc=mfcc)
