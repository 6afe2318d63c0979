"""What a trial needs besides its config: the recipe's data (loaded once per process) and model bytes I/O."""

from __future__ import annotations

import functools
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from prunequant.data import DatasetSplits, Loaders, RandomCropFlip, load_dataset, make_loaders
from prunequant.lab.recipe import Recipe
from prunequant.models import load_checkpoint, save_checkpoint


@dataclass(frozen=True)
class Env:
    """The recipe's dataset and loaders, plus example inputs for profiling (1 sample) and latency."""

    splits: DatasetSplits
    loaders: Loaders
    sample: torch.Tensor
    latency_batch: torch.Tensor

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.splits.input_shape

    def calibration(self, batches: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The first `batches` training batches (shuffled by the run seed), for quantizer calibration."""
        out = []
        for index, batch in enumerate(self.loaders.train):
            if index >= batches:
                break
            out.append(batch)
        return out


def environment(recipe: Recipe) -> Env:
    """The Env of `recipe`: the data is loaded once per process, the loaders are new on every call, so each
    trial sees the same shuffling whatever ran before it in the process."""
    data = recipe.to_dict()["data"]
    key = json.dumps({"data": data, "seed": recipe.run.seed}, sort_keys=True)
    splits = _splits(key)
    if isinstance(splits.train, RandomCropFlip):  # augmentation draws restart too
        splits.train.generator.manual_seed(recipe.run.seed)
    loaders = make_loaders(splits, recipe.baseline.batch_size, seed=recipe.run.seed)
    generator = torch.Generator().manual_seed(recipe.run.seed)
    latency_batch = torch.randn(recipe.profile.batch_size, *splits.input_shape, generator=generator)
    return Env(splits, loaders, latency_batch[:1].clone(), latency_batch)


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


def model_to_bytes(model: nn.Module, **meta: Any) -> bytes:
    """A prunequant checkpoint of `model` as bytes (what trials send back to the driver)."""
    with tempfile.TemporaryDirectory(prefix="pq-lab-") as folder:
        path = save_checkpoint(model, Path(folder) / "model.pt", **meta)
        return path.read_bytes()


def model_from_bytes(data: bytes) -> tuple[nn.Module, dict[str, Any]]:
    """(model, meta) from checkpoint bytes, loaded with weights_only=True."""
    with tempfile.TemporaryDirectory(prefix="pq-lab-") as folder:
        path = Path(folder) / "model.pt"
        path.write_bytes(data)
        return load_checkpoint(path)
