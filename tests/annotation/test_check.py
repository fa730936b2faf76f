"""``annotate check`` and what it guards: routing offsets, group sizes, leaders, the roster,
a protocol's relative taxonomy path, one vote per person in finalize (no server needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from emotions_data.annotation.allocate import allocate_groups
from emotions_data.annotation.check import check_groups, check_roster, routing_errors
from emotions_data.annotation.finalize import finalize_labels
from emotions_data.annotation.protocol import load_protocol, protocol_from_dict
from emotions_data.annotation.store import write_groups
from emotions_data.cli import main
from emotions_data.schema.errors import ConfigError
from emotions_data.schema.io import read_manifest, read_table_file

EXAMPLE_ROSTER = Path(__file__).parents[2] / "annotation" / "roster.example.csv"


def _roster(n: int, leaders: int, experts: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(n)
    crowd = pd.DataFrame(
        {
            "annotator_id": [f"p{i:02d}" for i in range(n)],
            "experience_years": rng.uniform(0, 9, n).round(1),
            "leader": ["yes" if i < leaders else "no" for i in range(n)],
            "expert": "no",
        }
    )
    expert = pd.DataFrame(
        {
            "annotator_id": [f"x{i}" for i in range(experts)],
            "experience_years": 20.0,
            "leader": "no",
            "expert": "yes",
        }
    )
    return pd.concat([crowd, expert], ignore_index=True)


def test_two_groups_with_a_wrapping_offset_are_refused(tmp_path: Path) -> None:
    # The default protocol's cross_check_b (offset 2) sends disputed items back to the group
    # that labelled them first when there are only 2 groups.
    proto = load_protocol()
    assert routing_errors(proto, 3) == []
    errors = routing_errors(proto, 2)
    assert len(errors) == 1 and "'cross_check_b': offset 2 with 2 group(s)" in errors[0]
    data = yaml.safe_load(Path(proto.source).read_text())
    data["groups"] = 2
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(data))
    runner = CliRunner()
    r = runner.invoke(main, ["annotate", "check", "--protocol", str(path)])
    assert r.exit_code == 1, r.output
    assert "Error: stage 'cross_check_b': offset 2 with 2 group(s) sends items back" in r.output
    assert "already judged them in primary, cross_check_a" in r.output
    # a rotation that wraps onto the same group is refused too; with a third group it is fine
    rot = {
        "groups": 2,
        "stages": [
            {"name": "p"},
            {"name": "x", "source": "rotation", "from": ["p"], "offset": 2},
        ],
    }
    assert "use offset 1" in routing_errors(protocol_from_dict(rot), 2)[0]
    assert routing_errors(protocol_from_dict(rot), 3) == []
    # the protocol that ships is fine, with the example roster
    r = runner.invoke(main, ["annotate", "check", "--roster", str(EXAMPLE_ROSTER), "--json", "-"])
    assert r.exit_code == 0, r.output
    assert "OK with 3 group(s) of at least 3 annotator(s)" in r.output


def test_groups_too_small_for_the_judgements_are_refused(tmp_path: Path) -> None:
    proto = load_protocol()  # 3 judgements per item
    roster = _roster(7, leaders=3)
    with pytest.raises(ConfigError, match="3 groups would have 2 member"):
        allocate_groups(roster, 3, min_group_size=3)
    report = check_roster(roster, proto, 3)
    assert any("gives groups of 2, fewer than the 3 judgements" in e for e in report.errors)
    roster.to_csv(tmp_path / "roster.csv", index=False)
    out = tmp_path / "groups.parquet"
    r = CliRunner().invoke(
        main,
        ["annotate", "allocate", str(tmp_path / "roster.csv"), "--groups", "3", "--out", str(out)],
    )
    assert r.exit_code == 1 and "groups of 2, fewer than the 3 judgements" in r.output
    assert not out.exists()
    # a groups manifest edited by hand (or shrunk) is refused by check, and so by push
    groups = allocate_groups(_roster(9, leaders=3), 3).groups
    groups.loc[groups["annotator_id"] == "p05", "active"] = False
    small = str(groups.loc[groups["annotator_id"] == "p05", "group_id"].iloc[0])
    report = check_groups(groups, proto)
    assert report.errors == [
        f"groups: group {small} has 2 active annotator(s), fewer than the 3 judgements per "
        "item stage 'primary' of protocol 'emotions' needs"
    ]


def test_exactly_one_leader_per_group(tmp_path: Path) -> None:
    # 7 people, 3 of them leader candidates, 2 groups: one leader each, the third a member
    roster = _roster(7, leaders=3)
    allocation = allocate_groups(roster, 2, seed=4)
    g = allocation.groups[allocation.groups["group_id"] != "expert"]
    assert g.groupby("group_id")["leader"].sum().tolist() == [1, 1]
    assert len(allocation.surplus_leaders) == 1
    assert allocation.surplus_leaders[0] in {"p00", "p01", "p02"}
    # two leaders in one group (hand-edited) is an error naming both
    groups = allocation.groups.copy()
    a_member = groups[(groups["group_id"] == "A") & ~groups["leader"]].index[0]
    groups.loc[a_member, "leader"] = True
    errors = check_groups(groups, load_protocol()).errors
    assert any("group A has 2 active leader(s)" in e and "exactly one" in e for e in errors)
    write_groups(groups, tmp_path / "groups.parquet", params={})
    r = CliRunner().invoke(
        main, ["annotate", "check", "--groups", str(tmp_path / "groups.parquet")]
    )
    assert r.exit_code == 1 and "group A has 2 active leader(s)" in r.output
    # the CLI says who joined as a member
    roster.to_csv(tmp_path / "roster.csv", index=False)
    r = CliRunner().invoke(
        main,
        [
            "annotate",
            "allocate",
            str(tmp_path / "roster.csv"),
            "--groups",
            "2",
            "--out",
            str(tmp_path / "g2.parquet"),
            "--protocol",
            str(_two_group_protocol(tmp_path)),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "leader candidates joining as members" in r.output
    df = read_manifest(tmp_path / "g2.parquet", "groups").df
    assert df[df["group_id"] != "expert"].groupby("group_id")["leader"].sum().tolist() == [1, 1]


def _two_group_protocol(tmp_path: Path) -> Path:
    path = tmp_path / "two.yaml"
    data = {
        "groups": 2,
        "stages": [
            {"name": "primary", "judgements": 3},
            {"name": "cross", "source": "rotation", "from": ["primary"], "offset": 1},
            {"name": "expert", "kind": "expert", "from": ["primary", "cross"]},
        ],
    }
    path.write_text(yaml.safe_dump(data))
    return path


def test_roster_columns_are_checked_and_the_example_is_valid() -> None:
    example = read_table_file(EXAMPLE_ROSTER)
    assert check_roster(example, load_protocol()).errors == []
    bad = _roster(9, leaders=3)
    bad.loc[2, "leader"] = "maybe"
    bad["experience_years"] = bad["experience_years"].astype(object)
    bad.loc[4, "experience_years"] = "ten"
    errors = check_roster(bad, load_protocol()).errors
    assert "roster: annotator 'p02' has leader 'maybe'; allowed: yes/no, true/false, 1/0" in errors
    assert "roster: annotator 'p04' has a non-numeric experience_years" in errors


def test_relative_taxonomy_path_is_relative_to_the_protocol(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = tmp_path / "lab"
    (lab / "taxonomies").mkdir(parents=True)
    (lab / "taxonomies" / "four.yaml").write_text(
        yaml.safe_dump({"name": "four", "classes": ["calm", "joy", "anger", "fear"]})
    )
    (lab / "proto.yaml").write_text(
        yaml.safe_dump({"taxonomy": "taxonomies/four.yaml", "stages": [{"name": "primary"}]})
    )
    monkeypatch.chdir(tmp_path)  # not the protocol's folder
    proto = load_protocol(Path("lab/proto.yaml"))
    assert proto.taxonomy.name == "four" and proto.taxonomy.classes == (
        "calm",
        "joy",
        "anger",
        "fear",
    )
    # a bundled name stays a bundled taxonomy
    (lab / "named.yaml").write_text(
        yaml.safe_dump({"taxonomy": "emotions6", "stages": [{"name": "p"}]})
    )
    assert load_protocol(lab / "named.yaml").taxonomy.name == "emotions6"


def test_finalize_counts_one_vote_per_person_and_item() -> None:
    # Group A judged v1 in primary (2 x fear, 1 x sadness), then the same three
    # people judged it again in a later stage: six rows, three independent votes.
    people = ["a", "b", "c"]
    frame = pd.DataFrame(
        {
            "video_id": "v1",
            "annotator_id": people * 2,
            "stage": ["primary"] * 3 + ["cross_check_b"] * 3,
            "label": ["fear", "fear", "sadness", "fear", "fear", "sadness"],
            "created_at": pd.Timestamp("2024-01-01", tz="UTC"),
        }
    )
    labels = finalize_labels(load_protocol(), frame).labels.set_index("video_id")
    assert labels.loc["v1", "n_votes"] == 3
    assert labels.loc["v1", "support"] == pytest.approx(2 / 3)
