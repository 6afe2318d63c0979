import math

import pytest
import torch

from prunequant.errors import ConfigError
from prunequant.training import Callback, TrainConfig, Trainer, evaluate, finetune_then_refine
from prunequant.training.lr_schedules import lr_factor


def test_training_learns_the_blobs(tiny_model, blob_loaders):
    train, val = blob_loaders
    before = evaluate(tiny_model, val).top1
    history = Trainer(tiny_model, train, val, TrainConfig(epochs=3, lr=0.05)).fit()
    assert len(history) == 3
    assert history[-1]["val_top1"] > 0.9 > before


def test_evaluate_counts_top1_top5_and_loss():
    logits = torch.tensor([[3.0, 1.0, 0.0], [0.0, 1.0, 2.0], [5.0, 0.0, 0.0]])
    targets = torch.tensor([0, 0, 0])
    result = evaluate(lambda x: logits, [(torch.zeros(3, 1), targets)])
    assert result.n == 3
    assert result.top1 == pytest.approx(2 / 3)
    assert result.top5 == 1.0  # k is capped at the number of classes
    expected = torch.nn.functional.cross_entropy(logits, targets).item()
    assert result.loss == pytest.approx(expected)


def test_callback_hook_order(tiny_model, blob_loaders):
    train, val = blob_loaders
    calls = []

    class Recorder(Callback):
        def on_train_start(self, trainer):
            calls.append("train_start")

        def on_epoch_start(self, trainer, epoch):
            calls.append(f"epoch_start{epoch}")

        def on_after_backward(self, trainer):
            calls.append("backward")

        def on_batch_end(self, trainer, batch, loss):
            calls.append("batch_end")

        def on_epoch_end(self, trainer, epoch, metrics):
            calls.append(f"epoch_end{epoch}")

        def on_train_end(self, trainer):
            calls.append("train_end")

    config = TrainConfig(epochs=2, lr=0.01, max_batches_per_epoch=2)
    Trainer(tiny_model, train, val, config, [Recorder()]).fit()
    epoch = ["backward", "batch_end"] * 2
    assert calls == [
        "train_start",
        "epoch_start0",
        *epoch,
        "epoch_end0",
        "epoch_start1",
        *epoch,
        "epoch_end1",
        "train_end",
    ]


def test_extra_loss_reaches_the_gradient(tiny_model, blob_loaders):
    train, _ = blob_loaders
    seen = {}

    class Penalty(Callback):
        def extra_loss(self, trainer):
            return 1000.0 * trainer.model.fc.bias.abs().sum()

        def on_after_backward(self, trainer):
            seen["grad"] = trainer.model.fc.bias.grad.abs().min().item()

    Trainer(tiny_model, train, None, TrainConfig(epochs=1, max_batches_per_epoch=1), [Penalty()]).fit()
    assert seen["grad"] > 100  # the penalty dominates the cross-entropy gradient


def test_stop_training_from_a_callback(tiny_model, blob_loaders):
    train, val = blob_loaders

    class StopAfterFirst(Callback):
        def on_epoch_end(self, trainer, epoch, metrics):
            trainer.stop_training = True

    history = Trainer(tiny_model, train, val, TrainConfig(epochs=5), [StopAfterFirst()]).fit()
    assert len(history) == 1


def test_early_stopping_restores_best_weights(tiny_model, blob_loaders):
    train, val = blob_loaders

    class Sabotage(Callback):
        """After the first epoch, wreck the weights so validation gets worse."""

        def on_epoch_start(self, trainer, epoch):
            if epoch >= 1:
                with torch.no_grad():
                    trainer.model.fc.weight.mul_(-1)

    config = TrainConfig(epochs=6, lr=0.05, early_stopping_patience=1, max_batches_per_epoch=0)
    trainer = Trainer(tiny_model, train, val, config, [Sabotage()])
    history = trainer.fit()
    best = max(h["val_top1"] for h in history)
    assert len(history) < 6
    assert evaluate(tiny_model, val).top1 == pytest.approx(best)


def test_refine_schedule_is_lr_then_lr_over_ten():
    config = TrainConfig(epochs=4, lr=0.1, lr_schedule="refine")
    assert [lr_factor(config, e) for e in range(4)] == [1.0, 1.0, 0.1, 0.1]
    cosine = TrainConfig(epochs=4, lr_schedule="cosine")
    assert lr_factor(cosine, 0) == 1.0 and math.isclose(lr_factor(cosine, 2), 0.5)


def test_finetune_then_refine_runs_two_phases(tiny_model, blob_loaders):
    train, val = blob_loaders
    result = finetune_then_refine(tiny_model, train, val, TrainConfig(epochs=1, lr=0.05), refine_epochs=1)
    assert [h["lr"] for h in result.history] == pytest.approx([0.05, 0.005])
    assert result.finetuned is not None and result.refined is not None


@pytest.mark.parametrize(
    "bad",
    [
        dict(lr=-1),
        dict(lr=float("nan")),
        dict(epochs=-1),
        dict(optimizer="rmsprop"),
        dict(lr_schedule="warp"),
        dict(momentum=1.5),
    ],
)
def test_bad_config_is_a_config_error(bad):
    with pytest.raises(ConfigError):
        TrainConfig(**bad)


def test_same_seed_same_numbers(blob_loaders, tiny_model_class):
    from prunequant.seeding import seed_everything

    results = []
    for _ in range(2):
        seed_everything(3)
        model = tiny_model_class()
        train, val = blob_loaders
        train.generator.manual_seed(0)
        Trainer(model, train, val, TrainConfig(epochs=1)).fit()
        results.append(model.fc.weight.detach().clone())
    assert torch.equal(results[0], results[1])
