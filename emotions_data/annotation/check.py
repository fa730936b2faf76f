"""``annotate check``: the protocol and the roster or groups hold together before anything is pushed.

What is checked (each problem one line naming the stage, group or annotator and what is allowed):

- routing: with the number of groups at hand, no cross-check sends an item back to a group that
  already judged it (``offset`` of a ``rotation`` or ``disputed`` stage, modulo the group count);
- sizes: every crowd group has at least as many active annotators as the largest ``judgements``
  of a crowd stage (else items silently get fewer judgements than the protocol asks); too few
  active experts for an expert stage is a warning (experts may join later);
- leaders: every crowd group has exactly one active leader;
- the roster's columns (``ROSTER_COLUMNS``): ids present and unique, numbers numeric, yes/no
  columns yes or no, enough annotators and leaders for the groups.

``push`` runs the same check on the groups manifest and refuses to push when it fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from emotions_data.annotation.protocol import EXPERT_GROUP, Protocol, Stage
from emotions_data.schema.errors import ConfigError

#: The roster's columns: name -> what it holds (docs/guides/lab-round.md "The roster", `annotate allocate --help`).
ROSTER_COLUMNS: dict[str, str] = {
    "annotator_id": "required; unique id (letters, digits, _ . -), used in manifests and logins",
    "email": "optional; the annotator's e-mail for the Label Studio account",
    "leader": "yes/no; leader candidates (one per group is chosen, the others join as members)",
    "expert": "yes/no; experts form the separate expert group and judge the expert stage",
    "experience_years": "optional number, balanced across groups",
    "msceit_score": "optional number (emotional-intelligence test score), balanced across groups",
    "education": "optional category, balanced across groups",
    "culture": "optional category, balanced across groups",
    "sim_profile": "simulation only: good, careless, adversarial or expert",
    "sim_accuracy": "simulation only: probability of the true label, 0 to 1",
}
TRUE_WORDS = {"1", "true", "yes", "y", "t"}
FALSE_WORDS = {"0", "false", "no", "n", "f", ""}
NUMERIC_COLUMNS = ("experience_years", "msceit_score", "sim_accuracy")


@dataclass
class CheckReport:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: What was checked against: number of crowd groups and the group size the protocol needs.
    n_groups: int = 0
    needed_size: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def raise_errors(self) -> None:
        if self.errors:
            more = f" (and {len(self.errors) - 1} more problem(s))" if len(self.errors) > 1 else ""
            raise ConfigError(self.errors[0] + more)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "errors": self.errors,
            "warnings": self.warnings,
            "groups": self.n_groups,
            "needed_group_size": self.needed_size,
        }


def crowd_stages(protocol: Protocol) -> list[Stage]:
    return [s for s in protocol.stages if s.kind == "annotate"]


def needed_group_size(protocol: Protocol) -> tuple[int, str | None]:
    """The most judgements per item any crowd stage asks, and that stage."""
    stages = crowd_stages(protocol)
    if not stages:
        return 0, None
    top = max(stages, key=lambda s: s.judgements)
    return top.judgements, top.name


def routing_errors(protocol: Protocol, n_groups: int) -> list[str]:
    """Cross-checks whose offset sends items back to a group that already judged them.

    Groups are counted relative to the group an item was first sharded to (0): each crowd stage
    puts an item in one group, and the groups that judged it accumulate along ``from``.
    """
    if n_groups < 1:
        return []
    errors: list[str] = []
    at: dict[str, int] = {}  # stage -> group (relative) holding the item in that stage
    judged: dict[str, set[int]] = {}  # stage -> groups that judged the item up to that stage
    for stage in crowd_stages(protocol):
        sources = [s for s in stage.from_stages if s in at]
        prior = set().union(*(judged[s] for s in sources)) if sources else set()
        if stage.source == "all" or not sources:
            at[stage.name], judged[stage.name] = 0, {0}
            continue
        target = (at[sources[0]] + stage.offset) % n_groups
        if target in prior:
            fresh = [o for o in range(1, n_groups) if (at[sources[0]] + o) % n_groups not in prior]
            hint = (
                f"use offset {fresh[0]}"
                if fresh
                else f"every one of the {n_groups} group(s) has judged them by then: add groups"
            )
            errors.append(
                f"stage {stage.name!r}: offset {stage.offset} with {n_groups} group(s) sends "
                f"items back to a group that already judged them in "
                f"{', '.join(s for s in sources if target in judged[s])} "
                f"(judgements of the same people would count as independent); {hint}"
            )
        at[stage.name], judged[stage.name] = target, prior | {target}
    return errors


def _bool_problems(frame: pd.DataFrame, column: str, where: str) -> list[str]:
    if column not in frame.columns or frame[column].dtype == bool:
        return []
    words = frame[column].fillna("").astype(str).str.strip().str.lower()
    bad = frame.loc[~words.isin(TRUE_WORDS | FALSE_WORDS), "annotator_id"]
    return [
        f"{where}: annotator {str(a)!r} has {column} {frame.loc[i, column]!r}; allowed: yes/no, "
        "true/false, 1/0"
        for i, a in bad.items()
    ][:1]


def _flag(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(False, index=frame.index)
    if frame[column].dtype == bool:
        return frame[column]
    return frame[column].fillna("").astype(str).str.strip().str.lower().isin(TRUE_WORDS)


def _size_errors(
    sizes: dict[str, int],
    protocol: Protocol,
    what: str,
    report: CheckReport,
    only: Stage | None = None,
    where: str = "groups",
) -> None:
    need, stage = (only.judgements, only.name) if only else needed_group_size(protocol)
    report.needed_size = need
    for group, size in sorted(sizes.items()):
        if size < need:
            report.errors.append(
                f"{where}: group {group} has {size} {what}, fewer than the {need} judgements per item "
                f"stage {stage!r} of protocol {protocol.name!r} needs"
            )


def _expert_errors(n_experts: int, protocol: Protocol, report: CheckReport) -> None:
    # A warning: experts may join later; pushing the expert stage without one is an error.
    for stage in protocol.stages:
        if stage.kind == "expert" and n_experts < stage.judgements:
            report.warnings.append(
                f"stage {stage.name!r} needs {stage.judgements} expert(s) per item; there are "
                f"{n_experts} active (roster column expert = yes)"
            )


def check_roster(
    roster: pd.DataFrame, protocol: Protocol, n_groups: int | None = None, where: str = "roster"
) -> CheckReport:
    """The roster can be allocated into ``n_groups`` (default: the protocol's) valid groups."""
    k = n_groups or protocol.groups
    report = CheckReport(n_groups=k)
    if "annotator_id" not in roster.columns:
        report.errors.append(
            f"{where}: missing column 'annotator_id'; columns: {', '.join(ROSTER_COLUMNS)}"
        )
        return report
    ids = roster["annotator_id"].astype("string").str.strip()
    if ids.isna().any() or (ids == "").any():
        report.errors.append(
            f"{where}: row {int((ids.isna() | (ids == '')).argmax()) + 2} has no annotator_id"
        )
    dup = ids[ids.duplicated()].dropna()
    if len(dup):
        report.errors.append(f"{where}: annotator_id {dup.iloc[0]!r} appears more than once")
    for column in ("leader", "expert"):
        report.errors.extend(_bool_problems(roster, column, where))
    for column in NUMERIC_COLUMNS:
        if column in roster.columns:
            values = pd.to_numeric(roster[column], errors="coerce")
            bad = roster.loc[values.isna() & roster[column].notna(), "annotator_id"]
            if len(bad):
                report.errors.append(
                    f"{where}: annotator {str(bad.iloc[0])!r} has a non-numeric {column}"
                )
    unknown = [c for c in roster.columns if c not in ROSTER_COLUMNS]
    if unknown:
        report.warnings.append(
            f"{where}: column(s) {', '.join(map(str, unknown))} kept as they are"
        )
    expert = _flag(roster, "expert")
    crowd = roster[~expert]
    leaders = int(_flag(crowd, "leader").sum())
    if leaders < k:
        report.errors.append(
            f"{where}: {leaders} leader(s) among the crowd; each of the {k} groups needs one "
            "(column leader = yes)"
        )
    elif leaders > k:
        report.warnings.append(
            f"{where}: {leaders} leader candidates for {k} groups: one per group leads, "
            f"{leaders - k} join as members"
        )
    need, stage = needed_group_size(protocol)
    report.needed_size = need
    if len(crowd) < k:
        report.errors.append(f"{where}: {len(crowd)} crowd annotator(s), fewer than {k} groups")
    elif len(crowd) // k < need:
        report.errors.append(
            f"{where}: {len(crowd)} crowd annotators in {k} groups gives groups of "
            f"{len(crowd) // k}, fewer than the {need} judgements per item stage {stage!r} of "
            f"protocol {protocol.name!r} needs; use at most {max(len(crowd) // need, 1)} "
            "group(s) or add annotators"
        )
    _expert_errors(int(expert.sum()), protocol, report)
    report.errors.extend(routing_errors(protocol, k))
    return report


def check_groups(
    groups: pd.DataFrame, protocol: Protocol, where: str = "groups", stage: Stage | None = None
) -> CheckReport:
    """A groups manifest (as allocated, or as an evaluation left it) fits the protocol.

    With ``stage`` (``push``), group sizes are held to that stage's judgements per item: an
    evaluation may have shrunk groups a later stage no longer needs in full.
    """
    frame = groups.copy()
    active = frame["active"].astype(bool)
    leader = frame["leader"].astype(bool)
    group = frame["group_id"].astype(str)
    crowd_names = sorted(set(group[group != EXPERT_GROUP]))
    report = CheckReport(n_groups=len(crowd_names))
    if not crowd_names:
        report.errors.append(f"{where}: no annotator group (only {EXPERT_GROUP!r} rows)")
        return report
    if len(crowd_names) != protocol.groups:
        report.warnings.append(
            f"{where}: {len(crowd_names)} group(s), protocol {protocol.name!r} says {protocol.groups}; "
            f"checked with {len(crowd_names)}"
        )
    sizes: dict[str, int] = {}
    for name in crowd_names:
        members = (group == name) & active
        sizes[name] = int(members.sum())
        leaders = sorted(frame.loc[members & leader, "annotator_id"].astype(str))
        if len(leaders) != 1:
            report.errors.append(
                f"{where}: group {name} has {len(leaders)} active leader(s)"
                f"{' (' + ', '.join(leaders) + ')' if leaders else ''}; exactly one is allowed"
            )
    if stage is None or stage.kind == "annotate":
        _size_errors(sizes, protocol, "active annotator(s)", report, stage, where)
    _expert_errors(int(((group == EXPERT_GROUP) & active).sum()), protocol, report)
    report.errors.extend(routing_errors(protocol, len(crowd_names)))
    return report


def check_setup(
    protocol: Protocol,
    *,
    groups: pd.DataFrame | None = None,
    roster: pd.DataFrame | None = None,
    n_groups: int | None = None,
) -> CheckReport:
    """Everything that can be checked with what is given (the protocol alone at least)."""
    if groups is not None:
        report = check_groups(groups, protocol)
        if roster is not None:
            extra = check_roster(roster, protocol, report.n_groups)
            report.errors.extend(e for e in extra.errors if e not in report.errors)
            report.warnings.extend(extra.warnings)
        return report
    if roster is not None:
        return check_roster(roster, protocol, n_groups)
    k = n_groups or protocol.groups
    return CheckReport(
        errors=routing_errors(protocol, k), n_groups=k, needed_size=needed_group_size(protocol)[0]
    )
