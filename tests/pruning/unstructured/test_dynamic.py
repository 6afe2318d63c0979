"""Dynamic threshold: accepts steps within the accuracy budget, backs off (halves) and restores otherwise."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from prunequant.errors import ConfigError
from prunequant.pruning.unstructured import UnstructuredConfig, dynamic_prune, get_masks, sparsity_report
from prunequant.training import TrainConfig, Trainer, evaluate


@pytest.fixture
def trained(tiny_model, blob_loaders):
    train, val = blob_loaders
    Trainer(tiny_model, train, val, TrainConfig(epochs=3, lr=0.05)).fit()
    return tiny_model, SimpleNamespace(train=train, val=val)


def _check_walk(result, step):
    """Each attempt is the last accepted sparsity plus the step, below any failed one; failures halve it."""
    current, lowest_rejected = 0.0, 2.0
    for attempt in result.history:
        while min(current + step, 0.95) >= lowest_rejected - 1e-9:
            step /= 2
        assert attempt.sparsity == pytest.approx(min(current + step, 0.95))
        assert attempt.accepted == (result.baseline_top1 - attempt.val_top1 <= 0.05 + 1e-12)
        if attempt.accepted:
            current = attempt.sparsity
        else:
            lowest_rejected, step = attempt.sparsity, step / 2
    assert result.sparsity == pytest.approx(current)


def test_post_training_dynamic_respects_budget_and_restores(trained):
    model, loaders = trained
    result = dynamic_prune(
        model, loaders, budget=0.05, step=0.4, min_step=0.05, finetune=TrainConfig(epochs=0)
    )
    assert any(not attempt.accepted for attempt in result.history)  # it had to back off
    _check_walk(result, 0.4)
    assert result.baseline_top1 - result.top1 <= 0.05
    assert evaluate(model, loaders.val).top1 == pytest.approx(result.top1)  # the last good state is back
    assert sparsity_report(model).zeros == round(result.sparsity * 1288)
    assert set(get_masks(model)) == {"conv1.weight", "conv2.weight", "fc.weight"}


def test_aware_dynamic_finetunes_between_steps(trained):
    model, loaders = trained
    finetune = TrainConfig(epochs=1, lr=0.02, max_batches_per_epoch=2)
    result = dynamic_prune(
        model,
        loaders,
        budget=0.05,
        step=0.3,
        min_step=0.15,
        finetune=finetune,
        prune=UnstructuredConfig(0.0, "layer"),
    )
    _check_walk(result, 0.3)
    assert result.prune is None or result.prune.config.scope == "layer"
    assert result.to_dict()["history"][0]["sparsity"] == pytest.approx(0.3)


def test_dynamic_settings_are_validated(tiny_model, blob_loaders):
    model, loaders = tiny_model, SimpleNamespace(train=blob_loaders[0], val=blob_loaders[1])
    with pytest.raises(ConfigError, match="min_step"):
        dynamic_prune(model, loaders, step=0.01, min_step=0.02)
    with pytest.raises(ConfigError, match="budget"):
        dynamic_prune(model, loaders, budget=float("nan"))
