"""The label set as data: a taxonomy YAML names the classes (in index order) and their polarity."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from emotions_data.schema.errors import TaxonomyError
from emotions_data.schema.resources import ANNOTATION_DIR
from emotions_data.schema.yamlfile import read_yaml

DEFAULT_TAXONOMY = "emotions6"


@dataclass(frozen=True)
class Taxonomy:
    """An ordered set of classes; index ``i`` of ``classes`` is the model's class ``i``."""

    name: str
    classes: tuple[str, ...]
    polarity: dict[str, str] = field(default_factory=dict)
    polarity_lambdas: dict[str, float] = field(default_factory=dict)

    def index(self, label: str) -> int:
        try:
            return self.classes.index(label)
        except ValueError:
            raise TaxonomyError(
                f"label {label!r} is not in taxonomy {self.name!r}; allowed: {', '.join(self.classes)}"
            ) from None

    @property
    def polarities(self) -> tuple[str, ...]:
        """Polarity names in first-seen class order (e.g. positive, neutral, negative)."""
        seen: dict[str, None] = {}
        for c in self.classes:
            if c in self.polarity:
                seen.setdefault(self.polarity[c], None)
        return tuple(seen)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "classes": list(self.classes),
            "polarity": dict(self.polarity),
            "polarity_lambdas": dict(self.polarity_lambdas),
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> Taxonomy:
        if not isinstance(data, dict):
            raise TaxonomyError(f"{source}: a taxonomy must be a mapping with 'name' and 'classes'")
        classes = data.get("classes")
        if (
            not isinstance(classes, list)
            or not classes
            or not all(isinstance(c, str) for c in classes)
        ):
            raise TaxonomyError(f"{source}: 'classes' must be a non-empty list of strings")
        if len(set(classes)) != len(classes):
            raise TaxonomyError(f"{source}: 'classes' has duplicates")
        polarity = data.get("polarity") or {}
        if not isinstance(polarity, dict):
            raise TaxonomyError(f"{source}: 'polarity' must map class -> polarity")
        unknown = sorted(set(polarity) - set(classes))
        if unknown:
            raise TaxonomyError(
                f"{source}: polarity names unknown class(es) {unknown}; allowed: {', '.join(classes)}"
            )
        if polarity and set(polarity) != set(classes):
            missing = [c for c in classes if c not in polarity]
            raise TaxonomyError(f"{source}: polarity misses class(es) {missing}")
        lambdas = data.get("polarity_lambdas") or {}
        if not isinstance(lambdas, dict):
            raise TaxonomyError(f"{source}: 'polarity_lambdas' must map polarity -> number")
        bad = sorted(set(lambdas) - set(polarity.values()))
        if bad:
            raise TaxonomyError(f"{source}: polarity_lambdas names unknown polarity {bad}")
        return cls(
            name=str(data.get("name") or Path(source).stem),
            classes=tuple(classes),
            polarity={str(k): str(v) for k, v in polarity.items()},
            polarity_lambdas={str(k): float(v) for k, v in lambdas.items()},
        )


@cache
def _load_path(path: Path) -> Taxonomy:
    data = read_yaml(path, "taxonomy", error=TaxonomyError)
    return Taxonomy.from_dict(data, source=str(path))


def load_taxonomy(name_or_path: str | Path | Taxonomy | None = None) -> Taxonomy:
    """Load a taxonomy by bundled name (``emotions6``) or by YAML path; ``None`` is the default."""
    if isinstance(name_or_path, Taxonomy):
        return name_or_path
    if name_or_path is None:
        name_or_path = DEFAULT_TAXONOMY
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        path = ANNOTATION_DIR / "taxonomies" / f"{name_or_path}.yaml"
        if not path.exists():
            known = sorted(p.stem for p in (ANNOTATION_DIR / "taxonomies").glob("*.yaml"))
            raise TaxonomyError(
                f"unknown taxonomy {str(name_or_path)!r}; bundled: {', '.join(known)}"
            )
    return _load_path(path.resolve())
