from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emotions_data.agreement import krippendorff_alpha, per_annotator
from emotions_data.agreement.annotators import loo_majority, pair_agreement_matrix
from emotions_data.agreement.frame import encode
from emotions_data.agreement.report import compute_agreement, enforce_min_alpha, parse_by
from emotions_data.schema.errors import ConfigError, ManifestError, QualityGateError
from emotions_data.schema.taxonomy import load_taxonomy
from emotions_data.testing.manifests import synthetic_crowd

TAX = load_taxonomy()
CLASSES = TAX.classes


def _staged(n: int = 600, seed: int = 0) -> pd.DataFrame:
    frame, _ = synthetic_crowd(n, n_annotators=12, min_judgements=2, max_judgements=5, seed=seed)
    frame["stage"] = np.where(
        frame["video_id"].str[1:].astype(int) % 3 == 0, "cross_check_a", "primary"
    )
    return frame


def test_loo_majority_and_per_annotator_by_hand() -> None:
    frame = pd.DataFrame(
        [
            ("v1", "a", "fear"),
            ("v1", "b", "fear"),
            ("v1", "c", "sadness"),
            ("v2", "a", "neutral"),
            ("v2", "b", "tension"),
            ("v2", "c", "neutral"),
            ("v3", "a", "fear"),
        ],
        columns=["video_id", "annotator_id", "label"],
    )
    enc = encode(frame, CLASSES)
    majority, defined = loo_majority(enc)
    # v1/a: others fear, sadness -> tie; v1/c: others fear, fear -> fear; v3: alone
    assert defined.tolist() == [False, False, True, False, True, False, False]
    assert CLASSES[majority[2]] == "fear"
    table = per_annotator(frame, CLASSES)
    assert table.loc["a", "judgements"] == 3 and table.loc["a", "n_compared"] == 0
    assert np.isnan(table.loc["a", "agreement"])
    assert table.loc["b", "n_compared"] == 1 and table.loc["b", "agreement"] == 0.0
    assert table.loc["c", "n_compared"] == 1 and table.loc["c", "agreement"] == 0.0


def test_per_annotator_separates_good_from_careless() -> None:
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 6, 500)
    rows = []
    for i, t in enumerate(truth):
        for a in ("g1", "g2", "g3"):
            rows.append(
                (f"v{i}", a, CLASSES[t] if rng.random() < 0.9 else CLASSES[rng.integers(0, 6)])
            )
        rows.append((f"v{i}", "careless", CLASSES[rng.integers(0, 6)]))
    table = per_annotator(
        pd.DataFrame(rows, columns=["video_id", "annotator_id", "label"]), CLASSES
    )
    assert table.loc["careless", "kappa"] < 0.1
    assert table.loc[["g1", "g2", "g3"], "kappa"].min() > 0.7
    share, shared = pair_agreement_matrix(
        encode(pd.DataFrame(rows, columns=["video_id", "annotator_id", "label"]), CLASSES)
    )
    assert shared.loc["g1", "careless"] == 500 and shared.loc["g1", "g2"] == 500
    assert share.loc["g1", "g2"] > 0.75 and share.loc["g1", "careless"] < 0.3
    assert np.allclose(share.to_numpy(), share.to_numpy().T, equal_nan=True)


def test_report_breakdowns_and_subset_consistency() -> None:
    frame = _staged()
    groups = pd.Series({f"w{i}": "A" if i < 6 else "B" for i in range(11)})  # w11 unassigned
    report = compute_agreement(
        frame, TAX, by="class,annotator,group,stage", groups=groups, n_boot=50, seed=3
    )
    assert report.per_stage is not None and report.per_group is not None
    # stages keep the order in which they first appear
    assert list(report.per_stage.index) == list(dict.fromkeys(frame["stage"]))
    primary = frame[frame["stage"] == "primary"]
    assert report.per_stage.loc["primary", "krippendorff_alpha"] == pytest.approx(
        krippendorff_alpha(primary, CLASSES)
    )
    assert set(report.per_group.index) == {"A", "B", "(unassigned)"}
    in_a = frame[frame["annotator_id"].map(groups) == "A"]
    assert report.per_group.loc["A", "n_judgements"] == len(in_a)
    assert report.per_group.loc["A", "krippendorff_alpha"] == pytest.approx(
        krippendorff_alpha(in_a, CLASSES)
    )
    assert "krippendorff_alpha_ci_low" in report.per_group.columns
    assert (
        report.per_annotator is not None
        and report.per_annotator.loc["w11", "group_id"] == "(unassigned)"
    )
    assert report.per_class is not None and report.per_class["judgements"].sum() == len(frame)
    data = report.to_dict()
    for key in ("n_items", "n_items_unpairable", "n_annotators", "n_judgements", "krippendorff_alpha",
                "fleiss_kappa", "pairwise_agreement", "gwet_ac1", "interpretation", "ci",
                "per_class", "per_annotator", "per_group", "per_stage"):  # fmt: skip
        assert key in data, key
    assert data["ci"]["gwet_ac1"]["n_boot"] == 50
    assert data["per_class"][0]["class"] == "excitation"


def test_stage_filter_group_column_and_errors() -> None:
    frame = _staged()
    only = compute_agreement(frame, TAX, stages=["primary"])
    assert only.stages == ["primary"]
    assert only.overall.n_judgements == int((frame["stage"] == "primary").sum())
    with pytest.raises(
        ConfigError, match=r"stage\(s\) \['expert'\] have no judgements; stages present"
    ):
        compute_agreement(frame, TAX, stages=["expert"])
    with pytest.raises(ConfigError, match="--by colour is not supported; allowed: class"):
        parse_by("class,colour")
    with pytest.raises(ConfigError, match="need --groups"):
        compute_agreement(frame, TAX, by="group")
    own = compute_agreement(frame.assign(group_id="G1"), TAX, by="group")
    assert own.per_group is not None and list(own.per_group.index) == ["G1"]
    with pytest.raises(ManifestError, match="no judgements"):
        compute_agreement(frame.iloc[:0], TAX)
    # a plain class list works as the taxonomy too
    assert compute_agreement(frame, CLASSES).overall.n_judgements == len(frame)


def test_min_alpha_gate() -> None:
    report = compute_agreement(_staged(), TAX)
    alpha = report.overall.alpha
    enforce_min_alpha(report, None)
    enforce_min_alpha(report, alpha - 0.01)
    with pytest.raises(QualityGateError, match=r"alpha 0\.\d{4} is below --min-alpha 0\.99") as err:
        enforce_min_alpha(report, 0.99)
    assert err.value.exit_code == 3
