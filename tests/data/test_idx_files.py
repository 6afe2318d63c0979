from pathlib import Path

import numpy as np
import pytest
import torch

from prunequant.data import load_dataset, locate
from prunequant.data.idx import read_idx
from prunequant.errors import ConfigError, DataError

FASHION_MEAN, FASHION_STD = 0.2860, 0.3530


@pytest.mark.parametrize("gz", [True, False])
def test_loads_gz_and_raw_idx_files(tmp_path, gz, tinydata):
    folder = tinydata.write_idx_dataset(tmp_path / "fm", n_train=50, n_test=20, side=6, gz=gz)
    splits = load_dataset("fashion-mnist", folder)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (45, 5, 20)
    assert splits.input_shape == (1, 6, 6) and splits.num_classes == 10
    assert splits.classes[0] == "T-shirt/top" and splits.classes[-1] == "Ankle boot"
    images, labels = splits.train[0]
    assert images.shape == (1, 6, 6) and images.dtype == torch.float32 and labels.dtype == torch.int64


def test_pixels_are_normalised_with_the_reference_mean_and_std(tmp_path, tinydata):
    folder = tmp_path / "fm"
    tinydata.write_idx_dataset(folder, n_train=10, n_test=4, side=4)
    constant = round(FASHION_MEAN * 255)  # images at the reference mean normalise to about 0
    tinydata.write_idx(folder / "train-images-idx3-ubyte.gz", np.full((10, 4, 4), constant))
    tinydata.write_idx(folder / "t10k-images-idx3-ubyte.gz", np.full((4, 4, 4), 255))
    splits = load_dataset("fashion-mnist", folder, val_fraction=0.2)
    assert splits.train.tensors[0].mean().abs() < 0.01
    assert torch.allclose(splits.test.tensors[0], torch.tensor((1.0 - FASHION_MEAN) / FASHION_STD))


def test_labels_are_kept_with_their_images(tmp_path, tinydata):
    folder = tinydata.write_idx_dataset(tmp_path / "m", n_train=10, n_test=10, side=2)
    labels = np.arange(10)
    tinydata.write_idx(folder / "t10k-images-idx3-ubyte.gz", np.repeat(labels * 20, 4).reshape(10, 2, 2))
    tinydata.write_idx(folder / "t10k-labels-idx1-ubyte.gz", labels)
    images, got = load_dataset("mnist", folder).test.tensors
    pixels = ((images[:, 0, 0, 0] * 0.3081 + 0.1307) * 255).round().long()
    assert torch.equal(pixels, got * 20)


@pytest.mark.parametrize("layout", ["parent", "torchvision", "env"])
def test_finds_the_folder_in_each_supported_place(tmp_path, monkeypatch, layout, tinydata):
    if layout == "parent":
        tinydata.write_idx_dataset(tmp_path / "fashion-mnist")
        data_dir = tmp_path
    elif layout == "torchvision":
        tinydata.write_idx_dataset(tmp_path / "FashionMNIST" / "raw")
        data_dir = tmp_path
    else:
        tinydata.write_idx_dataset(tmp_path / "envroot" / "fashion-mnist")
        monkeypatch.setenv(locate.ENV_VAR, str(tmp_path / "envroot"))
        data_dir = None
    assert len(load_dataset("fashion-mnist", data_dir).test) == 20


def test_missing_data_names_every_searched_path_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv(locate.ENV_VAR, str(tmp_path / "env"))
    monkeypatch.setattr(locate, "SYSTEM_ROOT", tmp_path / "system")
    with pytest.raises(DataError) as err:
        load_dataset("fashion-mnist")
    message = str(err.value)
    for path in ("env", "env/fashion-mnist", "system/fashion-mnist"):
        assert str(tmp_path / path) in message
    assert "apt-get install dataset-fashion-mnist" in message and "PRUNEQUANT_DATA" in message
    assert "\n" not in message


def test_a_given_data_dir_is_the_only_place_looked_in(tmp_path, monkeypatch, tinydata):
    tinydata.write_idx_dataset(tmp_path / "env" / "fashion-mnist")  # a copy that must not be used
    monkeypatch.setenv(locate.ENV_VAR, str(tmp_path / "env"))
    (tmp_path / "given").mkdir()
    with pytest.raises(DataError) as err:
        load_dataset("fashion-mnist", tmp_path / "given")
    message = str(err.value)
    assert message.startswith(f"the data folder {tmp_path / 'given'} holds no fashion-mnist data")
    assert "train-images-idx3-ubyte" in message and "fashion-mnist/FashionMNIST/raw" in message
    assert str(tmp_path / "env") not in message and "\n" not in message


def test_truncated_files_raise_data_error_naming_the_file(tmp_path, tinydata):
    folder = tinydata.write_idx_dataset(tmp_path / "raw", gz=False)
    images = folder / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-7])
    with pytest.raises(DataError, match="train-images-idx3-ubyte.*truncated"):
        load_dataset("mnist", folder)

    folder = tinydata.write_idx_dataset(tmp_path / "gz", gz=True)
    labels = folder / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(labels.read_bytes()[:-5])
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz"):
        load_dataset("mnist", folder)


@pytest.mark.parametrize(
    "header",
    [b"\x00\x00\x08\x01", b"\x00\x00\x0d\x03", b"\x01\x00\x08\x03", b"\x00\x00"],
    ids=["wrong-ndim", "float-dtype", "bad-magic", "short"],
)
def test_a_bad_header_raises_data_error(tmp_path, header):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(header + bytes(64))
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(path, 3)


def test_image_and_label_counts_must_match(tmp_path, tinydata):
    folder = tinydata.write_idx_dataset(tmp_path / "fm", n_train=10)
    tinydata.write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(9))
    with pytest.raises(DataError, match="10 images but .*9 labels"):
        load_dataset("fashion-mnist", folder)


def test_labels_out_of_range_raise_data_error(tmp_path, tinydata):
    folder = tinydata.write_idx_dataset(tmp_path / "fm", n_train=10)
    tinydata.write_idx(folder / "train-labels-idx1-ubyte.gz", np.full(10, 12))
    with pytest.raises(DataError, match="10 classes"):
        load_dataset("fashion-mnist", folder)


def test_real_fashion_mnist_from_the_debian_package(monkeypatch):
    system_root = Path("/usr/share/datasets")
    if not (system_root / "fashion-mnist").is_dir():
        pytest.skip("dataset-fashion-mnist is not installed")
    monkeypatch.setattr(locate, "SYSTEM_ROOT", system_root)
    splits = load_dataset("fashion-mnist", val_fraction=0.1)
    assert (len(splits.train) + len(splits.val), len(splits.test)) == (60000, 10000)
    assert splits.input_shape == (1, 28, 28)
    images, labels = splits.train.tensors
    assert abs(images.mean().item()) < 0.01 and abs(images.std().item() - 1) < 0.01
    assert torch.bincount(labels, minlength=10).min() > 5000


def test_normalize_false_serves_pixels_in_unit_range(tmp_path, tinydata):
    folder = tmp_path / "fm"
    tinydata.write_idx_dataset(folder, n_train=10, n_test=4, side=4)
    tinydata.write_idx(folder / "t10k-images-idx3-ubyte.gz", np.tile([0, 51, 255, 255], (4, 4, 1)))
    splits = load_dataset("fashion-mnist", folder, val_fraction=0.2, normalize=False)
    expected = torch.tensor([0.0, 0.2, 1.0, 1.0]).expand(4, 1, 4, 4)
    assert torch.allclose(splits.test.tensors[0], expected)
    assert splits.train.tensors[0].min() >= 0 and splits.train.tensors[0].max() <= 1
    with pytest.raises(ConfigError, match="normalize must be true or false"):
        load_dataset("fashion-mnist", folder, normalize="no")
