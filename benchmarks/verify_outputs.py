"""What verifying done outputs costs a re-run of ``prepare`` (docs/trust.md).

A done video is skipped only when its completion record matches (``ingest.outputs``). This
prepares ``--clips`` generated clips once with ``configs/prepare.yaml`` (32 x 8 cache frames,
about 13 MB of outputs a video), then times, side by side in one run:

* a re-run that trusts files whose size, mtime and ctime are unchanged (the default);
* a re-run that re-hashes every output (``prepare --verify``; also what the first run after
  copying a root costs, since a copy changes every ctime);
* the ``sha256sum`` command over the same output files (what a user would run by hand);
* the first prepare itself, for scale.

Wall and CPU seconds (this process and its children); the machine is shared, so compare the
ratios of one run.

    .venv/bin/python benchmarks/verify_outputs.py --clips 6 --workers 2
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from emotions_data.ingest.outputs import RECORD_FILE
from emotions_data.ingest.prepare import prepare
from emotions_data.schema.atomic import sha256_file
from emotions_data.schema.io import write_manifest
from emotions_data.testing.media import make_clip

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "prepare.yaml"


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    wall, cpu = time.perf_counter(), _cpu()
    out = fn()
    return time.perf_counter() - wall, _cpu() - cpu, out


def make_root(root: Path, n: int) -> None:
    rows = []
    for i in range(n):
        rel = f"media/bench/c{i}.mp4"
        clip = make_clip(
            root / rel, width=360, height=640, duration=6.0, fps=30, source="noise", noise_seed=i
        )
        clip_bytes = clip.stat().st_size
        rows.append(
            {
                "video_id": f"bench-{i}",
                "platform": "bench",
                "source_url": f"http://127.0.0.1/c{i}.mp4",
                "status": "ok",
                "media_path": rel,
                "sha256": sha256_file(clip),
                "bytes": clip_bytes,
            }
        )
    write_manifest(pd.DataFrame(rows), root / "videos.parquet", "videos")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        make_root(root, args.clips)
        run = dict(config=CONFIG, workers=args.workers, progress=False)
        first = timed(lambda: prepare(root, **run))
        quick = timed(lambda: prepare(root, **run))
        full = timed(lambda: prepare(root, verify=True, **run))
        files = [
            str(p)
            for p in sorted(root.rglob("*"))
            if p.is_file() and p.parent.name != "bench" and p.name != RECORD_FILE
            and p.suffix in (".mp4", ".wav", ".npy", ".json")
        ]  # fmt: skip
        outputs_mb = sum(Path(f).stat().st_size for f in files) / 2**20
        tool = timed(lambda: subprocess.run(["sha256sum", *files], capture_output=True, check=True))
    assert quick[2].processed == full[2].processed == 0, "a re-run redid work"
    print(
        f"{args.clips} videos, {outputs_mb:.1f} MB of outputs ({outputs_mb / args.clips:.1f} a video)"
    )
    print("                                   wall s    cpu s")
    for name, (wall, cpu, _) in (
        ("first prepare", first),
        ("re-run, unchanged files trusted", quick),
        ("re-run with --verify (re-hash)", full),
        ("sha256sum over the outputs", tool),
    ):
        print(f"{name:<34} {wall:7.2f}  {cpu:7.2f}")
    print(f"--verify / sha256sum wall: {full[0] / tool[0]:.2f}")
    print(
        f"re-run / first prepare wall: {quick[0] / first[0]:.3f}; --verify: {full[0] / first[0]:.3f}"
    )


if __name__ == "__main__":
    main()
