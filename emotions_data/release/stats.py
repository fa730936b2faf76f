"""``emotions-data stats``: PNG figures and a markdown report of a dataset root."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emotions_data.release.facts import DatasetFacts, RootPaths, load_facts, orientation
from emotions_data.schema.atomic import atomic_path, atomic_write_text
from emotions_data.schema.safety import root_lock


@dataclass
class StatsResult:
    report: Path
    figures: list[Path]
    data: dict[str, Any]


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path


def _figures(facts: DatasetFacts, out: Path, agreement: dict[str, Any]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths: list[Path] = []

    names = list(facts.variants)
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        t = facts.variant_table(name).drop(index="total").drop(columns="total")
        t.plot.bar(ax=ax, stacked=True, width=0.8)
        ax.set_title(f"{name} ({int(t.to_numpy().sum())} videos)")
        ax.set_xlabel("")
        ax.set_ylabel("videos")
    paths.append(_save(fig, out / "class_distribution.png"))

    share = facts.platform_share()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    share.plot.barh(ax=ax, stacked=True)
    ax.set_xlabel("share of the class's videos")
    ax.set_xlim(0, 1)
    paths.append(_save(fig, out / "platform_share.png"))

    lab = facts.labelled()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    if "duration_s" in lab.columns and lab["duration_s"].notna().any():
        axes[0].hist(lab["duration_s"].dropna().astype(float), bins=30, color="tab:blue")
    axes[0].set_xlabel("duration (s)")
    axes[0].set_ylabel("videos")
    axes[0].set_title("duration")
    if {"width", "height"} <= set(lab.columns):
        sizes = lab[["width", "height"]].dropna().astype(float)
        axes[1].scatter(sizes["width"], sizes["height"], s=8, alpha=0.5)
        axes[1].set_xlabel("width (px)")
        axes[1].set_ylabel("height (px)")
        counts = orientation(lab["width"], lab["height"]).value_counts()
        axes[2].bar([str(k) for k in counts.index], counts.to_numpy(), color="tab:purple")
    axes[1].set_title("resolution")
    axes[2].set_title("orientation")
    paths.append(_save(fig, out / "duration_resolution.png"))

    if agreement.get("per_stage"):
        stages = list(agreement["per_stage"])
        vals = [agreement["per_stage"][s]["alpha"] or 0.0 for s in stages]
        cis = [agreement["per_stage"][s]["ci"] or [v, v] for s, v in zip(stages, vals, strict=True)]
        err = np.array(
            [
                [v - c[0] for v, c in zip(vals, cis, strict=True)],
                [c[1] - v for v, c in zip(vals, cis, strict=True)],
            ]
        )
        fig, ax = plt.subplots(figsize=(max(4, 1.3 * len(stages)), 3.4))
        ax.bar(stages, vals, yerr=np.clip(err, 0, None), capsize=4, color="tab:green")
        ax.axhline(0.8, ls="--", c="grey", lw=1)
        ax.axhline(0.667, ls=":", c="grey", lw=1)
        ax.set_ylabel("Krippendorff's alpha")
        ax.set_ylim(min(0.0, *vals), 1.0)
        paths.append(_save(fig, out / "agreement_by_stage.png"))

    steps = facts.funnel()
    fig, ax = plt.subplots(figsize=(6, 0.5 * len(steps) + 1))
    ax.barh([s for s, _ in steps][::-1], [n for _, n in steps][::-1], color="tab:orange")
    for i, (_, n) in enumerate(steps[::-1]):
        ax.text(n, i, f" {n}", va="center")
    ax.set_xlabel("videos")
    paths.append(_save(fig, out / "funnel.png"))
    return paths


def _md_table(frame: pd.DataFrame, index_name: str = "") -> str:
    cols = [str(c) for c in frame.columns]
    lines = [f"| {index_name} | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for idx, row in frame.iterrows():
        cells = [f"{v:.2f}" if isinstance(v, float) else str(v) for v in row.tolist()]
        lines.append(f"| {idx} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def stats_data(facts: DatasetFacts, agreement: dict[str, Any]) -> dict[str, Any]:
    lab = facts.labelled()
    data: dict[str, Any] = {
        "taxonomy": facts.taxonomy.name,
        "classes": {str(k): int(v) for k, v in facts.class_counts().items()},
        "variants": {
            name: {
                split: {str(c): int(n) for c, n in col.items() if c != "total"}
                for split, col in facts.variant_table(name).items()
            }
            for name in facts.variants
        },
        "platform_share": {
            str(c): {str(p): round(float(s), 4) for p, s in row.items()}
            for c, row in facts.platform_share().iterrows()
        },
        "funnel": dict(facts.funnel()),
        "losses": facts.losses(),
        "annotators_per_item": facts.annotators_per_item(),
        "label_quality": facts.label_quality(),
        "agreement": agreement,
    }
    if "duration_s" in lab.columns and lab["duration_s"].notna().any():
        d = lab["duration_s"].dropna().astype(float)
        data["duration_s"] = {
            "mean": round(float(d.mean()), 2),
            "median": round(float(d.median()), 2),
            "min": round(float(d.min()), 2),
            "max": round(float(d.max()), 2),
        }
    if {"width", "height"} <= set(lab.columns):
        o = orientation(lab["width"], lab["height"]).value_counts()
        data["orientation"] = {str(k): int(v) for k, v in o.items()}
        res = (lab["width"].astype("string") + "x" + lab["height"].astype("string")).value_counts()
        data["resolutions"] = {str(k): int(v) for k, v in res.head(10).items()}
    return data


def _report(facts: DatasetFacts, data: dict[str, Any], figures: list[Path]) -> str:
    lines = ["# Dataset statistics", ""]
    lines += [f"Taxonomy `{data['taxonomy']}`; {len(facts.labels)} finally-labelled videos.", ""]
    lines += ["## Class distribution per split and variant", ""]
    for name in facts.variants:
        lines += [f"### {name}", "", _md_table(facts.variant_table(name), "class"), ""]
    lines += ["![class distribution](class_distribution.png)", ""]
    lines += ["## Platform share per class", "", _md_table(facts.platform_share(), "class"), ""]
    lines += ["![platform share](platform_share.png)", ""]
    lines += ["## Duration, resolution and orientation", ""]
    for key in ("duration_s", "orientation", "resolutions"):
        if key in data:
            lines.append(f"- {key}: " + ", ".join(f"{k} {v}" for k, v in data[key].items()))
    lines += ["", "![duration and resolution](duration_resolution.png)", ""]
    agreement = data["agreement"]
    lines += ["## Agreement per stage", ""]
    if agreement:
        level = int(agreement["ci_level"] * 100)
        lines += [f"| stage | items | judgements | alpha | {level}% CI |", "|---|---|---|---|---|"]
        rows = [*agreement["per_stage"].items(), ("all crowd stages", agreement["crowd"])]
        for stage, a in rows:
            ci = f"[{a['ci'][0]:.3f}, {a['ci'][1]:.3f}]" if a["ci"] else "n/a"
            alpha = f"{a['alpha']:.3f}" if a["alpha"] is not None else "n/a"
            lines.append(f"| {stage} | {a['n_items']} | {a['n_judgements']} | {alpha} | {ci} |")
        if (Path(figures[0]).parent / "agreement_by_stage.png") in figures:
            lines += ["", "![agreement by stage](agreement_by_stage.png)"]
    else:
        lines.append("No annotations manifest: agreement not computed.")
    lines += ["", "## Funnel from URLs to final labels", ""]
    lines += ["| step | videos |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in data["funnel"].items()]
    lines += ["", "| loss | videos |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in data["losses"].items()]
    lines += ["", "![funnel](funnel.png)", ""]
    return "\n".join(lines)


def write_stats(
    root: str | Path,
    out: str | Path,
    *,
    seed: int = 0,
    n_boot: int = 500,
    **paths: str | Path | None,
) -> StatsResult:
    """Figures (PNG), ``report.md`` and ``stats.json`` for the manifests under ``root``.

    Holds the root's write lock when ``out`` lies inside the root.
    """
    facts = load_facts(RootPaths.of(root, **paths))
    out = Path(out)
    inside = out.resolve() == Path(root).resolve() or Path(root).resolve() in out.resolve().parents
    with root_lock(root) if inside else contextlib.nullcontext():
        out.mkdir(parents=True, exist_ok=True)
        agreement = facts.agreement(n_boot=n_boot, seed=seed)
        data = stats_data(facts, agreement)
        figures = _figures(facts, out, agreement)
        report = out / "report.md"
        atomic_write_text(report, _report(facts, data, figures))
        atomic_write_text(out / "stats.json", json.dumps(data, indent=2, default=str) + "\n")
    return StatsResult(report=report, figures=figures, data=data)
