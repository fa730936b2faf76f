"""Percentile bootstrap over items, vectorised and seeded.

Every statistic is a function of column sums of per-item features (``statistics.Features``), so
a replicate is ``w @ F`` with ``w`` the multiplicities of one resample. Items with the same count
row share their features, so ``w`` is counted per distinct row: resamples are drawn in chunks,
mapped to their distinct rows, turned into multiplicities with one ``bincount`` and multiplied
with the (small) feature matrix in one BLAS call: no Python loop over replicates or items.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from emotions_data.agreement.frame import FloatArray
from emotions_data.agreement.statistics import Features, Statistics, statistics_from_sums
from emotions_data.schema.errors import ConfigError

#: Multiplicity entries per chunk (chunk rows x items); bounds memory at ~32 MB.
_CHUNK_CELLS = 4_000_000


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    level: float
    n_boot: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "low": _finite(self.low),
            "high": _finite(self.high),
            "level": self.level,
            "n_boot": self.n_boot,
            "method": "percentile, items resampled",
        }


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def check_bootstrap_args(n_boot: int, level: float) -> None:
    if n_boot < 0:
        raise ConfigError(f"--bootstrap must be 0 (off) or a positive count, got {n_boot}")
    if not 0 < level < 1:
        raise ConfigError(f"--ci must be strictly between 0 and 1, got {level}")


def replicate_sums(feats: Features, n_boot: int, rng: np.random.Generator) -> FloatArray:
    """``(n_boot, features)`` column sums of ``n_boot`` resamples of the items."""
    n = feats.n_items
    r = feats.matrix.shape[0]
    out = np.empty((n_boot, feats.matrix.shape[1]))
    if n == 0:
        out[:] = np.nan
        return out
    rows = max(1, min(n_boot, _CHUNK_CELLS // n))
    for start in range(0, n_boot, rows):
        b = min(rows, n_boot - start)
        picks = rng.integers(0, n, size=(b, n))
        cells = feats.row_of_item[picks]
        cells += np.arange(b)[:, None] * r  # replicate j's picks land in row j of the table
        weights = np.bincount(cells.ravel(), minlength=b * r).reshape(b, r)
        out[start : start + b] = weights @ feats.matrix
    return out


def bootstrap(feats: Features, n_boot: int, q: int, rng: np.random.Generator) -> Statistics:
    """The statistics of ``n_boot`` item resamples (arrays of length ``n_boot``)."""
    sums = replicate_sums(feats, n_boot, rng)
    return statistics_from_sums(sums, np.full(n_boot, float(feats.n_items)), feats.k, q)


def percentile_interval(values: FloatArray, level: float) -> Interval:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return Interval(float("nan"), float("nan"), level, len(values))
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(finite, [tail, 1.0 - tail])
    return Interval(float(low), float(high), level, len(values))
