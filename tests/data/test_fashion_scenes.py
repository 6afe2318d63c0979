"""fashion-scenes: deterministic canvases whose masks and boxes agree; ragged boxes collate; registry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from prunequant.data import fashion_scenes, load_dataset, make_loaders
from prunequant.data.compose import load_garments
from prunequant.errors import ConfigError


@pytest.fixture(scope="module")
def scenes(real_fashion: Path) -> dict[str, np.ndarray]:
    return fashion_scenes.generate(load_garments(real_fashion, "test"), 30, seed=5)


def test_same_seed_same_bytes(scenes: dict[str, np.ndarray], real_fashion: Path) -> None:
    garments = load_garments(real_fashion, "test")
    again = fashion_scenes.generate(garments, 30, seed=5)
    assert all(scenes[key].tobytes() == again[key].tobytes() for key in scenes)
    other = fashion_scenes.generate(garments, 30, seed=6)
    assert scenes["images"].tobytes() != other["images"].tobytes()


def test_masks_boxes_and_instances_agree(scenes: dict[str, np.ndarray]) -> None:
    mask, instances, boxes, labels = (scenes[k] for k in ("mask", "instances", "boxes", "labels"))
    counts = (labels >= 0).sum(1)
    assert counts.min() >= 1 and counts.max() <= 4 and len(set(counts.tolist())) > 1
    assert mask.max() <= 10 and (mask == 0).any()
    for n in range(len(mask)):
        for i in range(counts[n]):
            rows, cols = np.nonzero(instances[n] == i + 1)
            x1, y1, x2, y2 = boxes[n, i].astype(int)
            assert (x1, y1, x2, y2) == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)  # tight
            assert (mask[n][rows, cols] == labels[n, i] + 1).all()
        garment = mask[n] > 0
        assert np.array_equal(garment, instances[n] > 0)
        inside = np.zeros_like(garment)
        for x1, y1, x2, y2 in boxes[n, : counts[n]].astype(int):
            inside[y1:y2, x1:x2] = True
        assert not (garment & ~inside).any()  # every garment pixel lies in some box
        assert (labels[n, counts[n] :] == -1).all()


def test_every_garment_stays_mostly_visible(scenes: dict[str, np.ndarray]) -> None:
    areas = [
        (scenes["instances"][n] == i + 1).sum()
        for n in range(30)
        for i in range((scenes["labels"][n] >= 0).sum())
    ]
    assert min(areas) >= 20


def test_segmentation_split_and_loader(fashion_data_dir: Path) -> None:
    splits = load_dataset("fashion-scenes", fashion_data_dir, size=8, val_fraction=0.25)
    assert (
        splits.num_classes == 11 and splits.classes[0] == "background" and splits.input_shape == (3, 64, 64)
    )
    image, mask = next(iter(make_loaders(splits, batch_size=3).train))
    assert image.shape == (3, 3, 64, 64) and mask.shape == (3, 64, 64) and mask.dtype == torch.int64


def test_box_targets_are_ragged_dicts_that_collate_into_a_list(fashion_data_dir: Path) -> None:
    splits = load_dataset("fashion-scenes", fashion_data_dir, size=8, val_fraction=0.25, targets="boxes")
    assert splits.num_classes == 10 and splits.classes[0] == "T-shirt/top"
    images, targets = next(iter(make_loaders(splits, batch_size=4).train))
    assert images.shape == (4, 3, 64, 64) and isinstance(targets, list) and len(targets) == 4
    for target in targets:
        assert target["boxes"].shape == (len(target["labels"]), 4) and target["labels"].dtype == torch.int64
        assert (target["boxes"][:, 2:] > target["boxes"][:, :2]).all()
    # the mask variant of the same seed shows the same canvases (one generator, one cache)
    masks = load_dataset("fashion-scenes", fashion_data_dir, size=8, val_fraction=0.25)
    assert torch.equal(masks.test[0][0], splits.test[0][0])


def test_cache_file_is_reused(fashion_data_dir: Path, monkeypatch) -> None:
    first = load_dataset("fashion-scenes", fashion_data_dir, size=4, val_fraction=0.25)
    assert len(list((fashion_data_dir / "fashion-scenes").glob("*.npz"))) == 2
    monkeypatch.setattr(fashion_scenes, "generate", lambda *a, **k: pytest.fail("cache was not used"))
    again = load_dataset("fashion-scenes", fashion_data_dir, size=4, val_fraction=0.25)
    assert torch.equal(first.train[:][0], again.train[:][0])


def test_bad_targets_option(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="targets"):
        load_dataset("fashion-scenes", tmp_path, targets="polygons")
