"""Protocol pieces that need no server: YAML, label config, allocation, exports, evaluate,
escalate rules, finalize, simulated confusion matrices."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from emotions_data.annotation.allocate import allocate_groups
from emotions_data.annotation.escalate import escalate, unclear_items
from emotions_data.annotation.evaluate import evaluate_stage
from emotions_data.annotation.exports import parse_export, video_id_from_data
from emotions_data.annotation.finalize import finalize_labels, write_labels
from emotions_data.annotation.label_config import label_config, label_config_path
from emotions_data.annotation.protocol import load_protocol, protocol_from_dict
from emotions_data.annotation.runner import _escalate, protocol_paths
from emotions_data.annotation.simulate import confusion_matrix, simulated_roster
from emotions_data.annotation.state import STATE_PATH, State
from emotions_data.annotation.store import write_groups
from emotions_data.cli import main
from emotions_data.schema.errors import ConfigError, ManifestError
from emotions_data.schema.io import read_manifest
from emotions_data.schema.taxonomy import Taxonomy, load_taxonomy

TAX = load_taxonomy()


def test_default_protocol_follows_the_figure() -> None:
    p = load_protocol()
    assert [s.name for s in p.stages] == [
        "primary",
        "cross_check_a",
        "evaluate_a",
        "cross_check_b",
        "evaluate_b",
        "expert",
    ]
    assert p.stage("cross_check_a").source == "rotation"
    assert p.stage("cross_check_b").source == "disputed"
    assert p.stage("expert").kind == "expert"
    assert p.groups == 3 and p.taxonomy.classes == TAX.classes


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"stages": []}, "stages: expected a non-empty list of stages, found"),
        (
            {"stages": [{"name": "a", "kind": "vote"}]},
            "stages.a.kind: expected one of annotate, evaluate, expert, found 'vote'",
        ),
        (
            {"stages": [{"name": "b", "source": "rotation", "from": ["a"]}]},
            "stages.b.from: expected names of earlier stages, found 'a'",
        ),
        (
            {"stages": [{"name": "a"}, {"name": "a"}]},
            "stages.a.name: expected a stage name not used",
        ),
        (
            {"stages": [{"name": "a", "judgements": 0}]},
            "stages.a.judgements: expected a number >= 1",
        ),
        (
            {"stages": [{"name": "a"}], "finalize": {"method": "mean"}},
            "finalize.method: expected one of majority, dawid-skene, found 'mean'",
        ),
        (
            {"stages": [{"name": "a", "judgments": 2}]},
            "stages.a.judgments: expected one of the keys name, .* found an unknown key",
        ),
    ],
)
def test_protocol_errors_are_one_line(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        protocol_from_dict(data, source="p.yaml")
    assert "\n" not in str(info.value)


def test_label_config_comes_from_the_taxonomy() -> None:
    assert Path(label_config_path(TAX)).read_text() == label_config(TAX)
    other = Taxonomy(name="valence", classes=("negative", "neutral", "positive & calm"))
    xml = label_config(other)
    assert xml.count("<Choice ") == 3 and 'value="positive &amp; calm"' in xml
    assert "fear" not in xml


def _roster(n: int = 12, leaders: int = 3, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "annotator_id": [f"a{i:02d}" for i in range(n)],
            "experience_years": rng.uniform(0, 10, n).round(1).astype(str),
            "msceit_score": rng.normal(100, 15, n).round(0),
            "education": rng.choice(["ba", "ma", "phd"], n),
            "culture": rng.choice(["x", "y"], n),
            "leader": ["true" if i < leaders else "false" for i in range(n)],
            "team_size_note": "kept",
        }
    )


def test_allocate_balances_and_is_reproducible() -> None:
    roster = _roster(30)
    a1 = allocate_groups(roster, 3, seed=7)
    a2 = allocate_groups(roster, 3, seed=7)
    pd.testing.assert_frame_equal(a1.groups, a2.groups)
    g = a1.groups
    assert sorted(g.groupby("group_id").size().tolist()) == [10, 10, 10]
    assert (g.groupby("group_id")["leader"].sum() >= 1).all()
    assert "team_size_note" in g.columns
    # the search lowers the imbalance compared with no search at all
    unsearched = allocate_groups(roster, 3, seed=7, iterations=0)
    assert a1.total_imbalance < unsearched.total_imbalance


def test_allocate_cli_writes_a_groups_manifest(tmp_path: Path) -> None:
    roster = _roster(9)
    roster.to_csv(tmp_path / "roster.csv", index=False)
    out = tmp_path / "groups.parquet"
    r = CliRunner().invoke(
        main,
        [
            "--seed",
            "3",
            "annotate",
            "allocate",
            str(tmp_path / "roster.csv"),
            "--groups",
            "3",
            "--out",
            str(out),
            "--json",
            "-",
        ],
    )
    assert r.exit_code == 0, r.output
    m = read_manifest(out, "groups")
    assert set(m.df["group_id"]) == {"A", "B", "C"} and m.df["active"].all()
    assert "imbalance" in r.output


def test_allocate_needs_a_leader_per_group() -> None:
    with pytest.raises(ConfigError, match="1 leader"):
        allocate_groups(_roster(9, leaders=1), 3)
    bad = _roster(4)
    bad.loc[1, "annotator_id"] = "a00"
    with pytest.raises(ManifestError, match="'a00' appears more than once"):
        allocate_groups(bad, 2)


def _task(
    tid: int, vid: str | None, *anns: dict[str, object], video: str = ""
) -> dict[str, object]:
    data: dict[str, object] = {"video": video or f"/data/local-files/?d=media/{vid}.mp4"}
    if vid is not None:
        data["video_id"] = vid
    return {"id": tid, "project": 9, "data": data, "annotations": list(anns)}


def _ann(aid: int, user: object, *choices: str, cancelled: bool = False) -> dict[str, object]:
    result = [
        {
            "from_name": "emotion",
            "to_name": "video",
            "type": "choices",
            "value": {"choices": list(choices)},
        }
    ]
    return {
        "id": aid,
        "completed_by": user,
        "result": result if choices else [],
        "was_cancelled": cancelled,
        "lead_time": 4.0,
        "created_at": "2024-05-01T10:00:00Z",
    }


def _parse(tasks: object, strict: bool = False) -> tuple[pd.DataFrame, object]:
    return parse_export(
        tasks,
        stage="primary",
        taxonomy=TAX,
        annotator_of=lambda k: f"u{k}",
        source="import",
        origin="x.json",
        strict=strict,
    )


def test_export_oddities_are_counted_and_strict_fails() -> None:
    tasks = [
        _task(
            1, "v1", _ann(1, 5, "fear"), _ann(2, 6, "fear", "neutral"), _ann(3, 7, cancelled=True)
        ),
        _task(2, "v2", _ann(4, 5), _ann(5, 6, "joy"), _ann(6, 7, "sadness")),
    ]
    frame, rep = _parse(tasks)
    assert sorted(frame["annotator_id"]) == ["u5", "u7"]
    assert (rep.cancelled, rep.empty, rep.several_choices, rep.unknown_label) == (1, 1, 1, 1)
    with pytest.raises(ManifestError, match="task 1: annotation 2 has 2 choices") as info:
        _parse(tasks, strict=True)
    assert "(and 3 more problem(s))" in str(info.value)


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        ({"tasks": []}, "must be a list of tasks"),
        ([{"id": 1}], "task #0: expected an object with a 'data' object"),
        ([{"id": 3, "data": {"text": "no media"}}], "task 3: no 'video_id' and no media path"),
        (
            [{"id": 4, "data": {"video_id": "v"}, "annotations": {}}],
            "task 4: 'annotations' must be a list",
        ),
    ],
)
def test_malformed_exports_name_the_task(tasks: object, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        _parse(tasks)


def test_video_id_from_media_path() -> None:
    assert (
        video_id_from_data({"video": "/data/local-files/?d=media/tiktok/tiktok-7001.mp4"})
        == "tiktok-7001"
    )
    assert video_id_from_data({"video": "https://cdn.example/x/abc123.mp4?sig=1"}) == "abc123"
    assert video_id_from_data({"video_id": "keep", "video": "/x/y.mp4"}) == "keep"


def test_import_cli_maps_users_and_rerun_is_identical(tmp_path: Path) -> None:
    export = tmp_path / "export.json"
    export.write_text(
        json.dumps(
            [
                _task(
                    1,
                    None,
                    _ann(1, 5, "fear"),
                    _ann(2, {"email": "b@lab.org"}, "tension"),
                    video="/data/local-files/?d=media/tiktok/v1.mp4",
                ),
                _task(
                    2,
                    None,
                    _ann(3, 5, "neutral"),
                    _ann(4, 6, "sadness", cancelled=True),
                    video="https://cdn.example/v2.mp4",
                ),
            ]
        )
    )
    users = tmp_path / "users.csv"
    users.write_text("annotator_id,ls_user_id,email\nalice,5,\nbob,,b@lab.org\ncarol,6,\n")
    out = tmp_path / "annotations.parquet"
    args = [
        "annotate",
        "import",
        str(export),
        "--stage",
        "primary",
        "--users",
        str(users),
        "--out",
        str(out),
    ]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    df = read_manifest(out, "annotations").df
    assert sorted(zip(df["video_id"], df["annotator_id"], df["label"], strict=True)) == [
        ("v1", "alice", "fear"),
        ("v1", "bob", "tension"),
        ("v2", "alice", "neutral"),
    ]
    assert (df["source"] == "import").all()
    assert "cancelled 1" in r.output
    before = out.read_bytes()
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0 and "unchanged" in r.output and out.read_bytes() == before
    r = CliRunner().invoke(main, [*args, "--strict"])
    assert r.exit_code == 1 and "was cancelled" in r.output and "Traceback" not in r.output
    assert out.read_bytes() == before


def test_import_unknown_user_in_map_is_an_error(tmp_path: Path) -> None:
    export = tmp_path / "e.json"
    export.write_text(json.dumps([_task(1, "v1", _ann(1, 99, "fear"))]))
    users = tmp_path / "u.csv"
    users.write_text("annotator_id,ls_user_id\nalice,5\n")
    r = CliRunner().invoke(
        main,
        [
            "annotate",
            "import",
            str(export),
            "--stage",
            "primary",
            "--users",
            str(users),
            "--out",
            str(tmp_path / "a.parquet"),
        ],
    )
    assert r.exit_code == 1 and "user 99 is not in" in r.output
    (tmp_path / "bad.json").write_text("[{")
    r = CliRunner().invoke(
        main,
        [
            "annotate",
            "import",
            str(tmp_path / "bad.json"),
            "--stage",
            "p",
            "--out",
            str(tmp_path / "a.parquet"),
        ],
    )
    assert r.exit_code == 1 and "not valid JSON" in r.output
    assert not (tmp_path / "a.parquet").exists()


def _crowd(seed: int = 0, n: int = 60) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """Six annotators in one group, annotator 'bad' answers at random, with known truth."""
    rng = np.random.default_rng(seed)
    truth = pd.Series(rng.choice(TAX.classes, n), index=[f"v{i:02d}" for i in range(n)])
    rows = []
    for vid, true in truth.items():
        for a in ["g1", "g2", "g3", "g4", "g5", "bad"]:
            good = a != "bad" and rng.random() < 0.9
            label = true if good else rng.choice(TAX.classes)
            rows.append(
                {
                    "video_id": vid,
                    "annotator_id": a,
                    "stage": "primary",
                    "label": label,
                    "group_id": "A",
                    "lead_time_s": 5.0,
                }
            )
    groups = pd.DataFrame(
        {
            "annotator_id": ["g1", "g2", "g3", "g4", "g5", "bad"],
            "group_id": "A",
            "leader": [True] + [False] * 5,
            "active": True,
            "reason": None,
            "updated_stage": None,
        }
    )
    return pd.DataFrame(rows), truth, groups


def test_evaluate_flags_the_careless_annotator() -> None:
    frame, _, groups = _crowd()
    proto = protocol_from_dict(
        {
            "stages": [
                {"name": "primary"},
                {
                    "name": "ev",
                    "kind": "evaluate",
                    "stages": ["primary"],
                    "min_agreement": 0.5,
                    "min_kappa": 0.4,
                },
            ]
        }
    )
    result = evaluate_stage(proto, "ev", frame, groups)
    assert result.flagged == ["bad"]
    row = result.groups.set_index("annotator_id").loc["bad"]
    assert not row["active"] and "against the leave-one-out consensus" in row["reason"]
    assert row["updated_stage"] == "ev"
    assert result.group_alpha["A"] is not None and 0.5 < result.group_alpha["A"] < 1


def test_unclear_items_are_ties_and_weak_majorities() -> None:
    frame = pd.DataFrame(
        {
            "video_id": ["t", "t", "w", "w", "w", "c", "c", "c"],
            "annotator_id": ["a", "b", "a", "b", "c", "a", "b", "c"],
            "label": ["fear", "neutral", "fear", "fear", "neutral", "fear", "fear", "fear"],
        }
    )
    assert unclear_items(frame, TAX.classes, 0.5) == ["t"]
    assert unclear_items(frame, TAX.classes, 0.7) == ["t", "w"]


def test_finalize_ties_go_to_the_expert_or_are_reported() -> None:
    proto = load_protocol()
    frame = pd.DataFrame(
        {
            "video_id": ["tie", "tie", "tie2", "tie2", "ok", "ok", "ok", "tie", "ok"],
            "annotator_id": ["a", "b", "a", "b", "a", "b", "c", "expert01", "expert01"],
            "stage": ["primary"] * 7 + ["expert", "expert"],
            "label": [
                "fear",
                "neutral",
                "fear",
                "neutral",
                "sadness",
                "sadness",
                "fear",
                "neutral",
                "fear",
            ],
            "created_at": pd.Timestamp("2024-01-01", tz="UTC"),
        }
    )
    result = finalize_labels(proto, frame)
    labels = result.labels.set_index("video_id")
    assert result.unresolved == ["tie2"] and "tie2" not in labels.index
    assert labels.loc["tie", "label"] == "neutral" and labels.loc["tie", "method"] == "expert"
    assert not labels.loc["tie", "expert_changed"]  # no crowd majority to change
    assert labels.loc["ok", "label"] == "fear" and labels.loc["ok", "expert_changed"]
    assert labels.loc["ok", "n_votes"] == 3 and labels.loc["ok", "support"] == pytest.approx(1 / 3)


def test_finalize_dawid_skene_recovers_truth() -> None:
    frame, truth, groups = _crowd(seed=2)
    result = finalize_labels(load_protocol(), frame, groups, method="dawid-skene")
    labels = result.labels.set_index("video_id")["label"]
    assert (labels == truth.reindex(labels.index)).mean() >= 0.95
    assert (result.labels["method"] == "dawid_skene").all()
    assert set(result.confusions) == {"g1", "g2", "g3", "g4", "g5", "bad"}
    assert result.labels["confidence"].between(0, 1).all()


def test_simulated_confusions_are_stochastic_and_profiles_differ() -> None:
    for profile, acc in [("good", 0.9), ("careless", 0.2), ("adversarial", 0.1), ("expert", 0.99)]:
        m = confusion_matrix(profile, acc, 6)
        assert np.allclose(m.sum(axis=1), 1) and (m >= 0).all()
    adv = confusion_matrix("adversarial", 0.1, 6)
    assert adv[0].argmax() == 1 and adv[5].argmax() == 0
    with pytest.raises(ConfigError, match="sim_profile 'lazy'"):
        confusion_matrix("lazy", 0.5, 6)
    roster = simulated_roster(3, 4, careless=1, adversarial=1, seed=1)
    assert roster["sim_profile"].value_counts().to_dict() == {
        "good": 10,
        "careless": 1,
        "adversarial": 1,
        "expert": 1,
    }
    assert roster.loc[roster["leader"], "sim_profile"].eq("good").all()


def test_evaluate_move_and_rebalance() -> None:
    frame, _, groups = _crowd(seed=4)
    # a second group B of two members who judged nothing: the flagged annotator moves there
    groups = pd.concat(
        [
            groups,
            pd.DataFrame(
                {
                    "annotator_id": ["h1", "h2"],
                    "group_id": "B",
                    "leader": [True, False],
                    "active": True,
                    "reason": None,
                    "updated_stage": None,
                }
            ),
        ],
        ignore_index=True,
    )
    stages = [{"name": "primary"}]
    move = protocol_from_dict(
        {
            "stages": [
                *stages,
                {
                    "name": "ev",
                    "kind": "evaluate",
                    "stages": ["primary"],
                    "min_kappa": 0.4,
                    "action": "move",
                },
            ]
        }
    )
    result = evaluate_stage(move, "ev", frame, groups)
    row = result.groups.set_index("annotator_id").loc["bad"]
    assert result.moved == ["bad"] and row["group_id"] == "B" and row["active"]
    assert "moved from A" in row["reason"]
    remove = protocol_from_dict(
        {
            "stages": [
                *stages,
                {"name": "ev", "kind": "evaluate", "stages": ["primary"], "min_kappa": 0.4},
            ]
        }
    )
    result = evaluate_stage(remove, "ev", frame, groups)
    g = result.groups
    sizes = g[g["active"]].groupby("group_id").size()
    # A had 5 active after the removal, B 2: one member moves to B to even them out
    assert sizes.to_dict() == {"A": 4, "B": 3}
    moved = g[g["reason"].fillna("").str.contains("rebalance")]
    assert len(moved) == 1 and not moved["leader"].any()


def test_crowd_confusions_from_a_roster_with_gaps() -> None:
    from emotions_data.annotation.simulate import crowd_confusions

    roster = pd.DataFrame(
        {
            "annotator_id": ["a", "b", "c"],
            "sim_profile": ["careless", None, ""],
            "sim_accuracy": [np.nan, "0.7", None],
        }
    )
    m = crowd_confusions(roster, TAX)
    assert m["a"][0, 0] == pytest.approx(0.25) and m["b"][0, 0] == pytest.approx(0.7)
    assert m["c"][0, 0] == pytest.approx(0.85)
    roster.loc[1, "sim_accuracy"] = "high"
    with pytest.raises(ConfigError, match="sim_accuracy 'high' of 'b'"):
        crowd_confusions(roster, TAX)


def test_write_labels_again_leaves_the_file_and_a_change_rewrites_it(tmp_path: Path) -> None:
    frame, _, groups = _crowd(seed=1, n=12)
    proto = load_protocol()
    parent = tmp_path / "groups.parquet"
    write_groups(groups, parent, params={})
    out = tmp_path / "labels.parquet"
    result = finalize_labels(proto, frame, groups)
    write_labels(result, out, proto, [parent])
    before, inode = out.read_bytes(), out.stat().st_ino
    write_labels(finalize_labels(proto, frame, groups), out, proto, [parent])
    # created_at has one-second resolution: the inode shows whether the file was replaced
    assert out.read_bytes() == before and out.stat().st_ino == inode
    other = next(c for c in TAX.classes if c != result.labels.loc[0, "label"])
    changed = frame.copy()
    changed.loc[changed["video_id"] == result.labels.loc[0, "video_id"], "label"] = other
    write_labels(finalize_labels(proto, changed, groups), out, proto, [parent])
    labels = read_manifest(out, "labels").df
    assert out.stat().st_ino != inode and labels.loc[0, "label"] == other


def test_an_empty_escalation_is_kept_once_the_protocol_went_past_it(tmp_path: Path) -> None:
    """cross_check_b found nothing disputed; evaluate_b then removed a3, whose vote made v1 clear."""
    proto = load_protocol()
    names = [f"{g}{i}" for g in "abc" for i in (1, 2, 3)]
    groups = pd.DataFrame(
        {
            "annotator_id": names,
            "group_id": [n[0].upper() for n in names],
            "leader": [n.endswith("1") for n in names],
            "active": [n != "a3" for n in names],
            "reason": None,
            "updated_stage": ["evaluate_b" if n == "a3" else None for n in names],
        }
    )
    annotations = pd.DataFrame(
        {
            "video_id": "v1",
            "annotator_id": ["a1", "a2", "a3"],
            "stage": "primary",
            "label": ["fear", "neutral", "fear"],
            "group_id": "A",
        }
    )
    state = State(path=tmp_path / STATE_PATH)
    state.assignments = {"primary": {"A": ["v1"]}, "cross_check_a": {"B": ["v1"]}}
    state.assignments["cross_check_b"] = {}
    state.save()
    done = {"flagged": ["a3"], "moved": [], "group_alpha": {}}
    paths = protocol_paths(tmp_path)
    write_groups(groups, paths["groups"], params={"evaluations": {"evaluate_b": done}})
    kept = _escalate(tmp_path, proto, proto.stage("cross_check_b"), annotations, groups)
    assert kept.kept and kept.assignment == {}
    # deciding again on the later groups would send v1 to a stage the first run skipped
    # (cross_check_a was never judged here: routed on what is there)
    again = escalate(tmp_path, proto, "cross_check_b", annotations, groups, allow_incomplete=True)
    assert again.assignment == {"C": ["v1"]}
