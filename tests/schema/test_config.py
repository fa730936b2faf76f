"""The one config loader: its coercion rules, its error format, and that every user shares them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from emotions_data.annotation.protocol import protocol_from_dict
from emotions_data.baselines.avcpnet.config import load_config
from emotions_data.ingest.prepare import load_prepare_config
from emotions_data.ingest.profiles import load_profile
from emotions_data.schema.config import build, coerce, load_mapping
from emotions_data.schema.errors import ConfigError
from emotions_data.variants.definitions import load_variants


@dataclass(frozen=True)
class Inner:
    depth: list[int] = field(default_factory=lambda: [1, 2])


@dataclass(frozen=True)
class Settings:
    rate: float = 0.5
    count: int = 1
    flag: bool = False
    name: str = "x"
    limit: int | None = None
    mode: Literal["a", "b"] = "a"
    inner: Inner = field(default_factory=Inner)
    from_: str | list[str] | None = field(default=None, metadata={"key": "from"})


def message(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        build(Settings, data, "s.yaml")
    text = str(info.value)
    assert "\n" not in text
    return text


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_float_spelled_as_a_string_is_that_float(x: float) -> None:
    # YAML 1.1 leaves 1e-4 a string; written by repr or by YAML it must still be the number
    assert coerce(repr(x), float, "s.yaml", "rate") == x
    assert build(Settings, yaml.safe_load(f"rate: {x!r}"), "s.yaml").rate == x


@given(st.integers())
def test_an_integer_is_an_int_and_a_float(n: int) -> None:
    assert build(Settings, {"count": n}, "s.yaml").count == n
    rate = build(Settings, {"rate": n}, "s.yaml").rate
    assert isinstance(rate, float) and rate == float(n)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_an_int_never_comes_from_a_float(x: float) -> None:
    assert message({"count": x}) == f"s.yaml: count: expected an integer, found {x!r}"


@given(st.text())
def test_a_string_is_a_float_only_when_it_spells_a_finite_decimal_number(text: str) -> None:
    try:
        value = coerce(text, float, "s.yaml", "rate")
    except ConfigError as exc:
        assert str(exc).startswith("s.yaml: rate: expected a number, found ")
    else:
        assert math.isfinite(value) and value == float(text)
        assert set(text.strip()) <= set("0123456789+-.eE")


@pytest.mark.parametrize("text", ["nan", "inf", "-Infinity", "1_000", "0x10", "1e", ""])
def test_strings_that_python_but_not_a_config_reads_as_floats(text: str) -> None:
    assert "rate: expected a number" in message({"rate": text})


@pytest.mark.parametrize("value", [1, 0, "true", "yes", "maybe", None])
def test_bools_are_only_true_and_false(value: object) -> None:
    assert "flag: expected true or false, found" in message({"flag": value})
    assert build(Settings, {"flag": True}, "s.yaml").flag is True


def test_bools_are_no_numbers() -> None:
    assert message({"count": True}) == "s.yaml: count: expected an integer, found true"
    assert message({"rate": False}) == "s.yaml: rate: expected a number, found false"


def test_unions_lists_literals_sections_and_yaml_keys() -> None:
    built = build(
        Settings,
        {"limit": None, "mode": "b", "inner": {"depth": [3]}, "from": "primary"},
        "s.yaml",
    )
    assert (built.limit, built.mode, built.inner, built.from_) == (None, "b", Inner([3]), "primary")
    assert build(Settings, {"from": ["a", "b"]}, "s.yaml").from_ == ["a", "b"]
    assert message({"limit": 2.5}) == "s.yaml: limit: expected an integer or null, found 2.5"
    assert message({"mode": "c"}) == "s.yaml: mode: expected one of a, b, found 'c'"
    assert message({"inner": {"depth": [1, "x"]}}) == (
        "s.yaml: inner.depth[1]: expected an integer, found 'x'"
    )
    assert message({"inner": 3}) == "s.yaml: inner: expected a mapping of settings, found 3"
    assert message({"from": 3}) == (
        "s.yaml: from: expected a string or a list of strings or null, found 3"
    )


def test_unknown_and_missing_keys() -> None:
    assert message({"inner": {"dept": [1]}}) == (
        "s.yaml: inner.dept: expected one of the keys depth, found an unknown key"
    )
    # the Python name of a field given its own YAML key is unknown too
    assert "from_: expected one of the keys rate, count" in message({"from_": "a"})

    @dataclass
    class Needs:
        name: str

    with pytest.raises(ConfigError, match=r"^n\.yaml: name: expected a string, found nothing$"):
        build(Needs, {}, "n.yaml")


def test_hidden_strings_name_their_type_only() -> None:
    with pytest.raises(ConfigError) as info:
        build(Settings, {"count": "http://u:pw@proxy"}, "p.yaml", hide_strings=True)
    assert str(info.value) == "p.yaml: count: expected an integer, found a string (not shown)"


def test_load_mapping_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match=rf"^{path}: expected a mapping of test settings, found"):
        load_mapping(path, "test")
    path.write_text("")
    assert load_mapping(path, "test") == ({}, str(path))
    assert load_mapping({"a": 1}, "test") == ({"a": 1}, "test")


def _error(load: Any, data: Any) -> str:
    with pytest.raises(ConfigError) as info:
        load(data)
    return str(info.value)


#: Each user of the loader, given one setting at ``key``: (load, wrap value, its name in errors).
USERS: dict[str, tuple[Any, Any, str]] = {
    "prepare (int)": (load_prepare_config, lambda v: {"crf": v}, "prepare config: crf"),
    "profile (int)": (
        load_profile,
        lambda v: {"default": {"retries": v}},
        "profile: default.retries",
    ),
    "baseline (int)": (
        lambda d: load_config(None, d),
        lambda v: {"optim.epochs": v},
        "<defaults>: optim.epochs",
    ),
    "protocol (int)": (
        lambda d: protocol_from_dict(d, "p.yaml"),
        lambda v: {"stages": [{"name": "a", "judgements": v}]},
        "p.yaml: stages.a.judgements",
    ),
    "variants (int)": (
        lambda d: load_variants(_write(d)),
        lambda v: {"variants": {"x": {"rule": "balanced", "per_class": v}}},
        "v.yaml: variants.x.per_class",
    ),
}


_TMP: list[Path] = []


def _write(data: Any) -> Path:
    path = _TMP[0] / "v.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(autouse=True)
def _tmp(tmp_path: Path) -> Any:
    _TMP[:] = [tmp_path]
    yield


@pytest.mark.parametrize("value", [2.5, True, [1]])
def test_every_user_gives_the_same_message_for_the_same_integer_mistake(value: Any) -> None:
    found = {2.5: "2.5", True: "true"}.get(value) if not isinstance(value, list) else None
    messages = {}
    for user, (load, wrap, where) in USERS.items():
        text = _error(load, wrap(value))
        where = where.replace("v.yaml", str(_TMP[0] / "v.yaml"))
        assert text.startswith(f"{where}: expected an integer"), (user, text)
        messages[user] = text[len(where) :].replace(" or null", "")
    if found is not None:
        assert set(messages.values()) == {f": expected an integer, found {found}"}, messages
    else:  # a list: shown, except by the profile (it never shows strings or lists)
        assert messages.pop("profile (int)") == ": expected an integer, found a list (not shown)"
        assert set(messages.values()) == {": expected an integer, found [1]"}, messages


def test_every_user_reads_1e_minus_4_as_a_number_and_names_unknown_keys_alike(
    tmp_path: Path,
) -> None:
    assert load_prepare_config({"repost_min_share": "1e-1"}).repost_min_share == 0.1
    assert load_profile({"default": {"backoff_s": "1e-1"}}).default.backoff_s == 0.1
    assert load_config(None, {"optim.lr": "1e-4"}).optim.lr == 1e-4
    stage = protocol_from_dict({"stages": [{"name": "a", "min_kappa": "1e-1"}]}, "p.yaml").stages[0]
    assert stage.min_kappa == 0.1
    path = _write({"variants": {"x": {"rule": "test_oriented", "min_support": "1e-1"}}})
    assert load_variants(path)[0].params["min_support"] == 0.1
    unknown = [
        _error(load_prepare_config, {"colour": 1}),
        _error(load_profile, {"default": {"colour": 1}}),
        _error(lambda d: load_config(None, d), {"optim.colour": 1}),
        _error(lambda d: protocol_from_dict(d, "p.yaml"), {"stages": [{"name": "a", "colour": 1}]}),
        _error(load_variants, _write({"variants": {"x": {"rule": "full", "colour": 1}}})),
    ]
    for text in unknown:
        assert "colour: expected one of the keys " in text and text.endswith(
            ", found an unknown key"
        )
