"""The test-oriented variant when uploaders and duplicate clusters group the videos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from emotions_data.cli import main
from emotions_data.release.card import _left_out_sentence
from emotions_data.schema import read_manifest, write_manifest
from emotions_data.schema.taxonomy import load_taxonomy
from emotions_data.testing.manifests import synthetic_videos
from emotions_data.variants import check_no_leakage
from emotions_data.variants.build import (
    largest_balanced_target,
    pack_test_groups,
    reliable_mask,
)
from emotions_data.variants.split import leakage_frame, leakage_groups


def test_largest_balanced_target_skips_counts_whole_groups_cannot_make() -> None:
    # class a comes in pairs only: 3 per class cannot be made, 2 can (b has 3 singles)
    reliable = np.array([[2, 0], [2, 0], [0, 1], [0, 1], [0, 1]])
    args = (reliable, np.zeros(5, dtype=np.int64), np.array(list("pqxyz")), ["a", "b"])
    assert largest_balanced_target(*args, below=5) == 2
    assert largest_balanced_target(*args, below=2) == 0  # 1 per class: a has no single
    assert largest_balanced_target(np.zeros((0, 2), dtype=np.int64), *args[1:], below=3) == 0


def test_exact_packing_fills_where_first_fit_does_not() -> None:
    # Taking the mixed group first (as a first-fit pass may) blocks both classes at 1.
    reliable = np.array([[1, 1], [2, 0], [0, 2]])
    packing = pack_test_groups(
        reliable,
        np.zeros(3, dtype=np.int64),
        np.array(["mixed", "a", "b"]),
        ["a", "b"],
        2,
        np.random.default_rng(0),
    )
    assert packing.groups == ["a", "b"]
    assert packing.filled == {"a": 2, "b": 2} and packing.shortfall == {}
    # Of two equal fillings, the one leaving fewer unreliable videos out is taken.
    packing = pack_test_groups(
        np.array([[1, 0], [1, 0], [0, 1]]),
        np.array([3, 0, 0]),
        np.array(["wasteful", "clean", "b"]),
        ["a", "b"],
        1,
        np.random.default_rng(0),
    )
    assert packing.groups == ["b", "clean"]


@pytest.fixture(scope="module")
def clustered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """600 ok videos, Zipf-like uploaders (a few with dozens), 5 % reposts; 40 % unanimous."""
    root = tmp_path_factory.mktemp("clustered")
    videos, truth = synthetic_videos(600, seed=3)
    rng = np.random.default_rng(3)
    unanimous = rng.random(len(truth)) < 0.4
    labels = pd.DataFrame(
        {
            "video_id": truth.index,
            "label": truth.to_numpy(),
            "method": "majority",
            "n_votes": np.int32(3),
            "support": np.where(unanimous, 1.0, 2 / 3),
            "entropy": np.where(unanimous, 0.0, 0.918),
            "confidence": np.where(unanimous, 1.0, 2 / 3),
            "decided_stage": "cross_check_a",
            "expert_changed": False,
        }
    )
    write_manifest(videos, root / "videos.parquet", "videos")
    write_manifest(labels, root / "labels.parquet", "labels")
    return root


def _variants(tmp: Path, per_class: int | None, share: float = 0.2) -> Path:
    path = tmp / "variants.yaml"
    entry = {
        "rule": "test_oriented",
        "test_per_class": per_class,
        "test_share": share,
        "rationale": "test",
    }
    path.write_text(yaml.safe_dump({"variants": {"test-oriented": entry}}))
    return path


def _build(
    root: Path, tmp: Path, per_class: int | None, *extra: str, share: float = 0.2
) -> tuple[int, str]:
    result = CliRunner().invoke(
        main,
        [
            "--seed",
            "4",
            "build-variants",
            "--root",
            str(root),
            "--out",
            str(tmp / "v"),
            "--variants",
            str(_variants(tmp, per_class, share)),
            *extra,
        ],
    )
    return result.exit_code, result.output


def test_clustered_test_set_is_full_balanced_reliable_and_leak_free(
    clustered: Path, tmp_path: Path
) -> None:
    code, output = _build(clustered, tmp_path, 5)
    assert code == 0, output
    variant = read_manifest(tmp_path / "v" / "test-oriented.parquet", "split")
    videos = read_manifest(clustered / "videos.parquet").df
    labels = read_manifest(clustered / "labels.parquet").df
    frame = variant.df
    test = frame[frame["split"] == "test"]
    # full and class-balanced: every class at the target
    assert test["label"].value_counts().reindex(load_taxonomy().classes).tolist() == [5] * 6
    assert variant.meta.extra["test_shortfall"] == {}
    # reliable only
    by_id = labels.set_index("video_id")
    assert reliable_mask(by_id.loc[test["video_id"]], 1.0, True).all()
    # leak-free, and the test groups' unreliable members are out of the variant, counted
    assert check_no_leakage(frame, videos) == []
    groups = leakage_frame(labels, videos).assign(group=lambda f: leakage_groups(f).to_numpy())
    test_groups = set(groups.loc[groups["video_id"].isin(test["video_id"]), "group"])
    in_test_groups = groups[groups["group"].isin(test_groups)]
    dropped = set(in_test_groups["video_id"]) - set(test["video_id"])
    assert dropped and not dropped & set(frame["video_id"])
    assert variant.meta.extra["left_out"] == {"unreliable_in_test_group": len(dropped)}
    assert len(frame) + len(dropped) == len(labels)
    assert f"{len(dropped)} unreliable video(s) of test groups left out" in output


def test_a_class_that_cannot_reach_the_target_exits_3_unless_allowed(
    clustered: Path, tmp_path: Path
) -> None:
    labels = read_manifest(clustered / "labels.parquet").df
    reliable_fear = int(((labels["label"] == "fear") & (labels["support"] >= 1.0)).sum())
    code, output = _build(clustered, tmp_path, reliable_fear + 1)
    assert code == 3, output
    assert f"; {reliable_fear} reliable)" in output and "'fear' (" in output
    assert not (tmp_path / "v" / "test-oriented.parquet").exists()
    code, output = _build(clustered, tmp_path, reliable_fear + 1, "--allow-short")
    assert code == 0, output
    meta = read_manifest(tmp_path / "v" / "test-oriented.parquet", "split").meta.extra
    assert meta["test_shortfall"]["fear"] >= 1
    sentence = _left_out_sentence(meta)
    assert f"{meta['left_out']['unreliable_in_test_group']} videos are left out" in sentence
    assert f"fear ({meta['test_shortfall']['fear']} short)" in sentence
    assert (
        meta["test_filled_per_class"]["fear"] + meta["test_shortfall"]["fear"] == reliable_fear + 1
    )


def test_a_default_target_shrinks_to_the_largest_balanced_test_set(
    clustered: Path, tmp_path: Path
) -> None:
    """test_share aims above what the reliable videos allow: exit 0, the largest balanced set."""
    labels = read_manifest(clustered / "labels.parquet").df
    reliable = labels[labels["support"] >= 1.0]["label"].value_counts()
    fewest = int(reliable.min())
    share = (fewest + 10) * 6 / len(labels)  # a derived target 10 above the scarcest class
    code, output = _build(clustered, tmp_path, None, share=share)
    assert code == 0, output
    variant = read_manifest(tmp_path / "v" / "test-oriented.parquet", "split")
    meta = variant.meta.extra
    test = variant.df[variant.df["split"] == "test"]
    per_class = meta["test_target_per_class"]
    assert 0 < per_class <= fewest < meta["test_target_from_share"]
    assert test["label"].value_counts().reindex(load_taxonomy().classes).tolist() == [per_class] * 6
    assert meta["test_shortfall"] == {}
    assert f"test set: {per_class} reliable videos per class, the largest balanced" in output
    assert f"{reliable.idxmin()} has {fewest} reliable" in output
    # the largest: asking for one more per class fails the gate and names this count
    code, output = _build(clustered, tmp_path, per_class + 1)
    assert code == 3, output
    assert f"the largest balanced test set is {per_class} per class" in output
