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


class EnvironmentFault(EmotionsDataError):
    """The machine failed, not the item: no space, an I/O error, a vanished temporary file, a
    killed worker. Never recorded as an item's failure; the run stops and a re-run retries."""


def describe_os_error(exc: OSError) -> str:
    """One line for an OSError: what failed, its errno name and the file, e.g.
    ``No space left on device (ENOSPC): data/.videos.parquet.x.tmp``."""
    import errno
    import os

    code = errno.errorcode.get(exc.errno or 0)
    # pyarrow's OSError carries the errno but a long text of its own: the system's words win
    plain = os.strerror(exc.errno) if code and exc.errno else exc.strerror
    what = " ".join(str(plain or exc or type(exc).__name__).split())
    text = f"{what} ({code})" if code else what
    if exc.filename:
        text += f": {exc.filename}"
    return text
