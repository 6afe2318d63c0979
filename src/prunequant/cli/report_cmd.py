"""`prunequant report runs/NAME`: write report.md, report.html and the plots of a run directory."""

from __future__ import annotations

import argparse

from prunequant.cli.common import print_human
from prunequant.cli.options import add_common
from prunequant.cli.paths import declare_paths


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("report", help="write the report of a run directory", description=__doc__)
    parser.add_argument("run_dir", help="a run directory written by 'prunequant run'")
    add_common(parser, seed=False)  # a report is read from the run directory: nothing random
    declare_paths(parser, inputs={"run_dir": "dir"})
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> dict:
    from prunequant.report import write_report

    paths = {name: str(path) for name, path in write_report(args.run_dir).items()}
    print_human(args, f"report: {paths['html']}\n        {paths['markdown']}")
    return paths
