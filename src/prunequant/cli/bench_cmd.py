"""`prunequant bench a.pt b.onnx ...`: side-by-side latency (interleaved rounds), ratios vs the first model.

.pt checkpoints run in torch eager, .onnx files in onnxruntime, all in this one process with the same thread
count. glibc malloc distorts eager PyTorch at batch >= 8, so unless the process started with
MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ set it restarts itself with them (--no-reexec: report
"malloc_tuned": false instead).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rich.table import Table

from prunequant.cli.common import (
    add_common,
    add_input_shape,
    add_model_options,
    add_task_option,
    example_input,
    parse_int_list,
    print_human,
    resolve_model,
    resolve_task,
    shape_spec,
)
from prunequant.cli.numbers import nonneg_int, positive_int
from prunequant.cli.paths import declare_paths
from prunequant.export.bench import (
    MALLOC_ENV,
    BenchReport,
    bench,
    load_candidate,
    restart_with_tuned_malloc,
    torch_candidate,
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench", help="compare latency of .pt and .onnx models side by side", description=__doc__
    )
    parser.add_argument(
        "models", nargs="+", help=".pt checkpoints and/or .onnx files; the first is the baseline"
    )
    parser.add_argument("--batch", type=parse_int_list, default=[1, 64], help="batch sizes (default 1,64)")
    parser.add_argument(
        "--threads", type=positive_int, help="threads for torch and onnxruntime (default: all cores)"
    )
    parser.add_argument("--rounds", type=positive_int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument(
        "--repeats", type=positive_int, default=10, help="timed calls per model per round (default 10)"
    )
    parser.add_argument(
        "--warmup", type=nonneg_int, default=3, help="untimed calls per model first (default 3)"
    )
    add_input_shape(parser)
    add_model_options(parser)
    add_task_option(parser)
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument(
        "--no-reexec",
        action="store_true",
        help="never restart with tuned malloc; report malloc_tuned false instead",
    )
    add_common(parser)
    declare_paths(parser, inputs={"models": "file"})
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> dict[str, Any]:
    if not args.no_reexec and _started_as_cli():
        restart_with_tuned_malloc(["-m", "prunequant.cli.main", *sys.argv[1:]])
    shape = shape_spec(args.input_shape)
    several = isinstance(shape, dict) or bool(shape and isinstance(shape[0], list))
    task = resolve_task(args)  # validated and recorded; latency does not depend on the task
    report = bench(
        [_entry(args, path) for path in args.models] if args.model else args.models,
        args.batch,
        args.threads,
        rounds=args.rounds,
        repeats=args.repeats,
        warmup=args.warmup,
        input_shape=tuple(shape) if shape and not several else None,
        memory=not args.no_memory,
        seed=args.seed,
        example=example_input({"input_shape": shape}, 1) if several else None,
    )
    print_human(args, _table(report))
    print_human(args, f"memory: {report.memory}")
    if not report.malloc_tuned:
        settings = " ".join(f"{key}={value}" for key, value in MALLOC_ENV.items())
        print_human(
            args, f"malloc NOT tuned: torch eager at batch >= 8 looks slower than it is (set {settings})"
        )
    return {**report.to_dict(), "task": task.name if task else "classification"}


def _entry(args: argparse.Namespace, path: str) -> Any:
    """With --model, a .pt (or a plain state_dict) is loaded into that architecture; .onnx / .pt2 as usual."""
    if Path(path).suffix in (".onnx", ".pt2"):
        return load_candidate(path, args.threads)
    model, meta = resolve_model(argparse.Namespace(**{**vars(args), "checkpoint": path}))
    shape = meta.get("input_shape")
    several = isinstance(shape, dict) or bool(shape and isinstance(shape[0], list))
    single = tuple(shape) if shape and not several else None
    return torch_candidate(path, model, single, Path(path))


def _table(report: BenchReport) -> Table:
    caption = f"{report.threads} threads, {report.rounds} interleaved rounds x {report.repeats} calls each"
    table = Table(caption=caption)
    table.add_column("model (.pt: torch, .onnx: onnxruntime)", overflow="fold")
    for column in ("batch", "median ms", "p90 ms", "vs first", "MB", "peak RSS +MB"):
        table.add_column(column, justify="right")
    for model, _, *cells in report.cells():
        table.add_row(Path(model).name, *cells)
    return table


def _started_as_cli() -> bool:
    """True when this process is the `prunequant bench` command itself (safe to exec into a copy of it)."""
    return Path(sys.argv[0]).stem in ("prunequant", "main", "__main__") and "bench" in sys.argv[1:]
