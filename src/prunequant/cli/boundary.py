"""The CLI's one error boundary: every exception becomes one line and an exit code.

- PrunequantError (user input), OSError (environment), SQLite errors, MemoryError and a model's own
  exception inside its forward pass: one line, exit 2.
- KeyboardInterrupt / SIGTERM: "interrupted", exit 130 / 143; the run stays resumable.
- Anything else is a bug of prunequant: "internal error", exit 1; --debug or PRUNEQUANT_DEBUG=1 prints the
  traceback.
"""

from __future__ import annotations

import errno
import os
import signal
import sqlite3
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from prunequant.errors import PrunequantError

USER_ERROR = 2
INTERNAL_ERROR = 1
DEBUG_ENV = "PRUNEQUANT_DEBUG"

_OS_HINTS = {
    errno.ENOSPC: "the disk is full; free space or write elsewhere",
    errno.EDQUOT: "the disk quota is exceeded; free space or write elsewhere",
    errno.EROFS: "the filesystem is read-only; write elsewhere",
    errno.EACCES: "permission denied; choose a path you can write",
    errno.EPERM: "permission denied; choose a path you can write",
    errno.ENOENT: "it does not exist; check the path",
    errno.EISDIR: "it is a directory; give a file path",
    errno.ENOTDIR: "a part of the path is a file, not a directory",
    errno.ENAMETOOLONG: "the name is too long",
}


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when SIGTERM arrives, so cleanup runs as for Ctrl-C."""


def debug_enabled(flag: bool) -> bool:
    """--debug, or PRUNEQUANT_DEBUG set to anything but '', '0' or 'false'."""
    return flag or os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into a Terminated exception for the duration of the block (main thread only)."""

    def handler(signum: int, frame: Any) -> None:
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def classify(exc: BaseException) -> tuple[int, str]:
    """The exit code and the one-line message for `exc`."""
    if isinstance(exc, Terminated):
        return 128 + signal.SIGTERM, "terminated (SIGTERM); rerun the same command to resume"
    if isinstance(exc, KeyboardInterrupt):
        return 130, "interrupted; rerun the same command to resume"
    if isinstance(exc, PrunequantError):
        return USER_ERROR, one_line(str(exc))
    if isinstance(exc, OSError):
        return USER_ERROR, os_error_line(exc)
    if isinstance(exc, sqlite3.Error):
        return USER_ERROR, sqlite_line(exc)
    if isinstance(exc, MemoryError):
        return USER_ERROR, "out of memory; use a smaller --batch-size or a smaller model"
    forward = forward_line(exc)
    if forward is not None:
        return USER_ERROR, forward
    return INTERNAL_ERROR, (
        f"internal error ({type(exc).__name__}: {one_line(str(exc), 200)}); this is a bug in prunequant, "
        f"please report it; rerun with --debug or {DEBUG_ENV}=1 to see the traceback"
    )


def one_line(text: str, limit: int = 600) -> str:
    """Whitespace collapsed to single spaces and cut to `limit` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def os_error_line(exc: OSError) -> str:
    """'cannot use PATH: cause; hint', naming both paths of a rename."""
    where = exc.filename if exc.filename is not None else None
    if exc.filename2 is not None:
        where = f"{exc.filename} -> {exc.filename2}"
    cause = exc.strerror or one_line(str(exc), 200)
    hint = _OS_HINTS.get(exc.errno or -1)
    text = f"cannot use {where}: {cause}" if where else f"system error: {cause}"
    return text + (f" ({hint})" if hint and hint.split(";")[0] not in cause.lower() else "")


def sqlite_line(exc: sqlite3.Error) -> str:
    """A results-database error as one line with what to do."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        return f"the results database is locked by another process ({text}); wait for it, or use another -o"
    if "readonly" in text or "read-only" in text:
        return f"the results database cannot be written ({text}); the folder or disk is read-only"
    if "full" in text:
        return f"the results database cannot be written ({text}); free disk space and resume"
    return f"the results database failed ({one_line(text, 200)}); it may be damaged, use a new -o"


def forward_line(exc: BaseException) -> str | None:
    """One line naming the model and input shapes when `exc` was raised inside an nn.Module's forward."""
    frames = _module_frames(exc.__traceback__)
    if not frames:
        return None
    outer_module, outer_args = frames[0]
    inner_module, inner_args = frames[-1]
    name = _model_name(outer_module)
    text = f"model {name} failed in its forward pass on inputs {_shapes(outer_args)}"
    if inner_module is not outer_module:
        layer = _layer_name(outer_module, inner_module)
        text += f" (in layer '{layer}' {type(inner_module).__name__}, given {_shapes(inner_args)})"
    text += f": {type(exc).__name__}: {one_line(str(exc), 300)}"
    return text + "; check that the input shape (--input-shape) and the data fit the model"


def _module_frames(tb: TracebackType | None) -> list[tuple[Any, Any]]:
    """(module, args) of every Module.__call__ / forward frame of a traceback, outermost first."""
    from torch import nn

    found: list[tuple[Any, Any]] = []
    seen: set[int] = set()
    while tb is not None:
        frame = tb.tb_frame
        module = frame.f_locals.get("self")
        in_call = frame.f_code.co_name in ("_call_impl", "forward") and isinstance(module, nn.Module)
        if in_call and id(module) not in seen:
            seen.add(id(module))
            args = frame.f_locals.get("args")
            kwargs = frame.f_locals.get("kwargs")
            if isinstance(kwargs, dict) and kwargs:  # keyword inputs, e.g. a dict batch spread as **inputs
                args = dict(kwargs) if not args else (*args, dict(kwargs))
            if args is None:
                names = frame.f_code.co_varnames[1 : frame.f_code.co_argcount]
                args = tuple(frame.f_locals.get(n) for n in names)
            found.append((module, args))
        tb = tb.tb_next
    return found


def _model_name(module: Any) -> str:
    from prunequant.models.registry import ARCH_ATTR

    stamp = getattr(module, ARCH_ATTR, None)
    return f"'{stamp['name']}'" if isinstance(stamp, dict) and "name" in stamp else type(module).__name__


def _layer_name(model: Any, layer: Any) -> str:
    for name, module in model.named_modules():
        if module is layer:
            return name or "(root)"
    return "?"


def _shapes(value: Any) -> str:
    import torch

    if isinstance(value, torch.Tensor):
        return "x".join(map(str, value.shape)) or "scalar"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_shapes(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (tuple, list)):
        inner = [_shapes(v) for v in value]
        return inner[0] if len(inner) == 1 else "(" + ", ".join(inner) + ")"
    return type(value).__name__


def format_traceback(exc: BaseException) -> str:
    """The full traceback text (for --debug)."""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
