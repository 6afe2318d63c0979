"""Reports of lab runs: report.md, a self-contained report.html and PNG plots, from a run directory."""

from __future__ import annotations

from pathlib import Path

from prunequant.atomic import atomic_write
from prunequant.report.html import render_html
from prunequant.report.layout import arrange, summary
from prunequant.report.markdown import render_markdown
from prunequant.report.plots import write_plots
from prunequant.report.run_data import RunData, load_run
from prunequant.report.tables import Table, all_tables


def write_report(run_dir: str | Path) -> dict[str, Path]:
    """Write plots/*.png, report.md and report.html into `run_dir`; return their paths."""
    run_dir = Path(run_dir)
    data = load_run(run_dir)
    plots = write_plots(data, run_dir / "plots")
    blocks = arrange(all_tables(data), plots)
    head = summary(data)
    markdown, page = run_dir / "report.md", run_dir / "report.html"
    atomic_write(markdown, render_markdown(head, blocks, run_dir).encode())
    atomic_write(page, render_html(head, blocks).encode())
    return {"markdown": markdown, "html": page, **{f"plot:{plot.key}": plot.path for plot in plots}}


__all__ = ["RunData", "Table", "load_run", "write_report"]
