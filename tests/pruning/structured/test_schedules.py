"""Schedules as Trainer callbacks: one-shot, stepwise (cubic ramp), layerwise, from scratch; slimming."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from prunequant.pruning.structured import (
    BNSparsity,
    ChannelPruneConfig,
    LayerwisePruning,
    OneShotPruning,
    StepwisePruning,
    recalibrate_bn,
    reinitialize,
)
from prunequant.training import TrainConfig, Trainer

X = torch.randn(2, 1, 8, 8)


def trainer(model, loaders, callbacks, epochs=2, **config):
    options = {
        "epochs": epochs,
        "lr": 0.05,
        "max_batches_per_epoch": 4,
        "lr_schedule": "step",
        "step_size": 1,
    }
    return Trainer(model, *loaders, TrainConfig(**{**options, **config}), callbacks)


def optimizer_params(t: Trainer) -> set[int]:
    return {id(p) for group in t.optimizer.param_groups for p in group["params"]}


def test_one_shot_prunes_in_place_and_rebuilds_the_optimizer(tiny_model, blob_loaders):
    callback = OneShotPruning(X, ChannelPruneConfig(amount=0.5))
    t = trainer(tiny_model, blob_loaders, [callback])
    history = t.fit()
    assert tiny_model.conv1.out_channels == 4 and tiny_model.conv2.out_channels == 8
    assert optimizer_params(t) == {id(p) for p in tiny_model.parameters()}
    assert t.optimizer.param_groups[0]["lr"] == pytest.approx(0.05 * 0.1**2)  # step schedule carried on
    assert len(history) == 2 and len(callback.results) == 1


def test_stepwise_follows_the_cubic_ramp(tiny_model, blob_loaders):
    callback = StepwisePruning(X, ChannelPruneConfig(amount=0.5), steps=4, frequency=2, start_step=1)
    assert [callback.amount_at(s) for s in (0, 1, 3, 5, 9, 20)] == pytest.approx(
        [0.0, 0.0, 0.5 * (1 - 0.75**3), 0.5 * (1 - 0.5**3), 0.5, 0.5]
    )
    t = trainer(tiny_model, blob_loaders, [callback], epochs=3)
    t.fit()
    # prunes after steps 1, 3, 5, 7, 9 (ramp end); 16 channels keep 16, 11.4 -> 11, 9.0, 8.1 -> 8, 8
    kept = [result.groups[1].kept for result in callback.results]
    assert kept == [16, 11, 9, 8, 8]
    assert tiny_model.conv2.out_channels == 8 and tiny_model.conv1.out_channels == 4
    assert optimizer_params(t) == {id(p) for p in tiny_model.parameters()}


def test_layerwise_prunes_one_group_per_interval_in_forward_order(tiny_model, blob_loaders):
    callback = LayerwisePruning(X, ChannelPruneConfig(amount=0.5, importance="activation_l1"), interval=3)
    trainer(tiny_model, blob_loaders, [callback], epochs=2).fit()  # 8 steps: prunes after step 3 and 6
    assert callback.done == ["conv1", "conv2"]
    assert [len(r.groups[0].removed) + len(r.groups[1].removed) for r in callback.results] == [4, 8]
    assert tiny_model.conv1.out_channels == 4 and tiny_model.conv2.out_channels == 8


def test_reinitialize_keeps_shape_and_draws_new_weights(tiny_model):
    fresh = reinitialize(tiny_model, seed=3)
    again = reinitialize(tiny_model, seed=3)
    assert [p.shape for p in fresh.parameters()] == [p.shape for p in tiny_model.parameters()]
    assert not torch.equal(fresh.conv1.weight, tiny_model.conv1.weight)
    assert all(torch.equal(a, b) for a, b in zip(fresh.parameters(), again.parameters(), strict=True))


def test_bn_sparsity_adds_signed_penalty_to_gamma_gradients(tiny_model, blob_loaders):
    with torch.no_grad():
        tiny_model.bn1.weight.copy_(torch.tensor([1.0, -1.0, 2.0, -0.5, 1.0, 1.0, 1.0, 1.0]))
    t = trainer(tiny_model, blob_loaders, [])
    for p in tiny_model.parameters():
        p.grad = torch.zeros_like(p)
    BNSparsity(0.1, layers=["bn1"]).on_after_backward(t)
    assert torch.equal(tiny_model.bn1.weight.grad, 0.1 * torch.tensor([1.0, -1.0, 1.0, -1.0, 1, 1, 1, 1]))
    assert torch.equal(tiny_model.bn2.weight.grad, torch.zeros(16))


def test_bn_sparsity_training_shrinks_gamma(tiny_model_class, blob_loaders):
    def mean_gamma(penalty):
        torch.manual_seed(0)
        model = tiny_model_class()
        callbacks = [BNSparsity(penalty)] if penalty else []
        trainer(model, blob_loaders, callbacks, epochs=2, weight_decay=0.0).fit()
        return torch.cat([m.weight.abs() for m in model.modules() if isinstance(m, nn.BatchNorm2d)]).mean()

    assert mean_gamma(0.05) < mean_gamma(0.0) - 0.01


def test_recalibrate_bn_sets_running_stats_to_the_data_statistics():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.Dropout(0.5), nn.Linear(6, 2))
    batches = [torch.randn(4, 1, 8, 8) for _ in range(3)]
    ignored = (torch.full((4, 1, 8, 8), 1e6), None)  # past max_batches
    recalibrate_bn(model, [(b, None) for b in batches] + [ignored], max_batches=3)
    with torch.no_grad():
        outputs = [model[0](b) for b in batches]
    expected_mean = torch.stack([o.mean((0, 2, 3)) for o in outputs]).mean(0)
    expected_var = torch.stack([o.var((0, 2, 3), unbiased=True) for o in outputs]).mean(0)
    torch.testing.assert_close(model[1].running_mean, expected_mean)
    torch.testing.assert_close(model[1].running_var, expected_var)
    assert model[1].momentum == 0.1 and not model.training and model[1].num_batches_tracked == 3
