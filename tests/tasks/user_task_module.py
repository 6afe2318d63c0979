"""A user task that does not subclass prunequant.tasks.Task (duck-typed), built by 'module:factory'."""

from __future__ import annotations

from typing import Any

import torch

from prunequant.tasks import MetricSpec, OutputComparison


class MeanAbsoluteErrorTask:
    """Vector regression [batch, K] scored by mean absolute error times `scale`."""

    name = "user_mae"
    metrics = (MetricSpec("mae", "", False, "mean absolute error"),)
    primary = "mae"

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale

    def split(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return batch[0], batch[1]

    def inputs(self, batch: Any) -> torch.Tensor:
        return batch[0]

    def check(self, outputs: Any, target: Any) -> None:
        pass

    def loss(self, outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (outputs - target).abs().mean() * self.scale

    def metric_state(self) -> _State:
        return _State(self.scale)

    def comparison(self) -> OutputComparison:
        return OutputComparison()

    def metric(self, name: str | None = None) -> MetricSpec:
        return self.metrics[0]


class _State:
    def __init__(self, scale: float) -> None:
        self.scale, self.total, self.count = scale, 0.0, 0

    def update(self, outputs: torch.Tensor, target: torch.Tensor) -> None:
        self.total += float((outputs - target).abs().sum())
        self.count += target.numel()

    def compute(self) -> dict[str, float]:
        return {"mae": self.scale * self.total / max(1, self.count)}


def make_task(scale: float = 1.0) -> MeanAbsoluteErrorTask:
    """The factory a recipe names as 'user_task_module:make_task'."""
    return MeanAbsoluteErrorTask(scale)


class Incomplete:
    """Lacks loss and metric_state: build_task must refuse it."""

    name, metrics, primary = "incomplete", (), ""

    def split(self, batch: Any) -> Any:
        return batch

    def comparison(self) -> OutputComparison:
        return OutputComparison()

    def metric(self, name: str | None = None) -> None:
        return None


NOT_CALLABLE = 3
