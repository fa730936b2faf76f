"""The trainer, shaped like torchvision's video reference: ``fit`` runs the loops of ``epoch``.

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
    CacheClipDataset,
    SplitItems,
    collate,
    load_split,
    worker_init,
)
from emotions_data.baselines.avcpnet.distributed import (
    DistInfo,
    barrier,
    process_group,
)
from emotions_data.baselines.avcpnet.epoch import (
    evaluate,
    metric_summary,
    train_one_epoch,
)
from emotions_data.baselines.avcpnet.loss import MultiTaskLoss
from emotions_data.baselines.avcpnet.metrics import plot_confusion
from emotions_data.baselines.avcpnet.model import AVCPNet
from emotions_data.baselines.avcpnet.runlog import StepLog, provenance
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


def is_better(value: float, loss: float, best: dict[str, Any]) -> bool:
    """Selection on the val metric; a tie goes to the lower val loss (then the earlier epoch)."""
    return bool(value > best["value"] or (value == best["value"] and loss < best["loss"]))


def _three(values: list[float]) -> tuple[float, float, float]:
    return float(values[0]), float(values[1]), float(values[2])


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
    with process_group(device) as (info, dev):
        return _fit(
            info,
            dev,
            variant,
            root,
            config,
            out,
            resume=resume,
            visual_weights=visual_weights,
            seed=seed,
            stop_after_epochs=stop_after_epochs,
            progress=progress,
        )


def _fit(
    info: DistInfo,
    dev: torch.device,
    variant: str | Path,
    root: str | Path,
    config: BaselineConfig | str | Path | None,
    out: str | Path,
    *,
    resume: str | Path | None,
    visual_weights: str | Path | None,
    seed: int,
    stop_after_epochs: int | None,
    progress: bool,
) -> FitResult:
    if not isinstance(config, BaselineConfig):
        config = load_config(config)
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
    if info.distributed and dev.type == "cuda" and config.model.audio_norm == "batch":
        # batch statistics over the global batch, as on one GPU (same parameter names, so
        # the checkpoint still loads into a plain AVCPNet); gloo on CPU has no SyncBatchNorm
        synced: Any = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # type: ignore[no-untyped-call]
        raw_model = model = synced
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
    best: dict[str, Any] = {"epoch": 0, "value": -1.0, "loss": math.inf}
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
        best.setdefault("loss", math.inf)  # a checkpoint from before val loss was recorded
    origin = provenance([train_items.manifest])
    log: StepLog | None = None
    if info.main:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))
        log = StepLog(out, resume_step=start_epoch * steps_per_epoch)
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
            log=log,
            first_step=epoch * steps_per_epoch,
        )
        val_metrics, val_predictions = evaluate(
            run_model,
            val_loader,
            dev,
            tax,
            info=info,
            amp=opt.amp,
            progress=progress,
            criterion=criterion,
        )
        value = float(val_metrics[opt.select_metric])
        # None when every val sample failed to load: such an epoch never wins a tie
        val_loss = math.inf if val_metrics["loss"] is None else float(val_metrics["loss"])
        history.append({"train": train_stats, "val": val_metrics})
        # ties (frequent on a small val split) go to the lower val loss, not to the earliest
        # epoch, which kept an under-fitted first epoch as "best"
        improved = is_better(value, val_loss, best)
        if improved:
            best = {"epoch": epoch + 1, "value": value, "loss": val_loss}
        if log is not None:
            log.epoch(
                (epoch + 1) * steps_per_epoch,
                {
                    "epoch/train_loss": float(train_stats["loss"]),
                    "epoch/val_loss": val_loss,
                    **{f"epoch/val_{k}": float(val_metrics[k]) for k in ("accuracy", "uar")},
                    **{
                        f"epoch/val_uar_{head}": float(m["uar"])
                        for head, m in val_metrics["heads"].items()
                    },
                },
            )
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
            # which code and data made it: commit, package versions, manifest sha256
            "provenance": origin,
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
    if log is not None:
        log.close()
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
        "tie_break": "lower val loss",
        "best_epoch": best["epoch"],
        "best_val": history[int(best["epoch"]) - 1]["val"] if best["epoch"] else None,
        "epochs": [
            {
                "epoch": h["train"]["epoch"],
                "train_loss": h["train"]["loss"],
                "lr": h["train"]["lr"],
                "samples_per_s": h["train"]["samples_per_s"],
                "val_loss": h["val"].get("loss"),
                "val": metric_summary(h["val"]),
                "val_heads": {k: metric_summary(v) for k, v in h["val"].get("heads", {}).items()},
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
            "reasons": {
                k: v
                for h in history
                for part in (h["train"], h["val"])
                for k, v in part.get("skip_reasons", {}).items()
            },
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
    with process_group(device) as (info, dev):
        return _evaluate_checkpoint(
            info, dev, checkpoint, variant, root, split=split, out=out, progress=progress
        )


def _evaluate_checkpoint(
    info: DistInfo,
    dev: torch.device,
    checkpoint: str | Path,
    variant: str | Path | None,
    root: str | Path | None,
    *,
    split: str,
    out: str | Path | None,
    progress: bool,
) -> dict[str, Any]:
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
    criterion = MultiTaskLoss(
        tax, _three(config.loss.weights), config.loss.polarity_weight, config.loss.epce
    )
    metrics, predictions = evaluate(
        model,
        loader,
        dev,
        tax,
        info=info,
        amp=config.optim.amp,
        progress=progress,
        criterion=criterion.to(dev),
    )
    metrics["missing"] = items.missing + items.corrupt
    metrics["split"] = split
    metrics["checkpoint"] = str(checkpoint)
    if info.main:
        folder = Path(out) if out is not None else Path(checkpoint).parent
        folder.mkdir(parents=True, exist_ok=True)
        write_eval_outputs(folder, split, metrics, predictions)
    return metrics
