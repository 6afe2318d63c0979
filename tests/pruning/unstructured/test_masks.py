"""Masks hold through training (SGD with momentum and weight decay, Adam), checkpoints and containers."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from prunequant.errors import ConfigError
from prunequant.export.storage import load_compressed, save_compressed
from prunequant.models import build, load_checkpoint, save_checkpoint
from prunequant.pruning.unstructured import (
    MaskCallback,
    get_masks,
    make_permanent,
    prune_unstructured,
    restore_masks,
)
from prunequant.training import Callback, TrainConfig, Trainer


class AfterEveryStep(Callback):
    """Records, after every optimizer step (and the masks re-applied), whether pruned entries are 0.0."""

    def __init__(self, masks):
        self.masks = masks
        self.steps = 0
        self.leaks = 0

    def on_batch_end(self, trainer, batch, loss):
        self.steps += 1
        params = dict(trainer.model.named_parameters())
        for name, mask in self.masks.items():
            self.leaks += int(params[name].detach()[~mask].ne(0).sum())
            state = trainer.optimizer.state[params[name]]
            for value in state.values():
                if value.shape == mask.shape:
                    self.leaks += int(value[~mask].ne(0).sum())


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_pruned_weights_stay_exactly_zero_through_training(tiny_model, blob_loaders, optimizer):
    train, val = blob_loaders
    masks = {
        name: mask.clone()
        for name, mask in prune_unstructured(tiny_model, 0.6, include_bias=True).masks.items()
    }
    kept_before = tiny_model.conv2.weight.detach()[masks["conv2.weight"]].clone()
    probe = AfterEveryStep(masks)
    config = TrainConfig(epochs=2, lr=0.05, optimizer=optimizer, momentum=0.9, weight_decay=5e-3)
    Trainer(tiny_model, train, val, config, [MaskCallback(), probe]).fit()
    assert probe.steps == 16 and probe.leaks == 0
    assert not torch.equal(tiny_model.conv2.weight.detach()[masks["conv2.weight"]], kept_before)  # it trained


def test_without_the_callback_the_hooks_still_hold_the_masks(tiny_model, blob_loaders):
    train, val = blob_loaders
    prune_unstructured(tiny_model, 0.6)
    mask = get_masks(tiny_model)["conv2.weight"].clone()
    Trainer(tiny_model, train, val, TrainConfig(epochs=1, lr=0.05)).fit()
    assert tiny_model.conv2.weight.detach()[~mask].eq(0).all()


def test_training_end_reapplies_masks_to_restored_weights(tiny_model):
    prune_unstructured(tiny_model, 0.5)
    with torch.no_grad():
        tiny_model.fc.weight.fill_(1.0)  # as if early stopping had loaded weights from before a pruning
    MaskCallback().on_train_end(SimpleNamespace(model=tiny_model))
    assert int((tiny_model.fc.weight == 0).sum()) == int((~get_masks(tiny_model)["fc.weight"]).sum()) > 0


def test_masks_are_not_in_the_state_dict(tiny_model):
    prune_unstructured(tiny_model, 0.5)
    assert not any(key.endswith("_pq_mask") for key in tiny_model.state_dict())
    assert set(get_masks(tiny_model)) == {"conv1.weight", "conv2.weight", "fc.weight"}


@pytest.fixture
def pruned_zoo_model():
    torch.manual_seed(1)
    model = build("lenet5", num_classes=10, in_channels=1, input_size=28)
    result = prune_unstructured(model, 0.7, "global", include_bias=True)
    return model, {name: mask.clone() for name, mask in result.masks.items()}


@pytest.mark.parametrize("kind", ["checkpoint", "compressed"])
def test_masks_survive_save_and_load(tmp_path, pruned_zoo_model, kind):
    model, masks = pruned_zoo_model
    x = torch.randn(3, 1, 28, 28)
    model.eval()
    expected = model(x)
    if kind == "checkpoint":
        save_checkpoint(model, tmp_path / "m.pt")
        loaded, _ = load_checkpoint(tmp_path / "m.pt")
    else:
        save_compressed(model, tmp_path / "m.pqz")
        loaded, _ = load_compressed(tmp_path / "m.pqz")
    restored = restore_masks(loaded, list(masks))
    assert set(restored) == set(masks)
    assert all(torch.equal(restored[name], mask) for name, mask in masks.items())
    assert torch.equal(loaded(x), expected)


def test_restore_masks_defaults_to_weights_with_zeros(pruned_zoo_model):
    model, masks = pruned_zoo_model
    make_permanent(model)
    assert not get_masks(model)
    restored = restore_masks(model)
    assert set(restored) == {name for name in masks if name.endswith(".weight")}
    with pytest.raises(ConfigError, match="no such conv/linear parameter"):
        restore_masks(model, ["nope.weight"])


def test_make_permanent_keeps_zeros_and_drops_masks(tiny_model):
    prune_unstructured(tiny_model, 0.5, "layer")
    make_permanent(tiny_model)
    assert not get_masks(tiny_model)
    assert int((tiny_model.conv2.weight == 0).sum()) == 576
