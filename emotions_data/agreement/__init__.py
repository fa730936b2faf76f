"""Pure agreement statistics on the long annotation frame (video_id, annotator_id, label).

No torch, no Label Studio: numpy, pandas and the ``krippendorff`` package (imported lazily).
"""

from emotions_data.agreement.annotators import pair_agreement_matrix, per_annotator
from emotions_data.agreement.frame import Encoded, encode
from emotions_data.agreement.statistics import (
    cohen_kappa,
    fleiss_kappa,
    gwet_ac1,
    interpret_alpha,
    krippendorff_alpha,
    pairwise_agreement,
    statistics_from_counts,
)

__all__ = [
    "Encoded",
    "cohen_kappa",
    "encode",
    "fleiss_kappa",
    "gwet_ac1",
    "interpret_alpha",
    "krippendorff_alpha",
    "pair_agreement_matrix",
    "pairwise_agreement",
    "per_annotator",
    "statistics_from_counts",
]
