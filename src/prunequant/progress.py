"""Progress bars (rich, on stderr): on whenever stderr is a terminal, --json included; off with --quiet.

stdout is left alone, so `--json` still prints exactly one JSON object there. rich decides what a
terminal is (FORCE_COLOR / TTY_COMPATIBLE=1 force it, e.g. under a pager or in tests).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

_state = {"enabled": True}


def set_progress(enabled: bool) -> None:
    """Turn progress bars on or off for the whole process (the CLI's --quiet)."""
    _state["enabled"] = enabled


def progress_active() -> bool:
    """True when bars should be drawn: enabled (no --quiet) and stderr is a terminal."""
    return _state["enabled"] and Console(stderr=True).is_terminal


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
