"""Checkpoints: written atomically, loaded with ``weights_only=True`` (plain types only)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emotions_data.schema.atomic import atomic_path
from emotions_data.schema.errors import ConfigError

REQUIRED = ("model", "optimizer", "scheduler", "scaler", "epoch", "step", "config", "rng")


def rng_state() -> dict[str, Any]:
    """Every RNG the run draws from, in types ``torch.load(weights_only=True)`` accepts."""
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)  # type: ignore[misc]
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [name, torch.from_numpy(np.asarray(keys, dtype=np.int64)), pos, has_gauss, cached],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Save ``state`` plus the current RNG states (taken now, at the end of an epoch)."""
    state = {**state, "rng": rng_state()}
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(state, tmp)
    return Path(path)


def torch_load(path: str | Path, missing: str, unreadable: str) -> Any:
    """``torch.load`` of untrusted bytes (weights only) with one-line errors: ``{path}: {missing}``
    for an absent file, ``{path}: {unreadable} (ExceptionType)`` for anything torch rejects."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ConfigError(f"{path}: {missing}") from None
    except Exception as exc:  # a truncated or foreign file raises several unrelated types
        raise ConfigError(f"{path}: {unreadable} ({type(exc).__name__})") from None


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    source = str(path)
    state = torch_load(path, "no such checkpoint", "not a readable checkpoint")
    if not isinstance(state, dict) or any(k not in state for k in REQUIRED):
        raise ConfigError(f"{source}: not a baseline checkpoint (needs {', '.join(REQUIRED)})")
    return state
