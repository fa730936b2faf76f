"""Annotation with real people, over HTTP: accounts, blinding, per-root secrets, the server lock.

One hardened embedded server for the module, started like a lab would (``server start --host
0.0.0.0``); annotators log in with the e-mail and password of the credentials file and a
session cookie, as a browser does (never the admin token).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from emotions_data.annotation.client import Client, user_email
from emotions_data.annotation.server import (
    ADMIN_FILE,
    LOCK_FILE,
    LS_HOME,
    STATE_FILE,
    Server,
    server_dir,
    server_status,
    stop_server,
)
from emotions_data.annotation.store import write_groups
from emotions_data.cli import main
from tests.annotation.browser import label_one_in_browser
from tests.annotation.people_helpers import (
    ROSTER_EMAIL,
    PeopleRoot,
    Session,
    groups_frame,
    make_people_root,
    query,
)

pytestmark = [pytest.mark.labelstudio, pytest.mark.slow, pytest.mark.ffmpeg]


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory, ls_server: Server) -> Iterator[PeopleRoot]:
    root = tmp_path_factory.mktemp("people")
    r = CliRunner().invoke(
        main, ["annotate", "server", "start", "--root", str(root), "--host", "0.0.0.0"]
    )
    assert r.exit_code == 0, r.output
    assert "Warning: listening on 0.0.0.0 over plain HTTP" in r.output
    server = server_status(root)
    assert server is not None
    try:
        yield make_people_root(root, server)
    finally:
        stop_server(root)


def _users(people: PeopleRoot, *extra: str) -> str:
    r = CliRunner().invoke(
        main,
        [
            "annotate",
            "users",
            "--root",
            str(people.root),
            "--groups",
            str(people.groups_path),
            "--protocol",
            str(people.protocol_path),
            *extra,
        ],
    )
    assert r.exit_code == 0, r.output
    return r.output


@pytest.fixture(scope="module")
def accounts(people: PeopleRoot) -> dict[str, dict[str, str]]:
    output = _users(people)
    creds = people.credentials()
    assert all(c["password"] not in output for c in creds.values())
    return creds


@pytest.fixture(scope="module")
def judged(people: PeopleRoot, accounts: dict[str, dict[str, str]]) -> dict[str, int]:
    """Judgements by a2 (group A) and b1 (group B), made by the admin in their names."""
    state = people.state()
    client = Client(people.server)
    task_a = next(iter(state.tasks["primary/A"].values()))
    task_b = next(iter(state.tasks["primary/B"].values()))
    return {
        "task_a": task_a,
        "task_b": task_b,
        "project_a": state.projects["primary/A"],
        "project_b": state.projects["primary/B"],
        "ann_a2": client.annotate(task_a, "fear", state.users["a2"], 3.0, "emotion", "video"),
        "ann_b1": client.annotate(task_b, "sadness", state.users["b1"], 3.0, "emotion", "video"),
    }


def _login(people: PeopleRoot, creds: dict[str, str]) -> Session:
    session = Session(people.server.url)
    assert session.login(creds["email"], creds["password"]), (
        f"{creds['annotator_id']} cannot log in"
    )
    return session


def test_users_writes_private_credentials_and_is_idempotent(
    people: PeopleRoot, accounts: dict[str, dict[str, str]]
) -> None:
    path = people.root / "labelstudio" / "credentials.csv"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().splitlines()[0] == "annotator_id,email,password,login_url"
    assert accounts["a1"]["email"] == ROSTER_EMAIL  # the roster's address is the login
    assert accounts["b1"]["email"] == user_email("b1")
    assert len({c["password"] for c in accounts.values()}) == 4
    assert all(c["login_url"].endswith("/user/login/") for c in accounts.values())
    assert ":127.0.0.1:" not in accounts["a1"]["login_url"]  # --host 0.0.0.0: the machine's name
    before = path.read_bytes()
    output = _users(people)
    assert "4 unchanged" in output and path.read_bytes() == before


def test_annotator_sees_only_own_group_and_own_judgements(
    people: PeopleRoot, accounts: dict[str, dict[str, str]], judged: dict[str, int]
) -> None:
    pa, pb = judged["project_a"], judged["project_b"]
    s = _login(people, accounts["a1"])
    try:
        listed = [p["id"] for p in s.get("/api/projects/").json()["results"]]
        assert listed == [pa]
        assert s.get(f"/api/projects/{pa}/").status_code == 200
        # group B's project, tasks and judgements: not by list, not by id
        assert s.get(f"/api/projects/{pb}/").status_code == 404
        assert s.get("/api/tasks/", project=pb).status_code == 404
        assert s.get(f"/api/tasks/{judged['task_b']}/").status_code == 404
        assert s.get(f"/api/annotations/{judged['ann_b1']}/").status_code == 404
        assert s.get("/api/dm/views/", project=pb).status_code == 404
        assert s.get(f"/projects/{pb}/data/").status_code == 404
        # a2's judgement of a video a1 also labels: invisible everywhere
        assert s.get(f"/api/annotations/{judged['ann_a2']}/").status_code == 404
        task = s.get(f"/api/tasks/{judged['task_a']}/").json()
        assert task["annotations"] == [] and "total_annotations" not in task
        assert s.get(f"/api/tasks/{judged['task_a']}/annotations/").json() == []
        listing = s.get("/api/tasks/", project=pa).json()
        assert len(listing["tasks"]) == 2
        dumped = json.dumps(listing)
        assert "fear" not in dumped and "annotators" not in dumped
        # nor by filtering or ordering the task list on others' results
        bad = query(
            [
                {
                    "filter": "filter:tasks:annotations_results",
                    "operator": "contains",
                    "type": "String",
                    "value": "fear",
                }
            ]
        )
        assert s.get("/api/tasks/", project=pa, query=bad).status_code == 403
        by_count = query([], ["-tasks:total_annotations"])
        assert s.get("/api/tasks/", project=pa, query=by_count).status_code == 403
        # no project creation, no users, no organization, no exports
        assert s.post("/api/projects/", {"title": "mine"}).status_code == 403
        assert [u["email"] for u in s.get("/api/users/").json()] == [ROSTER_EMAIL]
        assert (
            s.patch(f"/api/users/{people.state().users['a2']}/", {"first_name": "x"}).status_code
            == 403
        )
        assert s.get("/api/organizations/1/memberships").status_code == 403
        assert s.get(f"/api/projects/{pa}/export", exportType="JSON").status_code == 403
        # media are served from the storage folders only, never the root's own files
        secret = s.get("/data/local-files/", d="labelstudio/credentials.csv")
        assert secret.status_code != 200 and b"password" not in secret.content
        # labelling works, in one's own name only
        body = {
            "result": [
                {
                    "from_name": "emotion",
                    "to_name": "video",
                    "type": "choices",
                    "value": {"choices": ["neutral"]},
                }
            ],
            "lead_time": 2.0,
        }
        impostor = s.post(
            f"/api/tasks/{judged['task_a']}/annotations/",
            {**body, "completed_by": people.state().users["a2"]},
        )
        assert impostor.status_code == 403
        mine = s.post(f"/api/tasks/{judged['task_a']}/annotations/", body)
        assert mine.status_code == 201, mine.text
        own_id = mine.json()["id"]
        assert s.get(f"/api/annotations/{own_id}/").status_code == 200
        seen = s.get(f"/api/tasks/{judged['task_a']}/").json()["annotations"]
        assert [a["id"] for a in seen] == [own_id]
    finally:
        s.close()
    # b1 sees group B only, and not a1's new judgement
    s = _login(people, accounts["b1"])
    try:
        assert [p["id"] for p in s.get("/api/projects/").json()["results"]] == [pb]
        assert s.get(f"/api/annotations/{own_id}/").status_code == 404
        assert s.get(f"/api/annotations/{judged['ann_b1']}/").status_code == 200
    finally:
        s.close()


def test_removed_annotator_cannot_log_in_and_reset_rotates(
    people: PeopleRoot, accounts: dict[str, dict[str, str]], judged: dict[str, int]
) -> None:
    live = _login(people, accounts["b2"])  # logged in before the evaluation
    write_groups(groups_frame(active_b2=False), people.groups_path, params={"test": True})
    try:
        output = _users(people)
        assert "1 deactivated" in output
        assert "b2" not in people.credentials()
        assert live.get("/api/current-user/whoami").status_code in (401, 403)
        assert not Session(people.server.url).login(
            accounts["b2"]["email"], accounts["b2"]["password"]
        )
        assert (
            str(people.state().users["b2"])
            not in json.loads((server_dir(people.root) / "access.json").read_text())["users"]
        )
        # --reset: new passwords; the old one no longer opens the account
        _users(people, "--reset")
        new = people.credentials()
        assert new["a1"]["password"] != accounts["a1"]["password"]
        assert not Session(people.server.url).login(
            accounts["a1"]["email"], accounts["a1"]["password"]
        )
        _login(people, new["a1"]).close()
    finally:
        live.close()
        write_groups(groups_frame(), people.groups_path, params={"test": True})


def test_every_root_has_its_own_secrets(people: PeopleRoot, ls_server: Server) -> None:
    assert people.server.token != ls_server.token
    template = json.loads((LS_HOME / "template" / ADMIN_FILE).read_text())
    mine = json.loads((server_dir(people.root) / ADMIN_FILE).read_text())
    assert people.server.token != template["token"] and mine["password"] != template["password"]
    key = (server_dir(people.root) / "data" / ".env").read_text()
    assert key != (LS_HOME / "template" / "data" / ".env").read_text()
    # the template's token opens nothing here
    with pytest.raises(Exception, match="refused"):
        from emotions_data.annotation.server import whoami

        whoami(people.server.url, template["token"])


def test_server_lock_and_stop_checks_the_pid(people: PeopleRoot, tmp_path: Path) -> None:
    # the running server holds the root's lock: a second server cannot start beside it
    fd = os.open(server_dir(people.root) / LOCK_FILE, os.O_RDWR)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)
    r = CliRunner().invoke(main, ["annotate", "server", "start", "--root", str(people.root)])
    assert r.exit_code == 0 and "already running" in r.output
    assert f"pid {people.server.pid}" in r.output
    # a stale server.json naming an unrelated process: stop leaves that process alone
    other = tmp_path / "stale"
    server_dir(other).mkdir(parents=True)
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        (server_dir(other) / STATE_FILE).write_text(json.dumps({"pid": sleeper.pid}))
        assert stop_server(other) is False
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.browser
def test_an_annotator_labels_in_a_real_browser_and_pull_finds_it(
    people: PeopleRoot, accounts: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    label_one_in_browser(people, tmp_path)


def test_users_on_an_external_server_is_refused(
    people: PeopleRoot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # --ls-url: Label Studio's own API cannot set passwords, and nothing would be blinded
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", people.server.token)
    r = CliRunner().invoke(
        main,
        [
            "annotate",
            "users",
            "--root",
            str(people.root),
            "--groups",
            str(people.groups_path),
            "--ls-url",
            people.server.url,
        ],
    )
    assert r.exit_code == 1
    assert "not the embedded server" in r.output and "\n" not in r.output.strip()
    assert people.server.token not in r.output


def _db_token(root: Path) -> str:
    import sqlite3

    db = sqlite3.connect(server_dir(root) / "data" / "label_studio.sqlite3")
    try:
        return str(db.execute("SELECT key FROM authtoken_token").fetchone()[0])
    finally:
        db.close()


def test_secrets_of_a_root_made_before_per_root_secrets_are_replaced_in_place(
    tmp_path: Path,
) -> None:
    from emotions_data.annotation.server import TOKEN_FILE, prepare_data

    if not (LS_HOME / "template" / "data" / "label_studio.sqlite3").exists():
        pytest.skip("Label Studio template missing (run scripts/setup.sh)")
    root = tmp_path / "old"
    prepare_data(root)
    first = (server_dir(root) / TOKEN_FILE).read_text()
    assert _db_token(root) == first
    # an older root: the template's database and secrets, kept in place (a marker project)
    template = LS_HOME / "template"
    shutil.copyfile(
        template / "data" / "label_studio.sqlite3",
        server_dir(root) / "data" / "label_studio.sqlite3",
    )
    shutil.copyfile(template / ADMIN_FILE, server_dir(root) / ADMIN_FILE)
    (server_dir(root) / TOKEN_FILE).write_text(
        json.loads((template / ADMIN_FILE).read_text())["token"]
    )
    first = (server_dir(root) / TOKEN_FILE).read_text()
    marker = server_dir(root) / "data" / "keep.txt"
    marker.write_text("projects live here")
    prepare_data(root)
    second = (server_dir(root) / TOKEN_FILE).read_text()
    assert second != first and _db_token(root) == second and marker.exists()
    assert stat.S_IMODE((server_dir(root) / ADMIN_FILE).stat().st_mode) == 0o600
    # a third start changes nothing
    prepare_data(root)
    assert (server_dir(root) / TOKEN_FILE).read_text() == second
