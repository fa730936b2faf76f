"""AV-CPNet training-step throughput and peak memory, and what audio + fusion cost on top of
the visual branch alone (the goal: under 20 %).

Side by side in one run: the full model (visual + audio + cross-attention + sum fusion, three
heads, EP-CE) against ``VisualOnly`` (the same Swin3d branch with a linear head and plain
cross-entropy), the model a user would otherwise train. Synthetic inputs, so only the model is
measured. On CUDA it uses bf16 autocast (the trainer's setting); on the CPU run it with
``--config baselines/configs/tiny.yaml`` as a smoke check only.

    .venv/bin/python benchmarks/train_step.py --device cuda --batch 8
    .venv/bin/python benchmarks/train_step.py --device cpu --config baselines/configs/tiny.yaml
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import time
from typing import Any

import torch
import torch.nn.functional as F

from emotions_data.baselines.avcpnet import AVCPNet, EPCELoss, load_config
from emotions_data.baselines.avcpnet.loss import MultiTaskLoss
from emotions_data.baselines.avcpnet.model import VisualOnly


def measure(
    model: torch.nn.Module, full: bool, args: argparse.Namespace, data_cfg: Any
) -> dict[str, float]:
    device = torch.device(args.device)
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    s, f, size = data_cfg.snippets, data_cfg.frames, data_cfg.size
    bins = 32 if data_cfg.audio_feature == "mfcc" else 64
    video = torch.randint(
        0, 256, (args.batch, s, f, size, size, 3), dtype=torch.uint8, device=device
    )
    audio = torch.randn(args.batch, s, bins, data_cfg.audio_chunk, device=device)
    target = torch.randint(0, 6, (args.batch,), device=device)
    criterion = MultiTaskLoss().to(device) if full else None
    amp = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if device.type == "cuda"
        else contextlib.nullcontext()
    )

    def step() -> None:
        with amp:
            out = model(video, audio)
            if criterion is not None:
                loss = criterion(out, target)
            else:
                loss = F.cross_entropy(out["logits"].float(), target)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started, cpu_started = time.perf_counter(), cpu_seconds()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_started
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    return {
        "step_s": elapsed / args.steps,
        "cpu_s_per_step": cpu / args.steps,
        "samples_per_s": args.batch * args.steps / elapsed,
        "peak_gib": peak,
        "parameters": parameter_count(model),
    }


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its children (a loaded machine's wall
    time says little; the CPU time beside it says how much work a step was)."""
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", help="baseline YAML (default: the paper's setting)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    config = load_config(args.config)
    torch.manual_seed(0)
    EPCELoss()  # the loss needs the taxonomy; fail early if it is broken
    full = measure(AVCPNet(config.model), True, args, config.data)
    visual = measure(VisualOnly(config.model), False, args, config.data)
    overhead = full["step_s"] / visual["step_s"] - 1.0
    device_name = (
        torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu (smoke check only)"
    )
    result = {
        "device": device_name,
        "config": args.config or "paper (avcpnet defaults)",
        "batch": args.batch,
        "full": full,
        "visual_only": visual,
        "audio_and_fusion_overhead": overhead,
    }
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"device {device_name}, config {result['config']}, batch {args.batch}")
    for name, r in (("AV-CPNet (full)", full), ("visual only", visual)):
        print(
            f"  {name:16s} {r['samples_per_s']:8.3f} samples/s  step {r['step_s'] * 1000:8.1f} ms"
            f" (CPU {r['cpu_s_per_step']:.1f} s)  peak {r['peak_gib']:.2f} GiB"
            f"  {r['parameters']:,} parameters"
        )
    print(f"  audio + fusion cost on top of visual only: {overhead * 100:+.1f} % (goal < 20 %)")


if __name__ == "__main__":
    main()
