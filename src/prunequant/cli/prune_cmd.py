"""`prunequant prune`: unstructured (magnitude) or structured (channel, layer) pruning of a model.

The options shared by every method live here; each method's module adds its own options and runs it.
"""

from __future__ import annotations

import argparse
import importlib

from prunequant.cli.common import add_common, add_data_options, add_model_source

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
    parser.add_argument("--finetune-epochs", type=int, default=0, help="fine-tune epochs at --lr (default 0)")
    parser.add_argument("--lr", type=float, default=0.01, help="fine-tune learning rate (default 0.01)")
    parser.add_argument(
        "--refine-lr-factor", type=float, default=0.1, help="refine-tune LR = lr * this (seeds: 0.1)"
    )
    parser.add_argument(
        "--refine-epochs", type=int, default=0, help="refine-tune epochs at lr * refine-lr-factor (default 0)"
    )
    for module in dict.fromkeys(METHODS.values()):
        importlib.import_module(f"prunequant.cli.{module}").add_arguments(parser)
    add_common(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> dict:
    return importlib.import_module(f"prunequant.cli.{METHODS[args.method]}").run(args)
