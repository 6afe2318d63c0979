"""DataLoaders over DatasetSplits: a seeded shuffled train loader, plain val/test loaders, single process."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch.utils.data import DataLoader

from prunequant.data.splits import DatasetSplits
from prunequant.validation import check_int_range


class Loaders(NamedTuple):
    """Train (shuffled), validation and test loaders."""

    train: DataLoader
    val: DataLoader
    test: DataLoader


def make_loaders(
    splits: DatasetSplits, batch_size: int = 128, *, seed: int = 0, eval_batch_size: int | None = None
) -> Loaders:
    """Loaders with num_workers=0; `seed` fixes the train order; `eval_batch_size` defaults to batch_size."""
    check_int_range("batch_size", batch_size, 1, 1 << 20)
    check_int_range("seed", seed, 0, 2**63 - 1)
    eval_batch_size = batch_size if eval_batch_size is None else eval_batch_size
    check_int_range("eval_batch_size", eval_batch_size, 1, 1 << 20)
    generator = torch.Generator().manual_seed(seed)
    collate = getattr(splits.train, "collate_fn", None)  # ragged targets (e.g. boxes) bring their own
    return Loaders(
        train=DataLoader(
            splits.train,
            batch_size=batch_size,
            shuffle=True,
            generator=generator,
            num_workers=0,
            collate_fn=collate,
        ),
        val=DataLoader(
            splits.val, batch_size=eval_batch_size, shuffle=False, num_workers=0, collate_fn=collate
        ),
        test=DataLoader(
            splits.test, batch_size=eval_batch_size, shuffle=False, num_workers=0, collate_fn=collate
        ),
    )
