"""`prunequant run RECIPE -o runs/NAME`: run (or resume) a compression recipe; write the DB and the report."""

from __future__ import annotations

import argparse

from prunequant.cli.common import print_human
from prunequant.cli.options import add_common
from prunequant.cli.paths import declare_paths
from prunequant.cli.recipe_paths import check_recipe_paths


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run", help="run or resume a compression recipe (TOML)", description=__doc__
    )
    parser.add_argument("recipe", help="recipe file, e.g. recipes/seed000.toml")
    output = parser.add_argument_group("output")
    output.add_argument(
        "-o", "--output", required=True, help="run directory, e.g. runs/seed000 (resumed if it exists)"
    )
    output.add_argument("--no-report", action="store_true", help="skip writing report.md / report.html")
    where = parser.add_argument_group("backend")
    where.add_argument(
        "--backend", choices=("local", "ray"), default="local", help="where trials run (default local)"
    )
    where.add_argument("--address", help="Ray cluster address for --backend ray (default: start a local Ray)")
    add_common(parser)
    declare_paths(parser, inputs={"recipe": "file"}, outputs={"output": "dir"})
    # --seed overrides [run] seed only when given; failed trials make the exit code 3
    parser.set_defaults(run=run, seed=None, exit_status=lambda summary: 3 if summary["failed"] else 0)


def run(args: argparse.Namespace) -> dict:
    from dataclasses import replace

    from prunequant.lab import load_recipe, run_recipe

    recipe = load_recipe(args.recipe)
    check_recipe_paths(recipe, args.recipe)
    if args.seed is not None:
        recipe = replace(recipe, run=replace(recipe.run, seed=args.seed))
    summary = run_recipe(
        recipe,
        args.output,
        backend=args.backend,
        address=args.address,
        progress=not args.quiet,  # a live view on a terminal, one line per trial otherwise (stderr)
        recipe_file=args.recipe,
    )
    summary["report"] = None
    if not args.no_report:
        from prunequant.report import write_report

        summary["report"] = str(write_report(args.output)["html"])
    best = summary["best"]
    line = f"{summary['done']}/{summary['trials']} trials done, {summary['failed']} failed"
    if summary["failed"]:
        line += f" (reasons in the report and {args.output}/errors/; exit code 3)"
    if best:
        line += f"; best: {best['label']} on {best['runtime']} ({best['metric']} {best['score']:.4g})"
    ship = summary.get("ship") or {}
    shipped = f"{args.output}/{ship['file']}" if ship.get("shipped") else "nothing (no form meets the budget)"
    print_human(args, f"{line}\nshipped: {shipped}\nreport: {summary['report'] or '-'}")
    return summary
