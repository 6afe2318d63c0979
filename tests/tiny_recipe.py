"""The tiny recipe shared by the lab and bad-input tests (synthetic 1x8x8 data, a 4-wide small_cnn trained
in the run), and its variants."""

from __future__ import annotations

import re

BASE = """\
[run]
seed = 0
threads = 1

[task]
max_drop = 0.05

[model]
arch = "small_cnn"
kwargs = { width = 4 }

[data]
dataset = "synthetic"
options = { num_classes = 4, input_shape = [1, 8, 8], size = 256, noise = 0.6 }

[baseline]
lr = 0.1
epochs = 3
batch_size = 32

[profile]
repeats = 2
"""


def tiny_recipe(**values: str | float | None) -> str:
    """BASE with the value of each `key = value` set (a str is written as a TOML string, None drops the line).

    A key is a whole line (`epochs`, `arch`, `kwargs`) or an entry of `options` (`size`, `noise`); one
    that is not exactly once in BASE is a KeyError, so no change is lost silently.
    """
    text = BASE
    for key, value in values.items():
        name = re.escape(key)
        lines = list(re.finditer(rf"(?m)^{name} = .*\n", text))
        entries = list(re.finditer(rf"(?<=[{{,] ){name} = [^,}}]*[^,}} ]", text))
        if len(lines) + len(entries) != 1:
            raise KeyError(f"{key!r} is {len(lines) + len(entries)} times in the tiny recipe, not once")
        if value is None and entries:
            raise KeyError(f"{key!r} is an entry of an inline table; give it a value, not None")
        match, end = (lines[0], "\n") if lines else (entries[0], "")
        written = f'"{value}"' if isinstance(value, str) else str(value)
        new = "" if value is None else f"{key} = {written}{end}"
        text = text[: match.start()] + new + text[match.end() :]
    return text
