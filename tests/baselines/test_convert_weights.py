"""`baseline convert-weights`: an official-layout 2D Swin-T (ImageNet-22K shaped, randomly
initialised) inflated the Video Swin way, loaded into the 3D branch, and checked to respond to
a static clip as the 2D network does to its frame."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from emotions_data.baselines.avcpnet import load_config
from emotions_data.baselines.avcpnet.config import ModelConfig
from emotions_data.baselines.avcpnet.model import AVCPNet, VisualBranch
from emotions_data.baselines.avcpnet.weights import inflate_table, load_visual_weights
from emotions_data.cli import main
from emotions_data.schema.errors import ConfigError
from tests.baselines.official_swin import official_swin_state, torchvision_2d_names

TINY = Path(__file__).parents[2] / "baselines" / "configs" / "tiny.yaml"
# tiny.yaml's visual branch: embed 24, depths 1-1, heads 2-4, window 2x4x4, patch 2x4x4
TINY_2D = {"embed_dim": 24, "depths": (1, 1), "heads": (2, 4), "num_classes": 10}


def _convert(source: Path, out: Path, config: Path | None = TINY) -> str:
    args = ["baseline", "convert-weights", str(source), "--out", str(out)]
    result = CliRunner().invoke(main, args + (["--config", str(config)] if config else []))
    assert result.exit_code == 0, result.output
    return result.output


def _static_clip(frame: torch.Tensor, frames: int) -> torch.Tensor:
    """(1, 3, H, W) -> (1, 3, T, H, W), the same frame T times."""
    return frame.unsqueeze(2).repeat(1, 1, frames, 1, 1)


def test_official_checkpoint_inflates_and_loads(tmp_path: Path) -> None:
    # window 7 (the release's) onto tiny's 4x4 windows: the tables are resized bicubically
    official = official_swin_state(**TINY_2D, window=7, image=224)
    torch.save(official, tmp_path / "official.pth")
    output = _convert(tmp_path / "official.pth", tmp_path / "visual.pt")
    assert "official 2D Swin -> 3D" in output and "dropped head (10, 48)" in output
    state2d = official["model"]
    assert isinstance(state2d, dict)

    model = AVCPNet(load_config(TINY).model)
    note = load_visual_weights(model.visual.swin, tmp_path / "visual.pt")
    assert "3D Swin-T" in note
    s3 = model.visual.swin.state_dict()
    # patch embedding: repeated over the temporal patch (2) and divided by it
    w2d = state2d["patch_embed.proj.weight"]
    assert torch.allclose(s3["patch_embed.proj.weight"], w2d.unsqueeze(2).repeat(1, 1, 2, 1, 1) / 2)
    # bias table: 13x13 resized to 7x7, then the same for each of the 3 temporal offsets
    table = s3["features.0.0.attn.relative_position_bias_table"].view(3, 49, 2)
    assert torch.equal(table[0], table[1]) and torch.equal(table[1], table[2])
    source = state2d["layers.0.blocks.0.attn.relative_position_bias_table"]
    grid = source.t().reshape(1, 2, 13, 13)
    expected = F.interpolate(grid, size=(7, 7), mode="bicubic").reshape(2, 49).t()
    assert torch.allclose(table[0], expected, atol=1e-6)
    assert torch.equal(s3["features.2.0.mlp.3.weight"], state2d["layers.1.blocks.0.mlp.fc2.weight"])
    assert torch.equal(
        s3["features.1.reduction.weight"], state2d["layers.0.downsample.reduction.weight"]
    )

    # a static clip: the 3D patch embedding gives the 2D one at every temporal position
    frame = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        embedded = model.visual.swin.patch_embed(_static_clip(frame, 4))  # (1, T/2, H/4, W/4, C)
        flat = F.conv2d(frame, w2d, state2d["patch_embed.proj.bias"], stride=4)
        flat = F.layer_norm(
            flat.permute(0, 2, 3, 1),
            (24,),
            state2d["patch_embed.norm.weight"],
            state2d["patch_embed.norm.bias"],
        )
    assert embedded.shape == (1, 2, 8, 8, 24)
    for t in range(2):
        assert torch.allclose(embedded[:, t], flat, atol=1e-5)
    # the official layout is also accepted by --visual-weights directly
    direct = AVCPNet(load_config(TINY).model)
    assert "official 2D Swin inflated" in load_visual_weights(
        direct.visual.swin, tmp_path / "official.pth"
    )
    for key, value in direct.visual.swin.state_dict().items():
        assert torch.equal(value, s3[key]), key


def test_a_static_clip_reproduces_the_2d_network(tmp_path: Path) -> None:
    # the same window as the 2D network: every block of the inflated 3D Swin, fed a clip whose
    # frames are all one image, must give the 2D Swin's features for that image
    from torchvision.models.swin_transformer import SwinTransformer

    official = official_swin_state(**TINY_2D, window=4, image=32, seed=3)
    torch.save(official, tmp_path / "official.pth")
    _convert(tmp_path / "official.pth", tmp_path / "visual.pt")
    branch = VisualBranch(load_config(TINY).model).eval()
    load_visual_weights(branch.swin, tmp_path / "visual.pt")
    swin2d = SwinTransformer(
        patch_size=[4, 4],
        embed_dim=24,
        depths=[1, 1],
        num_heads=[2, 4],
        window_size=[4, 4],
        num_classes=10,
    ).eval()
    state2d = official["model"]
    assert isinstance(state2d, dict)
    missing, unexpected = swin2d.load_state_dict(torchvision_2d_names(state2d), strict=False)
    assert [k for k in missing if not k.endswith("relative_position_index")] == []
    assert unexpected == []
    frame = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        features2d = swin2d.avgpool(swin2d.permute(swin2d.norm(swin2d.features(frame)))).flatten(1)
        features3d = branch.swin(_static_clip(frame, 4))
    assert features3d.shape == features2d.shape == (1, 48)
    assert torch.allclose(features3d, features2d, atol=1e-4)
    assert not torch.allclose(features3d, branch.swin(_static_clip(frame.flip(-1), 4)), atol=1e-2)


@pytest.mark.slow
def test_the_22k_release_layout_converts_for_the_paper_setting(tmp_path: Path) -> None:
    torch.save(official_swin_state(), tmp_path / "swin_tiny_patch4_window7_224_22k.pth")
    output = _convert(
        tmp_path / "swin_tiny_patch4_window7_224_22k.pth", tmp_path / "visual.pt", config=None
    )
    # Swin-T without its head: 27.5 M parameters; the 22K head (21841 x 768) is dropped
    assert "dropped head (21841, 768)" in output and "unused" not in output
    swin = VisualBranch(ModelConfig()).swin  # the paper's visual branch
    assert "3D Swin-T" in load_visual_weights(swin, tmp_path / "visual.pt")


def test_unconvertible_inputs_are_one_line_errors(tmp_path: Path) -> None:
    torch.save(VisualBranch(load_config(TINY).model).swin.state_dict(), tmp_path / "3d.pt")
    torch.save(official_swin_state(**{**TINY_2D, "embed_dim": 32}), tmp_path / "wide.pth")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    for name, message in (
        ("3d.pt", "already a 3D state dict"),
        ("wide.pth", "shape mismatch for patch_embed.proj.weight"),
        ("junk.pth", "not a torch state dict"),
        ("none.pth", "no such weights file"),
    ):
        result = CliRunner().invoke(
            main,
            [
                "baseline",
                "convert-weights",
                str(tmp_path / name),
                "--out",
                str(tmp_path / "o.pt"),
                "--config",
                str(TINY),
            ],
        )
        assert result.exit_code == 1 and message in result.output, (name, result.output)
        assert result.output.count("\n") == 1
    assert not (tmp_path / "o.pt").exists()
    with pytest.raises(ConfigError, match="not square"):
        inflate_table(torch.zeros(12, 2), [2, 4, 4], "t")


def test_an_official_video_swin_checkpoint_is_renamed(tmp_path: Path) -> None:
    # the Video Swin repository's layout: the official 2D names under "backbone.", 3D shapes,
    # an mmaction "cls_head"; made here from the converter's own output
    torch.save(official_swin_state(**TINY_2D, window=7, seed=4), tmp_path / "official.pth")
    _convert(tmp_path / "official.pth", tmp_path / "visual.pt")
    inflated = torch.load(tmp_path / "visual.pt", weights_only=True)
    renamed = {}
    for key, value in inflated.items():
        key = key.replace("mlp.0.", "mlp.fc1.").replace("mlp.3.", "mlp.fc2.")
        for stage in (0, 1):
            key = key.replace(f"features.{2 * stage}.0.", f"layers.{stage}.blocks.0.")
        key = key.replace("features.1.", "layers.0.downsample.")
        renamed["backbone." + key] = value
    renamed["cls_head.fc_cls.weight"] = torch.zeros(400, 48)
    torch.save({"state_dict": renamed}, tmp_path / "videoswin.pth")
    swin = VisualBranch(load_config(TINY).model).swin
    assert "official Video Swin (3D)" in load_visual_weights(swin, tmp_path / "videoswin.pth")
    for key, value in swin.state_dict().items():
        if key in inflated:
            assert torch.equal(value, inflated[key]), key
