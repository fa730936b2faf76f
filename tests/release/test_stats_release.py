from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from emotions_data.cli import main
from emotions_data.schema import read_manifest
from tests.variants.labelled_set import write_root

SECTIONS = (
    "## Motivation",
    "## Composition",
    "## Collection",
    "## Annotation protocol",
    "## Annotators per item",
    "## Agreement",
    "## Uses",
    "## Limitations",
    "## Maintenance",
)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("root")
    write_root(root, 150)
    result = CliRunner().invoke(main, ["--seed", "1", "build-variants", "--root", str(root)])
    assert result.exit_code == 0, result.output
    return root


def _crowd_alpha(root: Path, stage: str) -> float:
    import krippendorff

    ann = read_manifest(root / "annotations.parquet").df
    ann = ann[ann["stage"] == stage]
    counts = ann.groupby(["video_id", "label"]).size().unstack(fill_value=0).to_numpy()
    return float(krippendorff.alpha(value_counts=counts, level_of_measurement="nominal"))


def test_stats_report_and_figures(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "stats"
    result = CliRunner().invoke(
        main, ["stats", "--root", str(root), "--out", str(out), "--bootstrap", "200"]
    )
    assert result.exit_code == 0, result.output
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == [
        "agreement_by_stage.png",
        "class_distribution.png",
        "duration_resolution.png",
        "funnel.png",
        "platform_share.png",
    ]
    assert all((out / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    data = json.loads((out / "stats.json").read_text())
    videos = read_manifest(root / "videos.parquet").df
    labels = read_manifest(root / "labels.parquet").df
    assert data["funnel"]["URLs"] == len(videos)
    assert data["funnel"]["finally labelled"] == len(labels)
    assert data["losses"]["duplicate"] == int((videos["status"] == "duplicate").sum())
    assert data["losses"]["expert-decided"] == int((labels["method"] == "expert").sum())
    assert sum(data["variants"]["full"]["total"].values()) == len(labels)
    primary = data["agreement"]["per_stage"]["primary"]
    assert primary["alpha"] == pytest.approx(_crowd_alpha(root, "primary"), abs=1e-4)
    assert primary["ci"][0] < primary["alpha"] < primary["ci"][1]
    assert data["orientation"]["portrait"] + data["orientation"]["landscape"] == len(labels)
    report = (out / "report.md").read_text()
    for heading in ("Class distribution", "Platform share", "Agreement per stage", "Funnel"):
        assert heading in report
    assert "![funnel](funnel.png)" in report


def _card_header(text: str) -> dict[str, object]:
    assert text.startswith("---\n")
    header = yaml.safe_load(text.split("---\n")[1])
    assert isinstance(header, dict)
    return header


def test_release_ids_only_loads_as_parquet_and_croissant_validates(
    root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "release"
    result = CliRunner().invoke(
        main,
        [
            "release",
            "--root",
            str(root),
            "--out",
            str(out),
            "--name",
            "tiny-emotions",
            "--bootstrap",
            "100",
        ],
    )
    assert result.exit_code == 0, result.output
    card = (out / "README.md").read_text()
    header = _card_header(card)
    configs = header["configs"]
    assert isinstance(configs, list)
    assert [c["config_name"] for c in configs] == ["full", "balanced", "test-oriented"]
    assert configs[0]["default"] is True
    for config in configs:
        variant = read_manifest(root / "variants" / f"{config['config_name']}.parquet").df
        loaded = []
        for entry in config["data_files"]:
            table = pq.read_table(out / entry["path"])
            assert set(table.column("split").to_pylist()) == {entry["split"]}
            loaded.append(table.to_pandas())
        import pandas as pd

        rows = pd.concat(loaded)
        assert sorted(rows["video_id"]) == sorted(variant["video_id"])
        assert "uploader_id" not in rows.columns and "title" not in rows.columns
        assert rows["sha256"].str.len().eq(64).all() and rows["source_url"].notna().all()
    for section in SECTIONS:
        assert section in card, section
    labels = read_manifest(root / "labels.parquet").df
    assert f"{len(labels)} videos labelled" in card
    assert f"{_crowd_alpha(root, 'primary'):.3f}" in card
    assert "95 % bootstrap CI" in card

    import mlcroissant as mlc

    dataset = mlc.Dataset(jsonld=str(out / "croissant.json"))
    meta = dataset.metadata
    assert meta.name == "tiny-emotions"
    assert meta.data_collection and "candidate URLs" in meta.data_collection
    assert meta.annotations_per_item and "6.0 crowd judgements" in meta.annotations_per_item
    assert meta.data_annotation_platform and "Label Studio" in meta.data_annotation_platform[0]
    assert "simulated 917" in meta.data_annotation_platform[0]
    assert meta.data_annotation_analysis and "alpha" in meta.data_annotation_analysis[0]
    assert meta.data_limitations and meta.personal_sensitive_information
    records = list(dataset.records(record_set="full_test"))
    full = read_manifest(root / "variants" / "full.parquet").df
    assert len(records) == int((full["split"] == "test").sum())
    assert {r["full_test/label"].decode() for r in records} <= set(labels["label"])


def test_release_without_variants_is_one_line_error(tmp_path: Path) -> None:
    write_root(tmp_path, 30)
    result = CliRunner().invoke(
        main, ["release", "--root", str(tmp_path), "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "build-variants" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_release_again_drops_what_the_manifests_no_longer_hold(tmp_path: Path) -> None:
    """A variant or split gone from the root, or media after --ids-only, leaves the release."""
    from emotions_data.release.publish import build_release, read_release

    write_root(tmp_path, 60)
    result = CliRunner().invoke(main, ["build-variants", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for row in read_manifest(tmp_path / "videos.parquet").df.itertuples():
        if isinstance(row.media_path, str):
            (tmp_path / row.media_path).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / row.media_path).write_bytes(row.video_id.encode())
    out = tmp_path / "release"
    first = build_release(tmp_path, out, with_media=True, n_boot=20)
    assert first.media_files == 60 and (out / "data" / "balanced").is_dir()
    (tmp_path / "variants" / "balanced.parquet").unlink()
    build_release(tmp_path, out, n_boot=20)
    assert set(read_release(out)) == {"full", "test-oriented"}
    assert not (out / "data" / "balanced").exists()
    assert not any((out / "media").iterdir())  # ids-only now: no media shipped
