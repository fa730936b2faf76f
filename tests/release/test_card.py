"""The dataset card and Croissant of a small, hand-counted release: 4 classes, 2 crowd groups."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import yaml
from click.testing import CliRunner

from emotions_data.cli import main
from emotions_data.release.facts import RootPaths, load_facts
from emotions_data.schema import load_taxonomy, write_manifest

#: Taxonomy order on purpose not alphabetical, so a sorted table would show.
CLASSES = ("calm", "joy", "anger", "grief")
COUNTS = {"calm": 5, "joy": 8, "anger": 3, "grief": 4}  # largest joy, smallest anger
SPLIT_OF = ("train", "train", "val", "test")  # cycled over each class's videos


def _write_root(root: Path, counts: dict[str, int]) -> None:
    taxonomy_file = root / "feelings4.yaml"
    taxonomy_file.write_text(yaml.safe_dump({"name": "feelings4", "classes": list(CLASSES)}))
    taxonomy = load_taxonomy(taxonomy_file)
    ids, labels, splits = [], [], []
    for cls in CLASSES:
        for i in range(counts[cls]):
            ids.append(f"{'douyin' if i % 2 else 'tiktok'}-{cls}{i}")
            labels.append(cls)
            splits.append(SPLIT_OF[i % len(SPLIT_OF)])
    when = dt.datetime(2025, 5, 1, tzinfo=dt.UTC)
    videos = pd.DataFrame(
        {
            "video_id": ids,
            "platform": [v.split("-")[0] for v in ids],
            "source_url": [f"https://example.invalid/{v}.mp4" for v in ids],
            "status": "ok",
            "sha256": [f"{i:064x}" for i in range(len(ids))],
            "fetched_at": when,
        }
    )
    judgements = [
        (v, f"{group.lower()}{k}", "primary", label, group)
        for j, (v, label) in enumerate(zip(ids, labels, strict=True))
        for group in ("AB"[j % 2],)
        for k in range(3)
    ]
    annotations = pd.DataFrame(
        judgements, columns=["video_id", "annotator_id", "stage", "label", "group_id"]
    )
    annotations["source"] = "simulated"
    # the expert judged one video; it is a group in the manifest, not a crowd group
    expert = annotations.iloc[[0]].assign(annotator_id="x0", stage="expert", group_id="expert")
    annotations = pd.concat([annotations, expert], ignore_index=True)
    groups = pd.DataFrame(
        {
            "annotator_id": ["a0", "a1", "a2", "b0", "b1", "b2", "x0"],
            "group_id": ["A"] * 3 + ["B"] * 3 + ["expert"],
            "leader": [True, False, False, True, False, False, False],
            "active": True,
        }
    )
    label_frame = pd.DataFrame(
        {
            "video_id": ids,
            "label": labels,
            "method": "majority",
            "n_votes": 3,
            "support": 1.0,
            "entropy": 0.0,
            "confidence": 1.0,
            "decided_stage": "primary",
            "expert_changed": False,
        }
    )
    split = pd.DataFrame({"video_id": ids, "label": labels, "split": splits})
    for kind, frame in (
        ("videos", videos),
        ("annotations", annotations),
        ("groups", groups),
        ("labels", label_frame),
        ("split", split),
    ):
        write_manifest(frame, root / f"{kind}.parquet", kind, taxonomy=taxonomy)


def _section(card: str, heading: str) -> str:
    return card.split(f"## {heading}\n\n", 1)[1].split("\n## ", 1)[0]


def test_card_and_croissant_of_a_two_group_four_class_release(tmp_path: Path) -> None:
    root = tmp_path / "some-folder-name"
    root.mkdir()
    _write_root(root, COUNTS)
    out = tmp_path / "release"
    args = ["release", "--root", str(root), "--out", str(out), "--bootstrap", "20"]
    args += ["--name", "Four Feelings", "--license", "cc-by-4.0"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    card = (out / "README.md").read_text()
    header = yaml.safe_load(card.split("---\n")[1])
    assert header["pretty_name"] == "Four Feelings"
    assert header["license"] == "cc-by-4.0"
    assert "annotators worked in 2 groups" in _section(card, "Annotation protocol")
    assert "; 2 groups," in _section(card, "Annotators per item")
    assert (
        "Class imbalance: the largest class, joy, has 8 videos; the smallest, anger, has 3."
        in _section(card, "Limitations")
    )
    licence = _section(card, "Licence")
    assert "`cc-by-4.0`" in licence and "research only" not in card
    terms = _section(card, "Platforms' terms")
    assert "(tiktok, douyin)" in terms or "(douyin, tiktok)" in terms
    assert "terms of service" in terms and "terms of service" not in licence
    # the class x split table of the default variant: classes in taxonomy order, counts right
    table = card.split("in taxonomy order:\n\n", 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    rows = {line.split(" | ")[0].lstrip("| "): line for line in table}
    assert list(rows) == [*CLASSES, "total"]
    assert rows["joy"] == "| joy | 4 | 2 | 2 | 8 |"
    assert rows["anger"] == "| anger | 2 | 1 | 0 | 3 |"
    assert rows["total"] == "| total | 11 | 5 | 4 | 20 |"

    doc = json.loads((out / "croissant.json").read_text())
    assert doc["license"] == "cc-by-4.0"
    assert doc["conditionsOfAccess"] == terms.strip()
    assert "research" not in doc["rai:dataSocialImpact"]
    assert "annotators worked in 2 groups" in doc["rai:dataAnnotationProtocol"][0]

    import mlcroissant as mlc

    meta = mlc.Dataset(jsonld=str(out / "croissant.json")).metadata
    assert meta.name == "Four Feelings" and meta.license == ["cc-by-4.0"]


def test_imbalance_sentence_of_equal_classes(tmp_path: Path) -> None:
    _write_root(tmp_path, dict.fromkeys(CLASSES, 4))
    facts = load_facts(RootPaths.of(tmp_path))
    assert facts.imbalance() == "No class imbalance: every class has 4 videos."
