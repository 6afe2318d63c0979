"""Sweep outputs: CSV, markdown table, metric-vs-prune-ratio plot (seed 002 Table 1, seed 000 Fig. 3)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from prunequant.sweep_output import SweepFiles, baseline_column, plot_metric_lines, write_sweep_outputs
from prunequant.tasks import Task, default_task


def write_sweep(
    rows: Sequence[dict[str, Any]],
    out_dir: str | Path,
    *,
    stem: str = "sweep",
    task: Task | None = None,
    total: int | None = None,
) -> dict[str, str]:
    """Write `<stem>.csv`, `<stem>.md` and `<stem>.png` into `out_dir`; return their paths by kind.

    `task` (default classification) names the plotted metric; it must be the task the rows were made with.
    `total`: the levels the sweep planned; fewer rows are marked "partial: K of N levels".
    """
    return write_sweep_outputs(rows, out_dir, stem=stem, plot=partial(plot_sweep, task=task), total=total)


def sweep_files(out_dir: str | Path, total: int, *, task: Task | None = None) -> SweepFiles:
    """The files of an unstructured sweep of `total` levels, rewritten as each finishes."""
    return SweepFiles(out_dir, stem="sweep", plot=partial(plot_sweep, task=task), total=total)


def plot_sweep(
    rows: Sequence[dict[str, Any]], path: str | Path, *, task: Task | None = None, note: str = ""
) -> None:
    """The task's primary metric vs prune ratio, one line per (scope, mode), the unpruned baseline in red."""
    task = task or default_task()
    lines = {
        f"{scope} / {mode}": sorted(
            (row["amount"], row[task.primary]) for row in rows if (row["scope"], row["mode"]) == (scope, mode)
        )
        for scope, mode in dict.fromkeys((row["scope"], row["mode"]) for row in rows)
    }
    plot_metric_lines(
        path,
        lines,
        rows[0][baseline_column(task)],
        task=task,
        xlabel="prune ratio (share of weights zeroed)",
        title="Unstructured magnitude pruning",
        baseline_label="unpruned",
        note=note,
    )
