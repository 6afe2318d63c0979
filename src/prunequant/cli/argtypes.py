"""argparse types for structured option values: JSON kwargs, input shapes, comma-separated lists."""

from __future__ import annotations

import argparse
import json
import math
import re
from typing import Any

from prunequant.models.loadguard import MAX_CONFIG_INT


def parse_kwargs(text: str) -> dict[str, Any]:
    """Parse a JSON object of keyword arguments (argparse type)."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a JSON object like '{{\"width\": 32}}' ({exc})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object like '{{\"width\": 32}}', got {text!r}")
    return value


def parse_shape(text: str) -> tuple[int, ...]:
    """Parse 'C,H,W' or 'CxHxW' into a tuple of positive ints (argparse type)."""
    parts = re.split(r"[,x]", text.strip().lower())
    try:
        shape = tuple(int(part) for part in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected C,H,W like 3,32,32 or 3x32x32, got {text!r}") from None
    if not shape or len(shape) > 8 or any(d <= 0 or d > MAX_CONFIG_INT for d in shape):
        raise argparse.ArgumentTypeError(f"expected positive sizes like 3,32,32, got {text!r}")
    return shape


def parse_named_shape(text: str) -> tuple[str | None, tuple[int, ...]]:
    """Parse 'C,H,W' or 'NAME=CxHxW' into (name or None, shape) (argparse type)."""
    name, sep, shape = text.rpartition("=")
    if sep and not name.isidentifier():
        raise argparse.ArgumentTypeError(f"input name {name!r} must be a Python identifier (image=3x32x32)")
    return (name if sep else None), parse_shape(shape)


def parse_float_list(text: str) -> list[float]:
    """Parse '0,0.1,0.5' into finite floats (argparse type)."""
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected finite comma-separated numbers, got {text!r}")
    return values


def parse_int_list(text: str) -> list[int]:
    """Parse '1,64' into positive ints (argparse type)."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive comma-separated integers, got {text!r}")
    return values
