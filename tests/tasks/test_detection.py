"""DetectionTask: decode/loss by callable or module path, collate, checks, and a two-head toy detector."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from prunequant.errors import ConfigError, ModelError
from prunequant.tasks import DetectionTask, build_task, collate_detection


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    return importlib.import_module("toy_detector")


def dataset(toy, n: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    samples = []
    for _ in range(n):
        count = int(torch.randint(1, 3, (1,), generator=gen))  # ragged: one or two objects
        cells = torch.randperm(4, generator=gen)[:count].tolist()
        samples.append(toy.make_sample(cells, torch.randint(0, 2, (count,), generator=gen).tolist()))
    return samples


def test_missing_decode_is_one_config_error():
    with pytest.raises(ConfigError, match="needs decode") as info:
        build_task("detection")
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="cannot import 'no_such_module'"):
        build_task("detection", decode="no_such_module:decode")
    with pytest.raises(ConfigError, match="decode function"):
        build_task("detection", decode="not a path")


def test_collate_keeps_ragged_targets(toy):
    images, targets = collate_detection(dataset(toy, 4))
    assert images.shape == (4, 2, 8, 8)
    assert isinstance(targets, list) and len(targets) == 4 and all("boxes" in t for t in targets)
    depth = torch.zeros(1, 8, 8)
    image, target = toy.make_sample([0], [1])
    stacked_image, stacked_depth, listed = collate_detection([(image, depth, target)] * 3)
    assert stacked_image.shape == (3, 2, 8, 8) and stacked_depth.shape == (3, 1, 8, 8) and len(listed) == 3


def test_strings_resolve_with_factory_options(toy):
    task = build_task("detection", decode="toy_detector:make_decoder", decode_options={"threshold": 0.99},
                      loss="toy_detector:loss")
    model = toy.TwoHeadDetector()
    images, targets = collate_detection(dataset(toy, 2))
    with torch.no_grad():
        decoded = task.detections(model(images), targets)
    assert all(d["scores"].numel() == 0 for d in decoded)  # an untrained model scores ~0.5 < 0.99
    assert task.loss(model(images), targets).requires_grad


def test_no_loss_scores_nan_and_refuses_to_train(toy):
    task = DetectionTask(decode=toy.decode)
    model = toy.TwoHeadDetector()
    images, targets = collate_detection(dataset(toy, 2))
    with torch.no_grad():
        assert math.isnan(float(task.loss(model(images), targets)))
    with pytest.raises(ConfigError, match="no loss to train with"):
        task.loss(model(images), targets)
    assert task.describe()["has_loss"] is False


def test_check_names_outputs_and_target(toy):
    task = DetectionTask(decode=toy.decode)
    _, targets = collate_detection(dataset(toy, 4))
    with pytest.raises(ModelError) as info:  # classification logits given to a detection task
        task.check(torch.randn(4, 10), torch.zeros(4, dtype=torch.long))
    message = str(info.value)
    assert "Tensor[4, 10]" in message and "Tensor[4]" in message and "collate_detection" in message
    wrong_decode = DetectionTask(decode=lambda outputs: outputs)
    with pytest.raises(ModelError, match="one \\{boxes, scores, labels\\} dict per image .4 images.") as info:
        wrong_decode.check(torch.randn(4, 10), targets)
    assert "Tensor[4, 10]" in str(info.value) and "\n" not in str(info.value)
    bad_boxes = DetectionTask(decode=lambda outputs: [
        {"boxes": torch.zeros(3), "scores": torch.zeros(1), "labels": torch.zeros(1)}] * 4)
    with pytest.raises(ModelError, match="boxes must be \\[N, 4\\]"):
        bad_boxes.check(None, targets)


def test_two_head_detector_learns_map(toy, fit):
    torch.manual_seed(0)
    loader = DataLoader(dataset(toy, 24), batch_size=8, collate_fn=collate_detection)
    task = build_task("detection", decode=toy.decode, loss=toy.loss)
    before, after = fit(toy.TwoHeadDetector(), loader, task, epochs=8, lr=0.1)
    assert after.primary == "map50" and after.score > 0.95 > before.score
    assert after.loss < before.loss and 0 < after.metrics["map"] <= after.score
