"""Stats and plots, the dataset card, Croissant metadata, the release folder and hydrate."""

from emotions_data.release.facts import DatasetFacts, RootPaths, load_facts
from emotions_data.release.hydrate import HydrateResult, availability, hydrate
from emotions_data.release.publish import ReleaseResult, build_release, read_release
from emotions_data.release.stats import StatsResult, write_stats

__all__ = [
    "DatasetFacts",
    "HydrateResult",
    "ReleaseResult",
    "RootPaths",
    "StatsResult",
    "availability",
    "build_release",
    "hydrate",
    "load_facts",
    "read_release",
    "write_stats",
]
