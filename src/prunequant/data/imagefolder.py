"""A folder of images: root/train/<class>/<image>, optional root/test/ (or val/) alike; read by Pillow."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np

from prunequant.data.optional import require
from prunequant.data.registry import register_dataset
from prunequant.data.splits import RawDataset
from prunequant.errors import ConfigError, DataError
from prunequant.validation import check_choice, check_fraction

_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
_MODES = {1: "L", 3: "RGB"}
_LAYOUT = "root/train/<class>/<image> and optionally root/test/<class>/<image> (or val/)"


def _size(image_size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    """(height, width) from an int or a pair, or None to keep each image's own size."""
    if image_size is None:
        return None
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(size) != 2 or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in size):
        raise ConfigError(f"image_size must be a positive int or (height, width), got {image_size!r}")
    return size  # type: ignore[return-value]


def _read_image(image_module: ModuleType, path: Path, mode: str, size: tuple[int, int] | None) -> np.ndarray:
    """One image as a C,H,W uint8 array in `mode`, resized to `size` (height, width) if given."""
    try:
        with image_module.open(path) as image:
            image = image.convert(mode)
            if size is not None:
                image = image.resize((size[1], size[0]), image_module.BILINEAR)
            array = np.asarray(image, dtype=np.uint8)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read this image ({exc}); remove or replace it") from None
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def _read_split(
    image_module: ModuleType, folder: Path, classes: list[str], mode: str, size: tuple[int, int] | None
) -> tuple[np.ndarray, np.ndarray]:
    images: list[np.ndarray] = []
    labels: list[int] = []
    for class_dir in sorted(d for d in folder.iterdir() if d.is_dir()):
        if class_dir.name not in classes:
            raise DataError(f"{class_dir}: class {class_dir.name!r} is not among the train classes {classes}")
        for path in sorted(p for p in class_dir.iterdir() if p.suffix.lower() in _EXTENSIONS):
            image = _read_image(image_module, path, mode, size)
            if images and image.shape != images[0].shape:
                raise DataError(
                    f"{path}: image is {image.shape[1]}x{image.shape[2]} but others are "
                    f"{images[0].shape[1]}x{images[0].shape[2]}; pass image_size to resize them all"
                )
            images.append(image)
            labels.append(classes.index(class_dir.name))
    if not images:
        raise DataError(f"{folder}: no images found; expected {_LAYOUT}")
    return np.stack(images), np.asarray(labels, dtype=np.int64)


@register_dataset("imagefolder")
def load_imagefolder(
    data_dir: Path | None,
    seed: int,
    *,
    image_size: int | tuple[int, int] | None = None,
    channels: int = 3,
    test_fraction: float = 0.2,
) -> RawDataset:
    """Images of `data_dir`, converted to `channels` (1 or 3) and resized to `image_size` if given.

    Without a test/ (or val/) folder, a test split of `test_fraction` is carved from train by seed.
    """
    if data_dir is None:
        raise ConfigError(f"imagefolder needs data_dir (--data-dir) laid out as {_LAYOUT}")
    check_choice("channels", channels, tuple(_MODES))
    test_fraction = check_fraction("test_fraction", test_fraction)
    size = _size(image_size)
    train_dir = data_dir / "train"
    if not train_dir.is_dir():
        raise DataError(f"{data_dir}: no train/ folder; expected {_LAYOUT}")
    image_module = require("PIL.Image", "pillow", "the imagefolder dataset")
    classes = sorted(d.name for d in train_dir.iterdir() if d.is_dir())
    train_images, train_labels = _read_split(image_module, train_dir, classes, _MODES[channels], size)
    test_dir = next((data_dir / name for name in ("test", "val") if (data_dir / name).is_dir()), None)
    if test_dir is None:
        return RawDataset(train_images, train_labels, tuple(classes), test_fraction=test_fraction)
    test_images, test_labels = _read_split(image_module, test_dir, classes, _MODES[channels], size)
    return RawDataset(train_images, train_labels, tuple(classes), test_images, test_labels)
