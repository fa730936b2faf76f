"""``annotate finalize`` with and without expert items, and ``escalate`` to cross_check_b, at scale.

A synthetic crowd (6 judgements per item over primary and cross_check_a, 60 annotators in
groups A, B, C) of ``--items`` items; the expert judges ``--expert-share`` of them. Measured in
this process, best of ``--repeat`` (wall and CPU seconds):

- ``finalize_labels`` without expert judgements, then with them (goal: within 2x);
- ``compute_assignment`` of cross_check_b, the disputed items routed to a group that has not
  judged them (goal: under 1 s at 28,000 items).

Run: ``.venv/bin/python benchmarks/annotate_steps.py --items 2800 28000``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emotions_data.annotation.escalate import compute_assignment
from emotions_data.annotation.finalize import finalize_labels
from emotions_data.annotation.protocol import load_protocol
from emotions_data.annotation.state import State
from emotions_data.testing.manifests import synthetic_crowd


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    wall, cpu, result = float("inf"), float("nan"), None
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        result = fn()
        w = time.perf_counter() - t0
        if w < wall:
            wall, cpu = w, time.process_time() - c0
    return wall, cpu, result


def run(n_items: int, expert_share: float, repeat: int) -> None:
    protocol = load_protocol()
    crowd, truth = synthetic_crowd(n_items, min_judgements=6, max_judgements=6, seed=1)
    position = np.arange(len(crowd))
    crowd["stage"] = np.where(position % 6 < 3, "primary", "cross_check_a")
    crowd["group_id"] = np.array(["A", "B", "C"])[(position // 6) % 3]
    crowd["created_at"] = pd.Timestamp("2024-01-01", tz="UTC")
    picked = truth.sample(frac=expert_share, random_state=0)
    expert = pd.DataFrame(
        {
            "video_id": picked.index,
            "annotator_id": "expert01",
            "label": picked.to_numpy(),
            "stage": "expert",
            "group_id": "expert",
            "created_at": pd.Timestamp("2024-01-02", tz="UTC"),
        }
    )
    with_expert = pd.concat([crowd, expert], ignore_index=True)
    plain = best(lambda: finalize_labels(protocol, crowd), repeat)
    mixed = best(lambda: finalize_labels(protocol, with_expert), repeat)
    with tempfile.TemporaryDirectory() as tmp:
        state = State.load(Path(tmp))
        vids = sorted(truth.index)
        state.assignments["primary"] = {g: vids[i::3] for i, g in enumerate("ABC")}
        state.assignments["cross_check_a"] = {
            g: vids[(i + 1) % 3 :: 3] for i, g in enumerate("ABC")
        }
        groups = pd.DataFrame(
            {
                "annotator_id": [f"w{i}" for i in range(60)],
                "group_id": np.array(list("ABC"))[np.arange(60) % 3],
                "active": True,
            }
        )
        stage = protocol.stage("cross_check_b")
        esc = best(lambda: compute_assignment(protocol, stage, crowd, groups, state), repeat)
    routed = sum(len(v) for v in esc[2][0].values())
    print(f"\n## {n_items:,} items, {len(crowd):,} crowd judgements, {len(expert):,} expert items")
    print("| step | wall s | CPU s |")
    print("|---|---|---|")
    print(f"| finalize, no expert items | {plain[0]:.3f} | {plain[1]:.3f} |")
    print(f"| finalize, {expert_share:.0%} expert items | {mixed[0]:.3f} | {mixed[1]:.3f} |")
    print(f"| escalate to cross_check_b ({routed:,} disputed) | {esc[0]:.3f} | {esc[1]:.3f} |")
    print(f"finalize with / without expert items: {mixed[0] / plain[0]:.2f}x (goal 2)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, nargs="+", default=[2_800, 28_000])
    parser.add_argument("--expert-share", type=float, default=0.05)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for n in args.items:
        run(n, args.expert_share, args.repeat)


if __name__ == "__main__":
    main()
