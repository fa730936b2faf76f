"""A lab round under load: today's server set-up beside the production one, in one run.

N annotators (default 60) log in through the login form with the credentials file, open the
labelling page and label through the label stream (next, think, submit) for ``--duration``
seconds after a ``--ramp`` of arrivals, on loopback only, bounded in time and count
(``emotions_data/testing/lab_load.py``). Then the stage is pulled and every submitted judgement
must be there once. Set-ups, each on a fresh root:

- ``runserver+sqlite``: Label Studio's development server on SQLite (the embedded default before);
- ``gunicorn+sqlite``: gunicorn workers on SQLite (today's default for the demo and quick rounds);
- ``gunicorn+postgres``: gunicorn workers on the root's PostgreSQL cluster (``--db postgres``).

Printed per set-up: throughput (judgements/s answered in the steady window, from when everyone
has arrived and done one task to the end) against demand (N / think time), p50/p95/p99 of
login, project page, next and submit, errors, 5xx, time-outs, submitted vs pulled and
duplicates, and the CPU seconds of the server processes, the database and the load generator
beside the wall time (the load generator shares the machine's cores with the server).

Run: ``.venv/bin/python benchmarks/lab_load.py --annotators 60 --think 15 --duration 120``
     ``.venv/bin/python benchmarks/lab_load.py --annotators 60 --think 2 --duration 60``
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from emotions_data.annotation.database import parse_db
from emotions_data.annotation.server import server_health, start_server, stop_server
from emotions_data.testing.lab_load import KINDS, LoadReport, prepare_round, run_round

SETUPS = {
    "runserver+sqlite": ("runserver", "sqlite"),
    "gunicorn+sqlite": ("gunicorn", "sqlite"),
    "gunicorn+postgres": ("gunicorn", "postgres"),
}


def measure(name: str, args: argparse.Namespace, work: Path) -> LoadReport:
    wsgi, db = SETUPS[name]
    root = work / name.replace("+", "-")
    server = start_server(root, db=parse_db(db), wsgi=wsgi, workers=args.workers)
    try:
        lab = prepare_round(root, server, args.annotators, args.items)
        health = server_health(root)
        return run_round(
            lab,
            think_s=args.think,
            duration_s=args.duration,
            ramp_s=args.ramp,
            max_judgements=args.max_judgements,
            seed=args.seed,
            database_pid=health.get("database_pid"),
        )
    finally:
        stop_server(root)


def table(results: dict[str, LoadReport], demand: float) -> str:
    head = ["set-up", "judgements/s", "of demand"]
    for kind in KINDS:
        head += [f"{kind} p50", f"{kind} p95", f"{kind} p99"]
    head += [
        "errors",
        "5xx",
        "time-outs",
        "submitted",
        "pulled once",
        "dups",
        "CPU server",
        "CPU db",
        "CPU load",
        "wall s",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results.items():
        cells = [name, f"{r.throughput:.2f}", f"{r.throughput / demand:.2f}"]
        for kind in KINDS:
            cells += [f"{r.percentile(kind, q):.2f}" for q in (50, 95, 99)]
        cells += [
            str(r.errors), str(r.server_errors), str(r.timeouts), str(len(r.submitted)),
            str(r.pulled_submitted), str(r.duplicates), f"{r.cpu['server']:.1f}",
            f"{r.cpu['database']:.1f}", f"{r.cpu['load_generator']:.1f}", f"{r.wall_s:.1f}",
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotators", type=int, default=60)
    parser.add_argument("--think", type=float, default=15.0, help="Think time per task, s.")
    parser.add_argument("--duration", type=float, default=120.0, help="Labelling time, s.")
    parser.add_argument("--ramp", type=float, default=30.0, help="Arrivals spread over, s.")
    parser.add_argument("--items", type=int, default=600)
    parser.add_argument("--max-judgements", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=None, help="gunicorn workers.")
    parser.add_argument("--setups", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="Also write the figures as JSON here.")
    args = parser.parse_args()
    demand = args.annotators / args.think
    results: dict[str, LoadReport] = {}
    with tempfile.TemporaryDirectory(prefix="lab-load-") as tmp:
        for name in args.setups:
            results[name] = measure(name, args, Path(tmp))
            print(f"{name}: {json.dumps(results[name].to_dict())}", flush=True)
    print(
        f"\n{args.annotators} annotators, think {args.think} s (demand {demand:.2f} judgements/s), "
        f"{args.duration} s after a {args.ramp} s ramp; latencies in s, CPU in s"
    )
    print(table(results, demand))
    if args.json:
        args.json.write_text(json.dumps({k: v.to_dict() for k, v in results.items()}, indent=2))


if __name__ == "__main__":
    main()
