from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emotions_data.annotation.aggregation import DawidSkene, MajorityVote
from emotions_data.schema.errors import ConfigError, ManifestError
from emotions_data.schema.taxonomy import load_taxonomy
from emotions_data.testing.manifests import synthetic_crowd

CLASSES = load_taxonomy().classes  # excitation, fear, neutral, relaxation, sadness, tension


def _frame(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["video_id", "annotator_id", "label"])


TIED = _frame(
    [
        ("v1", "a", "fear"),
        ("v1", "b", "fear"),
        ("v1", "c", "sadness"),
        ("v2", "a", "tension"),
        ("v2", "b", "excitation"),
        ("v3", "c", "neutral"),
    ]
)


def test_majority_vote_never_breaks_ties_by_default() -> None:
    mv = MajorityVote().fit(TIED, CLASSES)
    assert mv.labels_["v1"] == "fear"
    assert pd.isna(mv.labels_["v2"])
    assert mv.labels_["v3"] == "neutral"
    assert list(mv.ties_) == ["v2"]
    assert mv.probas_.loc["v1", "fear"] == pytest.approx(2 / 3)
    assert np.allclose(mv.probas_.sum(axis=1), 1.0)
    assert mv.counts_.loc["v2"].tolist() == [1, 0, 0, 0, 0, 1]


def test_majority_vote_first_takes_taxonomy_order_and_still_lists_ties() -> None:
    mv = MajorityVote(tie_policy="first").fit(TIED, CLASSES)
    assert mv.labels_["v2"] == "excitation"
    assert list(mv.ties_) == ["v2"]


def test_majority_vote_random_is_seeded_and_picks_a_tied_class() -> None:
    frame = _frame(
        [(f"v{i}", a, lab) for i in range(40) for a, lab in (("a", "fear"), ("b", "tension"))]
    )
    picks = [
        MajorityVote(tie_policy="random", seed=s).fit_predict(frame, CLASSES) for s in (1, 1, 2)
    ]
    assert set(picks[0]) == {"fear", "tension"}  # both occur among 40 ties, nothing else
    pd.testing.assert_series_equal(picks[0], picks[1])
    assert not picks[0].equals(picks[2])


def test_unknown_tie_policy_and_unknown_label_are_typed_errors() -> None:
    with pytest.raises(ConfigError, match=r"tie_policy 'coin'.*allowed: none, random, first"):
        MajorityVote(tie_policy="coin")  # type: ignore[arg-type]
    bad = _frame([("v1", "a", "joy")])
    with pytest.raises(ManifestError, match=r"label 'joy' is not a class.*allowed: excitation"):
        MajorityVote().fit(bad, CLASSES)
    with pytest.raises(ManifestError, match=r"missing column\(s\) \['annotator_id'\]"):
        DawidSkene().fit(bad.drop(columns="annotator_id"), CLASSES)


def test_results_do_not_depend_on_row_order() -> None:
    frame, _ = synthetic_crowd(300, seed=3)
    shuffled = frame.sample(frac=1.0, random_state=1)
    a = DawidSkene().fit(frame, CLASSES)
    b = DawidSkene().fit(shuffled, CLASSES)
    pd.testing.assert_series_equal(a.labels_, b.labels_)
    assert np.allclose(a.probas_.to_numpy(), b.probas_.to_numpy())


def test_dawid_skene_beats_majority_on_a_mixed_crowd() -> None:
    frame, truth = synthetic_crowd(3000, accuracy_range=(0.35, 0.95), seed=1)
    ds = DawidSkene().fit(frame, CLASSES)
    mv = MajorityVote(tie_policy="first").fit(frame, CLASSES)
    ds_acc = (ds.labels_ == truth[ds.labels_.index]).mean()
    mv_acc = (mv.labels_ == truth[mv.labels_.index]).mean()
    assert ds_acc > mv_acc + 0.005, (ds_acc, mv_acc)
    assert ds_acc > 0.88
    assert 1 < ds.n_iter_ < 100  # stopped at its tolerance, not at the cap
    assert np.allclose(ds.probas_.sum(axis=1), 1.0)
    assert np.allclose(ds.confusions_.sum(axis=2), 1.0)
    assert ds.confusions_.shape == (60, 6, 6) and len(ds.annotators_) == 60
    assert ds.priors_.sum() == pytest.approx(1.0)
    # log-likelihood never decreases under EM
    assert np.all(np.diff(ds.log_likelihoods_) > -1e-9)


def test_dawid_skene_exposes_an_adversarial_annotator() -> None:
    """One annotator always answers the 'next' class: majority vote cannot use them, DS can."""
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 6, 400)
    rows = []
    for i, t in enumerate(truth):
        for a in ("good1", "good2"):
            given = t if rng.random() < 0.8 else rng.integers(0, 6)
            rows.append((f"v{i:03d}", a, CLASSES[given]))
        rows.append((f"v{i:03d}", "shifter", CLASSES[(t + 1) % 6]))
    ds = DawidSkene().fit(_frame(rows), CLASSES)
    shifter = ds.confusion("shifter")
    assert shifter.loc["excitation", "fear"] > 0.9  # learnt: true excitation -> says fear
    assert np.trace(shifter.to_numpy()) < 0.5
    acc = (ds.labels_.to_numpy() == np.array(CLASSES)[truth]).mean()
    assert acc > 0.95
    with pytest.raises(ConfigError, match="annotator 'nobody'"):
        ds.confusion("nobody")


def test_dawid_skene_respects_the_iteration_cap() -> None:
    frame, _ = synthetic_crowd(200, seed=2)
    ds = DawidSkene(n_iter=1).fit(frame, CLASSES)
    assert ds.n_iter_ == 1 and len(ds.log_likelihoods_) == 1
    with pytest.raises(ConfigError, match="n_iter"):
        DawidSkene(n_iter=0)
