"""EP-CE against hand-worked values, the warm-up + cosine schedule, and the metrics."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from emotions_data.baselines.avcpnet import EPCELoss
from emotions_data.baselines.avcpnet.loss import MultiTaskLoss
from emotions_data.baselines.avcpnet.metrics import classification_metrics, plot_confusion
from emotions_data.baselines.avcpnet.schedule import lr_factor
from emotions_data.schema.errors import ConfigError
from emotions_data.schema.taxonomy import Taxonomy

# classes: 0 excitation(+) 1 fear(-) 2 neutral(0) 3 relaxation(+) 4 sadness(-) 5 tension(-)
LOGITS = torch.tensor(
    [
        [2.0, 1.0, 0.0, 0.0, 0.0, 0.0],  # true excitation, predicted excitation: w = 1
        [0.0, 3.0, 0.0, 1.0, 0.0, 0.0],  # true relaxation, predicted fear (negative): w = 1.5
        [0.0, 0.0, 0.0, 2.0, 0.0, 0.0],  # true excitation, predicted relaxation (positive): w = 1
    ]
)
TARGET = torch.tensor([0, 3, 0])


def _ce_by_hand() -> list[float]:
    e = math.e
    return [
        math.log(e**2 + e + 4) - 2,
        math.log(4 + e**3 + e) - 1,
        math.log(5 + e**2),
    ]


def test_epce_matches_hand_worked_values() -> None:
    ce = _ce_by_hand()
    expected = (ce[0] * 1.0 + ce[1] * 1.5 + ce[2] * 1.0) / 3
    loss = EPCELoss()(LOGITS, TARGET)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert EPCELoss().weights(LOGITS, TARGET).tolist() == [1.0, 1.5, 1.0]


def test_epce_uses_the_true_class_polarity_lambda() -> None:
    loss = EPCELoss(lambdas={"positive": 2.0, "negative": 0.1})
    ce = _ce_by_hand()
    # sample 2's true class is positive, so its weight is 1 + 2.0 whatever the negative lambda
    expected = (ce[0] + 3.0 * ce[1] + ce[2]) / 3
    assert loss(LOGITS, TARGET).item() == pytest.approx(expected, rel=1e-6)


def test_epce_with_zero_lambdas_is_cross_entropy() -> None:
    torch.manual_seed(0)
    logits = torch.randn(64, 6)
    target = torch.randint(0, 6, (64,))
    zero = EPCELoss(lambdas={"positive": 0.0, "neutral": 0.0, "negative": 0.0})
    assert zero(logits, target).item() == pytest.approx(F.cross_entropy(logits, target).item())
    assert EPCELoss()(logits, target).item() > F.cross_entropy(logits, target).item()


def test_epce_weights_carry_no_gradient() -> None:
    logits = LOGITS.clone().requires_grad_(True)
    EPCELoss()(logits, TARGET).backward()
    w = torch.tensor([1.0, 1.5, 1.0])
    onehot = F.one_hot(TARGET, 6).float()
    manual = w[:, None] * (torch.softmax(LOGITS, 1) - onehot) / 3
    assert logits.grad is not None
    assert torch.allclose(logits.grad, manual, atol=1e-6)


def test_epce_needs_a_polarity_map() -> None:
    with pytest.raises(ConfigError, match="no polarity map"):
        EPCELoss(Taxonomy(name="flat", classes=("a", "b")))
    with pytest.raises(ConfigError, match="unknown polarity"):
        EPCELoss(lambdas={"joyful": 1.0})


def test_multitask_loss_sums_the_three_heads() -> None:
    out = {"logits": LOGITS, "logits_visual": LOGITS * 2, "logits_audio": LOGITS * 0.5}
    single = EPCELoss()
    expected = sum(
        single(v, TARGET).item() * w for v, w in zip(out.values(), (1.0, 2.0, 0.5), strict=True)
    )
    got = MultiTaskLoss(weights=(1.0, 2.0, 0.5))(out, TARGET).item()
    assert got == pytest.approx(expected, rel=1e-6)


def test_schedule_warms_up_then_decays_to_the_minimum() -> None:
    total, warm = 100, 10
    f = [lr_factor(s, total, warm, start=0.1, minimum=0.01) for s in range(total + 5)]
    assert f[0] == pytest.approx(0.1)
    assert f[5] == pytest.approx(0.55)
    assert f[warm] == pytest.approx(1.0)
    assert f[warm + 45] == pytest.approx((1 + 0.01) / 2)
    assert f[total] == pytest.approx(0.01) and f[total + 4] == pytest.approx(0.01)
    assert all(a <= b for a, b in itertools.pairwise(f[: warm + 1]))
    assert all(a >= b for a, b in itertools.pairwise(f[warm:]))
    assert max(f) == pytest.approx(1.0)  # the released code's bug kept it at the minimum


def test_metrics_by_hand(tmp_path) -> None:  # type: ignore[no-untyped-def]
    m = classification_metrics([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], ("a", "b", "c"))
    assert m["confusion_matrix"]["matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert m["accuracy"] == pytest.approx(0.6)
    assert m["uar"] == pytest.approx(0.5)
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert m["weighted_f1"] == pytest.approx((0.5 * 2 + 0.8 * 2) / 5)
    assert m["per_class_accuracy"] == {"a": 0.5, "b": 1.0, "c": 0.0}
    absent = classification_metrics([0, 0], [0, 1], ("a", "b"))
    assert absent["per_class_accuracy"]["b"] is None and absent["uar"] == pytest.approx(0.5)
    png = plot_confusion(m, tmp_path / "cm.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
