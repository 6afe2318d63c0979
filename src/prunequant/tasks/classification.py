"""Image classification: cross-entropy, top-1 and top-5 accuracy, prediction agreement for parity."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy

from prunequant.errors import ModelError
from prunequant.tasks.base import BatchTransform, Task, mismatch
from prunequant.tasks.compare import OutputComparison
from prunequant.tasks.io import Outputs, flatten_outputs
from prunequant.tasks.metric import MetricSpec
from prunequant.validation import check_fraction


def _logits(task: Task, outputs: Outputs, target: Any) -> torch.Tensor:
    if isinstance(outputs, torch.Tensor) and outputs.dim() == 2:
        return outputs
    raise ModelError(mismatch(task, outputs, target, "one logits tensor [batch, classes]"))


class ClassificationTask(Task):
    """Integer class labels; the model returns logits [batch, classes].

    Parameters
    ----------
    label_smoothing:
        Cross-entropy label smoothing in [0, 1).
    """

    name = "classification"
    metrics = (
        MetricSpec("top1", "%", True, "top-1 accuracy"),
        MetricSpec("top5", "%", True, "top-5 accuracy"),
    )
    primary = "top1"

    def __init__(
        self,
        *,
        label_smoothing: float = 0.0,
        transform_fn: BatchTransform | None = None,
        target_key: str = "target",
    ) -> None:
        super().__init__(transform_fn=transform_fn, target_key=target_key)
        self.label_smoothing = check_fraction("label_smoothing", label_smoothing)

    def check(self, outputs: Outputs, target: Any) -> None:
        logits = _logits(self, outputs, target)
        if not isinstance(target, torch.Tensor) or target.dtype.is_floating_point or target.dim() != 1:
            raise ModelError(mismatch(self, outputs, target, "integer class labels [batch] as the target"))
        if target.numel() and int(target.max()) >= logits.shape[1]:
            raise ModelError(
                f"task 'classification': a label is {int(target.max())} but the model has only "
                f"{logits.shape[1]} classes; set num_classes to match the data"
            )

    def loss(self, outputs: Outputs, target: Any) -> torch.Tensor:
        self.check(outputs, target)
        return F.cross_entropy(outputs, target, label_smoothing=self.label_smoothing)

    def metric_state(self) -> _AccuracyState:
        return _AccuracyState(self)

    def comparison(self) -> _AgreementComparison:
        return _AgreementComparison()


class _AccuracyState:
    """Top-1 / top-5 through torchmetrics; the class count is taken from the first logits seen."""

    def __init__(self, task: ClassificationTask) -> None:
        self.task = task
        self.top1: MulticlassAccuracy | None = None
        self.top5: MulticlassAccuracy | None = None
        self.samples = 0

    def update(self, outputs: Outputs, target: Any) -> None:
        self.task.check(outputs, target)
        logits = outputs.detach().float()
        if self.top1 is None:
            classes = logits.shape[1]
            self.top1 = MulticlassAccuracy(classes, top_k=1, average="micro")
            self.top5 = MulticlassAccuracy(classes, top_k=min(5, classes), average="micro")
        self.top1.update(logits, target)
        self.top5.update(logits, target)
        self.samples += target.numel()

    def compute(self) -> dict[str, float]:
        if self.top1 is None:
            return {"top1": float("nan"), "top5": float("nan")}
        return {"top1": self._exact(self.top1), "top5": self._exact(self.top5)}

    def _exact(self, metric: MulticlassAccuracy) -> float:
        """torchmetrics returns float32; hits/n in float64 is recovered exactly (n < 2**22 samples)."""
        return round(float(metric.compute()) * self.samples) / self.samples


class _AgreementComparison(OutputComparison):
    """Output errors plus `agreement`: the share of samples with the same predicted class."""

    def __init__(self) -> None:
        super().__init__()
        self._agree = 0
        self._samples = 0

    def update(self, reference: Outputs, candidate: Outputs, target: Any = None) -> None:
        super().update(reference, candidate, target)
        ref, cand = flatten_outputs(reference)[0], flatten_outputs(candidate)[0]
        self._agree += int(ref.argmax(1).eq(cand.argmax(1)).sum())
        self._samples += ref.shape[0]

    def compute(self) -> dict[str, Any]:
        result = super().compute()
        result["agreement"] = self._agree / self._samples if self._samples else float("nan")
        return result
