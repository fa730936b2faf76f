"""The annotation protocol as data: stages, overlap, rotation, thresholds, expert rule (YAML).

The default ``annotation/protocols/emotions.yaml`` follows the paper's figure. Every command of
``annotate`` reads the protocol, so a lab changes its process by editing YAML, not code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emotions_data.schema.config import build, check, config_error, show
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


@dataclass(frozen=True)
class _StageEntry:
    """A stage as written in the YAML; ``None``: the default of the stage's kind."""

    name: str
    kind: str = "annotate"
    source: str | None = None
    from_: str | list[str] | None = field(default=None, metadata={"key": "from"})
    judgements: int | None = None
    offset: int = 1
    clear_majority: float = 0.5
    stages: str | list[str] | None = None
    min_agreement: float = 0.5
    min_kappa: float = 0.3
    min_judgements: int = 5
    action: str = "remove"


@dataclass(frozen=True)
class _FinalizeEntry:
    stages: str | list[str] | None = None
    method: str = "majority"
    exclude_inactive: bool = True


@dataclass(frozen=True)
class _ProtocolEntry:
    """The top level of a protocol YAML; each stage is built on its own (``_stage``)."""

    stages: list[dict[str, Any]]
    name: str | None = None
    taxonomy: str | None = None
    groups: int = 3
    finalize: _FinalizeEntry = field(default_factory=_FinalizeEntry)


def _names(value: str | list[str] | None) -> tuple[str, ...]:
    """A stage name or a list of them, as a tuple."""
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _stage(raw: dict[str, Any], index: int, source: str, seen: list[str]) -> Stage:
    name = raw.get("name")
    key = f"stages.{name}" if isinstance(name, str) else f"stages[{index}]"
    entry = build(_StageEntry, raw, source, prefix=key)
    if entry.name in seen:
        raise config_error(source, f"{key}.name", "a stage name not used before", show(name))
    kind = entry.kind
    check(kind in STAGE_KINDS, source, f"{key}.kind", f"one of {', '.join(STAGE_KINDS)}", kind)
    source_rule = entry.source or ("all" if kind == "annotate" else "uncertain")
    if kind != "evaluate":
        check(
            source_rule in SOURCES,
            source,
            f"{key}.source",
            f"one of {', '.join(SOURCES)}",
            source_rule,
        )
    action = entry.action
    check(action in ACTIONS, source, f"{key}.action", f"one of {', '.join(ACTIONS)}", action)
    from_stages, stages = _names(entry.from_), _names(entry.stages)
    for what, refs in (("from", from_stages), ("stages", stages)):
        for ref in refs:
            check(ref in seen, source, f"{key}.{what}", "names of earlier stages", ref)
    if kind != "evaluate" and source_rule != "all" and not from_stages:
        raise config_error(
            source, f"{key}.from", f"earlier stages for source {source_rule!r}", "nothing"
        )
    judgements = (
        entry.judgements if entry.judgements is not None else (1 if kind == "expert" else 3)
    )
    minimums = {
        "judgements": (judgements, 1),
        "offset": (entry.offset, 0),
        "clear_majority": (entry.clear_majority, 0),
        "min_agreement": (entry.min_agreement, 0),
        "min_kappa": (entry.min_kappa, -1),
        "min_judgements": (entry.min_judgements, 0),
    }
    for what, (value, lowest) in minimums.items():
        check(value >= lowest, source, f"{key}.{what}", f"a number >= {lowest}", value)
    return Stage(
        name=entry.name,
        kind=kind,
        source=source_rule if kind != "evaluate" else "all",
        from_stages=from_stages,
        judgements=judgements,
        offset=entry.offset,
        clear_majority=entry.clear_majority,
        stages=stages,
        min_agreement=entry.min_agreement,
        min_kappa=entry.min_kappa,
        min_judgements=entry.min_judgements,
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
    """A protocol from its YAML mapping, typed by ``schema.config`` and checked."""
    top = build(_ProtocolEntry, data, source)
    if not top.stages:
        raise config_error(source, "stages", "a non-empty list of stages", "[]")
    stages: list[Stage] = []
    for index, raw in enumerate(top.stages):
        stages.append(_stage(raw, index, source, [s.name for s in stages]))
    check(top.groups >= 1, source, "groups", "an integer >= 1", top.groups)
    fin = top.finalize
    names = [s.name for s in stages]
    default_final = tuple(s.name for s in stages if s.kind == "annotate")
    fin_stages = _names(fin.stages) or default_final
    for ref in fin_stages:
        check(ref in names, source, "finalize.stages", "names of stages", ref)
    check(
        fin.method in METHODS, source, "finalize.method", f"one of {', '.join(METHODS)}", fin.method
    )
    return Protocol(
        name=top.name or Path(source).stem,
        taxonomy=load_taxonomy(_taxonomy_ref(top.taxonomy, source)),
        groups=top.groups,
        stages=tuple(stages),
        finalize_stages=fin_stages,
        finalize_method=fin.method,
        exclude_inactive=fin.exclude_inactive,
        source=source,
        raw=dict(data),
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
