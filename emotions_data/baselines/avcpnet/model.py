"""AV-CPNet: Video Swin-T per snippet + a ResNet-style audio CNN per chunk, two-stage fusion.

Inputs: ``video`` uint8 or float in [0, 255], (B, S, F, H, W, 3) (uint8 from the loader moves 4x fewer bytes;
normalised here) and ``audio`` float32 (B, S, n_bins, T_chunk). Output: a dict of logits,
``logits`` (fused), ``logits_visual``, ``logits_audio`` and optionally ``logits_polarity``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from emotions_data.baselines.avcpnet.config import ModelConfig

# ImageNet statistics: the inflated 2D Swin-T weights were trained with them.
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


class VisualBranch(nn.Module):
    """torchvision's SwinTransformer3d applied per snippet, pooled, then a linear map to d."""

    mean: Tensor
    std: Tensor

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        from torchvision.models.video.swin_transformer import SwinTransformer3d

        self.swin = SwinTransformer3d(
            patch_size=list(config.swin_patch),
            embed_dim=config.swin_embed_dim,
            depths=list(config.swin_depths),
            num_heads=list(config.swin_heads),
            window_size=list(config.swin_window),
            stochastic_depth_prob=config.swin_drop_path,
        )
        features = config.swin_embed_dim * 2 ** (len(config.swin_depths) - 1)
        self.swin.head = nn.Identity()  # type: ignore[assignment]
        self.proj = nn.Linear(features, config.d_model)
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1, 1), persistent=False)

    def forward(self, video: Tensor) -> Tensor:
        b, s, f, h, w, c = video.shape
        x = video.reshape(b * s, f, h, w, c).permute(0, 4, 1, 2, 3)  # (B*S, 3, F, H, W)
        x = (x.float() / 255.0 - self.mean) / self.std
        pooled = self.swin(x)  # (B*S, features)
        out: Tensor = self.proj(pooled)
        return out.view(b, s, -1)


def _norm_factory(kind: str) -> Callable[[int], nn.Module]:
    if kind == "group":
        return lambda channels: nn.GroupNorm(math.gcd(32, channels), channels)
    return nn.BatchNorm2d


class AudioBranch(nn.Module):
    """A ResNet-style 2D CNN (ResNet-34 by default) with a one-channel stem, per audio chunk."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        from torchvision.models.resnet import BasicBlock

        norm = _norm_factory(config.audio_norm)
        widths, blocks = list(config.audio_widths), list(config.audio_blocks)
        self.stem = nn.Sequential(
            nn.Conv2d(1, widths[0], kernel_size=7, stride=2, padding=3, bias=False),
            norm(widths[0]),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )
        layers: list[nn.Module] = []
        inplanes = widths[0]
        for i, (width, n) in enumerate(zip(widths, blocks, strict=True)):
            stride = 1 if i == 0 else 2
            downsample = None
            if stride != 1 or inplanes != width:
                downsample = nn.Sequential(
                    nn.Conv2d(inplanes, width, kernel_size=1, stride=stride, bias=False),
                    norm(width),
                )
            layers.append(BasicBlock(inplanes, width, stride, downsample, norm_layer=norm))
            layers += [BasicBlock(width, width, norm_layer=norm) for _ in range(n - 1)]
            inplanes = width
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.proj = nn.Linear(inplanes, config.d_model)

    def forward(self, audio: Tensor) -> Tensor:
        b, s, bins, t = audio.shape
        x = audio.reshape(b * s, 1, bins, t).float()
        x = self.pool(self.layers(self.stem(x))).flatten(1)
        out: Tensor = self.proj(x)
        return out.view(b, s, -1)


class CrossAttentionFusion(nn.Module):
    """Stage 1: A' = A + Linear(MHA(A, V, V)), V' = V + Linear(MHA(V, A, A)), then mean over S."""

    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.audio_attends = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.visual_attends = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.audio_out = nn.Linear(d, d)
        self.visual_out = nn.Linear(d, d)

    def forward(self, a: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        a_ctx, _ = self.audio_attends(a, v, v, need_weights=False)
        v_ctx, _ = self.visual_attends(v, a, a, need_weights=False)
        a2 = a + self.audio_out(a_ctx)
        v2 = v + self.visual_out(v_ctx)
        return a2.mean(dim=1), v2.mean(dim=1)


class FusionHead(nn.Module):
    """Stage 2. ``sum`` (the paper): W_a a + W_v v + b, whose audio-only and visual-only heads
    are W_a a + b and W_v v + b (a shared classifier). ``concat``, ``film`` and ``gated`` are the
    ablation alternatives; there the auxiliary heads apply the fused classifier to a and v."""

    def __init__(self, kind: str, d: int, num_classes: int) -> None:
        super().__init__()
        self.kind = kind
        if kind == "sum":
            self.fc_audio = nn.Linear(d, num_classes, bias=False)
            self.fc_visual = nn.Linear(d, num_classes, bias=False)
            self.bias = nn.Parameter(torch.zeros(num_classes))
            return
        self.classifier = nn.Linear(d, num_classes)
        if kind == "concat":
            self.mix = nn.Sequential(nn.Linear(2 * d, d), nn.ReLU(inplace=True))
        elif kind == "film":
            self.film = nn.Linear(d, 2 * d)  # gamma, beta from audio modulate the visual vector
        else:  # gated
            self.gate = nn.Linear(2 * d, d)

    def forward(self, a: Tensor, v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        if self.kind == "sum":
            la, lv = self.fc_audio(a), self.fc_visual(v)
            return la + lv + self.bias, lv + self.bias, la + self.bias
        if self.kind == "concat":
            fused = self.mix(torch.cat([a, v], dim=1))
        elif self.kind == "film":
            gamma, beta = self.film(a).chunk(2, dim=1)
            fused = (1 + gamma) * v + beta
        else:
            g = torch.sigmoid(self.gate(torch.cat([a, v], dim=1)))
            fused = g * a + (1 - g) * v
        return self.classifier(fused), self.classifier(v), self.classifier(a)


class AVCPNet(nn.Module):
    """The audio-visual cross-modal polarity network; ``AVCPNet()`` is the paper's setting."""

    def __init__(
        self, config: ModelConfig | None = None, num_classes: int = 6, num_polarities: int = 3
    ) -> None:
        super().__init__()
        self.config = config or ModelConfig()
        d = self.config.d_model
        self.visual = VisualBranch(self.config)
        self.audio = AudioBranch(self.config)
        self.fusion = CrossAttentionFusion(d, self.config.attention_heads, self.config.dropout)
        self.dropout = nn.Dropout(self.config.dropout)
        self.head = FusionHead(self.config.fusion, d, num_classes)
        self.polarity: nn.Module | None = None
        if self.config.polarity_head:
            self.polarity = nn.Linear(2 * d, num_polarities)

    def forward(self, video: Tensor, audio: Tensor) -> dict[str, Tensor]:
        v_seq = self.visual(video)
        a_seq = self.audio(audio)
        a, v = self.fusion(a_seq, v_seq)
        a, v = self.dropout(a), self.dropout(v)
        fused, visual, audio_only = self.head(a, v)
        out = {"logits": fused, "logits_visual": visual, "logits_audio": audio_only}
        if self.polarity is not None:
            out["logits_polarity"] = self.polarity(torch.cat([a, v], dim=1))
        return out


class VisualOnly(nn.Module):
    """The visual branch alone with a linear head (the reference cost in benchmarks)."""

    def __init__(self, config: ModelConfig | None = None, num_classes: int = 6) -> None:
        super().__init__()
        self.config = config or ModelConfig()
        self.visual = VisualBranch(self.config)
        self.fc = nn.Linear(self.config.d_model, num_classes)

    def forward(self, video: Tensor, audio: Tensor | None = None) -> dict[str, Tensor]:
        return {"logits": self.fc(self.visual(video).mean(dim=1))}
