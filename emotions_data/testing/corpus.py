"""A small generated corpus of short videos for the demo and integration tests.

Each class gets its own colour, motion and tone (``make_class_clip``) so a tiny model can learn
it; the corpus mixes portrait and landscape clips, reposts of one clip on another platform
(re-encoded and resized), clips without audio, a too-short clip and truncated (broken) files.
A ``url`` list points at a loopback server that serves the folder; some URLs are dead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from emotions_data.schema.taxonomy import Taxonomy, load_taxonomy
from emotions_data.testing.media import make_class_clip, make_truncated, reencode

PLATFORMS = ("douyin", "kuaishou", "tiktok")


@dataclass(frozen=True)
class CorpusSpec:
    per_class: int = 9
    reposts: int = 4
    silent: int = 2
    too_short: int = 1
    broken: int = 2
    dead_urls: int = 3
    duration_s: float = 2.0
    fps: int = 10


def make_corpus(
    folder: str | Path,
    spec: CorpusSpec = CorpusSpec(),
    *,
    taxonomy: Taxonomy | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Write the clips under ``folder`` and return the URL list rows (relative ``path``, not URL).

    Columns: ``path`` (relative to ``folder``; missing files are the dead URLs), ``platform``,
    ``true_label`` (the class the clip was made for), ``kind`` (clip, repost, silent, short,
    broken, dead). Deterministic for a given seed; existing files are reused.
    """
    tax = taxonomy or load_taxonomy()
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    rows: list[dict[str, object]] = []

    def clip(
        name: str,
        cls: int,
        *,
        variant: int,
        portrait: bool,
        audio: bool = True,
        duration: float | None = None,
    ) -> str:
        rel = f"clips/{name}.mp4"
        path = folder / rel
        if not path.exists():
            width, height = (72, 128) if portrait else (128, 72)
            make_class_clip(
                path,
                cls,
                width=width,
                height=height,
                duration=duration or spec.duration_s,
                fps=spec.fps,
                audio=audio,
                variant=variant,
            )
        return rel

    originals: list[tuple[str, int, str]] = []
    for cls, label in enumerate(tax.classes):
        for i in range(spec.per_class):
            platform = PLATFORMS[int(rng.integers(len(PLATFORMS)))]
            rel = clip(f"{label}-{i:02d}", cls, variant=i, portrait=bool(rng.random() < 0.7))
            rows.append({"path": rel, "platform": platform, "true_label": label, "kind": "clip"})
            originals.append((rel, cls, platform))
    for j in range(spec.reposts):
        rel, cls, platform = originals[int(rng.integers(len(originals)))]
        other = PLATFORMS[(PLATFORMS.index(platform) + 1) % len(PLATFORMS)]
        dst = f"clips/repost-{j:02d}.mp4"
        if not (folder / dst).exists():
            reencode(folder / rel, folder / dst, width=64, height=64, crf=30)
        rows.append(
            {"path": dst, "platform": other, "true_label": tax.classes[cls], "kind": "repost"}
        )
    for j in range(spec.silent):
        cls = int(rng.integers(len(tax.classes)))
        rel = clip(f"silent-{j:02d}", cls, variant=10 + j, portrait=True, audio=False)
        rows.append(
            {"path": rel, "platform": "tiktok", "true_label": tax.classes[cls], "kind": "silent"}
        )
    for j in range(spec.too_short):
        cls = int(rng.integers(len(tax.classes)))
        rel = clip(f"short-{j:02d}", cls, variant=13 + j, portrait=True, duration=0.4)
        rows.append(
            {"path": rel, "platform": "douyin", "true_label": tax.classes[cls], "kind": "short"}
        )
    for j in range(spec.broken):
        cls = int(rng.integers(len(tax.classes)))
        dst = f"clips/broken-{j:02d}.mp4"
        if not (folder / dst).exists():
            src = clip(f"whole-{j:02d}", cls, variant=15 + j, portrait=True)
            make_truncated(folder / src, folder / dst, keep_fraction=0.25)
            (folder / src).unlink()
        rows.append(
            {"path": dst, "platform": "kuaishou", "true_label": tax.classes[cls], "kind": "broken"}
        )
    for j in range(spec.dead_urls):
        cls = int(rng.integers(len(tax.classes)))
        rows.append(
            {
                "path": f"clips/removed-{j:02d}.mp4",
                "platform": PLATFORMS[j % 3],
                "true_label": tax.classes[cls],
                "kind": "dead",
            }
        )
    return pd.DataFrame(rows)
