"""The annotate use cases (``annotation.commands``): the CLI, the runner and the demo do a step
one way: the same checks, the root's write lock, the same files."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from emotions_data.annotation.commands import (
    allocate_command,
    evaluate_command,
    finalize_command,
)
from emotions_data.annotation.endpoint import Server
from emotions_data.annotation.runner import run_protocol
from emotions_data.annotation.simulate import simulated_roster
from emotions_data.cli import main
from emotions_data.schema.errors import ConfigError
from emotions_data.schema.io import read_manifest, write_manifest
from emotions_data.schema.safety import RootLockedError
from emotions_data.schema.taxonomy import load_taxonomy

#: Never contacted: every test here fails, or finishes, before a server would be asked.
NOWHERE = Server(url="http://127.0.0.1:9", token="unused")


def _roster(leaders: int) -> pd.DataFrame:
    roster = simulated_roster(3, 4, careless=0, adversarial=0, experts=1, seed=0)
    crowd = roster["expert"].astype(str).str.lower() != "true"
    ids = roster.loc[crowd, "annotator_id"].tolist()
    roster["leader"] = roster["annotator_id"].isin(ids[:leaders])
    return roster


def test_the_runner_checks_the_roster_as_allocate_does(tmp_path: Path) -> None:
    # a roster with one leader for three groups: refused by both, with the same message,
    # before anything is written (the runner used to allocate without the check)
    roster = _roster(leaders=1)
    with pytest.raises(ConfigError) as by_command:
        allocate_command(roster, tmp_path / "a" / "groups.parquet", seed=1)
    videos = pd.DataFrame({"video_id": ["v1"], "status": ["ok"]})
    with pytest.raises(ConfigError) as by_runner:
        run_protocol(tmp_path / "b", videos, roster, None, NOWHERE, seed=1)
    assert str(by_runner.value) == str(by_command.value)
    assert "1 leader(s) among the crowd; each of the 3 groups needs one" in str(by_command.value)
    assert not (tmp_path / "a" / "groups.parquet").exists()
    assert not (tmp_path / "b" / "groups.parquet").exists()
    allocated = allocate_command(_roster(leaders=3), tmp_path / "a" / "groups.parquet", seed=1)
    groups = read_manifest(allocated.path, "groups")
    assert groups.meta.params["groups"] == 3 and len(groups.df) == 13


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """The root locked by another process (as a second ``emotions-data`` would hold it)."""
    root = tmp_path / "root"
    script = (
        "import sys\nfrom emotions_data.schema.safety import root_lock\n"
        f"with root_lock({str(root)!r}, 'the other writer'):\n"
        "    print('held', flush=True)\n    sys.stdin.read()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        yield root, proc.pid
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)


def _annotations(root: Path) -> Path:
    tax = load_taxonomy()
    rng = np.random.default_rng(0)
    rows = [
        {
            "video_id": f"v{i}",
            "annotator_id": f"a{j}",
            "stage": "primary",
            "label": label,
            "source": "import",
        }
        for i in range(4)
        for j, label in enumerate(rng.choice(tax.classes, 3))
    ]
    path = root / "annotations.parquet"
    write_manifest(pd.DataFrame(rows), path, "annotations", taxonomy=tax)
    return path


def test_every_writer_holds_the_root_lock(held: tuple[Path, int], tmp_path: Path) -> None:
    root, pid = held
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    annotations = _annotations(elsewhere)  # written outside the held root
    allocate_command(_roster(3), elsewhere / "groups.parquet")
    refused = {
        "allocate": lambda: allocate_command(_roster(3), root / "groups.parquet"),
        "finalize": lambda: finalize_command(None, annotations, root / "labels.parquet"),
        "evaluate": lambda: evaluate_command(
            None, "evaluate_a", annotations, elsewhere / "groups.parquet", root / "g.parquet"
        ),
    }
    for name, call in refused.items():
        with pytest.raises(RootLockedError, match=f"in use by pid {pid} \\(the other writer\\)"):
            call()
        assert not list(root.glob("*.parquet")), name
    # and so does the CLI, which now only calls these
    cli = CliRunner().invoke(
        main,
        ["annotate", "finalize", "--annotations", str(annotations), "--out", str(root / "l.pq")],
    )
    assert cli.exit_code == 1 and f"in use by pid {pid}" in cli.output
    # the same call elsewhere writes the labels
    result = finalize_command(None, annotations, elsewhere / "labels.parquet")
    assert len(read_manifest(elsewhere / "labels.parquet", "labels").df) == len(result.labels)
