"""The options several subcommands share, each in its --help section, and hidden aliases for old names.

Canonical names (old names still accepted, hidden from --help): --exclude (was --ignore in prune),
--layer-amount (was --group-amount), --schedule for the pruning schedule (was --structured-schedule),
--lr-schedule for train's LR schedule (was --schedule), --finetune-epochs in quantize (was --epochs),
--batch-size in bench (was --batch).
"""

from __future__ import annotations

import argparse
import copy

from prunequant.cli.argtypes import parse_kwargs, parse_named_shape
from prunequant.cli.numbers import nonneg_int, positive_int

Container = argparse.ArgumentParser | argparse._ArgumentGroup
TABLE_FORMATS = ("table", "markdown", "csv")

TRAIN_LIMIT_HELP = (
    "quick runs: at most this many training samples (train + val); the test split shrinks in proportion"
)


def add_alias(container: Container, action: argparse.Action, *old: str) -> None:
    """Accept the option strings `old` exactly as `action` (same dest, type, choices), hidden from --help."""
    alias = copy.copy(action)
    alias.option_strings = list(old)
    alias.help = argparse.SUPPRESS
    alias.required = False
    container._add_action(alias)


def add_common(parser: argparse.ArgumentParser, *, seed: bool = True) -> None:
    """The 'general' section: --json, --seed (unless `seed` is False), --quiet, --verbose, --debug."""
    group = parser.add_argument_group("general")
    group.add_argument(
        "--json",
        action="store_true",
        help="print exactly one JSON object on stdout (progress stays on stderr)",
    )
    if seed:
        group.add_argument(
            "--seed", type=nonneg_int, default=0, help="random seed; same seed, same numbers (default 0)"
        )
    group.add_argument(
        "--quiet",
        action="store_true",
        help="no progress on stderr (progress shows on a terminal, also with --json)",
    )
    group.add_argument(
        "--verbose", action="store_true", help="show third-party output (warnings, exporter and library logs)"
    )
    group.add_argument(
        "--debug", action="store_true", help="print the traceback of an error (also PRUNEQUANT_DEBUG=1)"
    )


def add_format_option(container: Container) -> None:
    """--format table|markdown|csv for the table a command prints (ignored with --json)."""
    container.add_argument(
        "--format",
        choices=TABLE_FORMATS,
        default="table",
        help="how to print the table on stdout: a rich table, GitHub markdown, or CSV (default table)",
    )


def model_group(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """The 'model' section of `parser`."""
    return parser.add_argument_group("model")


def add_model_source(parser: argparse.ArgumentParser, *, checkpoint_required: bool = False) -> None:
    """The "model" section: --checkpoint and/or --model (and its options), --input-shape, --task."""
    group = model_group(parser)
    group.add_argument(
        "--checkpoint",
        required=checkpoint_required,
        help="checkpoint written by prunequant (.pt, .pqz), a plain state_dict with --model, or "
        "builtin:fashion-mnist (loaded with weights_only=True)",
    )
    add_model_options(group)
    add_input_shape(group)
    add_task_option(group)


def add_model_options(container: Container) -> None:
    """--model (zoo name or module:factory), --model-kwargs and --num-classes."""
    container.add_argument(
        "--model",
        help="zoo name (e.g. resnet56, lenet5) or 'package.module:factory' returning an nn.Module; with "
        "--checkpoint it is the architecture the weights are loaded into",
    )
    add_model_kwargs(container)
    container.add_argument(
        "--num-classes", type=positive_int, default=10, help="classes of a --model (default 10)"
    )


def add_model_kwargs(container: Container) -> None:
    """--model-kwargs: a JSON object of factory arguments."""
    container.add_argument(
        "--model-kwargs", type=parse_kwargs, default={}, help="JSON object of factory arguments for --model"
    )


def add_input_shape(container: Container) -> None:
    """A repeatable --input-shape: C,H,W or CxHxW per input, or NAME=CxHxW for a named (keyword) input."""
    container.add_argument(
        "--input-shape",
        type=parse_named_shape,
        action="append",
        help="input shape without batch, e.g. 3,32,32 or 3x32x32; repeat for several inputs, or name them "
        "(image=3x64x64 --input-shape depth=1x64x64); taken from the checkpoint when omitted",
    )


def add_task_option(container: Container) -> None:
    """--task: a registered task name or 'package.module:factory' (default classification)."""
    container.add_argument(
        "--task",
        help="what the model does: a built-in task name (e.g. classification) or 'package.module:factory' "
        "returning a Task (default classification)",
    )


def add_data_options(
    parser: argparse.ArgumentParser, *, required: bool = False, limit_help: str = TRAIN_LIMIT_HELP
) -> argparse._ArgumentGroup:
    """The 'data' section: --dataset, --data-dir, --limit (described by `limit_help`) and --batch-size."""
    group = parser.add_argument_group("data")
    group.add_argument(
        "--dataset",
        required=required,
        help="fashion-mnist, mnist, cifar10, cifar100, imagefolder, digits or synthetic",
    )
    group.add_argument(
        "--data-dir",
        help="the folder that holds the dataset's files; when given, no other copy is used (else "
        "$PRUNEQUANT_DATA, then /usr/share/datasets/NAME)",
    )
    group.add_argument("--limit", type=positive_int, help=limit_help)
    group.add_argument("--batch-size", type=positive_int, default=128, help="batch size (default 128)")
    return group


def option_strings(parser: argparse.ArgumentParser) -> frozenset[str]:
    """Every option string `parser` accepts (hidden aliases included)."""
    return frozenset(parser._option_string_actions)


def shown_options(parser: argparse.ArgumentParser) -> dict[str, list[str]]:
    """{section title: option strings shown in --help}, in --help order (for tests and docs)."""
    sections: dict[str, list[str]] = {}
    for group in parser._action_groups:
        shown = [
            option
            for action in group._group_actions
            if action.help is not argparse.SUPPRESS
            for option in action.option_strings
        ]
        if shown:
            sections[str(group.title)] = shown
    return sections
