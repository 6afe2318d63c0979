"""Options and helpers shared by the subcommands: --json/--seed/--quiet, model and data resolution."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import torch

from prunequant.errors import ConfigError


def add_common(parser: argparse.ArgumentParser) -> None:
    """Add --json, --seed and --quiet, which every command takes."""
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed; same seed, same numbers (default 0)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars (also off when not a TTY)")


def add_model_source(parser: argparse.ArgumentParser, *, required_checkpoint: bool = False) -> None:
    """Add the options that say which model to load: --checkpoint, or --model with its shape arguments."""
    parser.add_argument(
        "--checkpoint", help="checkpoint written by prunequant (weights_only=True), or builtin:fashion-mnist"
    )
    if not required_checkpoint:
        parser.add_argument(
            "--model",
            help="zoo name (e.g. resnet56, lenet5) or 'package.module:factory' returning an nn.Module",
        )
        parser.add_argument("--num-classes", type=int, default=10, help="classes of a --model (default 10)")
    parser.add_argument(
        "--input-shape",
        type=parse_shape,
        help="input shape without batch, C,H,W (e.g. 3,32,32); taken from the checkpoint when omitted",
    )


def parse_shape(text: str) -> tuple[int, ...]:
    """Parse 'C,H,W' into a tuple of positive ints (argparse type)."""
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected C,H,W like 3,32,32, got {text!r}") from None
    if not shape or any(d <= 0 for d in shape):
        raise argparse.ArgumentTypeError(f"expected positive sizes like 3,32,32, got {text!r}")
    return shape


def parse_float_list(text: str) -> list[float]:
    """Parse '0,0.1,0.5' into floats (argparse type)."""
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def parse_int_list(text: str) -> list[int]:
    """Parse '1,64' into ints (argparse type)."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def resolve_model(args: argparse.Namespace) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Return (model, metadata) from --checkpoint or --model; metadata carries input_shape when known."""
    from prunequant.models import build_from_spec, load_checkpoint

    checkpoint = getattr(args, "checkpoint", None)
    spec = getattr(args, "model", None)
    skeleton = meta = None
    if spec:
        shape = args.input_shape
        kwargs: dict[str, Any] = {"num_classes": args.num_classes}
        if shape is not None:
            kwargs.update(in_channels=shape[0], input_size=shape[-1])
        skeleton = build_from_spec(spec, **kwargs)
        meta = {"arch": spec, "arch_kwargs": kwargs}
    if checkpoint:
        # --model with --checkpoint gives the skeleton for user architectures (never imported from a file)
        model, meta = load_checkpoint(checkpoint, model=skeleton)
    elif skeleton is not None:
        model = skeleton
    else:
        raise ConfigError("give --checkpoint FILE or --model NAME")
    if getattr(args, "input_shape", None) is not None:
        meta["input_shape"] = list(args.input_shape)
    return model, meta


def input_shape_of(meta: dict[str, Any]) -> tuple[int, ...]:
    """The per-sample input shape recorded in `meta`, or a clear error asking for --input-shape."""
    shape = meta.get("input_shape")
    if not shape:
        raise ConfigError("input shape unknown: pass --input-shape C,H,W (e.g. 3,32,32)")
    return tuple(int(d) for d in shape)


def progress_enabled(args: argparse.Namespace) -> bool:
    """Progress bars only on a TTY and without --quiet / --json."""
    return not (args.quiet or getattr(args, "json", False)) and sys.stderr.isatty()


def add_data_options(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    """Add --dataset, --data-dir, --limit and --batch-size."""
    parser.add_argument(
        "--dataset",
        required=required,
        help="fashion-mnist, mnist, cifar10, cifar100, imagefolder, digits or synthetic",
    )
    parser.add_argument(
        "--data-dir",
        help="where the dataset files are (else $PRUNEQUANT_DATA, then /usr/share/datasets/NAME)",
    )
    parser.add_argument("--limit", type=int, help="use at most this many training samples (quick runs)")
    parser.add_argument("--batch-size", type=int, default=128, help="batch size (default 128)")


def load_data(args: argparse.Namespace, dataset: str | None = None, **options: Any):
    """Load the dataset named by --dataset (or `dataset`) and return (splits, loaders)."""
    from prunequant.data import load_dataset, make_loaders

    name = dataset or args.dataset
    if not name:
        raise ConfigError("no dataset: pass --dataset NAME (e.g. fashion-mnist)")
    if args.batch_size is not None and args.batch_size <= 0:
        raise ConfigError(f"--batch-size must be a positive integer, got {args.batch_size}")
    splits = load_dataset(name, args.data_dir, seed=args.seed, limit=args.limit, **options)
    return splits, make_loaders(splits, args.batch_size, seed=args.seed)


def print_human(args: argparse.Namespace, renderable: Any) -> None:
    """Print a rich renderable or text on stdout, unless --json asked for JSON only."""
    if getattr(args, "json", False):
        return
    from rich.console import Console

    Console().print(renderable)
