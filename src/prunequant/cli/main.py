"""Entry point of the `prunequant` command: builds the parser from the command modules; one error boundary.

Exit codes: 0 success; 2 a user or environment error (one line on stderr); 3 `run` finished with failed
trials; 1 an internal error (a bug: --debug or PRUNEQUANT_DEBUG=1 shows the traceback); 130 / 143
interrupted by SIGINT / SIGTERM (rerun to resume).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from prunequant import __version__
from prunequant.cli.boundary import classify, debug_enabled, format_traceback, sigterm_as_interrupt
from prunequant.cli.hints import fit_hints
from prunequant.cli.jsonout import dump
from prunequant.cli.noise import captured_noise
from prunequant.cli.options import option_strings
from prunequant.cli.paths import check_paths
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
        epilog="exit codes: 0 ok, 2 user/environment error, 3 run had failed trials, 1 internal error",
    )
    parser.add_argument("--version", action="version", version=f"prunequant {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    subparsers.required = True
    for name in COMMANDS:
        importlib.import_module(f"prunequant.cli.{name}_cmd").add_parser(subparsers)
        command = subparsers.choices[name]
        command.set_defaults(command_options=option_strings(command))  # hints name only these
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code; every error is one line on stderr (see the module doc)."""
    with sigterm_as_interrupt():
        try:
            return _main(argv)
        except KeyboardInterrupt as exc:  # a signal before the command's own boundary (e.g. while parsing)
            code, line = classify(exc)
            sys.stderr.write(f"prunequant: {line}\n")
            return code


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    set_progress(not getattr(args, "quiet", False))  # --json keeps progress: it goes to stderr
    debug = debug_enabled(getattr(args, "debug", False))
    stdout, stderr = sys.stdout, sys.stderr
    prefix = f"prunequant {args.command}"
    with captured_noise(getattr(args, "verbose", False) or debug) as noise:
        try:
            check_paths(args)
            result = args.run(args)
        except BaseException as exc:  # the one boundary: everything becomes one line and a code
            if isinstance(exc, SystemExit):
                raise
            code, line = classify(exc)
            line = fit_hints(line, getattr(args, "command_options", None), recipe=args.command == "run")
            if debug:
                stderr.write(format_traceback(exc))
            hidden = sum(text.count("\n") for text in noise)
            tail = (
                f" [{hidden} lines of tool output hidden; --verbose shows them]"
                if hidden and code == 1
                else ""
            )
            stderr.write(f"{prefix}: {'error: ' if code in (1, 2) else ''}{line}{tail}\n")
            return code
    if getattr(args, "json", False) and result is not None:
        dump(result, stdout)
    status = getattr(args, "exit_status", None)
    return status(result) if status is not None else 0


if __name__ == "__main__":
    sys.exit(main())
