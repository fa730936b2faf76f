"""Human-readable output of an agreement report: a text table, and a folder with markdown + PNGs."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emotions_data.agreement.annotators import annotator_confusions, pair_agreement_matrix
from emotions_data.agreement.report import STATISTICS, AgreementReport
from emotions_data.schema.atomic import atomic_path, atomic_write_text

LABELS = {
    "krippendorff_alpha": "Krippendorff's alpha (nominal)",
    "fleiss_kappa": "Fleiss' kappa",
    "pairwise_agreement": "Pairwise agreement (P-bar)",
    "gwet_ac1": "Gwet's AC1",
}
#: Most annotators drawn in the confusion grid (the least consistent first).
MAX_CONFUSION_PANELS = 24


def _fmt(x: Any, digits: int = 3) -> str:
    if isinstance(x, (float, np.floating)):
        return f"{x:.{digits}f}" if math.isfinite(x) else "n/a"
    return str(x)


def _stat_lines(report: AgreementReport) -> list[tuple[str, str, str]]:
    rows = []
    for name in STATISTICS:
        ci = report.overall.ci.get(name)
        interval = f"[{_fmt(ci.low)}, {_fmt(ci.high)}]" if ci else ""
        rows.append((LABELS[name], _fmt(report.overall.values[name]), interval))
    return rows


def _table_text(table: pd.DataFrame) -> str:
    shown = table.copy()
    for col in shown.columns:
        if pd.api.types.is_float_dtype(shown[col]):
            shown[col] = shown[col].map(_fmt)
    return str(shown.to_string())


SHORT = {
    "krippendorff_alpha": "alpha",
    "fleiss_kappa": "kappa",
    "pairwise_agreement": "P-bar",
    "gwet_ac1": "AC1",
    "n_items_unpairable": "single",
    "n_annotators": "annotators",
    "n_judgements": "judgements",
    "n_items": "items",
}


def _compact(table: pd.DataFrame) -> pd.DataFrame:
    """Terminal-width version of a breakdown: short names, each interval in one column."""
    out = table.copy()
    for stat in ("krippendorff_alpha", "fleiss_kappa", "alpha"):
        low, high = f"{stat}_ci_low", f"{stat}_ci_high"
        if low in out.columns:
            out[low] = [f"[{_fmt(a)}, {_fmt(b)}]" for a, b in zip(out[low], out[high], strict=True)]
            out = out.drop(columns=high).rename(columns={low: f"{SHORT.get(stat, stat)} CI"})
    return out.rename(columns=SHORT)


def format_text(report: AgreementReport) -> str:
    """The default terminal output."""
    o = report.overall
    lines = [f"crowd: {report.crowd}"] if report.crowd else []
    lines += [
        f"items: {o.n_items} pairable, {o.n_items_unpairable} with a single judgement (left out)",
        f"annotators: {o.n_annotators}   judgements: {o.n_judgements}   "
        f"stages: {', '.join(report.stages)}   taxonomy: {report.taxonomy.name}",
        "",
    ]
    level = f"{report.bootstrap['level']:.0%} CI" if report.bootstrap else ""
    lines.append(f"{'statistic':<32} {'value':>7}  {level}")
    for label, value, interval in _stat_lines(report):
        lines.append(f"{label:<32} {value:>7}  {interval}")
    lines.append(f"reading of alpha: {report.interpretation} (>= 0.8 reliable, >= 0.667 tentative)")
    for title, table in (
        ("per class (one-vs-rest alpha)", report.per_class),
        ("per annotator (vs the leave-one-out majority)", report.per_annotator),
        ("per group", report.per_group),
        ("per stage", report.per_stage),
    ):
        if table is not None:
            lines += ["", title, _table_text(_compact(table))]
    return "\n".join(lines)


def _markdown_table(table: pd.DataFrame) -> str:
    cols = [table.index.name or "", *table.columns]
    out = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    # itertuples keeps each column's dtype (iterrows would turn counts into floats)
    for key, row in zip(table.index, table.itertuples(index=False), strict=True):
        out.append("| " + " | ".join([str(key), *(_fmt(v) for v in row)]) + " |")
    return "\n".join(out)


def _save(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def write_report_dir(report: AgreementReport, out: str | Path) -> list[Path]:
    """``report.md`` plus PNGs: annotator agreement heatmap, per-class alpha, confusions
    against the consensus, alpha per stage. Returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    enc = report.encoded
    assert enc is not None, "the report keeps its encoded judgements for plotting"
    written: list[Path] = []

    share, _ = pair_agreement_matrix(enc)
    size = max(4.0, 0.16 * len(share) + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    # NaN (two annotators who share no item) is drawn in the colormap's 'bad' colour.
    image = ax.imshow(share.to_numpy(dtype=float), vmin=0, vmax=1, cmap="viridis")
    ticks = np.arange(len(share))
    ax.set_xticks(ticks, share.columns, rotation=90, fontsize=6)
    ax.set_yticks(ticks, share.index, fontsize=6)
    ax.set_title("Share of shared items on which two annotators agree")
    fig.colorbar(image, ax=ax, shrink=0.8)
    _save(fig, out / "annotator_agreement.png")
    written.append(out / "annotator_agreement.png")

    if report.per_class is not None:
        table = report.per_class
        fig, ax = plt.subplots(figsize=(7, 3.5))
        x = np.arange(len(table))
        ax.bar(x, table["alpha"].to_numpy(dtype=float), color="tab:blue")
        if "alpha_ci_low" in table:
            low = table["alpha"] - table["alpha_ci_low"]
            high = table["alpha_ci_high"] - table["alpha"]
            ax.errorbar(x, table["alpha"], yerr=[low, high], fmt="none", ecolor="black", capsize=3)
        ax.axhline(0.8, ls="--", c="green", lw=1)
        ax.axhline(0.667, ls="--", c="orange", lw=1)
        ax.set_xticks(x, table.index, rotation=30, ha="right")
        ax.set_ylabel("one-vs-rest alpha")
        ax.set_title("Krippendorff's alpha per class")
        _save(fig, out / "class_alpha.png")
        written.append(out / "class_alpha.png")

    confusions = annotator_confusions(enc)
    totals = confusions.sum(axis=(1, 2))
    agreeing = np.trace(confusions, axis1=1, axis2=2) / np.maximum(totals, 1)
    shown = [i for i in np.argsort(agreeing, kind="stable") if totals[i] > 0][:MAX_CONFUSION_PANELS]
    if shown:
        cols = min(6, len(shown))
        rows = math.ceil(len(shown) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.3 * rows), squeeze=False)
        for ax, i in zip(axes.flat, shown, strict=False):
            rows_sum = confusions[i].sum(axis=1, keepdims=True)
            ax.imshow(confusions[i] / np.maximum(rows_sum, 1), vmin=0, vmax=1, cmap="Blues")
            ax.set_title(f"{enc.annotators[i]} ({agreeing[i]:.2f})", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        for ax in list(axes.flat)[len(shown) :]:
            ax.axis("off")
        fig.suptitle("Label given (columns) vs consensus (rows), least consistent first")
        _save(fig, out / "annotator_confusion.png")
        written.append(out / "annotator_confusion.png")

    if report.per_stage is not None:
        table = report.per_stage
        fig, ax = plt.subplots(figsize=(6, 3.5))
        x = np.arange(len(table))
        alpha = table["krippendorff_alpha"].to_numpy(dtype=float)
        ax.plot(x, alpha, marker="o")
        if "krippendorff_alpha_ci_low" in table:
            ax.fill_between(
                x,
                table["krippendorff_alpha_ci_low"].to_numpy(dtype=float),
                table["krippendorff_alpha_ci_high"].to_numpy(dtype=float),
                alpha=0.25,
            )
        ax.axhline(0.8, ls="--", c="green", lw=1)
        ax.axhline(0.667, ls="--", c="orange", lw=1)
        ax.set_xticks(x, table.index)
        ax.set_ylabel("alpha")
        ax.set_title("Krippendorff's alpha per stage")
        _save(fig, out / "stage_alpha.png")
        written.append(out / "stage_alpha.png")

    md = ["# Agreement report", ""]
    if report.crowd:
        md += [f"Crowd: {report.crowd}.", ""]
    o = report.overall
    md.append(
        f"{o.n_items} pairable items ({o.n_items_unpairable} with a single judgement left out), "
        f"{o.n_annotators} annotators, {o.n_judgements} judgements; stages "
        f"{', '.join(report.stages)}; taxonomy `{report.taxonomy.name}`."
    )
    md += ["", "| statistic | value | interval |", "|---|---|---|"]
    md += [f"| {a} | {b} | {c} |" for a, b, c in _stat_lines(report)]
    if report.bootstrap:
        b = report.bootstrap
        md.append(
            f"\nIntervals: {b['level']:.0%} percentile bootstrap, {b['n_boot']} item resamples, seed {b['seed']}."
        )
    md.append(
        f"\nReading of alpha: **{report.interpretation}** (>= 0.8 reliable, >= 0.667 tentative)."
    )
    for title, table in (
        ("Per class", report.per_class),
        ("Per annotator", report.per_annotator),
        ("Per group", report.per_group),
        ("Per stage", report.per_stage),
    ):
        if table is not None:
            md += ["", f"## {title}", "", _markdown_table(_compact(table))]
    md += ["", "## Plots", ""]
    md += [f"![{p.stem}]({p.name})" for p in written]
    atomic_write_text(out / "report.md", "\n".join(md) + "\n")
    return [out / "report.md", *written]
