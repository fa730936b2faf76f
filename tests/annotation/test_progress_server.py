"""Progress with people against the session's real Label Studio: a task left at 2 of 3
judgements (status, pull, escalate), a lab taxonomy next to its protocol, the wrong protocol on
pull, an expert stage with nothing routed to it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from emotions_data.annotation.client import Client
from emotions_data.annotation.label_config import FROM_NAME, TO_NAME
from emotions_data.annotation.protocol import load_protocol
from emotions_data.annotation.push import push_stage
from emotions_data.annotation.server import Server
from emotions_data.annotation.state import State
from emotions_data.annotation.store import write_groups
from emotions_data.cli import main
from emotions_data.schema.atomic import sha256_file
from emotions_data.schema.io import read_manifest

pytestmark = [pytest.mark.labelstudio, pytest.mark.slow]

LAB_PROTOCOL = {
    "name": "lab",
    "taxonomy": "taxonomies/four.yaml",  # relative to this file, not to the working directory
    "groups": 1,
    "stages": [
        {"name": "primary", "judgements": 3},
        {"name": "expert", "kind": "expert", "source": "uncertain", "from": ["primary"]},
    ],
}


def _lab(root: Path) -> tuple[Path, Path]:
    (root / "lab" / "taxonomies").mkdir(parents=True)
    (root / "lab" / "taxonomies" / "four.yaml").write_text(
        yaml.safe_dump({"name": "four", "classes": ["calm", "joy", "anger", "fear"]})
    )
    protocol = root / "lab" / "protocol.yaml"
    protocol.write_text(yaml.safe_dump(LAB_PROTOCOL))
    people = ["p1", "p2", "p3", "x1"]
    groups = pd.DataFrame(
        {
            "annotator_id": people,
            "group_id": ["A", "A", "A", "expert"],
            "leader": [True, False, False, False],
            "active": True,
            "reason": None,
            "updated_stage": None,
        }
    )
    write_groups(groups, root / "groups.parquet", params={})
    return protocol, root / "groups.parquet"


def test_status_pull_and_escalate_with_a_task_short_of_judgements(
    ls_server: Server, ls_root: Path
) -> None:
    root = ls_root / "progress"
    protocol, groups_path = _lab(root)
    proto = load_protocol(protocol)
    assert proto.taxonomy.name == "four"
    videos = pd.DataFrame(
        {"video_id": ["v0", "v1", "v2"], "source_url": "https://example.org/v", "status": "ok"}
    )
    groups = read_manifest(groups_path, "groups").df
    # the server as `--ls-url` gives it (ids are bound to the URL, not the data folder)
    remote = Server(url=ls_server.url, token=ls_server.token)
    push_stage(root, remote, proto, "primary", videos, groups)
    state = State.load(root)
    client = Client(remote)
    tasks, users = state.tasks["primary/A"], state.users
    # v0 and v2 get all three judgements; v1 only two (p3 has not done it yet)
    for vid, people in (("v0", "p1 p2 p3"), ("v1", "p1 p2"), ("v2", "p1 p2 p3")):
        for n, person in enumerate(people.split()):
            client.annotate(tasks[vid], "joy", users[person], 3.0 + n, FROM_NAME, TO_NAME)
    runner = CliRunner(env={"LABEL_STUDIO_API_KEY": ls_server.token})
    common = ["--root", str(root), "--ls-url", ls_server.url]

    def run(*args: str) -> tuple[int, str]:
        r = runner.invoke(main, list(args))
        assert "Traceback" not in r.output and ls_server.token not in r.output
        return r.exit_code, r.output

    code, out = run("annotate", "status", "--protocol", str(protocol), *common)
    assert code == 0, out
    assert "stage primary: 2/3 task(s) with all their judgements (required 3 per task)" in out
    assert "8 judgement(s), 1 still missing" in out
    rows = {r[0]: r for r in map(str.split, out.splitlines()) if r and r[0] in {"p1", "p2", "p3"}}
    assert out.splitlines()[2].split() == [
        "annotator_id", "group", "active", "done", "remaining", "median_lead_s",
    ]  # fmt: skip
    assert rows["p3"][1:5] == ["A", "yes", "2", "1"] and rows["p1"][1:5] == ["A", "yes", "3", "0"]
    assert rows["p1"][5] == "3.0" and rows["p3"][5] == "5.0"  # median lead time (s)
    assert (
        "1 task(s) below their required judgements (1 started, 0 not started): v1 (A: 2 of 3)"
        in out
    )
    assert "stuck" not in out
    # p3 removed by an evaluation: nobody left who could finish v1
    groups.loc[groups["annotator_id"] == "p3", "active"] = False
    removed = root / "groups-removed.parquet"
    write_groups(groups, removed, params={})
    code, out = run(
        "annotate", "status", "--protocol", str(protocol), "--groups", str(removed), *common
    )
    assert code == 0 and "1 stuck" in out and "v1 (A: 2 of 3)" in out
    p3 = next(line.split() for line in out.splitlines() if line.split()[:1] == ["p3"])
    assert p3[1:5] == ["A", "no", "2", "0"]

    annotations = root / "annotations.parquet"
    pull = ("annotate", "pull", "--stage", "primary", "--out", str(annotations), *common)
    code, out = run(*pull, "--protocol", str(protocol))
    assert code == 0, out
    assert "8 judgement(s) of stage primary (written)" in out
    assert "Warning: 1 task(s) below their required judgements" in out and "v1 (A: 2 of 3)" in out
    digest = sha256_file(annotations)
    # the default protocol's taxonomy does not have these labels: an error, file untouched
    code, out = run(*pull)
    assert code == 1, out
    assert "8 judgement(s) have labels outside taxonomy 'emotions6'" in out
    assert "'joy'" in out and "--protocol" in out
    assert sha256_file(annotations) == digest

    escalate = (
        "annotate",
        "escalate",
        "--to",
        "expert",
        "--annotations",
        str(annotations),
        "--groups",
        str(groups_path),
        "--protocol",
        str(protocol),
        "--root",
        str(root),
    )
    code, out = run(*escalate)
    assert code == 1 and "stage primary is incomplete" in out and "--allow-incomplete" in out
    assert "expert" not in State.load(root).assignments
    code, out = run(*escalate, "--allow-incomplete")
    assert code == 0 and "expert: 0 item(s)" in out, out  # every task a clear 'joy'

    # an expert stage with nothing routed to it: nothing to push, pulls as empty
    code, out = run(
        "annotate",
        "push",
        "--stage",
        "expert",
        "--videos",
        str(_videos_manifest(root, videos)),
        "--groups",
        str(groups_path),
        "--protocol",
        str(protocol),
        *common,
    )
    assert code == 0 and "expert: nothing to push" in out, out
    code, out = run(
        "annotate",
        "pull",
        "--stage",
        "expert",
        "--out",
        str(annotations),
        "--protocol",
        str(protocol),
        *common,
    )
    assert code == 0, out
    assert "0 judgement(s) of stage expert" in out and "nothing was routed" in out
    code, out = run("annotate", "status", "--protocol", str(protocol), *common)
    assert "stage expert: no item routed to it" in out
    pulled = read_manifest(annotations, "annotations").df
    assert len(pulled) == 8 and set(pulled["stage"]) == {"primary"}


def _videos_manifest(root: Path, videos: pd.DataFrame) -> Path:
    from emotions_data.schema.io import write_manifest

    path = root / "videos.parquet"
    write_manifest(videos.assign(platform="tiktok"), path, "videos")
    return path
