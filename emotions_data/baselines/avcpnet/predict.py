"""``baseline predict``: class probabilities for raw video files, their cache built on the fly."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import torch

from emotions_data.baselines.avcpnet.checkpoint import load_checkpoint
from emotions_data.baselines.avcpnet.config import BaselineConfig
from emotions_data.baselines.avcpnet.data import CacheClipDataset, SplitItems, cache_dir, collate
from emotions_data.baselines.avcpnet.distributed import resolve_device
from emotions_data.baselines.avcpnet.training_run import build_model
from emotions_data.schema.atomic import atomic_write_text
from emotions_data.schema.errors import ConfigError
from emotions_data.schema.taxonomy import Taxonomy


def _video_id(path: Path, taken: set[str]) -> str:
    from emotions_data.ingest.local_import import safe_video_id

    base = safe_video_id(path.stem or "video")
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    taken.add(name)
    return name


@torch.no_grad()
def predict_videos(
    checkpoint: str | Path,
    videos: list[str | Path],
    *,
    device: str | None = None,
    work_dir: str | Path | None = None,
    out: str | Path | None = None,
    prepare_config: str | Path | None = None,
    batch_size: int = 8,
) -> list[dict[str, Any]]:
    """One row per video: its path, the predicted class and each class's probability.

    The model runs on ``batch_size`` videos at a time. Each file's cache is built by prepare's
    own ``build_cache_for_file`` (pass the prepare
    config the training data was prepared with; default: prepare's defaults).
    """
    from emotions_data.ingest.prepare import build_cache_for_file

    if not videos:
        raise ConfigError("predict needs at least one video file")
    if batch_size < 1:
        raise ConfigError(f"batch size {batch_size} must be >= 1")
    missing = [str(v) for v in videos if not Path(v).is_file()]
    if missing:
        raise ConfigError(f"{missing[0]}: no such video file")
    state = load_checkpoint(checkpoint)
    config = BaselineConfig.from_dict(state["config"], source=str(checkpoint))
    tax = Taxonomy.from_dict(state["taxonomy"], source=str(checkpoint))
    dev = resolve_device(device)
    model, _ = build_model(config, tax)
    model.load_state_dict(state["model"])
    model.to(dev).eval()
    with tempfile.TemporaryDirectory(prefix="emotions-predict-") as tmp:
        root = Path(work_dir) if work_dir is not None else Path(tmp)
        taken: set[str] = set()
        ids = []
        for video in videos:
            video_id = _video_id(Path(video), taken)
            build_cache_for_file(video, cache_dir(root, video_id), video_id, prepare_config)
            ids.append(video_id)
        items = SplitItems(ids, [0] * len(ids), tax, Path("-"))
        dataset = CacheClipDataset(items, root, config.data, train=False)
        rows = []
        for start in range(0, len(videos), batch_size):
            chunk = list(range(start, min(start + batch_size, len(videos))))
            batch = collate([dataset[i] for i in chunk])
            if batch.skipped:
                bad = ids.index(batch.skipped[0])
                raise ConfigError(
                    f"{videos[bad]}: could not read its cache ({batch.skip_reasons[batch.skipped[0]]})"
                )
            logits = model(batch.video.to(dev), batch.audio.to(dev))["logits"]
            for i, probs in zip(
                chunk, torch.softmax(logits.float(), dim=1).cpu().tolist(), strict=True
            ):
                best = max(range(len(probs)), key=probs.__getitem__)
                rows.append(
                    {
                        "video": str(videos[i]),
                        "pred": tax.classes[best],
                        "probabilities": dict(zip(tax.classes, probs, strict=True)),
                    }
                )
    if out is not None:
        atomic_write_text(out, json.dumps(rows, indent=1) + "\n")
    return rows
