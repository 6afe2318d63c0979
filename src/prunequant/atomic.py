"""Atomic file writes: every file prunequant writes is either the old one or the new one, never partial.

Temp files are named `.<name>.<32 hex>.tmp[<suffix>]` beside their target, so `remove_orphans` can find
the ones a killed process left behind.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_ORPHAN = re.compile(r"^\..+\.[0-9a-f]{32}\.tmp(\.[A-Za-z0-9]+)?$")


def temp_path(path: Path, *, keep_suffix: bool = False) -> Path:
    """A fresh temp name beside `path` (keeping its suffix when a writer infers the format from it)."""
    tail = path.suffix if keep_suffix else ""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp{tail}")


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to a temp file beside `path`, fsync, then rename over `path`; OSError propagates."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        with open(tmp, "xb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp path (same suffix) for a writer that wants a file name; on success it replaces `path`.

    Parameters
    ----------
    path:
        The final file. Nothing at `path` changes unless the block finishes without an exception.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path, keep_suffix=True)
    try:
        yield tmp
        with open(tmp, "rb+") as file:
            os.fsync(file.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp folder; on success each file in it is moved into `path` (created if needed).

    On failure the temp folder is removed and the files already in `path` stay as they were.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tmp = path / f".out.{uuid.uuid4().hex}.tmp"
    tmp.mkdir()
    try:
        yield tmp
        for item in sorted(tmp.rglob("*")):
            if item.is_file():
                target = path / item.relative_to(tmp)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(item, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remove_orphans(root: str | os.PathLike[str]) -> list[Path]:
    """Delete the temp files and folders that killed writers left under `root`; return what was removed.

    Only call this while no other process writes under `root` (e.g. holding the run lock).
    """
    removed = []
    for item in sorted(Path(root).rglob(".*.tmp*"), reverse=True):
        if not _ORPHAN.match(item.name):
            continue
        if item.is_dir():
            shutil.rmtree(item, ignore_errors=True)
        else:
            item.unlink(missing_ok=True)
        removed.append(item)
    return removed
