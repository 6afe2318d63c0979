"""`prunequant prune`: unstructured (magnitude) or structured (channel, layer) pruning of a model.

The options shared by every method live here; each method's module adds its own options and runs it.
"""

from __future__ import annotations

import argparse
import importlib

from prunequant.cli.common import add_common, add_data_options, add_model_source
from prunequant.cli.numbers import nonneg_int, positive_float
from prunequant.cli.paths import declare_paths
from prunequant.errors import NothingPrunedError
from prunequant.validation import check_fraction

# method -> module in prunequant.cli exposing add_arguments(parser) and run(args)
METHODS = {
    "magnitude": "prune_magnitude",
    "channel": "prune_structured",
    "layer": "prune_structured",
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prune", help="prune a model (magnitude, channel or layer)", description=__doc__
    )
    parser.add_argument("--method", choices=sorted(METHODS), required=True, help="pruning method")
    add_model_source(parser)
    add_data_options(parser)
    parser.add_argument("--amount", type=float, help="fraction to prune, in [0, 1) (e.g. 0.5)")
    parser.add_argument("-o", "--output", help="checkpoint file to write")
    parser.add_argument(
        "--finetune-epochs", type=nonneg_int, default=0, help="fine-tune epochs at --lr (default 0)"
    )
    parser.add_argument(
        "--lr", type=positive_float, default=0.01, help="fine-tune learning rate (default 0.01)"
    )
    parser.add_argument(
        "--refine-lr-factor", type=positive_float, default=0.1, help="refine-tune LR = lr * this (seeds: 0.1)"
    )
    parser.add_argument(
        "--refine-epochs",
        type=nonneg_int,
        default=0,
        help="refine-tune epochs at lr * refine-lr-factor (default 0)",
    )
    parser.add_argument(
        "--allow-partial",
        action="store_true",
        help="write the result even when nothing could be pruned (otherwise that is an error, exit 2)",
    )
    for module in dict.fromkeys(METHODS.values()):
        importlib.import_module(f"prunequant.cli.{module}").add_arguments(parser)
    add_common(parser)
    declare_paths(
        parser,
        inputs={"checkpoint": "file", "data_dir": "dir"},
        outputs={"output": "file", "sweep_dir": "dir"},
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> dict:
    if args.amount is not None:  # checked before any work (NaN and inf included)
        check_fraction("--amount", args.amount)
    return importlib.import_module(f"prunequant.cli.{METHODS[args.method]}").run(args)


def refuse_nothing_pruned(args: argparse.Namespace, pruned: bool, detail: str) -> None:
    """Pruning was asked for and removed nothing: an error unless --allow-partial (never silent)."""
    if not pruned and not args.allow_partial:
        raise NothingPrunedError(
            f"nothing was pruned ({detail}); nothing was written. Check --exclude/--ignore and that the "
            "model's layers are supported, or pass --allow-partial to write the unpruned result"
        )
