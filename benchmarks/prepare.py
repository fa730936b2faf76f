"""Throughput of ``emotions-data prepare`` next to the bare ffprobe + ffmpeg command lines.

Both sides get the same generated portrait clips (720x1280, 30 fps, 15 s, h264 + aac) and the
same parallelism (``--workers`` processes, single-threaded codecs):

* bare tools: per clip ``ffprobe`` (streams + format as JSON), then one ``ffmpeg`` that
  transcodes to short side 360, 15 fps, x264 veryfast crf 23 + aac, and extracts a 16 kHz mono
  WAV: only the probe, the transcode and the audio extraction;
* prepare: all of it (probe, filters, sha256 + perceptual hash, normalise, audio, the training
  cache of 32 x 8 frames at 128 px and log-mel/MFCC features, the manifest).

Prints wall time, videos per second per core and CPU seconds (``getrusage`` of this process
and its children: the ffmpeg processes and prepare's pool workers) for both, over
``--rounds`` interleaved rounds (bare, then prepare, each round), with the ratios (goals:
throughput at least 0.9 of the bare tools', CPU at most 1.10x theirs), plus the time of a
second, idempotent prepare run. ``--executor ray`` also runs prepare on a local Ray
instance with the same number of CPUs (started before the clock starts, as a cluster would
be) and prints its ratio to the local pool (goal: at least 0.85).

    .venv/bin/python benchmarks/prepare.py --clips 4 --workers 2 --rounds 3 [--executor ray]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from emotions_data.ingest.prepare import PrepareConfig, prepare
from emotions_data.schema.atomic import sha256_file
from emotions_data.schema.io import write_manifest
from emotions_data.testing.media import make_clip


def cpu_s() -> float:
    """CPU seconds (user + system) of this process and its waited-for children."""
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def make_clips(folder: Path, n: int, duration: float) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    clips = []
    for i in range(n):
        path = folder / f"clip{i}.mp4"
        if not path.exists():
            # a moving test card; the tone differs so no two files are byte-identical
            make_clip(
                path,
                width=720,
                height=1280,
                duration=duration,
                fps=30,
                tone_hz=300.0 + 50 * i,
                crf=23,
            )
        clips.append(path)
    return clips


def bare_one(src: Path, out: Path, conf: PrepareConfig) -> None:
    probe = ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(src)]
    subprocess.run(probe, capture_output=True, check=True)
    threads = str(conf.threads)
    args = ["ffmpeg", "-hide_banner", "-nostdin", "-y", "-loglevel", "error"]
    args += ["-filter_complex_threads", threads, "-filter_threads", threads, "-i", str(src)]
    args += ["-vf", f"fps={conf.fps:g},scale={conf.short_side}:-2", "-c:v", conf.video_codec]
    args += [
        "-preset",
        conf.preset,
        "-crf",
        str(conf.crf),
        "-pix_fmt",
        "yuv420p",
        "-threads",
        threads,
    ]
    args += ["-c:a", conf.audio_codec, "-b:a", conf.audio_bitrate, str(out / f"{src.stem}.mp4")]
    args += ["-map", "0:a", "-ac", "1", "-ar", str(conf.sample_rate), "-c:a", "pcm_s16le"]
    args += [str(out / f"{src.stem}.wav")]
    subprocess.run(args, capture_output=True, check=True)


def run_bare(clips: list[Path], out: Path, workers: int, conf: PrepareConfig) -> float:
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda c: bare_one(c, out, conf), clips))
    return time.perf_counter() - started


def make_root(clips: list[Path], root: Path) -> Path:
    media = root / "media" / "bench"
    media.mkdir(parents=True, exist_ok=True)
    rows = []
    for clip in clips:
        shutil.copy(clip, media / clip.name)
        rows.append(
            {
                "video_id": f"bench-{clip.stem}",
                "platform": "bench",
                "source_url": f"file://{clip}",
                "status": "ok",
                "media_path": f"media/bench/{clip.name}",
                "sha256": sha256_file(clip),
                "bytes": clip.stat().st_size,
            }
        )
    return write_manifest(pd.DataFrame(rows), root / "videos.parquet", "videos")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--work", type=Path, help="Keep clips here between runs (default: temp).")
    parser.add_argument("--executor", choices=["local", "ray"], default="local")
    parser.add_argument("--rounds", type=int, default=3, help="Interleaved rounds (shared cores).")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-prepare-"))
    conf = PrepareConfig()
    t = time.perf_counter()
    clips = make_clips(work / "clips", args.clips, args.duration)
    print(
        f"{len(clips)} clips 720x1280 30 fps {args.duration:g} s ready ({time.perf_counter() - t:.1f} s)"
    )

    bare_s = ours_s = bare_cpu = ours_cpu = 0.0
    root = work / "root"
    for _ in range(args.rounds):
        shutil.rmtree(work / "bare", ignore_errors=True)
        c = cpu_s()
        bare_s += run_bare(clips, work / "bare", args.workers, conf)
        bare_cpu += cpu_s() - c
        shutil.rmtree(root, ignore_errors=True)
        make_root(clips, root)
        t, c = time.perf_counter(), cpu_s()
        summary = prepare(root, config=conf, workers=args.workers, progress=False)
        ours_s += time.perf_counter() - t
        ours_cpu += cpu_s() - c
        assert summary.by_status.get("ok", 0) + summary.by_status.get("duplicate", 0) == len(
            clips
        ), summary
    t = time.perf_counter()
    again = prepare(root, config=conf, workers=args.workers, progress=False)
    again_s = time.perf_counter() - t
    assert again.processed == 0 and not again.changed

    ray_s = None
    if args.executor == "ray":
        from emotions_data.ingest.executor_ray import ensure_ray

        t = time.perf_counter()
        ensure_ray(None, args.workers)
        print(f"local Ray instance started in {time.perf_counter() - t:.1f} s (not counted)")
        ray_root = work / "ray-root"
        shutil.rmtree(ray_root, ignore_errors=True)
        make_root(clips, ray_root)
        t = time.perf_counter()
        prepare(ray_root, config=conf, workers=args.workers, progress=False, executor="ray")
        ray_s = time.perf_counter() - t

    n, w = len(clips) * args.rounds, args.workers
    bare_rate, ours_rate = n / bare_s / w, n / ours_s / w
    print(
        f"workers: {w} processes, codec threads per process: {conf.threads}; {args.rounds} rounds"
    )
    print(f"{'':38} {'wall s':>8} {'videos/s/core':>14} {'CPU s':>8} {'CPU s/video':>12}")
    print(
        f"{'bare ffprobe + ffmpeg':38} {bare_s:8.2f} {bare_rate:14.3f} {bare_cpu:8.2f}"
        f" {bare_cpu / n:12.2f}"
    )
    print(
        f"{'emotions-data prepare (all of it)':38} {ours_s:8.2f} {ours_rate:14.3f} {ours_cpu:8.2f}"
        f" {ours_cpu / n:12.2f}"
    )
    if ray_s is not None:
        print(f"{'emotions-data prepare --executor ray':38} {ray_s:8.2f} {n / ray_s / w:14.3f}")
    print(f"ratio prepare / bare tools: {ours_rate / bare_rate:.2f} (goal >= 0.9)")
    print(f"CPU prepare / bare tools: {ours_cpu / bare_cpu:.2f}x (goal <= 1.10)")
    if ray_s is not None:
        print(f"ratio ray / local pool: {ours_s / ray_s:.2f} (goal >= 0.85)")
    print(f"second (idempotent) prepare run: {again_s:.2f} s, processed {again.processed}")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
