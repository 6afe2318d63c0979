"""fashion-scenes: canvases of 1-4 real Fashion-MNIST garments for segmentation and detection (seeds 003/004).

Each canvas is RGB over a sinusoid-textured background; garments are tinted, scaled, placed at random and
painted in random order, and a canvas is redrawn until every garment keeps at least `MIN_VISIBLE` of its
pixels. Targets come from the same painting, so they agree by construction:

- ``targets="mask"``: a per-pixel class mask [H, W] int64 of 11 classes (0 background, 1 + garment class);
- ``targets="boxes"``: ``{"boxes": [n, 4] float xyxy (pixel edges), "labels": [n] int64 garment class}``,
  the tight box of each garment's visible pixels; batch these with `collate_boxes`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from prunequant.data import compose
from prunequant.data.generated import Arrays, GeneratedData
from prunequant.data.registry import register_dataset
from prunequant.validation import check_choice

VERSION = 1
MIN_VISIBLE = 0.6
SCALE_RANGE = (0.7, 1.5)
SEGMENTATION_CLASSES = ("background", *compose.GARMENT_CLASSES)
_TRIES = 50


def generate(
    garments: compose.Garments,
    count: int,
    *,
    seed: int,
    size: int = 64,
    min_objects: int = 1,
    max_objects: int = 4,
) -> Arrays:
    """Render `count` canvases; the same arguments give the same bytes.

    Returns
    -------
    dict with "images" uint8 [N, 3, H, W], "mask" uint8 [N, H, W] (0 background, 1 + class), "instances"
    uint8 [N, H, W] (0 background, garment 1..k), "boxes" float32 [N, K, 4] and "labels" int64 [N, K]
    (class per garment, -1 past the last one), K = max_objects.
    """
    rng = np.random.default_rng(seed)
    out: Arrays = {
        "images": np.zeros((count, 3, size, size), np.uint8),
        "mask": np.zeros((count, size, size), np.uint8),
        "instances": np.zeros((count, size, size), np.uint8),
        "boxes": np.zeros((count, max_objects, 4), np.float32),
        "labels": np.full((count, max_objects), -1, np.int64),
    }
    for n in range(count):
        k = int(rng.integers(min_objects, max_objects + 1))
        canvas, ids, picks = _canvas(rng, garments, size, k)
        out["images"][n], out["instances"][n] = compose.to_uint8(canvas), ids
        classes = garments.labels[picks]
        out["mask"][n] = np.concatenate([[0], classes + 1])[ids]
        for i, label in enumerate(classes):
            rows, cols = np.nonzero(ids == i + 1)
            out["boxes"][n, i] = (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
            out["labels"][n, i] = label
    return out


def _canvas(
    rng: np.random.Generator, garments: compose.Garments, size: int, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image [3, H, W] float, layer ids [H, W], garment indices [k]) with every garment visible enough.

    After `_TRIES` failed draws the canvas holds one garment fewer (never fewer than one)."""
    unit = size / 64
    for attempt in range(_TRIES * k):
        count = max(1, k - attempt // _TRIES)
        picks = rng.integers(len(garments.images), size=count)
        scales = rng.uniform(*SCALE_RANGE, count) * unit
        centers = rng.uniform(0.2 * size, 0.8 * size, (count, 2))
        texture, tints = compose.random_texture(rng), compose.random_tints(rng, count)
        canvas, ids, full = compose.render_scene(
            texture, garments.images[picks], centers, scales, tints, size=size
        )
        visible = np.bincount(ids.ravel(), minlength=count + 1)[1:]
        if all(v >= MIN_VISIBLE * f and v > 0 for v, f in zip(visible, full, strict=True)):
            return canvas, ids, picks
    raise AssertionError("unreachable: a single garment is always fully visible")


class BoxDataset(Dataset):
    """Images with ragged detection targets: item = (image [3, H, W], {"boxes": [n, 4], "labels": [n]})."""

    def __init__(self, images: torch.Tensor, boxes: np.ndarray, labels: np.ndarray) -> None:
        self.images = images
        self.targets = [
            {"boxes": torch.from_numpy(b[lab >= 0]).float(), "labels": torch.from_numpy(lab[lab >= 0])}
            for b, lab in zip(boxes, labels, strict=True)
        ]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.images[index], self.targets[index]

    @staticmethod
    def collate_fn(batch: list[tuple[torch.Tensor, dict[str, torch.Tensor]]]) -> tuple[torch.Tensor, list]:
        """Loaders use this one (see `make_loaders`); it is `collate_boxes`."""
        return collate_boxes(batch)


def collate_boxes(batch: list[tuple[torch.Tensor, Any]]) -> tuple[torch.Tensor, list]:
    """Stack the images of a detection batch and keep its targets as a list of per-image dicts.

    Parameters
    ----------
    batch: list of (image, target dict) items.

    Returns
    -------
    (images [B, C, H, W], [target dict per image]).
    """
    images, targets = zip(*batch, strict=True)
    return torch.stack(images), list(targets)


def to_dataset(arrays: Arrays, *, targets: str = "mask") -> Dataset:
    """TensorDataset of (image float [3, H, W] in [0, 1], mask int64 [H, W]), or a BoxDataset for "boxes"."""
    images = torch.from_numpy(arrays["images"]).float().div_(255.0)
    if targets == "boxes":
        return BoxDataset(images, arrays["boxes"], arrays["labels"])
    return TensorDataset(images, torch.from_numpy(arrays["mask"]).long())


@register_dataset("fashion-scenes")
def load_fashion_scenes(
    data_dir: Path | None,
    seed: int,
    *,
    size: int = 2000,
    image_size: int = 64,
    min_objects: int = 1,
    max_objects: int = 4,
    targets: str = "mask",
) -> GeneratedData:
    """`size` training and `size // 4` test canvases of `image_size`^2 with `targets` "mask" or "boxes".

    Returns
    -------
    GeneratedData; `load_dataset` splits it into train/val/test.
    """
    check_choice("targets", targets, ("mask", "boxes"))
    train, test = compose.scene_splits(
        "fashion-scenes", VERSION, generate, data_dir, seed, size=size, image_size=image_size,
        min_objects=min_objects, max_objects=max_objects,
    )  # fmt: skip
    segmentation = targets == "mask"
    return GeneratedData(
        train=train,
        test=test,
        make=lambda arrays: to_dataset(arrays, targets=targets),
        num_classes=len(SEGMENTATION_CLASSES) if segmentation else len(compose.GARMENT_CLASSES),
        input_shape=(3, image_size, image_size),
        classes=SEGMENTATION_CLASSES if segmentation else compose.GARMENT_CLASSES,
    )
