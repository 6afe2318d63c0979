"""Schedules: AGP ramp values, iterative rounds, one-shot, and the seeds' fine-tune-then-refine recipe."""

from __future__ import annotations

import pytest

from prunequant.errors import ConfigError
from prunequant.pruning.unstructured import (
    AGPMagnitudePruning,
    IterativeMagnitudePruning,
    UnstructuredConfig,
    agp_sparsity,
    iterative_sparsity,
    make_schedule,
    prune_and_finetune,
    sparsity_report,
)
from prunequant.training import TrainConfig, Trainer

FAST = TrainConfig(epochs=3, lr=0.02, max_batches_per_epoch=4)


def test_agp_formula_values():
    # s_t = s_f + (s_i - s_f) (1 - (t - t0) / (n dt))^3 with s_i=0.1, s_f=0.9, t0=10, n=4, dt=5
    values = [agp_sparsity(t, 0.1, 0.9, 10, 4, 5) for t in (0, 10, 15, 20, 25, 30, 99)]
    assert values == pytest.approx(
        [0.1, 0.1, 0.9 - 0.8 * 0.75**3, 0.9 - 0.8 * 0.5**3, 0.9 - 0.8 * 0.25**3, 0.9, 0.9]
    )


def test_agp_callback_prunes_on_the_ramp(tiny_model, blob_loaders):
    train, val = blob_loaders
    config = UnstructuredConfig(0.8, "layer")
    schedule = AGPMagnitudePruning(config, steps=4, interval=2, initial=0.0, start=1)
    Trainer(tiny_model, train, val, FAST, [schedule]).fit()
    assert [when for when, _ in schedule.events] == [1, 3, 5, 7, 9]
    assert [amount for _, amount in schedule.events] == pytest.approx(
        [0.8 * (1 - (1 - k / 4) ** 3) for k in range(5)]
    )
    assert sparsity_report(tiny_model).layers["conv2.weight"] == pytest.approx(round(0.8 * 1152) / 1152)


def test_iterative_reaches_final_sparsity_through_rounds(tiny_model, blob_loaders):
    train, val = blob_loaders
    schedule = IterativeMagnitudePruning(UnstructuredConfig(0.75, "global"), rounds=3, epochs_per_round=1)
    Trainer(tiny_model, train, val, FAST, [schedule]).fit()
    amounts = [amount for _, amount in schedule.events]
    assert [when for when, _ in schedule.events] == [0, 1, 2]
    assert amounts == pytest.approx([1 - 0.25 ** (1 / 3), 1 - 0.25 ** (2 / 3), 0.75])
    assert iterative_sparsity(2, 3, 0.75) == pytest.approx(0.75)
    assert schedule.result.pruned == round(0.75 * 1288)
    assert sparsity_report(tiny_model).zeros == round(0.75 * 1288)


def test_recipe_finetunes_then_refines_with_masks_held(tiny_model, blob_loaders):
    train, val = blob_loaders
    config = TrainConfig(epochs=1, lr=0.05, max_batches_per_epoch=3)
    result = prune_and_finetune(
        tiny_model, UnstructuredConfig(0.5), train, val, config, refine_epochs=1, refine_factor=0.1
    )
    assert [row["lr"] for row in result.finetune.history] == pytest.approx([0.05, 0.005])
    assert result.finetune.refined is not None and result.events == [(0, 0.5)]
    assert sparsity_report(tiny_model).zeros == 644


def test_post_training_recipe_and_schedule_errors(tiny_model, blob_loaders):
    result = prune_and_finetune(tiny_model, UnstructuredConfig(0.25, "layer"))
    assert result.finetune is None and result.prune.pruned == 18 + 288 + 16
    with pytest.raises(ConfigError, match="agp schedule prunes during fine-tuning"):
        prune_and_finetune(tiny_model, UnstructuredConfig(0.5), schedule="agp")
    with pytest.raises(ConfigError, match="needs at least 4 fine-tune epochs"):
        make_schedule("iterative", UnstructuredConfig(0.5), steps=4, epochs=3)
    with pytest.raises(ConfigError, match="needs at least 5 fine-tune batches"):
        make_schedule("agp", UnstructuredConfig(0.5), steps=4, epochs=2, batches_per_epoch=2)
    with pytest.raises(ConfigError, match="schedule must be one of"):
        make_schedule("cubic", UnstructuredConfig(0.5))


def test_make_schedule_spreads_agp_over_first_half():
    schedule = make_schedule("agp", UnstructuredConfig(0.5), steps=5, epochs=2, batches_per_epoch=50)
    assert (schedule.steps, schedule.interval, schedule.start) == (5, 10, 0)
