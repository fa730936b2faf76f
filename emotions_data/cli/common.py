"""What every command shares: root settings, error translation, JSON output."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from emotions_data.schema.errors import EmotionsDataError, QualityGateError

#: Exit codes (DESIGN.md section 3).
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


def echo_err(message: str) -> None:
    click.echo(message, err=True)


def is_tty() -> bool:
    return sys.stderr.isatty()
