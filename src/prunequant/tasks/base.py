"""The Task seam: the one place that knows what a batch, a loss, a metric and an output comparison are.

Everything that trains, scores or compares models (Trainer, evaluate, calibration, QAT, BN recalibration,
data-driven importance, sensitivity scans, the dynamic threshold, parity, the lab and the report) asks a
Task. A user task is any object with the same methods (duck-typed), or a `module:factory` returning one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import torch

from prunequant.errors import ConfigError, DataError
from prunequant.tasks.compare import OutputComparison
from prunequant.tasks.io import Inputs, Outputs, describe
from prunequant.tasks.metric import MetricSpec

BatchTransform = Callable[[Any], tuple[Inputs, Any]]


class MetricState(Protocol):
    """Accumulates a task's metrics over batches."""

    def update(self, outputs: Outputs, target: Any) -> None: ...

    def compute(self) -> dict[str, float]: ...


class Comparison(Protocol):
    """Accumulates how closely a candidate model's outputs follow a reference model's."""

    def update(self, reference: Outputs, candidate: Outputs, target: Any = None) -> None: ...

    def compute(self) -> dict[str, Any]: ...


class Task:
    """Base class of the built-in tasks; subclasses set `name`, `metrics`, `primary` and `loss`.

    Parameters
    ----------
    transform_fn:
        Optional ``batch -> (inputs, target)`` for loaders of any shape (dicts, extra fields), as in
        NNCF's ``nncf.Dataset(loader, transform_fn)``. Without it, see `split`.
    target_key:
        For dict batches: the key holding the target (the other keys are the inputs).
    """

    name: str = "task"
    metrics: tuple[MetricSpec, ...] = ()
    primary: str = ""

    def __init__(self, *, transform_fn: BatchTransform | None = None, target_key: str = "target") -> None:
        self.transform_fn = transform_fn
        self.target_key = target_key

    # ---- batches -------------------------------------------------------------------------------------
    def split(self, batch: Any) -> tuple[Inputs, Any]:
        """Model inputs and target of one loader batch.

        Default: `transform_fn(batch)` if given; a dict -> (all keys but `target_key`, batch[target_key]);
        a 2-sequence -> (batch[0], batch[1]); a longer sequence -> (tuple(batch[:-1]), batch[-1]);
        a bare tensor -> (batch, None).
        """
        if self.transform_fn is not None:
            return self.transform_fn(batch)
        if isinstance(batch, torch.Tensor):
            return batch, None
        if isinstance(batch, Mapping):
            if self.target_key not in batch:
                raise DataError(
                    f"task '{self.name}' cannot split a dict batch without key '{self.target_key}' "
                    f"(keys: {', '.join(map(str, batch))}); set the task's target_key or transform_fn"
                )
            inputs = {k: v for k, v in batch.items() if k != self.target_key}
            return (next(iter(inputs.values())) if len(inputs) == 1 else inputs), batch[self.target_key]
        if isinstance(batch, (tuple, list)):
            if len(batch) < 2:
                return batch[0], None
            if len(batch) == 2:
                return batch[0], batch[1]
            return tuple(batch[:-1]), batch[-1]
        raise DataError(
            f"task '{self.name}' cannot split a batch of type {type(batch).__name__}; the loader must yield "
            "(inputs, target) tuples or dicts, or give the task a transform_fn"
        )

    def inputs(self, batch: Any) -> Inputs:
        """Only the model inputs of a batch (calibration, importance, BN recalibration need no target)."""
        return self.split(batch)[0]

    # ---- training and scoring ------------------------------------------------------------------------
    def loss(self, outputs: Outputs, target: Any) -> torch.Tensor:
        """Mean training loss of a batch."""
        raise NotImplementedError

    def metric_state(self) -> MetricState:
        """A fresh accumulator of this task's metrics."""
        raise NotImplementedError

    def check(self, outputs: Outputs, target: Any) -> None:
        """Raise ModelError (one line naming both) when `outputs` do not fit this task and `target`."""

    def comparison(self) -> Comparison:
        """A fresh accumulator comparing a candidate's outputs to a reference's (parity)."""
        return OutputComparison()

    # ---- metric lookup -------------------------------------------------------------------------------
    def metric(self, name: str | None = None) -> MetricSpec:
        """The MetricSpec called `name` (the primary one by default)."""
        name = name or self.primary
        for spec in self.metrics:
            if spec.name == name:
                return spec
        raise ConfigError(
            f"task '{self.name}' has no metric '{name}'; its metrics are: "
            + ", ".join(spec.name for spec in self.metrics)
        )

    @property
    def primary_metric(self) -> MetricSpec:
        return self.metric(self.primary)

    def describe(self) -> dict[str, Any]:
        """JSON-safe summary for stores and reports."""
        return {
            "name": self.name,
            "primary": self.primary,
            "metrics": [
                {"name": m.name, "unit": m.unit, "higher_is_better": m.higher_is_better, "label": m.label}
                for m in self.metrics
            ],
        }


def mismatch(task: Task, outputs: Outputs, target: Any, expected: str) -> str:
    """The one-line message for outputs that do not fit a task."""
    return (
        f"task '{task.name}' expects {expected}, but the model returned {describe(outputs)} "
        f"for a target of {describe(target)}; pick the task that fits the model (--task) or fix the model"
    )
