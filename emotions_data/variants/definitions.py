"""Variant definitions as data: ``annotation/variants.yaml`` (a lab adds its own entries)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from emotions_data.schema.config import build, check, coerce, config_error, load_mapping, show
from emotions_data.schema.errors import ConfigError
from emotions_data.schema.resources import ANNOTATION_DIR

DEFAULT_VARIANTS = ANNOTATION_DIR / "variants.yaml"
RULES = ("full", "balanced", "test_oriented")


@dataclass(frozen=True)
class FullParams:
    ratios: list[float] = field(default_factory=lambda: [0.7, 0.1, 0.2])


@dataclass(frozen=True)
class BalancedParams:
    per_class: int | None = None  # null: the smallest class's count


@dataclass(frozen=True)
class TestOrientedParams:
    min_support: float = 1.0
    include_expert: bool = True
    test_share: float = 0.2
    test_per_class: int | None = None
    train_val_ratios: list[float] = field(default_factory=lambda: [0.875, 0.125])


#: The parameters of each rule, with their types and defaults (read by ``schema.config``).
RULE_PARAMS: dict[str, type[Any]] = {
    "full": FullParams,
    "balanced": BalancedParams,
    "test_oriented": TestOrientedParams,
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
    """The rule's parameters of one entry: typed, defaults filled in, ranges checked."""
    key = f"variants.{name}"
    given = {k: v for k, v in entry.items() if k not in ("rule", "rationale")}
    params: dict[str, Any] = asdict(build(RULE_PARAMS[rule], given, source, prefix=key))
    for count in ("per_class", "test_per_class"):
        value = params.get(count)
        if value is not None:
            check(value >= 1, source, f"{key}.{count}", "a positive integer or null", value)
    if rule == "test_oriented":
        support, share, tv = params["min_support"], params["test_share"], params["train_val_ratios"]
        check(0 < support <= 1, source, f"{key}.min_support", "a number in (0, 1]", support)
        check(0 < share < 1, source, f"{key}.test_share", "a number in (0, 1)", share)
        check(
            len(tv) == 2 and min(tv) >= 0 and tv[0] > 0 and abs(sum(tv) - 1) <= 1e-6,
            source,
            f"{key}.train_val_ratios",
            "two shares summing to 1",
            tv,
        )
    if rule == "full":
        from emotions_data.variants.split import parse_ratios

        try:
            params["ratios"] = list(parse_ratios(params["ratios"]))
        except ConfigError as exc:
            raise config_error(
                source, f"{key}.ratios", "three shares summing to 1", show(params["ratios"])
            ) from exc
    return params


def load_variants(path: str | Path | None = None) -> list[VariantSpec]:
    """Read and check a variants YAML; the default is the bundled ``annotation/variants.yaml``."""
    data, source = load_mapping(Path(path) if path is not None else DEFAULT_VARIANTS, "variants")
    entries = build(_VariantsFile, data, source).variants
    if not entries:
        raise config_error(source, "variants", "a mapping 'name: {rule: ...}'", show(entries))
    specs: list[VariantSpec] = []
    for name, entry in entries.items():
        if not name or "/" in name or name.startswith("."):
            raise config_error(source, "variants", "plain file names as variant names", show(name))
        key = f"variants.{name}"
        if not isinstance(entry, dict):
            raise config_error(source, key, "a mapping with a 'rule'", show(entry))
        rule = entry.get("rule")
        check(rule in RULES, source, f"{key}.rule", f"one of {', '.join(RULES)}", rule)
        params = _check_params(name, str(rule), entry, source)
        rationale = entry.get("rationale")
        rationale = coerce(rationale, str | None, source, f"{key}.rationale")
        specs.append(VariantSpec(name, str(rule), params, (rationale or "").strip()))
    return specs


@dataclass(frozen=True)
class _VariantsFile:
    variants: dict[str, Any] | None = None
