"""Small shared validators used by the frozen config dataclasses; each raises ConfigError naming the field."""

from __future__ import annotations

import math

from prunequant.errors import ConfigError


def check_fraction(name: str, value: float, *, allow_one: bool = False) -> float:
    """Check that `value` is a finite number in [0, 1) (or [0, 1] with `allow_one`)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number in [0, 1), got {value!r}") from None
    upper_ok = value <= 1.0 if allow_one else value < 1.0
    if math.isnan(value) or value < 0.0 or not upper_ok:
        bound = "[0, 1]" if allow_one else "[0, 1)"
        raise ConfigError(f"{name} must be in {bound}, got {value}; e.g. 0.5 removes half")
    return value


def check_int_range(name: str, value: int, low: int, high: int) -> int:
    """Check that `value` is an integer in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name} must be an integer in {low}..{high}, got {value!r}")
    return value


def check_positive(name: str, value: float) -> float:
    """Check that `value` is a finite number > 0."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a positive number, got {value!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a positive number, got {value}")
    return value


def check_choice(name: str, value: str, choices: tuple[str, ...] | list[str]) -> str:
    """Check that `value` is one of `choices`."""
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(map(str, choices))}; got {value!r}")
    return value
