"""Percentile magnitude pruning: exact counts per scope, overrides, exclusions, and input validation."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from prunequant.errors import ConfigError
from prunequant.pruning.unstructured import UnstructuredConfig, get_masks, prune_unstructured


def test_layer_scope_zeros_exactly_round_p_n_in_every_layer(tiny, tiny_model):
    result = prune_unstructured(tiny_model, 0.3, "layer")
    expected = {"conv1.weight": 22, "conv2.weight": 346, "fc.weight": 19}  # round(0.3 * 72/1152/64)
    assert {name: tiny.zeros(t) for name, t in tiny.weights(tiny_model).items()} == expected
    assert result.pruned == 22 + 346 + 19 and result.total == 1288
    assert result.layers["conv1.weight"] == pytest.approx(22 / 72)


def test_global_scope_total_matches_while_layers_differ(tiny, tiny_model):
    original = {name: t.clone() for name, t in tiny.weights(tiny_model).items()}
    result = prune_unstructured(tiny_model, 0.3, "global")
    counts = {name: tiny.zeros(t) for name, t in tiny.weights(tiny_model).items()}
    assert sum(counts.values()) == round(0.3 * 1288) == 386
    assert result.sparsity == pytest.approx(386 / 1288)
    fractions = [counts[name] / tiny.numels[name] for name in counts]
    assert max(fractions) - min(fractions) > 0.05  # the global percentile hits layers unevenly
    threshold = max(original[name][~mask].abs().max() for name, mask in result.masks.items())
    kept_min = min(t[t != 0].abs().min() for t in tiny.weights(tiny_model).values())
    assert threshold <= kept_min  # every zeroed weight was no larger than every kept one


def test_pruned_entries_are_the_smallest_magnitudes(tiny_model):
    before = tiny_model.conv2.weight.detach().clone()
    prune_unstructured(tiny_model, 0.5, "layer")
    mask = tiny_model.conv2.weight.detach() != 0
    assert before.abs()[~mask].max() <= before.abs()[mask].min()


def test_amount_zero_changes_nothing_bit_for_bit(tiny_model):
    x = torch.randn(5, 1, 8, 8)
    tiny_model.eval()
    reference = copy.deepcopy(tiny_model)
    result = prune_unstructured(tiny_model, 0.0, "global", include_bias=True)
    assert result.pruned == 0
    for key, value in reference.state_dict().items():
        assert torch.equal(value, tiny_model.state_dict()[key])
    assert torch.equal(reference(x), tiny_model(x))


@pytest.mark.parametrize("amount", [1.0, -0.1, float("nan"), 1.5, "half"])
def test_amount_outside_unit_interval_is_a_config_error(tiny_model, amount):
    with pytest.raises(ConfigError, match="amount"):
        prune_unstructured(tiny_model, amount)
    assert not get_masks(tiny_model)


def test_bad_scope_is_rejected(tiny_model):
    with pytest.raises(ConfigError, match="scope must be one of global, layer"):
        prune_unstructured(tiny_model, 0.5, "network")


def test_include_bias_prunes_biases_too(tiny, tiny_model):
    result = prune_unstructured(tiny_model, 0.5, "layer", include_bias=True)
    assert tiny.zeros(tiny_model.conv2.bias) == 8 and tiny.zeros(tiny_model.fc.bias) == 2
    assert "conv1.bias" in result.layers and result.total == 1288 + 8 + 16 + 4


def test_keep_first_last_is_reported_and_leaves_them_dense(tiny, tiny_model):
    result = prune_unstructured(tiny_model, 0.5, "global", keep_first_last=True)
    assert result.kept == ["conv1", "fc"]
    assert tiny.zeros(tiny_model.conv1.weight) == 0 and tiny.zeros(tiny_model.fc.weight) == 0
    assert tiny.zeros(tiny_model.conv2.weight) == 576 and result.to_dict()["keep_first_last"] is True


def test_exclude_and_overrides_by_pattern(tiny, tiny_model):
    result = prune_unstructured(tiny_model, 0.5, "global", exclude="conv1", overrides={"f*": 0.25})
    assert result.excluded == ["conv1.weight"] and tiny.zeros(tiny_model.conv1.weight) == 0
    assert tiny.zeros(tiny_model.fc.weight) == 16  # its own amount, ranked alone
    assert tiny.zeros(tiny_model.conv2.weight) == 576  # the global pool is now conv2 alone


def test_later_override_wins_and_parameter_names_match(tiny, tiny_model):
    result = prune_unstructured(
        tiny_model, 0.0, include_bias=True, exclude=["*.bias"], overrides={"*": 0.5, "fc": 0.75}
    )
    assert result.excluded == ["conv1.bias", "conv2.bias", "fc.bias"]
    assert tiny.zeros(tiny_model.fc.weight) == 48 and tiny.zeros(tiny_model.conv1.weight) == 36


def test_pattern_matching_nothing_is_an_error(tiny_model):
    with pytest.raises(ConfigError, match="'conv9' matches no conv/linear layer"):
        prune_unstructured(tiny_model, 0.5, exclude=["conv9"])


def test_masks_only_grow_when_pruning_again(tiny, tiny_model):
    first = prune_unstructured(tiny_model, 0.5, "layer")
    old = {name: mask.clone() for name, mask in first.masks.items()}
    second = prune_unstructured(tiny_model, 0.75, "layer")
    for name, mask in second.masks.items():
        assert not (mask & ~old[name]).any()  # nothing pruned before is revived
        assert int((~mask).sum()) == round(0.75 * tiny.numels[name])
    third = prune_unstructured(tiny_model, 0.25, "layer")  # lower: the masks stay as they are
    assert third.sparsity == pytest.approx(second.sparsity)


def test_config_is_frozen_and_validated():
    config = UnstructuredConfig(0.5, overrides={"fc": 0.1})
    with pytest.raises(AttributeError):
        config.amount = 0.2  # type: ignore[misc]
    with pytest.raises(ConfigError, match=r"overrides\['fc'\]"):
        UnstructuredConfig(0.5, overrides={"fc": math.inf})
    assert config.with_amount(0.7).overrides == {"fc": 0.1}
