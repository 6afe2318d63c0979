"""`prunequant eval`: accuracy and loss of a checkpoint on a dataset split."""

from __future__ import annotations

import argparse

from prunequant.cli.common import add_common, add_data_options, load_data, print_human, resolve_model
from prunequant.training import evaluate


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", help="evaluate a checkpoint", description=__doc__)
    parser.add_argument("--checkpoint", required=True, help="checkpoint file (loaded with weights_only=True)")
    add_data_options(parser)
    parser.add_argument(
        "--split", choices=("test", "val"), default="test", help="split to score (default test)"
    )
    add_common(parser)
    parser.set_defaults(run=run, input_shape=None)


def run(args: argparse.Namespace) -> dict:
    model, meta = resolve_model(args)
    _, loaders = load_data(args, args.dataset or meta.get("dataset"))
    result = evaluate(model, getattr(loaders, args.split))
    print_human(
        args,
        f"{args.split}: top-1 {100 * result.top1:.2f}%  top-5 {100 * result.top5:.2f}%  "
        f"loss {result.loss:.4f}  n={result.n}",
    )
    return result.to_dict()
