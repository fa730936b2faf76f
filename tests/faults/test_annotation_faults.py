"""Faults of the annotation side (issue 13, items 3, 4 and 7), produced for real.

A lost ``annotation/state.json`` between push and pull, a ``kill -9`` of a push in the middle of
its imports, two annotate commands on one root, a pull that would shrink a stage, and malformed
input that must end in a one-line ``Error:`` (exit 1), never a traceback. One real Label Studio
per session (the fixtures of tests/annotation/conftest.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from emotions_data.annotation.client import Client
from emotions_data.annotation.protocol import protocol_from_dict
from emotions_data.annotation.pull import StageShrinkError, pull_stage
from emotions_data.annotation.push import push_stage
from emotions_data.annotation.recovery import managed_projects, project_title
from emotions_data.annotation.server import ADMIN_FILE, TOKEN_FILE, Server, server_dir
from emotions_data.annotation.server import prepare_data as prepare_server_data
from emotions_data.annotation.simulate import crowd_confusions, simulate_stage, simulated_roster
from emotions_data.annotation.state import ROOT_ID_PATH, STATE_PATH, State
from emotions_data.annotation.store import write_groups
from emotions_data.cli import main
from emotions_data.schema.atomic import sha256_file
from emotions_data.schema.io import read_manifest, write_manifest
from emotions_data.schema.safety import LOCK_NAME, UnsafePathError, lock_holder
from emotions_data.schema.taxonomy import load_taxonomy

TAX = load_taxonomy()
PROTOCOL = {
    "name": "faults",
    "groups": 2,
    "stages": [
        {"name": "primary", "judgements": 2},
        {"name": "expert", "kind": "expert", "source": "uncertain", "from": ["primary"]},
    ],
}
REPO = Path(__file__).resolve().parents[2]


def _crowd(n: int, prefix: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.Series]:
    """Videos, roster, groups (A and B of 2 + an expert) and true labels, all generated."""
    ids = [f"{prefix}{i:03d}" for i in range(n)]
    videos = pd.DataFrame(
        {
            "video_id": ids,
            "platform": ["tiktok", "douyin"] * (n // 2) + ["tiktok"] * (n % 2),
            "source_url": [f"https://example.org/v/{v}" for v in ids],
            "status": "ok",
        }
    )
    roster = simulated_roster(2, 2, careless=0, adversarial=0, seed=4)
    crowd = (~roster["expert"]).cumsum()
    groups = roster.assign(
        group_id=np.where(roster["expert"], "expert", np.where(crowd <= 2, "A", "B")),
        leader=~roster["expert"] & crowd.isin([1, 3]),  # one leader per crowd group
        active=True,
        reason=None,
        updated_stage=None,
    )
    truth = pd.Series(np.random.default_rng(1).choice(TAX.classes, n), index=ids)
    return videos, roster, groups, truth


def _server_tasks(client: Client, server: Server, projects: dict[str, int]) -> dict[str, list[str]]:
    """group -> video ids of the tasks the server holds (duplicates kept, to be counted)."""
    out = {}
    for group, pid in projects.items():
        tasks = client.export_tasks(pid)
        out[group] = sorted(str(t["data"]["video_id"]) for t in tasks)
    return out


def _mine(client: Client, root: Path) -> list[int]:
    tag = State.load(root).tag
    return [p.id for p in managed_projects(client) if p.tag == tag]


@pytest.fixture(scope="module")
def pulled(ls_server: Server, ls_root: Path) -> dict[str, object]:
    """A root whose primary stage was pushed, labelled by the simulated crowd and pulled."""
    root = ls_root / "faults-lost-state"
    proto = protocol_from_dict(PROTOCOL, source="faults.yaml")
    videos, roster, groups, truth = _crowd(10, "ls")
    pushed = push_stage(root, ls_server, proto, "primary", videos, groups)
    assert sum(pushed.created.values()) == 10
    simulate_stage(root, ls_server, proto, "primary", groups, truth, crowd_confusions(roster, TAX))
    out = root / "annotations.parquet"
    first = pull_stage(root, ls_server, proto, "primary", out, groups=groups)
    assert first.rows == 20 and first.written
    return {"root": root, "proto": proto, "videos": videos, "groups": groups, "out": out}


@pytest.mark.labelstudio
def test_lost_state_is_rebuilt_from_label_studio(
    pulled: dict[str, object],
    ls_server: Server,
) -> None:
    root, out = Path(str(pulled["root"])), Path(str(pulled["out"]))
    proto, videos, groups = pulled["proto"], pulled["videos"], pulled["groups"]
    client = Client(ls_server)
    before = json.loads((root / STATE_PATH).read_text())
    projects_before, sha_before = _mine(client, root), sha256_file(out)
    tasks_before = _server_tasks(client, ls_server, before["projects"])

    (root / STATE_PATH).unlink()
    again = push_stage(root, ls_server, proto, "primary", videos, groups)  # type: ignore[arg-type]
    assert again.created == {"A": 0, "B": 0} and again.existing == {"A": 5, "B": 5}
    assert _mine(client, root) == projects_before  # no new project
    assert _server_tasks(client, ls_server, before["projects"]) == tasks_before  # no new task
    rebuilt = json.loads((root / STATE_PATH).read_text())
    for part in ("tag", "projects", "tasks", "assignments", "members", "users"):
        assert rebuilt[part] == before[part], part

    (root / STATE_PATH).unlink()
    result = pull_stage(root, ls_server, proto, "primary", out, groups=groups)  # type: ignore[arg-type]
    assert result.rows == 20 and not result.written and sha256_file(out) == sha_before


@pytest.mark.labelstudio
def test_pull_that_would_shrink_a_stage_is_refused(
    pulled: dict[str, object],
    ls_server: Server,
) -> None:
    root, out = Path(str(pulled["root"])), Path(str(pulled["out"]))
    proto, groups = pulled["proto"], pulled["groups"]
    client = Client(ls_server)
    state = State.load(root)
    task = state.tasks["primary/A"]["ls000"]
    for ann in client.ls.annotations.list(id=task):  # judgements removed on the server
        client.ls.annotations.delete(ann.id)
    sha = sha256_file(out)
    with pytest.raises(StageShrinkError) as err:
        pull_stage(root, ls_server, proto, "primary", out, groups=groups)  # type: ignore[arg-type]
    message = str(err.value)
    assert "stage 'primary' has 20 judgement(s) and this would leave 18 (2 lost)" in message
    assert "--force" in message and "\n" not in message
    assert sha256_file(out) == sha
    forced = pull_stage(root, ls_server, proto, "primary", out, groups=groups, force=True)  # type: ignore[arg-type]
    assert forced.rows == 18 and len(read_manifest(out, "annotations").df) == 18


@pytest.mark.labelstudio
def test_lost_state_and_root_id_on_the_roots_own_server(ls_server: Server, ls_root: Path) -> None:
    """Without state.json and root_id the root's own embedded server lends the tag: only the
    projects this root pushed there count (other roots' projects on it are told apart)."""
    proto = protocol_from_dict(
        {"name": "adopt", "groups": 2, "stages": [{"name": "adopt", "judgements": 1}]},
        source="adopt.yaml",
    )
    videos, _, groups, _ = _crowd(4, "ad")
    first = push_stage(ls_root, ls_server, proto, "adopt", videos, groups)
    before = json.loads((ls_root / STATE_PATH).read_text())
    (ls_root / STATE_PATH).unlink()
    (ls_root / ROOT_ID_PATH).unlink()
    again = push_stage(ls_root, ls_server, proto, "adopt", videos, groups)
    assert again.projects == first.projects and sum(again.created.values()) == 0
    after = json.loads((ls_root / STATE_PATH).read_text())
    assert after["tag"] == before["tag"] and after["projects"] == before["projects"]
    assert after["tasks"] == before["tasks"]
    assert (ls_root / ROOT_ID_PATH).read_text().strip() == before["tag"]


# A push whose imports go 3 tasks at a time; the 2nd import returns, then the process stops
# (blocked until a file appears) or kills itself with SIGKILL before it records the tasks.
_PUSH_WITH_A_FAULT = """
import os, signal, sys, time
from pathlib import Path
from emotions_data.annotation import client, push
push.IMPORT_BATCH = 3
original = client.Client.import_tasks
calls = []
def import_tasks(self, project_id, tasks):
    ids = original(self, project_id, tasks)
    calls.append(project_id)
    if len(calls) == 2:
        mark = Path(os.environ["FAULT_DIR"])
        (mark / "blocked").write_text(str(os.getpid()))
        while not (mark / "release").exists():
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGKILL)
    return ids
client.Client.import_tasks = import_tasks
from emotions_data.cli import main
main(sys.argv[1:], prog_name="emotions-data")
"""


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the push ended early ({proc.returncode}): {proc.stderr}")
        assert time.monotonic() < deadline, "the push never reached its 2nd import"
        time.sleep(0.05)


@pytest.mark.labelstudio
@pytest.mark.slow
def test_kill_9_mid_push_a_second_writer_and_a_lost_state(
    ls_server: Server,
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "faults.yaml").write_text(json.dumps(PROTOCOL))  # JSON is YAML
    videos, roster, groups, truth = _crowd(8, "k9")
    write_manifest(videos, root / "videos.parquet", "videos")
    write_groups(groups, root / "groups.parquet", params={})
    env = {**os.environ, "LABEL_STUDIO_API_KEY": ls_server.token, "FAULT_DIR": str(tmp_path)}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    common = ["--root", str(root), "--protocol", str(root / "faults.yaml")]
    common += ["--ls-url", ls_server.url]
    push_args = ["annotate", "push", "--stage", "primary", "--videos"]
    push_args += [str(root / "videos.parquet"), "--groups", str(root / "groups.parquet"), *common]
    out = root / "annotations.parquet"
    pull_args = ["annotate", "pull", "--stage", "primary", "--out", str(out), *common]
    pull_args += ["--groups", str(root / "groups.parquet")]
    runner = CliRunner(env={"LABEL_STUDIO_API_KEY": ls_server.token})

    proc = subprocess.Popen(
        [sys.executable, "-c", _PUSH_WITH_A_FAULT, *push_args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(tmp_path / "blocked", proc)
        # A second annotate command on the root while the push holds it: refused, naming it.
        second = runner.invoke(main, pull_args)
        assert second.exit_code == 1, second.output
        assert f"in use by pid {proc.pid} (" in second.output and "annotate push" in second.output
        assert second.output.startswith("Error: ") and second.output.count("\n") == 1
        assert (lock_holder(root) or {}).get("pid") == proc.pid
        (tmp_path / "release").write_text("")  # the push kills itself with SIGKILL now
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # The kill came after the 2nd import and before its state write; then the state is lost too.
    client = Client(Server(url=ls_server.url, token=ls_server.token))
    killed = State.load(root)
    tag, first_project = killed.tag, _mine(client, root)
    assert len(first_project) == 1 and len(killed.tasks["primary/A"]) == 3  # 4 on the server
    (root / STATE_PATH).unlink()
    again = runner.invoke(main, push_args)
    assert again.exit_code == 0, again.output
    state = State.load(root)
    projects = _mine(client, root)
    assert state.tag == tag and len(projects) == 2 and projects[0] == first_project[0]
    on_server = _server_tasks(client, ls_server, state.stage_projects("primary"))
    assert on_server == state.assignments["primary"]  # every video once, in its own group
    assert sorted(v for vids in on_server.values() for v in vids) == sorted(videos["video_id"])

    external = Server(url=ls_server.url, token=ls_server.token)
    proto = protocol_from_dict(PROTOCOL, source="faults.yaml")
    simulate_stage(root, external, proto, "primary", groups, truth, crowd_confusions(roster, TAX))
    first = runner.invoke(main, pull_args)
    assert first.exit_code == 0 and "16 judgement(s)" in first.output, first.output
    sha = sha256_file(out)
    # Lost again between push and pull: push adds nothing, pull gets the same judgements.
    (root / STATE_PATH).unlink()
    assert "0 task(s) created, 4 already there" in runner.invoke(main, push_args).output
    (root / STATE_PATH).unlink()
    same = runner.invoke(main, pull_args)
    assert same.exit_code == 0 and "16 judgement(s)" in same.output and "(unchanged)" in same.output
    assert sha256_file(out) == sha
    # Judgements gone from the server: refused without --force, one line, file untouched.
    task = State.load(root).tasks["primary/A"][state.assignments["primary"]["A"][0]]
    for ann in client.ls.annotations.list(id=task):
        client.ls.annotations.delete(ann.id)
    refused = runner.invoke(main, pull_args)
    assert refused.exit_code == 1 and refused.output.count("\n") == 1, refused.output
    assert "has 16 judgement(s) and this would leave 14 (2 lost)" in refused.output
    assert sha256_file(out) == sha
    forced = runner.invoke(main, [*pull_args, "--force"])
    assert forced.exit_code == 0 and "14 judgement(s)" in forced.output
    assert (root / LOCK_NAME).exists() and lock_holder(root) is None  # released, not held


# ---------------------------------------------------------------------- one-line errors


def _one_line_error(result: object) -> str:
    output = str(getattr(result, "output", ""))
    assert getattr(result, "exit_code", None) == 1, output
    assert output.startswith("Error: ") and output.count("\n") == 1, output
    assert "Traceback" not in output and getattr(result, "exception", None).__class__ is SystemExit
    return output


def test_simulate_truth_without_label_column(tmp_path: Path) -> None:
    truth = tmp_path / "truth.csv"
    truth.write_text("video_id,class\nv1,fear\n")
    r = CliRunner().invoke(
        main,
        [
            "annotate",
            "simulate",
            "--stage",
            "primary",
            "--roster",
            str(tmp_path / "roster.csv"),
            "--groups",
            str(tmp_path / "groups.parquet"),
            "--truth",
            str(truth),
            "--root",
            str(tmp_path),
        ],
    )
    assert "missing column(s) label" in _one_line_error(r)


def test_server_status_with_a_missing_token_file(tmp_path: Path) -> None:
    sdir = server_dir(tmp_path)
    sdir.mkdir(parents=True)
    # A server recorded as running (this very process stands in for its pid), its token gone.
    (sdir / "server.json").write_text(json.dumps({"pid": os.getpid(), "url": "http://127.0.0.1:9"}))
    r = CliRunner().invoke(main, ["annotate", "server", "status", "--root", str(tmp_path)])
    assert "cannot read the Label Studio token file" in _one_line_error(r)


def test_missing_token_never_replaces_the_database(tmp_path: Path) -> None:
    sdir = server_dir(tmp_path)
    (sdir / "data").mkdir(parents=True)
    (sdir / "data" / "label_studio.sqlite3").write_bytes(b"projects live here")
    (sdir / ADMIN_FILE).write_text(json.dumps({"token": "t0ken"}))
    prepare_server_data(tmp_path, template=tmp_path / "no-template")
    assert (sdir / "data" / "label_studio.sqlite3").read_bytes() == b"projects live here"
    assert (sdir / TOKEN_FILE).read_text() == "t0ken"


_GOOD_TASK = {
    "id": 1,
    "project": 3,
    "data": {"video_id": "v1"},
    "annotations": [
        {
            "id": 10,
            "completed_by": 5,
            "result": [{"from_name": "emotion", "type": "choices", "value": {"choices": ["fear"]}}],
            "was_cancelled": False,
            "lead_time": 1.5,
            "created_at": "2024-01-01T00:00:00Z",
        }
    ],
}
_MALFORMED = {
    "task id a dict": (("id",), {"a": 1}, 'id {"a": 1} is not an integer id'),
    "task id too large": (("id",), 10**30, "is not an integer id"),
    "video_id true": (("data", "video_id"), True, "video_id true is not a name"),
    "video_id outside": (("data", "video_id"), "../../x", "is not a safe name"),
    "e-mail a list": (("annotations", 0, "completed_by"), {"email": [1]}, "is not an e-mail"),
    "completed_by a list": (("annotations", 0, "completed_by"), [1], "is not an integer id"),
    "time a list": (("annotations", 0, "created_at"), [1], "is not an ISO 8601 time"),
    "time garbage": (("annotations", 0, "created_at"), "notadate", "is not an ISO 8601 time"),
    "lead_time text": (("annotations", 0, "lead_time"), "nan", "is not a number of seconds"),
    "was_cancelled text": (("annotations", 0, "was_cancelled"), "no", "is not true/false"),
    "annotations a dict": (("annotations",), {"a": 1}, "'annotations' must be a list"),
}


@pytest.mark.parametrize("case", sorted(_MALFORMED))
def test_malformed_export_on_import(case: str, tmp_path: Path) -> None:
    where, value, expected = _MALFORMED[case]
    task = json.loads(json.dumps(_GOOD_TASK))
    target = task
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    export = tmp_path / "export.json"
    export.write_text(json.dumps([task]))
    users = tmp_path / "users.csv"
    users.write_text("annotator_id,ls_user_id\na1,5\n")
    out = tmp_path / "annotations.parquet"
    args = ["annotate", "import", str(export), "--stage", "primary", "--out", str(out)]
    r = CliRunner().invoke(main, [*args, "--users", str(users)])
    assert expected in _one_line_error(r) and not out.exists()


def test_import_refuses_unsafe_stage_and_group_and_shrinking(tmp_path: Path) -> None:
    export = tmp_path / "export.json"
    export.write_text(json.dumps([_GOOD_TASK]))
    out = tmp_path / "annotations.parquet"
    base = ["annotate", "import", str(export), "--out", str(out)]
    r = CliRunner().invoke(main, [*base, "--stage", "../primary"])
    assert "stage name '../primary' is not a safe name" in _one_line_error(r)
    r = CliRunner().invoke(main, [*base, "--stage", "primary", "--group", "a/b"])
    assert "group name 'a/b' is not a safe name" in _one_line_error(r)
    assert CliRunner().invoke(main, [*base, "--stage", "primary"]).exit_code == 0
    export.write_text("[]")  # the same stage again, now with nothing in it
    r = CliRunner().invoke(main, [*base, "--stage", "primary"])
    assert "has 1 judgement(s) and this would leave 0 (1 lost)" in _one_line_error(r)
    assert CliRunner().invoke(main, [*base, "--stage", "primary", "--force"]).exit_code == 0
    assert len(read_manifest(out, "annotations").df) == 0
    with pytest.raises(UnsafePathError):
        project_title("abc123", "primary", "A / group B")


def test_agreement_refuses_duplicate_keys_and_a_one_annotator_gate(tmp_path: Path) -> None:
    rows = "video_id,annotator_id,label\nv1,a,fear\nv2,a,fear\nv1,b,fear\nv2,b,sadness\n"
    doubled = tmp_path / "doubled.csv"
    doubled.write_text(rows + rows.split("\n", 1)[1])  # every row twice
    r = CliRunner().invoke(main, ["agreement", str(doubled)])
    out = _one_line_error(r)
    assert "duplicate judgement (video_id 'v1', annotator_id 'a', stage 'primary')" in out
    assert "lines 2 and 6; 4 duplicate row(s)" in out
    alone = tmp_path / "alone.csv"
    alone.write_text(
        "video_id,annotator_id,label,stage\nv1,a,fear,primary\nv2,a,fear,primary\n"
        "v1,a,fear,cross\nv2,a,fear,cross\n"
    )
    r = CliRunner().invoke(main, ["agreement", str(alone), "--min-alpha", "0.5"])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "--min-alpha needs judgements by at least two annotators; 1 in" in r.stderr
    # Without a gate the single annotator is reported, not refused.
    assert CliRunner().invoke(main, ["agreement", str(alone)]).exit_code == 0
