"""Turn checkpoint metadata and layer configs into plain JSON data, or fail with one clear line."""

from __future__ import annotations

import json
from typing import Any

from prunequant.errors import CheckpointError


def json_safe(value: Any, what: str) -> Any:
    """`value` as plain JSON data: tuples become lists, numpy/tensor values numbers/lists, paths strings."""
    try:
        return json.loads(json.dumps(value, default=_plain))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(
            f"{what} is not JSON-safe ({exc}); use numbers, strings, lists and dicts"
        ) from None


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "__fspath__"):
        return str(value.__fspath__())
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
