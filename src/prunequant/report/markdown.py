"""report.md: the summary, seed-style tables and links to the PNG plots (relative to the run directory)."""

from __future__ import annotations

from pathlib import Path

from prunequant.report.layout import Block, Summary
from prunequant.report.plots import Plot
from prunequant.report.tables import Table


def table_markdown(table: Table) -> str:
    """A GitHub-flavoured markdown table (highlighted rows in bold)."""
    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---:" if i in table.numeric else "---" for i in range(len(table.columns))) + "|"
    lines = [f"### {table.title}", "", header, rule]
    for index, row in enumerate(table.rows):
        cells = [_escape(text) for text, _ in row]
        if index in table.highlight:
            cells = [f"**{cell}**" if cell else cell for cell in cells]
        lines.append("| " + " | ".join(cells) + " |")
    if table.note:
        lines += ["", f"_{table.note}_"]
    return "\n".join(lines)


def render_markdown(summary: Summary, blocks: list[Block], run_dir: Path) -> str:
    """The whole report as markdown."""
    parts = [f"# {summary.title}", ""]
    if summary.ship is not None:
        parts += [f"## {summary.ship.title}", "", *[f"> - {line}" for line in summary.ship.lines], ""]
    parts += [f"- {line}" for line in summary.lines]
    for block in blocks:
        parts.append("")
        if isinstance(block, Plot):
            parts += [
                f"![{block.key}]({block.path.relative_to(run_dir).as_posix()})",
                "",
                f"_{block.caption}_",
            ]
        else:
            parts.append(table_markdown(block))
    if summary.recipe:
        parts += ["", "### Recipe", "", "```toml", summary.recipe.rstrip(), "```"]
    return "\n".join(parts) + "\n"


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
