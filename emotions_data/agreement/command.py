"""``emotions-data agreement`` as one library function: read, choose the crowd, compute, write.

The CLI (``cli/agreement.py``) and the demo both call :func:`agreement_command`; the CLI then
prints the report and applies its ``--min-alpha`` gate (``report.enforce_min_alpha``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from emotions_data.agreement.inputs import final_crowd, load_annotations, load_groups
from emotions_data.agreement.report import AgreementReport, compute_agreement, parse_by


@dataclass
class AgreementRun:
    report: AgreementReport
    #: The files of ``report_dir`` (report.md and the plots); empty without one.
    written: list[Path] = field(default_factory=list)


def agreement_command(
    annotations: Path,
    *,
    stages: Sequence[str] = (),
    by: str | Sequence[str] = "",
    groups: Path | None = None,
    include_removed: bool = False,
    n_boot: int = 0,
    level: float = 0.95,
    seed: int = 0,
    taxonomy: str | None = None,
    report_dir: Path | None = None,
) -> AgreementRun:
    """The agreement report of ``annotations`` (a manifest or a judgements CSV).

    With ``groups`` (a groups manifest) the report is of the final crowd: annotators an
    evaluation removed are left out unless ``include_removed``, and ``report.crowd`` says
    which; the groups also give ``--by group`` its groups. ``report_dir`` also gets report.md
    and the plots, which need the per-class and per-stage figures (added to ``by``).
    """
    dims = set(parse_by(by))
    if report_dir is not None:
        dims |= {"class", "stage"}
    # The annotations' own group_id serves only --by group without --groups.
    own_groups = "group" in dims and groups is None
    frame, tax = load_annotations(annotations, taxonomy, with_groups=own_groups)
    crowd = None
    if groups is not None:
        frame, crowd = final_crowd(frame, groups, include_removed)
    report = compute_agreement(
        frame,
        tax,
        stages=list(stages) or None,
        by=dims,
        groups=load_groups(groups) if groups is not None else None,
        n_boot=n_boot,
        level=level,
        seed=seed,
        source=str(annotations),
    )
    report.crowd = crowd
    written = [] if report_dir is None else _write(report, report_dir)
    return AgreementRun(report, written)


def _write(report: AgreementReport, report_dir: Path) -> list[Path]:
    from emotions_data.agreement.render import write_report_dir

    return write_report_dir(report, report_dir)
