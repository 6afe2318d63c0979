"""Timing stability: the same pair timed twice in one process gives speedups within each other's spread.

    python benchmarks/timing_stability.py [--rounds 15] [--repeats 5] [--threads 1]

The pair is the shipped baseline (builtin:fashion-mnist, small_cnn) in torch eager against its int8 ONNX
(PTQ 8/8, our scales, calibrated on random inputs: this measures speed only, not accuracy). Each of two
measurements is one `prunequant.export.bench` call (prunequant.timing underneath: warm-up, interleaved
rotating rounds, speedup = eager median / int8 median, p10-p90 of the per-round ratios). The process
restarts itself with the glibc malloc settings of DESIGN.md so torch eager is measured fairly. Prints a
markdown table: per batch, both speedups with their spread, and whether each lies inside the other's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from prunequant.builtin import resolve_checkpoint
from prunequant.export.bench import (
    BenchReport,
    bench,
    malloc_tuned,
    onnx_candidate,
    restart_with_tuned_malloc,
    torch_candidate,
)
from prunequant.export.onnx_int8 import export_int8
from prunequant.export.runtime import OnnxRunner
from prunequant.models import load_checkpoint
from prunequant.quantization import QuantConfig, quantize
from prunequant.timing import load_average

BATCHES = (1, 64)
EAGER, INT8 = "baseline torch eager", "baseline int8 ONNX"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    restart_with_tuned_malloc([__file__, *sys.argv[1:]])
    torch.manual_seed(0)
    model, meta = load_checkpoint(resolve_checkpoint("builtin:fashion-mnist"))
    shape = tuple(meta["input_shape"])
    with tempfile.TemporaryDirectory(prefix="pq-stability-") as folder:
        path = int8_file(model, shape, Path(folder) / "baseline_int8.onnx")
        measurements = [measure(model, shape, path, args) for _ in range(2)]
        print(table(measurements, args))


def int8_file(model: torch.nn.Module, shape: tuple[int, ...], path: Path) -> Path:
    """The baseline's int8 QDQ ONNX (PTQ 8/8 calibrated on random inputs: a speed-only stand-in)."""
    images = torch.randn(128, *shape)
    loader = DataLoader(TensorDataset(images, torch.zeros(128, dtype=torch.long)), batch_size=64)
    qmodel = quantize(model, QuantConfig(), loader, calib_batches=2)
    export_int8(qmodel, path, images[:1])
    return path


def measure(
    model: torch.nn.Module, shape: tuple[int, ...], path: Path, args: argparse.Namespace
) -> BenchReport:
    entries = [torch_candidate(EAGER, model, shape), onnx_candidate(INT8, OnnxRunner(path, args.threads))]
    return bench(entries, BATCHES, args.threads, rounds=args.rounds, repeats=args.repeats)


def table(measurements: list[BenchReport], args: argparse.Namespace) -> str:
    first, second = measurements
    load = load_average()
    lines = [
        f"### Timing stability: {EAGER} vs {INT8}, measured twice in one process",
        "",
        f"threads used {first.threads_used} (asked {args.threads}; {first.thread_reason}), "
        f"{args.rounds} rounds x {args.repeats} calls, malloc tuned: {malloc_tuned()}, "
        f"load average at end {load if load is None else f'{load:.2f}'}",
        "",
        "| batch | eager ms (1st / 2nd) | int8 ms (1st / 2nd) | speedup 1st (p10-p90) "
        "| speedup 2nd (p10-p90) | within each other's spread | noisy |",
        "|---:|---:|---:|---:|---:|---|---|",
    ]
    for batch in BATCHES:
        (eager_a, int8_a), (eager_b, int8_b) = (
            [row for row in report.rows if row.batch == batch] for report in (first, second)
        )
        agree = _inside(int8_a.ratio_vs_first, int8_b) and _inside(int8_b.ratio_vs_first, int8_a)
        lines.append(
            f"| {batch} | {eager_a.median_ms:.3f} / {eager_b.median_ms:.3f} "
            f"| {int8_a.median_ms:.3f} / {int8_b.median_ms:.3f} | {_speedup(int8_a)} | {_speedup(int8_b)} "
            f"| {'yes' if agree else 'NO'} | {'yes' if int8_a.noisy or int8_b.noisy else 'no'} |"
        )
    return "\n".join(lines)


def _inside(value: float, row) -> bool:
    return row.speedup_p10 <= value <= row.speedup_p90


def _speedup(row) -> str:
    return f"{row.ratio_vs_first:.2f}x ({row.speedup_p10:.2f}-{row.speedup_p90:.2f})"


if __name__ == "__main__":
    main()
