"""Entry point of the `prunequant` command: builds the parser from the command modules and maps errors."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence

from prunequant.errors import PrunequantError
from prunequant.progress import set_progress

# Each name N is the module prunequant.cli.N_cmd exposing `add_parser(subparsers)`.
COMMANDS = ("train", "eval", "profile", "prune", "quantize", "run", "report", "export", "bench")


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line and exit code 2."""

    def error(self, message: str) -> None:  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="prunequant",
        description="Prune and quantize trained CNNs; measure accuracy, size and real latency.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    subparsers.required = True
    for name in COMMANDS:
        importlib.import_module(f"prunequant.cli.{name}_cmd").add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; user errors print one line on stderr and return exit code 2."""
    args = build_parser().parse_args(argv)
    if getattr(args, "quiet", False) or getattr(args, "json", False):
        set_progress(False)
    try:
        result = args.run(args)
    except PrunequantError as err:
        print(f"prunequant {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"prunequant {args.command}: interrupted", file=sys.stderr)
        return 130
    if getattr(args, "json", False) and result is not None:
        json.dump(result, sys.stdout, default=_json_default)
        sys.stdout.write("\n")
    return 0


def _json_default(obj: object) -> object:
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)


if __name__ == "__main__":
    sys.exit(main())
