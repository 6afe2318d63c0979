"""EarlyStopping: patience on the primary metric in its direction, best weights restored, structure resets."""

import copy

import pytest
import torch

from prunequant.errors import ConfigError
from prunequant.tasks import ClassificationTask, MetricSpec
from prunequant.training import Callback, EarlyStopping, TrainConfig, Trainer


class _Scripted:
    def __init__(self, value: float) -> None:
        self.value = value

    def update(self, outputs, target) -> None: ...

    def compute(self) -> dict[str, float]:
        return {"score": self.value}


class ScriptedTask(ClassificationTask):
    """Classification loss, but validation returns the next scripted score of metric `score`."""

    def __init__(self, scores, higher_is_better: bool) -> None:
        super().__init__()
        self.metrics = (MetricSpec("score", "", higher_is_better),)
        self.primary = "score"
        self.scores = iter(scores)

    def metric_state(self) -> _Scripted:
        return _Scripted(next(self.scores))


class StateRecorder(Callback):
    def __init__(self) -> None:
        self.states = []

    def on_epoch_end(self, trainer, epoch, metrics) -> None:
        self.states.append(copy.deepcopy(trainer.model.state_dict()))


@pytest.mark.parametrize(
    ("scores", "higher"),
    [([0.5, 0.7, 0.6, 0.65, 0.9, 0.95], True), ([0.5, 0.3, 0.4, 0.35, 0.1, 0.05], False)],
)
def test_stops_after_patience_and_restores_the_best_epoch(tiny_model, blob_loaders, scores, higher):
    train, val = blob_loaders
    recorder = StateRecorder()
    config = TrainConfig(epochs=6, lr=0.05, early_stopping_patience=2, max_batches_per_epoch=2)
    trainer = Trainer(tiny_model, train, val, config, [recorder], task=ScriptedTask(scores, higher))
    history = trainer.fit()
    assert len(history) == 4  # epochs 2 and 3 do not beat epoch 1
    stopper = trainer.early_stopping
    assert (stopper.best_epoch, stopper.stopped_epoch, stopper.restored) == (1, 3, True)
    assert trainer.callbacks[0] is stopper
    best = recorder.states[1]
    assert all(torch.equal(best[k], v) for k, v in tiny_model.state_dict().items())
    assert not torch.equal(recorder.states[3]["fc.weight"], best["fc.weight"])


def test_a_structural_change_resets_the_best(tiny_model, blob_loaders):
    train, val = blob_loaders

    class Shrink(Callback):
        def on_epoch_end(self, trainer, epoch, metrics) -> None:
            if epoch == 1:  # a new layer shape, as after a pruning step
                trainer.model.conv2 = torch.nn.Conv2d(8, 16, 1, stride=2)

    config = TrainConfig(epochs=4, lr=0.05, early_stopping_patience=5, max_batches_per_epoch=1)
    task = ScriptedTask([0.9, 0.5, 0.4, 0.3], higher_is_better=True)
    trainer = Trainer(tiny_model, train, val, config, [Shrink()], task=task)
    trainer.callbacks = [trainer.callbacks[1], trainer.callbacks[0]]  # shrink before the stopper looks
    trainer.fit()  # restoring epoch 0's weights would not even load into the new structure
    assert (trainer.early_stopping.best_epoch, trainer.early_stopping.restored) == (1, True)
    assert tiny_model.conv2.weight.shape == (16, 8, 1, 1)


def test_patience_must_be_positive():
    with pytest.raises(ConfigError, match="patience"):
        EarlyStopping(0)
