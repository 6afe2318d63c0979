import numpy as np
import pytest
import torch

from prunequant.data.splits import RawDataset, build_splits
from prunequant.errors import ConfigError, DataError


def numbered(n_train: int, n_test: int | None = None) -> RawDataset:
    """Images whose single pixel is their own index (test indices offset by 1000), mean 0 / std 1."""
    train = np.arange(n_train, dtype=np.float32).reshape(-1, 1, 1, 1)
    test = None if n_test is None else np.arange(1000, 1000 + n_test, dtype=np.float32).reshape(-1, 1, 1, 1)
    return RawDataset(
        train_images=train,
        train_labels=np.arange(n_train) % 3,
        classes=("a", "b", "c"),
        test_images=test,
        test_labels=None if n_test is None else np.arange(1000, 1000 + n_test) % 3,
        mean=(0.0,),
        std=(1.0,),
    )


def ids(dataset) -> set[int]:
    return set(dataset.tensors[0].flatten().long().tolist())


def split(raw: RawDataset, *, val_fraction=0.1, seed=0, limit=None):
    return build_splits("numbered", raw, val_fraction=val_fraction, seed=seed, limit=limit)


def test_validation_is_carved_from_train_without_overlap():
    splits = split(numbered(100, 40), val_fraction=0.2)
    train, val = ids(splits.train), ids(splits.val)
    assert (len(train), len(val)) == (80, 20) and not train & val and train | val == set(range(100))
    assert ids(splits.test) == set(range(1000, 1040))


def test_labels_travel_with_their_images():
    splits = split(numbered(30, 9))
    for dataset in (splits.train, splits.val, splits.test):
        images, labels = dataset.tensors
        assert torch.equal(images.flatten().long() % 3, labels) and labels.dtype == torch.int64


def test_the_seed_fixes_the_split():
    same = [ids(split(numbered(100), seed=3).val) for _ in range(2)]
    other = ids(split(numbered(100), seed=4).val)
    assert same[0] == same[1] and same[0] != other


def test_limit_caps_the_training_pool_and_the_test_split_in_proportion():
    splits = split(numbered(1000, 200), limit=100)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (90, 10, 20)
    assert ids(splits.test) <= set(range(1000, 1200))
    assert len(split(numbered(50, 10), limit=500).train) == 45


def test_without_a_test_split_one_is_carved_from_train():
    splits = split(numbered(100), val_fraction=0.25)
    train, val, test = ids(splits.train), ids(splits.val), ids(splits.test)
    assert (len(train), len(val), len(test)) == (60, 20, 20)
    assert train | val | test == set(range(100)) and not (train & test or val & test)


def test_mean_and_std_are_computed_from_train_when_not_given():
    rng = np.random.default_rng(0)
    raw = RawDataset(
        rng.integers(0, 256, (200, 2, 3, 3), dtype=np.uint8), rng.integers(0, 2, 200), ("x", "y")
    )
    images = split(raw).train.tensors[0]
    assert torch.allclose(images.mean(dim=(0, 2, 3)), torch.zeros(2), atol=1e-5)
    assert torch.allclose(images.std(dim=(0, 2, 3), unbiased=False), torch.ones(2), atol=1e-4)


def test_too_few_samples_for_the_validation_fraction_is_a_config_error():
    with pytest.raises(ConfigError, match="val_fraction=0.9 of 2 training samples"):
        split(numbered(10, 2), val_fraction=0.9, limit=2)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            RawDataset(np.zeros((4, 1, 2, 2), np.uint8), np.array([0, 1, 2, 0]), ("a", "b")),
            "labels span 0..2",
        ),
        (RawDataset(np.zeros((4, 1, 2, 2), np.uint8), np.array([0, 1]), ("a", "b")), "4 images but labels"),
        (RawDataset(np.zeros((4, 2, 2), np.uint8), np.zeros(4, int), ("a",)), "N,C,H,W"),
        (RawDataset(np.zeros((4, 1, 2, 2), np.int32), np.zeros(4, int), ("a",)), "uint8 or float"),
        (
            RawDataset(
                np.zeros((4, 1, 2, 2), np.uint8),
                np.zeros(4, int),
                ("a",),
                np.zeros((2, 1, 3, 3)),
                np.zeros(2, int),
            ),
            "test images are",
        ),
        (RawDataset(np.zeros((4, 1, 2, 2), np.uint8), np.zeros(4, int), ("a",), mean=(0.5, 0.5)), "mean/std"),
    ],
)
def test_inconsistent_raw_data_raises_data_error(raw, message):
    with pytest.raises(DataError, match=message):
        split(raw)
