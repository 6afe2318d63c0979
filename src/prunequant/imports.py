"""Import a user's `package.module:name` (dotted names allowed after the colon), with one-line errors."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from prunequant.errors import PrunequantError


def import_callable(spec: str, what: str, error: type[PrunequantError]) -> Callable[..., Any]:
    """The callable named by `spec` ('package.module:name').

    Parameters
    ----------
    spec:
        'package.module:name' or 'package.module:Class.method'.
    what:
        What the callable is for, in messages: 'task factory', '[data] factory', 'model factory'.
    error:
        The PrunequantError subclass raised when it cannot be imported or is not callable.

    Returns
    -------
    The callable. Importing runs the module's code: only specs the user gave are imported, never one
    read from a file.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise error(f"{what} must be 'package.module:name', got {spec!r}")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise error(
            f"cannot import '{module_name}' for {what} '{spec}' ({type(exc).__name__}: {exc}); "
            "check that it is installed or on PYTHONPATH"
        ) from None
    for part in attr.split("."):
        target = getattr(target, part, None)
    if not callable(target):
        raise error(f"'{attr}' in '{module_name}' is not a callable {what}; fix '{spec}'")
    return target
