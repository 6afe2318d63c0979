import pytest
import torch

from prunequant.data import Loaders, load_dataset, make_loaders
from prunequant.errors import ConfigError


@pytest.fixture(scope="module")
def splits():
    return load_dataset("synthetic", size=100, input_shape=(1, 4, 4))


def labels_in_order(loader) -> list[int]:
    return torch.cat([labels for _, labels in loader]).tolist()


def test_batches_and_batch_sizes(splits):
    loaders = make_loaders(splits, batch_size=32, eval_batch_size=7)
    assert isinstance(loaders, Loaders)
    assert [len(x) for x, _ in loaders.train] == [32, 32, 26]
    assert [len(x) for x, _ in loaders.test] == [7, 7, 7, 4]
    assert loaders.val.batch_size == 7 and loaders.train.num_workers == 0


def test_the_seed_fixes_the_train_order_and_evaluation_is_not_shuffled(splits):
    first, again, other = (make_loaders(splits, 16, seed=s) for s in (1, 1, 2))
    assert labels_in_order(first.train) == labels_in_order(again.train)
    assert labels_in_order(first.train) != labels_in_order(other.train)
    assert labels_in_order(first.test) == splits.test.tensors[1].tolist()


@pytest.mark.parametrize("kwargs", [{"batch_size": 0}, {"eval_batch_size": -1}, {"seed": -5}])
def test_bad_loader_arguments_raise_config_error(splits, kwargs):
    with pytest.raises(ConfigError):
        make_loaders(splits, **kwargs)
