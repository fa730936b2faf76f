from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from emotions_data.cli import main
from emotions_data.schema import ConfigError, read_manifest
from emotions_data.variants import check_no_leakage, leakage_groups, make_split, parse_ratios
from tests.variants.labelled_set import labelled_frames, write_root


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    return labelled_frames(150, seed=0)


def test_leakage_groups_join_uploaders_and_duplicate_clusters() -> None:
    frame = pd.DataFrame(
        {
            "video_id": ["a", "b", "c", "d", "e", "f"],
            "uploader_id": ["u1", "u1", "u2", None, None, "u3"],
            # d is a duplicate of c (kept copy); e and f are duplicates of an unlabelled copy
            "dup_of": [None, None, None, "c", "zz", "zz"],
        }
    )
    groups = leakage_groups(frame).tolist()
    assert groups == ["a", "a", "c", "c", "e", "e"]


def test_split_is_stratified_deterministic_and_leakage_free(
    frames: dict[str, pd.DataFrame],
) -> None:
    labels, videos = frames["labels"], frames["videos"]
    one = make_split(labels, videos, ratios=(0.7, 0.1, 0.2), seed=3)
    two = make_split(labels.sample(frac=1, random_state=1), videos, ratios=(0.7, 0.1, 0.2), seed=3)
    pd.testing.assert_frame_equal(one.frame, two.frame)
    assert check_no_leakage(one.frame, videos) == []
    assert one.max_shift < 0.03
    # every class reaches every split
    table = one.table()
    assert (table.drop(index="total")[["train", "val", "test"]] > 0).all().all()
    # platforms are balanced too: each split's platform mix is close to the overall one
    with_platform = one.frame.merge(videos[["video_id", "platform"]], on="video_id")
    mix = with_platform.groupby("split")["platform"].value_counts(normalize=True).unstack()
    assert float((mix - 1 / 3).abs().to_numpy().max()) < 0.07
    other = make_split(labels, videos, seed=4)
    assert not one.frame["split"].equals(other.frame["split"])


def test_split_reports_how_far_the_ratios_moved_when_groups_are_coarse(
    frames: dict[str, pd.DataFrame],
) -> None:
    labels = frames["labels"].head(20)
    videos = frames["videos"].copy()
    # a single uploader owns half of the videos: the test share cannot be met exactly
    videos.loc[videos["video_id"].isin(labels["video_id"].head(10)), "uploader_id"] = "big"
    result = make_split(labels, videos, ratios=(0.5, 0.25, 0.25), seed=0)
    assert check_no_leakage(result.frame, videos) == []
    assert result.largest_group >= 10
    assert result.max_shift == pytest.approx(
        max(abs(result.achieved[s] - result.requested[s]) for s in ("train", "val", "test"))
    )
    assert result.max_shift > 0.0


def test_folds_are_leakage_free_and_balanced(frames: dict[str, pd.DataFrame]) -> None:
    result = make_split(frames["labels"], frames["videos"], folds=5, seed=0)
    frame = result.frame
    assert frame.loc[frame["split"] == "test", "fold"].isna().all()
    dev = frame[frame["split"] != "test"]
    assert sorted(dev["fold"].unique().tolist()) == [0, 1, 2, 3, 4]
    assert (dev.loc[dev["fold"] == 0, "split"] == "val").all()
    assert max(result.fold_sizes) - min(result.fold_sizes) <= 8
    assert check_no_leakage(frame, frames["videos"]) == []


def test_more_folds_than_groups_is_an_error(tmp_path: Path) -> None:
    write_root(tmp_path, 60)
    out = tmp_path / "split.parquet"
    result = CliRunner().invoke(
        main, ["split", "--root", str(tmp_path), "--folds", "200", "--out", str(out)]
    )
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: folds 200:") and "use fewer folds" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not out.exists()


@pytest.mark.parametrize("text", ["0.7,0.3", "0.5,0.5,0.5", "0,0.5,0.5", "a,b,c"])
def test_bad_ratios(text: str) -> None:
    with pytest.raises(ConfigError, match="ratios"):
        parse_ratios(text)


def test_cli_split_writes_manifest_and_prints_table(tmp_path: Path) -> None:
    paths = write_root(tmp_path, 90)
    result = CliRunner().invoke(
        main, ["--seed", "2", "split", "--root", str(tmp_path), "--ratios", "0.6,0.2,0.2"]
    )
    assert result.exit_code == 0, result.output
    assert "excitation" in result.output and "moved by at most" in result.output
    m = read_manifest(tmp_path / "split.parquet", "split")
    assert len(m.df) == 90
    assert m.meta.extra["seed"] == 2
    assert {p["path"] for p in m.meta.parents} == {str(paths["labels"]), str(paths["videos"])}
    bad = CliRunner().invoke(
        main, ["split", str(paths["labels"]), "--out", "x.parquet", "--ratios", "1,1,1"]
    )
    assert bad.exit_code == 1 and bad.output.startswith("Error: ratios")
    folds = CliRunner().invoke(
        main,
        ["split", "--root", str(tmp_path), "--folds", "3", "--out", str(tmp_path / "f.parquet")],
    )
    assert folds.exit_code == 0, folds.output
    assert "fold sizes" in folds.output
