"""Sweep outputs shared by the pruning and quantization sweeps: a markdown table, CSV + MD + PNG files, and
the metric-vs-setting plot, its axis named after the task's primary metric. `SweepFiles` rewrites them
after every finished level, so an interrupted sweep leaves valid partial files saying so."""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prunequant.atomic import atomic_dir
from prunequant.errors import ConfigError, OutputError
from prunequant.tasks import Task, default_task

Rows = Sequence[dict[str, Any]]
Line = Sequence[tuple[float, float]]
Plot = Callable[..., None]
"""plot(rows, path) draws a sweep's PNG; a partial sweep's is called with note="partial: K of N levels"."""


def baseline_column(task: Task | None = None) -> str:
    """The column holding the unchanged model's primary metric: 'baseline_<primary>'."""
    return f"baseline_{(task or default_task()).primary}"


def plot_metric_lines(
    path: str | Path,
    lines: dict[str, Line],
    baseline: float,
    *,
    task: Task | None,
    xlabel: str,
    title: str,
    baseline_label: str,
    xticks: Sequence[str] | None = None,
    note: str = "",
) -> None:
    """Draw the task's primary metric (display units, direction in the axis label) for each named line of
    (x, metric) points, with the baseline as a red dashed line; save a PNG to `path`. A `note` (e.g.
    "partial: 3 of 9 levels") is appended to the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spec = (task or default_task()).primary_metric
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, points in lines.items():
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, [spec.display(y) for y in ys], marker="o", label=label)
    ax.axhline(spec.display(baseline), color="red", linestyle="--", label=baseline_label)
    if xticks is not None:
        ax.set_xticks(range(len(xticks)), xticks)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(spec.title)
    ax.set_title(f"{title} ({note})" if note else title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown_table(rows: Rows, columns: Sequence[str] | None = None) -> str:
    """A GitHub markdown table of `rows` (all keys of the first row unless `columns` is given)."""
    columns = list(columns or (rows[0].keys() if rows else []))
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell_text(row.get(column)) for column in columns) + " |" for row in rows]
    return "\n".join(lines)


def partial_note(done: int, total: int | None) -> str:
    """'partial: K of N levels' while a sweep of `total` levels has `done` of them, else ''."""
    return f"partial: {done} of {total} levels" if total is not None and done < total else ""


def write_sweep_outputs(
    rows: Rows, out_dir: str | Path, *, stem: str, plot: Plot, total: int | None = None
) -> dict[str, str]:
    """Write `<stem>.csv`, `<stem>.md` and `<stem>.png` (drawn by `plot`) into `out_dir`; return the paths.

    With `total` (the levels the sweep plans) and fewer rows, the table's first line and the plot's title
    say "partial: K of N levels"; the CSV holds the finished rows only.
    """
    if not rows:
        raise ConfigError("the sweep produced no rows to write")
    out = Path(out_dir)
    note = partial_note(len(rows), total)
    try:
        with atomic_dir(out) as tmp:  # all three files appear together, or none changes
            with (tmp / f"{stem}.csv").open("w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=list(rows[0].keys()))
                writer.writeheader()
                writer.writerows(rows)
            header = f"{note} (the sweep stopped before the rest)\n\n" if note else ""
            (tmp / f"{stem}.md").write_text(header + markdown_table(rows) + "\n")
            if note:
                plot(rows, tmp / f"{stem}.png", note=note)
            else:
                plot(rows, tmp / f"{stem}.png")
    except OSError as exc:
        raise OutputError(
            f"cannot write the sweep outputs to {out} ({exc.strerror or exc}); choose a writable --sweep-dir"
        ) from None
    return sweep_paths(out, stem)


def sweep_paths(out_dir: str | Path, stem: str) -> dict[str, str]:
    """{"csv" | "md" | "png": path} of a sweep's files in `out_dir`."""
    return {kind: str(Path(out_dir) / f"{stem}.{kind}") for kind in ("csv", "md", "png")}


class SweepFiles:
    """A sweep's CSV, markdown table and plot, rewritten as each level finishes.

    Parameters
    ----------
    out_dir, stem, plot:
        As for `write_sweep_outputs`.
    total:
        The number of levels (rows) the sweep plans; fewer rows are written as "partial: K of N levels".
    """

    def __init__(self, out_dir: str | Path, *, stem: str, plot: Plot, total: int) -> None:
        self.out_dir, self.stem, self.plot, self.total = Path(out_dir), stem, plot, total
        self.rows: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any]) -> None:
        """Record a finished level and rewrite the files."""
        self.rows.append(row)
        self.paths = write_sweep_outputs(
            self.rows, self.out_dir, stem=self.stem, plot=self.plot, total=self.total
        )

    @contextmanager
    def interruptible(self) -> Iterator[SweepFiles]:
        """On Ctrl-C (KeyboardInterrupt) inside the block, say on stderr where the partial files are."""
        try:
            yield self
        except KeyboardInterrupt:
            if self.rows:
                note = partial_note(len(self.rows), self.total)
                print(f"sweep interrupted: {note}, written to {self.out_dir}", file=sys.stderr)
            raise


def cell_text(value: Any) -> str:
    """A sweep table cell: "-" for None, 4 decimals below 10, thousands separators above."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
