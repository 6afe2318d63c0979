"""Helpers shared by the subcommands: model, task and data resolution, example inputs, human output."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from prunequant.errors import ConfigError


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


def load_data(args: argparse.Namespace, dataset: str | None = None, **options: Any):
    """Load the dataset named by --dataset (or `dataset`) and return (splits, loaders).

    --limit caps the training pool (train + val) and shrinks the test split in proportion.
    """
    from prunequant.data import load_dataset, make_loaders

    name = dataset or args.dataset
    if not name:
        raise ConfigError("no dataset: pass --dataset NAME (e.g. fashion-mnist)")
    limit = options.pop("limit", args.limit)
    splits = load_dataset(name, args.data_dir, seed=args.seed, limit=limit, **options)
    return splits, make_loaders(splits, args.batch_size, seed=args.seed)


def print_human(args: argparse.Namespace, renderable: Any) -> None:
    """Print a rich renderable or text on stdout, unless --json asked for JSON only; never hard-wrapped
    on a pipe or file."""
    if getattr(args, "json", False):
        return
    from prunequant.cli.tables import stdout_console

    stdout_console().print(renderable)
