"""The baseline's configuration: one flat dataclass per concern, loaded from a YAML file.

``baselines/configs/avcpnet.yaml`` is the paper's setting, ``tiny.yaml`` a fast CPU setting.
Unknown keys are an error (a typo must not silently fall back to a default).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emotions_data.schema.errors import ConfigError
from emotions_data.schema.resources import BASELINES_DIR, bundled_or_path
from emotions_data.schema.yamlfile import read_yaml


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
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: a baseline config must be a mapping")
        sections: dict[str, type[Any]] = {
            "model": ModelConfig,
            "data": DataConfig,
            "loss": LossConfig,
            "optim": OptimConfig,
        }
        unknown = sorted(set(data) - set(sections))
        if unknown:
            raise ConfigError(f"{source}: unknown section(s) {unknown}; allowed: {list(sections)}")
        built: dict[str, Any] = {}
        for name, klass in sections.items():
            values = data.get(name) or {}
            if not isinstance(values, dict):
                raise ConfigError(f"{source}: section {name!r} must be a mapping")
            allowed = {f.name for f in dataclasses.fields(klass)}
            bad = sorted(set(values) - allowed)
            if bad:
                raise ConfigError(
                    f"{source}: unknown key(s) {bad} in {name!r}; allowed: {sorted(allowed)}"
                )
            built[name] = klass(
                **{
                    f.name: _coerce(values[f.name], str(f.type), f"{source}: {name}.{f.name}")
                    for f in dataclasses.fields(klass)
                    if f.name in values
                }
            )
        config = cls(**built)
        config.validate(source)
        return config

    def validate(self, source: str = "<config>") -> None:
        m, d, o = self.model, self.data, self.optim
        if m.fusion not in ("sum", "concat", "film", "gated"):
            raise ConfigError(
                f"{source}: model.fusion {m.fusion!r}; allowed: sum, concat, film, gated"
            )
        if m.audio_norm not in ("batch", "group"):
            raise ConfigError(f"{source}: model.audio_norm {m.audio_norm!r}; allowed: batch, group")
        if d.audio_feature not in ("mfcc", "logmel"):
            raise ConfigError(
                f"{source}: data.audio_feature {d.audio_feature!r}; allowed: mfcc, logmel"
            )
        if o.select_metric not in ("uar", "accuracy", "macro_f1"):
            raise ConfigError(
                f"{source}: optim.select_metric {o.select_metric!r}; allowed: uar, accuracy, macro_f1"
            )
        if len(self.loss.weights) != 3:
            raise ConfigError(f"{source}: loss.weights needs 3 numbers (fused, visual, audio)")
        if min(o.batch_size, o.accumulation, o.epochs, d.snippets, d.frames, d.size) < 1:
            raise ConfigError(f"{source}: sizes, epochs and batch settings must be >= 1")
        if m.d_model % m.attention_heads:
            raise ConfigError(f"{source}: model.d_model must be a multiple of attention_heads")


def _coerce(value: Any, kind: str, where: str) -> Any:
    """``value`` as the field's type ``kind`` (its annotation), or a one-line ConfigError.

    A float given as a string is parsed: YAML 1.1 reads ``1e-4`` (no dot) as the string '1e-4',
    which would otherwise reach the optimizer and fail there with a traceback.
    """
    numeric = isinstance(value, int | float) and not isinstance(value, bool)  # True is an int
    if kind.startswith("list[") and isinstance(value, list | tuple):
        try:
            return [_coerce(v, kind[5:-1], where) for v in value]
        except ConfigError:
            pass
    elif kind == "float" and (numeric or isinstance(value, str)):
        try:
            return float(value)
        except ValueError:
            pass
    elif (
        (kind == "int" and numeric and isinstance(value, int))
        or (kind == "bool" and isinstance(value, bool))
        or (kind == "str" and isinstance(value, str))
    ):
        return value
    raise ConfigError(f"{where} must be {kind}, got {value!r}")


def load_config(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> BaselineConfig:
    """Load a YAML config (``None``: the paper's defaults; a bare name such as ``tiny``: the
    bundled ``baselines/configs/tiny.yaml``); ``overrides`` maps 'section.key' -> value."""
    data: dict[str, Any] = {}
    source = "<defaults>"
    if path is not None:
        path = bundled_or_path(path, BASELINES_DIR / "configs", "baseline config")
        source = str(path)
        loaded = read_yaml(path, "baseline config")
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: a baseline config must be a mapping")
        data = dict(loaded or {})
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        if not key:
            raise ConfigError(f"override {dotted!r} must look like section.key")
        data.setdefault(section, {})
        data[section] = {**(data[section] or {}), key: value}
    return BaselineConfig.from_dict(data, source)
