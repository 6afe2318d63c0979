"""Progress bars (rich, on stderr) that switch themselves off for --quiet, --json and non-TTY output."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

_state = {"enabled": True}


def set_progress(enabled: bool) -> None:
    """Turn progress bars on or off for the whole process (the CLI's --quiet)."""
    _state["enabled"] = enabled


def progress_active() -> bool:
    """True when bars should be drawn: enabled and stderr is a terminal."""
    return _state["enabled"] and sys.stderr.isatty()


@contextmanager
def progress_bar() -> Iterator[Progress | None]:
    """A rich Progress on stderr, or None when bars are off."""
    if not progress_active():
        yield None
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with progress:
        yield progress
