"""Crowd label aggregation: majority vote and Dawid-Skene, crowd-kit style, in vectorised numpy.

Both take the long frame (video_id, annotator_id, label) and the taxonomy's class list and expose
``fit``/``fit_predict`` and fitted attributes ending in ``_`` (``labels_``, ``probas_``, ``ties_``).
Ties are never broken silently: by default a tied item gets a missing label and is listed in
``ties_`` so the protocol can send it to the expert.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from emotions_data.agreement.frame import Encoded, FloatArray, IntArray, encode
from emotions_data.schema.errors import ConfigError
from emotions_data.schema.taxonomy import Taxonomy

TiePolicy = Literal["none", "random", "first"]
TIE_POLICIES: tuple[str, ...] = ("none", "random", "first")

#: Floor for probabilities before taking logs: a class an annotator never used for a true class
#: must lower an item's posterior, not veto it outright (which would make all-zero posteriors).
_PROB_FLOOR = 1e-10


def _labels_series(
    enc: Encoded, winner: IntArray, valid: npt.NDArray[np.bool_] | None = None
) -> pd.Series:
    names = np.asarray(enc.classes, dtype=object)[winner]
    if valid is not None:
        names[~valid] = None
    return pd.Series(names, index=enc.items, name="label", dtype="string")


def _probas_frame(enc: Encoded, probas: FloatArray) -> pd.DataFrame:
    frame = pd.DataFrame(probas, index=enc.items, columns=list(enc.classes))
    frame.columns.name = "label"
    return frame


def _top_votes(counts: IntArray) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """``is_top[i, c]``: class ``c`` has item ``i``'s highest count; ``tied[i]``: several do."""
    is_top = counts == counts.max(axis=1, keepdims=True)
    return is_top, is_top.sum(axis=1) > 1


class MajorityVote:
    """The most frequent label per item.

    ``tie_policy``: ``"none"`` (default) leaves tied items without a label; ``"first"`` takes the
    tied class that comes first in the taxonomy; ``"random"`` draws among the tied classes with
    ``seed``. Whatever the policy, tied items are listed in ``ties_``.
    """

    def __init__(self, tie_policy: TiePolicy = "none", seed: int = 0) -> None:
        if tie_policy not in TIE_POLICIES:
            raise ConfigError(
                f"tie_policy {tie_policy!r} is not supported; allowed: {', '.join(TIE_POLICIES)}"
            )
        self.tie_policy = tie_policy
        self.seed = seed

    def fit(self, frame: pd.DataFrame, classes: Sequence[str] | Taxonomy) -> MajorityVote:
        return self.fit_encoded(encode(frame, classes))

    def fit_encoded(self, enc: Encoded) -> MajorityVote:
        counts = enc.counts
        is_top, tied = _top_votes(counts)
        if self.tie_policy == "random":
            keys = np.random.default_rng(self.seed).random(counts.shape)
            winner = np.where(is_top, keys, -1.0).argmax(axis=1)
        else:
            winner = counts.argmax(axis=1)  # argmax takes the first tied class
        valid = ~tied if self.tie_policy == "none" else None
        totals = counts.sum(axis=1, keepdims=True)
        self.counts_ = pd.DataFrame(counts, index=enc.items, columns=list(enc.classes))
        self.probas_ = _probas_frame(enc, counts / np.maximum(totals, 1))
        self.labels_ = _labels_series(enc, winner, valid)
        self.ties_ = enc.items[tied]
        return self

    def fit_predict(self, frame: pd.DataFrame, classes: Sequence[str] | Taxonomy) -> pd.Series:
        return self.fit(frame, classes).labels_


class DawidSkene:
    """Dawid and Skene (1979): EM over per-annotator confusion matrices and class priors.

    Initialised from the majority-vote shares. Each iteration is a handful of ``bincount`` and
    fancy-indexing passes over the judgements (no Python loop over items or annotators). Stops
    when the mean log-likelihood per judgement changes by less than ``tol``; ``n_iter`` is a cap.
    ``seed`` is accepted for interface stability: the algorithm is deterministic, and the rare
    exact ties in the posterior go to the class first in the taxonomy.

    Fitted: ``labels_`` (Series), ``probas_`` (item x class posteriors), ``ties_`` (items whose
    top posterior is shared), ``priors_`` (Series), ``confusions_`` (array annotators x true x
    given, rows sum to 1) with ``annotators_``, ``n_iter_``, ``log_likelihoods_``.
    """

    def __init__(self, n_iter: int = 100, tol: float = 1e-5, seed: int = 0) -> None:
        if n_iter < 1:
            raise ConfigError(f"n_iter must be at least 1, got {n_iter}")
        self.n_iter = n_iter
        self.tol = tol
        self.seed = seed

    def fit(self, frame: pd.DataFrame, classes: Sequence[str] | Taxonomy) -> DawidSkene:
        return self.fit_encoded(encode(frame, classes))

    def fit_encoded(self, enc: Encoded) -> DawidSkene:
        k, n_ann = enc.k, enc.n_annotators
        # Sort judgements by item once so per-item sums are one np.add.reduceat.
        order = np.argsort(enc.item, kind="stable")
        item, ann, label = enc.item[order], enc.annotator[order], enc.label[order]
        starts = np.flatnonzero(np.r_[True, item[1:] != item[:-1]])
        # Flat index of (annotator, given label) per judgement, for the M-step bincounts.
        cell = ann * k + label
        counts = enc.counts
        post = counts / counts.sum(axis=1, keepdims=True)
        log_likelihoods: list[float] = []
        conf: FloatArray = np.empty((n_ann, k, k))
        priors: FloatArray = np.empty(k)
        for _ in range(self.n_iter):
            priors, conf = self._m_step(post, item, cell, n_ann, k)
            post, ll = self._e_step(priors, conf, cell, starts)
            log_likelihoods.append(ll / len(item))
            if (
                len(log_likelihoods) > 1
                and abs(log_likelihoods[-1] - log_likelihoods[-2]) < self.tol
            ):
                break
        _, tied = _top_votes(post)
        self.probas_ = _probas_frame(enc, post)
        self.labels_ = _labels_series(enc, post.argmax(axis=1))
        self.ties_ = enc.items[tied]
        self.priors_ = pd.Series(priors, index=list(enc.classes), name="prior")
        self.confusions_ = conf
        self.annotators_ = enc.annotators
        self.n_iter_ = len(log_likelihoods)
        self.log_likelihoods_ = log_likelihoods
        return self

    @staticmethod
    def _m_step(
        post: FloatArray, item: IntArray, cell: IntArray, n_ann: int, k: int
    ) -> tuple[FloatArray, FloatArray]:
        priors = post.mean(axis=0)
        weights = post.T[:, item]  # (true class, judgements), rows contiguous for bincount
        # conf[a, t, g] = sum of P(true = t) over judgements of annotator a that gave g
        sums: FloatArray = np.stack(
            [np.bincount(cell, weights=weights[t], minlength=n_ann * k) for t in range(k)],
            axis=0,
        )
        sums = sums.reshape(k, n_ann, k).transpose(1, 0, 2)
        totals = sums.sum(axis=2, keepdims=True)
        # A true class an annotator never (softly) saw: no evidence, so a uniform row.
        conf: FloatArray = np.where(totals > 0, sums / np.where(totals > 0, totals, 1.0), 1.0 / k)
        return priors, conf

    @staticmethod
    def _e_step(
        priors: FloatArray, conf: FloatArray, cell: IntArray, starts: IntArray
    ) -> tuple[FloatArray, float]:
        n_ann, k, _ = conf.shape
        # Rows (annotator, given label), columns true class: one contiguous take per judgement.
        log_conf = np.log(np.maximum(conf, _PROB_FLOOR)).transpose(0, 2, 1).reshape(n_ann * k, k)
        # log P(given label | true = t) per judgement, summed per item (items are contiguous)
        per_judgement = np.take(log_conf, cell, axis=0)
        log_post = np.add.reduceat(per_judgement, starts, axis=0)
        log_post += np.log(np.maximum(priors, _PROB_FLOOR))
        top = log_post.max(axis=1, keepdims=True)
        unnorm = np.exp(log_post - top)
        norm = unnorm.sum(axis=1, keepdims=True)
        ll = float((top[:, 0] + np.log(norm[:, 0])).sum())
        return unnorm / norm, ll

    def fit_predict(self, frame: pd.DataFrame, classes: Sequence[str] | Taxonomy) -> pd.Series:
        return self.fit(frame, classes).labels_

    def confusion(self, annotator_id: str) -> pd.DataFrame:
        """One annotator's confusion matrix (rows: true class, columns: given class)."""
        try:
            i = self.annotators_.get_loc(annotator_id)
        except KeyError:
            raise ConfigError(f"annotator {annotator_id!r} did not take part in the fit") from None
        classes = list(self.priors_.index)
        return pd.DataFrame(
            self.confusions_[i],
            index=pd.Index(classes, name="true"),
            columns=pd.Index(classes, name="given"),
        )
