"""Keep counts (round_to, min_channels, grouped-conv blocks), global ranking, selection, and the options."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from prunequant.errors import ConfigError
from prunequant.models import build
from prunequant.pruning.structured import ChannelGroup, keep_count, prune_channels, prune_channels_
from prunequant.pruning.structured.allocation import global_keep, select_removed


@pytest.mark.parametrize(
    ("channels", "keep", "options", "expected"),
    [
        (16, 8.0, {}, 8),
        (16, 11.2, {"round_to": 8}, 8),  # nearest multiple of 8
        (16, 12.0, {"round_to": 8}, 16),
        (16, 2.0, {"min_channels": 4}, 4),
        (16, 2.0, {"round_to": 8, "min_channels": 4}, 8),
        (12, 5.0, {"blocks": 4}, 4),
        (12, 7.0, {"round_to": 2, "blocks": 3}, 6),
        (19, 19.0, {"round_to": 8}, 19),  # amount 0 never prunes, even off the grid
        (3, 1.0, {"min_channels": 8}, 3),
    ],
)
def test_keep_count(channels, keep, options, expected):
    assert keep_count(channels, keep, **options) == expected


def test_global_ranks_normalised_scores_across_groups():
    a, b = ChannelGroup("a", 4), ChannelGroup("b", 4)
    scores = {
        "a": torch.tensor([1.0, 1.0, 1.0, 1.0], dtype=torch.float64),  # normalised: all 1
        "b": torch.tensor([0.1, 0.2, 1.7, 2.0], dtype=torch.float64),  # normalised: 0.1 0.2 1.7 2.0
    }
    assert global_keep([a, b], scores, 0.25) == {"a": 4, "b": 2}
    assert global_keep([a, b], scores, 0.5) == {"a": 2, "b": 2}
    assert global_keep([a, b], scores, 0.5, min_channels=3) == {"a": 3, "b": 3}


def test_select_keeps_top_scores_per_block():
    scores = torch.tensor([0.5, 0.1, 0.9, 0.3, 0.2, 0.8])
    assert select_removed(scores, 3) == [1, 3, 4]
    assert select_removed(scores, 4, blocks=2) == [1, 4]
    assert select_removed(torch.ones(4), 2) == [2, 3]  # ties keep the lower index


def test_round_to_min_channels_and_global_on_a_resnet():
    model, x = build("resnet20", input_size=8), torch.randn(2, 3, 8, 8)
    result = prune_channels(model, x, 0.3, round_to=8, return_result=True)
    assert {plan.kept for plan in result.groups} == {8, 24, 48}  # 16*0.7=11.2 -> 8, 22.4 -> 24, 44.8 -> 48
    assert all(m.out_channels % 8 == 0 for m in result.model.modules() if isinstance(m, nn.Conv2d))
    result = prune_channels(model, x, 0.9, min_channels=6, return_result=True)
    assert min(plan.kept for plan in result.groups) == 6
    result = prune_channels(model, x, 0.5, allocation="global", return_result=True)
    total = sum(plan.channels for plan in result.groups)
    assert sum(plan.kept for plan in result.groups) == total - round(0.5 * total)
    assert len({plan.kept / plan.channels for plan in result.groups}) > 1  # not uniform


def test_ignored_layers_and_per_layer_amounts():
    model, x = build("resnet20", input_size=8), torch.randn(2, 3, 8, 8)
    result = prune_channels(
        model, x, 0.5, ignored_layers=["layer3.*"], per_layer={"layer2.*": 0.25}, return_result=True
    )
    plans = {plan.name: plan for plan in result.groups}
    assert not any(
        name.startswith("layer3") or "layer3.0.conv2" in plan.layers for name, plan in plans.items()
    )
    assert plans["layer2.1.conv1"].kept == 24 and plans["layer1.0.conv1"].kept == 8
    assert result.model.layer3[1].conv1.weight.shape == model.layer3[1].conv1.weight.shape
    # the stage-2 residual group feeds layer3.0, so it is left whole too; its inner groups still shrink
    assert "layer2.0.conv2" not in plans and result.model.layer3[0].conv1.in_channels == 32


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"amount": 1.5}, "amount must be in"),
        ({"amount": math.nan}, "amount must be in"),
        ({"amount": -0.1}, "amount must be in"),
        ({"amount": 0.5, "allocation": "magic"}, "allocation must be one of uniform, global, sensitivity"),
        ({"amount": 0.5, "round_to": 0}, "round_to must be an integer"),
        ({"amount": 0.5, "min_channels": 0}, "min_channels must be an integer"),
        ({"amount": 0.5, "per_layer": {"fc": 2.0}}, r"per_layer\['fc'\] must be in"),
        ({"amount": 0.5, "importance": "nope"}, "unknown importance 'nope'; choose one of"),
        ({"amount": 0.5, "importance": "apoz"}, "importance 'apoz' needs calibration data"),
    ],
)
def test_bad_options_raise_config_error(kwargs, message, tiny_model):
    with pytest.raises(ConfigError, match=message):
        prune_channels(tiny_model, torch.randn(1, 1, 8, 8), **kwargs)


def test_in_place_variant_and_meta(tiny_model):
    from prunequant.pruning.structured import ChannelPruneConfig

    result = prune_channels_(tiny_model, torch.randn(2, 1, 8, 8), ChannelPruneConfig(amount=0.5))
    assert (
        result.model is tiny_model and tiny_model.conv1.out_channels == 4 and tiny_model.fc.in_features == 8
    )
    meta = result.meta()
    assert meta["groups_pruned"] == 2 and meta["channels_removed"] == 12 and meta["importance"] == "l1"
    assert meta["groups"] == [
        {"name": "conv1", "channels": 8, "kept": 4},
        {"name": "conv2", "channels": 16, "kept": 8},
    ]
