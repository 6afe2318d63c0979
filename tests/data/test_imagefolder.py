import sys

import numpy as np
import pytest
import torch

from prunequant.data import load_dataset
from prunequant.errors import ConfigError, DataError


def write_images(folder, counts: dict[str, int], size=(5, 7), start: int = 0) -> None:
    """PNG images, class k's pixels all equal to 40 * k + 10 (each class is a flat grey colour)."""
    image_module = pytest.importorskip("PIL.Image")
    for k, (name, count) in enumerate(sorted(counts.items())):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            pixels = np.full((*size, 3), 40 * k + 10, dtype=np.uint8)
            image_module.fromarray(pixels).save(folder / name / f"{start + i}.png")


def test_train_and_test_folders_become_splits(tmp_path):
    write_images(tmp_path / "train", {"cat": 6, "dog": 4})
    write_images(tmp_path / "test", {"cat": 2, "dog": 3})
    splits = load_dataset("imagefolder", tmp_path, val_fraction=0.2)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (8, 2, 5)
    assert splits.classes == ("cat", "dog") and splits.input_shape == (3, 5, 7)
    assert torch.bincount(splits.test.tensors[1]).tolist() == [2, 3]


def test_channels_and_image_size_options_with_a_val_folder_as_test(tmp_path):
    write_images(tmp_path / "train", {"a": 5, "b": 5, "c": 5}, size=(9, 9))
    write_images(tmp_path / "val", {"a": 1, "c": 1}, size=(6, 4))
    splits = load_dataset("imagefolder", tmp_path, channels=1, image_size=(4, 6))
    assert splits.input_shape == (1, 4, 6) and len(splits.test) == 2
    images, labels = splits.test.tensors
    assert images.flatten(1).std(1).max() < 1e-6  # flat images stay flat
    assert labels.tolist() == [0, 2] and images[0, 0, 0, 0] < images[1, 0, 0, 0]


def test_without_a_test_folder_the_test_split_is_carved_by_seed(tmp_path):
    write_images(tmp_path / "train", {"a": 10, "b": 10})
    first, again = (load_dataset("imagefolder", tmp_path, test_fraction=0.25, seed=1) for _ in range(2))
    assert len(first.test) == 5 and len(first.train) + len(first.val) == 15
    assert torch.equal(first.test.tensors[1], again.test.tensors[1])


def test_mixed_sizes_without_image_size_name_the_file(tmp_path):
    write_images(tmp_path / "train", {"a": 2})
    write_images(tmp_path / "train", {"a": 1}, size=(8, 8), start=5)
    with pytest.raises(DataError, match=r"5\.png.*8x8.*pass image_size"):
        load_dataset("imagefolder", tmp_path)


def test_bad_layouts_and_files(tmp_path):
    with pytest.raises(ConfigError, match="needs data_dir"):
        load_dataset("imagefolder")
    with pytest.raises(DataError, match="no train/ folder"):
        load_dataset("imagefolder", tmp_path)
    write_images(tmp_path / "train", {"a": 2})
    (tmp_path / "train" / "a" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="broken.png"):
        load_dataset("imagefolder", tmp_path)
    with pytest.raises(ConfigError, match="channels"):
        load_dataset("imagefolder", tmp_path, channels=2)


def test_an_unknown_test_class_is_a_data_error(tmp_path):
    write_images(tmp_path / "train", {"a": 2})
    write_images(tmp_path / "test", {"zebra": 1})
    with pytest.raises(DataError, match="'zebra' is not among the train classes"):
        load_dataset("imagefolder", tmp_path)


def test_missing_pillow_says_how_to_install_it(tmp_path, monkeypatch):
    (tmp_path / "train" / "a").mkdir(parents=True)
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    with pytest.raises(DataError, match="pip install pillow"):
        load_dataset("imagefolder", tmp_path)
