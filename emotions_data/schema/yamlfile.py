"""Read a YAML file (taxonomy, protocol, variants, profiles, configs) with one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from emotions_data.schema.errors import ConfigError


def read_yaml(path: str | Path, what: str, *, error: type[ConfigError] = ConfigError) -> Any:
    """Parse ``path``; a missing, unreadable or invalid file raises ``error`` naming it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: no such {what} file") from None
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} file ({exc.strerror})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
