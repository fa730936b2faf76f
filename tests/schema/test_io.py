from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emotions_data.schema import ManifestError, load_taxonomy, read_manifest, write_manifest
from emotions_data.schema.io import parent_entry
from emotions_data.testing.manifests import example_frames


@pytest.mark.parametrize("kind", ["videos", "annotations", "labels", "split", "groups"])
def test_every_kind_round_trips(tmp_path: Path, kind: str) -> None:
    frame = example_frames()[kind]
    path = write_manifest(frame, tmp_path / f"{kind}.parquet", kind, params={"a": 1})
    m = read_manifest(path, kind)
    assert m.meta.kind == kind
    assert m.meta.params == {"a": 1}
    assert m.meta.taxonomy is not None and m.meta.taxonomy["classes"][0] == "excitation"
    assert list(m.df.columns[: len(m.kind.columns)]) == m.kind.column_names
    key = m.kind.key[0]
    assert m.df[key].tolist() == frame[key].tolist()
    # writing what was read gives the same table
    again = write_manifest(m.df, tmp_path / f"{kind}-2.parquet", kind)
    assert pq.read_table(again).equals(pq.read_table(path))


def test_parents_are_recorded_with_sha256(tmp_path: Path) -> None:
    frames = example_frames()
    parent = write_manifest(frames["labels"], tmp_path / "labels.parquet", "labels")
    child = write_manifest(frames["split"], tmp_path / "split.parquet", "split", parents=[parent])
    meta = read_manifest(child).meta
    assert meta.parents == [parent_entry(parent)]
    assert len(meta.parents[0]["sha256"]) == 64


def test_missing_column_is_named(tmp_path: Path) -> None:
    frame = example_frames()["labels"].drop(columns=["support"])
    with pytest.raises(ManifestError, match=r"missing column 'support' \(expected double\)"):
        write_manifest(frame, tmp_path / "x.parquet", "labels")
    assert not (tmp_path / "x.parquet").exists()


def test_mistyped_column_shows_expected_and_found(tmp_path: Path) -> None:
    frame = example_frames()["labels"].assign(n_votes=["three"])
    with pytest.raises(
        ManifestError, match=r"column 'n_votes': expected int32, found (large_)?string"
    ):
        write_manifest(frame, tmp_path / "x.parquet", "labels")


def test_unknown_label_lists_allowed_values(tmp_path: Path) -> None:
    frame = example_frames()["annotations"]
    frame.loc[1, "label"] = "joy"
    with pytest.raises(ManifestError) as err:
        write_manifest(frame, tmp_path / "x.parquet", "annotations")
    msg = str(err.value)
    assert "row 1, column 'label': 'joy'" in msg
    assert "excitation, fear, neutral, relaxation, sadness, tension" in msg
    assert "\n" not in msg


def test_duplicate_annotation_key(tmp_path: Path) -> None:
    frame = example_frames()["annotations"]
    frame.loc[2, "annotator_id"] = "a01"
    with pytest.raises(
        ManifestError,
        match=r"row 2: duplicate key video_id='tiktok-7001', annotator_id='a01', stage='primary' \(first at row 0\)",
    ):
        write_manifest(frame, tmp_path / "x.parquet", "annotations")


def test_duplicate_keys_found_among_many_rows(tmp_path: Path) -> None:
    """The integer-code key check finds one repeated key among thousands, and names it."""
    base = example_frames()["annotations"].iloc[[0]]
    frame = pd.concat([base] * 3000, ignore_index=True)
    frame["video_id"] = [f"v{i // 3}" for i in range(3000)]
    frame["annotator_id"] = [f"a{i % 3}" for i in range(3000)]
    write_manifest(frame, tmp_path / "ok.parquet", "annotations")  # all keys distinct
    frame.loc[2999, "annotator_id"] = "a1"
    with pytest.raises(ManifestError, match=r"row 2999: duplicate key video_id='v999'"):
        write_manifest(frame, tmp_path / "x.parquet", "annotations")


def test_unsafe_name_found_by_distinct_value(tmp_path: Path) -> None:
    frame = example_frames()["annotations"]
    frame["video_id"] = ["../x", "tiktok-7001", "../x"]
    with pytest.raises(ManifestError) as err:
        write_manifest(frame, tmp_path / "x.parquet", "annotations")
    assert [p.split(":")[0] for p in err.value.problems] == [
        f"{tmp_path / 'x.parquet'}, row 0, column 'video_id'",
        f"{tmp_path / 'x.parquet'}, row 2, column 'video_id'",
    ]


def test_categorical_read_sees_the_same_rows_and_problems(tmp_path: Path) -> None:
    """Columns read dictionary-encoded across row groups: the same values, the same checks."""
    base = example_frames()["annotations"].iloc[[0]]
    frame = pd.concat([base] * 300, ignore_index=True)
    frame["video_id"] = [f"v{i // 3}" for i in range(300)]
    frame["annotator_id"] = [f"a{i % 3}" for i in range(300)]
    good = write_manifest(frame, tmp_path / "good.parquet", "annotations")
    table = pq.read_table(good)
    # small row groups: each has its own dictionary, which the reader merges
    pq.write_table(table, tmp_path / "groups.parquet", row_group_size=7)
    names = ["video_id", "annotator_id", "label", "stage"]
    plain = read_manifest(tmp_path / "groups.parquet", columns=names).df
    coded = read_manifest(tmp_path / "groups.parquet", columns=names, categorical=names).df
    assert all(isinstance(coded[c].dtype, pd.CategoricalDtype) for c in names)
    assert coded.astype(str).equals(plain.astype(str))

    def problems(column: str, row: int, value: str) -> list[str]:
        bad = table.set_column(
            table.column_names.index(column),
            column,
            pa.array([value if i == row else v for i, v in enumerate(frame[column])]),
        )
        pq.write_table(bad, tmp_path / "bad.parquet", row_group_size=7)
        with pytest.raises(ManifestError) as err:
            read_manifest(tmp_path / "bad.parquet", columns=names, categorical=names)
        return [p.removeprefix(f"{tmp_path / 'bad.parquet'}, ") for p in err.value.problems]

    assert problems("annotator_id", 299, "a1") == [
        "row 299: duplicate key video_id='v99', annotator_id='a1', stage='primary' "
        "(first at row 298)"
    ]
    (unsafe,) = problems("video_id", 250, "../x")
    assert unsafe.startswith("row 250, column 'video_id': '../x' is not a safe name")
    (unknown,) = problems("label", 17, "joy")
    assert unknown.startswith("row 17, column 'label': 'joy' is not an allowed label")


def test_read_only_some_columns(tmp_path: Path) -> None:
    path = write_manifest(example_frames()["annotations"], tmp_path / "a.parquet", "annotations")
    manifest = read_manifest(path, "annotations", columns=["label"])
    # the key always comes along: its uniqueness is checked on every read
    assert list(manifest.df.columns) == ["video_id", "annotator_id", "stage", "label"]
    assert manifest.kind.name == "annotations"
    with pytest.raises(ManifestError, match="has no column 'mood'"):
        read_manifest(path, columns=["mood"])
    table = pq.read_table(path)
    pq.write_table(table.drop_columns(["source"]), tmp_path / "b.parquet")
    with pytest.raises(ManifestError, match="missing column 'source'"):
        read_manifest(tmp_path / "b.parquet", columns=["label"])


@pytest.mark.parametrize("bad", ["/etc/passwd", "../outside.mp4", "media/../../x.mp4"])
def test_escaping_media_path_is_rejected(tmp_path: Path, bad: str) -> None:
    frame = example_frames()["videos"]
    frame.loc[0, "media_path"] = bad
    with pytest.raises(ManifestError, match=r"column 'media_path'.*must be relative"):
        write_manifest(frame, tmp_path / "x.parquet", "videos")


def test_wrong_kind_on_read(tmp_path: Path) -> None:
    path = write_manifest(example_frames()["labels"], tmp_path / "l.parquet", "labels")
    with pytest.raises(ManifestError, match="expected a videos manifest, found kind 'labels'"):
        read_manifest(path, "videos")


def test_not_parquet(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    path.write_text("video_id,label\n")
    with pytest.raises(ManifestError, match="not a Parquet file"):
        read_manifest(path)


def test_plain_parquet_without_metadata(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"video_id": ["a"]}), path)
    with pytest.raises(ManifestError, match="no emotions_data metadata"):
        read_manifest(path)


def test_null_in_required_column(tmp_path: Path) -> None:
    frame = example_frames()["split"]
    frame.loc[0, "split"] = None
    with pytest.raises(ManifestError, match="row 0, column 'split': null value"):
        write_manifest(frame, tmp_path / "x.parquet", "split")


def test_extra_columns_kept_for_videos_rejected_elsewhere(tmp_path: Path) -> None:
    videos = example_frames()["videos"].assign(keyword=["a", "b", "c"])
    m = read_manifest(write_manifest(videos, tmp_path / "v.parquet", "videos"))
    assert m.df["keyword"].tolist() == ["a", "b", "c"]
    labels = example_frames()["labels"].assign(oops=[1])
    with pytest.raises(ManifestError, match=r"unexpected column\(s\) \['oops'\]"):
        write_manifest(labels, tmp_path / "l.parquet", "labels")


def test_other_taxonomy_from_yaml(tmp_path: Path) -> None:
    tax_file = tmp_path / "binary.yaml"
    tax_file.write_text("name: binary\nclasses: [pos, neg]\n")
    tax = load_taxonomy(tax_file)
    frame = pd.DataFrame({"video_id": ["a"], "label": ["pos"], "split": ["test"], "fold": [None]})
    path = write_manifest(frame, tmp_path / "s.parquet", "split", taxonomy=tax)
    assert read_manifest(path).taxonomy.classes == ("pos", "neg")
    with pytest.raises(
        ManifestError, match="'pos' is not an allowed label of taxonomy 'emotions6'"
    ):
        read_manifest(path, taxonomy="emotions6")


def test_failed_write_keeps_the_previous_file(tmp_path: Path) -> None:
    path = write_manifest(example_frames()["labels"], tmp_path / "l.parquet", "labels")
    before = path.read_bytes()
    bad = example_frames()["labels"].assign(label=["joy"])
    with pytest.raises(ManifestError):
        write_manifest(bad, path, "labels")
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["l.parquet"]


labels_strategy = st.lists(
    st.tuples(
        st.from_regex(r"[a-f0-9][a-f0-9-]{0,11}", fullmatch=True),  # safe names
        st.sampled_from(load_taxonomy().classes),
        st.integers(0, 50),
        st.floats(0, 1),
        st.booleans(),
    ),
    max_size=20,
    unique_by=lambda t: t[0],
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=labels_strategy)
def test_labels_round_trip_property(
    tmp_path: Path, rows: list[tuple[str, str, int, float, bool]]
) -> None:
    frame = pd.DataFrame(
        {
            "video_id": [r[0] for r in rows],
            "label": [r[1] for r in rows],
            "method": ["majority"] * len(rows),
            "n_votes": [r[2] for r in rows],
            "support": [r[3] for r in rows],
            "entropy": [0.0] * len(rows),
            "confidence": [r[3] for r in rows],
            "decided_stage": ["primary"] * len(rows),
            "expert_changed": [r[4] for r in rows],
        }
    )
    path = write_manifest(frame, tmp_path / "p.parquet", "labels")
    df = read_manifest(path).df
    assert df["video_id"].tolist() == frame["video_id"].tolist()
    assert df["n_votes"].tolist() == frame["n_votes"].tolist()
    assert df["support"].tolist() == pytest.approx(frame["support"].tolist())
    assert df["expert_changed"].tolist() == frame["expert_changed"].tolist()
