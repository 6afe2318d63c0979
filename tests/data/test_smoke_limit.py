"""$PRUNEQUANT_LIMIT caps every dataset (smoke runs), says so, and refuses a bad value."""

import pytest

from prunequant.data import load_dataset
from prunequant.data.registry import smoke_limit
from prunequant.errors import ConfigError


def test_unset_leaves_the_callers_limit(monkeypatch):
    monkeypatch.delenv("PRUNEQUANT_LIMIT", raising=False)
    assert smoke_limit(None) is None and smoke_limit(50) == 50


def test_the_variable_caps_and_warns(monkeypatch):
    monkeypatch.setenv("PRUNEQUANT_LIMIT", "40")
    with pytest.warns(UserWarning, match="smoke run"):
        assert smoke_limit(None) == 40
    with pytest.warns(UserWarning):
        assert smoke_limit(10) == 10
    with pytest.warns(UserWarning):
        splits = load_dataset("synthetic")
    assert len(splits.train) + len(splits.val) == 40


@pytest.mark.parametrize("value", ["abc", "0", "-3", "1.5"])
def test_a_bad_value_is_one_clear_error(monkeypatch, value):
    monkeypatch.setenv("PRUNEQUANT_LIMIT", value)
    with pytest.raises(ConfigError, match="PRUNEQUANT_LIMIT"):
        smoke_limit(None)
