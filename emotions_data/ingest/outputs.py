"""Completion records of ``prepare``: a done item is verified, not assumed from a file's existence.

When every output of a video is in place (normalised mp4, WAV, cache arrays and ``meta.json``),
``prepare`` writes ``ROOT/cache/<video_id>/outputs.json`` last::

    {"outputs_key": ..., "phash": ..., "normalized_path": ..., "audio_path": ..., "cache_path": ...,
     "files": {"normalized/<id>.mp4": {"bytes": N, "sha256": ...}, ...}}

The next run skips the video only when the record is there, was made with the same output
settings, and every file it lists is a regular file inside the root with that size and
sha256; otherwise the video is done again. A truncated mp4, a 100-byte WAV or a missing cache
array is redone, never "already done". The record also lets a run adopt the outputs of a
driver that was killed before it wrote them into the manifest.
"""

from __future__ import annotations

import json
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


def write_record(
    root: str | Path,
    *,
    outputs_key: str,
    phash: str | None,
    normalized_path: str,
    audio_path: str | None,
    cache_path: str,
) -> dict[str, Any]:
    """Write the completion record of one video's outputs (after all of them are in place)."""
    rels = [normalized_path, *([audio_path] if audio_path else [])]
    rels += [f"{cache_path}/{name}" for name in _CACHE_FILES]
    files = {}
    for rel in rels:
        path = regular_file_inside(root, rel, what="prepared output")
        files[rel] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    record = {
        "outputs_key": outputs_key,
        "phash": phash,
        "normalized_path": normalized_path,
        "audio_path": audio_path,
        "cache_path": cache_path,
        "files": files,
    }
    target = inside_root(root, cache_path, RECORD_FILE, what="completion record")
    atomic_write_text(target, json.dumps(record, indent=1, sort_keys=True) + "\n")
    return record


def verified_record(root: str | Path, video_id: str, outputs_key: str) -> dict[str, Any] | None:
    """The record of ``video_id``'s outputs when every file still matches it, else ``None``."""
    if not is_safe_name(video_id):
        return None
    try:
        path = regular_file_inside(root, f"cache/{video_id}/{RECORD_FILE}")
        record = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(record, dict) or record.get("outputs_key") != outputs_key:
            return None
        if record.get("cache_path") != f"cache/{video_id}" or not record.get("phash"):
            return None
        files = record["files"]
        listed = {record["normalized_path"], *(f"cache/{video_id}/{n}" for n in _CACHE_FILES)}
        if record.get("audio_path"):
            listed.add(record["audio_path"])
        if not listed <= set(files):
            return None
        for rel, expected in files.items():
            got = regular_file_inside(root, rel, what="prepared output")
            if got.stat().st_size != expected["bytes"] or sha256_file(got) != expected["sha256"]:
                return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, UnsafePathError):
        return None
    return record
