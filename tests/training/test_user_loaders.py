"""Users' own loaders (dicts, extra fields) through transform_fn, and the device option; CPU only."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import prunequant as pq
from prunequant.errors import ConfigError, DataError
from prunequant.tasks import ClassificationTask, with_transform
from prunequant.training import TrainConfig, Trainer, evaluate
from prunequant.training.device import resolve_device


class DictBlobs(Dataset):
    """The blob images as dicts with an extra non-tensor field, as many user datasets yield them."""

    def __init__(self, blobs):
        self.blobs = blobs

    def __len__(self):
        return len(self.blobs)

    def __getitem__(self, index):
        image, label = self.blobs[index]
        return {"image": image, "label": label, "path": f"img{index}.png"}


def to_pair(batch):
    return batch["image"], batch["label"]


@pytest.fixture
def dict_loaders(blob_loaders):
    train, val = blob_loaders
    return DataLoader(DictBlobs(train.dataset), batch_size=32), DataLoader(
        DictBlobs(val.dataset), batch_size=64
    )


def test_a_dict_batch_with_extra_fields_is_one_line_naming_the_batch_and_the_fix(tiny_model, dict_loaders):
    _, val = dict_loaders
    task = ClassificationTask(target_key="label")
    with pytest.raises(DataError) as caught:
        evaluate(tiny_model, val, task)
    message = str(caught.value)
    assert "\n" not in message and "TinyCNN.forward(x)" in message and "path=list[64]" in message
    assert "transform_fn" in message and "target_key" in message
    with pytest.raises(DataError, match="transform_fn"):
        pq.quantize(tiny_model, pq.QuantConfig(8, 8), calib_loader=val, task=task)


def test_a_tuple_batch_with_an_extra_field_is_one_clear_line(tiny_model, blob_loaders):
    x, y = next(iter(blob_loaders[1]))
    with pytest.raises(DataError, match=r"cannot take the inputs split from the batch: tuple\(Tensor"):
        evaluate(tiny_model, [(x, y, torch.arange(len(y)))])


def test_transform_fn_gives_the_same_scores_as_a_tuple_loader(tiny_model, blob_loaders, dict_loaders):
    expected = evaluate(tiny_model, blob_loaders[1])
    assert evaluate(tiny_model, dict_loaders[1], transform_fn=to_pair).metrics == expected.metrics


def test_transform_fn_in_quantize_calibration_trainer_and_channel_pruning(tiny_model, dict_loaders):
    train, val = dict_loaders
    qmodel = pq.quantize(tiny_model, pq.QuantConfig(8, 8), calib_loader=val, transform_fn=to_pair)
    assert evaluate(qmodel, val, transform_fn=to_pair).n == 128
    pq.calibrate(qmodel, val, 1, transform_fn=to_pair)
    history = Trainer(tiny_model, train, val, TrainConfig(epochs=1, lr=0.01), transform_fn=to_pair).fit()
    assert "val_top1" in history[0]
    small = pq.prune_channels(
        tiny_model,
        torch.randn(2, 1, 8, 8),
        0.5,
        importance="activation_l1",
        calib_loader=val,
        transform_fn=to_pair,
    )
    assert small.conv1.out_channels == 4


def test_with_transform_wraps_duck_typed_tasks_and_checks_the_result(regression_task):
    class DuckTask:
        name, primary = "duck", "mse"

        def split(self, batch):
            raise AssertionError("the transform_fn must be used")

    wrapped = with_transform(DuckTask(), lambda batch: (batch["x"], batch["y"]))
    assert wrapped.split({"x": 1, "y": 2}) == (1, 2) and wrapped.name == "duck"
    broken = with_transform(regression_task, lambda batch: batch["x"])
    with pytest.raises(DataError, match=r"transform_fn must return \(inputs, target\)"):
        broken.split({"x": torch.zeros(2)})
    assert regression_task.transform_fn is None  # the given task is not modified
    with pytest.raises(ConfigError, match="callable"):
        with_transform(None, "image")


def test_device_cpu_trains_and_evaluates(tiny_model, blob_loaders):
    train, val = blob_loaders
    Trainer(tiny_model, train, val, TrainConfig(epochs=1, lr=0.01), device="cpu").fit()
    assert evaluate(tiny_model, val, device="cpu").n == 128
    assert next(tiny_model.parameters()).device.type == "cpu"


def test_auto_is_cpu_without_cuda_and_unavailable_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ConfigError, match="CUDA is not available here"):
        resolve_device("cuda")
    with pytest.raises(ConfigError, match="CUDA is not available here"):
        Trainer(torch.nn.Linear(2, 2), [], device="cuda:0")
    with pytest.raises(ConfigError, match="device must be"):
        resolve_device("gpu")


def test_default_device_sets_where_trainers_train_and_the_lab_field_is_checked(monkeypatch):
    from prunequant.lab.recipe import RunSection
    from prunequant.training.device import default_device

    with default_device("cpu"):
        assert Trainer(torch.nn.Linear(2, 2), []).device == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with default_device("cuda"), pytest.raises(ConfigError, match="CUDA is not available here"):
        Trainer(torch.nn.Linear(2, 2), [])
    assert RunSection(device="cuda:1").device == "cuda:1"
    with pytest.raises(ConfigError, match="device must be"):
        RunSection(device="gpu")
