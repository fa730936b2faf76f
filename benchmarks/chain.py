"""The chain after fetch/prepare at eMotions scale and shape, every step as a user runs it.

A synthetic eMotions-shaped corpus without media (``--videos`` ok videos on 3 platforms,
uploaders with a Zipf-like number of videos, a few with hundreds, 5 % near-duplicate reposts on
another platform, skewed classes; ``emotions_data.testing.manifests.synthetic_videos``) and a
60-person roster with careless and adversarial members plus an expert
(``annotation.simulate.simulated_roster``) go through the real embedded Label Studio and every
command after fetch/prepare, each one a fresh ``emotions-data`` process: allocate, push (3
groups), simulate (``--bulk``: the judgements imported inline; one API call per judgement would
take hours), pull, escalate, evaluate, cross_check_b, evaluate_b, expert, finalize, agreement
(with a 1,000-sample bootstrap), split (5 folds), build-variants, stats, release.

Per step: wall time, CPU seconds (the command's process and children from ``os.wait4``, plus
what the Label Studio server's process group used meanwhile, from ``/proc``), the command's
peak RSS, items and items/s. With ``--compare-to M`` (default: a tenth of ``--videos``) the
chain runs first at M videos and the table gives each step's time at N over its time at M
(wall and CPU; linear is N/M). This process imports nothing heavy (stdlib only) so that the
children's peak RSS is theirs: a forked child is charged the parent's resident pages.

Run: ``.venv/bin/python benchmarks/chain.py --videos 28000`` (the table in docs/benchmarks.md)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

CLI = os.path.join(os.path.dirname(sys.executable), "emotions-data")
TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Step:
    name: str
    wall: float
    cpu: float
    peak_mib: float
    items: int

    @property
    def rate(self) -> float:
        return self.items / self.wall if self.wall > 0 else float("nan")


def server_cpu(root: Path) -> float:
    """CPU seconds used so far by the embedded server's process group (dead children too)."""
    try:
        pgid = int(json.loads((root / "labelstudio" / "server.json").read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return 0.0
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:  # pgrp
            total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return total / TICK


def run_step(root: Path, name: str, args: list[str], items: int | None = None) -> Step:
    """Run ``emotions-data ARGS`` in a fresh process; items from its ``--json -`` if not given."""
    before = server_cpu(root)
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([CLI, *args], stdout=subprocess.PIPE, stderr=err, text=True)
        assert proc.stdout is not None
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own CPU and peak RSS
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            err.seek(0)
            raise SystemExit(
                f"{name}: emotions-data {' '.join(args)} exited {proc.returncode}\n{err.read()}"
            )
    cpu = usage.ru_utime + usage.ru_stime + server_cpu(root) - before
    count = items if items is not None else _items_from(out)
    print(f"  {name}: {wall:.1f} s", file=sys.stderr, flush=True)
    return Step(name, wall, cpu, usage.ru_maxrss / 1024, count)


def _items_from(out: str) -> int:
    # The JSON document is the last thing printed (``--json -``), after the summary lines.
    start = 0 if out.startswith("{") else out.rfind("\n{\n") + 1
    if start == 0 and not out.startswith("{"):
        return 0
    try:
        data = json.loads(out[start:])
    except ValueError:
        return 0
    for key in ("annotations_created", "rows", "total", "n_judgements", "labels"):
        if isinstance(data.get(key), int):
            return int(data[key])
    created = data.get("tasks_created")
    if isinstance(created, dict):
        return sum(int(v) for v in created.values()) + sum(
            int(v) for v in (data.get("tasks_existing") or {}).values()
        )
    return 0


def run_chain(n_videos: int, workdir: Path, seed: int) -> list[Step]:
    root = workdir / f"chain-{n_videos}"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, __file__, "--make-corpus", str(n_videos), str(root), "--seed", str(seed)],
        check=True,
    )
    print(f"corpus of {n_videos} videos: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    r = str(root)
    videos, groups, ann = f"{r}/videos.parquet", f"{r}/groups.parquet", f"{r}/annotations.parquet"
    common = ["--root", r]
    steps: list[Step] = []
    steps.append(run_step(root, "server start", ["annotate", "server", "start", *common], 1))
    try:
        steps.append(
            run_step(
                root,
                "allocate",
                [
                    "--seed",
                    "1",
                    "annotate",
                    "allocate",
                    f"{r}/roster.csv",
                    "--groups",
                    "3",
                    "--out",
                    groups,
                ],
                61,
            )
        )

        def stage(name: str, escalate: bool) -> None:
            if escalate:
                steps.append(
                    run_step(
                        root,
                        f"escalate to {name}",
                        [
                            "annotate",
                            "escalate",
                            "--to",
                            name,
                            "--annotations",
                            ann,
                            "--groups",
                            groups,
                            *common,
                            "--json",
                            "-",
                        ],
                    )
                )
            steps.append(
                run_step(
                    root,
                    f"push {name}",
                    [
                        "annotate",
                        "push",
                        "--stage",
                        name,
                        "--videos",
                        videos,
                        "--groups",
                        groups,
                        *common,
                        "--json",
                        "-",
                    ],
                )
            )
            steps.append(
                run_step(
                    root,
                    f"simulate {name}",
                    [
                        "--seed",
                        str(seed),
                        "annotate",
                        "simulate",
                        "--stage",
                        name,
                        "--bulk",
                        "--roster",
                        f"{r}/roster.csv",
                        "--groups",
                        groups,
                        "--truth",
                        f"{r}/truth.csv",
                        *common,
                        "--json",
                        "-",
                    ],
                )
            )
            steps.append(
                run_step(
                    root,
                    f"pull {name}",
                    [
                        "annotate",
                        "pull",
                        "--stage",
                        name,
                        "--out",
                        ann,
                        "--groups",
                        groups,
                        *common,
                        "--json",
                        "-",
                    ],
                )
            )

        def evaluate(name: str) -> None:
            steps.append(
                run_step(
                    root,
                    name.replace("_", " "),
                    [
                        "annotate",
                        "evaluate",
                        "--stage",
                        name,
                        "--annotations",
                        ann,
                        "--groups",
                        groups,
                    ],
                    n_videos,
                )
            )

        stage("primary", escalate=False)
        stage("cross_check_a", escalate=True)
        evaluate("evaluate_a")
        stage("cross_check_b", escalate=True)
        evaluate("evaluate_b")
        stage("expert", escalate=True)
        steps.append(
            run_step(
                root,
                "finalize",
                [
                    "annotate",
                    "finalize",
                    "--annotations",
                    ann,
                    "--groups",
                    groups,
                    "--out",
                    f"{r}/labels.parquet",
                    "--json",
                    "-",
                ],
            )
        )
        steps.append(
            run_step(
                root,
                "agreement (1,000 bootstrap)",
                ["--seed", "7", "agreement", ann, "--bootstrap", "1000", "--json", "-"],
            )
        )
        steps.append(
            run_step(root, "split (5 folds)", ["--seed", "7", "split", *common, "--folds", "5"])
        )
        steps[-1].items = n_videos
        steps.append(
            run_step(
                root,
                "build-variants",
                # A rare class may lack reliable videos for a full test set: written short,
                # with the shortfall in its metadata, instead of exit 3.
                ["--seed", "7", "build-variants", *common, "--allow-short"],
            )
        )
        steps[-1].items = n_videos
        steps.append(
            run_step(root, "stats", ["stats", *common, "--out", f"{r}/stats", "--bootstrap", "200"])
        )
        steps[-1].items = n_videos
        steps.append(
            run_step(
                root,
                "release",
                ["release", *common, "--out", f"{r}/release", "--bootstrap", "200"],
                n_videos,
            )
        )
    finally:
        subprocess.run([CLI, "annotate", "server", "stop", *common], capture_output=True)
    return steps


def print_table(steps: list[Step], small: list[Step] | None, n: int, m: int | None) -> None:
    by_name = {s.name: s for s in small or []}
    head = "| step | wall s | CPU s | peak RSS MiB | items | items/s |"
    rule = "|---|---|---|---|---|---|"
    if small is not None:
        head += f" wall {n:,} / {m:,} | CPU {n:,} / {m:,} |"
        rule += "---|---|"
    print(head)
    print(rule)
    for s in steps:
        line = (
            f"| {s.name} | {s.wall:.2f} | {s.cpu:.2f} | {s.peak_mib:.0f} | {s.items:,} | "
            f"{s.rate:,.0f} |"
        )
        if small is not None:
            o = by_name.get(s.name)
            if o is None:
                line += " | |"
            else:
                line += f" {s.wall / o.wall:.1f} | {s.cpu / max(o.cpu, 1e-9):.1f} |"
        print(line)
    total_wall, total_cpu = sum(s.wall for s in steps), sum(s.cpu for s in steps)
    print(f"| total | {total_wall:.1f} | {total_cpu:.1f} | | | |" + (" | |" if small else ""))


def make_corpus(n_videos: int, root: Path, seed: int) -> None:
    """Write videos.parquet, truth.csv and roster.csv under ``root`` (run in a child process)."""
    from emotions_data.annotation.simulate import simulated_roster
    from emotions_data.schema.io import write_manifest
    from emotions_data.testing.manifests import synthetic_videos

    videos, truth = synthetic_videos(n_videos, seed=seed)
    write_manifest(videos, root / "videos.parquet", "videos")
    truth.rename_axis("video_id").reset_index().to_csv(root / "truth.csv", index=False)
    roster = simulated_roster(
        groups=3, per_group=20, careless=3, adversarial=2, experts=1, seed=seed
    )
    roster.to_csv(root / "roster.csv", index=False)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--videos", type=int, default=28_000)
    parser.add_argument(
        "--compare-to",
        type=int,
        default=None,
        help="also run at this many videos first, for the ratio columns (default: videos/10; "
        "0: none)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, help="keep the roots here (default: a temp dir)")
    parser.add_argument("--json", dest="json_out", type=Path, help="also write the rows here")
    parser.add_argument("--make-corpus", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make_corpus:
        make_corpus(int(args.make_corpus[0]), Path(args.make_corpus[1]), args.seed)
        return
    compare = args.videos // 10 if args.compare_to is None else args.compare_to
    with tempfile.TemporaryDirectory(prefix="chain-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        small = run_chain(compare, workdir, args.seed) if compare else None
        steps = run_chain(args.videos, workdir, args.seed)
    load = os.getloadavg()[0]
    print(
        f"\n## the chain at {args.videos:,} videos"
        + (f", against {compare:,}" if compare else "")
        + f" ({os.cpu_count()} cores, load average {load:.1f};"
        f" this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)\n"
    )
    print_table(steps, small, args.videos, compare or None)
    if args.json_out:
        rows = {
            "videos": args.videos,
            "compare_to": compare,
            "steps": [vars(s) for s in steps],
            "small": [vars(s) for s in small or []],
        }
        args.json_out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
