"""Local visual weights for the 3D Swin branch: a torchvision ``swin3d_t`` state dict as is, or
a 2D Swin-T inflated to 3D, from torchvision's ``swin_t`` layout or from the official Swin
repository's (``patch_embed.proj.weight``, ``layers.N.blocks.M.attn.relative_position_bias_table``,
...; the ImageNet-22K release the paper starts from included).

Nothing is downloaded. Inflation follows Video Swin (``inflate_weights`` in its repository): the
2D patch-embedding kernel is repeated over the temporal patch size and divided by it, each 2D
relative-position-bias table is resized bicubically when the 2D window differs from the target
one and repeated over the ``2 Wd - 1`` temporal offsets; the classification head is dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from emotions_data.baselines.avcpnet.checkpoint import torch_load
from emotions_data.schema.atomic import atomic_path
from emotions_data.schema.errors import ConfigError

OFFICIAL_2D, OFFICIAL_3D = "official 2D Swin", "official Video Swin (3D)"
TORCHVISION_2D, TORCHVISION_3D = "torchvision 2D swin_t", "3D Swin"
_TABLE = "relative_position_bias_table"
# buffers recomputed by the model; never copied
_SKIP = re.compile(r"(^head\.|relative_position_index$|attn_mask$)")


def _unwrap(obj: Any, source: str) -> dict[str, Tensor]:
    for key in ("model", "state_dict", "model_state"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ConfigError(f"{source}: not a state dict of tensors")
    return {str(k).removeprefix("module.").removeprefix("backbone."): v for k, v in obj.items()}


def detect_layout(state: dict[str, Tensor]) -> str:
    weight = state.get("patch_embed.proj.weight")
    if weight is not None and any(k.startswith("layers.") for k in state):
        return OFFICIAL_2D if weight.dim() == 4 else OFFICIAL_3D
    if "features.0.0.weight" in state and state["features.0.0.weight"].dim() == 4:
        return TORCHVISION_2D
    return TORCHVISION_3D


def _official_key(key: str) -> str:
    """An official 2D Swin key under torchvision's 3D names (layers.i -> features.2i, its
    downsample -> features.2i+1, mlp.fc1/fc2 -> mlp.0/mlp.3)."""
    match = re.match(r"layers\.(\d+)\.(blocks\.(\d+)|downsample)\.(.*)", key)
    if match is None:
        return key  # patch_embed.*, norm.*, head.*
    stage, rest = int(match.group(1)), match.group(4)
    rest = rest.replace("mlp.fc1.", "mlp.0.").replace("mlp.fc2.", "mlp.3.")
    if match.group(3) is not None:
        return f"features.{2 * stage}.{match.group(3)}.{rest}"
    return f"features.{2 * stage + 1}.{rest}"


def _torchvision_2d_key(key: str) -> str:
    if key.startswith("features.0.0."):
        return "patch_embed.proj." + key.removeprefix("features.0.0.")
    if key.startswith("features.0.2."):
        return "patch_embed.norm." + key.removeprefix("features.0.2.")
    if key.startswith("features."):
        stage, _, rest = key.removeprefix("features.").partition(".")
        return f"features.{int(stage) - 1}.{rest}"
    return key


def inflate_table(table: Tensor, window: list[int], key: str) -> Tensor:
    """A 2D ((2W-1)^2, heads) table as the 3D ((2Wd-1)(2Wh-1)(2Ww-1), heads) one of ``window``."""
    wd, wh, ww = window
    length, heads = table.shape
    side = round(length**0.5)
    if side * side != length:
        raise ConfigError(f"{key}: a 2D bias table of {length} rows is not square")
    if (side, side) != (2 * wh - 1, 2 * ww - 1):
        grid = table.t().reshape(1, heads, side, side).float()
        resized = F.interpolate(grid, size=(2 * wh - 1, 2 * ww - 1), mode="bicubic")
        table = resized.reshape(heads, -1).t().to(table.dtype)
    return table.repeat(2 * wd - 1, 1)


def _windows(swin: nn.Module) -> dict[str, list[int]]:
    return {
        f"{name}.{_TABLE}": [int(v) for v in module.window_size]
        for name, module in swin.named_modules()
        if hasattr(module, _TABLE) and hasattr(module, "window_size")
    }


def inflate_2d_swin(
    state: dict[str, Tensor], swin: nn.Module, layout: str
) -> tuple[dict[str, Tensor], list[str]]:
    """Map a 2D Swin state dict (an official Video Swin one: renamed only) onto ``swin`` (a
    ``SwinTransformer3d``): the mapped tensors and the source keys that have no place in it
    (beyond the head and recomputed buffers)."""
    target = swin.state_dict()
    windows = _windows(swin)
    rename = _official_key if layout in (OFFICIAL_2D, OFFICIAL_3D) else _torchvision_2d_key
    out: dict[str, Tensor] = {}
    unused: list[str] = []
    for key, value in state.items():
        if _SKIP.search(key):
            continue
        new = rename(key)
        if new not in target:
            unused.append(key)
            continue
        if new == "patch_embed.proj.weight" and value.dim() == 4:
            t = target[new].shape[2]
            value = value.unsqueeze(2).repeat(1, 1, t, 1, 1) / t
        elif new.endswith(_TABLE) and value.shape != target[new].shape and layout != OFFICIAL_3D:
            value = inflate_table(value, windows[new], key)
        out[new] = value
    return out, unused


def _checked(
    mapped: dict[str, Tensor], swin: nn.Module, source: str, layout: str
) -> dict[str, Tensor]:
    target = swin.state_dict()
    wrong = [k for k, v in mapped.items() if k in target and target[k].shape != v.shape]
    if wrong:
        raise ConfigError(
            f"{source}: shape mismatch for {wrong[0]} ({tuple(mapped[wrong[0]].shape)} vs "
            f"{tuple(target[wrong[0]].shape)}); is it a Swin-T checkpoint for this config?"
        )
    missing = [k for k in target if not _SKIP.search(k) and k not in mapped]
    if missing:
        raise ConfigError(
            f"{source}: {len(missing)} visual weight(s) missing (first: {missing[0]}) reading "
            f"it as a {layout} checkpoint; expected swin3d_t, 2D swin_t or official Swin-T"
        )
    return {k: v for k, v in mapped.items() if k in target}


def _load_state(path: str | Path) -> dict[str, Tensor]:
    raw = torch_load(path, "no such weights file", "not a torch state dict")
    return _unwrap(raw, str(path))


def visual_state(
    state: dict[str, Tensor], swin: nn.Module, source: str
) -> tuple[dict[str, Tensor], str]:
    """``state`` in any accepted layout as a state dict for ``swin``, and the layout's name."""
    layout = detect_layout(state)
    if layout == TORCHVISION_3D:
        mapped = {k: v for k, v in state.items() if not _SKIP.search(k)}
    else:
        mapped, _ = inflate_2d_swin(state, swin, layout)
    return _checked(mapped, swin, source, layout), layout


def load_visual_weights(swin: nn.Module, path: str | Path) -> str:
    """Load ``path`` into ``swin`` (its head is ignored); return what was loaded, in words."""
    state, layout = visual_state(_load_state(path), swin, str(path))
    swin.load_state_dict(state, strict=False)
    kind = {TORCHVISION_3D: "3D Swin-T", OFFICIAL_3D: OFFICIAL_3D}.get(
        layout, f"{layout} inflated to 3D"
    )
    return f"loaded {len(state)} visual tensors from {path} ({kind})"


@dataclass(frozen=True)
class Converted:
    out: Path
    layout: str
    tensors: int
    parameters: int
    dropped_head: tuple[int, ...] | None
    unused: list[str]


def convert_weights(checkpoint: str | Path, out: str | Path, swin: nn.Module) -> Converted:
    """Write ``checkpoint`` (a 2D Swin, official or torchvision layout, inflated; or an official
    Video Swin one, renamed) for ``swin`` as a
    plain 3D state dict that ``--visual-weights`` (and torchvision's ``swin3d_t``) loads."""
    source = str(checkpoint)
    state = _load_state(checkpoint)
    layout = detect_layout(state)
    if layout == TORCHVISION_3D:
        raise ConfigError(
            f"{source}: already a 3D state dict (or not a Swin one); pass it to "
            "--visual-weights as it is"
        )
    mapped, unused = inflate_2d_swin(state, swin, layout)
    checked = _checked(mapped, swin, source, layout)
    swin.load_state_dict(checked, strict=False)  # proves it loads before anything is written
    result = {k: v.contiguous() for k, v in swin.state_dict().items() if not _SKIP.search(k)}
    with atomic_path(out, suffix=".pt") as tmp:
        torch.save(result, tmp)
    head = state.get("head.weight")
    return Converted(
        out=Path(out),
        layout=layout,
        tensors=len(result),
        parameters=sum(v.numel() for v in result.values()),
        dropped_head=tuple(head.shape) if head is not None else None,
        unused=unused,
    )
