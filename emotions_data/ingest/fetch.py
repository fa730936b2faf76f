"""``fetch``: download a URL list into ``ROOT/media/`` and the videos manifest ``ROOT/videos.parquet``.

The manifest is the source of truth and is keyed by ``source_url``: a re-run skips URLs whose
row is ``ok`` (and whose file exists), retries failed ones only with ``retry_failed``, and
never adds a second row for a URL. The manifest is rewritten atomically every few seconds
while results arrive, so a run killed at any moment loses at most the items in flight.

Input columns other than ``url`` are carried into the manifest; a column whose name the
videos kind declares (``video_id``, ``title``, ...) is carried as ``input_<name>``, except
``platform``, which is the platform hint for direct-file URLs (see ``ingest.download``).

The URL list is untrusted (docs/design.md "Trust boundary"): a ``platform`` that is not a
safe name (``../../x``) makes the whole list a one-line error before anything is written
(it would become a folder under ``media/``); URLs are stored without credentials. The run
holds the root's write lock; a download finished by a killed run is adopted from its
completion record when its file still matches; a fault of the machine stops the run without
failing the item.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from emotions_data.ingest.download import (
    DONE_DIR,
    DownloadResult,
    DownloadTask,
    adopt_finished,
    download_one,
    guess_ids,
)
from emotions_data.ingest.executors import check_executor, run_tasks
from emotions_data.ingest.faults import stored_url
from emotions_data.ingest.probe import PROBE_COLUMNS
from emotions_data.ingest.profiles import FetchProfile, load_profile
from emotions_data.schema.errors import ConfigError, EnvironmentFault, ManifestError
from emotions_data.schema.ids import url_video_id
from emotions_data.schema.io import read_manifest, read_table_file, write_manifest
from emotions_data.schema.manifests import VIDEOS
from emotions_data.schema.safety import (
    SAFE_NAME_RULE,
    UnsafePathError,
    inside_root,
    is_safe_name,
    regular_file_inside,
    root_lock,
)

MANIFEST_NAME = "videos.parquet"
#: Rewrite the manifest while results arrive at most this often...
_FLUSH_EVERY_S = 5.0
#: ...but sooner when a write is cheap: writing may take at most this share of the run.
_FLUSH_SHARE = 0.05
#: Columns set by prepare; a fresh download clears them so prepare looks at the file again.
PREPARE_COLUMNS = (
    *PROBE_COLUMNS,
    "phash",
    "dup_of",
    "normalized_path",
    "audio_path",
    "cache_path",
)


@dataclass
class FetchSummary:
    """What a fetch run did: counts by final status and error kind over the input URLs."""

    total: int
    downloaded: int
    skipped: int
    #: finished downloads of a killed run, taken over from their completion records
    adopted: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    by_error: dict[str, int] = field(default_factory=dict)
    manifest: str = ""
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "downloaded": self.downloaded,
            "skipped": self.skipped,
            "adopted": self.adopted,
            "by_status": dict(self.by_status),
            "by_error": dict(self.by_error),
            "manifest": self.manifest,
            "elapsed_s": round(self.elapsed_s, 2),
        }


def read_url_list(urls: str | Path | pd.DataFrame) -> pd.DataFrame:
    """The input as a frame with a clean ``url`` column (blank lines and repeats dropped)."""
    if isinstance(urls, pd.DataFrame):
        df = urls.copy()
        source = "<DataFrame>"
    else:
        path = Path(urls)
        source = str(path)
        if path.suffix.lower() in (".csv", ".parquet"):
            df = read_table_file(path)
        else:
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except FileNotFoundError:
                raise ManifestError([f"{path}: no such file"]) from None
            except UnicodeDecodeError:
                raise ManifestError(
                    [f"{path}: not UTF-8 text; expected one URL a line, or a .csv/.parquet table"]
                ) from None
            kept = [s.strip() for s in lines if s.strip() and not s.startswith("#")]
            if kept and kept[0].lower() == "url":  # a one-column CSV saved as .txt
                kept = kept[1:]
            df = pd.DataFrame({"url": kept})
    if "url" not in df.columns:
        raise ManifestError(
            [f"{source}: no 'url' column; columns are {', '.join(map(str, df.columns)) or 'none'}"]
        )
    df = df.reset_index(drop=True)
    df["url"] = df["url"].astype("string").str.strip()
    df = df[df["url"].notna() & (df["url"] != "")]
    # one row per stored URL: two spellings that differ only in credentials are one video
    stored = df["url"].map(lambda u: stored_url(str(u)))
    df = df[~stored.duplicated(keep="first")].reset_index(drop=True)
    if "platform" in df.columns:
        _check_platforms(df, source)
    if df.empty:  # most likely the wrong file: say so rather than "fetched 0 of 0"
        raise ManifestError(
            [f"{source}: no URLs; expected one http(s) URL a line, or a 'url' column with URLs"]
        )
    declared = set(VIDEOS.column_names)
    renames = {c: f"input_{c}" for c in df.columns if c in declared and c != "platform"}
    return df.rename(columns=renames)


def _check_platforms(df: pd.DataFrame, source: str) -> None:
    """A platform becomes a folder under ``media/``: refuse the list if one is not a safe name.

    An error rather than a silently changed name: the platform is also a column users filter
    on, and a list with ``../`` in it is more likely hostile or broken than meant.
    """
    for url, value in zip(df["url"], df["platform"], strict=True):
        if value is None or pd.isna(value) or not str(value).strip():
            continue
        if not is_safe_name(str(value).strip().lower()):
            raise UnsafePathError(
                f"{source}: platform {str(value)!r} of {stored_url(str(url))} is not a safe "
                f"name: allowed are {SAFE_NAME_RULE}"
            )


def _media_intact(root: Path, row: dict[str, Any]) -> bool:
    """The row's original is a regular file inside the root with the size fetch recorded."""
    try:
        media = regular_file_inside(root, str(row["media_path"]))
    except UnsafePathError:
        return False
    size = row.get("bytes")
    return size is None or media.stat().st_size == int(size)


def _forget_done_records(root: Path, book: _ManifestBook) -> None:
    """Completion records whose rows the manifest now holds are no longer needed."""
    folder = inside_root(root, DONE_DIR)
    if not folder.is_dir():
        return
    for record in folder.glob("*.json"):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            done = json.loads(record.read_text(encoding="utf-8"))
            row = book.rows.get(str(done.get("url")))
            if row is not None and row.get("sha256") == done.get("sha256"):
                record.unlink()
    with contextlib.suppress(OSError):
        folder.rmdir()  # only when empty


def _scheme_ok(url: str, allow_file_urls: bool) -> bool:
    low = url.lower()
    return low.startswith(("http://", "https://")) or (allow_file_urls and low.startswith("file:"))


def _result_row(res: DownloadResult, carried: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {**carried}
    row.update(
        video_id=res.video_id,
        platform=res.platform,
        source_url=stored_url(res.url),
        status=res.status,
        error_kind=res.error_kind,
        error_message=res.error_message,
        media_path=res.media_path,
        sha256=res.sha256,
        bytes=res.bytes,
        **{k: None for k in PREPARE_COLUMNS},
    )
    for key in ("title", "uploader_id", "upload_date", "view_count", "like_count", "fetched_at"):
        row[key] = res.metadata.get(key)
    for key in PROBE_COLUMNS:  # the ffprobe check of the download (duration, size, codecs)
        row[key] = res.metadata.get(key)
    return row


class _ManifestBook:
    """Rows keyed by source_url, with video_id collisions resolved, flushed atomically."""

    def __init__(self, path: Path, params: dict[str, Any]) -> None:
        self.path = path
        self.params = params
        self.rows: dict[str, dict[str, Any]] = {}
        self.url_of_id: dict[str, str] = {}
        self.dirty = False
        if path.exists():
            df = read_manifest(path, "videos").df
            for rec in df.astype(object).where(df.notna(), None).to_dict("records"):
                url = stored_url(str(rec["source_url"]))
                if url != rec["source_url"]:  # written before credentials were stripped
                    rec["source_url"], self.dirty = url, True
                self.rows[url] = rec
                self.url_of_id[str(rec["video_id"])] = url
        self.last_flush = time.monotonic()
        self.write_s = 0.0  # how long the last write took

    def add(self, row: dict[str, Any]) -> None:
        url = row["source_url"]
        owner = self.url_of_id.get(row["video_id"])
        if owner is not None and owner != url:
            # two URLs of one video (e.g. a share link and the canonical one): keep the first
            kept = self.rows[owner]["video_id"]
            row.update(video_id=url_video_id(url), dup_of=kept)
            if row["status"] == "ok":
                row["status"] = "duplicate"
        previous = self.rows.get(url)
        if previous is not None and self.url_of_id.get(previous["video_id"]) == url:
            del self.url_of_id[previous["video_id"]]
        self.rows[url] = row
        self.url_of_id[row["video_id"]] = url
        self.dirty = True

    def flush(self, *, force: bool = False) -> None:
        since = time.monotonic() - self.last_flush
        if not self.dirty or (
            not force and since < min(_FLUSH_EVERY_S, self.write_s / _FLUSH_SHARE)
        ):
            return
        started = time.monotonic()
        # sorted by id: the same file whatever order parallel downloads finished in
        df = pd.DataFrame(sorted(self.rows.values(), key=lambda r: str(r["video_id"])))
        declared = [c for c in VIDEOS.column_names if c in df.columns]
        df = df[declared + [c for c in df.columns if c not in declared]]
        write_manifest(df, self.path, "videos", params=self.params)
        self.dirty = False
        self.last_flush = time.monotonic()
        self.write_s = self.last_flush - started


def fetch(
    urls: str | Path | pd.DataFrame,
    root: str | Path,
    *,
    workers: int = 4,
    profile: str | Path | FetchProfile | None = None,
    retry_failed: bool = False,
    allow_file_urls: bool = False,
    progress: bool = True,
    executor: str = "local",
    ray_address: str | None = None,
) -> FetchSummary:
    """Download every URL of ``urls`` into ``root`` and write ``root/videos.parquet``.

    Holds the root's write lock (``RootLockedError`` if another run holds it); raises
    ``EnvironmentFault`` when the machine fails (no space, I/O error, a killed worker): what
    finished is saved and the next run retries the rest.
    """
    started = time.monotonic()
    check_executor(executor)
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    prof = load_profile(profile)
    inputs = read_url_list(urls)  # a bad list fails before anything is created
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    params = {
        "workers": workers,
        "retry_failed": retry_failed,
        "allow_file_urls": allow_file_urls,
        "profile": str(profile) if isinstance(profile, str | Path) else None,
    }
    with root_lock(root):
        book = _ManifestBook(root / MANIFEST_NAME, params)
        summary = _fetch_locked(
            inputs, root, book, prof, workers, retry_failed, allow_file_urls, progress,
            executor, ray_address,
        )  # fmt: skip
    summary.elapsed_s = time.monotonic() - started
    return summary


def _fetch_locked(
    inputs: pd.DataFrame,
    root: Path,
    book: _ManifestBook,
    prof: FetchProfile,
    workers: int,
    retry_failed: bool,
    allow_file_urls: bool,
    progress: bool,
    executor: str,
    ray_address: str | None,
) -> FetchSummary:
    tasks: list[DownloadTask] = []
    carried: dict[str, dict[str, Any]] = {}
    platform_of: dict[str, str | None] = {}
    skipped = adopted = 0
    for rec in inputs.astype(object).where(inputs.notna(), None).to_dict("records"):
        url = str(rec.pop("url"))
        hint = rec.get("platform")
        hint = str(hint).strip().lower() if hint else None
        extras = {k: v for k, v in rec.items() if k != "platform"}
        carried[url] = extras
        old = book.rows.get(stored_url(url))
        if old is not None:
            media_ok = bool(old.get("media_path")) and _media_intact(root, old)
            if (old["status"] != "failed" and media_ok) or (
                old["status"] == "failed" and not retry_failed
            ):
                skipped += 1
                continue
        if not _scheme_ok(url, allow_file_urls):
            kind = "unsupported_url"
            msg = "only http(s) URLs are fetched (use --allow-file-urls for file: URLs)"
            book.add(
                _result_row(
                    DownloadResult(
                        url=url,
                        status="failed",
                        video_id=url_video_id(stored_url(url)),
                        platform=hint or "unknown",
                        error_kind=kind,
                        error_message=msg,
                    ),
                    extras,
                )
            )
            continue
        finished = adopt_finished(root, url)  # downloaded by a run killed before its manifest
        if finished is not None:
            book.add(_result_row(finished, extras))
            adopted += 1
            continue
        platform = hint
        if platform is None and prof.platforms:
            # per-platform settings need the platform before the download: ask yt-dlp's
            # extractors which one takes this URL (about 16 ms a URL)
            platform = guess_ids(url, None)[0]
        platform_of[url] = platform
        tasks.append(
            DownloadTask(
                url=url,
                root=str(root),
                platform_hint=hint,
                profile=prof.for_platform(platform),
                allow_file_urls=allow_file_urls,
            )
        )
    downloaded = failed = 0
    fault: DownloadResult | None = None
    caps = prof.concurrency_caps()
    pool_size = min(workers, prof.default.concurrency or workers, max(1, len(tasks)))
    if tasks and executor == "local" and pool_size > 1:
        # compile yt-dlp's ~1,800 extractor URL patterns once here, not once in every forked
        # worker (about 2 s each): the workers inherit them
        guess_ids(tasks[0].url, None)
    bar = _progress_bar(len(tasks), progress)
    results = run_tasks(
        download_one,
        tasks,
        workers=pool_size,
        executor=executor,
        ray_address=ray_address,
        group_of=lambda t: platform_of.get(t.url),
        group_caps=caps,
    )
    try:
        for res in results:
            if res.fault is not None:  # the machine failed, not the video: stop, record nothing
                fault = res
                break
            downloaded += res.status == "ok"
            failed += res.status != "ok"
            book.add(_result_row(res, carried.get(res.url, {})))
            book.flush()
            bar.set_postfix(failed=failed, refresh=False)
            bar.update(1)
    finally:
        results.close()  # cancels what has not started; running downloads finish first
        bar.close()
        book.flush(force=True)
        with contextlib.suppress(OSError):
            (root / ".staging").rmdir()  # only when empty: nothing is in flight any more
    _forget_done_records(root, book)
    if fault is not None:
        left = sum(1 for u in inputs["url"] if stored_url(str(u)) not in book.rows)
        raise EnvironmentFault(
            f"fetch stopped: {fault.fault} (while fetching {stored_url(fault.url)}); "
            f"no video was marked failed for it: fix that and run fetch again "
            f"({left} URL(s) left)"
        )
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for url in inputs["url"]:
        row = book.rows.get(stored_url(str(url)))
        if row is None:
            continue
        statuses[str(row["status"])] += 1
        if row.get("error_kind"):
            errors[str(row["error_kind"])] += 1
    return FetchSummary(
        total=len(inputs),
        downloaded=downloaded,
        skipped=skipped,
        adopted=adopted,
        by_status=dict(sorted(statuses.items())),
        by_error=dict(sorted(errors.items())),
        manifest=str(book.path),
    )


def _progress_bar(total: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, disable=not enabled, unit="video", desc="fetch", file=sys.stderr)
