"""The trainer, shaped like torchvision's video reference: ``train_one_epoch``, ``evaluate``, ``fit``.

``batch_size`` is the global micro-batch: under ``torchrun`` each of the W processes takes
``batch_size / W`` samples of the same seeded permutation (DistributedSampler), and DDP averages
the gradients, so a DDP run follows the single-process one. Every random draw of the data
depends on (seed, epoch, index) only, and checkpoints hold every RNG state, so ``--resume``
continues exactly.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler

from emotions_data.baselines.avcpnet.checkpoint import (
    load_checkpoint,
    restore_rng,
    save_checkpoint,
)
from emotions_data.baselines.avcpnet.config import BaselineConfig, load_config
from emotions_data.baselines.avcpnet.data import (
    Batch,
    CacheClipDataset,
    SplitItems,
    collate,
    load_split,
    photometric,
    worker_init,
)
from emotions_data.baselines.avcpnet.distributed import (
    DistInfo,
    all_gather_objects,
    all_reduce_sum,
    barrier,
    init_distributed,
)
from emotions_data.baselines.avcpnet.loss import MultiTaskLoss
from emotions_data.baselines.avcpnet.metrics import classification_metrics, plot_confusion
from emotions_data.baselines.avcpnet.model import AVCPNet
from emotions_data.baselines.avcpnet.schedule import warmup_cosine
from emotions_data.baselines.avcpnet.weights import load_visual_weights
from emotions_data.schema.atomic import atomic_write_text
from emotions_data.schema.errors import ConfigError
from emotions_data.schema.taxonomy import Taxonomy


@dataclass
class FitResult:
    run_dir: Path
    best_checkpoint: Path
    best_epoch: int
    select_metric: str
    val: dict[str, Any]
    history: list[dict[str, Any]]
    weights: str
    skipped: dict[str, list[str]] = field(default_factory=dict)
    world_size: int = 1


def build_model(
    config: BaselineConfig, taxonomy: Taxonomy, visual_weights: str | Path | None = None
) -> tuple[AVCPNet, str]:
    model = AVCPNet(
        config.model,
        num_classes=len(taxonomy.classes),
        num_polarities=max(1, len(taxonomy.polarities)),
    )
    if visual_weights is None:
        return model, "visual branch: random initialisation (no --visual-weights given)"
    return model, "visual branch: " + load_visual_weights(model.visual.swin, visual_weights)


def _autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def make_loader(
    dataset: CacheClipDataset,
    batch_size: int,
    *,
    train: bool,
    info: DistInfo,
    seed: int,
    workers: int,
    device: torch.device,
) -> DataLoader[Any]:
    if batch_size % info.world:
        raise ConfigError(
            f"optim.batch_size {batch_size} must be a multiple of the {info.world} processes"
        )
    sampler: DistributedSampler[Any] = DistributedSampler(
        dataset, num_replicas=info.world, rank=info.rank, shuffle=train, seed=seed
    )
    return DataLoader(
        dataset,
        batch_size=batch_size // info.world,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate,
        worker_init_fn=worker_init,
        pin_memory=device.type == "cuda",
        # workers are re-forked each epoch so they see the dataset's new epoch (augmentation
        # draws depend on it); persistent workers would keep epoch 0's copy
        persistent_workers=False,
    )


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="batch", disable=not enabled, leave=False)


def train_one_epoch(
    model: nn.Module,
    criterion: MultiTaskLoss,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    loader: DataLoader[Any],
    device: torch.device,
    epoch: int,
    config: BaselineConfig,
    *,
    info: DistInfo | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """One pass over the training loader with gradient accumulation; returns loss and throughput."""
    info = info or DistInfo()
    opt = config.optim
    model.train()
    sampler = loader.sampler
    if isinstance(sampler, DistributedSampler):
        sampler.set_epoch(epoch)
    dataset = loader.dataset
    if isinstance(dataset, CacheClipDataset):
        dataset.set_epoch(epoch)
    n_micro = len(loader)
    loss_sum, seen, skipped = 0.0, 0, set()
    last_good: Batch | None = None
    started = time.perf_counter()
    bar = _progress(n_micro, f"epoch {epoch + 1} train", progress and info.main)
    optimizer.zero_grad(set_to_none=True)
    for i, batch in enumerate(loader):
        assert isinstance(batch, Batch)
        skipped.update(batch.skipped)
        group_start = (i // opt.accumulation) * opt.accumulation
        group_size = min(opt.accumulation, n_micro - group_start)
        last_of_group = i == group_start + group_size - 1
        weight = 1.0
        if len(batch):
            last_good = batch
        elif info.distributed and last_good is not None:
            # every sample of this rank's micro-batch failed to load: a zero-weighted pass keeps
            # the ranks' gradient all-reduces in step (a rank that skipped would hang the rest)
            batch, weight = last_good, 0.0
        if len(batch):
            video = photometric(batch.video.to(device, non_blocking=True), batch.aug.to(device))
            audio = batch.audio.to(device, non_blocking=True)
            target = batch.label.to(device, non_blocking=True)
            sync: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
            if info.distributed and not last_of_group and isinstance(model, DDP):
                sync = model.no_sync()  # accumulate locally; all-reduce once per step
            with sync:
                with _autocast(device, opt.amp):
                    loss = criterion(model(video, audio), target)
                (loss * weight / group_size).backward()
            if weight:
                loss_sum += float(loss.detach()) * len(batch)
                seen += len(batch)
        if last_of_group:
            if opt.clip_grad_norm > 0:
                nn.utils.clip_grad_norm_(model.parameters(), opt.clip_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        elapsed = time.perf_counter() - started
        bar.set_postfix(
            loss=f"{loss_sum / max(seen, 1):.4f}",
            lr=f"{optimizer.param_groups[0]['lr']:.2e}",
            clips_s=f"{seen * info.world / max(elapsed, 1e-9):.1f}",
        )
        bar.update(1)
    bar.close()
    elapsed = time.perf_counter() - started
    loss_sum, seen_all = all_reduce_sum([loss_sum, float(seen)], info, device)
    skipped_all = sorted({v for part in all_gather_objects(sorted(skipped), info) for v in part})
    return {
        "epoch": epoch + 1,
        "loss": loss_sum / max(seen_all, 1.0),
        "samples": int(seen_all),
        "seconds": elapsed,
        "samples_per_s": seen_all / max(elapsed, 1e-9),
        "lr": optimizer.param_groups[0]["lr"],
        "skipped": skipped_all,
    }


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: DataLoader[Any],
    device: torch.device,
    taxonomy: Taxonomy,
    *,
    info: DistInfo | None = None,
    amp: bool = True,
    progress: bool = False,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Metrics over the whole loader (gathered across processes) and per-sample probabilities."""
    info = info or DistInfo()
    model.eval()
    rows: list[tuple[int, int, list[float]]] = []
    skipped: set[str] = set()
    bar = _progress(len(loader), "evaluate", progress and info.main)
    for batch in loader:
        assert isinstance(batch, Batch)
        skipped.update(batch.skipped)
        if len(batch):
            with _autocast(device, amp):
                out = model(batch.video.to(device), batch.audio.to(device))
            probs = torch.softmax(out["logits"].float(), dim=1).cpu()
            for idx, label, p in zip(
                batch.index.tolist(), batch.label.tolist(), probs.tolist(), strict=True
            ):
                rows.append((idx, label, p))
        bar.update(1)
    bar.close()
    # DistributedSampler pads the last shard with repeats: keep one row per index
    merged = {r[0]: r for part in all_gather_objects(rows, info) for r in part}
    skipped_all = sorted({v for part in all_gather_objects(sorted(skipped), info) for v in part})
    ordered = [merged[k] for k in sorted(merged)]
    target = [r[1] for r in ordered]
    pred = [int(np.argmax(r[2])) for r in ordered]
    metrics = classification_metrics(target, pred, taxonomy.classes)
    metrics["skipped"] = skipped_all
    dataset = loader.dataset
    ids = dataset.items.video_ids if isinstance(dataset, CacheClipDataset) else None
    predictions = [
        {
            "video_id": ids[r[0]] if ids else str(r[0]),
            "label": taxonomy.classes[r[1]],
            "pred": taxonomy.classes[p],
            **{f"p_{c}": float(v) for c, v in zip(taxonomy.classes, r[2], strict=True)},
        }
        for r, p in zip(ordered, pred, strict=True)
    ]
    return metrics, predictions


def _three(values: list[float]) -> tuple[float, float, float]:
    return float(values[0]), float(values[1]), float(values[2])


def _summary(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: metrics[k] for k in ("n", "accuracy", "uar", "macro_f1", "weighted_f1")}


def write_eval_outputs(
    out: Path, prefix: str, metrics: dict[str, Any], predictions: list[dict[str, Any]]
) -> None:
    """``<prefix>_metrics.json``, ``<prefix>_confusion.json/.png``, ``<prefix>_predictions.csv``."""
    import pandas as pd

    atomic_write_text(out / f"{prefix}_metrics.json", json.dumps(metrics, indent=1) + "\n")
    atomic_write_text(
        out / f"{prefix}_confusion.json", json.dumps(metrics["confusion_matrix"], indent=1) + "\n"
    )
    plot_confusion(
        metrics,
        out / f"{prefix}_confusion.png",
        title=f"{prefix}: " + (f"accuracy {metrics['accuracy']:.3f}, UAR {metrics['uar']:.3f}"),
    )
    atomic_write_text(
        out / f"{prefix}_predictions.csv", pd.DataFrame(predictions).to_csv(index=False)
    )


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    yield


def fit(
    variant: str | Path,
    root: str | Path,
    config: BaselineConfig | str | Path | None,
    out: str | Path,
    *,
    device: str | None = None,
    resume: str | Path | None = None,
    visual_weights: str | Path | None = None,
    seed: int = 0,
    stop_after_epochs: int | None = None,
    progress: bool = False,
) -> FitResult:
    """Train on the variant's train split, select on val, write checkpoints and metrics to ``out``.

    ``config`` is a ``BaselineConfig`` or a YAML path (None: the paper's setting).
    ``stop_after_epochs`` ends this run early (as a pre-empted job would); ``resume`` continues
    with the checkpoint's own config and seed.
    """
    if not isinstance(config, BaselineConfig):
        config = load_config(config)
    info, dev = init_distributed(device)
    out = Path(out)
    state: dict[str, Any] | None = None
    if resume is not None:
        state = load_checkpoint(resume)
        config = BaselineConfig.from_dict(state["config"], source=str(resume))
        seed = int(state["seed"])
    opt = config.optim
    train_items = load_split(variant, "train", root)
    val_items = load_split(variant, "val", root)
    tax = train_items.taxonomy
    with _seeded(seed):
        model, weights_note = build_model(config, tax, visual_weights if state is None else None)
    if state is not None:
        model.load_state_dict(state["model"])
        weights_note = f"resumed from {resume} (epoch {state['epoch']})"
    model.to(dev)
    raw_model = model
    run_model: nn.Module = model
    if opt.compile:
        run_model = torch.compile(model)  # type: ignore[assignment]
    if info.distributed:
        run_model = DDP(run_model, device_ids=[dev.index] if dev.type == "cuda" else None)
    criterion = MultiTaskLoss(
        tax, _three(config.loss.weights), config.loss.polarity_weight, config.loss.epce
    ).to(dev)
    optimizer = torch.optim.AdamW(raw_model.parameters(), lr=opt.lr, weight_decay=opt.weight_decay)
    workers = config.data.workers
    train_set = CacheClipDataset(train_items, root, config.data, train=True, seed=seed)
    val_set = CacheClipDataset(val_items, root, config.data, train=False, seed=seed)
    common = {"info": info, "seed": seed, "workers": workers, "device": dev}
    train_loader = make_loader(train_set, opt.batch_size, train=True, **common)  # type: ignore[arg-type]
    val_loader = make_loader(val_set, opt.batch_size, train=False, **common)  # type: ignore[arg-type]
    steps_per_epoch = math.ceil(len(train_loader) / opt.accumulation)
    scheduler = warmup_cosine(
        optimizer,
        total_steps=steps_per_epoch * opt.epochs,
        warmup_steps=round(opt.warmup_epochs * steps_per_epoch),
        start=opt.warmup_start_factor,
        minimum=opt.min_lr_factor,
    )
    scaler = torch.amp.GradScaler("cuda", enabled=False)  # bf16 needs no loss scaling
    start_epoch, history = 0, []
    best: dict[str, Any] = {"epoch": 0, "value": -1.0}
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        start_epoch, history, best = (
            int(state["epoch"]),
            list(state["history"]),
            dict(state["best"]),
        )
        restore_rng(state["rng"])
    if info.main:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))
    last_epoch = (
        opt.epochs
        if stop_after_epochs is None
        else min(opt.epochs, start_epoch + stop_after_epochs)
    )
    for epoch in range(start_epoch, last_epoch):
        train_stats = train_one_epoch(
            run_model,
            criterion,
            optimizer,
            scheduler,
            train_loader,
            dev,
            epoch,
            config,
            info=info,
            progress=progress,
        )
        val_metrics, val_predictions = evaluate(
            run_model, val_loader, dev, tax, info=info, amp=opt.amp, progress=progress
        )
        value = float(val_metrics[opt.select_metric])
        history.append({"train": train_stats, "val": val_metrics})
        improved = value > best["value"]
        if improved:
            best = {"epoch": epoch + 1, "value": value}
        ckpt = {
            "model": raw_model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
            "epoch": epoch + 1,
            "step": (epoch + 1) * steps_per_epoch,
            "config": config.to_dict(),
            "taxonomy": tax.to_dict(),
            "seed": seed,
            "history": history,
            "best": best,
            "world_size": info.world,
            # where the data was, so `evaluate --checkpoint CKPT --split test` needs no more
            "data": {
                "variant": str(train_items.manifest.resolve()),
                "root": str(Path(root).resolve()),
            },
        }
        if info.main:
            save_checkpoint(ckpt, out / "last.pt")
            if improved:
                save_checkpoint(ckpt, out / "best.pt")
                write_eval_outputs(out, "val", val_metrics, val_predictions)
            _write_metrics(out, history, best, opt.select_metric, train_items, val_items)
        barrier(info)
    best_epoch = int(best["epoch"])
    best_val = history[best_epoch - 1]["val"] if best_epoch else {}
    return FitResult(
        run_dir=out,
        best_checkpoint=out / "best.pt",
        best_epoch=best_epoch,
        select_metric=opt.select_metric,
        val=best_val,
        history=history,
        weights=weights_note,
        skipped={
            "train_missing": train_items.missing,
            "val_missing": val_items.missing,
            "train_corrupt": sorted(
                {*train_items.corrupt, *(v for h in history for v in h["train"]["skipped"])}
            ),
            "val_corrupt": sorted(
                {*val_items.corrupt, *(v for h in history for v in h["val"]["skipped"])}
            ),
        },
        world_size=info.world,
    )


def _write_metrics(
    out: Path,
    history: list[dict[str, Any]],
    best: dict[str, Any],
    select_metric: str,
    train_items: SplitItems,
    val_items: SplitItems,
) -> None:
    doc = {
        "select_metric": select_metric,
        "selected_on": "val",
        "best_epoch": best["epoch"],
        "best_val": history[int(best["epoch"]) - 1]["val"] if best["epoch"] else None,
        "epochs": [
            {
                "epoch": h["train"]["epoch"],
                "train_loss": h["train"]["loss"],
                "lr": h["train"]["lr"],
                "samples_per_s": h["train"]["samples_per_s"],
                "val": _summary(h["val"]),
                "val_per_class_accuracy": h["val"]["per_class_accuracy"],
            }
            for h in history
        ],
        "skipped": {
            "train_missing_cache": train_items.missing,
            "val_missing_cache": val_items.missing,
            "corrupt_cache": sorted(
                {
                    *train_items.corrupt,
                    *val_items.corrupt,
                    *(v for h in history for v in h["train"]["skipped"] + h["val"]["skipped"]),
                }
            ),
        },
    }
    atomic_write_text(out / "metrics.json", json.dumps(doc, indent=1) + "\n")


def evaluate_checkpoint(
    checkpoint: str | Path,
    variant: str | Path | None = None,
    root: str | Path | None = None,
    *,
    split: str = "test",
    out: str | Path | None = None,
    device: str | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Evaluate a checkpoint on one split of a variant; write the outputs next to it or in ``out``.

    ``variant`` and ``root`` default to the ones the checkpoint was trained on.
    """
    info, dev = init_distributed(device)
    state = load_checkpoint(checkpoint)
    recorded = state.get("data") or {}
    variant = variant if variant is not None else recorded.get("variant")
    root = root if root is not None else recorded.get("root")
    if variant is None or root is None:
        raise ConfigError(f"{checkpoint}: no recorded variant/root; pass --variant and --root")
    config = BaselineConfig.from_dict(state["config"], source=str(checkpoint))
    tax = Taxonomy.from_dict(state["taxonomy"], source=str(checkpoint))
    items = load_split(variant, split, root)
    if items.taxonomy.classes != tax.classes:
        raise ConfigError(
            f"{items.manifest}: classes {list(items.taxonomy.classes)} differ from the checkpoint's {list(tax.classes)}"
        )
    model, _ = build_model(config, tax)
    model.load_state_dict(state["model"])
    model.to(dev)
    dataset = CacheClipDataset(items, root, config.data, train=False, seed=int(state["seed"]))
    loader = make_loader(
        dataset,
        config.optim.batch_size,
        train=False,
        info=info,
        seed=int(state["seed"]),
        workers=config.data.workers,
        device=dev,
    )
    metrics, predictions = evaluate(
        model, loader, dev, tax, info=info, amp=config.optim.amp, progress=progress
    )
    metrics["missing"] = items.missing + items.corrupt
    metrics["split"] = split
    metrics["checkpoint"] = str(checkpoint)
    if info.main:
        folder = Path(out) if out is not None else Path(checkpoint).parent
        folder.mkdir(parents=True, exist_ok=True)
        write_eval_outputs(folder, split, metrics, predictions)
    return metrics
