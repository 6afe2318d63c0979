"""Every built-in task refuses outputs of the wrong structure with one line naming outputs and target."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch

from prunequant.errors import ModelError
from prunequant.tasks import build_task

LOGITS = torch.randn(4, 10)


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    return importlib.import_module("toy_detector")


def native_targets(toy):
    boxes = [{"boxes": torch.zeros(1, 4), "labels": torch.zeros(1, dtype=torch.long)}] * 4
    return {
        "segmentation": (build_task("segmentation"), torch.zeros(4, 8, 8).long(), "Tensor[4, 8, 8]"),
        "flow": (build_task("flow"), torch.zeros(4, 2, 8, 8), "Tensor[4, 2, 8, 8]"),
        "regression": (build_task("regression"), torch.zeros(4, 3, 8, 8), "Tensor[4, 3, 8, 8]"),
        "reconstruction": (build_task("reconstruction"), torch.zeros(4, 1, 8, 8), "Tensor[4, 1, 8, 8]"),
        "vae": (build_task("vae"), torch.zeros(4, 1, 8, 8), "Tensor[4, 1, 8, 8]"),
        "detection": (build_task("detection", decode=toy.decode, loss=toy.loss), boxes, "4 images"),
    }


@pytest.mark.parametrize("name", ["segmentation", "flow", "regression", "reconstruction", "vae", "detection"])
def test_classification_logits_are_refused_everywhere(toy, refused, name):
    task, target, target_words = native_targets(toy)[name]
    for call in (task.check, task.loss, lambda o, t: task.metric_state().update(o, t)):
        refused(lambda call=call: call(LOGITS, target), name, ["Tensor[4, 10]", target_words])


@pytest.mark.parametrize(
    ("outputs", "target"),
    [
        (torch.randn(4, 10, 8, 8), torch.zeros(4, 8, 8, dtype=torch.long)),  # segmentation logits
        ((torch.rand(4, 1, 8, 8), torch.randn(4, 2), torch.randn(4, 2)), torch.zeros(4, 1, 8, 8)),  # a VAE
    ],
)
def test_classification_refuses_dense_outputs(outputs, target):
    with pytest.raises(ModelError, match="'classification' expects one logits tensor") as info:
        build_task("classification").check(outputs, target)
    assert "\n" not in str(info.value)
