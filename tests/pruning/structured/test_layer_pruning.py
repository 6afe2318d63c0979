"""Layer pruning: identity residual blocks are found, ranked by BN gamma, become nn.Identity, reload."""

from __future__ import annotations

import pytest
import torch

from prunequant.errors import ConfigError
from prunequant.models import build, load_checkpoint, save_checkpoint
from prunequant.pruning.structured import prune_layers, residual_blocks


def test_finds_identity_blocks_only():
    x = torch.randn(2, 3, 8, 8)
    names = ["layer1.0", "layer1.1", "layer1.2", "layer2.1", "layer2.2", "layer3.1", "layer3.2"]
    assert residual_blocks(build("resnet20", input_size=8), x) == names  # stage-first blocks have projections
    mobile = residual_blocks(build("mobilenetv2", input_size=8), x)
    assert mobile == ["features.3", "features.5", "features.6", "features.8", "features.9", "features.10",
                      "features.12", "features.13", "features.15", "features.16"]  # fmt: skip
    assert residual_blocks(build("vgg11", input_size=8), x) == []


def test_removes_lowest_gamma_blocks_and_reloads(tmp_path):
    torch.manual_seed(0)
    model = build("resnet56", input_size=8).eval()
    x = torch.randn(2, 3, 8, 8)
    gammas = {"layer1.4": 0.01, "layer2.7": 0.02, "layer3.3": 0.03, "layer1.1": 0.04, "layer3.8": 0.5}
    with torch.no_grad():
        for name, gamma in gammas.items():
            model.get_submodule(name).bn2.weight.fill_(gamma)
    result = prune_layers(model, x, 4, return_result=True)
    assert result.removed_blocks == ("layer1.1", "layer1.4", "layer2.7", "layer3.3")
    assert result.scores["layer3.8"] == pytest.approx(0.5)
    assert isinstance(result.model.layer2[7], torch.nn.Identity)
    assert not isinstance(model.layer2[7], torch.nn.Identity)  # the original is untouched
    params = sum(p.numel() for p in result.model.parameters())
    removed = sum(p.numel() for name in result.removed_blocks for p in model.get_submodule(name).parameters())
    assert params == sum(p.numel() for p in model.parameters()) - removed
    reloaded, _ = load_checkpoint(save_checkpoint(result.model, tmp_path / "short.pt", pruning=result.meta()))
    with torch.no_grad():
        assert torch.equal(reloaded(x), result.model(x))


def test_removing_a_block_equals_zeroing_its_branch():
    """With the last BN zeroed the block computes relu(0 + x) = x for its non-negative input."""
    torch.manual_seed(0)
    model = build("resnet20", input_size=8).eval()
    with torch.no_grad():
        model.layer2[1].bn2.weight.zero_()
        model.layer2[1].bn2.bias.zero_()
    x = torch.randn(2, 3, 8, 8)
    result = prune_layers(model, x, 1, return_result=True)
    assert result.removed_blocks == ("layer2.1",)
    with torch.no_grad():
        torch.testing.assert_close(result.model(x), model(x))


def test_bad_block_count_and_criterion():
    model, x = build("resnet20", input_size=8), torch.randn(1, 3, 8, 8)
    with pytest.raises(ConfigError, match=r"blocks must be an integer in 0\.\.7"):
        prune_layers(model, x, 8)
    with pytest.raises(ConfigError, match="importance must be one of bn_gamma, l1, random"):
        prune_layers(model, x, 1, importance="apoz")
    shorter = prune_layers(model, x, 2, importance="l1")
    assert sum(type(m).__name__ == "BasicBlock" for m in shorter.modules()) == 9 - 2
