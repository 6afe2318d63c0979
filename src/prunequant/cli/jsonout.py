"""--json output that is always valid JSON: NaN and infinities become null, and the reason is stated."""

from __future__ import annotations

import json
import math
from typing import Any, TextIO


def plain(value: Any, path: str = "", bad: dict[str, str] | None = None) -> Any:
    """`value` as JSON data; non-finite floats become None and are listed in `bad` by their key path."""
    if hasattr(value, "to_dict") and callable(value.to_dict):
        value = value.to_dict()
    elif hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()
    elif hasattr(value, "tolist") and callable(value.tolist):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        if bad is not None:
            bad[path or "$"] = "NaN (not a number)" if math.isnan(value) else f"{value} (infinite)"
        return None
    if isinstance(value, dict):
        return {str(k): plain(v, f"{path}.{k}" if path else str(k), bad) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, f"{path}[{i}]", bad) for i, v in enumerate(value)]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def dump(result: Any, stream: TextIO) -> None:
    """Write `result` as one JSON line; a top-level `non_finite` maps each nulled key to why."""
    bad: dict[str, str] = {}
    data = plain(result, "", bad)
    if bad and isinstance(data, dict):
        data["non_finite"] = {key: f"{why}: written as null" for key, why in bad.items()}
    json.dump(data, stream, allow_nan=False)
    stream.write("\n")
