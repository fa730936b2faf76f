"""Agreement per stage for the report and the dataset card, from the agreement package.

The statistics and the item bootstrap are ``emotions_data.agreement``'s; this module only picks
the crowd judgements (the expert's single judgement per item cannot be paired) and shapes the
figures for the card, the report and Croissant.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from emotions_data.schema.taxonomy import Taxonomy

EXPERT_PREFIX = "expert"


def _value(x: Any) -> float | None:
    return round(float(x), 4) if x is not None and np.isfinite(float(x)) else None


def agreement_by_stage(
    annotations: pd.DataFrame,
    taxonomy: Taxonomy,
    *,
    n_boot: int = 500,
    ci: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """``{"crowd": {...}, "per_stage": {stage: {...}}, ...}``: alpha and its bootstrap CI."""
    from emotions_data.agreement.report import compute_agreement

    stage = annotations["stage"].astype(str)
    crowd = annotations[~stage.str.startswith(EXPERT_PREFIX)]
    if crowd.empty:
        return {}
    report = compute_agreement(
        crowd[["video_id", "annotator_id", "label", "stage"]],
        taxonomy,
        by="stage",
        n_boot=n_boot,
        level=ci,
        seed=seed,
    )
    overall = report.overall
    interval = overall.ci.get("krippendorff_alpha") if overall.ci else None
    pooled = {
        "n_items": overall.n_items,
        "n_judgements": overall.n_judgements,
        "alpha": _value(overall.alpha),
        "ci": [_value(interval.low), _value(interval.high)] if interval is not None else None,
    }
    per_stage: dict[str, Any] = {}
    table = report.per_stage
    order = list(dict.fromkeys(crowd["stage"].astype(str)))
    if table is not None:
        for name in order:
            row = table.loc[name]
            has_ci = "krippendorff_alpha_ci_low" in table.columns
            per_stage[name] = {
                "n_items": int(row["n_items"]),
                "n_judgements": int(row["n_judgements"]),
                "alpha": _value(row["krippendorff_alpha"]),
                "ci": [
                    _value(row["krippendorff_alpha_ci_low"]),
                    _value(row["krippendorff_alpha_ci_high"]),
                ]
                if has_ci
                else None,
            }
    return {
        "measure": "Krippendorff's alpha (nominal)",
        "ci_level": ci,
        "bootstrap": n_boot,
        "crowd": pooled,
        "per_stage": per_stage,
    }
