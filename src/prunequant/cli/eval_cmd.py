"""`prunequant eval`: a task's metrics (default: classification top-1/top-5) and loss on a dataset split."""

from __future__ import annotations

import argparse

from prunequant.cli.common import (
    add_common,
    add_data_options,
    add_model_source,
    load_data,
    print_human,
    resolve_model,
    resolve_task,
)
from prunequant.cli.paths import declare_paths
from prunequant.tasks import default_task
from prunequant.training import evaluate


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", help="evaluate a checkpoint", description=__doc__)
    add_model_source(parser, checkpoint_required=True)
    add_data_options(parser)
    parser.add_argument(
        "--split", choices=("test", "val"), default="test", help="split to score (default test)"
    )
    add_common(parser)
    declare_paths(parser, inputs={"checkpoint": "file", "data_dir": "dir"})
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> dict:
    task = resolve_task(args)
    model, meta = resolve_model(args)
    _, loaders = load_data(args, args.dataset or meta.get("dataset"))
    result = evaluate(model, getattr(loaders, args.split), task)
    line = f"{args.split}: {metrics_line(task, result.metrics)}  loss {result.loss:.4f}  n={result.n}"
    print_human(args, "\n".join([line, *(f"warning: {note}" for note in result.warnings)]))
    return {**result.to_dict(), "warnings": list(result.warnings)}


def metrics_line(task, metrics: dict[str, float]) -> str:
    """'top1 91.20%  top5 99.10%': each metric of `task` in its display unit."""
    task = task or default_task()
    known = {spec.name: spec for spec in task.metrics}
    return "  ".join(
        f"{name} {known[name].format(value) if name in known else f'{value:.4g}'}"
        for name, value in metrics.items()
    )
