"""Chance-corrected agreement for nominal labels, from the item x class count table.

Notation: ``n[i, c]`` judgements of item ``i`` with class ``c``, ``n_i = sum_c n[i, c]``. Only
*pairable* items (``n_i >= 2``) enter any statistic: an item judged once has no pair to agree
or disagree, so adding one changes nothing; their number is reported separately.

- Pairwise agreement (Fleiss' P-bar): ``P = mean_i sum_c n[i,c] (n[i,c] - 1) / (n_i (n_i - 1))``,
  the share of agreeing judgement pairs, averaged over items.
- Fleiss' kappa, generalised to a varying ``n_i`` (Fleiss, Levin and Paik 2003; Gwet 2014,
  ch. 2): ``pi_c = mean_i n[i,c] / n_i``, ``Pe = sum_c pi_c^2``, ``kappa = (P - Pe) / (1 - Pe)``.
  With the same ``n_i`` for every item ``pi_c`` is the pooled class share and this is exactly
  Fleiss' (1971) formula (``statsmodels.stats.inter_rater.fleiss_kappa``).
- Gwet's AC1: the same ``P`` and ``pi_c``, ``Pe = sum_c pi_c (1 - pi_c) / (q - 1)`` with ``q``
  the number of classes of the taxonomy. Stays high when one class dominates and agreement is
  high, where kappa collapses (the "kappa paradox").
- Krippendorff's alpha (nominal) from the coincidence matrix: with ``n = sum_i n_i``,
  ``N_c = sum_i n[i,c]`` and ``O = sum_i sum_c n[i,c] (n[i,c] - 1) / (n_i - 1)`` (the
  diagonal of the coincidence matrix), ``alpha = 1 - (n - 1) (n - O) / (n^2 - sum_c N_c^2)``.
  The headline alpha is computed by the ``krippendorff`` package (``value_counts``, nominal);
  this closed form gives the same value (a test checks it) and serves the bootstrap and the
  per-class one-vs-rest alphas, where it is evaluated thousands of times.

Undefined values (no pairable item, a single class used throughout) are NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd

from emotions_data.agreement.frame import Encoded, FloatArray, IntArray, class_list, encode
from emotions_data.schema.errors import ManifestError
from emotions_data.schema.taxonomy import Taxonomy

Categories: TypeAlias = Sequence[str] | Taxonomy
#: A sequence of class names: list, Series or numpy array.
Labels: TypeAlias = Sequence[str] | pd.Series | npt.NDArray[Any]

#: Reading of alpha (Krippendorff 2004, p. 241).
RELIABLE, TENTATIVE = 0.8, 0.667


def interpret_alpha(alpha: float) -> str:
    """``reliable`` (>= 0.8), ``tentative`` (>= 0.667), ``unreliable`` below, ``undefined``."""
    if not np.isfinite(alpha):
        return "undefined"
    if alpha >= RELIABLE:
        return "reliable"
    return "tentative" if alpha >= TENTATIVE else "unreliable"


@dataclass(frozen=True)
class Features:
    """Per-row terms whose weighted column sums give every statistic (and bootstrap replicate).

    Items with the same count row contribute the same terms, so the terms are kept once per
    *distinct* row (a few thousand even for millions of items) with ``weights`` = how many
    items share it, and ``row_of_item`` maps each pairable item to its distinct row.
    Columns: ``n_i``, the item's pair agreement, its coincidence diagonal ``o_i``, then ``k``
    class counts, ``k`` class proportions and ``k`` one-vs-rest coincidence diagonals.
    """

    matrix: FloatArray
    weights: FloatArray
    row_of_item: IntArray
    k: int
    n_unpairable: int

    @property
    def n_items(self) -> int:
        return len(self.row_of_item)

    def sums(self) -> FloatArray:
        out: FloatArray = self.weights @ self.matrix
        return out


def distinct_rows(table: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    """Distinct rows, the row index of each item, and the multiplicities."""
    if table.shape[0] == 0:
        return table, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    base = int(table.max()) + 1
    k = table.shape[1]
    if k * np.log2(max(base, 2)) < 62:
        # One int64 key per row (counts as base-`base` digits): a 1-D unique is far faster.
        keys = table @ (base ** np.arange(k, dtype=np.int64))
        _, first, inverse, weights = np.unique(
            keys, return_index=True, return_inverse=True, return_counts=True
        )
        return table[first], inverse.astype(np.int64), weights.astype(np.int64)
    rows, inverse, weights = np.unique(table, axis=0, return_inverse=True, return_counts=True)
    return rows, inverse.reshape(-1).astype(np.int64), weights.astype(np.int64)


def features(counts: IntArray | npt.ArrayLike) -> Features:
    """Per-row features of the pairable rows of an item x class count table."""
    table = np.asarray(counts)
    if table.ndim != 2 or (table < 0).any() or not np.issubdtype(table.dtype, np.number):
        raise ManifestError(["a count table must be a 2-D item x class array of counts >= 0"])
    table = table.astype(np.int64, copy=False)
    n_all = table.sum(axis=1)
    pairable = n_all >= 2
    rows, row_of_item, weights = distinct_rows(table[pairable])
    rows_f = rows.astype(np.float64)
    n_i = rows_f.sum(axis=1)
    k = table.shape[1]
    same = (rows_f * (rows_f - 1)).sum(axis=1)
    rest = n_i[:, None] - rows_f
    # one-vs-rest: agreeing pairs inside the class plus agreeing pairs outside it
    binary_diag = (rows_f * (rows_f - 1) + rest * (rest - 1)) / (n_i - 1)[:, None]
    matrix = np.empty((len(n_i), 3 + 3 * k))
    matrix[:, 0] = n_i
    matrix[:, 1] = same / (n_i * (n_i - 1))
    matrix[:, 2] = same / (n_i - 1)
    matrix[:, 3 : 3 + k] = rows_f
    matrix[:, 3 + k : 3 + 2 * k] = rows_f / n_i[:, None]
    matrix[:, 3 + 2 * k :] = binary_diag
    return Features(
        matrix=matrix,
        weights=weights.astype(np.float64),
        row_of_item=row_of_item,
        k=k,
        n_unpairable=int((~pairable).sum()),
    )


@dataclass(frozen=True)
class Statistics:
    """The four statistics (arrays when computed for many bootstrap replicates at once)."""

    krippendorff_alpha: FloatArray
    fleiss_kappa: FloatArray
    pairwise_agreement: FloatArray
    gwet_ac1: FloatArray
    #: One-vs-rest alpha per class, shape (..., k).
    class_alpha: FloatArray


def _ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out: FloatArray = np.where(den != 0, num / np.where(den != 0, den, 1.0), np.nan)
    return out


def statistics_from_sums(sums: FloatArray, n_items: FloatArray, k: int, q: int) -> Statistics:
    """Evaluate the statistics from feature column sums (last axis) over ``n_items`` items."""
    sums = np.asarray(sums, dtype=np.float64)
    n_items = np.asarray(n_items, dtype=np.float64)
    n, pair_sum, diag = sums[..., 0], sums[..., 1], sums[..., 2]
    class_n = sums[..., 3 : 3 + k]
    pi = _ratio(sums[..., 3 + k : 3 + 2 * k], n_items[..., None])
    binary_diag = sums[..., 3 + 2 * k :]
    p_bar = _ratio(pair_sum, n_items)
    alpha = 1.0 - _ratio((n - 1) * (n - diag), n * n - (class_n**2).sum(axis=-1))
    pe_kappa = (pi**2).sum(axis=-1)
    kappa = _ratio(p_bar - pe_kappa, 1.0 - pe_kappa)
    pe_ac1 = (pi * (1 - pi)).sum(axis=-1) / max(q - 1, 1)
    ac1 = _ratio(p_bar - pe_ac1, 1.0 - pe_ac1)
    n_b = n[..., None]
    class_alpha = 1.0 - _ratio((n_b - 1) * (n_b - binary_diag), 2 * class_n * (n_b - class_n))
    return Statistics(alpha, kappa, p_bar, ac1, class_alpha)


def statistics_from_features(feats: Features, q: int | None = None) -> Statistics:
    """The statistics of one count table (``q`` defaults to its number of columns)."""
    return statistics_from_sums(feats.sums(), np.array(float(feats.n_items)), feats.k, q or feats.k)


def statistics_from_counts(counts: IntArray | npt.ArrayLike, q: int | None = None) -> Statistics:
    """Alpha (closed form), kappa, P-bar, AC1 and per-class alpha of an item x class table."""
    return statistics_from_features(features(counts), q)


def krippendorff_alpha_counts(counts: IntArray | npt.ArrayLike) -> float:
    """Nominal alpha of an item x class count table by the ``krippendorff`` package."""
    import krippendorff

    table = np.asarray(counts)
    table = table[table.sum(axis=1) >= 2]
    # The package needs two used values; with fewer, alpha is undefined (no variation).
    if table.shape[0] == 0 or int((table.sum(axis=0) > 0).sum()) < 2:
        return float("nan")
    if int(table.max()) <= _INT16_PRODUCT_SAFE:
        # The package forms the (items, classes, classes) products in the input's dtype: int16
        # quarters that array, and the products are the same integers, so alpha is the same.
        table = table.astype(np.int16)
    return float(krippendorff.alpha(value_counts=table, level_of_measurement="nominal"))


#: The largest count whose square still fits an int16 (181^2 = 32761).
_INT16_PRODUCT_SAFE = 181


def _encoded(frame: pd.DataFrame | Encoded, categories: Categories) -> Encoded:
    return frame if isinstance(frame, Encoded) else encode(frame, categories)


def krippendorff_alpha(frame: pd.DataFrame | Encoded, categories: Categories) -> float:
    """Krippendorff's alpha (nominal) of the long frame (video_id, annotator_id, label)."""
    return krippendorff_alpha_counts(_encoded(frame, categories).counts)


def fleiss_kappa(frame: pd.DataFrame | Encoded, categories: Categories) -> float:
    """Fleiss' kappa, generalised to a varying number of judgements per item."""
    enc = _encoded(frame, categories)
    return float(statistics_from_counts(enc.counts).fleiss_kappa)


def pairwise_agreement(frame: pd.DataFrame | Encoded, categories: Categories) -> float:
    """Mean over pairable items of the share of agreeing judgement pairs (P-bar)."""
    enc = _encoded(frame, categories)
    return float(statistics_from_counts(enc.counts).pairwise_agreement)


def gwet_ac1(frame: pd.DataFrame | Encoded, categories: Categories) -> float:
    """Gwet's AC1 with ``q`` = the number of classes of the taxonomy."""
    enc = _encoded(frame, categories)
    return float(statistics_from_counts(enc.counts, q=enc.k).gwet_ac1)


def cohen_kappa(a: Labels, b: Labels, categories: Categories) -> float:
    """Cohen's kappa of two aligned label sequences (NaN when chance agreement is 1)."""
    names = class_list(categories)
    codes_a = _codes(a, names, "a")
    codes_b = _codes(b, names, "b")
    if len(codes_a) != len(codes_b):
        raise ManifestError(
            [f"cohen_kappa needs aligned sequences; got {len(codes_a)} and {len(codes_b)} labels"]
        )
    return cohen_kappa_codes(codes_a, codes_b, len(names))


def cohen_kappa_codes(a: IntArray, b: IntArray, k: int) -> float:
    if len(a) == 0:
        return float("nan")
    table = np.bincount(a * k + b, minlength=k * k).reshape(k, k) / len(a)
    return float(kappa_from_confusion(table[None])[0])


def kappa_from_confusion(tables: FloatArray) -> FloatArray:
    """Cohen's kappa of each ``(k, k)`` joint table in a stack ``(m, k, k)`` of counts."""
    totals = tables.sum(axis=(1, 2))
    p = tables / np.where(totals > 0, totals, 1.0)[:, None, None]
    po = np.trace(p, axis1=1, axis2=2)
    pe = (p.sum(axis=2) * p.sum(axis=1)).sum(axis=1)
    return _ratio(po - pe, 1.0 - pe)


def _codes(labels: Labels, names: tuple[str, ...], which: str) -> IntArray:
    lookup = {name: i for i, name in enumerate(names)}
    try:
        return np.array([lookup[str(x)] for x in labels], dtype=np.int64)
    except KeyError as exc:
        raise ManifestError(
            [
                f"cohen_kappa: label {exc.args[0]!r} in sequence {which} is not a class; allowed: {', '.join(names)}"
            ]
        ) from None
