"""The ``emotions-data`` command line: thin Click commands, each calling one library function.

Commands are registered explicitly below as ``name -> module:attribute`` and imported only
when used, so ``emotions-data --help`` stays fast and never imports torch or the SDK.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

import click

from emotions_data.cli.common import Settings, handle_errors

# name -> "module:attribute"; one line per command or command group.
COMMANDS: dict[str, str] = {
    "manifest": "emotions_data.cli.manifest:manifest",
    "fetch": "emotions_data.cli.fetch:fetch",
    "prepare": "emotions_data.cli.prepare:prepare",
    "annotate": "emotions_data.cli.annotate:annotate",
    "agreement": "emotions_data.cli.agreement:agreement",
    "baseline": "emotions_data.cli.baseline:baseline",
    "split": "emotions_data.cli.variants:split",
    "build-variants": "emotions_data.cli.variants:build_variants",
    "stats": "emotions_data.cli.release:stats",
    "release": "emotions_data.cli.release:release",
    "hydrate": "emotions_data.cli.release:hydrate",
    "demo": "emotions_data.cli.demo:demo",
    "import": "emotions_data.cli.local_import:import_command",
    "setup": "emotions_data.cli.environment:setup",
    "doctor": "emotions_data.cli.environment:doctor",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use, and whose errors become one line."""

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module_name, attr = self.lazy[cmd_name].split(":")
            command = getattr(importlib.import_module(module_name), attr)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        with handle_errors():
            return super().invoke(ctx)


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed for every random choice."
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="emotions-data")
@click.pass_context
def main(ctx: click.Context, seed: int, verbose: int) -> None:
    """Turn short-video URLs into a released emotion-recognition dataset.

    \b
    Example:
      emotions-data --seed 1 manifest validate data/videos.parquet
    """
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = Settings(seed=seed, verbose=verbose)
