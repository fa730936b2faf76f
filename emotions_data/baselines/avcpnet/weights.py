"""Local visual weights: a torchvision ``swin3d_t`` state dict, or a 2D Swin-T one inflated to 3D.

Nothing is downloaded. Inflation follows the Video Swin paper (and AV-CPNet): the 2D patch
embedding is repeated over the temporal patch size and divided by it, and the 2D relative
position bias table is tiled over the (2 Wt - 1) temporal offsets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from emotions_data.schema.errors import ConfigError


def _unwrap(obj: Any, source: str) -> dict[str, Tensor]:
    for key in ("model", "state_dict", "model_state"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ConfigError(f"{source}: not a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def inflate_2d_swin(state: dict[str, Tensor], target: dict[str, Tensor]) -> dict[str, Tensor]:
    """Map a torchvision ``swin_t`` (2D) state dict onto a ``SwinTransformer3d`` one."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if key.startswith("head.") or key.endswith("relative_position_index"):
            continue
        if key.startswith("features.0.0."):
            new = "patch_embed.proj." + key.removeprefix("features.0.0.")
        elif key.startswith("features.0.2."):
            new = "patch_embed.norm." + key.removeprefix("features.0.2.")
        elif key.startswith("features."):
            stage, _, rest = key.removeprefix("features.").partition(".")
            new = f"features.{int(stage) - 1}.{rest}"
        else:
            new = key
        if new not in target:
            continue
        want = target[new]
        if new == "patch_embed.proj.weight" and value.dim() == 4:
            t = want.shape[2]
            value = value.unsqueeze(2).repeat(1, 1, t, 1, 1) / t
        elif new.endswith("relative_position_bias_table") and value.shape != want.shape:
            reps, rem = divmod(want.shape[0], value.shape[0])
            if rem:
                raise ConfigError(
                    f"cannot inflate {key}: table {tuple(value.shape)} vs {tuple(want.shape)}"
                )
            value = value.repeat(reps, 1)
        out[new] = value
    return out


def load_visual_weights(swin: nn.Module, path: str | Path) -> str:
    """Load ``path`` into ``swin`` (its head is ignored); return what was loaded, in words."""
    source = str(path)
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ConfigError(f"{source}: no such weights file") from None
    except Exception as exc:  # torch raises several unrelated types for a bad file
        raise ConfigError(f"{source}: not a torch state dict ({type(exc).__name__})") from None
    state = _unwrap(raw, source)
    target = swin.state_dict()
    two_d = "features.0.0.weight" in state and state["features.0.0.weight"].dim() == 4
    if two_d:
        mapped = inflate_2d_swin(state, target)
    else:
        mapped = {
            k: v
            for k, v in state.items()
            if not k.startswith("head.") and not k.endswith("relative_position_index")
        }
    wrong = [k for k, v in mapped.items() if k in target and target[k].shape != v.shape]
    if wrong:
        raise ConfigError(
            f"{source}: shape mismatch for {wrong[0]} ({tuple(mapped[wrong[0]].shape)} vs "
            f"{tuple(target[wrong[0]].shape)}); is it a Swin-T checkpoint for this config?"
        )
    expected = [
        k for k in target if not k.startswith("head.") and not k.endswith("relative_position_index")
    ]
    missing = [k for k in expected if k not in mapped]
    if missing:
        raise ConfigError(
            f"{source}: {len(missing)} visual weight(s) missing (first: {missing[0]}); "
            "expected a swin3d_t or 2D swin_t state dict"
        )
    swin.load_state_dict({k: v for k, v in mapped.items() if k in target}, strict=False)
    kind = "2D Swin-T inflated to 3D" if two_d else "3D Swin-T"
    return f"loaded {len(expected)} visual tensors from {source} ({kind})"
