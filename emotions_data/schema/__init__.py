"""The manifest contract shared by every stage: schemas, taxonomy, read/write, errors."""

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
