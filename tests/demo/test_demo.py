"""The whole chain, end to end, on generated videos with the real tools (slow: ~3-5 minutes)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from emotions_data.cli import main
from emotions_data.schema import read_manifest

pytestmark = [pytest.mark.slow, pytest.mark.ffmpeg, pytest.mark.labelstudio]


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline and int(pid) != os.getpid():
            found.append(f"{pid}: {cmdline[:120]}")
    return found


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, object]]]:
    out = tmp_path_factory.mktemp("demo") / "out"
    summaries = []
    for _ in range(2):
        result = CliRunner().invoke(
            main, ["--seed", "0", "demo", "--out", str(out), "--no-progress", "--json", "-"]
        )
        assert result.exit_code == 0, result.output[-3000:]
        summaries.append(json.loads(result.output[result.output.index('{\n  "out"') :]))
    return out, summaries


def test_manifests_valid_and_counts_consistent(
    demo_runs: tuple[Path, list[dict[str, object]]],
) -> None:
    out, _ = demo_runs
    root = out / "dataset"
    urls = (out / "urls.csv").read_text().strip().splitlines()[1:]
    videos = read_manifest(root / "videos.parquet", "videos").df
    assert len(videos) == len(urls) == 66
    by_status = videos["status"].value_counts().to_dict()
    assert by_status["failed"] == 5  # 3 dead URLs + 2 broken files
    assert by_status["filtered"] == 3  # 2 silent (audio required) + 1 too short
    assert by_status["duplicate"] >= 4  # the reposts
    ok = videos[videos["status"] == "ok"]
    assert all((root / p / "meta.json").exists() for p in ok["cache_path"])
    annotations = read_manifest(root / "annotations.parquet", "annotations").df
    assert set(annotations["video_id"]) == set(ok["video_id"])  # only ok videos are annotated
    labels = read_manifest(root / "labels.parquet", "labels").df
    assert set(labels["video_id"]) <= set(ok["video_id"])
    assert len(labels) >= len(ok) - 2
    truth = ok.set_index("video_id")["true_label"]
    assert (
        labels.set_index("video_id")["label"] == truth.reindex(labels["video_id"])
    ).mean() >= 0.9
    groups = read_manifest(root / "groups.parquet", "groups").df
    removed = groups[~groups["active"]]
    assert len(removed) >= 1 and removed["reason"].notna().all()  # the careless annotator
    assert {"primary", "cross_check_a"} <= set(annotations["stage"])


def test_agreement_and_baseline_outputs(demo_runs: tuple[Path, list[dict[str, object]]]) -> None:
    out, _ = demo_runs
    report = json.loads((out / "reports" / "agreement" / "agreement.json").read_text())
    for key in ("n_items", "krippendorff_alpha", "fleiss_kappa", "gwet_ac1", "ci", "per_stage"):
        assert key in report
    assert 0.0 < report["krippendorff_alpha"] <= 1.0
    assert list((out / "reports" / "agreement").glob("*.png"))
    run = out / "runs" / "avcpnet-tiny"
    metrics = json.loads((run / "metrics.json").read_text())
    # selection: the best val UAR, ties to the lower val loss (it kept epoch 1 before)
    epochs = metrics["epochs"]
    ranked = sorted(epochs, key=lambda e: (-e["val"]["uar"], e["val_loss"], e["epoch"]))
    assert metrics["best_epoch"] == ranked[0]["epoch"]
    if len({e["val"]["uar"] for e in epochs}) == 1:  # all tied: the best fit, not the first
        assert metrics["best_epoch"] > 1
    test_metrics = sorted(run.glob("test*_metrics.json"))
    assert test_metrics, sorted(p.name for p in run.iterdir())
    assert json.loads(test_metrics[0].read_text())["accuracy"] >= 0.5
    assert (run / "best.pt").exists()


def test_variants_disjoint_and_release_loadable(
    demo_runs: tuple[Path, list[dict[str, object]]],
) -> None:
    out, _ = demo_runs
    root = out / "dataset"
    for name in ("full", "balanced", "test-oriented"):
        variant = read_manifest(root / "variants" / f"{name}.parquet", "split")
        assert variant.meta.extra["variant"] == name
        assert variant.df["video_id"].is_unique  # no video in two splits
        assert set(variant.df["split"]) == {"train", "val", "test"}
        for split in ("train", "val", "test"):
            table = pq.read_table(out / "release" / "data" / name / f"{split}.parquet")
            assert table.num_rows == int((variant.df["split"] == split).sum())
            assert "source_url" in table.column_names
    assert (out / "release" / "croissant.json").exists()
    card = (out / "release" / "README.md").read_text()
    assert card.startswith("---") and "configs:" in card
    availability = json.loads((out / "hydrated" / "availability.json").read_text())
    assert availability["dead"] == 2  # the two links taken down after the release
    assert availability["available"] == availability["videos"] - 2


def test_second_run_resumes_and_no_process_is_left(
    demo_runs: tuple[Path, list[dict[str, object]]],
) -> None:
    out, summaries = demo_runs
    first, second = summaries
    assert second["figures"]["fetch"]["downloaded"] == 0  # type: ignore[index]
    assert second["figures"]["labels"] == first["figures"]["labels"]  # type: ignore[index]
    assert sum(second["timings_s"].values()) < sum(first["timings_s"].values())  # type: ignore[attr-defined]
    assert _processes_mentioning(str(out)) == []
