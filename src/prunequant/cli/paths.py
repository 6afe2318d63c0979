"""Checks of a command's input and output paths, before any work: inputs exist, outputs are never inputs.

Each command declares its path options with `declare_paths(parser, inputs=..., outputs=...)`, mapping an
argparse destination to "file" or "dir"; `check_paths(args)` runs in the error boundary.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prunequant.errors import ConfigError, OutputError

_FLAGS = {"output": "-o", "recipe": "the recipe", "run_dir": "the run directory", "models": "the model"}


def declare_paths(
    parser: argparse.ArgumentParser,
    *,
    inputs: dict[str, str] | None = None,
    outputs: dict[str, str] | None = None,
) -> None:
    """Record which options of `parser` are input / output paths ("file" or "dir")."""
    parser.set_defaults(path_inputs=dict(inputs or {}), path_outputs=dict(outputs or {}))


def check_paths(args: argparse.Namespace) -> None:
    """Refuse missing inputs, outputs that resolve to an input or to each other, and unwritable outputs."""
    inputs = [
        (dest, kind, value)
        for dest, kind in getattr(args, "path_inputs", {}).items()
        for value in _values(getattr(args, dest, None))
    ]
    outputs = [
        (dest, kind, value)
        for dest, kind in getattr(args, "path_outputs", {}).items()
        for value in _values(getattr(args, dest, None))
    ]
    resolved_inputs = []
    for dest, kind, value in inputs:
        path = _check_input(dest, kind, value)
        if path is not None:
            resolved_inputs.append((dest, value, path))
    seen: dict[Path, tuple[str, str]] = {}
    for dest, kind, value in outputs:
        path = Path(os.path.realpath(Path(value).expanduser()))
        for in_dest, in_value, in_path in resolved_inputs:
            if path == in_path:
                raise OutputError(
                    f"{_flag(dest)} {value} is the input {_flag(in_dest)} {in_value}; writing it would "
                    "destroy the input, choose another output path"
                )
        if path in seen:
            other_dest, other_value = seen[path]
            raise OutputError(
                f"{_flag(dest)} {value} and {_flag(other_dest)} {other_value} are the same file; "
                "give each output its own path"
            )
        seen[path] = (dest, value)
        _check_output(dest, kind, value, path)


def _values(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]


def _flag(dest: str) -> str:
    return _FLAGS.get(dest, "--" + dest.replace("_", "-"))


def _check_input(dest: str, kind: str, value: str) -> Path | None:
    if value.startswith("builtin:"):
        from prunequant.builtin import resolve_checkpoint

        return Path(os.path.realpath(resolve_checkpoint(value)))
    path = Path(value).expanduser()
    if not path.exists():
        if dest == "run_dir":
            raise ConfigError(
                f"{value} is not a run directory (it does not exist); give the -o of 'prunequant run'"
            )
        extra = " (no fallback is used when it is given)" if dest == "data_dir" else ""
        raise ConfigError(f"{_flag(dest)} {value} does not exist{extra}; check the path")
    if kind == "file" and path.is_dir():
        raise ConfigError(f"{_flag(dest)} {value} is a directory; give the path of a file")
    if kind == "dir" and not path.is_dir():
        raise ConfigError(f"{_flag(dest)} {value} is a file; give the path of a directory")
    if not os.access(path, os.R_OK):
        raise ConfigError(f"{_flag(dest)} {value} is not readable (permission denied)")
    return Path(os.path.realpath(path))


def _check_output(dest: str, kind: str, value: str, path: Path) -> None:
    if path.exists():
        if kind == "file" and path.is_dir():
            raise OutputError(f"{_flag(dest)} {value} is a directory; give a file path")
        if kind == "dir" and not path.is_dir():
            raise OutputError(f"{_flag(dest)} {value} is a file; give a directory")
    folder = path if kind == "dir" and path.is_dir() else path.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise OutputError(f"cannot write {_flag(dest)} {value}: {folder} is a file, not a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(
            f"cannot write {_flag(dest)} {value}: the folder {folder} is read-only or not yours; "
            "choose a writable location"
        )


@contextmanager
def written_together(*paths: str | None) -> Iterator[None]:
    """If the block fails, remove the files among `paths` that it newly created (no half-written set)."""
    fresh = [Path(p) for p in paths if p and not Path(p).exists()]
    try:
        yield
    except BaseException:
        for path in fresh:
            path.unlink(missing_ok=True)
        raise
