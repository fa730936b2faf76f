"""Completion records of ``prepare``: a done item is verified, not assumed from a file's existence.

When every output of a video is in place (normalised mp4, WAV, cache arrays and ``meta.json``),
``prepare`` writes ``ROOT/cache/<video_id>/outputs.json`` last::

    {"outputs_key": ..., "phash": ..., "normalized_path": ..., "audio_path": ..., "cache_path": ...,
     "files": {"normalized/<id>.mp4": {"bytes": N, "sha256": ..., "mtime_ns": ..., "ctime_ns": ...}}}

The next run skips the video only when the record is there, was made with the same output
settings, and every file it lists is a regular file inside the root with that size and
content; otherwise the video is done again. A truncated mp4, a 100-byte WAV or a missing or
rewritten cache array is redone, never "already done".

Content is compared by sha256 whenever a file's size, mtime or ctime differ from the record
(any write, rename over it, ``touch`` or copy changes the ctime, which no user can set back);
when all three are unchanged the content is taken as unchanged, so a re-run does not re-hash
13 MB a video (about 30 min for 28k videos at 200 MB/s). ``verify=True`` (``prepare
--verify``) re-hashes everything, for corruption below the file system. A record whose files
matched by hash but not by times is rewritten with the new times.

The record also lets a run adopt the outputs of a driver that was killed before it wrote them
into the manifest.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from emotions_data.schema.atomic import atomic_write_text, sha256_file
from emotions_data.schema.cache import FRAMES_FILE, LOGMEL_FILE, META_FILE, MFCC_FILE
from emotions_data.schema.safety import (
    UnsafePathError,
    inside_root,
    is_safe_name,
    regular_file_inside,
)

RECORD_FILE = "outputs.json"
_CACHE_FILES = (FRAMES_FILE, LOGMEL_FILE, MFCC_FILE, META_FILE)


def _identity(info: os.stat_result) -> dict[str, int]:
    return {"bytes": info.st_size, "mtime_ns": info.st_mtime_ns, "ctime_ns": info.st_ctime_ns}


def _record_path(root: str | Path, cache_path: str) -> Path:
    return inside_root(root, cache_path, RECORD_FILE, what="completion record")


def write_record(
    root: str | Path,
    *,
    outputs_key: str,
    phash: str | None,
    normalized_path: str,
    audio_path: str | None,
    cache_path: str,
    extra: Sequence[str] = (),
) -> dict[str, Any]:
    """Write the completion record of one video's outputs (after all of them are in place).

    ``extra``: more output files (relative paths) the record lists and the next run verifies.
    """
    rels = [normalized_path, *([audio_path] if audio_path else [])]
    rels += [f"{cache_path}/{name}" for name in _CACHE_FILES]
    rels += list(extra)
    files = {}
    for rel in rels:
        path = regular_file_inside(root, rel, what="prepared output")
        digest = sha256_file(path)
        files[rel] = {**_identity(path.stat()), "sha256": digest}
    record = {
        "outputs_key": outputs_key,
        "phash": phash,
        "normalized_path": normalized_path,
        "audio_path": audio_path,
        "cache_path": cache_path,
        "files": files,
    }
    atomic_write_text(_record_path(root, cache_path), json.dumps(record, indent=1) + "\n")
    return record


def verified_record(
    root: str | Path, video_id: str, outputs_key: str, *, verify: bool = False
) -> dict[str, Any] | None:
    """The record of ``video_id``'s outputs when every file still matches it, else ``None``."""
    if not is_safe_name(video_id):
        return None
    cache_path = f"cache/{video_id}"
    try:
        path = regular_file_inside(root, f"{cache_path}/{RECORD_FILE}")
        record = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(record, dict) or record.get("outputs_key") != outputs_key:
            return None
        if record.get("cache_path") != cache_path or not record.get("phash"):
            return None
        files = record["files"]
        listed = {record["normalized_path"], *(f"{cache_path}/{n}" for n in _CACHE_FILES)}
        if record.get("audio_path"):
            listed.add(record["audio_path"])
        if not listed <= set(files):
            return None
        rehashed = False
        for rel, expected in files.items():
            got = regular_file_inside(root, rel, what="prepared output")
            now = _identity(got.stat())
            if now["bytes"] != expected["bytes"]:
                return None
            if verify or any(now[k] != expected.get(k) for k in ("mtime_ns", "ctime_ns")):
                if sha256_file(got) != expected["sha256"]:
                    return None
                expected.update(now)
                rehashed = True
    except (OSError, ValueError, KeyError, TypeError, AttributeError, UnsafePathError):
        return None
    if rehashed:  # same content, new times (a copied root): remember them
        atomic_write_text(_record_path(root, cache_path), json.dumps(record, indent=1) + "\n")
    return record
