"""Sweep outputs: CSV, markdown table, accuracy-vs-prune-ratio plot (seed 002 Table 1, seed 000 Fig. 3)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prunequant.sweep_output import write_sweep_outputs


def write_sweep(
    rows: Sequence[dict[str, Any]], out_dir: str | Path, *, stem: str = "sweep"
) -> dict[str, str]:
    """Write `<stem>.csv`, `<stem>.md` and `<stem>.png` into `out_dir`; return their paths by kind."""
    return write_sweep_outputs(rows, out_dir, stem=stem, plot=plot_sweep)


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
