"""`prunequant eval`: a task's metrics (default: classification top-1/top-5) and loss on a dataset split."""

from __future__ import annotations

import argparse

from torch.utils.data import DataLoader, Subset

from prunequant.cli.common import load_data, print_human, resolve_model, resolve_task
from prunequant.cli.options import add_common, add_data_options, add_model_source
from prunequant.cli.paths import declare_paths
from prunequant.tasks import default_task
from prunequant.training import evaluate


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", help="evaluate a checkpoint", description=__doc__)
    add_model_source(parser, checkpoint_required=True)
    data = add_data_options(
        parser, limit_help="quick checks: score only the first N samples of --split (default: all of it)"
    )
    data.add_argument(
        "--split", choices=("test", "val"), default="test", help="split to score (default test)"
    )
    add_common(parser)
    declare_paths(parser, inputs={"checkpoint": "file", "data_dir": "dir"})
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> dict:
    task = resolve_task(args)
    model, meta = resolve_model(args)
    _, loaders = load_data(args, args.dataset or meta.get("dataset"), limit=None)  # --limit: see below
    result = evaluate(model, _first(getattr(loaders, args.split), args.limit), task)
    line = f"{args.split}: {metrics_line(task, result.metrics)}  loss {result.loss:.4f}  n={result.n}"
    print_human(args, "\n".join([line, *(f"warning: {note}" for note in result.warnings)]))
    return {**result.to_dict(), "warnings": list(result.warnings)}


def _first(loader: DataLoader, limit: int | None) -> DataLoader:
    """`loader` over only its first `limit` samples (all when None)."""
    if limit is None or limit >= len(loader.dataset):
        return loader
    return DataLoader(
        Subset(loader.dataset, range(limit)), batch_size=loader.batch_size, collate_fn=loader.collate_fn
    )


def metrics_line(task, metrics: dict[str, float]) -> str:
    """'top1 91.20%  top5 99.10%': each metric of `task` in its display unit."""
    task = task or default_task()
    known = {spec.name: spec for spec in task.metrics}
    return "  ".join(
        f"{name} {known[name].format(value) if name in known else f'{value:.4g}'}"
        for name, value in metrics.items()
    )
