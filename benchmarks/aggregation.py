"""Label aggregation: our MajorityVote and DawidSkene side by side with crowd-kit's, same data.

A synthetic crowd (6 classes, 60 annotators of accuracy 0.5-0.95, 3-10 judgements per item) with
known truth. For each method: accuracy against the truth, items left without a label (ties under
our default policy), best wall time and its CPU time. crowd-kit is skipped, saying so, when it
is not installed (``pip install crowd-kit``; it is not a dependency of the project).

Run: ``.venv/bin/python benchmarks/aggregation.py --items 28000``
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from emotions_data.annotation.aggregation import DawidSkene, MajorityVote
from emotions_data.schema.taxonomy import load_taxonomy
from emotions_data.testing.manifests import synthetic_crowd


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """Best wall time of ``repeat`` runs, the CPU time of that run, and the result."""
    best, best_cpu, result = float("inf"), float("nan"), None
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        result = fn()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if wall < best:
            best, best_cpu = wall, cpu
    return best, best_cpu, result


def pandas_majority(frame: pd.DataFrame) -> pd.Series:
    """What a user writes by hand: counts by groupby, the first most frequent label."""
    counts = frame.groupby(["video_id", "label"]).size().unstack(fill_value=0)
    return counts.idxmax(axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=28_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    classes = load_taxonomy().classes
    frame, truth = synthetic_crowd(args.items, seed=args.seed)
    print(
        f"{args.items:,} items, {len(frame):,} judgements, 60 annotators "
        f"(load average {os.getloadavg()[0]:.1f})"
    )
    rows: list[tuple[str, float, float, float, int, str]] = []

    def add(name: str, labels: pd.Series, wall: float, cpu: float, note: str = "") -> None:
        aligned = labels.reindex(truth.index)
        accuracy = float((aligned == truth).fillna(False).mean())
        rows.append((name, accuracy, wall, cpu, int(aligned.isna().sum()), note))

    wall, cpu, ds = timed(lambda: DawidSkene(n_iter=100, tol=1e-5).fit(frame, classes), args.repeat)
    add("ours DawidSkene(n_iter=100)", ds.labels_, wall, cpu, f"{ds.n_iter_} EM iterations")
    ours_ds_wall, ours_ds_acc = wall, rows[-1][1]
    for policy in ("none", "random", "first"):
        wall, cpu, mv = timed(
            lambda p=policy: MajorityVote(tie_policy=p, seed=args.seed).fit(frame, classes),
            args.repeat,
        )
        add(
            f"ours MajorityVote(tie_policy={policy!r})",
            mv.labels_,
            wall,
            cpu,
            f"{len(mv.ties_)} ties",
        )
    wall, cpu, pm = timed(lambda: pandas_majority(frame), args.repeat)
    add("pandas groupby majority (idxmax)", pm, wall, cpu, "ties silently to the first class")

    crowd_ds: tuple[float, float] | None = None
    try:
        t0 = time.perf_counter()
        from crowdkit.aggregation import DawidSkene as CKDawidSkene
        from crowdkit.aggregation import MajorityVote as CKMajorityVote

        print(f"crowd-kit import: {time.perf_counter() - t0:.1f} s (not counted)")
    except ImportError:
        print("crowd-kit is not installed: its DawidSkene and MajorityVote are skipped")
    else:
        ck = frame.rename(columns={"video_id": "task", "annotator_id": "worker"})
        wall, cpu, labels = timed(lambda: CKDawidSkene(n_iter=100).fit_predict(ck), args.repeat)
        add("crowd-kit DawidSkene(n_iter=100)", labels, wall, cpu)
        crowd_ds = (wall, rows[-1][1])
        wall, cpu, labels = timed(lambda: CKMajorityVote().fit_predict(ck), args.repeat)
        add("crowd-kit MajorityVote", labels, wall, cpu)

    width = max(len(r[0]) for r in rows)
    print(f"{'method':<{width}}  {'accuracy':>8}  {'wall s':>7}  {'cpu s':>7}  {'no label':>8}")
    for name, acc, wall, cpu, missing, note in rows:
        print(f"{name:<{width}}  {acc:8.4f}  {wall:7.3f}  {cpu:7.3f}  {missing:8d}  {note}")
    if crowd_ds is not None:
        print(
            f"ours vs crowd-kit DawidSkene: accuracy {100 * (ours_ds_acc - crowd_ds[1]):+.2f} points, "
            f"runtime {ours_ds_wall / crowd_ds[0]:.2f}x ({crowd_ds[0] / ours_ds_wall:.1f} times faster)"
        )


if __name__ == "__main__":
    main()
