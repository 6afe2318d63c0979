"""Light, seeded training augmentation: random crop with zero padding plus horizontal flip (CIFAR style)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset


class RandomCropFlip(Dataset):
    """Wrap a dataset of (image C,H,W, label): pad by `padding`, crop back at random, flip half the time.

    Padding is with zeros of the normalised image, i.e. the dataset mean. Draws come from a generator
    seeded by `seed`, so with a single-process loader the same seed gives the same augmented epochs.
    """

    def __init__(self, base: Dataset, *, padding: int = 4, seed: int = 0) -> None:
        self.base = base
        self.padding = padding
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, label = self.base[index]
        _, height, width = image.shape
        dy, dx = torch.randint(0, 2 * self.padding + 1, (2,), generator=self.generator).tolist()
        padded = F.pad(image, (self.padding,) * 4)
        image = padded[:, dy : dy + height, dx : dx + width]
        if torch.rand((), generator=self.generator) < 0.5:
            image = image.flip(-1)
        return image, label
