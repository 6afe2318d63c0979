"""User tasks of the stand-ins (prunequant.tasks.Task subclasses, built by `standins.tasks:factory`).

Metric names follow the built-in tasks (epe, outlier_rate, miou, pixel_acc, mse, psnr, elbo, map50).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

from prunequant.errors import ModelError
from prunequant.tasks import MetricSpec, Task, mismatch


class _Mean:
    """Sample-weighted means of per-batch values."""

    def __init__(self, fn) -> None:
        self.fn, self.sums, self.n = fn, {}, 0

    def update(self, outputs: Any, target: Any) -> None:
        values, n = self.fn(outputs, target), len(target)
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(value) * n
        self.n += n

    def compute(self) -> dict[str, float]:
        return {key: total / self.n for key, total in self.sums.items()}


class FlowTask(Task):
    name = "user-flow"
    metrics = (
        MetricSpec("epe", "px", False, "EPE"),
        MetricSpec("outlier_rate", "%", False, "outliers"),
    )
    primary = "epe"

    def check(self, outputs: Any, target: Any) -> None:
        if not isinstance(outputs, torch.Tensor) or outputs.shape != target.shape:
            raise ModelError(mismatch(self, outputs, target, "a flow tensor shaped like the target"))

    def loss(self, outputs: Any, target: Any) -> torch.Tensor:
        self.check(outputs, target)
        return (outputs - target).norm(dim=1).mean()

    def metric_state(self) -> _Mean:
        def values(outputs, target):
            error, magnitude = (outputs - target).norm(dim=1), target.norm(dim=1)
            outlier = (error > 3) & (error > 0.05 * magnitude)
            return {"epe": error.mean(), "outlier_rate": outlier.float().mean()}

        return _Mean(values)


class _SegState:
    def __init__(self, classes: int) -> None:
        self.iou = MulticlassJaccardIndex(classes, average="macro")
        self.acc = MulticlassAccuracy(classes, average="micro")

    def update(self, outputs: Any, target: Any) -> None:
        self.iou.update(outputs.argmax(1), target)
        self.acc.update(outputs.argmax(1), target)

    def compute(self) -> dict[str, float]:
        return {"miou": float(self.iou.compute()), "pixel_acc": float(self.acc.compute())}


class SegmentationTask(Task):
    name = "user-segmentation"
    metrics = (MetricSpec("miou", "%", True, "mIoU"), MetricSpec("pixel_acc", "%", True, "pixel accuracy"))
    primary = "miou"

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.classes = classes

    def check(self, outputs: Any, target: Any) -> None:
        if not isinstance(outputs, torch.Tensor) or outputs.dim() != 4 or outputs.shape[1] != self.classes:
            raise ModelError(mismatch(self, outputs, target, f"logits [batch, {self.classes}, H, W]"))

    def loss(self, outputs: Any, target: Any) -> torch.Tensor:
        self.check(outputs, target)
        return F.cross_entropy(outputs, target)

    def metric_state(self) -> _SegState:
        return _SegState(self.classes)


class ReconstructionTask(Task):
    name = "user-reconstruction"
    metrics = (MetricSpec("mse", "", False, "MSE"), MetricSpec("psnr", "dB", True, "PSNR"))
    primary = "psnr"

    def __init__(self, data_range: float = 2.0) -> None:
        super().__init__()
        self.data_range = data_range

    def loss(self, outputs: Any, target: Any) -> torch.Tensor:
        if not isinstance(outputs, torch.Tensor) or outputs.shape != target.shape:
            raise ModelError(mismatch(self, outputs, target, "an image shaped like the target"))
        return F.l1_loss(outputs, target)

    def metric_state(self) -> _Mean:
        def values(outputs, target):
            mse = F.mse_loss(outputs, target)
            return {"mse": mse, "psnr": 10 * math.log10(self.data_range**2 / max(float(mse), 1e-12))}

        return _Mean(values)


class VAETask(Task):
    name = "user-vae"
    metrics = (MetricSpec("elbo", "nats", True, "ELBO"), MetricSpec("mse", "", False, "MSE"))
    primary = "elbo"

    def check(self, outputs: Any, target: Any) -> None:
        if not (isinstance(outputs, tuple) and len(outputs) == 3):
            raise ModelError(mismatch(self, outputs, target, "(reconstruction, mu, logvar)"))

    def _negative_elbo(self, outputs: Any, target: Any) -> torch.Tensor:
        self.check(outputs, target)
        recon, mu, logvar = outputs
        rec = F.binary_cross_entropy(recon.clamp(1e-6, 1 - 1e-6), target, reduction="sum") / len(target)
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / len(target)
        return rec + kl

    def loss(self, outputs: Any, target: Any) -> torch.Tensor:
        return self._negative_elbo(outputs, target)

    def metric_state(self) -> _Mean:
        return _Mean(lambda o, t: {"elbo": -self._negative_elbo(o, t), "mse": F.mse_loss(o[0], t)})


def _boxes(outputs: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(scores [n], boxes [n, 4] as cx, cy, w, h fractions) per image, over every cell of both heads."""
    per_image = []
    for maps in zip(*outputs, strict=True):
        scores, boxes = [], []
        for head in maps:
            _, h, w = head.shape
            ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
            cx = (xs + torch.sigmoid(head[1])) / w
            cy = (ys + torch.sigmoid(head[2])) / h
            scores.append(torch.sigmoid(head[0]).flatten())
            boxes.append(
                torch.stack([cx, cy, torch.sigmoid(head[3]), torch.sigmoid(head[4])], -1).view(-1, 4)
            )
        per_image.append((torch.cat(scores), torch.cat(boxes)))
    return per_image


def _iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a0, a1, b0, b1 = (
        a[..., :2] - a[..., 2:] / 2,
        a[..., :2] + a[..., 2:] / 2,
        b[:2] - b[2:] / 2,
        b[:2] + b[2:] / 2,
    )
    inter = (torch.minimum(a1, b1) - torch.maximum(a0, b0)).clamp(min=0).prod(-1)
    return inter / (a[..., 2:].prod(-1) + b[2:].prod() - inter)


class _MapState:
    """VOC-style AP at IoU 0.5 over the top-k detections of every image (one box per image)."""

    def __init__(self, top_k: int = 3) -> None:
        self.top_k, self.found, self.images = top_k, [], 0

    def update(self, outputs: Any, target: Any) -> None:
        for (scores, boxes), truth in zip(_boxes(outputs), target, strict=True):
            order = scores.argsort(descending=True)[: self.top_k]
            hits = _iou(boxes[order], truth) >= 0.5
            first = hits.nonzero()
            for rank, index in enumerate(order):
                self.found.append((float(scores[index]), bool(first.numel() and first[0, 0] == rank)))
            self.images += 1

    def compute(self) -> dict[str, float]:
        tp = 0
        precisions = []
        for rank, (_, hit) in enumerate(sorted(self.found, key=lambda item: -item[0]), 1):
            if hit:
                tp += 1
                precisions.append(tp / rank)
        return {"map50": sum(precisions) / self.images if self.images else float("nan")}


class DetectionTask(Task):
    name = "user-detection"
    metrics = (MetricSpec("map50", "%", True, "mAP@0.5"),)
    primary = "map50"

    def check(self, outputs: Any, target: Any) -> None:
        if not (isinstance(outputs, tuple) and len(outputs) == 2 and all(o.shape[1] == 5 for o in outputs)):
            raise ModelError(mismatch(self, outputs, target, "two head maps [batch, 5, h, w]"))

    def loss(self, outputs: Any, target: Any) -> torch.Tensor:
        self.check(outputs, target)
        total = outputs[0].new_zeros(())
        for head in outputs:
            b, _, h, w = head.shape
            gx = (target[:, 0] * w).long().clamp(0, w - 1)
            gy = (target[:, 1] * h).long().clamp(0, h - 1)
            objectness = torch.zeros(b, h, w)
            objectness[torch.arange(b), gy, gx] = 1.0
            total = total + F.binary_cross_entropy_with_logits(head[:, 0], objectness)
            cell = head[torch.arange(b), 1:, gy, gx]
            goal = torch.stack([target[:, 0] * w - gx, target[:, 1] * h - gy, target[:, 2], target[:, 3]], 1)
            total = total + F.l1_loss(torch.sigmoid(cell), goal)
        return total

    def metric_state(self) -> _MapState:
        return _MapState()


def flow_task() -> Task:
    return FlowTask()


def segmentation_task(classes: int = 3) -> Task:
    return SegmentationTask(classes)


def reconstruction_task(data_range: float = 2.0) -> Task:
    return ReconstructionTask(data_range)


def vae_task() -> Task:
    return VAETask()


def detection_task() -> Task:
    return DetectionTask()
