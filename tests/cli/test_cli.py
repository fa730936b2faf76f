from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from emotions_data.cli import main
from emotions_data.schema import write_manifest
from emotions_data.testing.manifests import example_frames


def _all_commands(
    group: click.Group, ctx: click.Context, prefix: str = ""
) -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None, name
        found.append((f"{prefix}{name}", cmd))
        if isinstance(cmd, click.Group):
            found += _all_commands(cmd, ctx, f"{prefix}{name} ")
    return found


def test_every_command_help_has_an_example() -> None:
    ctx = click.Context(main)
    commands = _all_commands(main, ctx)
    assert commands, "no commands registered"
    missing = [name for name, cmd in commands if "Example:" not in (cmd.help or "")]
    assert missing == []
    runner = CliRunner()
    for name, _ in commands:
        result = runner.invoke(main, [*name.split(), "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert "emotions-data" in result.output.split("Example:")[1], name


#: what showing help must not import (each costs 0.1 s to seconds at start-up)
HEAVY_MODULES = ("pandas", "numpy", "pyarrow", "torch", "torchaudio", "label_studio_sdk", "yt_dlp")


def test_help_does_not_import_heavy_libraries() -> None:
    """``--help`` of the root and of every command, in one fresh process, imports none of them."""
    code = (
        "import sys\n"
        "import click\n"
        "from click.testing import CliRunner\n"
        "from emotions_data.cli import main\n"
        "def walk(group, ctx, prefix):\n"
        "    for name in group.list_commands(ctx):\n"
        "        cmd = group.get_command(ctx, name)\n"
        "        yield [*prefix, name]\n"
        "        if isinstance(cmd, click.Group):\n"
        "            yield from walk(cmd, ctx, [*prefix, name])\n"
        "commands = [[], *walk(main, click.Context(main), [])]\n"
        "for args in commands:\n"
        "    r = CliRunner().invoke(main, [*args, '--help'])\n"
        "    assert r.exit_code == 0, (args, r.output)\n"
        f"heavy = [m for m in {HEAVY_MODULES!r} if m in sys.modules]\n"
        "print(len(commands))\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    count, heavy = out.stdout.split("\n")[:2]
    assert int(count) > 20, out.stdout
    assert heavy == ""


def test_validate_ok_and_bad(tmp_path: Path) -> None:
    good = write_manifest(example_frames()["labels"], tmp_path / "good.parquet", "labels")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    runner = CliRunner()
    result = runner.invoke(main, ["manifest", "validate", str(good)])
    assert result.exit_code == 0 and "ok:" in result.output
    result = runner.invoke(main, ["manifest", "validate", str(good), str(bad)])
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "bad.parquet: not a Parquet file" in errors[0]
    assert "Traceback" not in result.output


def test_validate_reports_one_line_per_problem(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from emotions_data.schema.io import ManifestMeta

    frame = example_frames()["annotations"]
    frame.loc[0, "label"] = "joy"
    frame.loc[2, "annotator_id"] = "a01"
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata(
        ManifestMeta(kind="annotations", schema_version=1).to_arrow()
    )
    path = tmp_path / "ann.parquet"
    pq.write_table(table, path)
    result = CliRunner().invoke(main, ["manifest", "validate", str(path)])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2
    assert "'joy' is not an allowed label" in lines[0]
    assert "duplicate key" in lines[1]


def test_show(tmp_path: Path) -> None:
    labels = write_manifest(example_frames()["labels"], tmp_path / "l.parquet", "labels")
    split = write_manifest(
        example_frames()["split"],
        tmp_path / "s.parquet",
        "split",
        parents=[labels],
        extra_metadata={"variant": "full", "seed": 3},
    )
    result = CliRunner().invoke(main, ["manifest", "show", str(split)])
    assert result.exit_code == 0, result.output
    assert "kind:           split (schema_version 1)" in result.output
    assert "variant:" in result.output and "l.parquet" in result.output
    assert "tiktok-7001" in result.output


def test_show_missing_file_is_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["manifest", "show", str(tmp_path / "none.parquet")])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: {tmp_path / 'none.parquet'}: no such file"


def test_usage_error_exit_code() -> None:
    result = CliRunner().invoke(main, ["manifest", "validate"])
    assert result.exit_code == 2


def test_docs_regenerates_examples(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["manifest", "docs", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "SCHEMA.md",
        "example-annotations.parquet",
        "example-groups.parquet",
        "example-labels.parquet",
        "example-reposts.parquet",
        "example-split.parquet",
        "example-videos.parquet",
    ]


@pytest.mark.parametrize("command", [["--version"]])
def test_version(command: list[str]) -> None:
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 0 and "0.1.0" in result.output


def _openblas_threads(cli_args: list[str] | None) -> int:
    """OpenBLAS's thread count in a fresh process, after ``emotions-data CLI_ARGS`` (or after a
    plain numpy import when None)."""
    code = (
        "import os, sys\n"
        "os.environ.pop('OPENBLAS_NUM_THREADS', None)\n"
        "from click.testing import CliRunner\n"
        "from emotions_data.cli import main\n"
        f"args = {cli_args!r}\n"
        "if args is None:\n"
        "    import numpy\n"
        "else:\n"
        "    CliRunner().invoke(main, args)\n"
        "from threadpoolctl import threadpool_info\n"
        "print([i['num_threads'] for i in threadpool_info() if i['internal_api'] == 'openblas'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    counts = json.loads(out.stdout.strip().splitlines()[-1])
    assert counts, f"numpy's OpenBLAS not found: {out.stdout}"
    return int(counts[0])


def test_prepare_starts_one_blas_thread(tmp_path: Path) -> None:
    """prepare's workers are its parallelism: every OpenBLAS thread started in the driver and in
    each forked worker spins about 0.1 s of CPU before it sleeps (benchmarks/prepare.py)."""
    if (os.cpu_count() or 1) > 1:  # the control: numpy alone starts one per core
        assert _openblas_threads(None) > 1
    # the root does not exist: the command fails after loading numpy, which is all it takes
    assert _openblas_threads(["prepare", "--root", str(tmp_path / "missing")]) == 1
