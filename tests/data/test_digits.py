import sys

import pytest

from prunequant.data import load_dataset
from prunequant.errors import DataError


def test_digits_are_1x8x8_with_a_carved_test_split():
    pytest.importorskip("sklearn")
    splits = load_dataset("digits", test_fraction=0.2)
    assert splits.input_shape == (1, 8, 8) and splits.num_classes == 10
    assert len(splits.test) == 359 and len(splits.train) + len(splits.val) == 1797 - 359
    assert abs(splits.train.tensors[0].mean().item()) < 1e-4


def test_missing_scikit_learn_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(DataError, match="pip install scikit-learn"):
        load_dataset("digits")
