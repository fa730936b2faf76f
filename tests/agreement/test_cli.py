from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from emotions_data.cli import main
from emotions_data.schema.io import write_manifest
from emotions_data.testing.manifests import example_frames, synthetic_crowd


@pytest.fixture(scope="module")
def annotations(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame, _ = synthetic_crowd(400, n_annotators=10, min_judgements=1, max_judgements=5, seed=8)
    frame["stage"] = np.where(
        frame["video_id"].str[1:].astype(int) < 250, "primary", "cross_check_a"
    )
    frame["source"] = "simulated"
    frame["group_id"] = np.where(frame["annotator_id"].str[1:].astype(int) < 5, "A", "B")
    return write_manifest(
        frame, tmp_path_factory.mktemp("agr") / "annotations.parquet", "annotations"
    )


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_json_to_stdout_has_the_contract_keys(annotations: Path) -> None:
    code, out, _ = _run("agreement", str(annotations), "--json", "-", "--by", "class,stage,group")
    assert code == 0, out
    data = json.loads(out)
    for key in ("n_items", "n_items_unpairable", "n_annotators", "n_judgements", "krippendorff_alpha",
                "fleiss_kappa", "pairwise_agreement", "gwet_ac1", "interpretation"):  # fmt: skip
        assert key in data
    assert data["n_items_unpairable"] > 0 and data["n_items"] + data["n_items_unpairable"] == 400
    assert "ci" not in data and "per_annotator" not in data
    assert {row["stage"] for row in data["per_stage"]} == {"primary", "cross_check_a"}
    assert {row["group_id"] for row in data["per_group"]} == {"A", "B"}


def test_table_bootstrap_is_seeded_and_gate_exits_3(annotations: Path, tmp_path: Path) -> None:
    outs = []
    for seed in ("1", "1", "2"):
        target = tmp_path / f"s{seed}-{len(outs)}.json"
        code, text, _ = _run("--seed", seed, "agreement", str(annotations), "--bootstrap", "200",
                             "--json", str(target))  # fmt: skip
        assert code == 0
        assert "Krippendorff's alpha (nominal)" in text and "95% CI" in text
        outs.append(json.loads(target.read_text())["ci"]["krippendorff_alpha"])
    assert outs[0] == outs[1] and outs[0] != outs[2]
    assert outs[0]["low"] < outs[0]["high"]
    code, _, err = _run("agreement", str(annotations), "--min-alpha", "0.99")
    assert code == 3
    assert err.strip().startswith("Error: Krippendorff's alpha") and "below --min-alpha 0.99" in err
    code, _, _ = _run("agreement", str(annotations), "--min-alpha", "0.1")
    assert code == 0


def test_report_folder_and_csv_input(annotations: Path, tmp_path: Path) -> None:
    csv = tmp_path / "judgements.csv"
    pd.read_parquet(annotations)[["video_id", "annotator_id", "label", "stage"]].to_csv(
        csv, index=False
    )
    code, out, _ = _run(
        "agreement", str(csv), "--report", str(tmp_path / "rep"), "--by", "annotator"
    )
    assert code == 0, out
    names = sorted(p.name for p in (tmp_path / "rep").iterdir())
    assert names == ["annotator_agreement.png", "annotator_confusion.png", "class_alpha.png",
                     "report.md", "stage_alpha.png"]  # fmt: skip
    for png in (tmp_path / "rep").glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "## Per annotator" in md and "![stage_alpha](stage_alpha.png)" in md


def test_bad_inputs_are_one_line_errors(tmp_path: Path) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text("video_id,annotator_id,label\nv1,a,fear\nv1,b,joy\n")
    code, _, err = _run("agreement", str(csv))
    assert code == 1
    assert err.strip().splitlines() == [
        f"Error: {csv}: row 1 (video_id 'v1'): label 'joy' is not a class of the taxonomy; "
        "allowed: excitation, fear, neutral, relaxation, sadness, tension"
    ]
    code, _, err = _run("agreement", str(tmp_path / "none.parquet"))
    assert code == 1 and "no such file" in err
    labels = write_manifest(example_frames()["labels"], tmp_path / "labels.parquet", "labels")
    code, _, err = _run("agreement", str(labels))
    assert code == 1 and "annotations" in err and "Traceback" not in err
    code, _, err = _run("agreement", str(csv), "--by", "colour")
    assert code == 1 and "--by colour is not supported" in err


def test_stage_filter_and_groups_manifest(annotations: Path, tmp_path: Path) -> None:
    groups = pd.DataFrame(
        {
            "annotator_id": [f"w{i}" for i in range(10)],
            "group_id": ["G1"] * 3 + ["G2"] * 7,
            "leader": [True] + [False] * 2 + [True] + [False] * 6,
            "active": [True] * 10,
        }
    )
    groups_path = write_manifest(groups, tmp_path / "groups.parquet", "groups")
    code, out, err = _run("agreement", str(annotations), "--stage", "primary", "--by", "group,annotator",
                          "--groups", str(groups_path), "--json", "-")  # fmt: skip
    assert code == 0, err
    data = json.loads(out)
    assert data["stages"] == ["primary"]
    assert data["n_items"] + data["n_items_unpairable"] == 250
    assert [row["group_id"] for row in data["per_group"]] == ["G1", "G2"]
    assert sum(row["n_judgements"] for row in data["per_group"]) == data["n_judgements"]
    assert {row["group_id"] for row in data["per_annotator"]} == {"G1", "G2"}
    code, _, err = _run("agreement", str(annotations), "--stage", "expert")
    assert code == 1 and "stage(s) ['expert'] have no judgements" in err
