"""prepare: probe, filters, exact and near duplicates, normalised media, cache, idempotence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from emotions_data.cli import main
from emotions_data.ingest.features import read_wav_mono
from emotions_data.ingest.fetch import fetch
from emotions_data.ingest.prepare import (
    PrepareConfig,
    PrepareSummary,
    build_cache_for_file,
    prepare,
)
from emotions_data.ingest.probe import probe
from emotions_data.schema.cache import read_cache
from emotions_data.schema.io import read_manifest
from emotions_data.testing.http import serve_directory

pytestmark = [pytest.mark.ffmpeg]

NAMES = [
    "card.mp4",
    "card-copy.mp4",
    "card-repost.mp4",
    "noise.mp4",
    "red.mp4",
    "blue.mp4",
    "silent.mp4",
    "short.mp4",
    "cut.mp4",
]


@pytest.fixture(scope="module")
def prepared(site: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, PrepareSummary]:
    root = tmp_path_factory.mktemp("prepared")
    with serve_directory(site) as srv:
        urls = pd.DataFrame({"url": [srv.url(n) for n in NAMES], "platform": "tiktok"})
        summary = fetch(urls, root, workers=2, progress=False)
    assert summary.by_status == {"ok": len(NAMES)}
    return root, prepare(root, workers=2, progress=False)


def _rows(root: Path) -> dict[str, dict[str, object]]:
    df = read_manifest(root / "videos.parquet", "videos").df
    return {
        Path(str(u)).name: r for u, r in zip(df["source_url"], df.to_dict("records"), strict=True)
    }


def test_statuses_and_duplicates(prepared: tuple[Path, PrepareSummary]) -> None:
    root, summary = prepared
    rows = _rows(root)
    # the byte-identical pair: the smaller video_id is kept (same pixels, length, no upload date)
    kept, copy = sorted(["card.mp4", "card-copy.mp4"], key=lambda n: str(rows[n]["video_id"]))
    status = {n: rows[n]["status"] for n in NAMES}
    assert status == {
        kept: "ok",
        copy: "duplicate",
        "card-repost.mp4": "duplicate",
        "noise.mp4": "ok",
        "red.mp4": "ok",
        "blue.mp4": "ok",  # same moving box as red.mp4: only the colour tells them apart
        "silent.mp4": "ok",
        "short.mp4": "filtered",
        "cut.mp4": "failed",
    }
    # the repost is re-encoded at 96x96: the 160x288 original is kept
    assert rows[copy]["dup_of"] == rows[kept]["video_id"]
    assert rows["card-repost.mp4"]["dup_of"] == rows[kept]["video_id"]
    assert "exact duplicate" in str(rows[copy]["error_message"])
    assert "near duplicate" in str(rows["card-repost.mp4"]["error_message"])
    assert pd.isna(rows[copy]["normalized_path"])  # never decoded
    assert rows[copy]["width"] == 160  # the probe is copied from the kept file
    assert rows["short.mp4"]["error_kind"] == "filtered"
    assert "min_duration_s" in str(rows["short.mp4"]["error_message"])
    assert rows["cut.mp4"]["error_kind"] == "bad_media"
    assert "truncated" in str(rows["cut.mp4"]["error_message"])
    assert (summary.exact_duplicates, summary.near_duplicates) == (1, 1)
    # decoded: all but the exact copy and the short clip (fetch's probe already filters it)
    assert summary.processed == 7


def test_probe_columns_and_outputs(prepared: tuple[Path, PrepareSummary]) -> None:
    root, _ = prepared
    rows = _rows(root)
    card = rows["card.mp4"] if rows["card.mp4"]["status"] == "ok" else rows["card-copy.mp4"]
    assert (card["width"], card["height"], card["fps"]) == (160, 288, 10.0)
    assert card["has_audio"] is True and card["audio_sample_rate"] == 44100
    assert (card["video_codec"], card["audio_codec"]) == ("h264", "aac")
    assert abs(float(card["duration_s"]) - 2.0) < 0.15  # type: ignore[arg-type]
    norm = probe(root / str(card["normalized_path"]))
    # short side 160 < 360: never upscaled; 10 fps < 15: never raised
    assert (norm.width, norm.height, norm.fps, norm.has_audio) == (160, 288, 10.0, True)
    samples, rate = read_wav_mono(root / str(card["audio_path"]))
    assert rate == 16_000 and abs(len(samples) / rate - 2.0) < 0.15
    entry = read_cache(root / str(card["cache_path"]))
    assert entry.frames.shape == (32, 8, 128, 128, 3) and entry.frames.dtype == np.uint8
    assert entry.logmel.shape[0] == 64 and entry.mfcc.shape[0] == 32
    assert abs(entry.logmel.shape[1] - 201) <= 3  # 2 s at hop 160 / 16 kHz
    assert entry.meta.has_audio and float(np.abs(entry.logmel).sum()) > 0
    # TSN: later segments come from later in the clip (testsrc2 changes over time)
    assert not np.array_equal(entry.frames[0, 0], entry.frames[-1, 0])


def test_silent_video_gets_zero_features(prepared: tuple[Path, PrepareSummary]) -> None:
    root, _ = prepared
    row = _rows(root)["silent.mp4"]
    assert row["has_audio"] is False and pd.isna(row["audio_path"])
    entry = read_cache(root / str(row["cache_path"]))
    assert not entry.meta.has_audio
    assert entry.logmel.shape[1] > 100 and not entry.logmel.any() and not entry.mfcc.any()


def test_second_run_changes_nothing(prepared: tuple[Path, PrepareSummary]) -> None:
    """Nothing decoded, nothing rewritten (what it costs: ``benchmarks/prepare.py``'s
    "nothing to do" row)."""
    root, _ = prepared
    manifest = root / "videos.parquet"
    before = manifest.read_bytes()
    outputs = {
        p: p.stat().st_mtime_ns
        for folder in ("normalized", "audio", "cache", "hashes")
        for p in (root / folder).rglob("*")
        if p.is_file()
    }
    assert outputs
    again = prepare(root, workers=2, progress=False)
    assert again.processed == 0 and not again.changed
    assert manifest.read_bytes() == before
    assert {p: p.stat().st_mtime_ns for p in outputs} == outputs
    assert not (root / ".prepare-tmp").exists()


def test_build_cache_for_file_matches_prepare(
    prepared: tuple[Path, PrepareSummary], tmp_path: Path
) -> None:
    root, _ = prepared
    rows = _rows(root)
    card = rows["card.mp4"] if rows["card.mp4"]["status"] == "ok" else rows["card-copy.mp4"]
    meta = build_cache_for_file(root / str(card["media_path"]), tmp_path / "c", "x", None)
    mine, theirs = read_cache(tmp_path / "c"), read_cache(root / str(card["cache_path"]))
    assert meta.video_id == "x" and meta.has_audio
    assert np.array_equal(mine.frames, theirs.frames)
    assert np.allclose(mine.logmel, theirs.logmel) and np.allclose(mine.mfcc, theirs.mfcc)


def test_config_change_reapplies_filters(
    prepared: tuple[Path, PrepareSummary], tmp_path: Path
) -> None:
    root, _ = prepared
    config = tmp_path / "prepare.yaml"
    config.write_text("min_duration_s: 0.2\n")
    result = CliRunner().invoke(
        main,
        ["prepare", "--root", str(root), "--config", str(config), "--no-progress", "--json", "-"],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output[result.output.index("{") :])
    assert data["processed"] == 1  # only the short clip, now admitted, is decoded
    assert _rows(root)["short.mp4"]["status"] == "ok"
    result = CliRunner().invoke(main, ["prepare", "--root", str(root), "--no-progress"])
    assert result.exit_code == 0 and _rows(root)["short.mp4"]["status"] == "filtered"
    assert "prepared 0" in result.output


def test_cli_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["prepare", "--root", str(tmp_path)])
    assert result.exit_code == 1 and "no videos manifest" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("short_sid: 360\n")
    result = runner.invoke(main, ["prepare", "--root", str(tmp_path), "--config", str(bad)])
    assert result.exit_code == 1 and "short_sid: expected one of the keys" in result.output
    assert "found an unknown key" in result.output


def test_bad_encoder_setting_does_not_fail_videos_for_good(site: Path, tmp_path: Path) -> None:
    """A config ffmpeg rejects fails the items; the next run with good settings redoes them."""
    root = tmp_path / "root"
    with serve_directory(site) as srv:
        fetch(pd.DataFrame({"url": [srv.url("red.mp4")]}), root, workers=1, progress=False)
    bad = prepare(root, config=PrepareConfig(video_codec="libnope"), workers=1, progress=False)
    assert bad.by_status == {"failed": 1}
    good = prepare(root, workers=1, progress=False)
    assert good.by_status == {"ok": 1} and good.processed == 1
