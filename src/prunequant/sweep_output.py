"""Sweep outputs shared by the pruning and quantization sweeps: a markdown table and CSV + MD + PNG files."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from prunequant.atomic import atomic_dir
from prunequant.errors import ConfigError, OutputError

Rows = Sequence[dict[str, Any]]


def markdown_table(rows: Rows, columns: Sequence[str] | None = None) -> str:
    """A GitHub markdown table of `rows` (all keys of the first row unless `columns` is given)."""
    columns = list(columns or (rows[0].keys() if rows else []))
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_cell(row.get(column)) for column in columns) + " |" for row in rows]
    return "\n".join(lines)


def write_sweep_outputs(
    rows: Rows, out_dir: str | Path, *, stem: str, plot: Callable[[Rows, Path], None]
) -> dict[str, str]:
    """Write `<stem>.csv`, `<stem>.md` and `<stem>.png` (drawn by `plot`) into `out_dir`; return the paths."""
    if not rows:
        raise ConfigError("the sweep produced no rows to write")
    out = Path(out_dir)
    paths = {kind: out / f"{stem}.{kind}" for kind in ("csv", "md", "png")}
    try:
        with atomic_dir(out) as tmp:  # all three files appear together, or none changes
            with (tmp / f"{stem}.csv").open("w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=list(rows[0].keys()))
                writer.writeheader()
                writer.writerows(rows)
            (tmp / f"{stem}.md").write_text(markdown_table(rows) + "\n")
            plot(rows, tmp / f"{stem}.png")
    except OSError as exc:
        raise OutputError(
            f"cannot write the sweep outputs to {out} ({exc.strerror or exc}); choose a writable --sweep-dir"
        ) from None
    return {kind: str(path) for kind, path in paths.items()}


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
