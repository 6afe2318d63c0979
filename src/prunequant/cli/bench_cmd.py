"""`prunequant bench a.pt b.onnx ...`: side-by-side latency (interleaved rounds), ratios vs the first model.

.pt checkpoints run in torch eager, .onnx files in onnxruntime, all in this one process with the same thread
count. glibc malloc distorts eager PyTorch at batch >= 8, so unless the process started with
MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ set it restarts itself with them (--no-reexec: report
"malloc_tuned": false instead).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.table import Table

from prunequant.builtin import PREFIX, resolve_checkpoint
from prunequant.cli.argtypes import parse_int_list
from prunequant.cli.common import example_input, resolve_model, resolve_task, shape_spec
from prunequant.cli.numbers import nonneg_int, positive_int
from prunequant.cli.options import (
    add_alias,
    add_common,
    add_format_option,
    add_input_shape,
    add_model_options,
    add_task_option,
    model_group,
)
from prunequant.cli.paths import declare_paths
from prunequant.cli.tables import print_note, print_table
from prunequant.export.bench import (
    COLUMNS,
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
        "models",
        nargs="+",
        help=".pt / .pqz checkpoints, builtin:fashion-mnist and/or .onnx files; the first is the baseline",
    )
    model = model_group(parser)
    add_model_options(model)
    add_input_shape(model)
    add_task_option(model)
    timing = parser.add_argument_group("timing")
    batch = timing.add_argument(
        "--batch-size", type=parse_int_list, default=[1, 64], help="batch sizes, e.g. 1,64 (default 1,64)"
    )
    add_alias(timing, batch, "--batch")
    timing.add_argument(
        "--threads", type=positive_int, help="threads for torch and onnxruntime (default: all cores)"
    )
    timing.add_argument(
        "--keep-threads",
        action="store_true",
        help="keep --threads even when the machine is oversubscribed (default: fall back to 1 thread)",
    )
    timing.add_argument("--rounds", type=positive_int, default=5, help="interleaved rounds (default 5)")
    timing.add_argument(
        "--repeats", type=positive_int, default=10, help="timed calls per model per round (default 10)"
    )
    timing.add_argument(
        "--warmup", type=nonneg_int, default=3, help="untimed calls per model first (default 3)"
    )
    timing.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    timing.add_argument(
        "--no-reexec",
        action="store_true",
        help="never restart with tuned malloc; report malloc_tuned false instead",
    )
    add_format_option(parser.add_argument_group("output"))
    add_common(parser)
    declare_paths(parser, inputs={"models": "file"})
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> dict[str, Any]:
    if not args.no_reexec and _started_as_cli():
        restart_with_tuned_malloc(["-m", "prunequant.cli.main", *sys.argv[1:]])
    shape = shape_spec(args.input_shape)
    several = isinstance(shape, dict) or bool(shape and isinstance(shape[0], list))
    task = resolve_task(args)  # validated and recorded; latency does not depend on the task
    entries = [_entry(args, path) for path in args.models]
    report = bench(
        entries,
        args.batch_size,
        args.threads,
        rounds=args.rounds,
        repeats=args.repeats,
        warmup=args.warmup,
        input_shape=tuple(shape) if shape and not several else None,
        memory=not args.no_memory,
        seed=args.seed,
        example=example_input({"input_shape": shape}, 1) if several else None,
        thread_fallback=not args.keep_threads,
    )
    print_table(args, _table(report))
    print_note(args, f"threads: {report.threads_used} ({report.thread_reason})")
    for line in report.flagged:
        print_note(args, f"flag: {line}")
    print_note(args, f"memory: {report.memory}")
    unmeasured = [entry.name for entry in entries if entry.path is None] if not args.no_memory else []
    if unmeasured:
        print_note(args, f"memory not measured for {', '.join(unmeasured)} (only .pt checkpoints and .onnx)")
    if not report.malloc_tuned:
        settings = " ".join(f"{key}={value}" for key, value in MALLOC_ENV.items())
        print_note(
            args, f"malloc NOT tuned: torch eager at batch >= 8 looks slower than it is (set {settings})"
        )
    return {
        **report.to_dict(),
        "memory_not_measured": unmeasured,
        "task": task.name if task else "classification",
    }


def _entry(args: argparse.Namespace, path: str) -> Any:
    """A .onnx file for onnxruntime, a .pt2 for torch-native int8; anything else is loaded as --checkpoint
    is (a .pt, a .pqz, builtin:NAME, or with --model a plain state_dict) and timed in torch eager."""
    if Path(path).suffix in (".onnx", ".pt2"):
        return load_candidate(path, args.threads)
    model, meta = resolve_model(argparse.Namespace(**{**vars(args), "checkpoint": path}))
    shape = meta.get("input_shape")
    several = isinstance(shape, dict) or bool(shape and isinstance(shape[0], list))
    single = tuple(shape) if shape and not several else None
    file = resolve_checkpoint(path) if path.startswith(PREFIX) else Path(path)
    candidate = torch_candidate(path, model, single, file)
    # the peak-memory subprocess reloads the file by itself: only prunequant .pt checkpoints
    reloadable = file.suffix in (".pt", ".pth") and not args.model
    return candidate if reloadable else replace(candidate, path=None)


def _table(report: BenchReport) -> Table:
    caption = (
        f"{report.threads} threads, {report.rounds} interleaved rounds x {report.repeats} calls each; "
        "speedup = first model's median / this one's (> 1 faster)"
    )
    table = Table(caption=caption)
    table.add_column("model (.pt: torch, .onnx: onnxruntime)", overflow="fold")
    for column in COLUMNS[2:]:
        table.add_column(column, justify="left" if column == "flags" else "right", overflow="fold")
    for model, _, *cells in report.cells():
        table.add_row(Path(model).name, *cells)
    return table


def _started_as_cli() -> bool:
    """True when this process is the `prunequant bench` command itself (safe to exec into a copy of it)."""
    return Path(sys.argv[0]).stem in ("prunequant", "main", "__main__") and "bench" in sys.argv[1:]
