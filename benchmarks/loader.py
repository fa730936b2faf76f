"""Clips per second from the prepare cache, per loader worker, against the model's step time.

Side by side in one run:
  * ``cache``: our ``CacheClipDataset`` (memory-mapped cache, TSN sampling, augmentation);
  * ``torchcodec``: what a user would otherwise do, decode the S x F frames of each sample from
    the mp4 with torchcodec's ``VideoDecoder`` (seek + decode + the same crop/resize);
  * ``model``: training clips/s of one AV-CPNet step on the chosen device (the consumer).
Ratios above 1 for ``cache / model`` mean the loader is not the bottleneck.

    .venv/bin/python benchmarks/loader.py --clips 24 --workers 0 1 2
    .venv/bin/python benchmarks/loader.py --config baselines/configs/avcpnet.yaml --device cuda
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from emotions_data.baselines.avcpnet import AVCPNet, load_config
from emotions_data.baselines.avcpnet.config import DataConfig
from emotions_data.baselines.avcpnet.data import (
    CacheClipDataset,
    collate,
    load_split,
    photometric,
    spatial_transform,
    worker_init,
)
from emotions_data.baselines.avcpnet.loss import MultiTaskLoss
from emotions_data.ingest.prepare import PrepareConfig, build_cache_for_file
from emotions_data.schema import write_manifest
from emotions_data.schema.taxonomy import load_taxonomy
from emotions_data.testing.media import make_clip


def make_set(root: Path, n: int, segments: int, frames: int, duration: float) -> Path:
    tax = load_taxonomy()
    rows = []
    for i in range(n):
        video_id = f"v{i:03d}"
        clip = make_clip(
            root / "media" / f"{video_id}.mp4", width=288, height=512, duration=duration, fps=30
        )
        config = PrepareConfig(segments=segments, frames_per_segment=frames, cache_size=128)
        build_cache_for_file(clip, root / "cache" / video_id, video_id, config)
        rows.append(
            {"video_id": video_id, "label": tax.classes[i % 6], "split": "train", "fold": None}
        )
    return write_manifest(pd.DataFrame(rows), root / "variants" / "full.parquet", "split")


def cache_rate(dataset: CacheClipDataset, workers: int, epochs: int) -> float:
    """Steady-state clips/s: the clock starts at each epoch's first batch (worker start-up is
    paid once per epoch and is not what limits a long run)."""
    loader = DataLoader(
        dataset,
        batch_size=4,
        num_workers=workers,
        collate_fn=collate,
        worker_init_fn=worker_init,
        shuffle=True,
    )
    elapsed, seen = 0.0, 0
    for epoch in range(epochs):
        dataset.set_epoch(epoch)
        iterator = iter(loader)
        next(iterator)
        started = time.perf_counter()
        for batch in iterator:
            seen += len(batch)
        elapsed += time.perf_counter() - started
    return seen / max(elapsed, 1e-9)


def torchcodec_rate(root: Path, ids: list[str], cfg: DataConfig, epochs: int) -> float:
    from torchcodec.decoders import VideoDecoder

    rng = np.random.default_rng(0)
    started, seen = time.perf_counter(), 0
    for _ in range(epochs):
        for video_id in ids:
            decoder = VideoDecoder(str(root / "media" / f"{video_id}.mp4"), dimension_order="NHWC")
            n = decoder.metadata.num_frames or 1
            seg_len = n / cfg.snippets
            starts = (
                np.arange(cfg.snippets) * seg_len + rng.uniform(0, max(seg_len - cfg.frames, 0))
            ).astype(int)
            index = ((starts[:, None] + np.arange(cfg.frames)[None, :]) % n).reshape(-1)
            frames = decoder.get_frames_at(index.tolist()).data  # (S*F, H, W, 3)
            spatial_transform(frames, cfg.size, rng, cfg)  # rotation/brightness go to the device
            seen += 1
    return seen / (time.perf_counter() - started)


def model_rate(config_path: str | None, device: str, batch: int, steps: int) -> float:
    config = load_config(config_path)
    d = config.data
    dev = torch.device(device)
    model = AVCPNet(config.model).to(dev).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    crit = MultiTaskLoss().to(dev)
    bins = 32 if d.audio_feature == "mfcc" else 64
    video = torch.randint(
        0, 256, (batch, d.snippets, d.frames, d.size, d.size, 3), dtype=torch.uint8, device=dev
    )
    audio = torch.randn(batch, d.snippets, bins, d.audio_chunk, device=dev)
    target = torch.randint(0, 6, (batch,), device=dev)
    aug = torch.tensor([[5.0, 1.1]] * batch, device=dev)

    def step() -> None:
        ctx = (
            torch.autocast("cuda", dtype=torch.bfloat16)
            if dev.type == "cuda"
            else torch.autocast("cpu", enabled=False)
        )
        with ctx:
            # the device-side half of the augmentation is part of the consumer's step
            loss = crit(model(photometric(video, aug), audio), target)
        loss.backward()
        opt.step()
        opt.zero_grad()

    step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--config", default="baselines/configs/avcpnet.yaml", help="the data (and model) setting"
    )
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per generated clip")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--model-batch", type=int, default=2)
    parser.add_argument("--model-steps", type=int, default=2)
    args = parser.parse_args()
    config = load_config(args.config)
    cfg = config.data
    with tempfile.TemporaryDirectory(prefix="loader-bench-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        manifest = make_set(root, args.clips, cfg.snippets, cfg.frames + 4, args.duration)
        print(
            f"made {args.clips} clips of {args.duration:.0f} s and their caches in {time.perf_counter() - started:.1f} s"
        )
        items = load_split(manifest, "train", root)
        dataset = CacheClipDataset(items, root, cfg, train=True)
        codec = torchcodec_rate(root, items.video_ids, cfg, 1)
        model = model_rate(args.config, args.device, args.model_batch, args.model_steps)
        print(
            f"setting {args.config}: {cfg.snippets} x {cfg.frames} frames at {cfg.size} px, train augmentation"
        )
        print(f"  torchcodec decode from mp4 (1 process): {codec:8.1f} clips/s")
        print(f"  model train step on {args.device}:            {model:8.3f} clips/s")
        for workers in args.workers:
            rate = cache_rate(dataset, workers, args.epochs)
            procs = max(workers, 1)
            print(
                f"  cache loader, {workers} worker(s):        {rate:8.1f} clips/s"
                f" ({rate / procs:.1f} per worker); x{rate / codec:.1f} torchcodec, x{rate / model:.0f} the model"
            )


if __name__ == "__main__":
    main()
