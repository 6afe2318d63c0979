"""Store ownership: prunequant opens, and writes, only results databases that are its own.

A database of ours carries the SQLite application_id "PQNT" in its header (set on every open for
writing). An unmarked file is accepted only if its tables are exactly the prunequant schema (a database
written before the marker existed). Everything else (another program's SQLite file, a 0-byte file, a
non-SQLite file) is refused with one line, without being opened for writing: nothing in it changes.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from prunequant.errors import PrunequantError, StoreError

APPLICATION_ID = 0x50514E54  # b"PQNT"
_TABLES = {"trials", "meta"}
_TRIAL_KEYS = {"trial_id", "stage", "label", "config", "status", "seq"}
LOCK_NAME = ".prunequant.lock"


def check_store_file(path: Path) -> None:
    """Refuse `path` unless it is absent (a new run) or a prunequant results database; reads only."""
    if not path.exists():
        return
    if not path.is_file():
        raise StoreError(f"{path} is not a file; a run directory's results database must be a file")
    if path.stat().st_size == 0:
        raise StoreError(
            f"{path} is empty (0 bytes), not a prunequant results database; it was left as it is: "
            "remove it or use another -o"
        )
    application, tables, columns = _inspect(path)
    if application == APPLICATION_ID:
        return
    if application != 0:
        raise StoreError(
            f"{path} belongs to another application (SQLite application_id {application:#x}); left "
            "untouched, use another -o"
        )
    if not tables >= _TABLES or not columns >= _TRIAL_KEYS:
        listed = ", ".join(sorted(tables)) or "none"
        raise StoreError(
            f"{path} is an SQLite database of something else (tables: {listed}), not a prunequant results "
            "database; left untouched, use another -o"
        )


def _inspect(path: Path) -> tuple[int, set[str], set[str]]:
    """application_id, table names and trials columns, through a read-only SQLite connection.

    The file is never opened directly: closing a plain descriptor of an SQLite file would drop the POSIX
    locks that this process's own connections hold on it.
    """
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
        try:
            application = db.execute("PRAGMA application_id").fetchone()[0]
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            columns = (
                {row[1] for row in db.execute("PRAGMA table_info(trials)")} if "trials" in tables else set()
            )
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc):
            raise StoreError(
                f"{path} is not a prunequant results database (not an SQLite file); left untouched, "
                "use another -o"
            ) from None
        raise open_error(path, exc) from None
    return application, tables, columns


def mark_store(db: sqlite3.Connection) -> None:
    """Stamp an open (writable) database as prunequant's."""
    if db.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
        db.execute(f"PRAGMA application_id={APPLICATION_ID}")


def open_error(path: Path, exc: sqlite3.Error) -> PrunequantError:
    """The one-line error for an SQLite failure on `path`: locked, read-only, full, or damaged."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        return StoreError(f"{path} is locked by another process ({text}); wait for it, or use another -o")
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return StoreError(
            f"cannot open {path} for writing ({text}); the folder or disk is read-only or not yours"
        )
    if "full" in text:
        return StoreError(f"cannot write {path} ({text}); free disk space, then rerun to resume")
    if "disk I/O" in text:
        return StoreError(f"cannot write {path} ({text}); check the disk, then rerun to resume")
    return StoreError(f"{path} is not a readable prunequant results database ({text}); use another -o")


def check_run_dir(run_dir: Path, db_name: str) -> None:
    """Refuse a run directory that is not ours: a non-empty folder without a database, or a foreign one."""
    if run_dir.exists() and not run_dir.is_dir():
        raise StoreError(f"{run_dir} is a file; -o of 'prunequant run' is a directory")
    database = run_dir / db_name
    if run_dir.exists() and not database.exists() and any(p.name != LOCK_NAME for p in run_dir.iterdir()):
        raise StoreError(f"{run_dir} exists and is not a prunequant run; choose a new -o")
    check_store_file(database)
