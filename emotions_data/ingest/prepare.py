"""``prepare``: probe, filter, deduplicate, normalise and cache the fetched videos, in place.

For each fetched video (``ROOT/videos.parquet``, rows with media) it fills the probe columns,
marks rows ``filtered`` (reason in ``error_message``) or ``failed``/``bad_media``, writes
``ROOT/normalized/<video_id>.mp4``, ``ROOT/audio/<video_id>.wav`` (16 kHz mono) and the
training cache ``ROOT/cache/<video_id>/`` (``emotions_data.schema.cache``), all from one decode
of the original (``ingest.mediapass``), and marks duplicates.

Duplicates: byte-identical files (same sha256) are found before any decoding (the earliest
uploaded, then the smallest ``video_id`` is kept), reposts after: per-second frame hashes
(``ingest.framehash``, ``ROOT/hashes/<video_id>.npz``) searched with an index and aligned in
time (``ingest.reposts``); each group's copies are compared with one another
(``ingest.copy_edits``) and the original is kept by ``ingest.keeprule`` (earliest upload,
then the fewest edits against the other copies, the widest view, quality, resolution;
``ingest.repost_groups``, docs/reposts.md). The others become ``duplicate`` with ``dup_of``
naming it and, in ``error_message``, why that copy was kept over this one (their outputs are
kept on disk); ``ROOT/reposts.parquet`` reports every copy of every group. Exact duplicates
are never decoded.

Resumable and idempotent: every output is written under a temporary name and renamed, the
manifest is rewritten atomically every 10 s or so, and an item whose outputs are verified
against their completion record (``ingest.outputs``: size and sha256 of each, same output
settings) is not decoded again: a second run only re-applies the filters and the duplicate
rule from the manifest columns. An output that no longer matches is redone.

Safety (docs/design.md "Trust boundary"): the run holds the root's write lock; every path
is built with ``schema.safety.inside_root`` from the manifest's (validated) ids; a fault of
the machine (no space, I/O error, a vanished temporary file, a killed worker) never marks a
video failed: the run saves what is done and stops with an ``EnvironmentFault``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from emotions_data.ingest.executors import check_executor, run_tasks
from emotions_data.ingest.faults import is_environment_message
from emotions_data.ingest.features import audio_features, read_wav_mono, silent_features
from emotions_data.ingest.framehash import hash_video
from emotions_data.ingest.mediapass import PassSettings, run_pass, tsn_indices
from emotions_data.ingest.outputs import verified_record, write_record
from emotions_data.ingest.probe import PROBE_COLUMNS, MediaError, ProbeResult, probe
from emotions_data.ingest.repost_groups import hashes_path, mark_reposts
from emotions_data.ingest.reposts import MatchSettings
from emotions_data.schema.atomic import atomic_path, sha256_file
from emotions_data.schema.cache import CacheMeta, write_cache
from emotions_data.schema.config import build, check, load_mapping
from emotions_data.schema.errors import (
    ConfigError,
    EnvironmentFault,
    ManifestError,
    describe_os_error,
)
from emotions_data.schema.io import read_manifest, write_manifest
from emotions_data.schema.safety import inside_root, root_lock

MANIFEST_NAME = "videos.parquet"
#: Rewrite the manifest while results arrive at least this many seconds apart...
_FLUSH_EVERY_S = 10.0
#: ...and further apart when a write is slow: the writes take at most this share of the run.
#: The manifest is a progress report here, not what a re-run resumes from: the completion
#: records are (``ingest.outputs``), so a killed run loses no finished video however stale the
#: manifest. (A write every 0.6 s, as "sooner when cheap" did, was 1.4 % of prepare's CPU.)
_FLUSH_SHARE = 0.01
_SCRATCH = ".prepare-tmp"
#: The manifest columns a completion record restores (``ingest.outputs``).
OUTPUT_COLUMNS = ("phash", "normalized_path", "audio_path", "cache_path")


@dataclass(frozen=True)
class PrepareConfig:
    """Every setting of ``prepare`` (``configs/prepare.yaml`` documents each)."""

    # filters
    min_duration_s: float = 1.0
    max_duration_s: float = 300.0
    require_audio: bool = False
    min_short_side: int = 64
    # normalised media
    short_side: int = 360
    fps: float = 15.0
    video_codec: str = "libx264"
    preset: str = "veryfast"
    crf: int = 23
    audio_codec: str = "aac"
    audio_bitrate: str = "96k"
    sample_rate: int = 16_000
    threads: int = 1
    # training cache
    # 2 segments per snippet of the paper model (16): training draws one of the 2 in each part,
    # so epochs see different frames (16 x 8 = the model's input gave one draw, every epoch)
    segments: int = 32
    frames_per_segment: int = 8
    cache_size: int = 128
    n_fft: int = 400
    hop_length: int = 160
    n_mels: int = 64
    n_mfcc: int = 32
    # reposts (near duplicates)
    repost_max_distance: int = 60
    repost_min_share: float = 0.5

    def pass_settings(self) -> PassSettings:
        return PassSettings(
            short_side=self.short_side,
            fps=self.fps,
            video_codec=self.video_codec,
            preset=self.preset,
            crf=self.crf,
            audio_codec=self.audio_codec,
            audio_bitrate=self.audio_bitrate,
            sample_rate=self.sample_rate,
            cache_size=self.cache_size,
            threads=self.threads,
        )

    def outputs_key(self) -> str:
        """Digest of the settings that shape the files; a change re-does every item."""
        shaping = {
            k: v
            for k, v in asdict(self).items()
            if k
            not in (
                "min_duration_s",
                "max_duration_s",
                "require_audio",
                "min_short_side",
                "repost_max_distance",
                "repost_min_share",
                "threads",
            )
        }
        return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()[:16]


def load_prepare_config(
    source: PrepareConfig | str | Path | dict[str, Any] | None,
) -> PrepareConfig:
    """The settings of a YAML file or mapping (``None``: the defaults), typed and checked.

    A wrong type is refused here (``schema.config``): it would otherwise reach ffmpeg and mark
    every video failed for good."""
    if isinstance(source, PrepareConfig):
        return source
    data, where = load_mapping(source, "prepare config")
    config = build(PrepareConfig, data, where)
    for name in ("short_side", "segments", "frames_per_segment", "cache_size"):
        value = getattr(config, name)
        check(value >= 1, where, name, "a positive integer", value)
    check(
        0 <= config.repost_max_distance <= 256,
        where,
        "repost_max_distance",
        "an integer in 0-256",
        config.repost_max_distance,
    )
    check(
        0 < config.repost_min_share <= 1,
        where,
        "repost_min_share",
        "a number in (0, 1]",
        config.repost_min_share,
    )
    check(config.fps > 0, where, "fps", "a number > 0", config.fps)
    check(
        config.min_duration_s <= config.max_duration_s,
        where,
        "min_duration_s",
        f"at most max_duration_s ({config.max_duration_s:g})",
        config.min_duration_s,
    )
    return config


def filter_reason(info: ProbeResult, config: PrepareConfig) -> str | None:
    """Why a probed video is filtered out, or None when it passes."""
    if info.duration_s < config.min_duration_s:
        return f"duration {info.duration_s:.2f} s < min_duration_s {config.min_duration_s:g}"
    if info.duration_s > config.max_duration_s:
        return f"duration {info.duration_s:.2f} s > max_duration_s {config.max_duration_s:g}"
    if config.require_audio and not info.has_audio:
        return "no audio stream (require_audio is set)"
    short = min(info.width, info.height)
    if short < config.min_short_side:
        return f"short side {short} px < min_short_side {config.min_short_side}"
    return None


def _cache_arrays(
    out_frames: np.ndarray[Any, Any],
    wav: Path | None,
    info: ProbeResult,
    video_id: str,
    fps: float,
    config: PrepareConfig,
) -> tuple[CacheMeta, Any, Any, Any]:
    idx = tsn_indices(len(out_frames), config.segments, config.frames_per_segment)
    frames = np.ascontiguousarray(out_frames[idx])
    if wav is not None and info.has_audio and wav.exists():
        samples, rate = read_wav_mono(wav)
        logmel, mfcc = audio_features(
            samples,
            sample_rate=rate,
            n_fft=config.n_fft,
            hop_length=config.hop_length,
            n_mels=config.n_mels,
            n_mfcc=config.n_mfcc,
        )
        has_audio = True
    else:
        logmel, mfcc = silent_features(
            info.duration_s,
            sample_rate=config.sample_rate,
            hop_length=config.hop_length,
            n_mels=config.n_mels,
            n_mfcc=config.n_mfcc,
        )
        has_audio = False
    meta = CacheMeta(
        video_id=video_id,
        n_segments=config.segments,
        frames_per_segment=config.frames_per_segment,
        height=config.cache_size,
        width=config.cache_size,
        duration_s=float(info.duration_s),
        source_fps=float(fps),
        has_audio=has_audio,
        sample_rate=config.sample_rate,
        hop_length=config.hop_length,
        n_mels=config.n_mels,
        n_mfcc=config.n_mfcc,
    )
    return meta, frames, logmel, mfcc


def build_cache_for_file(
    media: str | Path,
    cache_dir: str | Path,
    video_id: str,
    config: PrepareConfig | str | Path | None = None,
) -> CacheMeta:
    """Build the training cache of one raw video file (e.g. for ``baseline predict``).

    Same frames and features as ``prepare`` (one decode, no normalised file kept); raises
    ``MediaError`` for an unreadable file.
    """
    conf = load_prepare_config(config)
    media, cache_dir = Path(media), Path(cache_dir)
    info = probe(media)
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    with _scratch(cache_dir.parent / _SCRATCH, video_id) as work:
        wav = work / "audio.wav"
        out = run_pass(media, info, conf.pass_settings(), work, normalized=None, wav=wav)
        meta, frames, logmel, mfcc = _cache_arrays(out.frames, wav, info, video_id, out.fps, conf)
    write_cache(cache_dir, meta, frames, logmel, mfcc)
    return meta


@contextlib.contextmanager
def _scratch(parent: Path, name: str) -> Any:
    work = parent / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)
        with contextlib.suppress(OSError):
            parent.rmdir()  # only when no other item is using it


def _remove_leftovers(root: Path) -> None:
    """Temporary files of a killed run (never under a final name, but they take space).

    Each folder is checked to lie inside the root first: a ``normalized`` that is a link out of
    the root stops the run rather than have its files deleted.
    """
    shutil.rmtree(inside_root(root, _SCRATCH), ignore_errors=True)
    for folder in ("normalized", "audio"):
        for tmp in inside_root(root, folder).glob(".*.tmp*"):
            tmp.unlink(missing_ok=True)
    for staging in inside_root(root, "cache").glob(".*.partial"):
        shutil.rmtree(staging, ignore_errors=True)


@dataclass(frozen=True)
class PrepareTask:
    video_id: str
    root: str
    media_path: str
    config: PrepareConfig
    info: ProbeResult | None = None
    outputs_key: str = ""


@dataclass
class PrepareResult:
    video_id: str
    status: str  # ok | filtered | failed
    error_kind: str | None = None
    error_message: str | None = None
    info: ProbeResult | None = None
    phash: str | None = None
    normalized_path: str | None = None
    audio_path: str | None = None
    cache_path: str | None = None
    seconds: float = 0.0
    #: A fault of the environment (no space, I/O error): not the video's failure, never stored.
    fault: str | None = None


def prepare_one(task: PrepareTask) -> PrepareResult:
    """Probe, filter and (when it passes) normalise and cache one video; never raises for it."""
    started = time.monotonic()
    root = Path(task.root)
    conf = task.config
    result = PrepareResult(video_id=task.video_id, status="ok", info=task.info)
    # every path from the manifest's (validated) id, checked to stay inside the root; an escape
    # (a folder linked out of the root) raises and stops the run: it is not this video's fault
    vid = task.video_id
    rel_norm, rel_wav, rel_cache = f"normalized/{vid}.mp4", f"audio/{vid}.wav", f"cache/{vid}"
    media = inside_root(root, task.media_path, what="media_path")
    norm_path, wav_path = inside_root(root, rel_norm), inside_root(root, rel_wav)
    cache_dir, scratch = inside_root(root, rel_cache), inside_root(root, _SCRATCH)
    try:
        info = task.info or probe(media)
        result.info = info
        reason = filter_reason(info, conf)
        if reason is not None:
            result.status, result.error_kind, result.error_message = "filtered", "filtered", reason
            return result
        with contextlib.ExitStack() as stack:
            # parallelism comes from the workers: a second BLAS thread only spins (measured:
            # the frame hashes cost 3x the CPU with two OpenBLAS threads on 2 cores)
            stack.enter_context(threadpool_limits(limits=conf.threads))
            work = stack.enter_context(_scratch(scratch, vid))
            tmp_norm = stack.enter_context(atomic_path(norm_path, suffix=".mp4"))
            # no audio stream, no WAV
            tmp_wav = (
                stack.enter_context(atomic_path(wav_path, suffix=".wav"))
                if info.has_audio
                else None
            )
            out = run_pass(
                media,
                info,
                conf.pass_settings(),
                work,
                normalized=tmp_norm,
                wav=tmp_wav,
            )
            meta, frames, logmel, mfcc = _cache_arrays(
                out.frames, tmp_wav, info, vid, out.fps, conf
            )
            hashes = hash_video(out.hash_frames)
            result.phash = hashes.summary()
            with atomic_path(hashes_path(root, vid), suffix=".npz") as tmp_hash:
                hashes.save(tmp_hash)
        write_cache(cache_dir, meta, frames, logmel, mfcc, root=root)
        result.normalized_path = rel_norm
        result.audio_path = rel_wav if info.has_audio else None
        result.cache_path = rel_cache
        # the record goes last: it, verified, is what makes the item done (ingest.outputs)
        write_record(
            root,
            outputs_key=task.outputs_key or conf.outputs_key(),
            phash=result.phash,
            normalized_path=rel_norm,
            audio_path=result.audio_path,
            cache_path=rel_cache,
            extra=[f"hashes/{vid}.npz"],
        )
    except MediaError as exc:
        if is_environment_message(str(exc)):  # ffmpeg hit a full disk, not a bad file
            result.fault = str(exc)
        else:
            result.status, result.error_kind, result.error_message = "failed", "bad_media", str(exc)
    except OSError as exc:  # writing our own outputs failed: the machine, never the video
        result.fault = describe_os_error(exc)
        if exc.errno is None:  # numpy reports a full disk as a short write, without errno
            free = shutil.disk_usage(root).free // 2**20
            result.fault += f" (a short write: {free} MiB free on the disk)"
    result.seconds = time.monotonic() - started
    return result


@dataclass
class PrepareSummary:
    """What a prepare run did, and where every video stands after it."""

    total: int
    processed: int
    skipped: int
    exact_duplicates: int = 0
    near_duplicates: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    by_error: dict[str, int] = field(default_factory=dict)
    manifest: str = ""
    changed: bool = False
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["elapsed_s"] = round(self.elapsed_s, 2)
        return data


def _probe_of(row: dict[str, Any]) -> ProbeResult | None:
    if row.get("duration_s") is None or row.get("width") is None or row.get("height") is None:
        return None
    rate = row.get("audio_sample_rate")
    return ProbeResult(
        duration_s=float(row["duration_s"]),
        width=int(row["width"]),
        height=int(row["height"]),
        fps=float(row.get("fps") or 0.0),
        has_audio=bool(row.get("has_audio")),
        audio_sample_rate=int(rate) if rate is not None else None,
        video_codec=row.get("video_codec"),
        audio_codec=row.get("audio_codec"),
    )


def _verified_records(
    video_ids: list[str], root: Path, outputs_key: str, workers: int, verify: bool
) -> dict[str, dict[str, Any]]:
    """Completion records of the videos whose outputs all still match them (``ingest.outputs``).

    Hashing the outputs is I/O and hashlib releases the GIL, so it runs on ``workers`` threads.
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        found = pool.map(lambda v: verified_record(root, v, outputs_key, verify=verify), video_ids)
        return {v: r for v, r in zip(video_ids, found, strict=True) if r is not None}


def _exact_keep_order(row: dict[str, Any]) -> tuple[Any, ...]:
    """Byte-identical copies: the earliest uploaded, then the smallest id (same on every run)."""
    upload = row.get("upload_date")
    return (upload is None, str(upload or ""), str(row["video_id"]))


class _Book:
    """The manifest rows in memory; written atomically when they differ from the file."""

    def __init__(self, path: Path, df: pd.DataFrame, params: dict[str, Any]) -> None:
        self.path, self.params, self.columns = path, params, list(df.columns)
        self.rows: list[dict[str, Any]] = (
            df.astype(object).where(df.notna(), None).to_dict("records")
        )
        self.original = [dict(r) for r in self.rows]
        self.written = self.original
        self.last_flush = time.monotonic()
        self.write_s = 0.0  # how long the last write took

    @property
    def changed(self) -> bool:
        return self.rows != self.original

    def flush(self, *, force: bool = False) -> None:
        since = time.monotonic() - self.last_flush
        if not force and since < max(_FLUSH_EVERY_S, self.write_s / _FLUSH_SHARE):
            return
        self.last_flush = time.monotonic()
        if self.rows == self.written:
            return  # nothing new: the file (and its timestamps) stay untouched
        df = pd.DataFrame(self.rows, columns=self.columns)
        write_manifest(df, self.path, "videos", params=self.params)
        self.written = [dict(r) for r in self.rows]
        self.write_s = time.monotonic() - self.last_flush


def prepare(
    root: str | Path,
    *,
    config: PrepareConfig | str | Path | None = None,
    workers: int = 2,
    progress: bool = True,
    executor: str = "local",
    ray_address: str | None = None,
    verify: bool = False,
) -> PrepareSummary:
    """Probe, filter, deduplicate, normalise and cache the videos of ``root/videos.parquet``.

    ``verify`` re-hashes every done output instead of trusting unchanged size and times
    (``ingest.outputs``). Holds the root's write lock (``RootLockedError`` if another run holds it); raises
    ``EnvironmentFault`` when the machine fails (what is done is saved, nothing is failed).
    """
    check_executor(executor)
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    conf = load_prepare_config(config)
    root = Path(root)
    path = root / MANIFEST_NAME
    if not path.exists():
        raise ManifestError([f"{path}: no videos manifest here; run `emotions-data fetch` first"])
    with root_lock(root):
        return _prepare_locked(root, conf, workers, progress, executor, ray_address, verify)


def _prepare_locked(
    root: Path,
    conf: PrepareConfig,
    workers: int,
    progress: bool,
    executor: str,
    ray_address: str | None,
    verify: bool,
) -> PrepareSummary:
    """The run, step by step, under the root's lock (``prepare``)."""
    started = time.monotonic()
    path = root / MANIFEST_NAME
    manifest = read_manifest(path, "videos")
    key = conf.outputs_key()
    same_outputs = manifest.meta.params.get("outputs_key") == key
    params = {"config": asdict(conf), "outputs_key": key, "workers": workers}
    book = _Book(path, manifest.df, params)
    _remove_leftovers(root)
    cand = _candidates(root, book.rows, same_outputs)
    by_sha, exact = _mark_exact_duplicates(cand)
    todo = _apply_filters(cand, conf)
    # done means verified: every output matches its completion record (else it is redone);
    # a record also brings back the outputs of a run killed before its manifest write
    records = _verified_records(
        [str(r["video_id"]) for r, info in todo if info is not None], root, key, workers, verify
    )
    tasks, skipped = _plan_tasks(todo, records, root, conf, key)
    _run_and_record(tasks, book, progress, workers, executor, ray_address)
    # exact duplicates share the kept copy's bytes, hence its probe
    for group in by_sha.values():
        for row in group[1:]:
            row.update({c: group[0].get(c) for c in PROBE_COLUMNS})
    settings = MatchSettings(max_distance=conf.repost_max_distance, min_share=conf.repost_min_share)
    # small matrices, one after another: a second BLAS thread only spins (measured on the
    # repost benchmark's 228 clips: 73 CPU s / 37 s wall with two threads, 31 / 31 with one)
    with threadpool_limits(limits=1):
        near = mark_reposts(root, [r for r in cand if r["status"] == "ok"], settings)
    book.flush(force=True)
    statuses = Counter(str(r["status"]) for r in book.rows)
    errors = Counter(str(r["error_kind"]) for r in book.rows if r.get("error_kind"))
    return PrepareSummary(
        total=len(book.rows),
        processed=len(tasks),
        skipped=skipped,
        exact_duplicates=exact,
        near_duplicates=near,
        by_status=dict(sorted(statuses.items())),
        by_error=dict(sorted(errors.items())),
        manifest=str(path),
        changed=book.changed,
        elapsed_s=time.monotonic() - started,
    )


def _candidates(root: Path, rows: list[dict[str, Any]], same_outputs: bool) -> list[dict[str, Any]]:
    """The rows to (re)consider, their derived status reset and their sha256 known.

    Every fetched file not already failed; and, when the output settings changed, also the
    files an earlier run failed on: a bad setting (an encoder ffmpeg lacks) must not mark good
    videos failed for good; and the failures an older version recorded for a full disk or an
    I/O error."""
    cand = [
        r
        for r in rows
        if r.get("media_path")
        and (
            r["status"] != "failed"
            or not same_outputs
            or is_environment_message(r.get("error_message"))
        )
    ]
    for row in cand:
        row.update(status="ok", error_kind=None, error_message=None, dup_of=None)
        if not same_outputs:
            row.update(phash=None, normalized_path=None, audio_path=None, cache_path=None)
        if not row.get("sha256") and (root / str(row["media_path"])).is_file():
            row.update(sha256=sha256_file(root / str(row["media_path"])))
    return cand


def _mark_exact_duplicates(
    cand: list[dict[str, Any]],
) -> tuple[dict[str, list[dict[str, Any]]], int]:
    """Identical bytes are never decoded twice: per sha256 the first by ``_exact_keep_order``
    is kept, the others marked; returns the groups (kept copy first) and how many were marked."""
    by_sha: dict[str, list[dict[str, Any]]] = {}
    for row in cand:
        if row.get("sha256"):
            by_sha.setdefault(str(row["sha256"]), []).append(row)
    exact = 0
    for group in by_sha.values():
        group.sort(key=_exact_keep_order)
        for row in group[1:]:
            exact += 1
            msg = f"exact duplicate (same sha256) of {group[0]['video_id']}"
            row.update(status="duplicate", dup_of=group[0]["video_id"], error_message=msg)
    return by_sha, exact


def _apply_filters(
    cand: list[dict[str, Any]], conf: PrepareConfig
) -> list[tuple[dict[str, Any], ProbeResult | None]]:
    """Marks the already probed rows the filters refuse; the others, with their probe if any."""
    todo: list[tuple[dict[str, Any], ProbeResult | None]] = []
    for row in cand:
        if row["status"] == "duplicate":
            continue
        info = _probe_of(row)
        if info is not None:
            reason = filter_reason(info, conf)
            if reason is not None:
                row.update(status="filtered", error_kind="filtered", error_message=reason)
                continue
        todo.append((row, info))
    return todo


def _plan_tasks(
    todo: list[tuple[dict[str, Any], ProbeResult | None]],
    records: dict[str, dict[str, Any]],
    root: Path,
    conf: PrepareConfig,
    key: str,
) -> tuple[list[PrepareTask], int]:
    """A task per row still to decode; a verified record restores a done row's outputs
    instead. Returns the tasks and how many rows were done already."""
    tasks: list[PrepareTask] = []
    skipped = 0
    for row, info in todo:
        record = records.get(str(row["video_id"]))
        if record is not None:
            row.update({c: record[c] for c in OUTPUT_COLUMNS})
            skipped += 1
            continue
        tasks.append(
            PrepareTask(
                video_id=str(row["video_id"]),
                root=str(root),
                media_path=str(row["media_path"]),
                config=conf,
                info=info,
                outputs_key=key,
            )
        )
    return tasks, skipped


def _result_columns(res: PrepareResult) -> dict[str, Any]:
    """The manifest columns one item's result sets."""
    values: dict[str, Any] = {
        "status": res.status,
        "error_kind": res.error_kind,
        "error_message": res.error_message,
    }
    if res.info is not None:
        values.update(res.info.to_columns())
    if res.status == "ok":
        values.update(
            phash=res.phash,
            normalized_path=res.normalized_path,
            audio_path=res.audio_path,
            cache_path=res.cache_path,
        )
    return values


def _run_and_record(
    tasks: list[PrepareTask],
    book: _Book,
    progress: bool,
    workers: int,
    executor: str,
    ray_address: str | None,
) -> None:
    """Run the tasks on the executor and write each result into its row as it arrives.

    Whatever stops the run (Ctrl-C, a broken pool) saves what is done first; a fault of the
    machine stops it with ``EnvironmentFault`` and records nothing for that item."""
    by_id = {str(r["video_id"]): r for r in book.rows}
    bar = _progress_bar(len(tasks), progress)
    failed = finished = 0
    fault: PrepareResult | None = None
    results = run_tasks(
        prepare_one,
        tasks,
        workers=min(workers, max(1, len(tasks))),
        executor=executor,
        ray_address=ray_address,
    )
    try:
        for res in results:
            if res.fault is not None:  # the machine failed, not the video: stop, record nothing
                fault = res
                break
            by_id[res.video_id].update(_result_columns(res))
            book.flush()
            failed += res.status == "failed"
            finished += 1
            bar.set_postfix(failed=failed, refresh=False)
            bar.update(1)
    except BaseException:
        results.close()
        book.flush(force=True)  # keep what is done (Ctrl-C, a broken pool)
        raise
    finally:
        bar.close()
    if fault is not None:
        results.close()  # cancels what has not started; running items finish first
        book.flush(force=True)
        left = len(tasks) - finished
        raise EnvironmentFault(
            f"prepare stopped: {fault.fault} (while preparing {fault.video_id}); no video was "
            f"marked failed for it: fix that and run prepare again ({left} video(s) left)"
        )


def _progress_bar(total: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, disable=not enabled, unit="video", desc="prepare", file=sys.stderr)
