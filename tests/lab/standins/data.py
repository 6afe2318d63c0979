"""Deterministic data factories: (train, val, test) TensorDatasets of a few dozen tiny samples."""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

SIZES = (32, 16, 16)


def _splits(make, seed: int) -> tuple[TensorDataset, TensorDataset, TensorDataset]:
    generator = torch.Generator().manual_seed(seed)
    return tuple(TensorDataset(*make(n, generator)) for n in SIZES)  # type: ignore[return-value]


def flow_data(size: int = 12, seed: int = 0):
    """(image, sparse depth, flow): the flow is a smooth function of both inputs."""

    def make(n, g):
        image = torch.rand(n, 3, size, size, generator=g)
        dense = torch.rand(n, 1, size, size, generator=g)
        depth = dense * (torch.rand(n, 1, size, size, generator=g) < 0.3)
        flow = torch.cat([image[:, :1] - image[:, 1:2], 2 * dense - 1], 1) * 2
        return image, depth, flow

    return _splits(make, seed)


def segmentation_data(size: int = 8, classes: int = 3, seed: int = 1):
    """(image, mask): the class of a pixel is the channel that is brightest there."""

    def make(n, g):
        image = torch.rand(n, 3, size, size, generator=g)
        return image, image[:, :classes].argmax(1)

    return _splits(make, seed)


def translation_data(size: int = 8, seed: int = 2):
    """(image, target) in [-1, 1]: the target swaps the colour channels (a 'style')."""

    def make(n, g):
        image = torch.rand(n, 3, size, size, generator=g) * 2 - 1
        return image, image[:, [2, 0, 1]]

    return _splits(make, seed)


def vae_data(size: int = 8, seed: int = 3):
    """(image, image): blurry blobs in [0, 1]."""

    def make(n, g):
        base = torch.rand(n, 1, size // 2, size // 2, generator=g)
        image = torch.nn.functional.interpolate(base, size=(size, size), mode="bilinear", align_corners=False)
        return image, image.clone()

    return _splits(make, seed)


def detection_data(size: int = 16, seed: int = 4):
    """(image, box): one bright square per image; box = (cx, cy, w, h) as fractions of the image."""

    def make(n, g):
        image = torch.rand(n, 3, size, size, generator=g) * 0.2
        boxes = torch.zeros(n, 4)
        for i in range(n):
            side = int(torch.randint(4, 8, (1,), generator=g))
            x, y = (int(v) for v in torch.randint(0, size - side, (2,), generator=g))
            image[i, :, y : y + side, x : x + side] = 1.0
            boxes[i] = torch.tensor([x + side / 2, y + side / 2, side, side]) / size
        return image, boxes

    return _splits(make, seed)
