"""One training epoch and one evaluation pass (the loops ``fit`` runs), shaped like
torchvision's video reference ``train_one_epoch`` / ``evaluate``."""

from __future__ import annotations

import contextlib
import copy
import math
import time
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
    opt = config.optim
    model.train()
    sampler = loader.sampler
    if isinstance(sampler, DistributedSampler):
        sampler.set_epoch(epoch)
    dataset = loader.dataset
    if isinstance(dataset, CacheClipDataset):
        dataset.set_epoch(epoch)
    n_micro = len(loader)
    loss_sum, seen = 0.0, 0
    skipped: dict[str, str] = {}
    last_good: Batch | None = None
    started = time.perf_counter()
    bar = _progress(n_micro, f"epoch {epoch + 1} train", progress and info.main)
    optimizer.zero_grad(set_to_none=True)
    step = first_step
    group: dict[str, float] = {}
    group_started, wait = started, 0.0
    iterator = iter(loader)
    for i in range(n_micro):
        fetch_started = time.perf_counter()
        batch = next(iterator)
        wait += time.perf_counter() - fetch_started
        assert isinstance(batch, Batch)
        skipped.update(batch.skip_reasons)
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
                    loss, parts = criterion.with_parts(model(video, audio), target)
                scaled: Any = loss * weight / group_size
                scaled.backward()
            if weight:
                value = float(loss.detach())
                if not info.distributed:  # under DDP the shared gradient norm below decides
                    _check_finite(value, "loss", epoch, step + 1, i)
                loss_sum += value * len(batch)
                seen += len(batch)
                group["samples"] = group.get("samples", 0.0) + len(batch)
                group["loss"] = group.get("loss", 0.0) + value * len(batch)
                for name, term in parts.items():
                    key = f"loss_{name}"
                    group[key] = group.get(key, 0.0) + float(term.detach()) * len(batch)
        if last_of_group:
            max_norm = opt.clip_grad_norm if opt.clip_grad_norm > 0 else math.inf
            grad_norm = float(nn.utils.clip_grad_norm_(model.parameters(), max_norm))
            _check_finite(grad_norm, "gradient norm", epoch, step + 1, i)
            lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if log is not None and info.main:
                now = time.perf_counter()
                n = max(group.get("samples", 0.0), 1.0)
                log.step(
                    {
                        "epoch": epoch + 1,
                        "step": step,
                        **{k: v / n for k, v in group.items() if k.startswith("loss")},
                        "lr": lr,
                        "grad_norm": grad_norm,
                        "samples_per_s": group.get("samples", 0.0)
                        * info.world
                        / max(now - group_started, 1e-9),
                        "step_s": now - group_started,
                        "data_wait_s": wait,
                        "data_wait_share": wait / max(now - group_started, 1e-9),
                    }
                )
            group, group_started, wait = {}, time.perf_counter(), 0.0
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
