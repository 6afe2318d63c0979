"""`make demo`: profile and evaluate the shipped Fashion-MNIST baseline, then run the demo recipe.

The recipe (recipes/demo.toml, a reduced seed 000 + seed 003) runs pruning and quantization sweeps and
channel pruning with int8; every candidate is measured in the form a user would deploy, and the fastest
one within the budget is shipped to runs/demo/ship/. The headline is that "ship this" box; the report
lands in runs/demo/.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.panel import Panel
from rich.table import Table as RichTable

from prunequant.data import load_dataset, make_loaders
from prunequant.errors import PrunequantError
from prunequant.lab import load_recipe, run_recipe
from prunequant.models import load_checkpoint
from prunequant.profiling import profile
from prunequant.report import load_run, write_report
from prunequant.report.layout import summary
from prunequant.report.tables import Table, sweep_table
from prunequant.tasks import default_task
from prunequant.training import evaluate

DEFAULT_RECIPE = Path("recipes/demo.toml")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m prunequant.demo", description=__doc__)
    parser.add_argument(
        "--recipe", type=Path, default=DEFAULT_RECIPE, help="recipe to run (default %(default)s)"
    )
    parser.add_argument("-o", "--output", type=Path, default=Path("runs/demo"), help="run directory")
    args = parser.parse_args(argv)
    console = Console() if sys.stdout.isatty() else Console(width=150)  # logs keep whole table cells
    start = time.perf_counter()
    try:
        show_baseline(console)
        console.rule(f"compression lab: {args.recipe}")
        run_recipe(load_recipe(args.recipe), args.output, recipe_file=args.recipe)
        report = write_report(args.output)["html"]
        show_headline(console, args.output)
    except PrunequantError as err:
        console.print(f"[red]demo: {err}[/red]")
        return 2
    console.print(f"report: [bold]{report}[/bold]  ({time.perf_counter() - start:.0f} s in all)")
    return 0


def show_baseline(console: Console) -> None:
    """Table I profile and test accuracy of the shipped baseline."""
    model, meta = load_checkpoint("builtin:fashion-mnist")
    splits = load_dataset("fashion-mnist")
    console.rule("shipped baseline: builtin:fashion-mnist")
    console.print(f"model {meta.get('arch')}, trained {meta.get('train', {}).get('epochs')} epochs")
    console.print(profile(model, torch.randn(1, *splits.input_shape)).table())
    task = default_task()
    result = evaluate(model, make_loaders(splits, 256).test, task)
    scores = ", ".join(
        f"{spec.label or spec.name} {spec.format(result.metrics[spec.name])}" for spec in task.metrics
    )
    console.print(f"test: [bold]{scores}[/bold] (n={result.n})")


def show_headline(console: Console, run_dir: Path) -> None:
    """The "ship this" box, the run's summary lines and its Table II (post/aware x pruning/quantization)."""
    data = load_run(run_dir)
    head = summary(data)
    console.rule(head.title)
    if head.ship is not None:
        style = "green" if head.ship.shipped else "red"
        body = "\n".join(f"- {line}" for line in head.ship.lines)
        console.print(Panel(body, title=head.ship.title, border_style=style, expand=False))
    for line in head.lines:
        console.print(line)
    table = sweep_table(data)
    if table is not None:
        console.print(as_rich(table))


def as_rich(table: Table) -> RichTable:
    """A report Table as a rich table."""
    out = RichTable(title=table.title)
    for index, column in enumerate(table.columns):
        out.add_column(column, justify="right" if index in table.numeric else "left")
    for index, row in enumerate(table.rows):
        out.add_row(*(cell[0] for cell in row), style="bold" if index in table.highlight else None)
    return out


if __name__ == "__main__":
    sys.exit(main())
