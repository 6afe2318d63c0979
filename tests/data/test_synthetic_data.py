import pytest
import torch

from prunequant.data import load_dataset
from prunequant.errors import ConfigError


def test_shapes_sizes_and_classes():
    splits = load_dataset("synthetic", num_classes=4, input_shape=(2, 5, 7), size=80, val_fraction=0.25)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (60, 20, 20)
    assert splits.input_shape == (2, 5, 7) and splits.classes == ("0", "1", "2", "3")
    images, labels = splits.train.tensors
    assert images.dtype == torch.float32 and labels.dtype == torch.int64 and labels.max() < 4


def test_deterministic_per_seed():
    first, again, other = (load_dataset("synthetic", size=64, seed=s).test.tensors[0] for s in (5, 5, 6))
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_a_nearest_class_mean_classifier_learns_it():
    splits = load_dataset("synthetic", size=512)
    images, labels = splits.train.tensors
    centroids = torch.stack([images[labels == k].mean(0) for k in range(splits.num_classes)]).flatten(1)
    test_images, test_labels = splits.test.tensors
    predicted = torch.cdist(test_images.flatten(1), centroids).argmin(1)
    assert (predicted == test_labels).float().mean() > 0.9


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"input_shape": (3, 32)}, "input_shape"),
        ({"num_classes": 1}, "num_classes"),
        ({"size": 0}, "size"),
        ({"noise": -1.0}, "noise"),
    ],
)
def test_bad_options_raise_config_error(options, field):
    with pytest.raises(ConfigError, match=field):
        load_dataset("synthetic", **options)
