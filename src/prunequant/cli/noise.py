"""Keep third-party output (torch.fx dumps, exporter chatter, warnings, library logs) off the terminal.

While a command runs, sys.stdout and sys.stderr are proxies: writes made by prunequant itself or by rich
(our tables and progress bars) pass straight through; writes from any other code are kept in a buffer, or,
with --verbose, sent to stderr at once. stdout then holds only prunequant's own output (e.g. --json).
"""

from __future__ import annotations

import io
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

_OURS = ("prunequant", "rich", "__main__")


class _Gate(io.TextIOBase):
    """A text stream that forwards our writes to `target` and diverts the rest to `noise`."""

    def __init__(self, target: TextIO, noise: list[str], verbose: bool, stderr: TextIO) -> None:
        self._target, self._noise, self._verbose, self._stderr = target, noise, verbose, stderr

    def write(self, text: str) -> int:
        caller = sys._getframe(1)
        while caller is not None and caller.f_globals.get("__name__", "") in ("io", "codecs", "_io"):
            caller = caller.f_back
        module = caller.f_globals.get("__name__", "") if caller is not None else ""
        if module.split(".")[0] in _OURS:
            return self._target.write(text)
        if self._verbose:
            return self._stderr.write(text)
        self._noise.append(text)
        return len(text)

    def flush(self) -> None:
        self._target.flush()

    def isatty(self) -> bool:
        return self._target.isatty()

    def fileno(self) -> int:
        return self._target.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._target, "encoding", "utf-8")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


@contextmanager
def captured_noise(verbose: bool) -> Iterator[list[str]]:
    """Divert third-party output for the block; yields the list of diverted text pieces."""
    noise: list[str] = []
    out, err = sys.stdout, sys.stderr
    sys.stdout = _Gate(out, noise, verbose, err)  # type: ignore[assignment]
    sys.stderr = _Gate(err, noise, verbose, err)  # type: ignore[assignment]
    try:  # library log records reach the gate through logging's handlers (or its last-resort handler)
        with warnings.catch_warnings():
            warnings.simplefilter("default")  # once per location in this command (resets the registry)
            warnings.showwarning = _keep(noise, err if verbose else None)
            yield noise
    finally:
        sys.stdout, sys.stderr = out, err


def _keep(noise: list[str], stream: TextIO | None) -> Any:
    def show(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None):
        text = warnings.formatwarning(message, category, filename, lineno, line)
        if stream is not None:
            stream.write(text)
        else:
            noise.append(text)

    return show
