"""The annotation protocol as data: stages, overlap, rotation, thresholds, expert rule (YAML).

The default ``annotation/protocols/emotions.yaml`` follows the paper's figure. Every command of
``annotate`` reads the protocol, so a lab changes its process by editing YAML, not code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emotions_data.schema.errors import ConfigError
from emotions_data.schema.resources import ANNOTATION_DIR
from emotions_data.schema.taxonomy import Taxonomy, load_taxonomy
from emotions_data.schema.yamlfile import read_yaml

DEFAULT_PROTOCOL = "emotions"
STAGE_KINDS = ("annotate", "evaluate", "expert")
SOURCES = ("all", "rotation", "disputed", "uncertain")
ACTIONS = ("remove", "move")
METHODS = ("majority", "dawid-skene")
#: The group name of expert annotators in the groups manifest.
EXPERT_GROUP = "expert"


@dataclass(frozen=True)
class Stage:
    name: str
    kind: str
    source: str = "all"
    from_stages: tuple[str, ...] = ()
    judgements: int = 3
    offset: int = 1
    clear_majority: float = 0.5
    # evaluate stages
    stages: tuple[str, ...] = ()
    min_agreement: float = 0.5
    min_kappa: float = 0.3
    min_judgements: int = 5
    action: str = "remove"

    @property
    def labels_items(self) -> bool:
        """Whether the stage has Label Studio projects (annotate and expert stages)."""
        return self.kind in ("annotate", "expert")


@dataclass(frozen=True)
class Protocol:
    name: str
    taxonomy: Taxonomy
    groups: int
    stages: tuple[Stage, ...]
    finalize_stages: tuple[str, ...]
    finalize_method: str = "majority"
    exclude_inactive: bool = True
    source: str = "<dict>"
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise ConfigError(
            f"{self.source}: no stage {name!r}; stages: {', '.join(s.name for s in self.stages)}"
        )

    def labelling_stages(self) -> list[Stage]:
        return [s for s in self.stages if s.labels_items]

    def index(self, name: str) -> int:
        return [s.name for s in self.stages].index(self.stage(name).name)


def _names(value: Any, what: str, source: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(f"{source}: {what} must be a stage name or a list of stage names")


def _number(raw: dict[str, Any], key: str, default: float, source: str, lo: float = 0.0) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < lo:
        raise ConfigError(f"{source}: {key} must be a number >= {lo}, got {value!r}")
    return float(value)


def _stage(raw: Any, source: str, seen: list[str]) -> Stage:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise ConfigError(f"{source}: each stage must be a mapping with a 'name'")
    name = raw["name"]
    where = f"{source}: stage {name!r}"
    if name in seen:
        raise ConfigError(f"{where} is declared twice")
    kind = raw.get("kind", "annotate")
    if kind not in STAGE_KINDS:
        raise ConfigError(
            f"{where}: kind {kind!r} is not allowed; allowed: {', '.join(STAGE_KINDS)}"
        )
    source_rule = raw.get("source", "all" if kind == "annotate" else "uncertain")
    if kind != "evaluate" and source_rule not in SOURCES:
        raise ConfigError(
            f"{where}: source {source_rule!r} is not allowed; allowed: {', '.join(SOURCES)}"
        )
    action = raw.get("action", "remove")
    if action not in ACTIONS:
        raise ConfigError(
            f"{where}: action {action!r} is not allowed; allowed: {', '.join(ACTIONS)}"
        )
    from_stages = _names(raw.get("from"), "'from'", where)
    stages = _names(raw.get("stages"), "'stages'", where)
    for ref in (*from_stages, *stages):
        if ref not in seen:
            raise ConfigError(f"{where} refers to {ref!r}, which is not an earlier stage")
    if kind != "evaluate" and source_rule != "all" and not from_stages:
        raise ConfigError(f"{where}: source {source_rule!r} needs 'from' (earlier stages)")
    judgements = int(_number(raw, "judgements", 1 if kind == "expert" else 3, where, lo=1))
    return Stage(
        name=name,
        kind=kind,
        source=source_rule if kind != "evaluate" else "all",
        from_stages=from_stages,
        judgements=judgements,
        offset=int(_number(raw, "offset", 1, where)),
        clear_majority=_number(raw, "clear_majority", 0.5, where),
        stages=stages,
        min_agreement=_number(raw, "min_agreement", 0.5, where),
        min_kappa=_number(raw, "min_kappa", 0.3, where, lo=-1.0),
        min_judgements=int(_number(raw, "min_judgements", 5, where)),
        action=action,
    )


def _taxonomy_ref(value: Any, source: str) -> Any:
    """A relative taxonomy path is relative to the protocol file, not the working directory.

    A bare name (``emotions6``) stays a bundled taxonomy unless a file of that name sits next
    to the protocol; anything with a suffix or a folder is a path.
    """
    if not isinstance(value, str) or not value or source.startswith("<"):
        return value
    ref = Path(value)
    if ref.is_absolute():
        return value
    beside = Path(source).parent / ref
    if ref.suffix or len(ref.parts) > 1 or beside.exists():
        return beside
    return value


def protocol_from_dict(data: Any, source: str = "<dict>") -> Protocol:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a protocol must be a mapping with 'stages'")
    raw_stages = data.get("stages")
    if not isinstance(raw_stages, list) or not raw_stages:
        raise ConfigError(f"{source}: 'stages' must be a non-empty list")
    stages: list[Stage] = []
    for raw in raw_stages:
        stage = _stage(raw, source, [s.name for s in stages])
        stages.append(stage)
    groups = int(_number(data, "groups", 3, source, lo=1))
    fin = data.get("finalize") or {}
    if not isinstance(fin, dict):
        raise ConfigError(f"{source}: 'finalize' must be a mapping")
    names = [s.name for s in stages]
    default_final = tuple(s.name for s in stages if s.kind == "annotate")
    fin_stages = _names(fin.get("stages"), "finalize.stages", source) or default_final
    for ref in fin_stages:
        if ref not in names:
            raise ConfigError(f"{source}: finalize.stages names unknown stage {ref!r}")
    method = fin.get("method", "majority")
    if method not in METHODS:
        raise ConfigError(
            f"{source}: finalize.method {method!r} is not allowed; allowed: {', '.join(METHODS)}"
        )
    return Protocol(
        name=str(data.get("name") or Path(source).stem),
        taxonomy=load_taxonomy(_taxonomy_ref(data.get("taxonomy"), source)),
        groups=groups,
        stages=tuple(stages),
        finalize_stages=fin_stages,
        finalize_method=method,
        exclude_inactive=bool(fin.get("exclude_inactive", True)),
        source=source,
        raw=data,
    )


def load_protocol(name_or_path: str | Path | Protocol | None = None) -> Protocol:
    """Load a protocol by bundled name (``emotions``) or YAML path; ``None`` is the default."""
    if isinstance(name_or_path, Protocol):
        return name_or_path
    path = Path(name_or_path or DEFAULT_PROTOCOL)
    if not path.suffix and not path.exists():
        path = ANNOTATION_DIR / "protocols" / f"{path}.yaml"
    data = read_yaml(path, "protocol")
    return protocol_from_dict(data, source=str(path))
