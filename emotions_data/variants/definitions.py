"""Variant definitions as data: ``annotation/variants.yaml`` (a lab adds its own entries)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emotions_data.schema.errors import ConfigError
from emotions_data.schema.resources import ANNOTATION_DIR
from emotions_data.schema.yamlfile import read_yaml

DEFAULT_VARIANTS = ANNOTATION_DIR / "variants.yaml"
RULES = ("full", "balanced", "test_oriented")

#: Parameters each rule accepts, with their defaults.
RULE_PARAMS: dict[str, dict[str, Any]] = {
    "full": {"ratios": [0.7, 0.1, 0.2]},
    "balanced": {"per_class": None},
    "test_oriented": {
        "min_support": 1.0,
        "include_expert": True,
        "test_share": 0.2,
        "test_per_class": None,
        "train_val_ratios": [0.875, 0.125],
    },
}


@dataclass(frozen=True)
class VariantSpec:
    name: str
    rule: str
    params: dict[str, Any] = field(default_factory=dict)
    rationale: str = ""

    def definition(self) -> dict[str, Any]:
        """What goes into the manifest metadata and the dataset card."""
        return {"rule": self.rule, **self.params, "rationale": self.rationale}


def _check_params(name: str, rule: str, entry: dict[str, Any], source: str) -> dict[str, Any]:
    allowed = RULE_PARAMS[rule]
    unknown = sorted(set(entry) - set(allowed) - {"rule", "rationale"})
    if unknown:
        raise ConfigError(
            f"{source}: variant {name!r} has unknown key(s) {unknown}; rule {rule!r} allows: "
            f"{', '.join(allowed) or 'none'}"
        )
    params = {k: entry.get(k, v) for k, v in allowed.items()}
    for key in ("per_class", "test_per_class"):
        value = params.get(key)
        # bool is an int in Python: YAML `true` must not read as 1
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 1
        ):
            raise ConfigError(
                f"{source}: variant {name!r}: {key} must be a positive integer or null"
            )
    if rule == "test_oriented":
        if not isinstance(params["include_expert"], bool):
            raise ConfigError(
                f"{source}: variant {name!r}: include_expert must be true or false, "
                f"got {params['include_expert']!r}"
            )
        support = params["min_support"]
        if not isinstance(support, int | float) or not 0 < float(support) <= 1:
            raise ConfigError(f"{source}: variant {name!r}: min_support must be in (0, 1]")
        share = params["test_share"]
        if not isinstance(share, int | float) or not 0 < float(share) < 1:
            raise ConfigError(f"{source}: variant {name!r}: test_share must be in (0, 1)")
        tv = params["train_val_ratios"]
        if (
            not isinstance(tv, list)
            or len(tv) != 2
            or not all(isinstance(v, int | float) and v >= 0 for v in tv)
            or abs(sum(tv) - 1) > 1e-6
            or tv[0] <= 0
        ):
            raise ConfigError(
                f"{source}: variant {name!r}: train_val_ratios must be two shares summing to 1"
            )
    if rule == "full":
        from emotions_data.variants.split import parse_ratios

        try:
            params["ratios"] = list(parse_ratios(params["ratios"]))
        except ConfigError as exc:
            raise ConfigError(f"{source}: variant {name!r}: {exc}") from None
    return params


def load_variants(path: str | Path | None = None) -> list[VariantSpec]:
    """Read and check a variants YAML; the default is the bundled ``annotation/variants.yaml``."""
    path = Path(path) if path is not None else DEFAULT_VARIANTS
    source = str(path)
    data = read_yaml(path, "variants")
    entries = data.get("variants") if isinstance(data, dict) else None
    if not isinstance(entries, dict) or not entries:
        raise ConfigError(f"{source}: expected a mapping 'variants: {{name: {{rule: ...}}}}'")
    specs: list[VariantSpec] = []
    for name, entry in entries.items():
        if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
            raise ConfigError(f"{source}: variant name {name!r} must be a plain file name")
        if not isinstance(entry, dict):
            raise ConfigError(f"{source}: variant {name!r} must be a mapping with a 'rule'")
        rule = entry.get("rule")
        if rule not in RULES:
            raise ConfigError(
                f"{source}: variant {name!r} has rule {rule!r}; allowed: {', '.join(RULES)}"
            )
        params = _check_params(name, str(rule), entry, source)
        specs.append(
            VariantSpec(name, str(rule), params, str(entry.get("rationale") or "").strip())
        )
    return specs
