"""Quantization sweep outputs: CSV, markdown table and the accuracy-vs-bits plot (seed 000 Figs. 1-2)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prunequant.quantization.sweep import MODES
from prunequant.sweep_output import write_sweep_outputs


def write_quant_sweep(
    rows: Sequence[dict[str, Any]], out_dir: str | Path, *, stem: str = "quant_sweep"
) -> dict[str, str]:
    """Write `<stem>.csv`, `<stem>.md` and `<stem>.png` into `out_dir`; return their paths by kind."""
    return write_sweep_outputs(rows, out_dir, stem=stem, plot=plot_quant_sweep)


def plot_quant_sweep(rows: Sequence[dict[str, Any]], path: str | Path) -> None:
    """Top-1 per bit width (in sweep order), one line per mode, the float baseline as a red line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(dict.fromkeys(row["bits"] for row in rows if row["mode"] != "baseline"))
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for mode in MODES:
        points = [(labels.index(row["bits"]), 100 * row["top1"]) for row in rows if row["mode"] == mode]
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", label=f"{mode}-training quantization")
    ax.axhline(100 * rows[0]["baseline_top1"], color="red", linestyle="--", label="float32 baseline")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlabel("weight / activation bits")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title("Uniform quantization")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
