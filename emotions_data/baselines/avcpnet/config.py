"""The baseline's configuration: one flat dataclass per concern, loaded from a YAML file.

``baselines/configs/avcpnet.yaml`` is the paper's setting, ``tiny.yaml`` a fast CPU setting.
Read by ``schema.config``: its coercion rules, unknown keys an error (a typo must not
silently fall back to a default), its one error format.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emotions_data.schema.config import build, check, config_error, load_mapping, show
from emotions_data.schema.resources import BASELINES_DIR, bundled_or_path


@dataclass
class ModelConfig:
    d_model: int = 512
    fusion: str = "sum"  # sum | concat | film | gated (the last three are ablations)
    attention_heads: int = 8
    dropout: float = 0.0
    polarity_head: bool = False
    # visual branch: torchvision SwinTransformer3d; the defaults are swin3d_t (Video Swin-T)
    swin_patch: list[int] = field(default_factory=lambda: [2, 4, 4])
    swin_embed_dim: int = 96
    swin_depths: list[int] = field(default_factory=lambda: [2, 2, 6, 2])
    swin_heads: list[int] = field(default_factory=lambda: [3, 6, 12, 24])
    swin_window: list[int] = field(default_factory=lambda: [8, 7, 7])
    swin_drop_path: float = 0.1
    # audio branch: ResNet-style 2D CNN, one-channel stem; the defaults are ResNet-34
    audio_widths: list[int] = field(default_factory=lambda: [64, 128, 256, 512])
    audio_blocks: list[int] = field(default_factory=lambda: [3, 4, 6, 3])
    audio_norm: str = "batch"  # batch | group (group keeps DDP and single-process identical)


@dataclass
class DataConfig:
    snippets: int = 16  # S
    frames: int = 8  # F per snippet
    size: int = 112  # square input side
    audio_feature: str = "mfcc"  # mfcc | logmel
    audio_chunk: int = 64  # time steps per audio chunk after resampling
    augment: bool = True
    max_rotation_deg: float = 10.0
    max_brightness: float = 0.2
    workers: int = 2


@dataclass
class LossConfig:
    weights: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])  # fused, visual, audio
    polarity_weight: float = 0.5  # only with model.polarity_head
    epce: bool = True  # False: plain cross-entropy (an ablation)


@dataclass
class OptimConfig:
    epochs: int = 30
    batch_size: int = 8  # global batch per micro-step (split across DDP processes)
    accumulation: int = 4
    lr: float = 1.5e-4
    weight_decay: float = 0.02
    warmup_epochs: float = 1.5
    warmup_start_factor: float = 0.1
    min_lr_factor: float = 0.01
    clip_grad_norm: float = 1.0
    amp: bool = True  # bf16 autocast, CUDA only
    compile: bool = False
    select_metric: str = "uar"  # chosen on val only: uar | accuracy | macro_f1


@dataclass
class BaselineConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> BaselineConfig:
        """Sections and keys typed by ``schema.config`` (its rules and error format)."""
        config = build(cls, data, source)
        config.validate(source)
        return config

    def validate(self, source: str = "<config>") -> None:
        """The choices and sizes the types alone do not say."""
        m, d, o = self.model, self.data, self.optim
        choices = [
            ("model.fusion", m.fusion, ("sum", "concat", "film", "gated")),
            ("model.audio_norm", m.audio_norm, ("batch", "group")),
            ("data.audio_feature", d.audio_feature, ("mfcc", "logmel")),
            ("optim.select_metric", o.select_metric, ("uar", "accuracy", "macro_f1")),
        ]
        for key, value, allowed in choices:
            check(value in allowed, source, key, f"one of {', '.join(allowed)}", value)
        check(
            len(self.loss.weights) == 3,
            source,
            "loss.weights",
            "3 numbers (fused, visual, audio)",
            self.loss.weights,
        )
        sizes = {
            "optim.batch_size": o.batch_size,
            "optim.accumulation": o.accumulation,
            "optim.epochs": o.epochs,
            "data.snippets": d.snippets,
            "data.frames": d.frames,
            "data.size": d.size,
        }
        for key, size in sizes.items():
            check(size >= 1, source, key, "an integer >= 1", size)
        check(
            m.d_model % m.attention_heads == 0,
            source,
            "model.d_model",
            f"a multiple of model.attention_heads ({m.attention_heads})",
            m.d_model,
        )


def load_config(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> BaselineConfig:
    """Load a YAML config (``None``: the paper's defaults; a bare name such as ``tiny``: the
    bundled ``baselines/configs/tiny.yaml``); ``overrides`` maps 'section.key' -> value."""
    data: dict[str, Any] = {}
    source = "<defaults>"
    if path is not None:
        path = bundled_or_path(path, BASELINES_DIR / "configs", "baseline config")
        data, source = load_mapping(path, "baseline config")
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        if not key:
            raise config_error("override", dotted, "a key like section.key", repr(dotted))
        current = data.get(section) or {}
        if not isinstance(current, dict):
            raise config_error(source, section, "a mapping of settings", show(current))
        data[section] = {**current, key: value}
    return BaselineConfig.from_dict(data, source)
