"""Task base: splitting batches of any shape, metric lookup, describe, the mismatch message."""

from __future__ import annotations

import pytest
import torch

from prunequant.errors import ConfigError, DataError
from prunequant.tasks import ClassificationTask, Task, mismatch

x, depth, y = torch.zeros(2, 3), torch.ones(2, 1), torch.tensor([0, 1])


def test_split_sequences_tensors_and_dicts():
    task = Task()
    assert task.split((x, y)) == (x, y)
    inputs, target = task.split([x, depth, y])
    assert inputs == (x, depth) and target is y
    assert task.split(x) == (x, None) and task.split((x,)) == (x, None)
    assert task.split({"image": x, "target": y}) == (x, y)
    inputs, target = task.split({"image": x, "depth": depth, "target": y})
    assert list(inputs) == ["image", "depth"] and target is y
    assert task.inputs((x, y)) is x


def test_split_with_target_key_and_transform_fn():
    keyed = Task(target_key="flow")
    assert keyed.split({"image": x, "flow": y})[1] is y
    with pytest.raises(DataError, match="without key 'flow'.*keys: image"):
        keyed.split({"image": x})
    custom = Task(transform_fn=lambda batch: ((batch["a"], batch["b"]), batch["c"]))
    assert custom.split({"a": x, "b": depth, "c": y}) == ((x, depth), y)
    with pytest.raises(DataError, match="batch of type int"):
        Task().split(3)


def test_metric_lookup_and_describe():
    task = ClassificationTask()
    assert task.metric().name == "top1" and task.metric("top5").name == "top5"
    assert task.primary_metric is task.metric("top1")
    with pytest.raises(ConfigError, match="no metric 'epe'; its metrics are: top1, top5"):
        task.metric("epe")
    described = task.describe()
    assert described["primary"] == "top1" and described["metrics"][0]["higher_is_better"] is True


def test_abstract_methods_raise_and_mismatch_names_both():
    with pytest.raises(NotImplementedError):
        Task().loss(x, y)
    with pytest.raises(NotImplementedError):
        Task().metric_state()
    message = mismatch(ClassificationTask(), (x, depth), y, "one logits tensor")
    assert message.startswith("task 'classification' expects one logits tensor")
    assert "tuple(Tensor[2, 3], Tensor[2, 1])" in message and "Tensor[2]" in message
