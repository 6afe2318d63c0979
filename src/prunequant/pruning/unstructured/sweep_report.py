"""Sweep outputs: CSV, markdown table, accuracy-vs-prune-ratio plot (seed 002 Table 1, seed 000 Fig. 3)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prunequant.errors import ConfigError


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A GitHub markdown table of `rows` (all keys of the first row unless `columns` is given)."""
    columns = list(columns or (rows[0].keys() if rows else []))
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_cell(row.get(column)) for column in columns) + " |" for row in rows]
    return "\n".join(lines)


def write_sweep(
    rows: Sequence[dict[str, Any]], out_dir: str | Path, *, stem: str = "sweep"
) -> dict[str, str]:
    """Write `<stem>.csv`, `<stem>.md` and `<stem>.png` into `out_dir`; return their paths by kind."""
    if not rows:
        raise ConfigError("the sweep produced no rows to write")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        paths = {kind: out / f"{stem}.{kind}" for kind in ("csv", "md", "png")}
        with paths["csv"].open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0].keys()))
            writer.writeheader()
            writer.writerows(rows)
        paths["md"].write_text(markdown_table(rows) + "\n")
        plot_sweep(rows, paths["png"])
    except OSError as exc:
        raise ConfigError(
            f"cannot write the sweep outputs to {out} ({exc}); choose a writable --sweep-dir"
        ) from None
    return {kind: str(path) for kind, path in paths.items()}


def plot_sweep(rows: Sequence[dict[str, Any]], path: str | Path) -> None:
    """Top-1 vs prune ratio, one line per (scope, mode), the unpruned baseline as a red horizontal line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for scope, mode in dict.fromkeys((row["scope"], row["mode"]) for row in rows):
        line = sorted(
            (row["amount"], 100 * row["top1"]) for row in rows if (row["scope"], row["mode"]) == (scope, mode)
        )
        ax.plot(*zip(*line, strict=True), marker="o", label=f"{scope} / {mode}")
    ax.axhline(100 * rows[0]["baseline_top1"], color="red", linestyle="--", label="unpruned")
    ax.set_xlabel("prune ratio (share of weights zeroed)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title("Unstructured magnitude pruning")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
