"""Trainer, evaluate and finetune_then_refine on a two-input dense regressor with a lower-is-better task."""

import pytest
import torch

from prunequant.training import Callback, TrainConfig, Trainer, evaluate, finetune_then_refine


def test_trainer_trains_a_two_input_regressor(two_input_model, flow_loaders, regression_task):
    train, val = flow_loaders
    before = evaluate(two_input_model, val, regression_task)
    config = TrainConfig(epochs=4, lr=0.02, optimizer="adam", weight_decay=0.0)
    history = Trainer(two_input_model, train, val, config, task=regression_task).fit()
    after = evaluate(two_input_model, val, regression_task)
    assert set(after.metrics) == {"mse", "mae"} and after.score == after.mse
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    assert after.mse < 0.5 * before.mse
    assert history[-1]["val_score"] == pytest.approx(history[-1]["val_mse"])
    assert "val_top1" not in history[-1]


def test_callbacks_see_both_inputs_the_outputs_and_the_loss(two_input_model, flow_loaders, regression_task):
    train, _ = flow_loaders
    seen = {}

    class Spy(Callback):
        def on_batch_start(self, trainer, batch):
            seen["inputs"] = [tuple(t.shape) for t in trainer.inputs]
            seen["target"] = tuple(trainer.target.shape)

        def extra_loss(self, trainer):
            seen["outputs"] = tuple(trainer.outputs.shape)
            seen["loss"] = trainer.loss.item()

    config = TrainConfig(epochs=1, max_batches_per_epoch=1)
    Trainer(two_input_model, train, None, config, [Spy()], task=regression_task).fit()
    assert seen["inputs"] == [(16, 3, 8, 8), (16, 1, 8, 8)]
    assert seen["target"] == seen["outputs"] == (16, 2, 8, 8)
    assert seen["loss"] > 0


def test_early_stopping_keeps_the_lowest_error_epoch(two_input_model, flow_loaders, regression_task):
    train, val = flow_loaders

    class Sabotage(Callback):
        """After the first epoch, flip the head so the error grows."""

        def on_epoch_start(self, trainer, epoch):
            if epoch >= 1:
                with torch.no_grad():
                    trainer.model.head.weight.mul_(-3)

    config = TrainConfig(epochs=6, lr=0.01, optimizer="adam", early_stopping_patience=1)
    history = Trainer(two_input_model, train, val, config, [Sabotage()], task=regression_task).fit()
    scores = [h["val_mse"] for h in history]
    assert len(history) < 6 and min(scores) < max(scores)
    assert evaluate(two_input_model, val, regression_task).mse == pytest.approx(min(scores))


def test_finetune_then_refine_scores_with_the_task(two_input_model, flow_loaders, regression_task):
    train, val = flow_loaders
    config = TrainConfig(epochs=1, lr=0.01, optimizer="adam")
    result = finetune_then_refine(two_input_model, train, val, config, refine_epochs=1, task=regression_task)
    assert result.finetuned.primary == result.refined.primary == "mse"
    assert result.refined.mse == pytest.approx(evaluate(two_input_model, val, regression_task).mse)
    assert [h["lr"] for h in result.history] == pytest.approx([0.01, 0.001])
