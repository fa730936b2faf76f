"""A lab round under load: N annotators log in and label through the label stream, as people do.

Each simulated person, on loopback only: arrives within ``ramp_s`` (a lab does not log in in
the same second), opens the login form and logs in with the credentials file's password, opens
the project's labelling page, then repeats ``next`` (``GET /api/projects/P/next``), a think
time, and submit (``POST /api/tasks/T/annotations/``) until the round's time or judgement count
is spent. Every request is timed; errors, 5xx and time-outs are counted. Afterwards the stage is
pulled and every submitted judgement must be there exactly once. Bounded in count and time; it
stops by itself. Used by ``benchmarks/lab_load.py`` and, at a small size, by the test suite.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

KINDS = ("login", "project", "next", "submit")


@dataclass
class Round:
    """A root with its server, a pushed stage and N accounts (see :func:`prepare_round`)."""

    root: Path
    server: Any
    protocol_path: Path
    groups: pd.DataFrame
    credentials: dict[str, dict[str, str]]
    projects: dict[str, int]


@dataclass
class LoadReport:
    annotators: int
    think_s: float
    wall_s: float
    latencies: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    errors: int = 0
    server_errors: int = 0
    timeouts: int = 0
    login_failures: int = 0
    submitted: list[int] = field(default_factory=list)
    #: when each submit was answered (``time.monotonic``), for the steady-window throughput
    submit_times: list[float] = field(default_factory=list)
    #: (start, end) of the steady window: every person has arrived, none has stopped yet
    window: tuple[float, float] = (0.0, 0.0)
    pulled: int = 0
    pulled_submitted: int = 0
    duplicates: int = 0
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        """Judgements per second answered in the steady window.

        Arrivals (the ramp) and the end (people stop mid-task) hold fewer people than the
        round's N, so counting over the whole wall time would understate what the server
        serves when everyone is labelling; demand is N / think time for the same window.
        """
        start, end = self.window
        if end <= start:
            return 0.0
        return sum(start <= t <= end for t in self.submit_times) / (end - start)

    def percentile(self, kind: str, q: float) -> float:
        values = self.latencies[kind]
        return float(np.percentile(values, q)) if values else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "annotators": self.annotators,
            "think_s": self.think_s,
            "wall_s": round(self.wall_s, 2),
            "judgements_per_s": round(self.throughput, 3),
            "steady_window_s": round(self.window[1] - self.window[0], 2),
            "submitted": len(self.submitted),
            "pulled": self.pulled,
            "pulled_submitted": self.pulled_submitted,
            "duplicates": self.duplicates,
            "errors": self.errors,
            "server_errors": self.server_errors,
            "timeouts": self.timeouts,
            "login_failures": self.login_failures,
            "latency_s": {
                k: {
                    "n": len(self.latencies[k]),
                    "p50": round(self.percentile(k, 50), 3),
                    "p95": round(self.percentile(k, 95), 3),
                    "p99": round(self.percentile(k, 99), 3),
                }
                for k in KINDS
            },
            "cpu_s": {k: round(v, 2) for k, v in self.cpu.items()},
        }


def prepare_round(
    root: Path, server: Any, annotators: int, items: int, groups: int = 3, judgements: int = 3
) -> Round:
    """Accounts for ``annotators`` people in ``groups`` groups, one stage of ``items`` videos."""
    from emotions_data.annotation.accounts import read_credentials, sync_accounts
    from emotions_data.annotation.protocol import load_protocol
    from emotions_data.annotation.push import push_stage
    from emotions_data.annotation.state import State
    from emotions_data.annotation.store import write_groups
    from emotions_data.testing.media import make_clip

    root = Path(root)
    clip = "normalized/clip.mp4"
    make_clip(root / clip, width=96, height=160, duration=1.0, source="color")
    videos = pd.DataFrame(
        {
            "video_id": [f"v{i:05d}" for i in range(items)],
            "platform": "tiktok",
            "source_url": [f"https://example.org/v/{i}" for i in range(items)],
            "status": "ok",
            "normalized_path": clip,  # one file serves every task: the load is the server's
        }
    )
    names = [f"p{i:03d}" for i in range(annotators)]
    frame = pd.DataFrame(
        {
            "annotator_id": names,
            "group_id": [chr(ord("A") + i % groups) for i in range(annotators)],
            "leader": [i < groups for i in range(annotators)],
            "active": True,
            "reason": None,
            "updated_stage": None,
            "email": None,
        }
    )
    protocol_path = root / "load.yaml"
    protocol_path.write_text(
        yaml.safe_dump(
            {
                "name": "load",
                "groups": groups,
                "taxonomy": "emotions6",
                "stages": [{"name": "primary", "judgements": judgements}],
            }
        )
    )
    write_groups(frame, root / "groups.parquet", params={"load": True})
    protocol = load_protocol(str(protocol_path))
    push_stage(root, server, protocol, "primary", videos, frame, seed=0)
    sync_accounts(root, server, frame, stage_order=["primary"])
    creds = read_credentials(root / "labelstudio" / "credentials.csv")
    state = State.load(root)
    return Round(root, server, protocol_path, frame, creds, state.stage_projects("primary"))


def _process_cpu(pids: list[int]) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # utime, stime, cutime, cstime: the process and its reaped children
        total += sum(int(v) for v in fields[11:15]) / tick
    return total


def process_tree(pid: int | None) -> list[int]:
    """``pid`` and its descendants (gunicorn's workers, PostgreSQL's backends)."""
    if not pid:
        return []
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except OSError:
            continue
    return out


def _label(rng: random.Random) -> list[dict[str, Any]]:
    choice = rng.choice(["excitation", "fear", "neutral", "relaxation", "sadness", "tension"])
    return [
        {
            "from_name": "emotion",
            "to_name": "video",
            "type": "choices",
            "value": {"choices": [choice]},
        }
    ]


async def _person(
    base: str,
    verify: Any,
    email: str,
    password: str,
    project: int,
    think_s: float,
    start_at: float,
    deadline: float,
    report: LoadReport,
    budget: Iterator[int],
    rng: random.Random,
    timeout_s: float,
) -> None:
    import httpx

    async def timed(kind: str, call: Any) -> httpx.Response | None:
        t0 = time.perf_counter()
        try:
            resp: httpx.Response = await call
        except httpx.TimeoutException:
            report.timeouts += 1
            return None
        except httpx.TransportError:
            report.errors += 1
            return None
        report.latencies[kind].append(time.perf_counter() - t0)
        if resp.status_code >= 500:
            report.server_errors += 1
        return resp

    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    async with httpx.AsyncClient(
        base_url=base, timeout=timeout_s, verify=verify, follow_redirects=False
    ) as http:
        t0 = time.perf_counter()
        form = await http.get("/user/login/")
        csrf = http.cookies.get("csrftoken", "")
        resp = await http.post(
            "/user/login/",
            data={"email": email, "password": password, "csrfmiddlewaretoken": csrf},
            headers={"Referer": base + "/user/login/"},
        )
        if form.status_code >= 500 or resp.status_code >= 500:
            report.server_errors += 1
        if resp.status_code not in (301, 302):
            report.login_failures += 1
            return
        report.latencies["login"].append(time.perf_counter() - t0)
        headers = {"X-CSRFToken": http.cookies.get("csrftoken") or ""}
        page = await timed("project", http.get(f"/projects/{project}/data/?labeling=1"))
        if page is None or page.status_code >= 400:
            report.errors += 1
        while time.monotonic() < deadline:
            nxt = await timed("next", http.get(f"/api/projects/{project}/next"))
            if nxt is None:
                continue
            if nxt.status_code == 404:  # the person's queue is done
                return
            if nxt.status_code != 200:
                report.errors += 1
                await asyncio.sleep(1.0)
                continue
            task = nxt.json()
            think = rng.uniform(0.5, 1.5) * think_s
            if time.monotonic() + think > deadline:
                return  # the round ends before this person would submit: stop now
            await asyncio.sleep(think)
            if next(budget, None) is None:
                return
            body = {"result": _label(rng), "lead_time": think_s, "project": project}
            sub = await timed(
                "submit",
                http.post(f"/api/tasks/{task['id']}/annotations/", json=body, headers=headers),
            )
            if sub is None:
                continue
            if sub.status_code == 201:
                report.submitted.append(int(sub.json()["id"]))
                report.submit_times.append(time.monotonic())
            else:
                report.errors += 1


def run_round(
    lab: Round,
    *,
    think_s: float,
    duration_s: float,
    ramp_s: float,
    max_judgements: int,
    seed: int = 0,
    timeout_s: float = 60.0,
    server_pids: list[int] | None = None,
    database_pid: int | None = None,
) -> LoadReport:
    """Label for ``duration_s`` (after the ramp) with everyone, then pull and check the stage."""
    from emotions_data.annotation.endpoint import tls_context

    server = lab.server
    base = (server.public_url or server.url).rstrip("/")
    verify = tls_context(server.certfile)
    members = lab.groups.set_index("annotator_id")["group_id"].astype(str)
    report = LoadReport(annotators=len(lab.credentials), think_s=think_s, wall_s=0.0)
    rng = random.Random(seed)
    budget = iter(range(max_judgements))
    now = time.monotonic()
    deadline = now + ramp_s + duration_s
    tree = process_tree(server.pid)
    db_tree = process_tree(database_pid)
    cpu0 = (_process_cpu(tree), _process_cpu(db_tree), time.process_time())

    async def everyone() -> None:
        await asyncio.gather(
            *(
                _person(
                    base,
                    verify,
                    row["email"],
                    row["password"],
                    lab.projects[members[annotator]],
                    think_s,
                    now + rng.uniform(0, ramp_s),
                    deadline,
                    report,
                    budget,
                    random.Random(f"{seed}-{annotator}"),
                    timeout_s,
                )
                for annotator, row in sorted(lab.credentials.items())
            )
        )

    # the first submits come one think time after arrival: the window opens when everyone
    # has arrived and had time for one task; a person only starts a task that ends before
    # the deadline, so every submit due before it is made and the window runs to it
    report.window = (now + ramp_s + think_s, deadline)
    t0 = time.monotonic()
    asyncio.run(everyone())
    report.wall_s = time.monotonic() - t0
    # the workers seen at the start and any started since (a restarted one)
    tree = sorted(set(tree) | set(process_tree(server.pid)))
    report.cpu = {
        "server": _process_cpu(tree) - cpu0[0],
        "database": _process_cpu(db_tree) - cpu0[1] if db_tree else 0.0,
        "load_generator": time.process_time() - cpu0[2],
    }
    _check_pulled(lab, report)
    return report


def _check_pulled(lab: Round, report: LoadReport) -> None:
    from emotions_data.annotation.protocol import load_protocol
    from emotions_data.annotation.pull import pull_stage
    from emotions_data.schema.io import read_manifest

    out = lab.root / "annotations.parquet"
    pull_stage(
        lab.root,
        lab.server,
        load_protocol(str(lab.protocol_path)),
        "primary",
        out,
        groups=lab.groups,
        force=True,
    )
    pulled = read_manifest(out).df
    report.pulled = len(pulled)
    ids = set(pd.to_numeric(pulled["ls_annotation_id"]).astype(int))
    report.pulled_submitted = len(ids & set(report.submitted))
    report.duplicates = int(pulled.duplicated(["video_id", "annotator_id", "stage"]).sum())


def summary_line(name: str, report: LoadReport) -> str:
    d = report.to_dict()
    lat = d["latency_s"]
    return json.dumps({"setup": name, **d, "latency_s": lat})
