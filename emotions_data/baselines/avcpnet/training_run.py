"""What one training run holds (model, loss, optimizer, schedule, loaders, history) and how it
is built: fresh, or restored from a checkpoint so ``--resume`` continues exactly.

``trainer.fit`` builds a ``TrainingRun`` once and runs its epochs; every object a checkpoint
saves is here, so ``checkpoint_state`` and ``restore`` are the two halves of one contract.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler

from emotions_data.baselines.avcpnet.checkpoint import load_checkpoint, restore_rng
from emotions_data.baselines.avcpnet.config import BaselineConfig, load_config
from emotions_data.baselines.avcpnet.data import (
    CacheClipDataset,
    SplitItems,
    collate,
    load_split,
    worker_init,
)
from emotions_data.baselines.avcpnet.distributed import DistInfo
from emotions_data.baselines.avcpnet.loss import MultiTaskLoss
from emotions_data.baselines.avcpnet.model import AVCPNet
from emotions_data.baselines.avcpnet.schedule import warmup_cosine
from emotions_data.baselines.avcpnet.weights import load_visual_weights
from emotions_data.schema.errors import ConfigError
from emotions_data.schema.taxonomy import Taxonomy


def build_model(
    config: BaselineConfig, taxonomy: Taxonomy, visual_weights: str | Path | None = None
) -> tuple[AVCPNet, str]:
    """The network for ``taxonomy``, and a note on where its visual weights came from."""
    model = AVCPNet(
        config.model,
        num_classes=len(taxonomy.classes),
        num_polarities=max(1, len(taxonomy.polarities)),
    )
    if visual_weights is None:
        return model, "visual branch: random initialisation (no --visual-weights given)"
    return model, "visual branch: " + load_visual_weights(model.visual.swin, visual_weights)


def build_criterion(config: BaselineConfig, taxonomy: Taxonomy) -> MultiTaskLoss:
    weights = config.loss.weights
    return MultiTaskLoss(
        taxonomy,
        (float(weights[0]), float(weights[1]), float(weights[2])),
        config.loss.polarity_weight,
        config.loss.epce,
    )


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


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    yield


@dataclass
class TrainingRun:
    """One run's state. ``raw_model`` holds the parameters a checkpoint saves; ``model`` is
    what the loops call (compiled and DDP-wrapped where asked)."""

    info: DistInfo
    device: torch.device
    config: BaselineConfig
    seed: int
    root: Path
    train_items: SplitItems
    val_items: SplitItems
    raw_model: nn.Module
    model: nn.Module
    weights_note: str
    criterion: MultiTaskLoss
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    train_loader: DataLoader[Any]
    val_loader: DataLoader[Any]
    steps_per_epoch: int
    start_epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(
        default_factory=lambda: {"epoch": 0, "value": -1.0, "loss": math.inf}
    )

    @property
    def taxonomy(self) -> Taxonomy:
        return self.train_items.taxonomy

    def record_epoch(
        self, epoch: int, train_stats: dict[str, Any], val_metrics: dict[str, Any]
    ) -> bool:
        """Append the epoch to the history; True when it is the new best on val."""
        value = float(val_metrics[self.config.optim.select_metric])
        # None when every val sample failed to load: such an epoch never wins a tie
        val_loss = math.inf if val_metrics["loss"] is None else float(val_metrics["loss"])
        self.history.append({"train": train_stats, "val": val_metrics})
        # ties (frequent on a small val split) go to the lower val loss, not to the earliest
        # epoch, which kept an under-fitted first epoch as "best"
        improved = is_better(value, val_loss, self.best)
        if improved:
            self.best = {"epoch": epoch + 1, "value": value, "loss": val_loss}
        return improved

    def checkpoint_state(self, epoch: int, provenance: dict[str, Any]) -> dict[str, Any]:
        """Everything ``restore`` needs to continue after ``epoch`` (0-based) exactly."""
        return {
            "model": self.raw_model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": epoch + 1,
            "step": (epoch + 1) * self.steps_per_epoch,
            "config": self.config.to_dict(),
            "taxonomy": self.taxonomy.to_dict(),
            "seed": self.seed,
            "history": self.history,
            "best": self.best,
            "world_size": self.info.world,
            # which code and data made it: commit, package versions, manifest sha256
            "provenance": provenance,
            # where the data was, so `evaluate --checkpoint CKPT --split test` needs no more
            "data": {
                "variant": str(self.train_items.manifest.resolve()),
                "root": str(self.root.resolve()),
            },
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Optimizer, schedule, scaler, history and every RNG from a checkpoint."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.start_epoch = int(state["epoch"])
        self.history = list(state["history"])
        self.best = dict(state["best"])
        restore_rng(state["rng"])
        self.best.setdefault("loss", math.inf)  # a checkpoint from before val loss was recorded


def resolve_start(
    config: BaselineConfig | str | Path | None, resume: str | Path | None, seed: int
) -> tuple[BaselineConfig, int, dict[str, Any] | None]:
    """The config and seed to run with: a resumed run takes its checkpoint's own."""
    if resume is not None:
        state = load_checkpoint(resume)
        return (
            BaselineConfig.from_dict(state["config"], source=str(resume)),
            int(state["seed"]),
            state,
        )
    if not isinstance(config, BaselineConfig):
        config = load_config(config)
    return config, seed, None


def _placed_model(
    config: BaselineConfig,
    taxonomy: Taxonomy,
    info: DistInfo,
    dev: torch.device,
    *,
    seed: int,
    state: dict[str, Any] | None,
    resume: str | Path | None,
    visual_weights: str | Path | None,
) -> tuple[nn.Module, nn.Module, str]:
    """(raw model, the model the loops call, weights note), on ``dev``."""
    with _seeded(seed):
        model, weights_note = build_model(
            config, taxonomy, visual_weights if state is None else None
        )
    if state is not None:
        model.load_state_dict(state["model"])
        weights_note = f"resumed from {resume} (epoch {state['epoch']})"
    model.to(dev)
    raw_model: nn.Module = model
    if info.distributed and dev.type == "cuda" and config.model.audio_norm == "batch":
        # batch statistics over the global batch, as on one GPU (same parameter names, so
        # the checkpoint still loads into a plain AVCPNet); gloo on CPU has no SyncBatchNorm
        synced: Any = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # type: ignore[no-untyped-call]
        raw_model = synced
    run_model: nn.Module = raw_model
    if config.optim.compile:
        run_model = torch.compile(raw_model)  # type: ignore[assignment]
    if info.distributed:
        run_model = DDP(run_model, device_ids=[dev.index] if dev.type == "cuda" else None)
    return raw_model, run_model, weights_note


def build_training_run(
    info: DistInfo,
    dev: torch.device,
    variant: str | Path,
    root: str | Path,
    config: BaselineConfig,
    *,
    seed: int,
    state: dict[str, Any] | None,
    resume: str | Path | None,
    visual_weights: str | Path | None,
) -> TrainingRun:
    """Model, loss, optimizer, loaders and schedule for ``variant``; restored from ``state``."""
    opt = config.optim
    train_items = load_split(variant, "train", root)
    val_items = load_split(variant, "val", root)
    tax = train_items.taxonomy
    raw_model, run_model, weights_note = _placed_model(
        config, tax, info, dev, seed=seed, state=state, resume=resume, visual_weights=visual_weights
    )
    criterion = build_criterion(config, tax).to(dev)
    optimizer = torch.optim.AdamW(raw_model.parameters(), lr=opt.lr, weight_decay=opt.weight_decay)
    loaders = [
        make_loader(
            CacheClipDataset(items, root, config.data, train=train, seed=seed),
            opt.batch_size,
            train=train,
            info=info,
            seed=seed,
            workers=config.data.workers,
            device=dev,
        )
        for items, train in ((train_items, True), (val_items, False))
    ]
    steps_per_epoch = math.ceil(len(loaders[0]) / opt.accumulation)
    scheduler = warmup_cosine(
        optimizer,
        total_steps=steps_per_epoch * opt.epochs,
        warmup_steps=round(opt.warmup_epochs * steps_per_epoch),
        start=opt.warmup_start_factor,
        minimum=opt.min_lr_factor,
    )
    run = TrainingRun(
        info=info,
        device=dev,
        config=config,
        seed=seed,
        root=Path(root),
        train_items=train_items,
        val_items=val_items,
        raw_model=raw_model,
        model=run_model,
        weights_note=weights_note,
        criterion=criterion,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=torch.amp.GradScaler("cuda", enabled=False),  # bf16 needs no loss scaling
        train_loader=loaders[0],
        val_loader=loaders[1],
        steps_per_epoch=steps_per_epoch,
    )
    if state is not None:
        run.restore(state)
    return run
