"""End to end on real files: fetch (yt-dlp) from a loopback server, label, split, variants,
release (ids-only and with media), then hydrate after some links died and one file changed."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from emotions_data.cli import main
from emotions_data.schema import load_taxonomy, read_manifest, write_manifest
from emotions_data.schema.atomic import sha256_file
from emotions_data.testing.media import make_clip

pytestmark = [pytest.mark.ffmpeg, pytest.mark.slow]

N_CLIPS = 12
PLATFORMS = ("douyin", "kuaishou", "tiktok")


def _labels_for(videos: pd.DataFrame) -> pd.DataFrame:
    classes = load_taxonomy().classes
    ok = videos[videos["status"] == "ok"].sort_values("source_url").reset_index(drop=True)
    n = len(ok)
    return pd.DataFrame(
        {
            "video_id": ok["video_id"],
            "label": [classes[i % 3] for i in range(n)],  # three classes, four videos each
            "method": "majority",
            "n_votes": 3,
            "support": [1.0 if i % 2 == 0 else 2 / 3 for i in range(n)],
            "entropy": 0.0,
            "confidence": 1.0,
            "decided_stage": "primary",
            "expert_changed": False,
        }
    )


def test_release_and_hydrate_end_to_end(tmp_path: Path) -> None:
    from emotions_data.testing.http import serve_directory

    served = tmp_path / "site"
    for i in range(N_CLIPS):
        make_clip(
            served / f"v{i:02d}.mp4",
            width=64,
            height=96,
            duration=0.6,
            fps=10,
            source="color",
            color=["red", "blue", "green", "yellow"][i % 4],
            tone_hz=300 + 40 * i,
        )
    runner = CliRunner()
    with serve_directory(served) as server:
        urls = pd.DataFrame(
            {
                "url": [server.url(f"v{i:02d}.mp4") for i in range(N_CLIPS)],
                "platform": [PLATFORMS[i % 3] for i in range(N_CLIPS)],
            }
        )
        urls.to_csv(tmp_path / "urls.csv", index=False)
        root = tmp_path / "root"
        result = runner.invoke(
            main, ["fetch", str(tmp_path / "urls.csv"), "--out", str(root), "--workers", "2"]
        )
        assert result.exit_code == 0, result.output
        videos = read_manifest(root / "videos.parquet", "videos").df
        assert (videos["status"] == "ok").sum() == N_CLIPS
        write_manifest(_labels_for(videos), root / "labels.parquet", "labels")
        result = runner.invoke(main, ["--seed", "3", "build-variants", "--root", str(root)])
        assert result.exit_code == 0, result.output

        rel = tmp_path / "release"
        result = runner.invoke(main, ["release", "--root", str(root), "--out", str(rel)])
        assert result.exit_code == 0, result.output
        assert not (rel / "media").exists()
        rel_media = tmp_path / "release-media"
        result = runner.invoke(
            main, ["release", "--root", str(root), "--out", str(rel_media), "--with-media"]
        )
        assert result.exit_code == 0, result.output
        table = pq.read_table(rel_media / "data" / "full" / "train.parquet").to_pandas()
        for row in table.itertuples():
            assert sha256_file(rel_media / row.media_path) == row.media_sha256
            # the original's sha256 is what a re-download is checked against
            assert row.sha256 == videos.set_index("video_id").loc[row.video_id, "sha256"]

        # the web moves on: two links die, one file is replaced by another clip
        full = read_manifest(root / "variants" / "full.parquet").df
        by_url = videos.set_index("video_id")["source_url"]
        test_ids = sorted(full.loc[full["split"] == "test", "video_id"])
        dead_ids = [test_ids[0], sorted(full.loc[full["split"] == "train", "video_id"])[0]]
        changed_id = sorted(full.loc[full["split"] == "train", "video_id"])[1]

        def served_file(video_id: str) -> Path:
            return served / Path(str(by_url[video_id])).name

        for vid in dead_ids:
            served_file(vid).unlink()
        make_clip(
            served_file(changed_id),
            width=64,
            height=96,
            duration=0.6,
            fps=10,
            source="color",
            color="white",
            tone_hz=999,
        )

        new_root = tmp_path / "hydrated"
        result = runner.invoke(
            main, ["hydrate", str(rel), "--out", str(new_root), "--workers", "2", "--json", "-"]
        )
        assert result.exit_code == 0, result.output
        # a second run resumes: nothing is downloaded again
        before = sum(server.requests.values())
        again = runner.invoke(
            main, ["hydrate", str(rel), "--out", str(new_root), "--json", str(tmp_path / "a.json")]
        )
        assert again.exit_code == 0, again.output
        assert sum(server.requests.values()) == before
        assert "9/12 videos available" in again.output
    report = json.loads((new_root / "availability.json").read_text())
    assert (report["videos"], report["available"], report["dead"], report["changed"]) == (
        N_CLIPS,
        N_CLIPS - 3,
        2,
        1,
    )
    assert report["per_variant"]["full"]["per_split"]["test"]["available"] == len(test_ids) - 1
    assert report["per_variant"]["full"]["complete"] is False
    balanced = read_manifest(root / "variants" / "balanced.parquet").df
    lost = {*dead_ids, changed_id}
    assert report["per_variant"]["balanced"]["complete"] is (not lost & set(balanced["video_id"]))
    assert sum(p["total"] for p in report["per_platform"].values()) == N_CLIPS
    assert sum(c["available"] for c in report["per_class"].values()) == N_CLIPS - 3
    missing = pd.read_csv(new_root / "missing.csv")
    assert sorted(missing["release_video_id"]) == sorted(lost)
    states = dict(zip(missing["release_video_id"], missing["state"], strict=True))
    assert states[changed_id] == "changed" and states[dead_ids[0]] == "dead"
    assert missing.loc[missing["state"] == "dead", "reason"].str.startswith("unavailable").all()
    hydrated_full = read_manifest(new_root / "variants" / "full.parquet", "split")
    assert sorted(hydrated_full.df["video_id"]) == sorted(set(full["video_id"]) - lost)
    assert hydrated_full.meta.extra["complete"] is False
    assert "Complete variants:" in (new_root / "availability.md").read_text()
