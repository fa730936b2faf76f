"""AV-CPNet shapes per fusion mode, and local visual weights (3D, and 2D inflated to 3D)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from emotions_data.baselines.avcpnet import AVCPNet, load_config
from emotions_data.baselines.avcpnet.config import ModelConfig
from emotions_data.baselines.avcpnet.weights import load_visual_weights
from emotions_data.schema.errors import ConfigError

TINY = Path(__file__).parents[2] / "baselines" / "configs" / "tiny.yaml"


def _tiny_model(**overrides: object) -> AVCPNet:
    config = load_config(TINY, {f"model.{k}": v for k, v in overrides.items()})
    return AVCPNet(config.model)


def _inputs(batch: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    video = torch.randint(0, 256, (batch, 4, 4, 32, 32, 3), dtype=torch.uint8)
    return video, torch.randn(batch, 4, 64, 32)


def test_default_model_is_the_paper_setting() -> None:
    config = AVCPNet().config
    assert config == ModelConfig()
    assert (config.swin_embed_dim, config.swin_depths, config.swin_heads) == (
        96,
        [2, 2, 6, 2],
        [3, 6, 12, 24],
    )
    assert config.swin_window == [8, 7, 7] and config.d_model == 512


@pytest.mark.parametrize("fusion", ["sum", "concat", "film", "gated"])
def test_every_fusion_gives_three_heads(fusion: str) -> None:
    model = _tiny_model(fusion=fusion, polarity_head=True)
    out = model(*_inputs())
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "logits": (2, 6),
        "logits_visual": (2, 6),
        "logits_audio": (2, 6),
        "logits_polarity": (2, 3),
    }


def test_sum_fusion_heads_share_the_classifier() -> None:
    model = _tiny_model().eval()
    with torch.no_grad():
        out = model(*_inputs())
    bias = model.head.bias
    # W_a a + W_v v + b == (W_a a + b) + (W_v v + b) - b
    assert torch.allclose(
        out["logits"], out["logits_audio"] + out["logits_visual"] - bias, atol=1e-5
    )


def test_unknown_fusion_is_a_config_error() -> None:
    with pytest.raises(
        ConfigError, match=r"model\.fusion: expected one of sum, concat, film, gated, found 'mean'"
    ):
        load_config(TINY, {"model.fusion": "mean"})
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(TINY, {"optim.learning_rate": 1})


def test_3d_weights_load_and_ignore_the_head(tmp_path: Path) -> None:
    source = _tiny_model()
    path = tmp_path / "swin3d.pth"
    state = {k: v for k, v in source.visual.swin.state_dict().items()}
    state["head.weight"] = torch.zeros(400, 48)  # a Kinetics head: must be ignored
    torch.save(state, path)
    target = _tiny_model()
    note = load_visual_weights(target.visual.swin, path)
    assert "3D Swin-T" in note
    for key, value in source.visual.swin.state_dict().items():
        assert torch.equal(target.visual.swin.state_dict()[key], value), key


def test_2d_weights_are_inflated(tmp_path: Path) -> None:
    from torchvision.models.swin_transformer import SwinTransformer

    torch.manual_seed(1)
    swin2d = SwinTransformer(
        patch_size=[4, 4], embed_dim=24, depths=[1, 1], num_heads=[2, 4], window_size=[4, 4]
    )
    path = tmp_path / "swin2d.pth"
    torch.save({"model": swin2d.state_dict()}, path)
    model = _tiny_model()
    note = load_visual_weights(model.visual.swin, path)
    assert "inflated" in note
    s2, s3 = swin2d.state_dict(), model.visual.swin.state_dict()
    patch2d = s2["features.0.0.weight"]  # (24, 3, 4, 4), temporal patch 2
    assert torch.allclose(
        s3["patch_embed.proj.weight"], patch2d.unsqueeze(2).repeat(1, 1, 2, 1, 1) / 2
    )
    table2d = s2["features.1.0.attn.relative_position_bias_table"]  # (7*7, heads)
    table3d = s3["features.0.0.attn.relative_position_bias_table"]  # (3*7*7, heads)
    assert torch.equal(table3d, table2d.repeat(3, 1))
    assert torch.equal(s3["features.1.reduction.weight"], s2["features.2.reduction.weight"])


def test_bad_weights_are_config_errors(tmp_path: Path) -> None:
    model = _tiny_model()
    with pytest.raises(ConfigError, match="no such weights file"):
        load_visual_weights(model.visual.swin, tmp_path / "none.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="not a torch state dict"):
        load_visual_weights(model.visual.swin, junk)
    torch.save(AVCPNet().visual.swin.state_dict(), tmp_path / "big.pth")
    with pytest.raises(ConfigError, match="shape mismatch"):
        load_visual_weights(model.visual.swin, tmp_path / "big.pth")
