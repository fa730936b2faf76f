"""The dataset card (README.md with a Hugging Face YAML header) and the shared RAI texts.

Every sentence that states a fact is built from ``DatasetFacts``; the same texts fill the
card's sections and Croissant's Responsible-AI fields, so the two never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from emotions_data.release.facts import DatasetFacts
from emotions_data.schema.manifests import SPLITS


@dataclass(frozen=True)
class ReleaseInfo:
    name: str
    #: Written as given (the card's ``license`` and Croissant's); the platforms' terms are
    #: stated apart (``texts()["platform_terms"]``), never appended to it.
    license: str = "other"
    homepage: str | None = None
    version: str = "1.0.0"
    with_media: bool = False


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "n/a"


def _ci(a: dict[str, Any], level: float) -> str:
    if a.get("alpha") is None:
        return "not computable (fewer than two items with two or more judgements)"
    text = f"{a['alpha']:.3f}"
    if a.get("ci"):
        text += f" ({int(level * 100)} % bootstrap CI {a['ci'][0]:.3f} to {a['ci'][1]:.3f})"
    return text + f" over {a['n_items']} items and {a['n_judgements']} judgements"


def texts(facts: DatasetFacts, info: ReleaseInfo, agreement: dict[str, Any]) -> dict[str, str]:
    """One paragraph per topic; keys are shared by the card and Croissant."""
    classes = facts.taxonomy.classes
    counts = facts.class_counts()
    n = int(counts.sum())
    lab = facts.labelled()
    platforms = lab["platform"].value_counts()
    plat_text = ", ".join(f"{p} {_pct(int(k), n)}" for p, k in platforms.items())
    funnel = dict(facts.funnel())
    losses = facts.losses()
    per_item = facts.annotators_per_item()
    quality = facts.label_quality()
    stages = facts.stages()
    dates = facts.date_range()
    out: dict[str, str] = {}
    out["motivation"] = (
        f"{info.name} is a short-video emotion-recognition dataset with {n} videos labelled "
        f"with the {len(classes)} classes of the `{facts.taxonomy.name}` taxonomy "
        f"({', '.join(classes)}). Short videos carry emotion in picture, sound and on-screen "
        "text together; the dataset exists to train and fairly evaluate audio-visual models on "
        "them, with labels whose reliability is measured and documented."
    )
    pol = facts.taxonomy.polarity
    out["composition"] = (
        f"{n} videos; per class: "
        + ", ".join(f"{c} {int(counts[c])}" for c in classes)
        + f" (largest/smallest class ratio {counts.max() / max(1, counts.min()):.1f}). "
        f"Platforms: {plat_text}. "
        + (
            "Polarity groups: "
            + ", ".join(
                f"{p} ({', '.join(c for c in classes if pol.get(c) == p)})"
                for p in facts.taxonomy.polarities
            )
            + ". "
            if pol
            else ""
        )
        + f"Variants: {', '.join(facts.variants)}."
    )
    if "URLs" in funnel:
        out["collection"] = (
            f"{funnel['URLs']} candidate URLs were downloaded with yt-dlp"
            + (f" between {dates[0]} and {dates[1]}" if dates else "")
            + f"; {funnel['downloaded']} downloaded, {funnel['kept after filters']} passed the "
            f"duration and media checks, {funnel['unique (not duplicate)']} remained after exact "
            f"and near-duplicate removal. Losses: "
            + ", ".join(
                f"{k} {v}" for k, v in losses.items() if not k.startswith(("disputed", "expert"))
            )
            + "."
        )
    else:
        out["collection"] = "No videos manifest was given: collection figures are not available."
    changed = losses["expert changed the crowd's label"]
    cross = facts.cross_checked()
    groups_text = (
        f"annotators worked in {per_item['groups']} groups with a leader each"
        if "groups" in per_item
        else "annotators worked in groups"
    )
    out["annotation_protocol"] = (
        f"Multi-stage crowd annotation in Label Studio; {groups_text}. "
        + (
            f"The stages were {', '.join(stages)}. "
            if stages
            else "The per-stage judgements are not part of this release. "
        )
        + (
            f"{cross} of {n} videos were judged by two or more groups (cross-checks). "
            if cross is not None
            else ""
        )
        + (
            f"{per_item['removed_annotators']} annotator(s) were removed after the consistency "
            "evaluations. "
            if "removed_annotators" in per_item
            else ""
        )
        + f"Videos without a clear majority ({losses['disputed (sent to the expert)']}) went to "
        f"an expert, whose label is final ({losses['expert-decided']} expert-decided, "
        f"{changed} "
        "changed from the crowd's majority). Final labels: "
        + ", ".join(f"{k} {v}" for k, v in quality["methods"].items())
        + f"; {quality['unanimous']} unanimous; mean support {quality['mean_support']}."
    )
    apt = (
        f"{per_item['mean']} crowd judgements per video on average (median {per_item['median']}, "
        f"min {per_item['min']}, max {per_item['max']}), expert excluded"
    )
    if "annotators" in per_item:
        apt += f"; {per_item['annotators']} annotators gave {per_item['judgements']} judgements"
        apt += "; per stage: " + ", ".join(f"{s} {v}" for s, v in per_item["per_stage"].items())
    if "groups" in per_item:
        apt += (
            f"; {per_item['groups']} groups, {per_item['removed_annotators']} annotator(s) "
            "removed after consistency checks"
        )
    out["annotators_per_item"] = apt + "."
    if agreement:
        level = float(agreement["ci_level"])
        lines = [f"{agreement['measure']}, all crowd stages: {_ci(agreement['crowd'], level)}."]
        lines += [f"Stage {s}: {_ci(a, level)}." for s, a in agreement["per_stage"].items()]
        out["agreement"] = " ".join(lines)
    else:
        out["agreement"] = "No annotations manifest was given: agreement was not computed."
    out["uses"] = (
        "Training and evaluating emotion recognition on short videos (audio, visual and "
        "audio-visual models); studying annotation reliability. Report UAR and macro-F1 beside "
        "accuracy on the full variant; use the test-oriented variant for trustworthy test "
        "figures. Not for decisions about individuals, surveillance, or inferring the emotions "
        "of the people shown outside research."
    )
    out["limitations"] = (
        f"{facts.imbalance()} Platform mix: {plat_text}; content and "
        "culture follow those platforms. Labels are perceived emotions, not the emotions of the "
        f"people shown; {_pct(n - quality['unanimous'], n)} of labels are not unanimous. "
        "Videos are distributed as URLs: links die and files change, so a re-downloaded copy "
        "(`emotions-data hydrate`) may be smaller than this release; the availability report "
        "says which variants are still complete."
    )
    out["personal_information"] = (
        "The videos show people (faces, voices) and may carry names or handles in on-screen "
        "text. This release contains no media"
        + (" except the normalised clips under media/" if info.with_media else "")
        + "; uploader ids and titles are left out of the data files (they are only used to keep "
        "uploaders in one split). Annotators are identified only by roster ids, never by name "
        "or e-mail."
    )
    out["license"] = (
        f"The labels and metadata of this release are published under `{info.license}`. It "
        "does not cover the videos themselves: see the platforms' terms."
    )
    out["platform_terms"] = (
        f"The videos belong to their uploaders and are hosted by their platforms "
        f"({', '.join(str(p) for p in platforms.index)})"
        + (
            "; this release includes normalised copies of them under media/"
            if info.with_media
            else "; they are not redistributed here, only their URLs and sha256"
        )
        + ". Downloading and using them (e.g. with `emotions-data hydrate`) is subject to each "
        "platform's terms of service and to the rights of the uploaders and of the people shown."
    )
    out["maintenance"] = (
        f"Version {info.version}, built from manifests created "
        + ", ".join(
            sorted(
                {
                    str(m.get("created_at", ""))[:10]
                    for m in facts.variant_meta.values()
                    if m.get("created_at")
                }
            )
            or ["(unknown)"]
        )
        + ". Every file is rebuilt by `emotions-data build-variants` and `emotions-data release` "
        "from the manifests (their sha256 are in the variant metadata); dead links are tracked "
        "with `emotions-data hydrate`, and a new version is released when availability or "
        "labels change."
    )
    return out


def _left_out_sentence(meta: dict[str, Any]) -> str:
    """What a variant leaves out and why, from its metadata (test-oriented variants)."""
    dropped = int((meta.get("left_out") or {}).get("unreliable_in_test_group", 0))
    short = meta.get("test_shortfall") or {}
    out = ""
    if dropped:
        out += (
            f" {dropped} videos are left out: unreliable videos whose uploader or duplicate "
            "cluster is in the test set (in train or val they would leak into it)."
        )
    if short:
        target = meta.get("test_target_per_class")
        out += (
            " The test set misses its target of "
            + f"{target} per class for "
            + ", ".join(f"{c} ({n} short)" for c, n in short.items())
            + "."
        )
    return out


def _configs(files: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    configs = []
    for i, (variant, splits) in enumerate(files.items()):
        entry: dict[str, Any] = {
            "config_name": variant,
            "data_files": [{"split": s, "path": p} for s, p in splits.items()],
        }
        if i == 0:
            entry["default"] = True
        configs.append(entry)
    return configs


def dataset_card(
    facts: DatasetFacts,
    info: ReleaseInfo,
    agreement: dict[str, Any],
    files: dict[str, dict[str, str]],
) -> str:
    """README.md: YAML header (one ``configs`` entry per variant) and the filled sections."""
    n = len(facts.labels)
    size = "n<1K" if n < 1000 else "1K<n<10K" if n < 10_000 else "10K<n<100K"
    header = {
        "pretty_name": info.name,
        "license": info.license,
        "task_categories": ["video-classification"],
        "tags": ["emotion-recognition", "short-video", "audio-visual", facts.taxonomy.name],
        "size_categories": [size],
        "configs": _configs(files),
    }
    t = texts(facts, info, agreement)
    md = ["---", yaml.safe_dump(header, sort_keys=False, allow_unicode=True).strip(), "---", ""]
    md += [f"# {info.name}", ""]
    md += ["## Motivation", "", t["motivation"], ""]
    md += ["## Composition", "", t["composition"], ""]
    md += ["| variant | " + " | ".join(SPLITS) + " | total |", "|---" * (len(SPLITS) + 2) + "|"]
    for name in facts.variants:
        tot = facts.variant_table(name).loc["total"]
        md.append(
            f"| {name} | "
            + " | ".join(str(int(tot[s])) for s in SPLITS)
            + f" | {int(tot['total'])} |"
        )
    md += [""]
    default = next(iter(facts.variants))
    md += [f"Classes per split of the default variant ({default}), in taxonomy order:", ""]
    per_class = facts.variant_table(default)
    md += ["| class | " + " | ".join(SPLITS) + " | total |", "|---" * (len(SPLITS) + 2) + "|"]
    for cls, row in per_class.iterrows():
        md.append(
            f"| {cls} | "
            + " | ".join(str(int(row[s])) for s in SPLITS)
            + f" | {int(row['total'])} |"
        )
    md += [""]
    for name, meta in facts.variant_meta.items():
        definition = meta.get("definition") or {}
        params = {k: v for k, v in definition.items() if k not in ("rationale",)}
        md += [
            f"- **{name}** ({', '.join(f'{k}={v}' for k, v in params.items())}, seed "
            f"{meta.get('seed', 'n/a')}): {definition.get('rationale', '')}"
            + _left_out_sentence(meta)
        ]
    md += [
        "",
        "Columns: `video_id`, `platform`, `source_url`, `label`, `split`, `fold`, `sha256` of the "
        "original media, `bytes`, `duration_s`, `width`, `height`, and the label's provenance "
        "(`method`, `n_votes`, `support`)"
        + (
            ", `media_path` and `media_sha256` of the included normalised clip."
            if info.with_media
            else "."
        ),
        "",
        "```python",
        "import datasets",
        f'ds = datasets.load_dataset("path/to/this/folder", "{next(iter(files))}")',
        "```",
        "",
    ]
    md += ["## Collection", "", t["collection"], ""]
    md += ["## Annotation protocol", "", t["annotation_protocol"], ""]
    md += ["## Annotators per item", "", t["annotators_per_item"], ""]
    md += ["## Agreement", "", t["agreement"], ""]
    md += ["## Uses", "", t["uses"], ""]
    md += ["## Limitations", "", t["limitations"], ""]
    md += ["## Personal and sensitive information", "", t["personal_information"], ""]
    md += ["## Maintenance", "", t["maintenance"], ""]
    md += ["## Licence", "", t["license"], ""]
    md += ["## Platforms' terms", "", t["platform_terms"], ""]
    return "\n".join(md)
