"""Advice in an error line names only options the failing command has.

The library's messages say what a CLI user would pass, e.g. "pass model= (CLI: --model NAME)". Shown by
a command without that option (`run`, `report`), such a hint would mislead: it becomes the recipe's
field when the recipe has one (`run`), or is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Collection

RECIPE_FIELDS = {
    "--model": "[model] arch",
    "--model-kwargs": "[model] kwargs",
    "--checkpoint": "[model] checkpoint",
    "--task": "[task]",
    "--dataset": "[data] dataset",
    "--data-dir": "[data] data_dir",
    "--input-shape": "[data]",
    "--importance": "the stage's importance",
    "--calib-batches": "the stage's calib_batches",
    "--batch-size": "[baseline] batch_size",
}
"""Where a `run` user sets what a CLI option sets."""

_CLI_NOTE = re.compile(r"\s*\(CLI:? (--[a-z0-9-]+)[^()]*\)")
_OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def fit_hints(line: str, options: Collection[str] | None, *, recipe: bool = False) -> str:
    """`line` with every option the command lacks replaced by its recipe field (`recipe`) or dropped.

    Parameters
    ----------
    line:
        The one-line error message.
    options:
        The option strings of the command that failed; None leaves `line` as it is.
    recipe:
        True for commands driven by a recipe (`run`): hints become recipe fields.

    Returns
    -------
    The adapted line.
    """
    if options is None:
        return line

    def note(match: re.Match[str]) -> str:
        option = match.group(1)
        if option in options:
            return match.group(0)
        field = RECIPE_FIELDS.get(option) if recipe else None
        return f" (recipe: {field})" if field else ""

    def mention(match: re.Match[str]) -> str:
        option = match.group(0)
        if option in options or not recipe or option not in RECIPE_FIELDS:
            return option
        return RECIPE_FIELDS[option]

    return _OPTION.sub(mention, _CLI_NOTE.sub(note, line))
