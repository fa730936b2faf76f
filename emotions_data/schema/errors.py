"""Typed errors raised by the library. Only the CLI turns them into ``click`` errors."""

from __future__ import annotations


class EmotionsDataError(Exception):
    """Base class of every expected error (bad input, unreachable service, failed gate)."""


class ConfigError(EmotionsDataError):
    """A YAML configuration (taxonomy, protocol, variants, profile) is invalid."""


class TaxonomyError(ConfigError):
    """A taxonomy file is malformed."""


class ManifestError(EmotionsDataError):
    """A manifest failed validation; ``problems`` holds one line per problem.

    ``str(error)`` is the first problem (plus a count of the others) so it fits on one line.
    """

    def __init__(self, problems: list[str]) -> None:
        if not problems:
            raise ValueError("ManifestError needs at least one problem")
        self.problems = list(problems)
        message = problems[0]
        if len(problems) > 1:
            message += f" (and {len(problems) - 1} more problem(s))"
        super().__init__(message)


class ServiceError(EmotionsDataError):
    """An external service (Label Studio, an HTTP server, ffmpeg) failed or is unreachable."""


class QualityGateError(EmotionsDataError):
    """A quality gate failed (e.g. ``agreement --min-alpha``); the CLI exits with code 3."""

    exit_code = 3
