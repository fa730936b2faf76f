"""A randomly initialised checkpoint in the official 2D Swin layout (microsoft/Swin-Transformer,
``models/swin_transformer.py``): key names, shapes and buffers written out from that code,
independently of the converter, so a test can feed the converter what the real release holds."""

from __future__ import annotations

import torch
from torch import Tensor


def _relative_index(window: int) -> Tensor:
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij"))
    flat = coords.flatten(1)
    rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0) + (window - 1)
    return rel[:, :, 0] * (2 * window - 1) + rel[:, :, 1]


def official_swin_state(
    *,
    embed_dim: int = 96,
    depths: tuple[int, ...] = (2, 2, 6, 2),
    heads: tuple[int, ...] = (3, 6, 12, 24),
    window: int = 7,
    image: int = 224,
    num_classes: int = 21841,  # the ImageNet-22K head
    seed: int = 0,
) -> dict[str, object]:
    """``{"model": state_dict}`` as the official release stores it (22K defaults)."""
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=gen) * 0.05

    state: dict[str, Tensor] = {
        "patch_embed.proj.weight": rand(embed_dim, 3, 4, 4),
        "patch_embed.proj.bias": rand(embed_dim),
        "patch_embed.norm.weight": 1 + rand(embed_dim),
        "patch_embed.norm.bias": rand(embed_dim),
    }
    resolution = image // 4
    for i, (depth, n_heads) in enumerate(zip(depths, heads, strict=True)):
        dim = embed_dim * 2**i
        win = min(window, resolution)
        for j in range(depth):
            p = f"layers.{i}.blocks.{j}."
            state |= {
                p + "norm1.weight": 1 + rand(dim),
                p + "norm1.bias": rand(dim),
                p + "attn.relative_position_bias_table": rand((2 * win - 1) ** 2, n_heads),
                p + "attn.relative_position_index": _relative_index(win),
                p + "attn.qkv.weight": rand(3 * dim, dim),
                p + "attn.qkv.bias": rand(3 * dim),
                p + "attn.proj.weight": rand(dim, dim),
                p + "attn.proj.bias": rand(dim),
                p + "norm2.weight": 1 + rand(dim),
                p + "norm2.bias": rand(dim),
                p + "mlp.fc1.weight": rand(4 * dim, dim),
                p + "mlp.fc1.bias": rand(4 * dim),
                p + "mlp.fc2.weight": rand(dim, 4 * dim),
                p + "mlp.fc2.bias": rand(dim),
            }
            if j % 2 and resolution > window:  # shifted blocks keep their mask as a buffer
                windows = (resolution // win) ** 2
                state[p + "attn_mask"] = torch.zeros(windows, win * win, win * win)
        if i < len(depths) - 1:
            state |= {
                f"layers.{i}.downsample.reduction.weight": rand(2 * dim, 4 * dim),
                f"layers.{i}.downsample.norm.weight": 1 + rand(4 * dim),
                f"layers.{i}.downsample.norm.bias": rand(4 * dim),
            }
            resolution //= 2
    last = embed_dim * 2 ** (len(depths) - 1)
    state |= {
        "norm.weight": 1 + rand(last),
        "norm.bias": rand(last),
        "head.weight": rand(num_classes, last),
        "head.bias": rand(num_classes),
    }
    return {"model": state}


def torchvision_2d_names(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The same tensors under torchvision's 2D ``SwinTransformer`` names (a reference forward)."""
    import re

    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if key.endswith(("attn_mask", "relative_position_index")):
            continue
        new = key.replace("mlp.fc1.", "mlp.0.").replace("mlp.fc2.", "mlp.3.")
        new = new.replace("patch_embed.proj.", "features.0.0.").replace(
            "patch_embed.norm.", "features.0.2."
        )
        match = re.match(r"layers\.(\d+)\.(blocks\.(\d+)|downsample)\.(.*)", new)
        if match:
            stage = int(match.group(1))
            if match.group(3) is not None:
                new = f"features.{2 * stage + 1}.{match.group(3)}.{match.group(4)}"
            else:
                new = f"features.{2 * stage + 2}.{match.group(4)}"
        out[new] = value
    return out
