"""BoxMAP (pycocotools COCOeval): mAP@0.5 on hand-made boxes with known answers."""

from __future__ import annotations

import math

import pytest
import torch

from prunequant.tasks.coco_map import BoxMAP

A, B = [0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]


def pred(boxes, scores, labels):
    return {"boxes": torch.tensor(boxes).reshape(-1, 4), "scores": torch.tensor(scores),
            "labels": torch.tensor(labels, dtype=torch.long)}


def gt(boxes, labels):
    return {"boxes": torch.tensor(boxes).reshape(-1, 4), "labels": torch.tensor(labels, dtype=torch.long)}


def score(predictions, targets, **kwargs):
    metric = BoxMAP(**kwargs)
    metric.update(predictions, targets)
    return metric.compute()


def test_perfect_detections_score_one():
    result = score([pred([A, B], [0.9, 0.8], [1, 1])], [gt([A, B], [1, 1])])
    assert result == {"map50": 1.0, "map": 1.0}


def test_one_of_two_missed_is_51_of_101():
    # precision 1 up to recall 0.5, nothing beyond: 51 of COCO's 101 recall points
    result = score([pred([A], [0.9], [1])], [gt([A, B], [1, 1])])
    assert result["map50"] == pytest.approx(51 / 101)


def test_false_positive_ranked_first_halves_precision():
    result = score([pred([[50, 50, 60, 60], A], [0.9, 0.8], [1, 1])], [gt([A], [1])])
    assert result["map50"] == pytest.approx(0.5)
    # ranked last, it costs nothing: precision is 1 at recall 1
    last = score([pred([[50, 50, 60, 60], A], [0.1, 0.8], [1, 1])], [gt([A], [1])])
    assert last["map50"] == pytest.approx(1.0)


def test_iou_threshold_half():
    shifted = [0.0, 0.0, 10.0, 15.0]  # IoU with A = 100/150 = 0.67: a hit at 0.5, a miss at 0.7 and up
    result = score([pred([shifted], [0.9], [1])], [gt([A], [1])])
    assert result["map50"] == pytest.approx(1.0)
    assert result["map"] == pytest.approx(4 / 10)  # hits at IoU 0.5, 0.55, 0.6, 0.65 of ten thresholds
    assert score([pred([[0.0, 0.0, 10.0, 25.0]], [0.9], [1])], [gt([A], [1])])["map50"] == 0.0  # IoU 0.4


def test_mean_over_classes_and_images_and_wrong_label():
    predictions = [pred([A], [0.9], [1]), pred([B], [0.9], [3])]
    targets = [gt([A], [1]), gt([B], [2])]  # image 2: right box, wrong class -> class 2 AP 0
    assert score(predictions, targets)["map50"] == pytest.approx(0.5)


def test_accumulates_over_batches():
    metric = BoxMAP()
    metric.update([pred([A], [0.9], [1])], [gt([A], [1])])
    metric.update([pred([], [], [])], [gt([B], [1])])
    assert metric.compute()["map50"] == pytest.approx(51 / 101)


def test_empty_cases():
    assert math.isnan(score([pred([A], [0.9], [1])], [gt([], [])])["map50"])
    assert score([pred([], [], [])], [gt([A], [1])]) == {"map50": 0.0, "map": 0.0}


def test_max_detections_per_image():
    # two false positives ranked above the hit; with max_detections=2 the hit is never counted
    boxes = [[50, 50, 60, 60], [70, 70, 80, 80], A]
    assert score([pred(boxes, [0.9, 0.8, 0.7], [1, 1, 1])], [gt([A], [1])], max_detections=2)["map50"] == 0.0
    assert score([pred(boxes, [0.9, 0.8, 0.7], [1, 1, 1])], [gt([A], [1])])["map50"] == pytest.approx(1 / 3)
