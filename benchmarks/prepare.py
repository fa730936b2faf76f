"""CPU and wall time of ``emotions-data prepare`` next to the bare ffprobe + ffmpeg commands.

Both sides get the same generated portrait clips (720x1280, 30 fps, 15 s, h264 + aac; a moving
test card blended with seeded moving gradients, so no two are reposts of each other) and the
same parallelism (``--workers`` processes, one codec thread each, decoder included):

* bare tools: per clip ``ffprobe`` (streams + format as JSON), then one ``ffmpeg`` that
  transcodes to short side 360, 15 fps, x264 veryfast crf 23 + aac, and extracts a 16 kHz mono
  WAV: only the probe, the transcode and the audio extraction;
* prepare: the ``emotions-data prepare`` command as a user runs it, a fresh process (start-up
  and reading the manifest included) doing all of it: probe, filters, sha256, repost hashes,
  normalise, audio, the training cache of 32 x 8 frames at 128 px and log-mel/MFCC features,
  completion records, the manifest.

CPU seconds are ``getrusage`` of the waited-for children (the ffmpeg processes; the prepare
process with its pool workers and their ffmpeg runs), over ``--rounds`` interleaved rounds
(bare, then prepare), with the ratios (goals: CPU at most 1.10x the bare tools', throughput
at least 0.9 of theirs). A second, idempotent ``prepare`` process on the prepared root gives
the one-off cost of a run (start-up, imports, reading and checking the manifest and the
completion records); the "per video" ratio leaves it out, as a run of thousands of videos
does. ``--executor ray`` also runs prepare in this process on a local Ray instance with the
same number of CPUs (started before the clock starts, as a cluster would be) and prints its
ratio to the local pool in this process (goal: at least 0.85).

``--profile`` then runs one worker alone over the clips and prints, per video, prepare's own
CPU per step and its ffmpeg's next to the bare tools' (where the difference goes).

    .venv/bin/python benchmarks/prepare.py --clips 12 --workers 2 --rounds 3 [--profile]
    [--executor ray]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from subprocess import DEVNULL

import pandas as pd

from emotions_data.ingest.prepare import PrepareConfig, prepare
from emotions_data.schema.atomic import sha256_file
from emotions_data.schema.io import write_manifest


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
        path = folder / f"clip{i}-{duration:g}s.mp4"
        if not path.exists():
            # the test card alone would make every clip a repost of the others: a seeded
            # gradient field over it makes each a video of its own; the tone differs too
            size, rate = "720x1280", 30
            video = f"testsrc2=size={size}:rate={rate}:duration={duration}"
            gradients = f"gradients=s={size}:r={rate}:d={duration}:seed={i + 1}:speed=0.03:n=3"
            args = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
            args += ["-f", "lavfi", "-i", video, "-f", "lavfi", "-i", gradients]
            args += ["-f", "lavfi", "-i", f"sine=frequency={300 + 50 * i}:duration={duration}"]
            args += ["-filter_complex", "[0:v][1:v]blend=all_mode=average,format=yuv420p[v]"]
            args += ["-map", "[v]", "-map", "2:a", "-c:v", "libx264", "-preset", "veryfast"]
            args += ["-crf", "23", "-c:a", "aac", "-shortest", str(path)]
            subprocess.run(args, check=True)
        clips.append(path)
    return clips


def bare_one(src: Path, out: Path, conf: PrepareConfig) -> None:
    probe = ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(src)]
    subprocess.run(probe, capture_output=True, check=True)
    threads = str(conf.threads)
    args = ["ffmpeg", "-hide_banner", "-nostdin", "-y", "-loglevel", "error"]
    args += ["-filter_complex_threads", threads, "-filter_threads", threads]
    args += ["-threads", threads, "-i", str(src)]  # the decoder's threads, as prepare's
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


def prepare_process(root: Path, workers: int, summary: Path) -> dict[str, object]:
    """``emotions-data prepare`` as a user runs it (a fresh process); its JSON summary."""
    cli = Path(sys.executable).with_name("emotions-data")
    args = [str(cli), "prepare", "--root", str(root), "--workers", str(workers)]
    subprocess.run([*args, "--no-progress", "--json", str(summary)], check=True, stdout=DEVNULL)
    result: dict[str, object] = json.loads(summary.read_text())
    return result


#: prepare_one's steps whose own CPU ``--profile`` reports (names in ingest.prepare).
PROFILED = ("probe", "run_pass", "_cache_arrays", "hash_video", "write_cache", "write_record")


def _child_cpu_s() -> float:
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return kids.ru_utime + kids.ru_stime


def profile_worker(clips: list[Path], root: Path, conf: PrepareConfig) -> dict[str, float]:
    """CPU ms per video of one pool-like worker (forked, set up as the pool does; its first
    video, which pays one-off costs, left out): prepare's own Python per step, and its ffmpeg
    and ffprobe children. Runs ``prepare_one`` on the clips one after another."""
    import os

    import emotions_data.ingest.prepare as steps
    from emotions_data.ingest.executors import _init_worker

    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker: time each step with process_time (this process only)
        os.close(read_fd)
        _init_worker(os.getppid())
        spent = dict.fromkeys(PROFILED, 0.0)

        def timed(name: str) -> None:
            step = getattr(steps, name)

            def run(*a: object, **k: object) -> object:
                t = time.process_time()
                try:
                    return step(*a, **k)
                finally:
                    spent[name] += time.process_time() - t

            setattr(steps, name, run)

        for name in PROFILED:
            timed(name)
        own = tools = 0.0
        for i, clip in enumerate(clips):
            if i == 1:
                spent = dict.fromkeys(PROFILED, 0.0)
            t, c = time.process_time(), _child_cpu_s()
            task = steps.PrepareTask(
                video_id=f"bench-{clip.stem}",
                root=str(root),
                media_path=f"media/bench/{clip.name}",
                config=conf,
            )
            assert steps.prepare_one(task).status == "ok"
            if i >= 1:
                own, tools = own + time.process_time() - t, tools + _child_cpu_s() - c
        n = len(clips) - 1
        found = {f"own: {k}": 1000 * v / n for k, v in spent.items()}
        found |= {"own: all": 1000 * own / n, "ffmpeg + ffprobe": 1000 * tools / n}
        os.write(write_fd, json.dumps(found).encode())
        os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        found = json.loads(pipe.read() or b"{}")
    os.waitpid(pid, 0)
    if not found:
        raise SystemExit("the profiled worker failed")
    return {k: float(v) for k, v in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--work", type=Path, help="Keep clips here between runs (default: temp).")
    parser.add_argument("--executor", choices=["local", "ray"], default="local")
    parser.add_argument("--rounds", type=int, default=2, help="Interleaved rounds (shared cores).")
    parser.add_argument("--json", type=Path, help="Also write the figures to this JSON file.")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="Then profile one worker: prepare's own CPU per step and its ffmpeg's, per video, "
        "next to the bare tools' (one process after another, all clips).",
    )
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-prepare-"))
    conf = PrepareConfig()
    t = time.perf_counter()
    clips = make_clips(work / "clips", args.clips, args.duration)
    print(
        f"{len(clips)} clips 720x1280 30 fps {args.duration:g} s ready ({time.perf_counter() - t:.1f} s)"
    )

    bare_s = ours_s = bare_cpu = ours_cpu = 0.0
    root, summary_file = work / "root", work / "summary.json"
    for _ in range(args.rounds):
        shutil.rmtree(work / "bare", ignore_errors=True)
        c = cpu_s()
        bare_s += run_bare(clips, work / "bare", args.workers, conf)
        bare_cpu += cpu_s() - c
        shutil.rmtree(root, ignore_errors=True)
        make_root(clips, root)
        t, c = time.perf_counter(), cpu_s()
        summary = prepare_process(root, args.workers, summary_file)
        ours_s += time.perf_counter() - t
        ours_cpu += cpu_s() - c
        # distinct videos: every one is decoded and done, none is taken for a repost
        assert summary["by_status"] == {"ok": len(clips)}, summary
    t, c = time.perf_counter(), cpu_s()
    again = prepare_process(root, args.workers, summary_file)
    again_s, again_cpu = time.perf_counter() - t, cpu_s() - c
    assert again["processed"] == 0 and not again["changed"], again

    local_s = ray_s = None
    if args.executor == "ray":
        from emotions_data.ingest.executor_ray import ensure_ray

        in_process = work / "in-process-root"
        shutil.rmtree(in_process, ignore_errors=True)
        make_root(clips, in_process)
        t = time.perf_counter()
        prepare(in_process, config=conf, workers=args.workers, progress=False)
        local_s = time.perf_counter() - t
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
        f"{len(clips)} clips x {args.rounds} rounds; workers: {w} processes, codec threads per"
        f" process: {conf.threads}"
    )
    print(f"{'':38} {'wall s':>8} {'videos/s/core':>14} {'CPU s':>8} {'CPU s/video':>12}")
    print(
        f"{'bare ffprobe + ffmpeg':38} {bare_s:8.2f} {bare_rate:14.3f} {bare_cpu:8.2f}"
        f" {bare_cpu / n:12.3f}"
    )
    print(
        f"{'emotions-data prepare (all of it)':38} {ours_s:8.2f} {ours_rate:14.3f} {ours_cpu:8.2f}"
        f" {ours_cpu / n:12.3f}"
    )
    print(f"{'emotions-data prepare, nothing to do':38} {again_s:8.2f} {'':14} {again_cpu:8.2f}")
    per_video = (ours_cpu - args.rounds * again_cpu) / bare_cpu
    print(f"ratio prepare / bare tools: {ours_rate / bare_rate:.2f} (goal >= 0.9)")
    print(f"CPU prepare / bare tools, whole processes: {ours_cpu / bare_cpu:.3f}x (goal <= 1.10)")
    print(f"CPU prepare / bare tools, per video (one-off start-up left out): {per_video:.3f}x")
    profile: dict[str, float] = {}
    if args.profile and len(clips) > 1:
        shutil.rmtree(work / "bare", ignore_errors=True)
        c = cpu_s()
        run_bare(clips[1:], work / "bare", 1, conf)
        bare_ms = 1000 * (cpu_s() - c) / (len(clips) - 1)
        shutil.rmtree(root, ignore_errors=True)
        make_root(clips, root)
        profile = profile_worker(clips, root, conf) | {"bare ffmpeg + ffprobe": bare_ms}
        print(f"one worker, CPU ms per video ({len(clips) - 1} videos after its first):")
        for name, ms in sorted(profile.items(), key=lambda kv: -kv[1]):
            print(f"  {name:28} {ms:8.1f}")
    if args.json:
        figures = {
            "clips": len(clips),
            "rounds": args.rounds,
            "workers": w,
            "bare": {"wall_s": bare_s, "cpu_s": bare_cpu},
            "prepare": {"wall_s": ours_s, "cpu_s": ours_cpu},
            "prepare_nothing_to_do": {"wall_s": again_s, "cpu_s": again_cpu},
            "throughput_ratio": ours_rate / bare_rate,
            "cpu_ratio": ours_cpu / bare_cpu,
            "cpu_ratio_per_video": per_video,
            "profile_ms_per_video": profile,
        }
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    if local_s is not None and ray_s is not None:
        print(f"in this process: local pool {local_s:.2f} s, ray {ray_s:.2f} s")
        print(f"ratio ray / local pool: {local_s / ray_s:.2f} (goal >= 0.85)")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
