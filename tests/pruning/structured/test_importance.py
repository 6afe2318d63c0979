"""Importance criteria on hand-built cases with known answers; combination of coupled layers; the registry."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from prunequant.errors import ConfigError
from prunequant.pruning.structured import ImportanceContext, available_importances, dependency_groups
from prunequant.pruning.structured.calibration import collect_activation_stats
from prunequant.pruning.structured.importance import group_scores


def conv_bn_model() -> nn.Sequential:
    """conv(1->4, 1x1) with filter weights 1, -3, 2, 0.5 -> BN(gamma 0.1, -2, 0.5, 1) -> ReLU -> conv."""
    model = nn.Sequential(nn.Conv2d(1, 4, 1, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([1.0, -3.0, 2.0, 0.5]).view(4, 1, 1, 1))
        model[1].weight.copy_(torch.tensor([0.1, -2.0, 0.5, 1.0]))
    return model.eval()


def scores(model: nn.Module, x: torch.Tensor, name: str, group: str = "0", loader=None, seed: int = 0):
    graph = dependency_groups(model, x)
    groups = graph.prunable
    context = ImportanceContext(model, groups, loader, calib_batches=8, seed=seed)
    return group_scores(name, graph.group(group), context)


def test_l1_and_l2_are_filter_norms_over_their_mean():
    model = conv_bn_model()
    x = torch.randn(1, 1, 4, 4)
    expected = torch.tensor([1.0, 3.0, 2.0, 0.5], dtype=torch.float64)
    torch.testing.assert_close(scores(model, x, "l1"), expected / expected.mean())
    model = nn.Sequential(nn.Conv2d(2, 4, 1, bias=False), nn.ReLU(), nn.Conv2d(4, 2, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[3.0, 4.0], [0, 1], [6, 8], [1, 0]]).view(4, 2, 1, 1))
    l2 = torch.tensor([5.0, 1.0, 10.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(scores(model, torch.randn(1, 2, 4, 4), "l2"), l2 / l2.mean())


def test_bn_gamma_is_abs_gamma_and_falls_back_to_l1_without_bn():
    model = conv_bn_model()
    gamma = torch.tensor([0.1, 2.0, 0.5, 1.0], dtype=torch.float64)
    torch.testing.assert_close(scores(model, torch.randn(1, 1, 4, 4), "bn_gamma"), gamma / gamma.mean())
    no_bn = nn.Sequential(model[0], nn.ReLU(), nn.Conv2d(4, 2, 1))
    torch.testing.assert_close(
        scores(no_bn, torch.randn(1, 1, 4, 4), "bn_gamma"), scores(no_bn, torch.randn(1, 1, 4, 4), "l1")
    )


class TwoProducers(nn.Module):
    """Residual add of two 1x1 convs: their filter norms are normalised separately, then summed."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(1, 3, 1, bias=False), nn.Conv2d(1, 3, 1, bias=False)
        self.out = nn.Conv2d(3, 2, 1)
        with torch.no_grad():
            self.a.weight.copy_(torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1, 1))
            self.b.weight.copy_(torch.tensor([30.0, 20.0, 10.0]).view(3, 1, 1, 1))

    def forward(self, x):
        return self.out(self.a(x) + self.b(x))


def test_group_combines_normalised_scores_of_coupled_layers():
    result = scores(TwoProducers(), torch.randn(1, 1, 2, 2), "l1", group="a")
    expected = torch.tensor([1.0, 2.0, 3.0]) / 2.0 + torch.tensor([30.0, 20.0, 10.0]) / 20.0
    torch.testing.assert_close(result, expected.double())
    assert result[0] == result[2]  # neither layer alone decides: both say the opposite


def relu_mlp() -> nn.Sequential:
    """fc1 = identity on 4 features -> ReLU -> fc2: the ReLU outputs are exactly the positive inputs."""
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 3))
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(4))
        model[0].bias.zero_()
    return model.eval()


BATCHES = [
    (torch.tensor([[1.0, -1.0, 2.0, -1.0]]), torch.tensor([0])),
    (torch.tensor([[-1.0, -1.0, 3.0, 1.0]]), torch.tensor([2])),
]  # after ReLU: [1, 0, 2, 0] and [0, 0, 3, 1]


def test_apoz_is_share_of_zeros_after_relu():
    result = scores(relu_mlp(), torch.randn(2, 4), "apoz", loader=BATCHES)
    apoz = torch.tensor([0.5, 1.0, 0.0, 0.5])
    torch.testing.assert_close(result, ((1 - apoz) / (1 - apoz).mean()).double())


def test_activation_l1_is_moving_average_of_mean_abs():
    result = scores(relu_mlp(), torch.randn(2, 4), "activation_l1", loader=BATCHES)
    mean_abs = torch.tensor([0.5, 0.0, 2.5, 0.5])
    torch.testing.assert_close(result, (mean_abs / mean_abs.mean()).double())
    stats = collect_activation_stats(relu_mlp(), ["2"], BATCHES * 2, max_batches=3)
    torch.testing.assert_close(
        stats.l1["2"], torch.tensor([2 / 3, 0.0, 7 / 3, 1 / 3])
    )  # (1 + 0 + 1) / 3, ...
    assert stats.batches == 3


def test_taylor_is_mean_abs_activation_times_gradient():
    model = relu_mlp()
    inputs = torch.cat([b[0] for b in BATCHES])
    targets = torch.cat([b[1] for b in BATCHES])
    hidden = torch.relu(model[0](inputs)).detach().requires_grad_()
    F.cross_entropy(model[2](hidden), targets, reduction="mean").backward()
    per_batch = (hidden * hidden.grad).abs() * 2  # each batch of one sample sees the mean over 1, not 2
    expected = per_batch.mean(0).double()
    result = scores(model, torch.randn(2, 4), "taylor", loader=BATCHES)
    torch.testing.assert_close(result, expected / expected.mean())
    assert all(p.grad is None for p in model.parameters())


def test_data_driven_criteria_need_a_loader():
    with pytest.raises(ConfigError, match="calib_loader"):
        scores(relu_mlp(), torch.randn(2, 4), "apoz")
    with pytest.raises(ConfigError, match="carry no target"):
        scores(relu_mlp(), torch.randn(2, 4), "taylor", loader=[torch.randn(2, 4)])


def test_random_is_seeded():
    model, x = relu_mlp(), torch.randn(2, 4)
    assert torch.equal(scores(model, x, "random", seed=1), scores(model, x, "random", seed=1))
    assert not torch.equal(scores(model, x, "random", seed=1), scores(model, x, "random", seed=2))


def test_registry_lists_every_criterion_and_rejects_unknown():
    assert available_importances() == ["activation_l1", "apoz", "bn_gamma", "l1", "l2", "random", "taylor"]
    with pytest.raises(
        ConfigError, match="unknown importance 'fisher'; choose one of activation_l1, apoz, bn_gamma"
    ):
        scores(relu_mlp(), torch.randn(2, 4), "fisher")
