"""One training epoch and one evaluation pass (the loops ``fit`` runs), shaped like
torchvision's video reference ``train_one_epoch`` / ``evaluate``."""

from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler

from emotions_data.baselines.avcpnet.config import BaselineConfig
from emotions_data.baselines.avcpnet.data import Batch, CacheClipDataset, photometric
from emotions_data.baselines.avcpnet.distributed import DistInfo, all_gather_objects, all_reduce_sum
from emotions_data.baselines.avcpnet.loss import MultiTaskLoss
from emotions_data.baselines.avcpnet.metrics import classification_metrics
from emotions_data.baselines.avcpnet.runlog import StepLog
from emotions_data.schema.errors import EmotionsDataError
from emotions_data.schema.taxonomy import Taxonomy


def _autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="batch", disable=not enabled, leave=False)


class TrainingError(EmotionsDataError):
    """Training cannot go on (a non-finite loss or gradient)."""


def _check_finite(value: float, what: str, epoch: int, step: int, micro: int) -> None:
    if not math.isfinite(value):
        raise TrainingError(
            f"non-finite {what} ({value}) at epoch {epoch + 1}, optimizer step {step} "
            f"(micro-batch {micro + 1}); training stopped (last.pt holds the last finished epoch, "
            "if any; try a lower optim.lr)"
        )


@dataclass
class _StepSums:
    """What the micro-batches of one optimizer step add up to, for its ``steps.jsonl`` record."""

    started: float = field(default_factory=time.perf_counter)
    data_wait_s: float = 0.0
    samples: float = 0.0
    losses: dict[str, float] = field(default_factory=dict)  # "loss", "loss_<head>": sums

    def add(self, value: float, parts: dict[str, torch.Tensor], n: int) -> None:
        self.samples += n
        self.losses["loss"] = self.losses.get("loss", 0.0) + value * n
        for name, term in parts.items():
            key = f"loss_{name}"
            self.losses[key] = self.losses.get(key, 0.0) + float(term.detach()) * n

    def record(
        self, epoch: int, step: int, lr: float, grad_norm: float, world: int
    ) -> dict[str, Any]:
        took = max(time.perf_counter() - self.started, 1e-9)
        n = max(self.samples, 1.0)
        return {
            "epoch": epoch + 1,
            "step": step,
            **{k: v / n for k, v in self.losses.items()},
            "lr": lr,
            "grad_norm": grad_norm,
            "samples_per_s": self.samples * world / took,
            "step_s": took,
            "data_wait_s": self.data_wait_s,
            "data_wait_share": self.data_wait_s / took,
        }


def _start_epoch(model: nn.Module, loader: DataLoader[Any], epoch: int) -> None:
    """Training mode, and the epoch into the sampler (DDP shuffling) and the dataset (augmentation)."""
    model.train()
    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(epoch)
    if isinstance(loader.dataset, CacheClipDataset):
        loader.dataset.set_epoch(epoch)


def _forward_backward(
    model: nn.Module,
    criterion: MultiTaskLoss,
    batch: Batch,
    device: torch.device,
    config: BaselineConfig,
    *,
    weight: float,
    divide_by: int,
    sync_now: bool,
    distributed: bool,
) -> tuple[float, dict[str, torch.Tensor]]:
    """The loss of one micro-batch and its gradient, added to what the step accumulated.

    The loss is divided by the micro-batches of the step, so the gradient is their mean; under
    DDP only the step's last micro-batch all-reduces (``no_sync`` before it)."""
    video = photometric(batch.video.to(device, non_blocking=True), batch.aug.to(device))
    audio = batch.audio.to(device, non_blocking=True)
    target = batch.label.to(device, non_blocking=True)
    sync: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    if distributed and not sync_now and isinstance(model, DDP):
        sync = model.no_sync()
    with sync:
        with _autocast(device, config.optim.amp):
            loss, parts = criterion.with_parts(model(video, audio), target)
        scaled: Any = loss * weight / divide_by
        scaled.backward()
    return float(loss.detach()), parts


def _optimizer_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    config: BaselineConfig,
    where: tuple[int, int, int],
) -> tuple[float, float]:
    """Clip, step the optimizer and the schedule; returns (gradient norm, lr of this step)."""
    max_norm = config.optim.clip_grad_norm if config.optim.clip_grad_norm > 0 else math.inf
    grad_norm = float(nn.utils.clip_grad_norm_(model.parameters(), max_norm))
    _check_finite(grad_norm, "gradient norm", *where)
    lr = float(optimizer.param_groups[0]["lr"])
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return grad_norm, lr


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
    log: StepLog | None = None,
    first_step: int = 0,
) -> dict[str, Any]:
    """One pass over the training loader with gradient accumulation; returns loss and throughput.

    A non-finite loss (or gradient norm, which DDP makes the same on every process, so all
    of them stop together) raises ``TrainingError`` naming the step. ``log`` receives one
    record per optimizer step: the loss per head, lr, samples/s and the loader wait.
    """
    info = info or DistInfo()
    accumulation = config.optim.accumulation
    _start_epoch(model, loader, epoch)
    n_micro = len(loader)
    loss_sum, seen = 0.0, 0
    skipped: dict[str, str] = {}
    last_good: Batch | None = None
    started = time.perf_counter()
    bar = _progress(n_micro, f"epoch {epoch + 1} train", progress and info.main)
    optimizer.zero_grad(set_to_none=True)
    step = first_step
    sums = _StepSums()
    iterator = iter(loader)
    for i in range(n_micro):
        fetch_started = time.perf_counter()
        batch = next(iterator)
        sums.data_wait_s += time.perf_counter() - fetch_started
        assert isinstance(batch, Batch)
        skipped.update(batch.skip_reasons)
        group_start = (i // accumulation) * accumulation
        group_size = min(accumulation, n_micro - group_start)
        last_of_group = i == group_start + group_size - 1
        weight = 1.0
        if len(batch):
            last_good = batch
        elif info.distributed and last_good is not None:
            # every sample of this rank's micro-batch failed to load: a zero-weighted pass keeps
            # the ranks' gradient all-reduces in step (a rank that skipped would hang the rest)
            batch, weight = last_good, 0.0
        if len(batch):
            value, parts = _forward_backward(
                model,
                criterion,
                batch,
                device,
                config,
                weight=weight,
                divide_by=group_size,
                sync_now=last_of_group,
                distributed=info.distributed,
            )
            if weight:
                if not info.distributed:  # under DDP the shared gradient norm decides
                    _check_finite(value, "loss", epoch, step + 1, i)
                loss_sum += value * len(batch)
                seen += len(batch)
                sums.add(value, parts, len(batch))
        if last_of_group:
            grad_norm, lr = _optimizer_step(
                model, optimizer, scheduler, config, (epoch, step + 1, i)
            )
            step += 1
            if log is not None and info.main:
                log.step(sums.record(epoch, step, lr, grad_norm, info.world))
            sums = _StepSums()
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
    reasons = {k: v for part in all_gather_objects(skipped, info) for k, v in part.items()}
    return {
        "epoch": epoch + 1,
        "loss": loss_sum / max(seen_all, 1.0),
        "samples": int(seen_all),
        "seconds": elapsed,
        "samples_per_s": seen_all / max(elapsed, 1e-9),
        "lr": optimizer.param_groups[0]["lr"],
        "skipped": sorted(reasons),
        "skip_reasons": dict(sorted(reasons.items())),
        "steps": step,
    }


HEADS = {"fused": "logits", "visual_only": "logits_visual", "audio_only": "logits_audio"}


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
    criterion: MultiTaskLoss | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Metrics over the whole loader (gathered across processes) and per-sample probabilities.

    The top-level metrics are the fused head's; ``heads`` holds the fused, visual-only and
    audio-only heads' (the modality ablation); ``loss`` is the training loss over the split
    (the one criterion, EP-CE per head), which breaks ties in model selection.
    """
    info = info or DistInfo()
    model.eval()
    rows: list[tuple[int, int, dict[str, list[float]]]] = []
    skipped: dict[str, str] = {}
    bar = _progress(len(loader), "evaluate", progress and info.main)
    for batch in loader:
        assert isinstance(batch, Batch)
        skipped.update(batch.skip_reasons)
        if len(batch):
            with _autocast(device, amp):
                out = model(batch.video.to(device), batch.audio.to(device))
            logits = {k: v.float().cpu() for k, v in out.items()}
            for j, (idx, label) in enumerate(
                zip(batch.index.tolist(), batch.label.tolist(), strict=True)
            ):
                rows.append((idx, label, {k: v[j].tolist() for k, v in logits.items()}))
        bar.update(1)
    bar.close()
    # DistributedSampler pads the last shard with repeats: keep one row per index
    merged = {r[0]: r for part in all_gather_objects(rows, info) for r in part}
    reasons = {k: v for part in all_gather_objects(skipped, info) for k, v in part.items()}
    ordered = [merged[k] for k in sorted(merged)]
    target = [r[1] for r in ordered]
    stacked = {
        k: torch.tensor([r[2][k] for r in ordered]) for k in (ordered[0][2] if ordered else {})
    }
    heads: dict[str, Any] = {}
    for name, key in HEADS.items():
        if key in stacked:
            pred_head = stacked[key].argmax(dim=1).tolist()
            heads[name] = classification_metrics(target, pred_head, taxonomy.classes)
    metrics = dict(heads.get("fused") or classification_metrics([], [], taxonomy.classes))
    metrics["heads"] = {
        k: metric_summary(v) | {"per_class_accuracy": v["per_class_accuracy"]}
        for k, v in heads.items()
    }
    metrics["loss"] = None
    if criterion is not None and ordered:
        cpu_criterion = copy.deepcopy(criterion).cpu()
        metrics["loss"] = float(cpu_criterion(stacked, torch.tensor(target)))
    metrics["skipped"] = sorted(reasons)
    metrics["skip_reasons"] = dict(sorted(reasons.items()))
    probs = torch.softmax(stacked["logits"], dim=1).tolist() if ordered else []
    dataset = loader.dataset
    ids = dataset.items.video_ids if isinstance(dataset, CacheClipDataset) else None
    predictions = [
        {
            "video_id": ids[r[0]] if ids else str(r[0]),
            "label": taxonomy.classes[r[1]],
            "pred": taxonomy.classes[int(np.argmax(p))],
            **{f"p_{c}": float(v) for c, v in zip(taxonomy.classes, p, strict=True)},
        }
        for r, p in zip(ordered, probs, strict=True)
    ]
    return metrics, predictions


def metric_summary(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: metrics[k] for k in ("n", "accuracy", "uar", "macro_f1", "weighted_f1")}
