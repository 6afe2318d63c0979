"""Options and helpers shared by the subcommands: --json/--seed/--quiet, model and data resolution."""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

import torch

from prunequant.cli.numbers import nonneg_int, positive_int
from prunequant.errors import ConfigError
from prunequant.models.loadguard import MAX_CONFIG_INT


def add_common(parser: argparse.ArgumentParser) -> None:
    """Add --json, --seed and --quiet, which every command takes."""
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    parser.add_argument(
        "--seed", type=nonneg_int, default=0, help="random seed; same seed, same numbers (default 0)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars (also off when not a TTY)")
    parser.add_argument(
        "--verbose", action="store_true", help="show third-party output (warnings, exporter and library logs)"
    )
    parser.add_argument(
        "--debug", action="store_true", help="print the traceback of an error (also PRUNEQUANT_DEBUG=1)"
    )


def add_model_source(parser: argparse.ArgumentParser, *, checkpoint_required: bool = False) -> None:
    """Add the options that say which model to load: --checkpoint and/or --model, --input-shape, --task."""
    parser.add_argument(
        "--checkpoint",
        required=checkpoint_required,
        help="checkpoint written by prunequant (.pt, .pqz), a plain state_dict with --model, or "
        "builtin:fashion-mnist (loaded with weights_only=True)",
    )
    add_model_options(parser)
    add_input_shape(parser)
    add_task_option(parser)


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """--model (zoo name or module:factory), --model-kwargs and --num-classes."""
    parser.add_argument(
        "--model",
        help="zoo name (e.g. resnet56, lenet5) or 'package.module:factory' returning an nn.Module; with "
        "--checkpoint it is the architecture the weights are loaded into",
    )
    parser.add_argument(
        "--model-kwargs", type=parse_kwargs, default={}, help="JSON object of factory arguments for --model"
    )
    parser.add_argument(
        "--num-classes", type=positive_int, default=10, help="classes of a --model (default 10)"
    )


def add_input_shape(parser: argparse.ArgumentParser) -> None:
    """A repeatable --input-shape: C,H,W or CxHxW per input, or NAME=CxHxW for a named (keyword) input."""
    parser.add_argument(
        "--input-shape",
        type=parse_named_shape,
        action="append",
        help="input shape without batch, e.g. 3,32,32 or 3x32x32; repeat for several inputs, or name them "
        "(image=3x64x64 --input-shape depth=1x64x64); taken from the checkpoint when omitted",
    )


def add_task_option(parser: argparse.ArgumentParser) -> None:
    """--task: a registered task name or 'package.module:factory' (default classification)."""
    parser.add_argument(
        "--task",
        help="what the model does: a built-in task name (e.g. classification) or 'package.module:factory' "
        "returning a Task (default classification)",
    )


def parse_kwargs(text: str) -> dict[str, Any]:
    """Parse a JSON object of keyword arguments (argparse type)."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a JSON object like '{{\"width\": 32}}' ({exc})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object like '{{\"width\": 32}}', got {text!r}")
    return value


def parse_shape(text: str) -> tuple[int, ...]:
    """Parse 'C,H,W' or 'CxHxW' into a tuple of positive ints (argparse type)."""
    parts = re.split(r"[,x]", text.strip().lower())
    try:
        shape = tuple(int(part) for part in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected C,H,W like 3,32,32 or 3x32x32, got {text!r}") from None
    if not shape or len(shape) > 8 or any(d <= 0 or d > MAX_CONFIG_INT for d in shape):
        raise argparse.ArgumentTypeError(f"expected positive sizes like 3,32,32, got {text!r}")
    return shape


def parse_named_shape(text: str) -> tuple[str | None, tuple[int, ...]]:
    """Parse 'C,H,W' or 'NAME=CxHxW' into (name or None, shape) (argparse type)."""
    name, sep, shape = text.rpartition("=")
    if sep and not name.isidentifier():
        raise argparse.ArgumentTypeError(f"input name {name!r} must be a Python identifier (image=3x32x32)")
    return (name if sep else None), parse_shape(shape)


def parse_float_list(text: str) -> list[float]:
    """Parse '0,0.1,0.5' into finite floats (argparse type)."""
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected finite comma-separated numbers, got {text!r}")
    return values


def parse_int_list(text: str) -> list[int]:
    """Parse '1,64' into positive ints (argparse type)."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive comma-separated integers, got {text!r}")
    return values


def shape_spec(entries: list[tuple[str | None, tuple[int, ...]]] | None) -> Any:
    """--input-shape entries as meta's input_shape: [C,H,W], a list of shapes, or {name: shape}."""
    if not entries:
        return None
    names = [name for name, _ in entries]
    if any(names) and not all(names):
        raise ConfigError("name every --input-shape (image=3x32x32 depth=1x32x32) or none of them")
    if all(names):
        if len(set(names)) != len(names):
            raise ConfigError(f"--input-shape names repeat: {', '.join(names)}; give each input once")
        return {name: list(shape) for name, shape in entries}
    shapes = [list(shape) for _, shape in entries]
    return shapes[0] if len(shapes) == 1 else shapes


def example_input(meta: dict[str, Any], batch: int) -> Any:
    """Random inputs of batch `batch` for the shape(s) in `meta`: a tensor, a tuple or a dict of tensors."""
    spec = meta.get("input_shape")
    if not spec:
        raise ConfigError("input shape unknown: pass --input-shape C,H,W (e.g. 3,32,32), once per input")
    if isinstance(spec, dict):
        return {name: torch.randn(batch, *shape) for name, shape in spec.items()}
    if isinstance(spec[0], list):
        return tuple(torch.randn(batch, *shape) for shape in spec)
    return torch.randn(batch, *spec)


def resolve_task(args: argparse.Namespace) -> Any:
    """The Task named by --task, or None (the default task) when it is not given."""
    spec = getattr(args, "task", None)
    if not spec:
        return None
    from prunequant.tasks import build_task

    return build_task(spec)


def resolve_model(args: argparse.Namespace) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Return (model, metadata) from --checkpoint and/or --model; metadata carries input_shape when known."""
    from prunequant.models import build_from_spec

    checkpoint = getattr(args, "checkpoint", None)
    spec = getattr(args, "model", None)
    given_shape = shape_spec(getattr(args, "input_shape", None))
    skeleton = meta = None
    if spec:
        kwargs: dict[str, Any] = {"num_classes": args.num_classes, **getattr(args, "model_kwargs", {})}
        if isinstance(given_shape, list) and not isinstance(given_shape[0], list):
            kwargs.setdefault("in_channels", given_shape[0])
            kwargs.setdefault("input_size", given_shape[-1])
        skeleton = build_from_spec(spec, **kwargs)
        meta = {"arch": spec, "arch_kwargs": kwargs}
    if checkpoint:
        # --model with --checkpoint gives the skeleton for user architectures (never imported from a file)
        model, meta = _load(checkpoint, skeleton)
        meta = dict(meta)
    elif skeleton is not None:
        model = skeleton
    else:
        raise ConfigError("give --checkpoint FILE or --model NAME")
    if given_shape is not None:
        meta["input_shape"] = given_shape
    return model, meta


def _load(checkpoint: str, skeleton: torch.nn.Module | None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """A .pt checkpoint, or a .pqz container (sparse or bit-packed), into `skeleton` when given."""
    from prunequant.models import load_checkpoint

    if not checkpoint.startswith("builtin:") and _is_container(Path(checkpoint)):
        import prunequant.quantization  # noqa: F401 - registers the quantized layers' codecs
        from prunequant.export.storage import load_compressed

        return load_compressed(checkpoint, model=skeleton)
    return load_checkpoint(checkpoint, model=skeleton)


def _is_container(path: Path) -> bool:
    import zipfile

    from prunequant.export.storage.container import MEMBER

    if not path.is_file() or not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return MEMBER in archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def input_shape_of(meta: dict[str, Any]) -> tuple[int, ...]:
    """The single input's per-sample shape recorded in `meta`, or a clear error asking for --input-shape."""
    shape = meta.get("input_shape")
    if not shape:
        raise ConfigError("input shape unknown: pass --input-shape C,H,W (e.g. 3,32,32)")
    if isinstance(shape, dict) or isinstance(shape[0], list):
        raise ConfigError("this step takes a model with one input; the model has several (--input-shape)")
    return tuple(int(d) for d in shape)


def call_with_task(func: Any, *args: Any, task: Any = None, what: str = "", **kwargs: Any) -> Any:
    """Call `func`, passing `task` when it takes one; a non-default task `func` cannot take is an error."""
    import inspect

    try:
        accepts = "task" in inspect.signature(func).parameters
    except (TypeError, ValueError):
        accepts = False
    if accepts:
        return func(*args, task=task, **kwargs)
    if task is not None and getattr(task, "name", "classification") != "classification":
        raise ConfigError(
            f"{what or getattr(func, '__name__', 'this step')} does not take a task yet, so --task "
            f"{task.name} cannot be used here; drop --task or use a command that supports it"
        )
    return func(*args, **kwargs)


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
    parser.add_argument(
        "--limit", type=positive_int, help="use at most this many training samples (quick runs)"
    )
    parser.add_argument("--batch-size", type=positive_int, default=128, help="batch size (default 128)")


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
