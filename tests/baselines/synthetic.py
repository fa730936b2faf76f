"""The generated caches of the baseline's tests (they live in ``emotions_data.testing``)."""

from emotions_data.testing.caches import COLOURS, synthetic_cache, synthetic_dataset

__all__ = ["COLOURS", "synthetic_cache", "synthetic_dataset"]
