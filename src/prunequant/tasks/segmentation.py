"""Semantic segmentation: per-pixel cross-entropy with an ignore index, mean IoU and pixel accuracy."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

from prunequant.errors import ConfigError, ModelError
from prunequant.tasks.base import BatchTransform, Task, mismatch
from prunequant.tasks.io import Outputs
from prunequant.tasks.metric import MetricSpec
from prunequant.tasks.select import check_output_index, select_output

LOGITS = "per-pixel logits [batch, classes, H, W]"


class SegmentationTask(Task):
    """Integer class maps [batch, H, W]; the model returns logits [batch, classes, H, W].

    Parameters
    ----------
    ignore_index:
        Target value of pixels that count in neither the loss nor the metrics (void, unlabeled).
    output_index:
        Which output is scored when the model returns several (e.g. main head before auxiliary heads).
    class_weights:
        Optional per-class cross-entropy weights (length = classes).
    transform_fn, target_key:
        See `Task`.
    """

    name = "segmentation"
    metrics = (
        MetricSpec("miou", "%", True, "mean IoU"),
        MetricSpec("pixel_acc", "%", True, "pixel accuracy"),
    )
    primary = "miou"

    def __init__(
        self,
        *,
        ignore_index: int = 255,
        output_index: int | str = 0,
        class_weights: list[float] | None = None,
        transform_fn: BatchTransform | None = None,
        target_key: str = "target",
    ) -> None:
        super().__init__(transform_fn=transform_fn, target_key=target_key)
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
            raise ConfigError(f"ignore_index must be an integer, got {ignore_index!r}")
        self.ignore_index = ignore_index
        self.output_index = check_output_index(output_index)
        self.class_weights = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float)

    def logits(self, outputs: Outputs, target: Any) -> torch.Tensor:
        """The scored logits of `outputs`, checked against `target`.

        Returns
        -------
        Logits [batch, classes, H, W]; ModelError naming both when they do not fit.
        """
        logits = select_output(self, outputs, target, self.output_index, LOGITS)
        if logits.dim() != 4 or not logits.dtype.is_floating_point:
            raise ModelError(mismatch(self, outputs, target, LOGITS))
        if not isinstance(target, torch.Tensor) or target.dtype.is_floating_point or target.dim() != 3:
            raise ModelError(mismatch(self, outputs, target, "an integer class map [batch, H, W] target"))
        if target.shape != logits.shape[:1] + logits.shape[2:]:
            raise ModelError(mismatch(self, outputs, target, f"{LOGITS} of the target's batch and H, W"))
        labelled = target[target != self.ignore_index]
        bad = labelled[(labelled < 0) | (labelled >= logits.shape[1])]
        if bad.numel():
            raise ModelError(
                f"task 'segmentation': a target class is {int(bad[0])} but the model has {logits.shape[1]} "
                f"classes (ignore_index={self.ignore_index}); set the class count or ignore_index to match"
            )
        return logits

    def check(self, outputs: Outputs, target: Any) -> None:
        self.logits(outputs, target)

    def loss(self, outputs: Outputs, target: Any) -> torch.Tensor:
        logits = self.logits(outputs, target)
        weight = None if self.class_weights is None else self.class_weights.to(logits.device)
        return F.cross_entropy(logits, target.long(), weight=weight, ignore_index=self.ignore_index)

    def metric_state(self) -> _SegmentationState:
        return _SegmentationState(self)


class _SegmentationState:
    """mIoU (classes absent from both prediction and target are left out) and pixel accuracy (micro)."""

    def __init__(self, task: SegmentationTask) -> None:
        self.task = task
        self.iou: MulticlassJaccardIndex | None = None
        self.accuracy: MulticlassAccuracy | None = None

    def update(self, outputs: Outputs, target: Any) -> None:
        logits = self.task.logits(outputs, target).detach()
        if self.iou is None or self.accuracy is None:
            classes, ignore = logits.shape[1], self.task.ignore_index
            self.iou = MulticlassJaccardIndex(classes, average="macro", ignore_index=ignore)
            self.accuracy = MulticlassAccuracy(
                classes, average="micro", multidim_average="global", ignore_index=ignore
            )
        predicted, target = logits.argmax(1).cpu(), target.long().cpu()
        self.iou.update(predicted, target)
        self.accuracy.update(predicted, target)

    def compute(self) -> dict[str, float]:
        if self.iou is None or self.accuracy is None:
            return {"miou": float("nan"), "pixel_acc": float("nan")}
        return {"miou": float(self.iou.compute()), "pixel_acc": float(self.accuracy.compute())}
