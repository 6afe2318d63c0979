"""Find a dataset's folder: explicit data_dir, then $PRUNEQUANT_DATA, then /usr/share/datasets/<name>."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from prunequant.errors import DataError

ENV_VAR = "PRUNEQUANT_DATA"
SYSTEM_ROOT = Path("/usr/share/datasets")


def _candidates(name: str, data_dir: str | os.PathLike | None, layouts: Sequence[str] = ("",)) -> list[Path]:
    """Every folder searched for `name`, in order; each root is tried as the dataset folder and as its parent.

    `layouts` are sub-paths tried inside each folder (e.g. torchvision's "FashionMNIST/raw").
    """
    roots = [Path(root).expanduser() for root in (data_dir, os.environ.get(ENV_VAR)) if root]
    folders = [folder for root in roots for folder in (root, root / name)] + [SYSTEM_ROOT / name]
    found: list[Path] = []
    for folder in folders:
        for layout in layouts:
            path = folder / layout if layout else folder
            if path not in found:
                found.append(path)
    return found


def find_data_dir(
    name: str,
    data_dir: str | os.PathLike | None,
    *,
    holds_data: Callable[[Path], bool],
    how_to_get: str,
    layouts: Sequence[str] = ("",),
) -> Path:
    """Return the first candidate folder for which `holds_data` is true, else DataError naming them all."""
    searched = _candidates(name, data_dir, layouts)
    for path in searched:
        if holds_data(path):
            return path
    raise DataError(
        f"{name} data not found; looked in {', '.join(map(str, searched))}. To get it: {how_to_get}, "
        f"then pass --data-dir DIR (data_dir=DIR) or set {ENV_VAR}=DIR"
    )
