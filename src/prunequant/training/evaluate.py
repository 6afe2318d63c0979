"""Evaluation: a task's metrics and mean loss over a loader, for a torch model or any output callable."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from prunequant.tasks import BatchTransform, Task, batch_size_of, run_model, to_device, with_transform
from prunequant.training.chance import chance_warnings
from prunequant.training.device import Device, model_device, placed_on, resolve_device


@dataclass(frozen=True)
class EvalResult:
    """A task's metrics (by name), the mean loss, the number of samples and the primary metric's name.

    Metrics are reachable as attributes too (`result.<metric name>`), and `score` is the primary one.
    `warnings` names what does not look right, e.g. a classifier at or below chance level.
    """

    metrics: dict[str, float]
    loss: float
    n: int
    primary: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def __getattr__(self, name: str) -> float:
        metrics = self.__dict__.get("metrics", {})
        if name in metrics:
            return metrics[name]
        known = ", ".join(metrics)
        raise AttributeError(f"EvalResult has no metric or attribute '{name}' (metrics: {known})")

    @property
    def score(self) -> float:
        """The primary metric's value."""
        return self.metrics[self.primary]

    def to_dict(self) -> dict[str, float]:
        return {**self.metrics, "loss": self.loss, "n": self.n}


Predictor = Callable[..., Any]


def evaluate(
    model: torch.nn.Module | Predictor,
    loader: Iterable,
    task: Task | None = None,
    *,
    max_batches: int = 0,
    transform_fn: BatchTransform | None = None,
    device: Device | None = None,
) -> EvalResult:
    """Score `model` on `loader` with `task`'s metrics and loss.

    Parameters
    ----------
    model:
        An nn.Module, or any callable taking the task's inputs (e.g. an ONNX runner).
    loader:
        Yields batches the task can split into (inputs, target).
    task:
        Defaults to classification (prunequant.tasks.default_task).
    max_batches:
        Stop after this many batches (0: all).
    transform_fn:
        ``batch -> (inputs, target)`` for batches of any other shape (dicts, extra fields); see `Task`.
    device:
        Where to run: "auto" (CUDA if available, else CPU), "cpu", "cuda", ...; None: where the model is
        (the CPU for callables). The model is moved there for the evaluation and back afterwards.

    Returns
    -------
    EvalResult with every metric of the task; metrics are NaN when the loader is empty. A classifier
    whose top-1 is at or below 1.5 / classes gets a line in `warnings` (and a UserWarning).
    """
    task = with_transform(task, transform_fn)
    where = model_device(model) if device is None else resolve_device(device)
    if isinstance(model, torch.nn.Module):
        model.eval()
    state = task.metric_state()
    loss_sum, n, outputs = 0.0, 0, None
    with placed_on(model, where), torch.inference_mode():  # moved outside inference mode
        for index, batch in enumerate(loader):
            if max_batches and index >= max_batches:
                break
            inputs, target = to_device(task.split(batch), where)
            outputs = to_device(run_model(model, inputs), "cpu")  # metric states live on the CPU
            target = to_device(target, "cpu")
            size = batch_size_of(inputs)
            loss_sum += float(task.loss(outputs, target)) * size
            state.update(outputs, target)
            n += size
    if n == 0:
        nan = {spec.name: math.nan for spec in task.metrics}
        return EvalResult(metrics=nan, loss=math.nan, n=0, primary=task.primary)
    metrics = state.compute()
    notes = chance_warnings(task, metrics, outputs)
    return EvalResult(metrics=metrics, loss=loss_sum / n, n=n, primary=task.primary, warnings=notes)
