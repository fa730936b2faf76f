"""One typed config loader: declare a dataclass, read YAML, coerce each value by its field's type.

Every YAML configuration of the package (prepare settings, fetch profiles, protocols, variant
definitions, the baseline config) is read through :func:`load_mapping` and built with
:func:`build`, so the same mistake gives the same one-line error everywhere::

    configs/prepare.yaml: crf: expected an integer, found 23.5

(``SOURCE: KEY: expected EXPECTED, found FOUND``, made by :func:`config_error`; the checks each
user adds after the types, ranges and choices, use the same function.)

One set of coercion rules, by the field's annotation:

* ``bool``: YAML ``true``/``false`` only (not ``1``, ``"yes"`` or ``"maybe"``);
* ``int``: an integer, not a bool and not a float (``2.5`` and ``2.0`` are refused);
* ``float``: an integer or a float (returned as a float), or a string spelling a decimal
  number: YAML 1.1 reads ``1e-4`` (no dot) as the string ``'1e-4'``, which is meant as a
  number; ``nan``, ``inf`` and ``1_000`` spelled as strings are refused;
* ``str``: a string (a number is refused rather than turned into a name);
* ``X | None``: ``null`` or an ``X``; ``X | Y``: the first of them that fits;
* ``list[X]`` / ``tuple[X, ...]``: a YAML list whose items are coerced to ``X``;
* ``dict[K, V]``: a mapping, keys coerced to ``K`` and values to ``V``;
* ``Literal[...]``: one of the listed values;
* a dataclass: a mapping, built by the same rules (its keys named ``section.key``);
* ``Any``: taken as it is.

A key the dataclass does not declare is an error (a typo must not fall back to a default). A
field may give its YAML key in its metadata (``field(metadata={"key": "from"})``) when the key is
no Python name. With ``hide_strings`` (fetch profiles: a misplaced proxy or cookies path is a
secret) a wrong string, list or mapping is described by its type, never shown.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

from emotions_data.schema.errors import ConfigError
from emotions_data.schema.yamlfile import read_yaml

T = TypeVar("T")

#: A decimal number as a string (what YAML 1.1 leaves as a string: ``1e-4``, ``+3E5``).
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_MAX_SHOWN = 80


def config_error(source: str, key: str, expected: str, found: str) -> ConfigError:
    """The one error format of every config: ``SOURCE: KEY: expected EXPECTED, found FOUND``."""
    where = f"{source}: {key}" if key else source
    return ConfigError(f"{where}: expected {expected}, found {found}")


def show(value: Any, *, hide_strings: bool = False) -> str:
    """How a found value is named in an error: its YAML-ish repr, short, or only its type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if hide_strings and isinstance(value, str | list | tuple | dict):
        return f"a {_type_name(value)} (not shown)"
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _type_name(value: Any) -> str:
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return type(value).__name__


def describe(tp: Any) -> str:
    """What a field of type ``tp`` expects, in words ("an integer", "a list of numbers")."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if tp is type(None):
        return "null"
    if tp is Any:
        return "any value"
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if origin in (list, tuple):
        item = describe(args[0]) if args else "any value"
        return f"a list of {_plural(item)}"
    if origin is dict:
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return "a mapping of settings"
    return str(tp)


def _plural(words: str) -> str:
    return {
        "an integer": "integers",
        "a number": "numbers",
        "a string": "strings",
        "true or false": "true/false values",
    }.get(words, words)


class _Mismatch(Exception):
    """A value does not fit a type; ``key`` names the part that does not (a list item)."""

    def __init__(self, key: str, tp: Any, value: Any) -> None:
        super().__init__(key)
        self.key, self.tp, self.value = key, tp, value


def _coerce(value: Any, tp: Any, key: str, source: str, hide: bool) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
            number = float(value)
            if math.isfinite(number):
                return number
    elif tp is str:
        if isinstance(value, str):
            return value
    elif tp is type(None):
        if value is None:
            return None
    elif origin in (Union, types.UnionType):
        for arg in args:
            try:
                return _coerce(value, arg, key, source, hide)
            except _Mismatch:
                continue
    elif origin is Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
    elif origin in (list, tuple):
        if isinstance(value, list | tuple):
            item_type = args[0] if args else Any
            items = [
                _coerce(item, item_type, f"{key}[{i}]", source, hide)
                for i, item in enumerate(value)
            ]
            return items if origin is list else tuple(items)
    elif origin is dict:
        if isinstance(value, Mapping):
            key_type, item_type = args if args else (Any, Any)
            return {
                _coerce(k, key_type, f"{key}.{k}", source, hide): _coerce(
                    v, item_type, f"{key}.{k}", source, hide
                )
                for k, v in value.items()
            }
    elif dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if isinstance(value, Mapping):
            return build(tp, value, source, prefix=key, hide_strings=hide)
    else:
        raise TypeError(f"no coercion rule for the field type {tp!r} of {key}")
    raise _Mismatch(key, tp, value)


def coerce(value: Any, tp: Any, source: str, key: str, *, hide_strings: bool = False) -> Any:
    """``value`` as type ``tp`` by the rules above, or a :class:`ConfigError` in the one format.

    A wrong item of a list is named by its index (``model.swin_depths[1]: expected an integer,
    found 'x'``)."""
    try:
        return _coerce(value, tp, key, source, hide_strings)
    except _Mismatch as bad:
        raise config_error(
            source, bad.key, describe(bad.tp), show(bad.value, hide_strings=hide_strings)
        ) from None


def yaml_key(f: dataclasses.Field[Any]) -> str:
    """The YAML key of a dataclass field: its name, or ``metadata["key"]``."""
    return str(f.metadata.get("key", f.name))


def build(
    cls: type[T],
    data: Mapping[str, Any] | None,
    source: str,
    *,
    prefix: str = "",
    base: T | None = None,
    hide_strings: bool = False,
) -> T:
    """An instance of the dataclass ``cls`` from ``data`` (YAML keys -> values), coerced by the
    field types; missing keys keep the field's default (or ``base``'s value, for a section that
    overrides another). Unknown keys, missing required keys and wrong types raise
    :class:`ConfigError` naming ``source`` and ``prefix.key``."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise config_error(
            source, prefix, "a mapping of settings", show(data, hide_strings=hide_strings)
        )
    hints = typing.get_type_hints(cls)
    declared = {yaml_key(f): f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    dotted = f"{prefix}." if prefix else ""
    for key in data:
        if key not in declared:
            raise config_error(
                source,
                f"{dotted}{key}",
                f"one of the keys {', '.join(declared)}",
                "an unknown key",
            )
    values: dict[str, Any] = {}
    for key, f in declared.items():
        if key in data:
            values[f.name] = coerce(
                data[key], hints[f.name], source, f"{dotted}{key}", hide_strings=hide_strings
            )
        elif base is not None:
            values[f.name] = getattr(base, f.name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise config_error(source, f"{dotted}{key}", describe(hints[f.name]), "nothing")
    return cls(**values)


def load_mapping(
    source: str | Path | Mapping[str, Any] | None, what: str, *, default_source: str | None = None
) -> tuple[dict[str, Any], str]:
    """The mapping of a config and the name its errors use: a YAML file (its path), a mapping
    given in code (``default_source``, else ``what``) or ``None`` (empty). An empty file is an
    empty mapping; anything but a mapping at the top is an error in the one format."""
    if source is None:
        return {}, default_source or what
    if isinstance(source, Mapping):
        return dict(source), default_source or what
    name = str(source)
    data = read_yaml(source, what)
    if data is None:
        return {}, name
    if not isinstance(data, dict):
        raise config_error(name, "", f"a mapping of {what} settings", show(data))
    return data, name


def check(ok: bool, source: str, key: str, expected: str, value: Any) -> None:
    """Raise ``config_error`` unless ``ok``: the range and choice checks after the types."""
    if not ok:
        raise config_error(source, key, expected, show(value))
