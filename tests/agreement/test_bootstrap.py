from __future__ import annotations

import numpy as np
import pytest

from emotions_data.agreement import encode, statistics_from_counts
from emotions_data.agreement.bootstrap import (
    bootstrap,
    check_bootstrap_args,
    percentile_interval,
    replicate_sums,
)
from emotions_data.agreement.statistics import features
from emotions_data.schema.errors import ConfigError
from emotions_data.schema.taxonomy import load_taxonomy
from emotions_data.testing.manifests import synthetic_crowd

CLASSES = load_taxonomy().classes


def _counts(n_items: int, seed: int = 0) -> np.ndarray:
    frame, _ = synthetic_crowd(n_items, min_judgements=1, max_judgements=6, seed=seed)
    return encode(frame, CLASSES).counts


def test_vectorised_replicates_equal_explicit_resamples() -> None:
    """Replicate b is exactly the statistic of the count table resampled with the same draws."""
    counts = _counts(300)
    pairable = counts[counts.sum(axis=1) >= 2]
    feats = features(counts)
    boot = bootstrap(feats, 5, 6, np.random.default_rng(11))
    picks = np.random.default_rng(11).integers(0, feats.n_items, size=(5, feats.n_items))
    for b in range(5):
        explicit = statistics_from_counts(pairable[picks[b]])
        assert boot.krippendorff_alpha[b] == pytest.approx(float(explicit.krippendorff_alpha))
        assert boot.fleiss_kappa[b] == pytest.approx(float(explicit.fleiss_kappa))
        assert boot.gwet_ac1[b] == pytest.approx(float(explicit.gwet_ac1))
        np.testing.assert_allclose(boot.class_alpha[b], explicit.class_alpha)


def test_chunking_gives_the_same_sums_as_one_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    feats = features(_counts(200))
    whole = replicate_sums(feats, 7, np.random.default_rng(3))
    monkeypatch.setattr("emotions_data.agreement.bootstrap._CHUNK_CELLS", feats.n_items * 2)
    chunked = replicate_sums(feats, 7, np.random.default_rng(3))
    np.testing.assert_allclose(whole, chunked)


def test_seeded_and_covering_the_estimate() -> None:
    counts = _counts(1500, seed=2)
    feats = features(counts)
    a = bootstrap(feats, 300, 6, np.random.default_rng(5)).krippendorff_alpha
    b = bootstrap(feats, 300, 6, np.random.default_rng(5)).krippendorff_alpha
    c = bootstrap(feats, 300, 6, np.random.default_rng(6)).krippendorff_alpha
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    point = float(statistics_from_counts(counts).krippendorff_alpha)
    interval = percentile_interval(a, 0.95)
    assert interval.low < point < interval.high
    assert 0.005 < interval.high - interval.low < 0.1
    # more items, narrower interval
    big = features(_counts(6000, seed=2))
    wide = percentile_interval(
        bootstrap(big, 300, 6, np.random.default_rng(5)).krippendorff_alpha, 0.95
    )
    assert wide.high - wide.low < interval.high - interval.low


def test_arguments_are_checked() -> None:
    with pytest.raises(ConfigError, match="--bootstrap"):
        check_bootstrap_args(-1, 0.95)
    with pytest.raises(ConfigError, match="--ci"):
        check_bootstrap_args(10, 1.5)
    empty = percentile_interval(np.full(4, np.nan), 0.9)
    assert np.isnan(empty.low) and empty.to_dict()["low"] is None
