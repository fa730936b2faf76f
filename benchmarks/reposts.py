"""Repost detection: recall per platform edit, false groupings, CPU, and the dedup at scale.

Corpus (generated with real ffmpeg, ``emotions_data.testing.reposts``): ``--sources`` textured
sources (half portrait, half landscape), each reposted with the nine edits of issue 17 and
nine pairs of them, plus one look-alike per source (the same generator, another seed). No
upload dates, so the keep rule has to find the original from the pictures alone.

Both methods run as a real ``prepare`` (2 workers) in fresh processes on copies of one root:
this tree's, and the one at ``--baseline-ref`` (the method before, extracted with
``git archive``). For each it prints recall per edit (the repost is grouped with its
source), false groupings (a look-alike or another source's video in a family's group), how
often the source is the kept copy, and CPU seconds per video (children + self, getrusage)
next to a bare ``ffmpeg -i clip -f null -`` decode of the same clips.

Then the dedup step alone (index + alignment + groups) on synthetic per-second hashes of
``--scale`` videos (15 s each on average, 5 % of them reposts with 5-20 % of their bits
changed): wall and CPU seconds, candidate pairs, recall.

    .venv/bin/python benchmarks/reposts.py --sources 12 --scale 28000
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

import numpy as np
import pandas as pd

from emotions_data.ingest.framehash import N_VARIANTS, WORDS, VideoHashes
from emotions_data.ingest.reposts import connected_groups, find_reposts
from emotions_data.schema.atomic import sha256_file
from emotions_data.schema.io import write_manifest
from emotions_data.testing.reposts import PAIRS, TRANSFORMS, make_repost, make_source

REPO = Path(__file__).resolve().parent.parent


def cpu_s() -> float:
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def make_corpus(
    folder: Path, n: int, width: int, height: int, duration: float
) -> list[dict[str, str]]:
    """Rows (name, family, edit, path) of the sources, reposts and look-alikes."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for s in range(n):
        w, h = (width, height) if s % 2 == 0 else (height, width)
        src = folder / f"s{s:02d}.mp4"
        if not src.exists():
            make_source(src, 100 + s, width=w, height=h, duration=duration)
        rows.append({"name": src.stem, "family": src.stem, "edit": "source", "path": str(src)})
        look = folder / f"look{s:02d}.mp4"
        if not look.exists():
            make_source(look, 500 + s, width=w, height=h, duration=duration)
        rows.append(
            {"name": look.stem, "family": look.stem, "edit": "look-alike", "path": str(look)}
        )
        for edits in [*[(t,) for t in TRANSFORMS], *PAIRS]:
            label = "+".join(edits)
            dst = folder / f"s{s:02d}-{label.replace('+', '_')}.mp4"
            if not dst.exists():
                make_repost(src, dst, edits, index=s // 2)
            rows.append({"name": dst.stem, "family": src.stem, "edit": label, "path": str(dst)})
    return rows


def make_root(rows: list[dict[str, str]], root: Path) -> None:
    media = root / "media" / "bench"
    media.mkdir(parents=True, exist_ok=True)
    records = []
    for r in rows:
        src = Path(r["path"])
        os.link(src, media / src.name)
        records.append(
            {
                "video_id": r["name"],
                "platform": "bench",
                "source_url": f"file://{src.name}",
                "status": "ok",
                "media_path": f"media/bench/{src.name}",
                "sha256": sha256_file(src),
                "bytes": src.stat().st_size,
            }
        )
    write_manifest(pd.DataFrame(records), root / "videos.parquet", "videos")


def run_prepare(root: Path, code: Path) -> float:
    """CPU seconds of a ``prepare`` (2 workers) in a fresh process importing ``code``."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    script = "import sys; from emotions_data.ingest.prepare import prepare; prepare(sys.argv[1], workers=2, progress=False)"
    before = cpu_s()
    # cwd: the code folder, so that the -c script imports it (not the repository it runs from)
    subprocess.run([sys.executable, "-c", script, str(root)], env=env, check=True, cwd=code)
    return cpu_s() - before


def bare_decode(rows: list[dict[str, str]]) -> float:
    before = cpu_s()
    for r in rows:
        args = ["ffmpeg", "-v", "error", "-threads", "1", "-i", r["path"], "-f", "null", "-"]
        subprocess.run(args, check=True)
    return cpu_s() - before


def scores(rows: list[dict[str, str]], root: Path) -> tuple[dict[str, tuple[int, int]], int, int]:
    """(grouped/total per edit, false groupings, families whose source was kept)."""
    df = pd.read_parquet(root / "videos.parquet").set_index("video_id")
    kept_of = {
        v: (df.loc[v, "dup_of"] if df.loc[v, "status"] == "duplicate" else v) for v in df.index
    }
    per_edit: dict[str, tuple[int, int]] = {}
    false = 0
    kept_source = 0
    for r in rows:
        name, family, edit = r["name"], r["family"], r["edit"]
        if edit == "source":
            kept_source += kept_of[name] == name
            continue
        if edit == "look-alike":
            # grouped with anything at all is a false grouping
            false += kept_of[name] != name or any(kept_of[v] == name for v in df.index if v != name)
            continue
        same = kept_of[name] == kept_of[family]
        ok, total = per_edit.get(edit, (0, 0))
        per_edit[edit] = (ok + same, total + 1)
        # grouped with another family's source is false too
        false += not same and kept_of[name] != name
    return per_edit, false, kept_source


def synthetic_hashes(
    n: int, rng: np.random.Generator
) -> tuple[list[VideoHashes], set[tuple[int, int]]]:
    videos: list[VideoHashes] = []
    truth: set[tuple[int, int]] = set()
    n_reposts = n // 20
    for _ in range(n - n_reposts):
        length = int(rng.integers(10, 51))  # 5-25 s at 2 a second
        words = rng.integers(0, 2**63, size=(length, N_VARIANTS, WORDS), dtype=np.uint64)
        videos.append(_wrap(words))
    for _ in range(n_reposts):
        src = int(rng.integers(0, n - n_reposts))
        words = videos[src].hashes.copy()
        flips = rng.random(size=(*words.shape, 64)) < rng.uniform(0.05, 0.2)
        masks = (flips * (np.uint64(1) << np.arange(64, dtype=np.uint64))).sum(
            axis=-1, dtype=np.uint64
        )
        truth.add((src, len(videos)))
        videos.append(_wrap(words ^ masks))
    return videos, truth


def _wrap(words: np.ndarray) -> VideoHashes:
    n = len(words)
    return VideoHashes(
        words,
        np.ones(n, bool),
        np.zeros(n, bool),
        np.zeros((n, 2), np.float32),
        np.full(n, 12.0, np.float32),
        2.0,
        1.0,
        0.0,
    )


def scale_run(n: int) -> None:
    rng = np.random.default_rng(0)
    videos, truth = synthetic_hashes(n, rng)
    t, c = time.perf_counter(), cpu_s()
    matches = find_reposts(videos)
    groups = connected_groups(len(videos), [(m.a, m.b) for m in matches])
    wall, cpu = time.perf_counter() - t, cpu_s() - c
    found = {(m.a, m.b) for m in matches}
    family = {b: a for a, b in truth}  # two reposts of one source rightly match each other
    false = sum(family.get(a, a) != family.get(b, b) for a, b in found)
    samples = sum(v.n for v in videos)
    print(
        f"dedup of {n} videos ({samples} samples): {wall:.1f} s wall, {cpu:.1f} s CPU; "
        f"{len(groups)} groups, recall {len(found & truth) / len(truth):.3f}, "
        f"false pairs {false} (goal at 28,000: under 60 s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sources", type=int, default=12)
    parser.add_argument("--width", type=int, default=360)
    parser.add_argument("--height", type=int, default=640)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--baseline-ref", default="42837fa", help="git ref of the method before")
    parser.add_argument("--scale", type=int, nargs="*", default=[28_000])
    parser.add_argument("--work", type=Path, help="Keep the generated clips here between runs.")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-reposts-"))
    t = time.perf_counter()
    rows = make_corpus(work / "clips", args.sources, args.width, args.height, args.duration)
    print(
        f"{len(rows)} clips {args.width}x{args.height} {args.duration:g} s ready ({time.perf_counter() - t:.0f} s)"
    )

    old_code = work / "baseline-code"
    shutil.rmtree(old_code, ignore_errors=True)
    old_code.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", args.baseline_ref],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(old_code, filter="data")
    results = {}
    for label, code in (("before", old_code), ("now", REPO)):
        root = work / f"root-{label}"
        shutil.rmtree(root, ignore_errors=True)
        make_root(rows, root)
        cpu = run_prepare(root, code)
        results[label] = (*scores(rows, root), cpu)
    decode = bare_decode(rows)

    n = len(rows)
    families = args.sources
    print(f"\n| edit | before ({args.baseline_ref}) | now |\n|---|---|---|")
    for edit in [*TRANSFORMS, *("+".join(p) for p in PAIRS)]:
        cells = [f"{results[k][0][edit][0]}/{results[k][0][edit][1]}" for k in ("before", "now")]
        print(f"| {edit} | {cells[0]} | {cells[1]} |")
    for label, idx in (("false groupings", 1), ("source kept (families)", 2)):
        print(f"| {label} | {results['before'][idx]} | {results['now'][idx]} |")
    print(f"| families | {families} | {families} |")
    print(
        f"\nCPU per video: bare decode {decode / n:.2f} s; prepare before {results['before'][3] / n:.2f} s "
        f"({results['before'][3] / decode:.2f}x decode); prepare now {results['now'][3] / n:.2f} s "
        f"({results['now'][3] / decode:.2f}x decode; {results['now'][3] / results['before'][3]:.2f}x before, goal <= 1.15)"
    )
    for size in args.scale:
        scale_run(size)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
