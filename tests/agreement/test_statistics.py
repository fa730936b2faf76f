"""The statistics against published worked examples, reference packages and their properties."""

from __future__ import annotations

import krippendorff
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from emotions_data.agreement import (
    cohen_kappa,
    encode,
    fleiss_kappa,
    gwet_ac1,
    krippendorff_alpha,
    pairwise_agreement,
    statistics_from_counts,
)
from emotions_data.agreement.statistics import interpret_alpha, krippendorff_alpha_counts
from emotions_data.schema.errors import ManifestError
from emotions_data.schema.taxonomy import load_taxonomy
from emotions_data.testing.manifests import synthetic_crowd

CLASSES = load_taxonomy().classes

# Fleiss (1971), Table 1: 30 patients, each diagnosed by 6 of a pool of psychiatrists into
# 5 categories (1 depression, 2 personality disorder, 3 schizophrenia, 4 neurosis, 5 other).
# Published kappa: .430 (R irr::kappam.fleiss gives 0.4302445).
FLEISS_1971 = [
    [4, 4, 4, 4, 4, 4], [2, 2, 2, 5, 5, 5], [2, 3, 3, 3, 3, 5], [5, 5, 5, 5, 5, 5],
    [2, 2, 2, 4, 4, 4], [1, 1, 3, 3, 3, 3], [3, 3, 3, 3, 5, 5], [1, 1, 3, 3, 3, 4],
    [1, 1, 4, 4, 4, 4], [5, 5, 5, 5, 5, 5], [1, 4, 4, 4, 4, 4], [1, 2, 4, 4, 4, 4],
    [2, 2, 2, 3, 3, 3], [1, 4, 4, 4, 4, 4], [2, 2, 4, 4, 4, 5], [3, 3, 3, 3, 3, 5],
    [1, 1, 1, 4, 5, 5], [1, 1, 1, 1, 1, 2], [2, 2, 4, 4, 4, 4], [1, 3, 3, 5, 5, 5],
    [5, 5, 5, 5, 5, 5], [2, 4, 4, 4, 4, 4], [2, 2, 4, 5, 5, 5], [1, 1, 4, 4, 4, 4],
    [1, 4, 4, 4, 4, 5], [2, 2, 2, 2, 2, 4], [1, 1, 1, 1, 5, 5], [2, 2, 4, 4, 4, 4],
    [1, 3, 3, 3, 3, 3], [5, 5, 5, 5, 5, 5],
]  # fmt: skip

# The worked example of Fleiss' kappa on Wikipedia: 10 subjects, 14 raters, 5 categories,
# P-bar 0.378, Pe 0.213, kappa 0.210.
WIKIPEDIA_FLEISS = [
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
]  # fmt: skip

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers,
# 12 units, missing values; published nominal alpha = 0.743.
K2011 = {
    "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    "C": [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
}
K_CLASSES = ("1", "2", "3", "4", "5")


def _long(matrix: dict[str, list[int | None]]) -> pd.DataFrame:
    rows = [
        (f"u{u:02d}", obs, str(v))
        for obs, values in matrix.items()
        for u, v in enumerate(values, start=1)
        if v is not None
    ]
    return pd.DataFrame(rows, columns=["video_id", "annotator_id", "label"])


def test_fleiss_1971_published_value() -> None:
    counts, _ = aggregate_raters(np.array(FLEISS_1971))
    stats = statistics_from_counts(counts)
    assert float(stats.fleiss_kappa) == pytest.approx(0.430, abs=5e-4)
    assert float(stats.fleiss_kappa) == pytest.approx(0.4302445, abs=1e-7)


def test_wikipedia_fleiss_example() -> None:
    stats = statistics_from_counts(WIKIPEDIA_FLEISS)
    assert float(stats.pairwise_agreement) == pytest.approx(0.378, abs=5e-4)
    assert float(stats.fleiss_kappa) == pytest.approx(0.210, abs=5e-4)


def test_krippendorff_2011_published_nominal_alpha() -> None:
    frame = _long(K2011)
    alpha = krippendorff_alpha(frame, K_CLASSES)
    assert alpha == pytest.approx(0.743, abs=5e-4)
    # unit 12 has one value: it is counted as unpairable and changes nothing
    closed = statistics_from_counts(encode(frame, K_CLASSES).counts).krippendorff_alpha
    assert float(closed) == pytest.approx(alpha, abs=1e-12)


def test_equal_to_krippendorff_package_on_a_ragged_crowd() -> None:
    frame, _ = synthetic_crowd(800, n_annotators=25, min_judgements=1, max_judgements=7, seed=4)
    enc = encode(frame, CLASSES)
    matrix = np.full((enc.n_annotators, enc.n_items), np.nan)
    matrix[enc.annotator, enc.item] = enc.label
    expected = krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
    assert krippendorff_alpha(frame, CLASSES) == pytest.approx(expected, abs=1e-12)
    closed = statistics_from_counts(enc.counts).krippendorff_alpha
    assert float(closed) == pytest.approx(expected, abs=1e-12)


def test_equal_to_statsmodels_with_equal_raters() -> None:
    frame, _ = synthetic_crowd(600, min_judgements=5, max_judgements=5, seed=5)
    counts = encode(frame, CLASSES).counts
    assert fleiss_kappa(frame, CLASSES) == pytest.approx(sm_fleiss_kappa(counts), abs=1e-12)
    # on complete data: alpha = 1 - (1 - kappa)(nN - 1)/(nN), from the two closed forms in
    # emotions_data/agreement/statistics.py (every item with the same n judgements)
    nn = counts.sum()
    kappa = fleiss_kappa(frame, CLASSES)
    assert krippendorff_alpha(frame, CLASSES) == pytest.approx(
        1 - (1 - kappa) * (nn - 1) / nn, abs=1e-12
    )


def test_varying_counts_generalisation_by_hand() -> None:
    # item 1: 3 judgements a,a,b; item 2: 2 judgements b,b; item 3: one judgement (left out)
    counts = np.array([[2, 1], [0, 2], [1, 0]])
    stats = statistics_from_counts(counts)
    p_bar = ((2 * 1) / (3 * 2) + (2 * 1) / (2 * 1)) / 2
    pi = np.array([(2 / 3 + 0) / 2, (1 / 3 + 1) / 2])
    pe = (pi**2).sum()
    assert float(stats.pairwise_agreement) == pytest.approx(p_bar)
    assert float(stats.fleiss_kappa) == pytest.approx((p_bar - pe) / (1 - pe))
    pe1 = (pi * (1 - pi)).sum() / (2 - 1)
    assert float(stats.gwet_ac1) == pytest.approx((p_bar - pe1) / (1 - pe1))


def test_ac1_resists_the_kappa_paradox() -> None:
    """95 % of items agree on the dominant class: kappa collapses, AC1 stays high."""
    rows = [(f"v{i}", a, "neutral") for i in range(95) for a in ("x", "y")]
    rows += [(f"w{i}", "x", "neutral") for i in range(5)]
    rows += [(f"w{i}", "y", "fear") for i in range(5)]
    frame = pd.DataFrame(rows, columns=["video_id", "annotator_id", "label"])
    assert pairwise_agreement(frame, CLASSES) == pytest.approx(0.95)
    assert fleiss_kappa(frame, CLASSES) < 0.0
    assert gwet_ac1(frame, CLASSES) > 0.9


def test_cohen_kappa_matches_hand_computation_and_rejects_unknown() -> None:
    a = ["fear", "fear", "neutral", "neutral", "fear", "sadness"]
    b = ["fear", "neutral", "neutral", "neutral", "fear", "fear"]
    po = 4 / 6
    pe = (3 / 6) * (3 / 6) + (2 / 6) * (3 / 6) + (1 / 6) * 0
    assert cohen_kappa(a, b, CLASSES) == pytest.approx((po - pe) / (1 - pe))
    assert cohen_kappa(a, a, CLASSES) == pytest.approx(1.0)
    with pytest.raises(ManifestError, match="'joy' in sequence b"):
        cohen_kappa(a, [*b[:-1], "joy"], CLASSES)
    with pytest.raises(ManifestError, match="aligned"):
        cohen_kappa(a, b[:3], CLASSES)


def test_undefined_cases_are_nan_and_readings() -> None:
    single_class = pd.DataFrame(
        {"video_id": ["a", "a", "b", "b"], "annotator_id": list("xyxy"), "label": ["fear"] * 4}
    )
    assert np.isnan(krippendorff_alpha(single_class, CLASSES))
    no_pairs = single_class.iloc[[0, 2]]
    assert np.isnan(fleiss_kappa(no_pairs, CLASSES))
    assert [interpret_alpha(x) for x in (0.85, 0.7, 0.3, float("nan"))] == [
        "reliable",
        "tentative",
        "unreliable",
        "undefined",
    ]
    assert np.isnan(krippendorff_alpha_counts(np.zeros((0, 3))))


# ---- properties -------------------------------------------------------------------------------

crowd_params = st.tuples(
    st.integers(min_value=20, max_value=120),  # items
    st.integers(min_value=2, max_value=6),  # judgements per item (max)
    st.integers(min_value=0, max_value=2**31 - 1),  # seed
)


def _random_frame(n_items: int, max_j: int, seed: int, accuracy: float = 0.7) -> pd.DataFrame:
    frame, _ = synthetic_crowd(
        n_items,
        n_annotators=8,
        min_judgements=1,
        max_judgements=max_j,
        accuracy_range=(accuracy, accuracy),
        seed=seed,
    )
    return frame


def _all(frame: pd.DataFrame, classes: tuple[str, ...] = CLASSES) -> np.ndarray:
    return np.array(
        [
            krippendorff_alpha(frame, classes),
            fleiss_kappa(frame, classes),
            pairwise_agreement(frame, classes),
            gwet_ac1(frame, classes),
        ]
    )


@settings(max_examples=25, deadline=None)
@given(crowd_params)
def test_perfect_agreement_gives_one(params: tuple[int, int, int]) -> None:
    n, max_j, seed = params
    frame = _random_frame(n, max(max_j, 2), seed, accuracy=1.0)
    alpha, kappa, p_bar, ac1 = _all(frame)
    if frame.groupby("video_id").size().max() < 2:
        # no item has a pair: every statistic is undefined
        assert np.isnan([alpha, kappa, p_bar, ac1]).all()
    elif frame["label"].nunique() < 2:
        # one class throughout: chance agreement is 1, so alpha and kappa are undefined, while
        # the pairs all agree and AC1's chance term (pi (1 - pi)) is 0
        assert np.isnan(alpha) and np.isnan(kappa)
        assert p_bar == pytest.approx(1.0) and ac1 == pytest.approx(1.0)
    else:
        assert np.allclose([alpha, kappa, p_bar, ac1], 1.0)


@settings(max_examples=25, deadline=None)
@given(crowd_params, st.permutations(range(6)))
def test_relabelling_changes_nothing(params: tuple[int, int, int], perm: list[int]) -> None:
    frame = _random_frame(*params)
    mapping = {c: CLASSES[p] for c, p in zip(CLASSES, perm, strict=True)}
    relabelled = frame.assign(label=frame["label"].map(mapping))
    # the class order of the taxonomy does not matter either
    shuffled_classes = tuple(CLASSES[p] for p in perm)
    np.testing.assert_allclose(_all(frame), _all(relabelled, shuffled_classes), atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(crowd_params, st.sampled_from(CLASSES))
def test_adding_a_single_judgement_item_changes_nothing(
    params: tuple[int, int, int], label: str
) -> None:
    frame = _random_frame(*params)
    extra = pd.DataFrame({"video_id": ["zz-single"], "annotator_id": ["w0"], "label": [label]})
    before, after = _all(frame), _all(pd.concat([frame, extra], ignore_index=True))
    np.testing.assert_allclose(before, after, atol=1e-12, equal_nan=True)


def test_random_labels_give_about_zero() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    frame = pd.DataFrame(
        {
            "video_id": np.repeat(np.arange(n), 4).astype(str),
            "annotator_id": np.tile(["a", "b", "c", "d"], n),
            "label": np.array(CLASSES)[rng.integers(0, 6, 4 * n)],
        }
    )
    alpha, kappa, p_bar, ac1 = _all(frame)
    assert abs(alpha) < 0.01 and abs(kappa) < 0.01 and abs(ac1) < 0.01
    assert p_bar == pytest.approx(1 / 6, abs=0.01)
