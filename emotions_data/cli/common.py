"""What every command shares: root settings, error translation, JSON output."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from emotions_data.schema.errors import EmotionsDataError, QualityGateError, describe_os_error

F = TypeVar("F", bound=Callable[..., Any])

#: Exit codes (docs/design.md "Command line").
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_GATE = 0, 1, 2, 3


@dataclass(frozen=True)
class Settings:
    seed: int = 0
    verbose: int = 0


pass_settings = click.make_pass_decorator(Settings, ensure=True)


class GateFailed(click.ClickException):
    """A quality gate failed: exit code 3, so pipelines can tell it from an error."""

    exit_code = EXIT_GATE


@contextlib.contextmanager
def handle_errors() -> Iterator[None]:
    """Turn the library's typed errors into a one-line ``Error: ...`` and the right exit code."""
    try:
        yield
    except QualityGateError as exc:
        raise GateFailed(str(exc)) from None
    except EmotionsDataError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:  # a full disk, an I/O error: the environment, one line, exit 1
        raise click.ClickException(
            f"{describe_os_error(exc)}; fix that, then run the command again"
        ) from None


def emit_json(data: Any, target: str | Path | None) -> None:
    """Write ``data`` as JSON to ``target`` (``-`` is stdout)."""
    if target is None:
        return
    text = json.dumps(data, indent=2, sort_keys=False, default=str)
    if str(target) == "-":
        click.echo(text)
    else:
        from emotions_data.schema.atomic import atomic_write_text

        atomic_write_text(target, text + "\n")


def is_tty() -> bool:
    return sys.stderr.isatty()


def executor_options(func: F) -> F:
    """``--executor``, ``--ray-address``, ``--no-progress`` and ``--json`` of fetch and prepare."""
    options = [
        click.option(
            "--executor",
            type=click.Choice(["local", "serial", "ray"]),
            default="local",
            show_default=True,
            help="local: a process pool; serial: in this process; ray: Ray Data (pip install "
            "'emotions-data[distributed]').",
        ),
        click.option(
            "--ray-address",
            envvar="RAY_ADDRESS",
            help="Ray cluster to join with --executor ray (default: $RAY_ADDRESS, else a local one).",
        ),
        click.option("--no-progress", is_flag=True, help="No progress bar."),
        click.option(
            "--json", "json_out", help="Also write the summary as JSON here ('-': stdout)."
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func
