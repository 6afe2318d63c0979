"""What a trial needs besides its config: the recipe's task, data (loaded once per process), example inputs
taken from the data, and model bytes I/O that rebuilds user (`module:factory`) architectures."""

from __future__ import annotations

import functools
import io
import json
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from prunequant.data import DatasetSplits, RandomCropFlip, load_dataset, make_loaders
from prunequant.errors import DataError
from prunequant.lab.budget import Budget
from prunequant.lab.recipe import Recipe
from prunequant.lab.userdata import Splits, load_factory
from prunequant.models import build_from_spec, load_checkpoint, save_checkpoint
from prunequant.tasks import Inputs, Task


@dataclass(frozen=True)
class Env:
    """The recipe's task and budget, its train/val/test loaders, and example inputs from the test split:
    `sample` (one sample, for profiling and tracing), `latency_batch` ([profile] batch_size samples) and
    `example` (a few (inputs, target) for checking that the model fits the task)."""

    task: Task
    budget: Budget
    name: str
    loaders: Splits
    sample: Inputs
    latency_batch: Inputs
    example: tuple[Inputs, Any]
    splits: DatasetSplits | None = None

    @property
    def input_shape(self) -> list[int] | None:
        """[C, H, W] of a registered dataset (None for user data: see `describe(sample)`)."""
        return list(self.splits.input_shape) if self.splits is not None else None

    def calibration(self, batches: int) -> list[Any]:
        """The first `batches` training batches (shuffled by the run seed), for calibration and data-driven
        importance; consumers split them with the task."""
        out = []
        for index, batch in enumerate(self.loaders.train):
            if index >= batches:
                break
            out.append(batch)
        return out


@functools.lru_cache(maxsize=4)
def _task(key: str) -> Task:
    from prunequant.lab.recipe import TaskSection

    spec = json.loads(key)
    return TaskSection(name=spec["name"], options=spec["options"]).build()


def task_of(recipe: Recipe) -> Task:
    """The recipe's Task, built once per process."""
    return _task(json.dumps({"name": recipe.task.name, "options": recipe.task.options}, sort_keys=True))


def budget_of(recipe: Recipe) -> Budget:
    """The recipe's Budget on its metric."""
    return recipe.task.budget(task_of(recipe))


def environment(recipe: Recipe) -> Env:
    """The Env of `recipe`: the data is loaded once per process, the loaders of datasets are new on every
    call, so each trial sees the same shuffling whatever ran before it in the process."""
    task, data = task_of(recipe), recipe.to_dict()["data"]
    key = json.dumps({"data": data, "seed": recipe.run.seed}, sort_keys=True)
    batch_size, seed = recipe.baseline.batch_size, recipe.run.seed
    if recipe.data.factory:
        parts = load_factory(recipe.data.factory, recipe.data.options)
        loaders = Splits(*(_loader(part, batch_size, seed, i == 0) for i, part in enumerate(parts)))
        splits, name = None, recipe.data.factory
    else:
        splits = _splits(key)
        if isinstance(splits.train, RandomCropFlip):  # augmentation draws restart too
            splits.train.generator.manual_seed(seed)
        loaders, name = Splits(*make_loaders(splits, batch_size, seed=seed)), splits.name
    inputs, target = _first_batch(loaders.test, task, recipe.profile.batch_size)
    return Env(
        task,
        budget_of(recipe),
        name,
        loaders,
        resize(inputs, 1),
        resize(inputs, recipe.profile.batch_size),
        (resize(inputs, 2), resize(target, 2)),
        splits,
    )


@functools.lru_cache(maxsize=2)
def _splits(key: str) -> DatasetSplits:
    spec = json.loads(key)
    data = spec["data"]
    return load_dataset(
        data["dataset"],
        data["data_dir"] or None,
        val_fraction=data["val_fraction"],
        seed=spec["seed"],
        limit=data["limit"] or None,
        **data["options"],
    )


def _loader(part: Any, batch_size: int, seed: int, train: bool) -> Iterable:
    """A user split: a Dataset gets a loader (train shuffled by the run seed); a loader is used as is."""
    if isinstance(part, Dataset) and not isinstance(part, torch.utils.data.IterableDataset):
        generator = torch.Generator().manual_seed(seed) if train else None
        return DataLoader(part, batch_size=batch_size, shuffle=train, generator=generator, num_workers=0)
    return part


def _first_batch(loader: Iterable, task: Task, size: int) -> tuple[Inputs, Any]:
    """(inputs, target) of the first test batches, at least `size` samples when the split has them; read
    without touching the global RNG (so trial numbers do not depend on it)."""
    dataset = getattr(loader, "dataset", None)
    with torch.random.fork_rng(devices=[]):
        if isinstance(loader, DataLoader) and not isinstance(dataset, torch.utils.data.IterableDataset):
            count = min(len(dataset), max(size, 2))
            batch = loader.collate_fn([dataset[index] for index in range(count)])  # ragged targets too
        else:
            batch = next(iter(loader), None)
    if batch is None or (isinstance(dataset, Dataset) and len(dataset) == 0):  # type: ignore[arg-type]
        raise DataError("the test split is empty; the lab needs test data for the example inputs")
    return task.split(batch)


def resize(value: Any, n: int) -> Any:
    """Every tensor of a (nested) structure cut or cycled along dim 0 to `n` samples (0-d kept)."""
    if isinstance(value, torch.Tensor):
        if value.dim() == 0 or value.shape[0] == 0:
            return value
        return value[torch.arange(n) % value.shape[0]].clone()
    if isinstance(value, dict):
        return {key: resize(item, n) for key, item in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(resize(item, n) for item in value)
    return value


def model_to_bytes(model: nn.Module, **meta: Any) -> bytes:
    """A prunequant checkpoint of `model` as bytes (what trials send back to the driver)."""
    with tempfile.TemporaryDirectory(prefix="pq-lab-") as folder:
        path = save_checkpoint(model, Path(folder) / "model.pt", **meta)
        return path.read_bytes()


def model_from_bytes(data: bytes, arch: str = "") -> tuple[nn.Module, dict[str, Any]]:
    """(model, meta) from checkpoint bytes, loaded with weights_only=True.

    A `module:factory` architecture is rebuilt from the factory named by the recipe (`arch`, trusted: the
    user wrote it), with the kwargs recorded in the checkpoint; zoo models are rebuilt by name.
    """
    meta = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True).get("meta", {})
    skeleton = None
    if ":" in (meta.get("arch") or "") and meta["arch"] == arch:
        skeleton = build_from_spec(arch, **meta.get("arch_kwargs", {}))
    with tempfile.TemporaryDirectory(prefix="pq-lab-") as folder:
        path = Path(folder) / "model.pt"
        path.write_bytes(data)
        return load_checkpoint(path, model=skeleton)
