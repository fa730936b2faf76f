"""What `annotate evaluate` and `agreement --groups` print for a lab (no server needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from click.testing import CliRunner

from emotions_data.annotation.store import write_annotations_if_changed, write_groups
from emotions_data.cli import main
from emotions_data.schema.io import read_manifest
from emotions_data.schema.taxonomy import load_taxonomy

TAX = load_taxonomy()
PEOPLE = ["g1", "g2", "g3", "g4", "bad"]


def _write_crowd(tmp_path: Path) -> tuple[Path, Path]:
    """Five annotators judge 40 items; 'bad' answers at random, the others 90 % right."""
    rng = np.random.default_rng(3)
    rows = []
    for i in range(40):
        true = rng.choice(TAX.classes)
        for person in PEOPLE:
            right = person != "bad" and rng.random() < 0.9
            rows.append(
                {
                    "video_id": f"v{i:02d}",
                    "annotator_id": person,
                    "stage": "primary",
                    "label": true if right else rng.choice(TAX.classes),
                    "lead_time_s": 4.0 if person != "bad" else 1.0,
                    "group_id": "A",
                    "source": "import",
                }
            )
    annotations = tmp_path / "annotations.parquet"
    write_annotations_if_changed(pd.DataFrame(rows), annotations, taxonomy=TAX, params={})
    groups = pd.DataFrame(
        {
            "annotator_id": PEOPLE,
            "group_id": "A",
            "leader": [True, False, False, False, False],
            "active": True,
            "reason": None,
            "updated_stage": None,
        }
    )
    write_groups(groups, tmp_path / "groups.parquet", params={})
    return annotations, tmp_path / "groups.parquet"


def test_evaluate_prints_the_per_annotator_table_and_agreement_reports_the_final_crowd(
    tmp_path: Path,
) -> None:
    annotations, groups = _write_crowd(tmp_path)
    runner = CliRunner()
    evaluate = ["annotate", "evaluate", "--stage", "evaluate_a", "--annotations", str(annotations)]
    r = runner.invoke(main, [*evaluate, "--groups", str(groups)])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].split() == [
        "annotator", "group", "judgements", "compared", "agreement", "kappa",
        "median_lead_s", "flagged", "outcome",
    ]  # fmt: skip
    rows = {line.split()[0]: line.split() for line in lines[1:6]}
    assert rows["bad"][1:4] == ["A", "40", "40"] and rows["bad"][-2:] == ["yes", "removed"]
    assert rows["bad"][6] == "1.0" and rows["g1"][6] == "4.0"
    assert float(rows["bad"][4]) < 0.5 < float(rows["g1"][4]) and rows["g1"][-1] == "kept"
    assert "group alpha: A:" in r.output
    # evaluating again reads the outcome back and still prints the table
    again = runner.invoke(main, [*evaluate, "--groups", str(groups)])
    assert again.exit_code == 0 and "already evaluated" in again.output
    assert again.output.splitlines()[: len(lines) - 2] == lines[: len(lines) - 2]
    assert not read_manifest(groups, "groups").df.set_index("annotator_id").loc["bad", "active"]

    agreement = ["agreement", str(annotations), "--groups", str(groups), "--by", "annotator"]
    r = runner.invoke(main, [*agreement, "--json", str(tmp_path / "final.json")])
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[0] == (
        "crowd: final: 1 annotator(s) removed by an evaluation left out (bad; 40 judgement(s)); "
        "--include-removed keeps them"
    )
    final = json.loads((tmp_path / "final.json").read_text())
    assert final["n_annotators"] == 4 and final["crowd"].startswith("final")
    assert "bad" not in {row["annotator_id"] for row in final["per_annotator"]}
    r = runner.invoke(main, [*agreement, "--include-removed", "--json", str(tmp_path / "all.json")])
    assert r.exit_code == 0, r.output
    assert r.output.startswith("crowd: everyone, including 1 annotator(s) removed")
    everyone = json.loads((tmp_path / "all.json").read_text())
    assert everyone["n_annotators"] == 5
    assert everyone["krippendorff_alpha"] < final["krippendorff_alpha"]
