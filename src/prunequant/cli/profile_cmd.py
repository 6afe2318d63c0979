"""`prunequant profile`: params, MACs/FLOPs, activation memory and latency per layer and module group."""

from __future__ import annotations

import argparse

import torch

from prunequant.atomic import atomic_path
from prunequant.cli.common import example_input, resolve_model
from prunequant.cli.numbers import positive_int
from prunequant.cli.options import add_common, add_format_option, add_model_source
from prunequant.cli.paths import declare_paths
from prunequant.cli.tables import print_table
from prunequant.profiling import profile


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("profile", help="profile a model (seed 000 Table I)", description=__doc__)
    add_model_source(parser)
    timing = parser.add_argument_group("latency")
    timing.add_argument(
        "--batch-size", type=positive_int, default=1, help="batch size for latency (default 1)"
    )
    timing.add_argument(
        "--repeats", type=positive_int, default=20, help="timed repeats for latency (default 20)"
    )
    timing.add_argument("--no-latency", action="store_true", help="counts only, skip timing")
    output = parser.add_argument_group("output")
    output.add_argument("--csv", help="also write the per-layer rows to this CSV file")
    add_format_option(output)
    add_common(parser)
    declare_paths(parser, inputs={"checkpoint": "file"}, outputs={"csv": "file"})
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> dict:
    model, meta = resolve_model(args)
    torch.manual_seed(args.seed)
    example = example_input(meta, args.batch_size)
    report = profile(model, example, latency=not args.no_latency, repeats=args.repeats)
    if args.csv:
        with atomic_path(args.csv) as tmp:  # an existing CSV stays whole if this fails (e.g. disk full)
            report.to_csv(tmp)
    print_table(args, report.table())
    return report.to_dict()
