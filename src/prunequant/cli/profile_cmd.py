"""`prunequant profile`: params, MACs/FLOPs, activation memory and latency per layer and module group."""

from __future__ import annotations

import argparse

import torch

from prunequant.cli.common import add_common, add_model_source, input_shape_of, print_human, resolve_model
from prunequant.profiling import profile


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("profile", help="profile a model (seed 000 Table I)", description=__doc__)
    add_model_source(parser)
    parser.add_argument("--batch-size", type=int, default=1, help="batch size for latency (default 1)")
    parser.add_argument("--repeats", type=int, default=20, help="timed repeats for latency (default 20)")
    parser.add_argument("--no-latency", action="store_true", help="counts only, skip timing")
    parser.add_argument("--csv", help="also write the per-layer rows to this CSV file")
    add_common(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> dict:
    from prunequant.errors import ConfigError

    if args.batch_size <= 0 or args.repeats <= 0:
        raise ConfigError("--batch-size and --repeats must be positive integers")
    model, meta = resolve_model(args)
    torch.manual_seed(args.seed)
    example = torch.randn(args.batch_size, *input_shape_of(meta))
    report = profile(model, example, latency=not args.no_latency, repeats=args.repeats)
    if args.csv:
        report.to_csv(args.csv)
    print_human(args, report.table())
    return report.to_dict()
