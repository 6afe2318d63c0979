"""Advisory lock of a run directory, so two `prunequant run` never work on one directory at once.

The lock is an flock on `<run_dir>/.prunequant.lock`; the kernel drops it when its process dies, so a
lock left by a killed run is taken over by the next one (and said so in the summary). The file records
who holds it (pid, host, start time, command) for the message a second run prints.
"""

from __future__ import annotations

import fcntl
import functools
import inspect
import json
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prunequant.atomic import remove_orphans
from prunequant.errors import RunLockedError, StoreError
from prunequant.lab.store_guard import LOCK_NAME, check_run_dir


class RunLock:
    """An exclusive, non-blocking lock of `run_dir`; use as a context manager."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self.previous: dict[str, Any] | None = None
        self._fd: int | None = None
        self._created = False

    def acquire(self) -> RunLock:
        """Take the lock or raise RunLockedError naming the holder; a dead holder's lock is taken over."""
        self._created = not self.run_dir.exists()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(_read(fd))
            os.close(fd)
            raise _in_use(self.run_dir, holder) from None
        except OSError as exc:
            os.close(fd)
            raise StoreError(f"cannot lock {self.path} ({exc.strerror}); use a local disk for -o") from None
        self.previous = _read(fd) or None
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(), "argv": sys.argv}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Drop the lock (the file stays; it is empty of meaning once unlocked)."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
            if self._created and [p.name for p in self.run_dir.iterdir()] == [LOCK_NAME]:
                self.path.unlink()  # a run that stopped before writing anything leaves no folder behind
                self.run_dir.rmdir()

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _in_use(run_dir: Path, holder: str) -> RunLockedError:
    return RunLockedError(
        f"{run_dir} is in use by another prunequant run ({holder}); wait for it to finish, or use another -o"
    )


def _holder(run_dir: Path) -> str | None:
    """Who holds `run_dir`'s lock now, or None; probes without creating or changing anything."""
    path = run_dir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _describe(_read(fd))
    except OSError:
        return None
    finally:
        os.close(fd)  # flock locks belong to the open file: closing this one drops only the probe's
    return None


def _read(fd: int) -> dict[str, Any]:
    raw = os.pread(fd, 65536, 0)
    try:
        record = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def _describe(record: dict[str, Any]) -> str:
    if not record:
        return "holder unknown"
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(record.get("started", 0))))
    return f"pid {record.get('pid')} on {record.get('host')}, started {started}"


def locked_run(func: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """Decorate run_recipe(recipe, run_dir, ...): check the directory is ours, hold its lock for the call,
    remove temp files a killed run left, and report a taken-over stale lock in the returned summary."""
    signature = inspect.signature(func)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> dict[str, Any]:
        run_dir = Path(signature.bind(*args, **kwargs).arguments["run_dir"])
        from prunequant.lab.store import DB_NAME

        try:
            check_run_dir(run_dir, DB_NAME)
        except StoreError:
            holder = _holder(run_dir)  # a run that holds the lock may be creating its database right now
            if holder is not None:
                raise _in_use(run_dir, holder) from None
            raise
        created = not run_dir.exists()
        try:
            with RunLock(run_dir) as lock:
                removed = remove_orphans(run_dir)
                summary = func(*args, **kwargs)
        except BaseException:
            if created:  # a run refused before any work leaves no directory behind
                _remove_if_only_lock(run_dir)
            raise
        if isinstance(summary, dict) and (lock.previous or removed):  # said only when it happened
            summary["lock"] = {
                "took_over": lock.previous,
                "orphans_removed": [str(path.relative_to(run_dir)) for path in removed],
            }
        return summary

    return wrapper


def _remove_if_only_lock(run_dir: Path) -> None:
    """Remove a directory this run created when it holds nothing but the lock file."""
    if not run_dir.is_dir():
        return
    entries = list(run_dir.iterdir())
    if all(entry.name == LOCK_NAME for entry in entries):
        for entry in entries:
            entry.unlink()
        run_dir.rmdir()
