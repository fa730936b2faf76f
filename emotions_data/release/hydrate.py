"""``emotions-data hydrate``: re-download a release's videos and report what is still there.

The release's URLs go through ``emotions_data.ingest.fetch`` (resumable, retries, per-item
error kinds) into ``ROOT``; each download is checked against the release's sha256. Then:

- ``ROOT/availability.json`` and ``availability.md``: share still available per platform,
  class, split and variant, and which variants are still complete;
- ``ROOT/missing.csv``: what is missing (dead link or changed file), a URL list ``fetch``
  accepts again (``--retry-failed``);
- ``ROOT/variants/<name>.parquet``: each variant restricted to the available videos, keyed by
  the fetched ``video_id`` (so ``prepare`` and the baseline use it directly).

A release is untrusted (README "Trust boundary and faults"): a damaged or column-less data
file, a variant or platform that is not a safe name is a one-line error before any download;
every path written is checked with ``schema.safety.inside_root``; the run holds ROOT's lock.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from emotions_data.release.publish import read_release, release_taxonomy
from emotions_data.schema.atomic import atomic_path, atomic_write_text
from emotions_data.schema.io import read_manifest, write_manifest
from emotions_data.schema.manifests import SPLITS
from emotions_data.schema.safety import inside_root, root_lock

AVAILABLE, DEAD, CHANGED = "available", "dead", "changed"


@dataclass
class HydrateResult:
    root: Path
    availability: dict[str, Any]
    missing: pd.DataFrame
    fetch_summary: Any


def _share(frame: pd.DataFrame, by: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key, g in frame.groupby(by, sort=True):
        ok = int((g["state"] == AVAILABLE).sum())
        out[str(key)] = {"total": len(g), "available": ok, "share": round(ok / len(g), 4)}
    return out


def availability(
    rows: dict[str, pd.DataFrame], fetched: pd.DataFrame
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per release row, its state (available / dead / changed) and the fetched video_id."""
    frame = pd.concat([f.assign(variant=v) for v, f in rows.items()], ignore_index=True)
    got = fetched.drop_duplicates("source_url").set_index("source_url")
    status = frame["source_url"].map(got["status"])
    sha = frame["source_url"].map(got["sha256"])
    downloaded = status.isin(["ok", "duplicate"]) & sha.notna()
    frame["state"] = DEAD
    frame.loc[downloaded & (sha == frame["sha256"]), "state"] = AVAILABLE
    frame.loc[downloaded & (sha != frame["sha256"]), "state"] = CHANGED
    frame["fetched_video_id"] = frame["source_url"].map(got["video_id"])
    kind = frame["source_url"].map(got["error_kind"]).astype("string")
    message = frame["source_url"].map(got["error_message"]).astype("string")
    frame["reason"] = (kind.fillna("unknown") + ": " + message.fillna("")).str.rstrip(": ")
    frame.loc[frame["state"] == CHANGED, "reason"] = "sha256 differs from the release"
    frame.loc[frame["state"] == AVAILABLE, "reason"] = None
    videos = frame.drop_duplicates("source_url")
    report: dict[str, Any] = {
        "videos": len(videos),
        "available": int((videos["state"] == AVAILABLE).sum()),
        "dead": int((videos["state"] == DEAD).sum()),
        "changed": int((videos["state"] == CHANGED).sum()),
    }
    report["share"] = round(report["available"] / max(1, report["videos"]), 4)
    report["per_platform"] = _share(videos, "platform")
    report["per_class"] = _share(videos, "label")
    report["per_variant"] = {}
    for variant, g in frame.groupby("variant", sort=False):
        ok = int((g["state"] == AVAILABLE).sum())
        report["per_variant"][str(variant)] = {
            "total": len(g),
            "available": ok,
            "share": round(ok / len(g), 4),
            "complete": ok == len(g),
            "per_split": _share(g, "split"),
        }
    report["complete_variants"] = [v for v, r in report["per_variant"].items() if r["complete"]]
    return frame, report


def _markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Availability of the release",
        "",
        f"{report['available']} of {report['videos']} videos still downloadable and unchanged "
        f"({100 * report['share']:.1f} %); {report['dead']} dead, {report['changed']} changed.",
        "",
        "Complete variants: " + (", ".join(report["complete_variants"]) or "none") + ".",
        "",
        "| variant | split | available | total | share |",
        "|---|---|---|---|---|",
    ]
    for variant, r in report["per_variant"].items():
        lines.append(
            f"| {variant} | all | {r['available']} | {r['total']} | {100 * r['share']:.1f} % |"
        )
        for split in SPLITS:
            s = r["per_split"].get(split)
            if s:
                lines.append(
                    f"| {variant} | {split} | {s['available']} | {s['total']} | {100 * s['share']:.1f} % |"
                )
    for title, key in (("platform", "per_platform"), ("class", "per_class")):
        lines += ["", f"| {title} | available | total | share |", "|---|---|---|---|"]
        for name, s in report[key].items():
            lines.append(f"| {name} | {s['available']} | {s['total']} | {100 * s['share']:.1f} % |")
    return "\n".join(lines) + "\n"


def hydrate(
    release: str | Path,
    root: str | Path,
    *,
    workers: int = 4,
    profile: str | Path | None = None,
    retry_failed: bool = False,
    allow_file_urls: bool = False,
    progress: bool = True,
) -> HydrateResult:
    """Fetch every URL of ``release`` into ``root`` and write the availability report."""
    from emotions_data.ingest.fetch import read_url_list

    release = Path(release)
    root = Path(root)
    # an unreadable release, or a platform that is not a safe name, fails before any write
    rows = read_release(release)
    urls = (
        pd.concat(list(rows.values()), ignore_index=True)
        .drop_duplicates("source_url")
        .sort_values("video_id")[["source_url", "platform", "video_id"]]
        .rename(columns={"source_url": "url", "video_id": "release_video_id"})
    )
    read_url_list(urls)
    with root_lock(root):
        return _hydrate_locked(
            release, root, rows, urls, workers, profile, retry_failed, allow_file_urls, progress
        )


def _hydrate_locked(
    release: Path,
    root: Path,
    rows: dict[str, pd.DataFrame],
    urls: pd.DataFrame,
    workers: int,
    profile: str | Path | None,
    retry_failed: bool,
    allow_file_urls: bool,
    progress: bool,
) -> HydrateResult:
    from emotions_data.ingest.fetch import fetch

    summary = fetch(
        urls,
        root,
        workers=workers,
        profile=profile,
        retry_failed=retry_failed,
        allow_file_urls=allow_file_urls,
        progress=progress,
    )
    videos_path = root / "videos.parquet"
    fetched = read_manifest(videos_path, "videos").df
    frame, report = availability(rows, fetched)
    report["release"] = str(release)
    report["fetch"] = {"by_status": summary.by_status, "by_error": summary.by_error}
    taxonomy = release_taxonomy(release)
    for variant, g in frame.groupby("variant", sort=False):
        ok = g[g["state"] == AVAILABLE]
        split = pd.DataFrame(
            {
                "video_id": ok["fetched_video_id"].astype(str),
                "label": ok["label"],
                "split": ok["split"],
                "fold": ok["fold"].astype("Int32"),
            }
        ).sort_values("video_id")
        write_manifest(
            split,
            inside_root(root, "variants", f"{variant}.parquet"),
            "split",
            params={"release": str(release)},
            parents=[videos_path],
            taxonomy=taxonomy,
            extra_metadata={
                "variant": str(variant),
                "hydrated_from": str(release),
                "complete": len(ok) == len(g),
            },
        )
    missing = (
        frame[frame["state"] != AVAILABLE]
        .groupby("source_url", sort=True)
        .agg(
            release_video_id=("video_id", "first"),
            platform=("platform", "first"),
            label=("label", "first"),
            state=("state", "first"),
            reason=("reason", "first"),
            variants=("variant", lambda v: ",".join(sorted(set(v)))),
        )
        .reset_index()
        .rename(columns={"source_url": "url"})
    )
    with atomic_path(inside_root(root, "missing.csv"), suffix=".csv") as tmp:
        missing.to_csv(tmp, index=False)
    atomic_write_text(inside_root(root, "availability.json"), json.dumps(report, indent=2) + "\n")
    atomic_write_text(inside_root(root, "availability.md"), _markdown(report))
    return HydrateResult(root=root, availability=report, missing=missing, fetch_summary=summary)
