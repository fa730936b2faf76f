"""Agreement statistics: ``emotions-data agreement`` side by side with the tools a lab glues together.

On a synthetic crowd (6 classes, 60 annotators of accuracy 0.5-0.95, 3-10 judgements per item):

- ours: the report's four statistics from the long frame (encoding included), then with the
  per-class and per-annotator breakdowns, then a 1,000-sample item bootstrap;
- ``krippendorff`` package: from value counts (groupby pivot included) and from the annotators x
  items matrix (pivot timed separately);
- crowd-kit's ``alpha_krippendorff`` (skipped, saying so, when crowd-kit is not installed);
- statsmodels' ``fleiss_kappa`` with the count table given, on a crowd with 5 judgements per item
  (it needs equal raters), against our Fleiss' kappa from the long frame of the same data.

Every competitor's value is checked against ours. Run:
``.venv/bin/python benchmarks/agreement.py --sizes 28000 1000000``

``--process-items N ...`` measures whole processes instead, as a user runs them: an annotations
manifest of N items (about 6.5 N judgement rows) is written once, then
``emotions-data agreement FILE --json -`` and a one-off script (``pd.read_parquet`` of the two
columns it needs, ``pd.factorize`` of both, an ``np.bincount`` item x class value-counts matrix,
``krippendorff.alpha``) each run ``--process-repeat`` times in fresh processes, interleaved;
wall time, CPU time (user + system) and peak RSS of each process (``os.wait4``), the best run
of each, and the ratios (issue 24's goal: wall within 1.5x at 1,000,000 items):
``.venv/bin/python benchmarks/agreement.py --process-items 1000000``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

# numpy, pandas and the package are imported where used: the whole-process comparison starts
# its processes from this one, and a child's peak RSS counts the parent's pages it was forked
# with, so the parent must stay small.


@dataclass
class Row:
    name: str
    wall: float
    cpu: float
    alpha: float | None


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """Best wall time of ``repeat`` runs, the CPU time of that run, and the result.

    The machine is shared: the process CPU time is the steadier figure of the compute needed.
    """
    best, best_cpu, result = float("inf"), float("nan"), None
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        result = fn()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if wall < best:
            best, best_cpu = wall, cpu
    return best, best_cpu, result


def run(n_items: int, repeat: int, n_boot: int, slow_repeat: int) -> None:
    import krippendorff
    import pandas as pd

    from emotions_data.agreement.report import compute_agreement
    from emotions_data.schema.taxonomy import load_taxonomy
    from emotions_data.testing.manifests import synthetic_crowd

    tax = load_taxonomy()
    classes = list(tax.classes)
    frame, _ = synthetic_crowd(n_items, seed=0)
    print(
        f"\n## {n_items:,} items, {len(frame):,} judgements (load average {os.getloadavg()[0]:.1f})"
    )
    rows: list[Row] = []

    def measure(name: str, fn: Callable[[], Any], times: int, value: Callable[[Any], Any]) -> Any:
        wall, cpu, result = timed(fn, times)
        rows.append(Row(name, wall, cpu, value(result)))
        return result

    report = measure(
        "ours: alpha + kappa + P-bar + AC1 (from the long frame)",
        lambda: compute_agreement(frame, tax),
        repeat,
        lambda r: r.overall.alpha,
    )
    measure(
        "ours: the same + per class + per annotator",
        lambda: compute_agreement(frame, tax, by="class,annotator"),
        repeat,
        lambda r: r.overall.alpha,
    )
    if n_boot:
        boot = measure(
            f"ours: the four + {n_boot}-sample bootstrap CIs",
            lambda: compute_agreement(frame, tax, n_boot=n_boot, seed=0),
            slow_repeat,
            lambda r: r.overall.alpha,
        )
        ci = boot.overall.ci["krippendorff_alpha"]
        print(f"alpha {report.overall.alpha:.4f}, 95% CI [{ci.low:.4f}, {ci.high:.4f}]")

    def value_counts() -> float:
        counts = frame.groupby(["video_id", "label"]).size().unstack(fill_value=0)
        counts = counts.reindex(columns=classes, fill_value=0)
        return float(
            krippendorff.alpha(value_counts=counts.to_numpy(), level_of_measurement="nominal")
        )

    measure("krippendorff, value counts (groupby pivot included)", value_counts, repeat, float)

    coded = frame.assign(code=pd.Categorical(frame["label"], categories=classes).codes)

    def pivot() -> np.ndarray:
        wide = coded.pivot(index="annotator_id", columns="video_id", values="code")
        return wide.to_numpy(dtype=float)

    matrix = measure("  (the pandas pivot to the matrix below)", pivot, slow_repeat, lambda _: None)
    measure(
        "krippendorff, annotators x items matrix (pivot excluded)",
        lambda: float(krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")),
        slow_repeat,
        float,
    )

    try:
        from crowdkit.metrics.data import alpha_krippendorff
    except ImportError:
        print("crowd-kit is not installed: its alpha is skipped (pip install crowd-kit)")
    else:
        ck = frame.rename(columns={"video_id": "task", "annotator_id": "worker"})
        measure(
            "crowd-kit alpha_krippendorff",
            lambda: float(alpha_krippendorff(ck)),
            slow_repeat,
            float,
        )

    ours = rows[0]
    width = max(len(r.name) for r in rows)
    print(f"{'implementation':<{width}}  {'wall s':>7}  {'cpu s':>7}  {'wall vs ours':>12}  alpha")
    for r in rows:
        shown = f"{r.alpha:.12f}" if r.alpha is not None else ""
        print(
            f"{r.name:<{width}}  {r.wall:7.3f}  {r.cpu:7.3f}  {r.wall / ours.wall:11.1f}x  {shown}"
        )
    diffs = [
        abs(r.alpha - ours.alpha) for r in rows if r.alpha is not None and ours.alpha is not None
    ]
    print(f"largest difference from our alpha: {max(diffs):.1e}")

    try:
        from statsmodels.stats.inter_rater import fleiss_kappa
    except ImportError:
        print("statsmodels is not installed: its Fleiss' kappa is skipped")
        return
    equal, _ = synthetic_crowd(n_items, min_judgements=5, max_judgements=5, seed=1)
    wall_ours, cpu_ours, ours_k = timed(
        lambda: compute_agreement(equal, tax).overall.values["fleiss_kappa"], repeat
    )

    def table() -> np.ndarray:
        return equal.groupby(["video_id", "label"]).size().unstack(fill_value=0).to_numpy()

    wall_table, _, counts = timed(table, repeat)
    wall_sm, _, sm_k = timed(lambda: float(fleiss_kappa(counts)), repeat)
    print(
        f"5 judgements per item: ours (all four statistics, from the long frame) {wall_ours:.3f} s "
        f"(cpu {cpu_ours:.3f} s), kappa {ours_k:.12f}; statsmodels fleiss_kappa {wall_sm:.3f} s "
        f"with the count table given (+{wall_table:.3f} s to build it with groupby), kappa "
        f"{sm_k:.12f}; difference {abs(ours_k - sm_k):.1e}"
    )


#: What a lab writes by hand for one alpha: the two columns, codes, a bincount table, the package.
ONE_OFF_SCRIPT = """
import sys
import krippendorff
import numpy as np
import pandas as pd
frame = pd.read_parquet(sys.argv[1], columns=["video_id", "label"])
item, _ = pd.factorize(frame["video_id"])
label, classes = pd.factorize(frame["label"])
k = len(classes)
counts = np.bincount(item * k + label, minlength=(item.max() + 1) * k).reshape(-1, k)
print(krippendorff.alpha(value_counts=counts, level_of_measurement="nominal"))
"""


def write_annotations(n_items: int, path: str) -> int:
    """An annotations manifest of ``n_items`` items (3-10 judgements each, one stage); rows."""
    import numpy as np
    import pandas as pd

    from emotions_data.schema.io import write_manifest
    from emotions_data.testing.manifests import synthetic_crowd

    frame, _ = synthetic_crowd(max(n_items, 1), seed=0)
    n = len(frame)
    rng = np.random.default_rng(0)
    frame["stage"] = "primary"
    frame["created_at"] = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(
        rng.integers(0, 86_400 * 30, n), unit="s"
    )
    frame["lead_time_s"] = rng.lognormal(2.5, 0.5, n).round(2)
    frame["source"] = "simulated"
    frame["group_id"] = np.array(["A", "B", "C"])[rng.integers(0, 3, n)]
    frame["ls_project_id"] = rng.integers(1, 4, n)
    frame["ls_task_id"] = np.arange(n) // 6
    frame["ls_annotation_id"] = np.arange(n)
    write_manifest(frame, path, "annotations")
    return n


def run_process(argv: list[str]) -> tuple[float, float, float, str]:
    """Wall s, CPU s (user + system) and peak RSS (GiB) of one fresh process, and its stdout."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{argv} exited with {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 2**20, out


def run_processes(n_items: int, repeat: int) -> None:
    """``emotions-data agreement FILE --json -`` vs a one-off krippendorff script, fresh processes."""
    import json

    with tempfile.TemporaryDirectory(prefix="agreement-bench-") as tmp:
        path = os.path.join(tmp, "annotations.parquet")
        # Written by a child process, so this one stays small (see the imports).
        made = subprocess.run(
            [sys.executable, __file__, "--write-annotations", str(n_items), path],
            check=True,
            capture_output=True,
            text=True,
        )
        n = int(made.stdout)
        console = os.path.join(os.path.dirname(sys.executable), "emotions-data")
        ours_cmd = [console, "agreement", path, "--json", "-"]
        theirs_cmd = [sys.executable, "-c", ONE_OFF_SCRIPT, path]
        runs: dict[str, list[tuple[float, float, float]]] = {"ours": [], "one-off": []}
        alphas: dict[str, float] = {}
        for _ in range(repeat):
            for name, cmd in (("ours", ours_cmd), ("one-off", theirs_cmd)):
                wall, cpu, rss, out = run_process(cmd)
                runs[name].append((wall, cpu, rss))
                alphas[name] = (
                    float(json.loads(out)["krippendorff_alpha"]) if name == "ours" else float(out)
                )
        print(
            f"\n## whole processes, {n_items:,} items ({n:,} judgement rows), best of {repeat} "
            f"(load average {os.getloadavg()[0]:.1f})"
        )
        print(f"{'process':<44}  {'wall s':>7}  {'cpu s':>7}  {'peak GiB':>8}")
        best = {name: min(r, key=lambda x: x[0]) for name, r in runs.items()}
        for name, label in (
            ("ours", "emotions-data agreement FILE --json -"),
            ("one-off", "one-off script (factorize, bincount, krippendorff)"),
        ):
            wall, cpu, rss = best[name]
            print(f"{label:<44}  {wall:7.2f}  {cpu:7.2f}  {rss:8.2f}")
        o, t = best["ours"], best["one-off"]
        peak_o, peak_t = max(r[2] for r in runs["ours"]), max(r[2] for r in runs["one-off"])
        print(
            f"ours / one-off: wall {o[0] / t[0]:.2f}x (goal 1.5), cpu {o[1] / t[1]:.2f}x, "
            f"peak memory {peak_o / peak_t:.2f}x (goal 1.2); "
            f"alpha difference {abs(alphas['ours'] - alphas['one-off']):.1e}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[28_000])
    parser.add_argument("--bootstrap", type=int, default=1000, help="samples (0: skip)")
    parser.add_argument(
        "--bootstrap-max-items",
        type=int,
        default=100_000,
        help="run the bootstrap only up to this many items",
    )
    parser.add_argument("--repeat", type=int, default=5, help="runs of the fast measurements")
    parser.add_argument("--slow-repeat", type=int, default=1, help="runs of the slow ones")
    parser.add_argument(
        "--process-items",
        type=int,
        nargs="*",
        default=[],
        help="instead: whole-process runs at these numbers of items (about 6.5 judgements each)",
    )
    parser.add_argument("--process-repeat", type=int, default=3)
    parser.add_argument("--write-annotations", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write_annotations:
        print(write_annotations(int(args.write_annotations[0]), args.write_annotations[1]))
        return
    if args.process_items:
        for n in args.process_items:
            run_processes(n, args.process_repeat)
        return
    for n in args.sizes:
        n_boot = args.bootstrap if n <= args.bootstrap_max_items else 0
        run(n, args.repeat if n <= 100_000 else min(args.repeat, 3), n_boot, args.slow_repeat)


if __name__ == "__main__":
    main()
