"""Strict TOML table -> frozen dataclass: unknown keys, wrong types and bad values become one-line
ConfigErrors that name the file, line, section and key."""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, TypeVar

from prunequant.errors import ConfigError

T = TypeVar("T")
_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"']+)\s*=")


@dataclass(frozen=True)
class Source:
    """Where a recipe came from: its display name and text, used to point errors at a line."""

    name: str
    text: str = ""

    def line_of(self, section: str, key: str | None = None) -> int | None:
        """1-based line of `key` in table `[section]` (or of the header when key is None), if found."""
        current = ""
        for number, line in enumerate(self.text.splitlines(), 1):
            header = _HEADER.match(line)
            if header:
                current = header.group(1).replace(" ", "")
                if key is None and current == section:
                    return number
                continue
            found = _KEY.match(line)
            if key is not None and current == section and found and found.group(1).strip("\"'") == key:
                return number
        return None

    def where(self, section: str, key: str | None = None) -> str:
        """'file:LINE' (or 'file') for error messages."""
        line = self.line_of(section, key)
        if line is None and key is not None:
            line = self.line_of(section)
        return f"{self.name}:{line}" if line else self.name

    def error(self, section: str, key: str | None, message: str) -> ConfigError:
        """A ConfigError 'file:LINE: [section] message'."""
        return ConfigError(f"{self.where(section, key)}: [{section}] {message}")


def build_section(cls: type[T], table: Any, section: str, source: Source) -> T:
    """Build dataclass `cls` from TOML `table`, checking keys and types; value checks run in __post_init__."""
    if not isinstance(table, dict):
        raise source.error(section, None, f"must be a table like [{section}], got {type(table).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in fields:
            raise source.error(section, key, f"unknown key '{key}'{suggest(key, fields)}")
        values[key] = _coerce(hints[key], value, section, key, source)
    missing = [
        name
        for name, f in fields.items()
        if f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
        and name not in values
    ]
    if missing:
        raise source.error(section, None, f"missing required key '{missing[0]}'")
    try:
        return cls(**values)
    except ConfigError as err:
        message = str(err)
        key = next((name for name in values if re.match(rf"{re.escape(name)}\b", message)), None)
        raise source.error(section, key, message) from None


def suggest(key: str, choices: typing.Iterable[str]) -> str:
    """'; did you mean 'x'?' plus the valid choices, for an unknown key."""
    choices = sorted(choices)
    close = difflib.get_close_matches(key, choices, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"{hint} (valid: {', '.join(choices)})"


def _coerce(hint: Any, value: Any, section: str, key: str, source: Source) -> Any:
    """Check `value` against the annotation `hint`; lists become tuples, ints are accepted as floats."""
    converted = _convert(hint, value)
    if converted is _BAD:
        raise source.error(section, key, f"{key} must be {_describe(hint)}, got {value!r}")
    return converted


_BAD = object()


def _convert(hint: Any, value: Any) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for option in args:
            if option is type(None):
                continue
            converted = _convert(option, value)
            if converted is not _BAD:
                return converted
        return _BAD
    if origin is tuple:
        if not isinstance(value, list):
            return _BAD
        items = [_convert(args[0], item) for item in value]
        return _BAD if any(item is _BAD for item in items) else tuple(items)
    if origin is dict or hint is dict:
        return dict(value) if isinstance(value, dict) else _BAD
    if hint is bool:
        return value if isinstance(value, bool) else _BAD
    if hint is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _BAD
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return float(value) if ok else _BAD
    if hint is str:
        return value if isinstance(value, str) else _BAD
    return value


def _describe(hint: Any, plural: bool = False) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a, plural) for a in args if a is not type(None))
    if origin is tuple:
        return f"a list of {_describe(args[0], plural=True)}"
    if origin is dict or hint is dict:
        return "tables" if plural else "a table"
    names = {
        bool: ("true or false", "booleans"),
        int: ("an integer", "integers"),
        float: ("a number", "numbers"),
        str: ("a string", "strings"),
    }
    return names[hint][plural] if hint in names else str(hint)
