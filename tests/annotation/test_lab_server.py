"""The lab server: gunicorn workers, PostgreSQL, TLS, migrate-db, faults, and a round under load.

Every server here is real (Label Studio under gunicorn from the venv `emotions-data setup`
installs, PostgreSQL from Debian's binaries); faults are real kill -9s.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

from emotions_data.annotation.database import parse_db, recorded_database
from emotions_data.annotation.migrate_db import migrate_to_postgres
from emotions_data.annotation.pull import pull_stage
from emotions_data.annotation.server import (
    LS_HOME,
    Server,
    server_dir,
    server_health,
    server_status,
    start_server,
    stop_server,
)
from emotions_data.schema.io import read_manifest
from emotions_data.testing.lab_load import prepare_round, run_round
from tests.annotation.browser import label_one_in_browser
from tests.annotation.people_helpers import PeopleRoot, Session, make_people_root

pytestmark = [pytest.mark.labelstudio, pytest.mark.slow]

LABEL = {
    "result": [
        {
            "from_name": "emotion",
            "to_name": "video",
            "type": "choices",
            "value": {"choices": ["fear"]},
        }
    ],
    "lead_time": 1.0,
}


def _need_label_studio() -> None:
    if not (LS_HOME / "venv" / "bin" / "gunicorn").exists():
        if os.environ.get("CI"):
            pytest.fail(f"gunicorn missing in {LS_HOME} (scripts/setup.sh installs it)")
        pytest.skip("Label Studio venv with gunicorn missing (run scripts/setup.sh)")


@pytest.fixture(scope="module")
def pg_people(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PeopleRoot]:
    """A root on its own PostgreSQL cluster, two groups of real accounts, the stage pushed."""
    _need_label_studio()
    root = tmp_path_factory.mktemp("pg-root")
    server = start_server(root, db=parse_db("postgres"), workers=3)
    try:
        people = make_people_root(root, server)
        from emotions_data.annotation.accounts import sync_accounts

        sync_accounts(root, server, pd.read_parquet(people.groups_path), stage_order=["primary"])
        yield people
    finally:
        stop_server(root)


def _login(people: PeopleRoot, annotator: str, server: Server | None = None) -> Session:
    row = people.credentials()[annotator]
    srv = server or people.server
    s = Session(srv.url)
    assert s.login(row["email"], row["password"]), f"{annotator} could not log in"
    return s


def _task_of(people: PeopleRoot, group: str) -> int:
    state = people.state()
    pid = state.stage_projects("primary")[group]
    s = _login(people, "a1" if group == "A" else "b1")
    try:
        return int(s.get("/api/tasks/", project=pid).json()["tasks"][0]["id"])
    finally:
        s.close()


def _pull(people: PeopleRoot, via: str) -> pd.DataFrame:
    out = people.root / f"pulled-{via}.parquet"
    pull_stage(
        people.root,
        people.server,
        people.protocol,
        "primary",
        out,
        groups=pd.read_parquet(people.groups_path),
        via=via,
        force=True,
    )
    frame = read_manifest(out).df
    return frame.sort_values(["video_id", "annotator_id"]).reset_index(drop=True)


@pytest.mark.browser
def test_an_annotator_labels_in_a_real_browser_on_postgres(
    pg_people: PeopleRoot, tmp_path: Path
) -> None:
    # the same person, form and label stream as on SQLite, through gunicorn's workers
    label_one_in_browser(pg_people, tmp_path)


def test_postgres_root_keeps_secrets_private_and_pull_reads_it_as_the_api_does(
    pg_people: PeopleRoot,
) -> None:
    sdir = server_dir(pg_people.root)
    record = json.loads((sdir / "database.json").read_text())
    password = (sdir / "postgres" / "password").read_text().strip()
    assert record["kind"] == "postgres" and record["managed"] is True
    assert password not in (sdir / "database.json").read_text()
    assert stat.S_IMODE((sdir / "postgres" / "password").stat().st_mode) == 0o600
    assert password not in (sdir / "server.log").read_text()
    health = server_health(pg_people.root)
    assert health["running"] and health["wsgi"] == "gunicorn" and health["workers"] == 3
    assert health["database_pid"]
    # no SQLite file: the server really runs on PostgreSQL
    assert not (sdir / "data" / "label_studio.sqlite3").exists()
    s = _login(pg_people, "a1")
    try:
        made = s.post(f"/api/tasks/{_task_of(pg_people, 'A')}/annotations/", LABEL)
        assert made.status_code == 201, made.text
    finally:
        s.close()
    by_db, by_api = _pull(pg_people, "database"), _pull(pg_people, "api")
    assert len(by_db) >= 1 and "fear" in set(by_db["label"])
    # the times too: the database read formats PostgreSQL's timestamptz in UTC as the export does
    cols = ["video_id", "annotator_id", "label", "ls_annotation_id", "ls_task_id", "created_at"]
    pd.testing.assert_frame_equal(by_db[cols], by_api[cols])


def test_a_killed_worker_is_replaced_and_a_killed_database_comes_back(
    pg_people: PeopleRoot,
) -> None:
    root = pg_people.root
    before = server_health(root)
    master = int(before["pid"])
    worker = int(Path(f"/proc/{master}/task/{master}/children").read_text().split()[0])
    os.kill(worker, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        health = server_health(root)
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if health["running"] and len(children) == 3 and str(worker) not in children:
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"the killed worker was not replaced: {server_health(root)}")
    # PostgreSQL killed mid-round: requests fail, the next start brings it back
    s = _login(pg_people, "b1")
    task = _task_of(pg_people, "B")
    try:
        os.kill(int(before["database_pid"]), signal.SIGKILL)
        time.sleep(1.0)
        down = s.get("/api/current-user/whoami")
        assert down.status_code >= 500 or server_status(root) is None
        again = start_server(root)
        assert again.already_running and again.pid == master
        made = s.post(f"/api/tasks/{task}/annotations/", LABEL)  # the same session goes on
        assert made.status_code == 201, made.text
        made_id = int(made.json()["id"])
    finally:
        s.close()
    pulled = _pull(pg_people, "database")
    assert (pulled["ls_annotation_id"].astype(int) == made_id).sum() == 1
    assert not pulled.duplicated(["video_id", "annotator_id"]).any()


def test_a_killed_master_leaves_nothing_half_and_the_next_start_recovers(
    tmp_path: Path,
) -> None:
    _need_label_studio()
    server = start_server(tmp_path, workers=2)
    people = make_people_root(tmp_path, server)
    from emotions_data.annotation.accounts import sync_accounts

    sync_accounts(tmp_path, server, pd.read_parquet(people.groups_path), stage_order=["primary"])
    s = _login(people, "a1")
    made = s.post(f"/api/tasks/{_task_of(people, 'A')}/annotations/", LABEL)
    s.close()
    assert made.status_code == 201
    os.kill(server.pid or 0, signal.SIGKILL)
    time.sleep(0.5)
    assert server_status(tmp_path) is None
    back = start_server(tmp_path, workers=2)  # waits for the orphaned workers to let go
    try:
        assert not back.already_running and back.pid != server.pid
        people.server = back
        # the session died with the server's workers: people log in again, with a clear page
        assert _login(people, "a1", back) is not None
        pulled = _pull(people, "database")
        assert (pulled["ls_annotation_id"].astype(int) == int(made.json()["id"])).sum() == 1
    finally:
        stop_server(tmp_path)


def test_migrate_db_moves_users_projects_and_judgements_with_nothing_lost(
    tmp_path: Path,
) -> None:
    _need_label_studio()
    server = start_server(tmp_path, workers=2)
    people = make_people_root(tmp_path, server)
    from emotions_data.annotation.accounts import sync_accounts

    sync_accounts(tmp_path, server, pd.read_parquet(people.groups_path), stage_order=["primary"])
    s = _login(people, "a2")
    task = _task_of(people, "A")
    assert s.post(f"/api/tasks/{task}/annotations/", LABEL).status_code == 201
    draft = s.post(f"/api/tasks/{task}/drafts", {"result": LABEL["result"], "lead_time": 1})
    s.close()
    before = _pull(people, "database")
    stop_server(tmp_path)
    result = migrate_to_postgres(tmp_path, parse_db("postgres"))
    assert result.rows > 0 and result.kept.exists()
    assert recorded_database(server_dir(tmp_path)).is_postgres
    back = start_server(tmp_path, workers=2)
    try:
        people.server = back
        assert back.database == "postgres"
        after = _pull(people, "database")
        pd.testing.assert_frame_equal(
            before.drop(columns=["created_at"], errors="ignore"),
            after.drop(columns=["created_at"], errors="ignore"),
        )
        # the same person with the same password; a new judgement gets a new id
        s = _login(people, "a1", back)
        made = s.post(f"/api/tasks/{task}/annotations/", LABEL)
        assert made.status_code == 201, made.text
        assert int(made.json()["id"]) > int(before["ls_annotation_id"].astype(int).max())
        if draft.status_code == 201:
            mine = _login(people, "a2", back)
            assert mine.get(f"/api/drafts/{draft.json()['id']}/").status_code == 200
            mine.close()
        s.close()
        # a second migration is refused with one line, the data stays
        with pytest.raises(Exception, match="already uses PostgreSQL"):
            migrate_to_postgres(tmp_path, parse_db("postgres"))
    finally:
        stop_server(tmp_path)


def _self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "lab.crt", folder / "lab.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_https_with_a_self_signed_certificate_secure_cookies_and_login(tmp_path: Path) -> None:
    _need_label_studio()
    cert, key = _self_signed(tmp_path)
    server = start_server(tmp_path / "root", workers=2, certfile=cert, keyfile=key)
    try:
        assert server.url.startswith("https://")
        people = make_people_root(tmp_path / "root", server)
        from emotions_data.annotation.accounts import sync_accounts

        sync_accounts(
            tmp_path / "root", server, pd.read_parquet(people.groups_path), stage_order=["primary"]
        )
        row = people.credentials()["a1"]
        assert row["login_url"].startswith("https://")
        with httpx.Client(
            base_url=server.url, verify=ssl.create_default_context(cafile=str(cert)), timeout=30
        ) as http:
            http.get("/user/login/")
            resp = http.post(
                "/user/login/",
                data={
                    "email": row["email"],
                    "password": row["password"],
                    "csrfmiddlewaretoken": http.cookies.get("csrftoken", ""),
                },
                headers={"Referer": server.url + "/user/login/"},
            )
            assert resp.status_code in (301, 302)
            cookie = next(c for c in resp.headers.get_list("set-cookie") if "sessionid" in c)
            assert "Secure" in cookie and "HttpOnly" in cookie
            assert http.get("/api/current-user/whoami").json()["email"] == row["email"]
        with pytest.raises(httpx.TransportError):  # plain http on the TLS port answers nothing
            httpx.get(server.url.replace("https://", "http://") + "/user/login/", timeout=10)
    finally:
        stop_server(tmp_path / "root")


def test_a_small_lab_round_under_load_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    _need_label_studio()
    server = start_server(tmp_path, workers=3)
    try:
        lab = prepare_round(tmp_path, server, annotators=9, items=30)
        report = run_round(lab, think_s=0.3, duration_s=8, ramp_s=2, max_judgements=60)
    finally:
        stop_server(tmp_path)
    d = report.to_dict()
    assert d["login_failures"] == 0 and d["server_errors"] == 0 and d["timeouts"] == 0, d
    assert len(report.submitted) >= 10, d
    # the steady window (everyone arrived, one task done, to the deadline) holds submits
    assert d["steady_window_s"] > 0 and d["judgements_per_s"] > 0, d
    assert report.pulled_submitted == len(report.submitted) and report.duplicates == 0, d
    assert all(d["latency_s"][k]["n"] > 0 for k in ("login", "project", "next", "submit")), d


def test_doctor_and_status_report_the_server_and_its_database(pg_people: PeopleRoot) -> None:
    from click.testing import CliRunner

    from emotions_data.cli import main

    root = str(pg_people.root)
    status = CliRunner().invoke(
        main, ["annotate", "server", "status", "--root", root, "--json", "-"]
    )
    assert status.exit_code == 0, status.output
    health = json.loads(status.output)
    assert health["running"] and health["wsgi"] == "gunicorn" and health["database_pid"]
    doctor = CliRunner().invoke(main, ["doctor", "--root", root, "--json", "-"])
    checks = {c["name"]: c for c in json.loads(doctor.output[doctor.output.index("[") :])}
    assert checks["postgresql"]["ok"]
    assert checks["server"]["ok"] and "PostgreSQL" in checks["server"]["detail"]


def _small_disk_for_postgres(kib: int) -> Path:
    """A tmpfs the cluster user can reach (pytest's folders are 0700 to it), or a skip."""
    import pwd
    import uuid

    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no postgres user (scripts/setup.sh installs Debian's postgresql)")
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs for a full disk needs root")
    point = Path(user.pw_dir) / "emotions-data" / f"full-disk-{uuid.uuid4().hex[:8]}"
    point.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={kib}k,mode=0700", "tmpfs", str(point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        point.rmdir()
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    os.chown(point, user.pw_uid, user.pw_gid)
    return point


def _fill(disk: Path) -> Path:
    """Write zeros until the disk is full; the file is what frees it again."""
    filler = disk / "filler"
    chunk = b"\0" * (1 << 20)
    with open(filler, "wb") as out:
        try:
            while True:
                out.write(chunk)
                out.flush()
        except OSError:
            pass
    return filler


def test_a_full_disk_under_postgres_loses_nothing_and_the_next_start_recovers(
    tmp_path: Path,
) -> None:
    _need_label_studio()
    disk = _small_disk_for_postgres(256 * 1024)
    root = tmp_path / "root"
    try:
        # the root's cluster lives on the small disk (where `home/cluster` says)
        home = server_dir(root) / "postgres"
        home.mkdir(parents=True)
        (home / "cluster").write_text(str(disk))
        server = start_server(root, db=parse_db("postgres"), workers=2)
        people = make_people_root(root, server)
        from emotions_data.annotation.accounts import sync_accounts

        sync_accounts(root, server, pd.read_parquet(people.groups_path), stage_order=["primary"])
        s = _login(people, "a1")
        pid = people.state().stage_projects("primary")["A"]
        tasks = [int(t["id"]) for t in s.get("/api/tasks/", project=pid).json()["tasks"]]
        assert len(tasks) >= 2
        acknowledged: list[int] = []
        made = s.post(f"/api/tasks/{tasks[0]}/annotations/", LABEL)
        assert made.status_code == 201, made.text
        acknowledged.append(int(made.json()["id"]))
        filler = _fill(disk)
        try:
            under = s.post(f"/api/tasks/{tasks[1]}/annotations/", LABEL)
        except httpx.HTTPError:
            under = None  # the connection dropped: no acknowledgement
        if under is not None and under.status_code == 201:
            # PostgreSQL had room in its pages and WAL: an acknowledged judgement must last
            acknowledged.append(int(under.json()["id"]))
        elif under is not None:
            # a judgement the database could not keep is not acknowledged as kept
            assert under.status_code >= 500, under.text
            assert "Traceback" not in under.text
        # the database dies while its disk is full (its end-of-recovery checkpoint cannot be
        # written there); the disk is freed and the next start brings it back
        os.kill(int(server_health(root)["database_pid"]), signal.SIGKILL)
        time.sleep(1.0)
        filler.unlink()
        again = start_server(root)
        assert again.already_running and server_health(root)["running"]
        if len(acknowledged) < 2:
            # the annotator submits the refused judgement again, as a person would
            after = s.post(f"/api/tasks/{tasks[1]}/annotations/", LABEL)
            if after.status_code in (401, 403):  # the session did not survive: log in again
                s.close()
                s = _login(people, "a1", again)
                after = s.post(f"/api/tasks/{tasks[1]}/annotations/", LABEL)
            assert after.status_code == 201, after.text
            acknowledged.append(int(after.json()["id"]))
        else:  # the same session goes on after the restart
            assert s.get("/api/current-user/whoami").status_code == 200
        s.close()
        pulled = _pull(people, "database")
        ids = pulled["ls_annotation_id"].astype(int).tolist()
        assert all(ids.count(a) == 1 for a in acknowledged), (acknowledged, ids)
        assert not pulled.duplicated(["video_id", "annotator_id"]).any()
        assert len(pulled) == len(acknowledged), pulled  # nothing half-written came back
    finally:
        stop_server(root)
        subprocess.run(["umount", "-l", str(disk)], check=False)
        disk.rmdir()
