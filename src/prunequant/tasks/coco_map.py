"""Box mAP through pycocotools' COCOeval (torchmetrics' MeanAveragePrecision needs torchvision).

Boxes come in as xyxy tensors per image; they are handed to COCOeval as xywh with the default COCO
parameters (101 recall points, area range "all", at most `max_detections` per image and class).
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np
import torch

from prunequant.errors import ConfigError


def _cocoeval() -> tuple[Any, Any]:
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        raise ConfigError(
            "the detection task's mAP needs pycocotools; install it with 'pip install pycocotools'"
        ) from None
    return COCO, COCOeval


def _xywh(boxes: torch.Tensor) -> list[list[float]]:
    boxes = boxes.detach().double().cpu().reshape(-1, 4)
    return torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], dim=1).tolist()


class BoxMAP:
    """Accumulates per-image predictions and ground truth; `compute` returns mAP@0.5 and mAP@[.5:.95].

    Parameters
    ----------
    max_detections:
        Highest-scoring detections per image and class that count (COCO: 100).
    """

    def __init__(self, max_detections: int = 100) -> None:
        self.max_detections = max_detections
        self.images: list[dict[str, int]] = []
        self.ground_truth: list[dict[str, Any]] = []
        self.detections: list[dict[str, Any]] = []

    def update(
        self, predictions: list[dict[str, torch.Tensor]], targets: list[dict[str, torch.Tensor]]
    ) -> None:
        """Add a batch: per image, predictions {boxes, scores, labels} and targets {boxes, labels}."""
        for prediction, target in zip(predictions, targets, strict=True):
            image_id = len(self.images) + 1
            self.images.append({"id": image_id})
            for box, label in zip(_xywh(target["boxes"]), target["labels"].reshape(-1).tolist(), strict=True):
                self.ground_truth.append({
                    "id": len(self.ground_truth) + 1, "image_id": image_id, "category_id": int(label),
                    "bbox": box, "area": box[2] * box[3], "iscrowd": 0,
                })
            rows = zip(_xywh(prediction["boxes"]), prediction["scores"].reshape(-1).tolist(),
                       prediction["labels"].reshape(-1).tolist(), strict=True)
            for box, score, label in rows:
                self.detections.append({
                    "id": len(self.detections) + 1, "image_id": image_id, "category_id": int(label),
                    "bbox": box, "area": box[2] * box[3], "score": float(score), "iscrowd": 0,
                })

    def compute(self) -> dict[str, float]:
        """{'map50', 'map'}: NaN when no ground-truth box was seen, 0.0 when there are no detections."""
        if not self.ground_truth:
            return {"map50": float("nan"), "map": float("nan")}
        if not self.detections:
            return {"map50": 0.0, "map": 0.0}
        coco, cocoeval = _cocoeval()
        labels = sorted({a["category_id"] for a in self.ground_truth + self.detections})
        categories = [{"id": label} for label in labels]
        gt, dt = coco(), coco()
        gt.dataset = {"images": self.images, "annotations": self.ground_truth, "categories": categories}
        dt.dataset = {"images": self.images, "annotations": self.detections, "categories": categories}
        with contextlib.redirect_stdout(io.StringIO()):
            gt.createIndex()
            dt.createIndex()
            evaluation = cocoeval(gt, dt, iouType="bbox")
            evaluation.params.maxDets = [self.max_detections]
            evaluation.params.catIds = sorted({a["category_id"] for a in self.ground_truth})
            evaluation.evaluate()
            evaluation.accumulate()
        # precision: [iou thresholds, recall points, classes, area ranges, max dets]; -1 = class absent
        precision = evaluation.eval["precision"][:, :, :, 0, -1]
        thresholds = evaluation.params.iouThrs
        at50 = precision[int(np.argmin(np.abs(thresholds - 0.5)))]
        return {"map50": _mean_valid(at50), "map": _mean_valid(precision)}


def _mean_valid(precision: np.ndarray) -> float:
    valid = precision[precision > -1]
    return float(valid.mean()) if valid.size else float("nan")
