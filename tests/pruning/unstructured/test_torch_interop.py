"""Agreement and round trips with torch.nn.utils.prune: identical masks, conversion both ways."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from prunequant.models import build
from prunequant.pruning.unstructured import (
    from_torch_prune,
    get_masks,
    is_torch_pruned,
    make_permanent,
    prune_unstructured,
    sparsity_report,
    to_torch_prune,
)


@pytest.fixture
def lenet() -> nn.Module:
    torch.manual_seed(3)
    return build("lenet5", num_classes=10, in_channels=1, input_size=28)


def _layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


@pytest.mark.parametrize("amount", [0.1, 0.37, 0.5, 0.9])
def test_layer_scope_masks_identical_to_l1_unstructured(lenet, amount):
    theirs = copy.deepcopy(lenet)
    for _, module in _layers(theirs):
        torch_prune.l1_unstructured(module, "weight", amount)
    masks = prune_unstructured(lenet, amount, "layer").masks
    for name, module in _layers(theirs):
        assert torch.equal(masks[f"{name}.weight"], module.weight_mask.bool()), name


@pytest.mark.parametrize("amount", [0.2, 0.5, 0.8])
def test_global_scope_masks_identical_to_global_unstructured(lenet, amount):
    theirs = copy.deepcopy(lenet)
    torch_prune.global_unstructured(
        [(m, "weight") for _, m in _layers(theirs)], pruning_method=torch_prune.L1Unstructured, amount=amount
    )
    masks = prune_unstructured(lenet, amount, "global").masks
    for name, module in _layers(theirs):
        assert torch.equal(masks[f"{name}.weight"], module.weight_mask.bool()), name


def test_ties_are_broken_like_torch(tiny_model):
    with torch.no_grad():
        tiny_model.conv2.weight.copy_(torch.randint(-3, 4, tiny_model.conv2.weight.shape).float())
    theirs = copy.deepcopy(tiny_model)
    torch_prune.l1_unstructured(theirs.conv2, "weight", 0.4)
    masks = prune_unstructured(tiny_model, 0.4, "layer").masks
    assert torch.equal(masks["conv2.weight"], theirs.conv2.weight_mask.bool())


def test_from_torch_prune_converts_reparametrisation(lenet):
    torch_prune.l1_unstructured(lenet.fc1, "weight", 0.6)
    expected_mask = lenet.fc1.weight_mask.bool().clone()
    expected_weight = lenet.fc1.weight.detach().clone()
    assert is_torch_pruned(lenet) and sparsity_report(lenet).masked == ["fc1.weight"]
    from_torch_prune(lenet)
    assert not is_torch_pruned(lenet)
    assert isinstance(lenet.fc1.weight, nn.Parameter) and "fc1.weight_orig" not in lenet.state_dict()
    assert torch.equal(get_masks(lenet)["fc1.weight"], expected_mask)
    assert torch.equal(lenet.fc1.weight, expected_weight)


def test_to_torch_prune_round_trip(lenet):
    x = torch.randn(2, 1, 28, 28)
    ours = prune_unstructured(lenet, 0.5, "global").masks
    ours = {name: mask.clone() for name, mask in ours.items()}
    lenet.eval()
    out = lenet(x)
    to_torch_prune(lenet)
    assert not get_masks(lenet) and torch_prune.is_pruned(lenet)
    assert torch.equal(lenet.conv2.weight_mask, ours["conv2.weight"].float())
    assert torch.equal(lenet(x), out)
    from_torch_prune(lenet)
    assert all(torch.equal(get_masks(lenet)[name], mask) for name, mask in ours.items())


def test_prune_unstructured_reads_torch_pruned_model_and_make_permanent_bakes(lenet):
    torch_prune.l1_unstructured(lenet.fc1, "weight", 0.5)
    prune_unstructured(lenet, 0.75, "layer")  # converts first; the old mask is kept (masks only grow)
    assert not is_torch_pruned(lenet)
    assert sparsity_report(lenet).layers["fc1.weight"] == pytest.approx(0.75, abs=1e-4)
    make_permanent(lenet)
    assert not get_masks(lenet) and set(lenet.state_dict()) == set(
        build("lenet5", in_channels=1, input_size=28, num_classes=10).state_dict()
    )


def test_torch_prune_reads_our_pruned_model(lenet):
    masks = {name: mask.clone() for name, mask in prune_unstructured(lenet, 0.6, "layer").masks.items()}
    make_permanent(lenet)
    torch_prune.l1_unstructured(lenet.conv2, "weight", 0.6)  # the baked zeros are its lowest magnitudes
    assert torch.equal(lenet.conv2.weight_mask.bool(), masks["conv2.weight"])
