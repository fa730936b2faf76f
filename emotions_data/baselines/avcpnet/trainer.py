"""The trainer, shaped like torchvision's video reference: ``fit`` runs the loops of ``epoch``.

``batch_size`` is the global micro-batch: under ``torchrun`` each of the W processes takes
``batch_size / W`` samples of the same seeded permutation (DistributedSampler), and DDP averages
the gradients, so a DDP run follows the single-process one. Every random draw of the data
depends on (seed, epoch, index) only, and checkpoints hold every RNG state, so ``--resume``
continues exactly.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from emotions_data.baselines.avcpnet.checkpoint import (
    load_checkpoint,
    save_checkpoint,
)
from emotions_data.baselines.avcpnet.config import BaselineConfig
from emotions_data.baselines.avcpnet.data import (
    CacheClipDataset,
    SplitItems,
    load_split,
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
from emotions_data.baselines.avcpnet.metrics import plot_confusion
from emotions_data.baselines.avcpnet.runlog import StepLog, provenance
from emotions_data.baselines.avcpnet.training_run import (
    TrainingRun,
    build_criterion,
    build_model,
    build_training_run,
    make_loader,
    resolve_start,
)
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
    config, seed, state = resolve_start(config, resume, seed)
    run = build_training_run(
        info,
        dev,
        variant,
        root,
        config,
        seed=seed,
        state=state,
        resume=resume,
        visual_weights=visual_weights,
    )
    out = Path(out)
    origin = provenance([run.train_items.manifest])
    log: StepLog | None = None
    if info.main:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))
        log = StepLog(out, resume_step=run.start_epoch * run.steps_per_epoch)
    epochs = config.optim.epochs
    last_epoch = (
        epochs if stop_after_epochs is None else min(epochs, run.start_epoch + stop_after_epochs)
    )
    for epoch in range(run.start_epoch, last_epoch):
        _one_epoch(run, epoch, out, origin, log, progress)
    if log is not None:
        log.close()
    return _fit_result(run, out)


def _one_epoch(
    run: TrainingRun,
    epoch: int,
    out: Path,
    origin: dict[str, Any],
    log: StepLog | None,
    progress: bool,
) -> None:
    """Train, evaluate on val, log, checkpoint (last.pt; best.pt and val outputs when better)."""
    train_stats = train_one_epoch(
        run.model,
        run.criterion,
        run.optimizer,
        run.scheduler,
        run.train_loader,
        run.device,
        epoch,
        run.config,
        info=run.info,
        progress=progress,
        log=log,
        first_step=epoch * run.steps_per_epoch,
    )
    val_metrics, val_predictions = evaluate(
        run.model,
        run.val_loader,
        run.device,
        run.taxonomy,
        info=run.info,
        amp=run.config.optim.amp,
        progress=progress,
        criterion=run.criterion,
    )
    improved = run.record_epoch(epoch, train_stats, val_metrics)
    if log is not None:
        log.epoch((epoch + 1) * run.steps_per_epoch, _epoch_scalars(train_stats, val_metrics))
    if run.info.main:
        ckpt = run.checkpoint_state(epoch, origin)
        save_checkpoint(ckpt, out / "last.pt")
        if improved:
            save_checkpoint(ckpt, out / "best.pt")
            write_eval_outputs(out, "val", val_metrics, val_predictions)
        _write_metrics(
            out,
            run.history,
            run.best,
            run.config.optim.select_metric,
            run.train_items,
            run.val_items,
        )
    barrier(run.info)


def _epoch_scalars(train_stats: dict[str, Any], val_metrics: dict[str, Any]) -> dict[str, float]:
    """The epoch's figures for the step log: losses, accuracy and UAR, UAR per head."""
    val_loss = math.inf if val_metrics["loss"] is None else float(val_metrics["loss"])
    return {
        "epoch/train_loss": float(train_stats["loss"]),
        "epoch/val_loss": val_loss,
        **{f"epoch/val_{k}": float(val_metrics[k]) for k in ("accuracy", "uar")},
        **{f"epoch/val_uar_{head}": float(m["uar"]) for head, m in val_metrics["heads"].items()},
    }


def _fit_result(run: TrainingRun, out: Path) -> FitResult:
    history, train_items, val_items = run.history, run.train_items, run.val_items
    best_epoch = int(run.best["epoch"])
    return FitResult(
        run_dir=out,
        best_checkpoint=out / "best.pt",
        best_epoch=best_epoch,
        select_metric=run.config.optim.select_metric,
        val=history[best_epoch - 1]["val"] if best_epoch else {},
        history=history,
        weights=run.weights_note,
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
        world_size=run.info.world,
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
    criterion = build_criterion(config, tax)
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
