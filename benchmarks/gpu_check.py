"""The GPU check of the AV-CPNet baseline: one run, one JSON, under 8 minutes on one CUDA GPU.

Measures, in the paper setting (baselines/configs/avcpnet.yaml, 16 snippets x 8 frames at 112 px,
batch 8) with synthetic inputs unless said otherwise:

* ``train_step``: samples/s and peak memory of a training step in bf16 autocast (the trainer's
  setting) and in fp32, for AV-CPNet and for the visual branch alone; the audio + fusion
  overhead is the bf16 step time of the full model over the visual-only one, minus 1 (goal
  < 20 %);
* ``loader``: the real loader (prepare-shaped 32 x 8 x 128 px caches, ``data.workers``
  processes) feeding real training steps: the share of step time spent waiting for data;
* ``compile``: ``torch.compile`` time (first step) and the speed-up of the compiled step;
* ``ddp``: a 2-process NCCL DDP step with SyncBatchNorm (only when two GPUs exist);
* ``training``: ``baseline train`` (``fit``) with tiny.yaml for 5 epochs on generated,
  learnable caches, on the GPU: its val accuracy.

A section that fails records its error and the others still run; the JSON is also written to
``--out`` after every section, so a run cut short keeps what it measured. Without CUDA it says
so and exits 0 having measured nothing (the CPU figures are ``benchmarks/train_step.py``'s).

    .venv/bin/python benchmarks/gpu_check.py --out gpu_check.json
    .venv/bin/python benchmarks/gpu_check.py --skip compile --steps 5   # quicker
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from emotions_data.baselines.avcpnet import AVCPNet, load_config
from emotions_data.baselines.avcpnet.config import BaselineConfig
from emotions_data.baselines.avcpnet.loss import MultiTaskLoss
from emotions_data.baselines.avcpnet.model import VisualOnly

REPO = Path(__file__).resolve().parents[1]
PAPER = REPO / "baselines" / "configs" / "avcpnet.yaml"
TINY = REPO / "baselines" / "configs" / "tiny.yaml"
SECTIONS = ("train_step", "loader", "compile", "ddp", "training")
BUDGET_S = 450.0  # sections left when this is spent are skipped (the goal: under 8 minutes)


def synthetic_batch(config: BaselineConfig, batch: int, device: torch.device) -> tuple[Any, ...]:
    d = config.data
    bins = 32 if d.audio_feature == "mfcc" else 64
    gen = torch.Generator().manual_seed(0)
    video = torch.randint(
        0, 256, (batch, d.snippets, d.frames, d.size, d.size, 3), dtype=torch.uint8, generator=gen
    )
    audio = torch.randn(batch, d.snippets, bins, d.audio_chunk, generator=gen)
    target = torch.randint(0, 6, (batch,), generator=gen)
    return video.to(device), audio.to(device), target.to(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_rate(
    config: BaselineConfig,
    device: torch.device,
    *,
    full: bool = True,
    bf16: bool = True,
    batch: int = 8,
    steps: int = 10,
    warmup: int = 3,
    compiled: bool = False,
) -> dict[str, Any]:
    """Training steps (forward, backward, AdamW) on synthetic inputs: samples/s, peak memory;
    with ``compiled`` also the first step's time (the compilation)."""
    torch.manual_seed(0)
    model: torch.nn.Module = (AVCPNet if full else VisualOnly)(config.model).to(device).train()
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    run: Any = torch.compile(model) if compiled else model
    criterion = MultiTaskLoss().to(device)
    video, audio, target = synthetic_batch(config, batch, device)
    autocast: Any = (
        torch.autocast(device.type, dtype=torch.bfloat16)
        if bf16 and device.type == "cuda"
        else contextlib.nullcontext()
    )

    def step() -> None:
        with autocast:
            out = run(video, audio)
            loss = (
                criterion(out, target) if full else F.cross_entropy(out["logits"].float(), target)
            )
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    first = time.perf_counter()
    step()
    _sync(device)
    first_s = time.perf_counter() - first
    for _ in range(max(0, warmup - 1)):
        step()
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    elapsed = time.perf_counter() - started
    result: dict[str, Any] = {
        "samples_per_s": batch * steps / elapsed,
        "step_ms": 1000 * elapsed / steps,
        "parameters": params,
    }
    if device.type == "cuda":
        result["peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    if compiled:
        result["first_step_s"] = first_s
    return result


def train_step_section(config: BaselineConfig, device: torch.device, args: Any) -> dict[str, Any]:
    common = {"batch": args.batch, "steps": args.steps, "warmup": getattr(args, "warmup", 3)}
    runs = {
        "full_bf16": step_rate(config, device, bf16=True, **common),
        "full_fp32": step_rate(config, device, bf16=False, **common),
        "visual_bf16": step_rate(config, device, full=False, bf16=True, **common),
    }
    runs["audio_fusion_overhead"] = (
        runs["full_bf16"]["step_ms"] / runs["visual_bf16"]["step_ms"] - 1.0
    )
    runs["bf16_speedup_over_fp32"] = runs["full_fp32"]["step_ms"] / runs["full_bf16"]["step_ms"]
    return runs


def compile_section(config: BaselineConfig, device: torch.device, args: Any) -> dict[str, Any]:
    eager = step_rate(config, device, batch=args.batch, steps=args.steps)
    compiled = step_rate(config, device, batch=args.batch, steps=args.steps, compiled=True)
    return {
        "compile_s": compiled["first_step_s"],
        "eager_samples_per_s": eager["samples_per_s"],
        "compiled_samples_per_s": compiled["samples_per_s"],
        "speedup": compiled["samples_per_s"] / eager["samples_per_s"],
    }


def make_caches(root: Path, per_class: dict[str, int], side: int = 128) -> Path:
    """Learnable caches in prepare's default shape (32 x 8 frames at ``side`` px)."""
    from emotions_data.testing.caches import synthetic_dataset

    return synthetic_dataset(root, per_class=per_class, segments=32, frames=8, side=side)


def loader_wait(
    manifest: Path, root: Path, config: BaselineConfig, device: torch.device, *, batch: int
) -> dict[str, Any]:
    """One epoch of real training steps fed by the real loader: the share of the step time spent
    waiting for the next batch (the first step, worker start-up, left out)."""
    from emotions_data.baselines.avcpnet.data import CacheClipDataset, load_split
    from emotions_data.baselines.avcpnet.distributed import DistInfo
    from emotions_data.baselines.avcpnet.epoch import train_one_epoch
    from emotions_data.baselines.avcpnet.runlog import StepLog
    from emotions_data.baselines.avcpnet.schedule import warmup_cosine
    from emotions_data.baselines.avcpnet.training_run import make_loader

    items = load_split(manifest, "train", root)
    dataset = CacheClipDataset(items, root, config.data, train=True, seed=0)
    loader = make_loader(
        dataset,
        batch,
        train=True,
        info=DistInfo(),
        seed=0,
        workers=config.data.workers,
        device=device,
    )
    model = AVCPNet(config.model).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    sched = warmup_cosine(opt, total_steps=len(loader), warmup_steps=0, start=1.0, minimum=1.0)
    config.optim.accumulation = 1
    with tempfile.TemporaryDirectory() as tmp:
        log = StepLog(Path(tmp))
        stats = train_one_epoch(
            model, MultiTaskLoss().to(device), opt, sched, loader, device, 0, config, log=log
        )
        log.close()
        records = [
            json.loads(line) for line in (Path(tmp) / "steps.jsonl").read_text().splitlines()
        ]
    steady = records[1:] or records
    wait = sum(r["data_wait_s"] for r in steady)
    total = sum(r["step_s"] for r in steady)
    return {
        "workers": config.data.workers,
        "batch": batch,
        "steps": len(records),
        "data_wait_share": wait / max(total, 1e-9),
        "samples_per_s": sum(batch for _ in steady) / max(total, 1e-9),
        "epoch_samples_per_s": stats["samples_per_s"],
    }


def short_training(
    manifest: Path, root: Path, device: torch.device, out: Path, epochs: int = 5
) -> dict[str, Any]:
    from emotions_data.baselines.avcpnet.trainer import fit

    started = time.perf_counter()
    config = load_config(TINY, {"optim.epochs": epochs})
    result = fit(manifest, root, config, out, device=device.type, seed=0)
    return {
        "config": "tiny.yaml",
        "epochs": len(result.history),
        "best_epoch": result.best_epoch,
        "val_accuracy": result.val.get("accuracy"),
        "val_uar": result.val.get("uar"),
        "val_n": result.val.get("n"),
        "seconds": time.perf_counter() - started,
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ddp_worker(rank: int, port: int, batch: int, steps: int, out: str) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("nccl", rank=rank, world_size=2)
    device = torch.device("cuda", rank)
    torch.cuda.set_device(device)
    config = load_config(PAPER)
    torch.manual_seed(0)
    model: Any = torch.nn.SyncBatchNorm.convert_sync_batchnorm(AVCPNet(config.model).to(device))
    ddp = DDP(model, device_ids=[rank])
    opt = torch.optim.AdamW(ddp.parameters(), lr=1e-4)
    criterion = MultiTaskLoss().to(device)
    video, audio, target = synthetic_batch(config, batch, device)
    for i in range(steps + 2):
        if i == 2:
            torch.cuda.synchronize(device)
            started = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = criterion(ddp(video, audio), target)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - started
    # the replicas must agree after the all-reduced steps
    probe = next(iter(model.parameters())).detach().float().sum()
    sums = [torch.zeros_like(probe) for _ in range(2)]
    dist.all_gather(sums, probe)
    if rank == 0:
        Path(out).write_text(
            json.dumps(
                {
                    "world": 2,
                    "batch_per_gpu": batch,
                    "samples_per_s": 2 * batch * steps / elapsed,
                    "step_ms": 1000 * elapsed / steps,
                    "replicas_equal": bool(torch.equal(sums[0], sums[1])),
                    "sync_batchnorm": True,
                }
            )
        )
    dist.destroy_process_group()


def ddp_section(args: Any) -> dict[str, Any]:
    if torch.cuda.device_count() < 2:
        return {"skipped": f"needs two GPUs, found {torch.cuda.device_count()}"}
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ddp.json"
        mp.spawn(_ddp_worker, args=(_free_port(), 4, args.steps, str(out)), nprocs=2, join=True)
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def no_cuda_reason() -> str | None:
    if torch.cuda.is_available():
        return None
    built = torch.version.cuda or "none (a CPU-only build)"
    return (
        f"no CUDA device (torch {torch.__version__}, CUDA {built}): nothing measured; run this "
        "on a machine with a CUDA GPU (CPU figures: benchmarks/train_step.py)"
    )


def _write(report: dict[str, Any], out: Path | None) -> None:
    if out is not None:
        from emotions_data.schema.atomic import atomic_write_text

        atomic_write_text(out, json.dumps(report, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, help="also write the JSON here (after each section)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--skip", nargs="*", default=[], choices=SECTIONS)
    parser.add_argument("--budget-s", type=float, default=BUDGET_S)
    parser.add_argument(
        "--smoke-cpu",
        action="store_true",
        help="run the sections on the CPU with tiny.yaml: checks the script, measures nothing",
    )
    args = parser.parse_args(argv)
    reason = None if args.smoke_cpu else no_cuda_reason()
    if reason is not None:
        print(f"gpu_check: {reason}", file=sys.stderr)
        print(json.dumps({"ran": False, "reason": reason}))
        return 0
    started = time.perf_counter()
    device = torch.device("cpu") if args.smoke_cpu else torch.device("cuda", 0)
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32
    setting = TINY if args.smoke_cpu else PAPER
    workers = min(8, os.cpu_count() or 1)
    config = load_config(setting, {"data.workers": workers})
    report: dict[str, Any] = {
        "ran": True,
        "device": "cpu (smoke check)" if args.smoke_cpu else torch.cuda.get_device_name(device),
        "gpus": torch.cuda.device_count(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "setting": setting.name,
        "batch": args.batch,
    }
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        data: dict[str, Path] = {}

        def caches() -> Path:
            if "manifest" not in data:
                t0 = time.perf_counter()
                per_class = {"train": 1, "val": 1} if args.smoke_cpu else {"train": 8, "val": 2}
                data["manifest"] = make_caches(Path(tmp) / "data", per_class)
                report["caches_s"] = time.perf_counter() - t0
            return data["manifest"]

        root = Path(tmp) / "data"
        sections: dict[str, Callable[[], dict[str, Any]]] = {
            "train_step": lambda: train_step_section(config, device, args),
            "loader": lambda: loader_wait(
                caches(),
                root,
                load_config(setting, {"data.workers": workers}),
                device,
                batch=args.batch,
            ),
            "training": lambda: short_training(
                caches(), root, device, Path(tmp) / "run", epochs=1 if args.smoke_cpu else 5
            ),
            "compile": lambda: compile_section(config, device, args),
            "ddp": lambda: ddp_section(args),
        }
        for name, run in sections.items():
            if name in args.skip:
                report[name] = {"skipped": "--skip"}
                continue
            if time.perf_counter() - started > args.budget_s:
                report[name] = {"skipped": f"time budget {args.budget_s:.0f} s spent"}
                continue
            t0 = time.perf_counter()
            try:
                report[name] = run()
            except Exception as exc:  # one failed section must not lose the others
                report[name] = {
                    "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[
                        :500
                    ],
                    "where": traceback.format_exc().splitlines()[-3:],
                }
            report[name]["section_s"] = time.perf_counter() - t0
            if device.type == "cuda":
                torch.cuda.empty_cache()
            _write(report, args.out)
    report["total_s"] = time.perf_counter() - started
    _write(report, args.out)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
