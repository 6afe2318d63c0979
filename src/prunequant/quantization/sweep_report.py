"""Quantization sweep outputs: CSV, markdown table and the metric-vs-bits plot (seed 000 Figs. 1-2)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from prunequant.sweep_output import SweepFiles, baseline_column, plot_metric_lines, write_sweep_outputs
from prunequant.tasks import Task, default_task


def write_quant_sweep(
    rows: Sequence[dict[str, Any]],
    out_dir: str | Path,
    *,
    stem: str = "quant_sweep",
    task: Task | None = None,
    total: int | None = None,
) -> dict[str, str]:
    """Write `<stem>.csv`, `<stem>.md` and `<stem>.png` into `out_dir`; return their paths by kind.

    `task` (default classification) names the plotted metric; it must be the task the rows were made with.
    `total`: the levels the sweep planned; fewer rows are marked "partial: K of N levels".
    """
    plot = partial(plot_quant_sweep, task=task)
    return write_sweep_outputs(rows, out_dir, stem=stem, plot=plot, total=total)


def quant_sweep_files(out_dir: str | Path, total: int, *, task: Task | None = None) -> SweepFiles:
    """The files of a quantization sweep of `total` levels, rewritten as each finishes."""
    return SweepFiles(out_dir, stem="quant_sweep", plot=partial(plot_quant_sweep, task=task), total=total)


def plot_quant_sweep(
    rows: Sequence[dict[str, Any]], path: str | Path, *, task: Task | None = None, note: str = ""
) -> None:
    """The task's primary metric per bit width (in sweep order), one line per mode, the float baseline red."""
    task = task or default_task()
    labels = list(dict.fromkeys(row["bits"] for row in rows if row["mode"] != "baseline"))
    lines = {
        f"{mode}-training quantization": [
            (labels.index(row["bits"]), row[task.primary]) for row in rows if row["mode"] == mode
        ]
        for mode in dict.fromkeys(row["mode"] for row in rows if row["mode"] != "baseline")
    }
    plot_metric_lines(
        path,
        lines,
        rows[0][baseline_column(task)],
        task=task,
        xlabel="weight / activation bits",
        title="Uniform quantization",
        baseline_label="float32 baseline",
        xticks=labels,
        note=note,
    )
