"""Find a dataset's folder: a given data_dir only, else $PRUNEQUANT_DATA, then /usr/share/datasets/<name>.

A data_dir that is given (--data-dir, a recipe's data_dir) is the only place looked in: if it does not
hold the dataset, that is an error naming the folder and the files expected, never a fallback to another
copy of the data.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from prunequant.errors import DataError

ENV_VAR = "PRUNEQUANT_DATA"
SYSTEM_ROOT = Path("/usr/share/datasets")


def _candidates(
    name: str, data_dir: str | os.PathLike | None, layouts: Sequence[str], only_given: bool
) -> list[Path]:
    """Every folder searched for `name`, in order; each root is tried as the dataset folder and as its parent.

    `layouts` are sub-paths tried inside each folder (e.g. torchvision's "FashionMNIST/raw"); with
    `only_given`, a given `data_dir` is the only root.
    """
    roots = [Path(root).expanduser() for root in (data_dir, os.environ.get(ENV_VAR)) if root]
    if data_dir and only_given:
        roots = roots[:1]
    folders = [folder for root in roots for folder in (root, root / name)]
    if not (data_dir and only_given):
        folders.append(SYSTEM_ROOT / name)
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
    expected: str,
    layouts: Sequence[str] = ("",),
    only_given: bool = True,
) -> Path:
    """Return the first candidate folder for which `holds_data` is true, else DataError naming them all.

    Parameters
    ----------
    name:
        The dataset's name (also a sub-folder tried under each root).
    data_dir:
        The folder the user gave; when set (and `only_given`), nothing else is searched.
    holds_data:
        True for a folder holding the dataset's files.
    how_to_get:
        How to obtain the files (for the error).
    expected:
        The files a folder must hold (for the error).
    layouts:
        Sub-paths tried inside each folder (e.g. torchvision's "FashionMNIST/raw").
    only_given:
        False where `data_dir` is mainly something else (a generated dataset's cache root): then the
        environment and the system copy are searched after it.

    Returns
    -------
    The folder holding the dataset.
    """
    searched = _candidates(name, data_dir, layouts, only_given)
    for path in searched:
        if holds_data(path):
            return path
    if data_dir and only_given:
        root = Path(data_dir).expanduser()
        subs = [str(path.relative_to(root)) for path in searched if path != root]
        where = f"in it or in {' or '.join(subs)}" if subs else "in it"
        raise DataError(
            f"the data folder {data_dir} holds no {name} data: expected {expected} {where}; no other "
            "copy is used when data_dir (CLI: --data-dir) is given"
        )
    raise DataError(
        f"{name} data not found; looked in {', '.join(map(str, searched))}. To get it: {how_to_get}, "
        f"then pass --data-dir DIR (data_dir=DIR) or set {ENV_VAR}=DIR"
    )
