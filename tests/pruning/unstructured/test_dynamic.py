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
        assert attempt.accepted == (result.baseline_score - attempt.val_score <= 0.05 + 1e-12)
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
    assert result.baseline_score - result.score <= 0.05 and result.metric == "top1"
    assert evaluate(model, loaders.val).top1 == pytest.approx(result.score)  # the last good state is back
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


@pytest.fixture
def trained_regressor(two_input_model, flow_loaders, regression_task):
    train, val = flow_loaders
    config = TrainConfig(epochs=4, lr=0.02, optimizer="adam", weight_decay=0.0)
    Trainer(two_input_model, train, val, config, task=regression_task).fit()
    return two_input_model, SimpleNamespace(train=train, val=val)


@pytest.mark.parametrize("relative", [False, True])
def test_lower_is_better_budget(trained_regressor, regression_task, relative):
    model, loaders = trained_regressor
    baseline = evaluate(model, loaders.val, regression_task).mse
    budget = 0.2 if relative else 0.2 * baseline
    result = dynamic_prune(
        model,
        loaders,
        budget=budget,
        relative=relative,
        step=0.4,
        min_step=0.05,
        finetune=TrainConfig(epochs=0),
        task=regression_task,
    )
    assert result.metric == "mse" and not result.higher_is_better
    assert result.baseline_score == pytest.approx(baseline)
    assert any(not a.accepted for a in result.history) and any(a.accepted for a in result.history)
    for attempt in result.history:  # worse = a larger error
        allowed = baseline * 1.2 if relative else baseline + budget
        assert attempt.accepted == (attempt.val_score <= allowed + 1e-9)
    assert result.score <= baseline * 1.2 + 1e-9
    assert evaluate(model, loaders.val, regression_task).mse == pytest.approx(result.score)
    assert result.to_dict()["metric"] == "mse"
