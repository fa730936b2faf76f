"""EP-CE (emotion-polarity cross-entropy) and the multi-task loss of AV-CPNet."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from emotions_data.schema.errors import ConfigError
from emotions_data.schema.taxonomy import Taxonomy, load_taxonomy


class EPCELoss(nn.Module):
    """Cross-entropy weighted per sample by ``1 + lambda_pol(y)`` when the prediction's polarity
    differs from the true class's polarity: ``L = mean_i(w_i * CE_i)``, ``w_i`` a constant.

    With no arguments it uses the default taxonomy (six eMotions classes, lambdas 0.5).
    """

    class_polarity: Tensor
    class_lambda: Tensor

    def __init__(
        self,
        taxonomy: Taxonomy | str | None = None,
        lambdas: dict[str, float] | None = None,
    ) -> None:
        super().__init__()
        tax = load_taxonomy(taxonomy)
        if not tax.polarity:
            raise ConfigError(f"taxonomy {tax.name!r} has no polarity map; EP-CE needs one")
        polarities = tax.polarities
        lam = {p: 0.5 for p in polarities} | dict(tax.polarity_lambdas) | dict(lambdas or {})
        unknown = sorted(set(lam) - set(polarities))
        if unknown:
            raise ConfigError(
                f"EP-CE lambdas name unknown polarity {unknown}; allowed: {list(polarities)}"
            )
        pol_index = [polarities.index(tax.polarity[c]) for c in tax.classes]
        self.register_buffer("class_polarity", torch.tensor(pol_index, dtype=torch.long))
        self.register_buffer(
            "class_lambda",
            torch.tensor([lam[tax.polarity[c]] for c in tax.classes], dtype=torch.float32),
        )

    def weights(self, logits: Tensor, target: Tensor) -> Tensor:
        """The per-sample weights ``w_i`` (no gradient flows through them)."""
        with torch.no_grad():
            pred = logits.argmax(dim=1)
            wrong_polarity = self.class_polarity[pred] != self.class_polarity[target]
            return 1.0 + self.class_lambda[target] * wrong_polarity.float()

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        ce = F.cross_entropy(logits.float(), target, reduction="none")
        return (self.weights(logits, target) * ce).mean()


class MultiTaskLoss(nn.Module):
    """``w_f L(fused) + w_v L(visual) + w_a L(audio)`` (+ polarity cross-entropy when present)."""

    def __init__(
        self,
        taxonomy: Taxonomy | str | None = None,
        weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
        polarity_weight: float = 0.5,
        epce: bool = True,
    ) -> None:
        super().__init__()
        self.base = EPCELoss(taxonomy)
        self.epce = epce
        self.weights = weights
        self.polarity_weight = polarity_weight

    def term(self, logits: Tensor, target: Tensor) -> Tensor:
        loss: Tensor = (
            self.base(logits, target) if self.epce else F.cross_entropy(logits.float(), target)
        )
        return loss

    def forward(self, outputs: dict[str, Tensor], target: Tensor) -> Tensor:
        return self.with_parts(outputs, target)[0]

    def with_parts(
        self, outputs: dict[str, Tensor], target: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The total loss and its unweighted terms per head (for the per-step log)."""
        w_f, w_v, w_a = self.weights
        parts = {"fused": self.term(outputs["logits"], target)}
        loss = w_f * parts["fused"]
        if w_v:
            parts["visual"] = self.term(outputs["logits_visual"], target)
            loss = loss + w_v * parts["visual"]
        if w_a:
            parts["audio"] = self.term(outputs["logits_audio"], target)
            loss = loss + w_a * parts["audio"]
        if "logits_polarity" in outputs and self.polarity_weight:
            pol_target = self.base.class_polarity[target]
            parts["polarity"] = F.cross_entropy(outputs["logits_polarity"].float(), pol_target)
            loss = loss + self.polarity_weight * parts["polarity"]
        return loss, parts
