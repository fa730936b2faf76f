"""Pull of a large Label Studio stage: ``pull_stage`` side by side with what SDK users do.

Set-up (not timed against anything): a fresh embedded Label Studio per ``--db`` (SQLite, the
root's own PostgreSQL cluster, or both side by side), one project with ``--tasks``
tasks carrying ``--judgements`` annotations each by distinct users. Creating 84,000 annotations
one API call at a time takes hours here (about 0.25 s each), so the set-up imports the tasks with
their annotations inline (``completed_by`` = the user id), which Label Studio stores exactly like
annotations made in the UI. The set-up time is printed too.

Measured, on the same project, in one run:
- ``pull_stage`` (default ``--via auto``: the embedded server's SQLite, read-only) + parse + user
  mapping + manifest write, and ``pull_stage --via api`` (export snapshot + download, any server);
- the SDK's paginated ``tasks.list(project, fields="all")`` (what users report as taking over
  30 minutes for 50,000 tasks): paged through ``--list-limit`` tasks, then extrapolated linearly
  to the whole project (said so in the output);
- the synchronous export (``exports.download_sync``), the other SDK path.

With ``--db sqlite postgres`` the database pull runs on both, on the same generated judgements,
and the two manifests are checked to hold the same rows; ``--only-database`` skips the SDK
routes. CPU seconds of this process beside the wall time (the database's own CPU is not in it).

Run: ``.venv/bin/python benchmarks/pull.py --tasks 28000 --judgements 3``
``.venv/bin/python benchmarks/pull.py --tasks 28000 --judgements 3 --db sqlite postgres --only-database``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from emotions_data.annotation.client import Client
from emotions_data.annotation.database import parse_db
from emotions_data.annotation.label_config import FROM_NAME, TO_NAME, label_config
from emotions_data.annotation.protocol import protocol_from_dict
from emotions_data.annotation.pull import pull_stage
from emotions_data.annotation.server import start_server, stop_server
from emotions_data.annotation.state import State, project_key
from emotions_data.schema.taxonomy import load_taxonomy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=28000)
    parser.add_argument("--judgements", type=int, default=3)
    parser.add_argument("--annotators", type=int, default=9)
    parser.add_argument("--batch", type=int, default=2000, help="tasks per import request")
    parser.add_argument(
        "--list-limit", type=int, default=2000, help="tasks to page with tasks.list"
    )
    parser.add_argument("--skip-sync", action="store_true", help="skip the synchronous export")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--db", nargs="+", choices=["sqlite", "postgres"], default=["sqlite"], help="side by side"
    )
    parser.add_argument(
        "--only-database", action="store_true", help="only the database pull, no SDK routes"
    )
    args = parser.parse_args()
    pulled = {db: _run(args, db) for db in args.db}
    if len(pulled) == 2:
        (a, fa), (b, fb) = pulled.items()
        key = ["video_id", "annotator_id", "label"]
        same = (
            fa[key]
            .sort_values(key)
            .reset_index(drop=True)
            .equals(fb[key].sort_values(key).reset_index(drop=True))
        )
        print(f"{a} and {b} pulls hold the same (video, annotator, label) rows: {same}")


def _run(args: argparse.Namespace, db: str) -> pd.DataFrame:
    """One database: set up the project, pull it (and the SDK routes); the pulled frame."""
    print(f"== {db}")

    tax = load_taxonomy()
    proto = protocol_from_dict(
        {
            "name": "bench",
            "groups": 1,
            "stages": [{"name": "primary", "judgements": args.judgements}],
        }
    )
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory(prefix="pull-bench-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        server = start_server(root, db=parse_db(db), workers=2)
        print(f"server start: {time.perf_counter() - t0:.1f} s")
        try:
            client = Client(server)
            annotators = [f"ann{i:03d}" for i in range(args.annotators)]
            users = client.ensure_users(annotators, {})
            pid = client.create_project(
                "bench primary / group A", label_config(tax), args.judgements, ""
            )
            state = State.load(root)
            state.bind_server(server.identity)
            state.users = users
            state.projects[project_key("primary", "A")] = pid
            state.save()
            user_ids = np.array([users[a] for a in annotators])
            t0 = time.perf_counter()
            for start in range(0, args.tasks, args.batch):
                n = min(args.batch, args.tasks - start)
                labels = rng.integers(0, len(tax.classes), (n, args.judgements))
                who = np.argsort(rng.random((n, len(annotators))), axis=1)[:, : args.judgements]
                tasks = [
                    {
                        "data": {
                            "video_id": f"v{start + i:06d}",
                            "video": f"https://example.org/{start + i}.mp4",
                        },
                        "annotations": [
                            {
                                "completed_by": int(user_ids[who[i, j]]),
                                "lead_time": 10.0,
                                "result": [
                                    {
                                        "from_name": FROM_NAME,
                                        "to_name": TO_NAME,
                                        "type": "choices",
                                        "value": {"choices": [tax.classes[labels[i, j]]]},
                                    }
                                ],
                            }
                            for j in range(args.judgements)
                        ],
                    }
                    for i in range(n)
                ]
                client.import_tasks(pid, tasks)
            setup = time.perf_counter() - t0
            print(
                f"set-up: {args.tasks} tasks x {args.judgements} judgements imported in {setup:.1f} s"
            )

            out = root / "annotations.parquet"
            t0, c0 = time.perf_counter(), time.process_time()
            result = pull_stage(root, server, proto, "primary", out)
            ours, ours_cpu = time.perf_counter() - t0, time.process_time() - c0
            assert result.rows == args.tasks * args.judgements, result.rows
            t0 = time.perf_counter()
            again = pull_stage(root, server, proto, "primary", out)
            ours_again = time.perf_counter() - t0
            assert not again.written
            print(
                f"pull_stage (database read, {db}): {ours:.1f} s wall, {ours_cpu:.1f} s CPU "
                f"for {result.rows} judgements (second pull, file unchanged: {ours_again:.1f} s)"
            )
            frame = pd.read_parquet(out)
            if args.only_database:
                return frame
            t0 = time.perf_counter()
            pull_stage(root, server, proto, "primary", root / "via-api.parquet", via="api")
            api = time.perf_counter() - t0
            print(f"pull_stage --via api (export snapshot): {api:.1f} s")

            t0 = time.perf_counter()
            seen = 0
            for _task in client.ls.tasks.list(project=pid, fields="all", page_size=100):
                seen += 1
                if seen >= min(args.list_limit, args.tasks):
                    break
            listed = time.perf_counter() - t0
            per_task = listed / max(seen, 1)
            full_list = per_task * args.tasks
            print(
                f"SDK tasks.list: {seen} tasks in {listed:.1f} s -> {full_list:.0f} s extrapolated to {args.tasks}"
            )

            if not args.skip_sync:
                t0 = time.perf_counter()
                data = b"".join(
                    client.ls.projects.exports.download_sync(
                        pid, export_type="JSON", download_all_tasks=True
                    )
                )
                sync = time.perf_counter() - t0
                print(
                    f"SDK synchronous export: {sync:.1f} s ({len(data) / 1e6:.1f} MB), parse/write not included"
                )
                print(f"ratio synchronous export / pull_stage: {sync / ours:.2f}x")
            print(f"ratio tasks.list (extrapolated) / pull_stage: {full_list / ours:.1f}x")
            print(f"ratio snapshot pull / database pull: {api / ours:.1f}x")
            print(f"goal: pull under 60 s -> {'met' if ours < 60 else 'NOT met'}")
            return frame
        finally:
            stop_server(root)


if __name__ == "__main__":
    main()
