"""The baseline config: typed values, one-line errors for bad ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from emotions_data.baselines.avcpnet import load_config
from emotions_data.schema.errors import ConfigError


def test_yaml_exponent_floats_are_numbers(tmp_path: Path) -> None:
    # YAML 1.1 reads 1e-4 (no dot) as a string; it must still be the number 1e-4
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  lr: 1e-4\n  weight_decay: 0\nloss:\n  weights: [1, 1, 0.5]\n")
    config = load_config(path)
    assert config.optim.lr == pytest.approx(1e-4)
    assert isinstance(config.optim.weight_decay, float)
    assert config.loss.weights == [1.0, 1.0, 0.5]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("optim.batch_size", "abc", "optim.batch_size: expected an integer, found 'abc'"),
        ("optim.lr", "fast", "optim.lr: expected a number, found 'fast'"),
        ("optim.amp", "yes please", "optim.amp: expected true or false, found 'yes please'"),
        ("model.swin_depths", [1, "x"], r"model.swin_depths\[1\]: expected an integer, found 'x'"),
        ("data.snippets", 2.5, "data.snippets: expected an integer, found 2.5"),
    ],
)
def test_wrongly_typed_values_are_config_errors(key: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, {key: value})
