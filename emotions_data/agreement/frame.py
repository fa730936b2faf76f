"""The long annotation frame as integer codes: the one encoding every statistic works on.

A judgement is a row (video_id, annotator_id, label). Statistics never loop over rows: they
work on integer codes and on the item x class count table built with ``np.bincount``, never a
``pd.crosstab`` or pivot (``benchmarks/agreement.py`` times the pivot route beside ours).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt
import pandas as pd

from emotions_data.schema.errors import ManifestError
from emotions_data.schema.taxonomy import Taxonomy

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

ITEM, ANNOTATOR, LABEL = "video_id", "annotator_id", "label"


def class_list(classes: Sequence[str] | Taxonomy) -> tuple[str, ...]:
    """The class names, in index order, of a taxonomy or a plain sequence."""
    names = tuple(classes.classes if isinstance(classes, Taxonomy) else classes)
    if not names:
        raise ManifestError(["the class list is empty; give the taxonomy's classes"])
    if len(set(names)) != len(names):
        raise ManifestError([f"the class list {list(names)} has duplicates"])
    return names


@dataclass(frozen=True, eq=False)
class Encoded:
    """Judgements as codes: ``item[j]``, ``annotator[j]`` and ``label[j]`` of judgement ``j``."""

    items: pd.Index
    annotators: pd.Index
    classes: tuple[str, ...]
    item: IntArray
    annotator: IntArray
    label: IntArray

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_annotators(self) -> int:
        return len(self.annotators)

    @property
    def k(self) -> int:
        return len(self.classes)

    @property
    def n_judgements(self) -> int:
        return len(self.item)

    @cached_property
    def counts(self) -> IntArray:
        """Item x class table of how many judgements gave each class."""
        return item_class_counts(self.item, self.label, self.n_items, self.k)

    def subset(self, mask: npt.NDArray[np.bool_]) -> Encoded:
        """The judgements where ``mask`` holds, with items/annotators re-coded densely."""
        item_codes, item_uniques = pd.factorize(self.item[mask], sort=True)
        ann_codes, ann_uniques = pd.factorize(self.annotator[mask], sort=True)
        return Encoded(
            items=self.items[item_uniques],
            annotators=self.annotators[ann_uniques],
            classes=self.classes,
            item=item_codes.astype(np.int64),
            annotator=ann_codes.astype(np.int64),
            label=self.label[mask],
        )


def item_class_counts(item: IntArray, label: IntArray, n_items: int, k: int) -> IntArray:
    """``counts[i, c]``: judgements of item ``i`` with class ``c`` (one bincount)."""
    flat = np.bincount(item * k + label, minlength=n_items * k)
    return flat.reshape(n_items, k).astype(np.int64, copy=False)


def encode(
    frame: pd.DataFrame,
    classes: Sequence[str] | Taxonomy,
    *,
    source: str = "annotations",
) -> Encoded:
    """Encode the long frame; unknown labels and missing values raise ``ManifestError``.

    Items and annotators are coded in sorted order so results do not depend on row order.
    """
    names = class_list(classes)
    missing = [c for c in (ITEM, ANNOTATOR, LABEL) if c not in frame.columns]
    if missing:
        raise ManifestError(
            [f"{source}: missing column(s) {missing}; needed: {ITEM}, {ANNOTATOR}, {LABEL}"]
        )
    for col in (ITEM, ANNOTATOR, LABEL):
        nulls = frame[col].isna().to_numpy()
        if nulls.any():
            row = int(np.flatnonzero(nulls)[0])
            raise ManifestError(
                [f"{source}: row {row}: null {col} ({int(nulls.sum())} row(s) with a null {col})"]
            )
    # Factorize, then map the few distinct values to class indices (pd.Categorical is 5x slower).
    value_codes, values = pd.factorize(frame[LABEL])
    lookup = {name: i for i, name in enumerate(names)}
    value_to_class = np.array([lookup.get(v, -1) for v in values], dtype=np.int64)
    label = value_to_class[value_codes]
    bad = label < 0
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        value = frame[LABEL].iloc[row]
        raise ManifestError(
            [
                f"{source}: row {row} (video_id {frame[ITEM].iloc[row]!r}): label {value!r} is not "
                f"a class of the taxonomy; allowed: {', '.join(names)}"
            ]
        )
    item_codes, items = _factorize_sorted(frame[ITEM])
    ann_codes, annotators = _factorize_sorted(frame[ANNOTATOR])
    return Encoded(
        items=pd.Index(items, name=ITEM),
        annotators=pd.Index(annotators, name=ANNOTATOR),
        classes=names,
        item=item_codes,
        annotator=ann_codes,
        label=label,
    )


def _factorize_sorted(values: pd.Series) -> tuple[IntArray, pd.Index]:
    """Codes in sorted order of the distinct values; sorting only the distinct values is
    several times faster than ``pd.factorize(sort=True)`` on the full column."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        # Its codes already: only the categories still used (a filter may have dropped some).
        codes = values.cat.codes.to_numpy().astype(np.int64)
        used = np.bincount(codes, minlength=len(values.cat.categories)) > 0
        dense = np.cumsum(used) - 1
        codes, uniques = dense[codes], values.cat.categories[used]
    else:
        codes, uniques = pd.factorize(values)
    index = pd.Index(uniques)
    order = index.argsort()  # Arrow-backed strings sort ~10x faster than an object array
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[codes], index[order]
