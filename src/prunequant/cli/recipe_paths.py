"""Checks of the paths a recipe names, before a run starts: an explicit data_dir must exist (no silent
fallback to another copy of the data), and a relative one must stay inside the recipe's folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomllib

from prunequant.errors import ConfigError


def check_recipe_paths(recipe: Any, recipe_file: str | Path) -> None:
    """Refuse a [data] data_dir that is missing, not a folder, or a relative path leaving the recipe's folder.

    Parameters
    ----------
    recipe:
        The loaded Recipe (its data_dir is already resolved).
    recipe_file:
        The recipe's path, read again for the data_dir exactly as written.
    """
    data_dir = getattr(recipe.data, "data_dir", "")
    if not data_dir:
        return
    raw = _raw_data_dir(Path(recipe_file))
    base = Path(recipe_file).resolve().parent
    if raw and not Path(raw).expanduser().is_absolute():
        resolved = (base / raw).resolve()
        if not resolved.is_relative_to(base):
            raise ConfigError(
                f"{recipe_file}: [data] data_dir = {raw!r} leaves the recipe's folder ({resolved}); write "
                "an absolute path if that folder is really meant"
            )
    path = Path(data_dir)
    if not path.is_dir():
        what = "is a file" if path.exists() else "does not exist"
        raise ConfigError(
            f"{recipe_file}: [data] data_dir {path} {what}; give the folder that holds the dataset "
            "(no other copy is used when data_dir is set)"
        )


def _raw_data_dir(recipe_file: Path) -> str:
    try:
        document = tomllib.loads(recipe_file.read_text())
    except (OSError, ValueError):
        return ""
    data = document.get("data")
    value = data.get("data_dir", "") if isinstance(data, dict) else ""
    return value if isinstance(value, str) else ""
