"""The manifest contract shared by every stage: schemas, taxonomy, read/write, errors.

The names below are loaded on first use (PEP 562), so that importing a light submodule such
as ``emotions_data.schema.errors`` (every command's error handling does) does not import
pandas: ``emotions-data --help`` must stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emotions_data.schema.errors import (
        ConfigError,
        EmotionsDataError,
        ManifestError,
        QualityGateError,
        ServiceError,
        TaxonomyError,
    )
    from emotions_data.schema.io import (
        Manifest,
        ManifestMeta,
        read_manifest,
        read_table_file,
        validate_table,
        write_manifest,
    )
    from emotions_data.schema.manifests import (
        ANNOTATIONS,
        GROUPS,
        KINDS,
        LABELS,
        SPLIT,
        VIDEOS,
        ManifestKind,
    )
    from emotions_data.schema.taxonomy import Taxonomy, load_taxonomy

#: public name -> the submodule that defines it
_SOURCES: dict[str, str] = {
    **dict.fromkeys(
        [
            "ConfigError",
            "EmotionsDataError",
            "ManifestError",
            "QualityGateError",
            "ServiceError",
            "TaxonomyError",
        ],
        "errors",
    ),
    **dict.fromkeys(
        [
            "Manifest",
            "ManifestMeta",
            "read_manifest",
            "read_table_file",
            "validate_table",
            "write_manifest",
        ],
        "io",
    ),
    **dict.fromkeys(
        ["ANNOTATIONS", "GROUPS", "KINDS", "LABELS", "SPLIT", "VIDEOS", "ManifestKind"],
        "manifests",
    ),
    **dict.fromkeys(["Taxonomy", "load_taxonomy"], "taxonomy"),
}


def __getattr__(name: str) -> Any:
    module = _SOURCES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_SOURCES])


__all__ = [
    "ANNOTATIONS",
    "GROUPS",
    "KINDS",
    "LABELS",
    "SPLIT",
    "VIDEOS",
    "ConfigError",
    "EmotionsDataError",
    "Manifest",
    "ManifestError",
    "ManifestKind",
    "ManifestMeta",
    "QualityGateError",
    "ServiceError",
    "Taxonomy",
    "TaxonomyError",
    "load_taxonomy",
    "read_manifest",
    "read_table_file",
    "validate_table",
    "write_manifest",
]
