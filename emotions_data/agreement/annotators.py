"""Per-annotator figures: agreement with the leave-one-out majority, Cohen's kappa against it,
and the annotator-by-annotator agreement matrix. All vectorised over judgements.

The leave-one-out (LOO) majority of a judgement is the most frequent label among the *other*
judgements of the same item. It is undefined when the item has no other judgement or when the
others tie; such judgements are not compared (``n_compared`` counts the ones that are).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from emotions_data.agreement.frame import Encoded, IntArray, encode
from emotions_data.agreement.statistics import Categories, distinct_rows, kappa_from_confusion


def loo_majority(enc: Encoded) -> tuple[IntArray, npt.NDArray[np.bool_]]:
    """Per judgement: the LOO majority class and whether it is defined (unique and non-empty)."""
    # The answer depends only on the item's count row and the judgement's own label, so it is
    # worked out once per (distinct row, label) and gathered: no (judgements x k) temporaries.
    k = enc.k
    rows, row_of_item, _ = distinct_rows(enc.counts)
    others = rows[:, None, :] - np.eye(k, dtype=rows.dtype)[None, :, :]  # (rows, own label, k)
    top = others.max(axis=2)
    defined = (top > 0) & ((others == top[..., None]).sum(axis=2) == 1)
    cell = row_of_item[enc.item] * k + enc.label
    return others.argmax(axis=2).reshape(-1)[cell], defined.reshape(-1)[cell]


def annotator_confusions(enc: Encoded) -> IntArray:
    """``(annotators, k, k)`` counts: rows the LOO majority (consensus), columns the label given."""
    majority, defined = loo_majority(enc)
    k = enc.k
    cell = (enc.annotator[defined] * k + majority[defined]) * k + enc.label[defined]
    flat = np.bincount(cell, minlength=enc.n_annotators * k * k)
    return flat.reshape(enc.n_annotators, k, k).astype(np.int64, copy=False)


def per_annotator_encoded(enc: Encoded) -> pd.DataFrame:
    confusions = annotator_confusions(enc)
    judgements = np.bincount(enc.annotator, minlength=enc.n_annotators)
    compared = confusions.sum(axis=(1, 2))
    agreeing = np.trace(confusions, axis1=1, axis2=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        agreement = np.where(compared > 0, agreeing / np.maximum(compared, 1), np.nan)
    kappa = kappa_from_confusion(confusions.astype(np.float64))
    return pd.DataFrame(
        {
            "judgements": judgements,
            "n_compared": compared,
            "agreement": agreement,
            "kappa": np.where(compared > 0, kappa, np.nan),
        },
        index=enc.annotators,
    )


def per_annotator(frame: pd.DataFrame | Encoded, categories: Categories) -> pd.DataFrame:
    """One row per annotator: judgements, n_compared, agreement and kappa vs the LOO majority."""
    enc = frame if isinstance(frame, Encoded) else encode(frame, categories)
    return per_annotator_encoded(enc)


def pair_agreement_matrix(enc: Encoded) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Share of shared items on which two annotators agree, and how many items they share.

    Judgements are sorted by item; judgement ``j`` and ``j + d`` belong to the same item for
    every pair inside an item, so one vectorised pass per offset ``d`` finds all pairs.
    """
    order = np.lexsort((enc.annotator, enc.item))
    item, ann, label = enc.item[order], enc.annotator[order], enc.label[order]
    m = enc.n_annotators
    shared = np.zeros(m * m, dtype=np.int64)
    agree = np.zeros(m * m, dtype=np.int64)
    d = 1
    while d < len(item):
        same = item[d:] == item[:-d]
        if not same.any():
            break
        a, b = ann[:-d][same], ann[d:][same]
        eq = label[:-d][same] == label[d:][same]
        for x, y in ((a, b), (b, a)):
            cell = x * m + y
            shared += np.bincount(cell, minlength=m * m)
            agree += np.bincount(cell[eq], minlength=m * m)
        d += 1
    shared_m = shared.reshape(m, m)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(shared_m > 0, agree.reshape(m, m) / np.maximum(shared_m, 1), np.nan)
    np.fill_diagonal(share, 1.0)
    names = list(enc.annotators)
    return (
        pd.DataFrame(share, index=names, columns=names),
        pd.DataFrame(shared_m, index=names, columns=names),
    )
