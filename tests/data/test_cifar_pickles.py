import os
import pickle

import numpy as np
import pytest
import torch

from prunequant.data import RandomCropFlip, load_dataset
from prunequant.errors import ConfigError, DataError

CIFAR10_MEAN = torch.tensor([0.4914, 0.4822, 0.4465]).view(3, 1, 1)
CIFAR10_STD = torch.tensor([0.2470, 0.2435, 0.2616]).view(3, 1, 1)


class _RunsShell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("protocol", [2, 5])
def test_loads_cifar10_batches_in_the_standard_layout(tmp_path, tinydata, protocol):
    tinydata.write_cifar10(tmp_path / "cifar-10-batches-py", per_batch=4, n_test=6, protocol=protocol)
    splits = load_dataset("cifar10", tmp_path, val_fraction=0.25)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (15, 5, 6)
    assert splits.input_shape == (3, 32, 32) and splits.num_classes == 10
    assert splits.classes == tuple(f"class{i}" for i in range(10))
    images, labels = splits.test[0]
    assert images.dtype == torch.float32 and labels.dtype == torch.int64


def test_cifar_rows_are_channel_planes_normalised_per_channel(tmp_path, tinydata):
    folder = tinydata.write_cifar10(tmp_path / "c10", n_test=1)
    red, green, blue = 255, 128, 0
    row = np.repeat(np.array([red, green, blue], dtype=np.uint8), 1024)[None]
    tinydata.write_pickle(folder / "test_batch", {b"data": row, b"labels": [7]})
    images, labels = load_dataset("cifar10", folder).test.tensors
    expected = (torch.tensor([red, green, blue]).view(3, 1, 1) / 255 - CIFAR10_MEAN) / CIFAR10_STD
    assert torch.allclose(images[0], expected.expand(3, 32, 32), atol=1e-6)
    assert labels.tolist() == [7]


def test_loads_cifar100_fine_labels(tmp_path, tinydata):
    tinydata.write_cifar100(tmp_path / "cifar-100-python", n_train=30, n_test=10)
    splits = load_dataset("cifar100", tmp_path, limit=20)
    assert (len(splits.train) + len(splits.val), splits.num_classes) == (20, 100)
    assert splits.classes[99] == "fine99"
    assert splits.train.tensors[1].max() >= 20  # fine (0..99) rather than coarse (0..19) labels, seed 0


def test_a_malicious_pickle_is_refused_without_running_it(tmp_path, tinydata):
    folder = tinydata.write_cifar10(tmp_path / "c10")
    marker = tmp_path / "pwned"
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": _RunsShell(marker)}, protocol=2))
    with pytest.raises(DataError, match=r"data_batch_3.*refusing to load (os|posix)\.system"):
        load_dataset("cifar10", folder)
    assert not marker.exists()


def test_truncated_and_malformed_batches_raise_data_error(tmp_path, tinydata):
    folder = tinydata.write_cifar10(tmp_path / "c10")
    batch = folder / "data_batch_1"
    batch.write_bytes(batch.read_bytes()[:-40])
    with pytest.raises(DataError, match="data_batch_1"):
        load_dataset("cifar10", folder)

    tinydata.write_cifar10(folder)
    tinydata.write_pickle(folder / "test_batch", {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]})
    with pytest.raises(DataError, match="test_batch.*3072"):
        load_dataset("cifar10", folder)

    tinydata.write_pickle(folder / "test_batch", {b"images": np.zeros((2, 3072), np.uint8)})
    with pytest.raises(DataError, match="test_batch.*'data'"):
        load_dataset("cifar10", folder)

    tinydata.write_pickle(folder / "test_batch", {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]})
    with pytest.raises(DataError, match="2 images but 1"):
        load_dataset("cifar10", folder)


def test_missing_cifar_names_the_paths_and_the_archive(tmp_path, monkeypatch):
    from prunequant.data import locate

    with pytest.raises(DataError) as err:
        load_dataset("cifar100", tmp_path)
    message = str(err.value)
    assert f"the data folder {tmp_path} holds no cifar100 data: expected train, test, meta" in message
    assert "cifar-100-python or cifar100 or cifar100/cifar-100-python" in message
    monkeypatch.setenv(locate.ENV_VAR, str(tmp_path))
    with pytest.raises(DataError) as err:
        load_dataset("cifar100")
    message = str(err.value)
    assert str(tmp_path / "cifar-100-python") in message and "cifar-100-python.tar.gz" in message


def test_augment_wraps_train_in_a_seeded_crop_and_flip(tmp_path, tinydata):
    tinydata.write_cifar10(tmp_path / "c10", per_batch=8)
    plain = load_dataset("cifar10", tmp_path / "c10")
    first = load_dataset("cifar10", tmp_path / "c10", augment=True)
    second = load_dataset("cifar10", tmp_path / "c10", augment=True)
    assert isinstance(first.train, RandomCropFlip) and len(first.train) == len(plain.train)
    views = [torch.stack([ds.train[i][0] for i in range(len(ds.train))]) for ds in (first, second)]
    assert torch.equal(views[0], views[1])
    assert not torch.equal(views[0], plain.train.tensors[0])
    with pytest.raises(ConfigError, match="augment"):
        load_dataset("cifar10", tmp_path / "c10", augment="yes")
