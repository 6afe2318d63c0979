"""Import an optional dependency lazily, or say in one line how to install it."""

from __future__ import annotations

import importlib
from types import ModuleType

from prunequant.errors import DataError


def require(module: str, package: str, purpose: str) -> ModuleType:
    """Import `module`; DataError telling the user to `pip install package` if it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise DataError(f"{purpose} needs {package}, which is not installed; pip install {package}") from None
