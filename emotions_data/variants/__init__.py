"""Splits and dataset variants: seeded, stratified, leakage-free (no torch, no Label Studio)."""

from emotions_data.variants.build import (
    VariantResult,
    build_variant_frames,
    build_variants,
    split_dataset,
)
from emotions_data.variants.definitions import VariantSpec, load_variants
from emotions_data.variants.split import (
    SplitResult,
    check_no_leakage,
    leakage_groups,
    make_split,
    parse_ratios,
)

__all__ = [
    "SplitResult",
    "VariantResult",
    "VariantSpec",
    "build_variant_frames",
    "build_variants",
    "check_no_leakage",
    "leakage_groups",
    "load_variants",
    "make_split",
    "parse_ratios",
    "split_dataset",
]
