"""Sweep outputs shared by the pruning and quantization sweeps: a markdown table, CSV + MD + PNG files, and
the metric-vs-setting plot, its axis named after the task's primary metric."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from prunequant.atomic import atomic_dir
from prunequant.errors import ConfigError, OutputError
from prunequant.tasks import Task, default_task

Rows = Sequence[dict[str, Any]]
Line = Sequence[tuple[float, float]]


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
) -> None:
    """Draw the task's primary metric (display units, direction in the axis label) for each named line of
    (x, metric) points, with the baseline as a red dashed line; save a PNG to `path`."""
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
    ax.set_title(title)
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


def cell_text(value: Any) -> str:
    """A sweep table cell: "-" for None, 4 decimals below 10, thousands separators above."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
