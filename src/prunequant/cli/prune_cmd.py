"""`prunequant prune`: unstructured (magnitude) or structured (channel, layer) pruning of a model.

The options shared by every method live here; each method's module adds its own options and runs it.
"""

from __future__ import annotations

import argparse
import importlib

from prunequant.cli.numbers import nonneg_int, positive_float
from prunequant.cli.options import add_alias, add_common, add_data_options, add_model_source
from prunequant.cli.paths import declare_paths
from prunequant.errors import ConfigError, NothingPrunedError
from prunequant.pruning.unstructured import SCHEDULES as UNSTRUCTURED_SCHEDULES
from prunequant.validation import check_fraction

# method -> module in prunequant.cli exposing add_arguments(groups) and run(args)
METHODS = {
    "magnitude": "prune_magnitude",
    "channel": "prune_structured",
    "layer": "prune_structured",
}
# method -> the --schedule values it takes (the first is the default)
SCHEDULES = {
    "magnitude": UNSTRUCTURED_SCHEDULES,
    "channel": ("oneshot", "stepwise", "layerwise", "scratch"),
    "layer": ("oneshot",),
}

# option dest -> the methods that use it; given to another method it is an error, not silently ignored
USED_BY = {
    "amount": ("magnitude", "channel"),
    "exclude": ("magnitude", "channel"),
    "layer_amount": ("magnitude", "channel"),
    **dict.fromkeys(
        ("scope", "include_bias", "keep_first_last", "steps", "dynamic", "budget", "dynamic_step"),
        ("magnitude",),
    ),
    **dict.fromkeys(("amounts", "sweep_dir", "latency_rounds", "compressed"), ("magnitude",)),
    **dict.fromkeys(("importance", "calib_batches"), ("channel", "layer")),
    **dict.fromkeys(("allocation", "round_to", "min_channels"), ("channel",)),
    "blocks": ("layer",),
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prune", help="prune a model (magnitude, channel or layer)", description=__doc__
    )
    add_model_source(parser)
    add_data_options(parser)
    groups = {
        "what": parser.add_argument_group("what to prune"),
        "criteria": parser.add_argument_group("channel / layer selection"),
        "schedule": parser.add_argument_group("schedule"),
        "finetune": parser.add_argument_group("fine-tuning"),
        "sweep": parser.add_argument_group("sweep (magnitude)"),
        "output": parser.add_argument_group("output"),
    }
    _add_shared(groups)
    for module in dict.fromkeys(METHODS.values()):
        importlib.import_module(f"prunequant.cli.{module}").add_arguments(groups)
    add_common(parser)
    declare_paths(
        parser,
        inputs={"checkpoint": "file", "data_dir": "dir"},
        outputs={"output": "file", "sweep_dir": "dir"},
    )
    unset = {
        a.dest: (a.option_strings[0], a.default)
        for a in parser._actions
        if a.dest in USED_BY and a.help is not argparse.SUPPRESS
    }
    parser.set_defaults(run=run, method_options=unset)


def _add_shared(groups: dict[str, argparse._ArgumentGroup]) -> None:
    """The options every method takes; one name each (old names are hidden aliases)."""
    what = groups["what"]
    what.add_argument("--method", choices=sorted(METHODS), required=True, help="pruning method")
    what.add_argument("--amount", type=float, help="fraction to prune, in [0, 1) (e.g. 0.5)")
    exclude = what.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="PATTERN",
        help="leave layers matching this fnmatch pattern as they are (repeatable)",
    )
    add_alias(what, exclude, "--ignore")
    layer_amount = what.add_argument(
        "--layer-amount",
        action="append",
        default=[],
        type=parse_layer_amount,
        metavar="PATTERN=AMOUNT",
        help="own amount for layers matching PATTERN, e.g. 'classifier.*=0.8' (repeatable; channel: for "
        "the channel groups those layers are in)",
    )
    add_alias(what, layer_amount, "--group-amount")
    schedule = groups["schedule"].add_argument(
        "--schedule",
        choices=tuple(dict.fromkeys(schedule for names in SCHEDULES.values() for schedule in names)),
        help="when to prune (default oneshot). magnitude: oneshot, iterative (--steps rounds), agp "
        "(gradual, --steps); channel: oneshot (prune then fine-tune), stepwise (cubic ramp during "
        "fine-tuning), layerwise (one group after another, seed 003), scratch (train the pruned shape "
        "from new weights)",
    )
    add_alias(groups["schedule"], schedule, "--structured-schedule")
    finetune = groups["finetune"]
    finetune.add_argument(
        "--finetune-epochs", type=nonneg_int, default=0, help="fine-tune epochs at --lr (default 0)"
    )
    finetune.add_argument(
        "--lr", type=positive_float, default=0.01, help="fine-tune learning rate (default 0.01)"
    )
    finetune.add_argument(
        "--refine-epochs",
        type=nonneg_int,
        default=0,
        help="refine-tune epochs at lr * refine-lr-factor (default 0)",
    )
    finetune.add_argument(
        "--refine-lr-factor", type=positive_float, default=0.1, help="refine-tune LR = lr * this (seeds: 0.1)"
    )
    output = groups["output"]
    output.add_argument("-o", "--output", help="checkpoint file to write")
    output.add_argument(
        "--allow-partial",
        action="store_true",
        help="write the result even when nothing could be pruned (otherwise that is an error, exit 2)",
    )


def parse_layer_amount(text: str) -> tuple[str, float]:
    """'PATTERN=AMOUNT' with AMOUNT in [0, 1) (argparse type of --layer-amount)."""
    pattern, sep, value = text.rpartition("=")
    try:
        if not sep or not pattern:
            raise ValueError
        amount = float(value)
        if not 0.0 <= amount < 1.0:
            raise ValueError
        return pattern, amount
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected PATTERN=AMOUNT with AMOUNT in [0, 1), like 'classifier.*=0.8', got {text!r}"
        ) from None


def run(args: argparse.Namespace) -> dict:
    if args.amount is not None:  # checked before any work (NaN and inf included)
        check_fraction("--amount", args.amount)
    for dest, (option, default) in args.method_options.items():
        if args.method not in USED_BY[dest] and getattr(args, dest) != default:
            raise ConfigError(
                f"{option} is not used by --method {args.method} (it is for --method "
                f"{' / '.join(USED_BY[dest])}); drop it"
            )
    allowed = SCHEDULES[args.method]
    if args.schedule is None:
        args.schedule = allowed[0]
    elif args.schedule not in allowed:
        raise ConfigError(
            f"--schedule {args.schedule} is not a schedule of --method {args.method}; it takes "
            f"{', '.join(allowed)}"
        )
    return importlib.import_module(f"prunequant.cli.{METHODS[args.method]}").run(args)


def refuse_nothing_pruned(args: argparse.Namespace, pruned: bool, detail: str) -> None:
    """Pruning was asked for and removed nothing: an error unless --allow-partial (never silent)."""
    if not pruned and not args.allow_partial:
        raise NothingPrunedError(
            f"nothing was pruned ({detail}); nothing was written. Check --exclude and that the "
            "model's layers are supported, or pass --allow-partial to write the unpruned result"
        )
