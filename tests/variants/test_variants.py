from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from emotions_data.cli import main
from emotions_data.schema import ConfigError, read_manifest
from emotions_data.schema.atomic import sha256_file
from emotions_data.variants import check_no_leakage, load_variants
from tests.variants.labelled_set import write_root


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("root")
    write_root(root, 150)
    return root


def _build(root: Path, out: Path, seed: int = 5) -> None:
    result = CliRunner().invoke(
        main, ["--seed", str(seed), "build-variants", "--root", str(root), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "full:" in result.output and "test-oriented:" in result.output


def test_default_variants(root: Path, tmp_path: Path) -> None:
    _build(root, tmp_path / "v")
    videos = read_manifest(root / "videos.parquet").df
    labels = read_manifest(root / "labels.parquet").df.set_index("video_id")
    full = read_manifest(tmp_path / "v" / "full.parquet", "split")
    balanced = read_manifest(tmp_path / "v" / "balanced.parquet", "split")
    test_or = read_manifest(tmp_path / "v" / "test-oriented.parquet", "split")
    # full: every labelled (ok) video once
    assert sorted(full.df["video_id"]) == sorted(labels.index)
    # balanced: the smallest class's count for every class, on the official split
    per_class = balanced.df["label"].value_counts()
    assert per_class.nunique() == 1
    assert per_class.iloc[0] == full.df["label"].value_counts().min()
    merged = balanced.df.merge(full.df, on="video_id", suffixes=("", "_full"))
    assert (merged["split"] == merged["split_full"]).all()
    # test-oriented: a class-balanced test set of reliable items only
    test = test_or.df[test_or.df["split"] == "test"]
    assert test["label"].value_counts().nunique() == 1
    rel = labels.loc[test["video_id"]]
    assert ((rel["support"] >= 1.0) | (rel["method"] == "expert")).all()
    assert set(test_or.df["split"]) == {"train", "val", "test"}
    for m in (full, balanced, test_or):
        assert check_no_leakage(m.df, videos) == []
        assert not m.df["video_id"].duplicated().any()
        assert m.meta.extra["variant"] == m.path.stem  # type: ignore[union-attr]
        assert m.meta.extra["seed"] == 5
        assert "rationale" in m.meta.extra["definition"]
        assert {p["sha256"] for p in m.meta.parents} >= {sha256_file(root / "labels.parquet")}


def test_same_inputs_and_seed_give_identical_tables(root: Path, tmp_path: Path) -> None:
    _build(root, tmp_path / "a")
    _build(root, tmp_path / "b")
    _build(root, tmp_path / "c", seed=6)
    for name in ("full", "balanced", "test-oriented"):
        a = read_manifest(tmp_path / "a" / f"{name}.parquet").df
        b = read_manifest(tmp_path / "b" / f"{name}.parquet").df
        pd.testing.assert_frame_equal(a, b)
    differs = [
        not read_manifest(tmp_path / "a" / f"{n}.parquet").df.equals(
            read_manifest(tmp_path / "c" / f"{n}.parquet").df
        )
        for n in ("full", "balanced", "test-oriented")
    ]
    assert any(differs)


def test_custom_yaml_variant_and_errors(root: Path, tmp_path: Path) -> None:
    yaml_path = tmp_path / "v.yaml"
    yaml_path.write_text(
        "variants:\n"
        "  small:\n    rule: balanced\n    per_class: 3\n    rationale: tiny smoke set\n"
        "  strict:\n    rule: test_oriented\n    min_support: 0.8\n    test_per_class: 2\n"
    )
    result = CliRunner().invoke(
        main,
        [
            "build-variants",
            "--root",
            str(root),
            "--out",
            str(tmp_path / "o"),
            "--variants",
            str(yaml_path),
        ],
    )
    assert result.exit_code == 0, result.output
    small = read_manifest(tmp_path / "o" / "small.parquet").df
    assert (small["label"].value_counts() == 3).all()
    strict = read_manifest(tmp_path / "o" / "strict.parquet").df
    assert (strict.loc[strict["split"] == "test", "label"].value_counts() == 2).all()
    yaml_path.write_text("variants:\n  x:\n    rule: balanced\n    per_klass: 3\n")
    with pytest.raises(
        ConfigError,
        match=r"variants.x.per_klass: expected one of the keys per_class, found an unknown key",
    ):
        load_variants(yaml_path)
    for body, message in [
        (
            "rule: balanced\n    per_class: true",
            "x.per_class: expected an integer or null, found true",
        ),
        (
            "rule: test_oriented\n    include_expert: maybe",
            "x.include_expert: expected true or false, found 'maybe'",
        ),
    ]:
        yaml_path.write_text(f"variants:\n  x:\n    {body}\n")
        with pytest.raises(ConfigError, match=message):
            load_variants(yaml_path)
    yaml_path.write_text("variants:\n  x:\n    rule: random\n")
    bad = CliRunner().invoke(
        main,
        [
            "build-variants",
            "--root",
            str(root),
            "--out",
            str(tmp_path / "o"),
            "--variants",
            str(yaml_path),
        ],
    )
    assert bad.exit_code == 1
    assert (
        "variants.x.rule: expected one of full, balanced, test_oriented, found 'random'"
        in bad.output
    )
