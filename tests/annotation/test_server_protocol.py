"""The protocol against a real Label Studio (one server per session, see conftest.py)."""

from __future__ import annotations

import json
import os
import stat
import urllib.request
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from emotions_data.annotation.client import Client
from emotions_data.annotation.escalate import active_judgements, unclear_items
from emotions_data.annotation.protocol import load_protocol, protocol_from_dict
from emotions_data.annotation.pull import pull_stage
from emotions_data.annotation.push import push_stage
from emotions_data.annotation.runner import ProtocolRun, Simulation, protocol_paths, run_protocol
from emotions_data.annotation.server import TOKEN_FILE, Server, server_dir
from emotions_data.annotation.simulate import crowd_confusions, simulate_stage, simulated_roster
from emotions_data.annotation.state import State
from emotions_data.cli import main
from emotions_data.schema.atomic import sha256_file
from emotions_data.schema.errors import ServiceError
from emotions_data.schema.io import read_manifest
from emotions_data.schema.taxonomy import load_taxonomy

pytestmark = [pytest.mark.labelstudio, pytest.mark.slow]

TAX = load_taxonomy()
N_VIDEOS = 24


def _videos(root: Path, n: int, prefix: str = "vid", media: int = 0) -> pd.DataFrame:
    """Generated video rows; the first ``media`` have a (tiny, fake) media file under root."""
    rng = np.random.default_rng(len(prefix) + n)
    ids = [f"{prefix}{i:03d}" for i in range(n)]
    paths: list[str | None] = []
    for i, vid in enumerate(ids):
        if i < media:
            path = root / "media" / "tiktok" / f"{vid}.mp4"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(f"fake media {vid}".encode())
            paths.append(f"media/tiktok/{vid}.mp4")
        else:
            paths.append(None)
    return pd.DataFrame(
        {
            "video_id": ids,
            "platform": rng.choice(["tiktok", "douyin"], n),
            "source_url": [f"https://example.org/v/{v}" for v in ids],
            "status": "ok",
            "media_path": paths,
        }
    )


def _protocol_inputs(root: Path) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """The whole-protocol run's videos, true labels and roster (the same on every call)."""
    rng = np.random.default_rng(5)
    videos = _videos(root, N_VIDEOS, media=3)
    truth = pd.Series(rng.choice(TAX.classes, N_VIDEOS), index=videos["video_id"])
    roster = simulated_roster(3, 4, careless=1, adversarial=1, accuracy_range=(0.6, 0.8), seed=3)
    return videos, truth, roster


def _run_whole_protocol(ls_server: Server, root: Path) -> ProtocolRun:
    videos, truth, roster = _protocol_inputs(root)
    return run_protocol(
        root, videos, roster, None, ls_server, simulate=Simulation(truth, roster, seed=1), seed=1
    )


@pytest.fixture(scope="module")
def protocol_run(ls_server: Server, ls_root: Path) -> tuple[ProtocolRun, pd.Series, pd.DataFrame]:
    _, truth, roster = _protocol_inputs(ls_root)
    return _run_whole_protocol(ls_server, ls_root), truth, roster


def test_server_status_and_secret_token(ls_server: Server, ls_root: Path) -> None:
    token_file = server_dir(ls_root) / TOKEN_FILE
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    runner = CliRunner()
    r = runner.invoke(main, ["annotate", "server", "status", "--root", str(ls_root)])
    assert r.exit_code == 0 and ls_server.url in r.output
    r = runner.invoke(main, ["annotate", "server", "start", "--root", str(ls_root)])
    assert r.exit_code == 0 and f"pid {ls_server.pid}" in r.output  # already running: reused
    assert ls_server.token not in r.output and ls_server.token not in repr(ls_server)
    r = runner.invoke(main, ["annotate", "server", "status", "--root", str(ls_root / "nowhere")])
    assert r.exit_code == 1 and "not running" in r.output
    # a taken port is refused (Label Studio itself would silently move to port+1)
    port = ls_server.url.rsplit(":", 1)[1]
    r = runner.invoke(
        main, ["annotate", "server", "start", "--root", str(ls_root / "other"), "--port", port]
    )
    assert r.exit_code == 1 and f"port {port} on 127.0.0.1 is taken" in r.output


def test_whole_protocol_with_a_simulated_crowd(
    protocol_run: tuple[ProtocolRun, pd.Series, pd.DataFrame], ls_root: Path
) -> None:
    run, truth, roster = protocol_run
    assert run.waiting_for is None and run.labels_path is not None
    groups = read_manifest(run.groups_path, "groups").df.set_index("annotator_id")
    bad = roster.loc[roster["sim_profile"].isin(["careless", "adversarial"]), "annotator_id"]
    # careless and adversarial annotators are flagged and removed, with a reason
    assert not groups.loc[list(bad), "active"].any()
    assert groups.loc[list(bad), "reason"].str.contains("leave-one-out").all()
    # good annotators stay (a weak one, near the thresholds, may go: that is the point)
    good = roster.loc[
        (roster["sim_profile"] == "good") & (roster["sim_accuracy"] >= 0.7), "annotator_id"
    ]
    assert groups.loc[list(good), "active"].all(), groups[["active", "reason"]]
    ann = read_manifest(run.annotations_path, "annotations").df
    assert set(ann["stage"]) >= {"primary", "cross_check_a", "expert"}
    assert set(ann["annotator_id"]) <= set(roster["annotator_id"])
    assert ann["ls_annotation_id"].notna().all() and (ann["source"] == "label-studio").all()
    primary = ann[ann["stage"] == "primary"]
    assert (primary.groupby("video_id").size() == 3).all() and primary[
        "video_id"
    ].nunique() == N_VIDEOS
    # rotation: nobody's share is cross-checked by the group that labelled it first
    state = State.load(ls_root)
    for group, vids in state.assignments["cross_check_a"].items():
        assert not set(vids) & set(state.assignments["primary"][group])
    # disputed items reached the expert: exactly the items without a clear majority
    proto = load_protocol()
    crowd = active_judgements(
        ann[ann["stage"].isin(proto.stage("expert").from_stages)], groups.reset_index()
    )
    expected = unclear_items(crowd, TAX.classes, proto.stage("expert").clear_majority)
    expert_items = state.assignments["expert"]["expert"]
    assert expert_items and expert_items == expected
    assert set(ann.loc[ann["stage"] == "expert", "video_id"]) == set(expert_items)
    labels = read_manifest(run.labels_path, "labels").df.set_index("video_id")
    assert set(labels.loc[labels["method"] == "expert"].index) == set(expert_items)
    assert run.unresolved == [] and len(labels) == N_VIDEOS
    accuracy = (labels["label"] == truth.reindex(labels.index)).mean()
    assert accuracy >= 0.9, accuracy
    clear = labels[labels["method"] == "majority"]
    assert (clear["label"] == truth.reindex(clear.index)).mean() >= 0.9


def test_a_second_run_of_a_finished_protocol_changes_nothing(
    protocol_run: tuple[ProtocolRun, pd.Series, pd.DataFrame], ls_server: Server, ls_root: Path
) -> None:
    run, _, _ = protocol_run
    assert run.labels_path is not None
    manifests = (run.groups_path, run.annotations_path, run.labels_path)
    before = {p: p.read_bytes() for p in manifests}
    state = State.load(ls_root)
    client = Client(ls_server)
    tasks = {key: len(client.export_tasks(pid)) for key, pid in state.projects.items()}
    judgements = {
        key: sum(len(t["annotations"]) for t in client.export_tasks(pid))
        for key, pid in state.projects.items()
    }
    again = _run_whole_protocol(ls_server, ls_root)
    assert again.waiting_for is None and again.labels_path == run.labels_path
    for path in manifests:
        assert path.read_bytes() == before[path], f"{path.name} changed on the second run"
    after = State.load(ls_root)
    assert after.projects == state.projects and after.tasks == state.tasks
    assert after.assignments == state.assignments and after.members == state.members
    assert {key: len(client.export_tasks(pid)) for key, pid in after.projects.items()} == tasks
    assert {
        key: sum(len(t["annotations"]) for t in client.export_tasks(pid))
        for key, pid in after.projects.items()
    } == judgements
    steps = {s["step"]: s for s in again.steps}
    assert "allocate" not in steps
    for name in ("primary", "cross_check_a", "expert"):
        assert not any(steps[f"push {name}"]["tasks_created"].values())
        assert steps[f"simulate {name}"]["annotations_created"] == 0
    # evaluations are read back, not redone on groups they already changed
    first = {s["step"]: s for s in run.steps}
    for name in ("evaluate_a", "evaluate_b"):
        assert steps[name]["flagged"] == first[name]["flagged"]
        assert steps[name]["already_evaluated"] and not first[name]["already_evaluated"]
    assert first["evaluate_a"]["flagged"], "nobody flagged on the first run: change the seed"


def test_pull_twice_gives_the_same_file_and_push_twice_no_tasks(
    protocol_run: tuple[ProtocolRun, pd.Series, pd.DataFrame], ls_server: Server, ls_root: Path
) -> None:
    run, _, _ = protocol_run
    digest = sha256_file(run.annotations_path)
    r = CliRunner().invoke(
        main,
        [
            "annotate",
            "pull",
            "--stage",
            "primary",
            "--root",
            str(ls_root),
            "--out",
            str(run.annotations_path),
            "--groups",
            str(run.groups_path),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "unchanged" in r.output and sha256_file(run.annotations_path) == digest
    # the fast database read and the export snapshot give the same rows
    via_api = ls_root / "via-api.parquet"
    groups_df = read_manifest(run.groups_path, "groups").df
    pull_stage(ls_root, ls_server, load_protocol(), "primary", via_api, groups=groups_df, via="api")
    pulled = read_manifest(run.annotations_path, "annotations").df
    pulled = pulled[pulled["stage"] == "primary"].reset_index(drop=True)
    pd.testing.assert_frame_equal(read_manifest(via_api, "annotations").df, pulled)
    groups = read_manifest(run.groups_path, "groups").df
    again = push_stage(
        ls_root, ls_server, load_protocol(), "primary", _videos(ls_root, N_VIDEOS, media=3), groups
    )
    assert sum(again.created.values()) == 0 and sum(again.existing.values()) == N_VIDEOS


def test_local_media_is_served_through_the_storage(
    protocol_run: tuple[ProtocolRun, pd.Series, pd.DataFrame], ls_server: Server, ls_root: Path
) -> None:
    state = State.load(ls_root)
    project = next(iter(state.stage_projects("primary").values()))
    tasks = Client(ls_server).export_tasks(project)
    urls = [
        t["data"]["video"] for t in tasks if t["data"]["video"].startswith("/data/local-files/")
    ]
    assert urls, "no task points at a local media file"
    req = urllib.request.Request(
        ls_server.url + urls[0], headers={"Authorization": f"Token {ls_server.token}"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        body = resp.read()
    assert body.startswith(b"fake media vid")


SMALL = {
    "name": "small",
    "groups": 1,
    "stages": [
        {"name": "primary", "judgements": 2},
        {"name": "expert", "kind": "expert", "source": "uncertain", "from": ["primary"]},
    ],
}


def test_crash_between_push_and_pull_and_outsiders(ls_server: Server, ls_root: Path) -> None:
    root = ls_root / "crash"
    proto = protocol_from_dict(SMALL, source="small.yaml")
    videos = _videos(root, 6, prefix="cr")
    roster = simulated_roster(1, 3, careless=0, adversarial=0, seed=0)
    groups = roster.assign(
        group_id=np.where(roster["expert"], "expert", "A"),
        active=True,
        reason=None,
        updated_stage=None,
    )
    first = push_stage(root, ls_server, proto, "primary", videos, groups)
    assert first.created == {"A": 6}
    # The process died after importing, before its state write: projects and tasks unknown.
    state = State.load(root)
    state.tasks.clear()
    state.projects.clear()
    state.save()
    again = push_stage(root, ls_server, proto, "primary", videos, groups)
    assert again.projects == first.projects and again.created == {"A": 0}
    assert len(Client(ls_server).export_tasks(first.projects["A"])) == 6
    truth = pd.Series("fear", index=videos["video_id"])
    sim = simulate_stage(
        root, ls_server, proto, "primary", groups, truth, crowd_confusions(roster, TAX)
    )
    assert sim.created == 12
    # Someone outside group A (the expert) labels a primary task: reported and kept apart.
    client = Client(ls_server)
    state = State.load(root)
    expert_id = client.ensure_users(["expert01"], state.users)["expert01"]
    client.annotate(
        state.tasks["primary/A"]["cr000"], "tension", expert_id, 3.0, "emotion", "video"
    )
    out = root / "annotations.parquet"
    result = pull_stage(root, ls_server, proto, "primary", out, groups=groups)
    assert result.rows == 12 and result.outside == 1 and result.outside_path is not None
    apart = read_manifest(result.outside_path, "annotations").df
    assert apart[["video_id", "annotator_id"]].values.tolist() == [["cr000", "expert01"]]
    main_rows = read_manifest(out, "annotations").df
    assert "expert01" not in set(main_rows["annotator_id"])
    r = CliRunner().invoke(
        main,
        [
            "annotate",
            "pull",
            "--stage",
            "primary",
            "--root",
            str(root),
            "--out",
            str(out),
            "--protocol",
            str(_write_small(root)),
        ],
    )
    assert (
        r.exit_code == 1 and "no Label Studio running" in r.output
    )  # no server bound to this root


def _write_small(root: Path) -> Path:
    import yaml

    path = root / "small.yaml"
    path.write_text(yaml.safe_dump(SMALL))
    return path


def test_unreachable_server_is_one_line_and_loses_nothing(
    protocol_run: tuple[ProtocolRun, pd.Series, pd.DataFrame], ls_server: Server, ls_root: Path
) -> None:
    run, _, _ = protocol_run
    digest = sha256_file(run.annotations_path)
    dead = replace(ls_server, url="http://127.0.0.1:9")
    with pytest.raises(ServiceError, match="unreachable") as info:
        pull_stage(ls_root, dead, load_protocol(), "primary", run.annotations_path)
    assert "\n" not in str(info.value) and ls_server.token not in str(info.value)
    assert sha256_file(run.annotations_path) == digest
    env = {"LABEL_STUDIO_API_KEY": "s3cret-token"}
    r = CliRunner(env=env).invoke(
        main,
        [
            "annotate",
            "pull",
            "--stage",
            "primary",
            "--ls-url",
            "http://127.0.0.1:9",
            "--root",
            str(ls_root),
            "--out",
            str(run.annotations_path),
        ],
    )
    assert r.exit_code == 1 and "unreachable" in r.output
    assert "Traceback" not in r.output and "s3cret-token" not in r.output
    assert sha256_file(run.annotations_path) == digest
    paths = protocol_paths(ls_root)
    assert json.loads((ls_root / "annotation" / "state.json").read_text())["projects"]
    assert paths["labels"].exists()


CLI_PROTOCOL = {
    "name": "cli",
    "groups": 1,
    "stages": [
        {"name": "primary", "judgements": 2},
        # thresholds nobody fails: the point here is the commands, not the flags
        {
            "name": "ev",
            "kind": "evaluate",
            "stages": ["primary"],
            "min_agreement": 0.0,
            "min_kappa": -1.0,
            "min_judgements": 2,
        },
        {"name": "expert", "kind": "expert", "source": "uncertain", "from": ["primary"]},
    ],
    "finalize": {"stages": ["primary"]},
}


def test_cli_chain_on_an_existing_server(ls_server: Server, tmp_path: Path) -> None:
    """Every protocol command through the CLI, against a server given by --ls-url + token."""
    import yaml

    from emotions_data.schema.io import write_manifest

    proto = tmp_path / "cli.yaml"
    proto.write_text(yaml.safe_dump(CLI_PROTOCOL))
    videos = _videos(tmp_path, 8, prefix="cli").drop(columns=["media_path"])
    write_manifest(videos, tmp_path / "videos.parquet", "videos")
    rng = np.random.default_rng(0)
    pd.DataFrame({"video_id": videos["video_id"], "label": rng.choice(TAX.classes, 8)}).to_csv(
        tmp_path / "truth.csv", index=False
    )
    simulated_roster(1, 3, careless=0, adversarial=0, accuracy_range=(0.5, 0.6), seed=2).to_csv(
        tmp_path / "roster.csv", index=False
    )
    runner = CliRunner(env={"LABEL_STUDIO_API_KEY": ls_server.token})
    common = ["--root", str(tmp_path), "--protocol", str(proto)]
    server = ["--ls-url", ls_server.url]
    g, a = str(tmp_path / "groups.parquet"), str(tmp_path / "annotations.parquet")

    def ok(*args: str) -> str:
        r = runner.invoke(main, list(args))
        assert r.exit_code == 0, (args, r.output)
        assert ls_server.token not in r.output
        return r.output

    ok(
        "annotate",
        "allocate",
        str(tmp_path / "roster.csv"),
        "--groups",
        "1",
        "--out",
        g,
        "--protocol",
        str(proto),
    )
    out = ok(
        "annotate",
        "push",
        "--stage",
        "primary",
        "--videos",
        str(tmp_path / "videos.parquet"),
        "--groups",
        g,
        *common,
        *server,
    )
    assert "8 task(s) created" in out
    sim = (
        "annotate",
        "simulate",
        "--roster",
        str(tmp_path / "roster.csv"),
        "--groups",
        g,
        "--truth",
        str(tmp_path / "truth.csv"),
        *common,
        *server,
    )
    assert "16 annotation(s) created" in ok(*sim, "--stage", "primary")
    assert "16 judgement(s) of stage primary (written)" in ok(
        "annotate", "pull", "--stage", "primary", "--out", a, "--groups", g, *common, *server
    )
    evaluate = ("annotate", "evaluate", "--stage", "ev", "--annotations", a, "--groups", g)
    assert "group alpha: A:" in ok(*evaluate, "--protocol", str(proto))
    evaluated = Path(g).read_bytes()
    # evaluating again reads the recorded outcome back and leaves the groups untouched
    assert "already evaluated" in ok(*evaluate, "--protocol", str(proto))
    assert Path(g).read_bytes() == evaluated
    out = ok(
        "annotate",
        "escalate",
        "--from",
        "primary",
        "--to",
        "expert",
        "--annotations",
        a,
        "--groups",
        g,
        *common,
        "--json",
        "-",
    )
    routed = json.loads(out[out.index("{") :])["total"]
    assert routed > 0, "no disagreement among two 50-60 % annotators: change the seed"
    ok(
        "annotate",
        "push",
        "--stage",
        "expert",
        "--videos",
        str(tmp_path / "videos.parquet"),
        "--groups",
        g,
        *common,
        *server,
    )
    ok(*sim, "--stage", "expert")
    ok("annotate", "pull", "--stage", "expert", "--out", a, "--groups", g, *common, *server)
    labels = str(tmp_path / "labels.parquet")
    out = ok(
        "annotate",
        "finalize",
        "--annotations",
        a,
        "--groups",
        g,
        "--out",
        labels,
        "--method",
        "dawid-skene",
        "--protocol",
        str(proto),
    )
    df = read_manifest(labels, "labels").df
    assert (df["method"] == "expert").sum() == routed and len(df) == 8


def test_run_protocol_without_a_crowd_waits_for_people(ls_server: Server, tmp_path: Path) -> None:
    videos = _videos(tmp_path, 4, prefix="wait")
    roster = simulated_roster(1, 3, careless=0, adversarial=0, seed=0)
    proto = protocol_from_dict(SMALL, source="small.yaml")
    run = run_protocol(tmp_path, videos, roster, proto, ls_server)
    assert run.waiting_for == "primary" and run.labels_path is None
    again = run_protocol(tmp_path, videos, roster, proto, ls_server)
    assert again.waiting_for == "primary"
    push = next(s for s in again.steps if s["step"] == "push primary")
    assert push["tasks_created"] == {"A": 0} and push["tasks_existing"] == {"A": 4}


def test_run_command_with_a_simulated_crowd(ls_server: Server, tmp_path: Path) -> None:
    from emotions_data.schema.io import write_manifest

    videos = _videos(tmp_path, 4, prefix="run").drop(columns=["media_path"])
    write_manifest(videos, tmp_path / "videos.parquet", "videos")
    pd.DataFrame({"video_id": videos["video_id"], "label": "sadness"}).to_csv(
        tmp_path / "truth.csv", index=False
    )
    simulated_roster(1, 3, careless=0, adversarial=0, seed=0).to_csv(
        tmp_path / "roster.csv", index=False
    )
    r = CliRunner(env={"LABEL_STUDIO_API_KEY": ls_server.token}).invoke(
        main,
        [
            "annotate",
            "run",
            "--videos",
            str(tmp_path / "videos.parquet"),
            "--roster",
            str(tmp_path / "roster.csv"),
            "--truth",
            str(tmp_path / "truth.csv"),
            "--root",
            str(tmp_path),
            "--ls-url",
            ls_server.url,
            "--protocol",
            str(_write_small(tmp_path)),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "- push primary" in r.output and "- finalize" in r.output
    labels = read_manifest(protocol_paths(tmp_path)["labels"], "labels").df
    assert len(labels) == 4 and (labels["label"] == "sadness").mean() >= 0.75
