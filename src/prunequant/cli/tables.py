"""Tables on stdout in the format asked for (--format table|markdown|csv), never hard-wrapped on a pipe.

A rich Console on a pipe or file falls back to 80 columns and folds long rows; here a non-terminal
stdout gets a console as wide as any row, so `prunequant profile ... | less -S` or `> table.txt` keeps
one line per row.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from prunequant.sweep_output import cell_text

PIPE_WIDTH = 10_000
"""Columns of the console used when stdout is not a terminal: wide enough that no row is folded."""


def stdout_console() -> Console:
    """A rich Console on stdout: the terminal's width on a TTY, no wrapping on a pipe or file."""
    if sys.stdout.isatty():
        return Console()
    return Console(width=PIPE_WIDTH, soft_wrap=True)


def print_table(args: argparse.Namespace, table: Table) -> None:
    """Print `table` on stdout as --format says (table, markdown or csv); nothing with --json."""
    if getattr(args, "json", False):
        return
    style = getattr(args, "format", "table")
    if style == "table":
        stdout_console().print(table)
        return
    headers, rows = cells_of(table)
    sys.stdout.write(markdown(headers, rows) if style == "markdown" else csv_text(headers, rows))


def print_note(args: argparse.Namespace, text: str) -> None:
    """A line about the table: on stdout under it for --format table, on stderr for markdown / csv (so
    stdout stays a clean table); nothing with --json (the JSON holds the same facts)."""
    if getattr(args, "json", False):
        return
    if getattr(args, "format", "table") == "table":
        stdout_console().print(text)
    else:
        sys.stderr.write(text + "\n")


def rows_table(rows: Sequence[dict[str, Any]], title: str = "") -> Table:
    """A rich Table of dict rows (the keys of the first row are the columns), cells as in sweep.md."""
    table = Table(title=title or None)
    columns = list(rows[0]) if rows else []
    for column in columns:
        table.add_column(column, justify="left" if isinstance(rows[0][column], str) else "right")
    for row in rows:
        table.add_row(*(Text(cell_text(row.get(column))) for column in columns))
    return table


def cells_of(table: Table) -> tuple[list[str], list[list[str]]]:
    """(headers, rows) of a rich Table as plain text (markup and styles dropped)."""
    headers = [_plain(column.header) for column in table.columns]
    columns = [[_plain(cell) for cell in column.cells] for column in table.columns]
    return headers, [list(row) for row in zip(*columns, strict=True)] if columns else []


def markdown(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table, '|' in cells escaped."""
    lines = [_md_row(headers), "|" + "|".join("---" for _ in headers) + "|"]
    return "\n".join([*lines, *(_md_row(row) for row in rows)]) + "\n"


def csv_text(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """CSV text with a header line."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows(rows)
    return buffer.getvalue()


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _plain(value: Any) -> str:
    if isinstance(value, Text):
        return value.plain
    return Text.from_markup(value).plain if isinstance(value, str) else str(value)
