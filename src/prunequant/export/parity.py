"""Sim-deploy parity: a torch model (fake-quant or fp32) against its onnxruntime export, batch by batch.

The task says how batches split into inputs and target, how the two models' outputs are compared
(`task.comparison()`) and which metric matters (`task.primary`), measured on both sides.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from prunequant.errors import DataError
from prunequant.export.runtime import OnnxRunner
from prunequant.tasks import Outputs, Task, batch_size_of, default_task, flatten_outputs, run_model


@dataclass(frozen=True)
class ParityReport:
    """How closely onnxruntime reproduces torch on `n` labelled samples of a classification task.

    `agreement` is the share of samples whose predicted class is the same in both; `top1_*` are the
    primary metric on each side (accuracies in [0, 1]); `accuracy_diff` is top1_onnx - top1_torch; logit
    differences are absolute, over every logit of every sample.
    """

    agreement: float
    top1_torch: float
    top1_onnx: float
    accuracy_diff: float
    max_abs_logit_diff: float
    mean_abs_logit_diff: float
    n: int

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class OutputParityReport:
    """Parity for any task: output errors (all outputs, and per output name) and the primary metric on both
    sides (`metric_drop` > 0: the ONNX model is worse, in the metric's direction)."""

    n: int
    metric: str
    metric_torch: float
    metric_onnx: float
    metric_drop: float
    max_abs_diff: float
    mean_abs_diff: float
    mean_rel_diff: float
    outputs: dict[str, dict[str, float]] = field(default_factory=dict)
    metrics_torch: dict[str, float] = field(default_factory=dict)
    metrics_onnx: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parity(
    torch_model: nn.Module,
    onnx_model: str | os.PathLike[str] | OnnxRunner,
    loader: Iterable,
    *,
    max_batches: int = 0,
    threads: int | None = None,
    task: Task | None = None,
) -> ParityReport | OutputParityReport:
    """Run `torch_model` and the ONNX model on the same batches of `loader` and compare them.

    Parameters
    ----------
    loader:
        Batches that `task` splits into inputs (a tensor, tuple or dict) and a target.
    task:
        Default classification, which gives a ParityReport (agreement, top-1 on both sides, logit
        differences); a task whose comparison has no `agreement` gives an OutputParityReport.

    Returns
    -------
    ParityReport or OutputParityReport; DataError when the loader yields no samples.
    """
    task = task or default_task()
    runner = onnx_model if isinstance(onnx_model, OnnxRunner) else OnnxRunner(onnx_model, threads)
    torch_model.eval()
    comparison, on_torch, on_onnx = task.comparison(), task.metric_state(), task.metric_state()
    n = 0
    with torch.inference_mode():
        for index, batch in enumerate(loader):
            if max_batches and index >= max_batches:
                break
            inputs, target = task.split(batch)
            expected = run_model(torch_model, inputs)
            actual = restructure(expected, runner(inputs))
            comparison.update(expected, actual, target)
            on_torch.update(expected, target)
            on_onnx.update(actual, target)
            n += batch_size_of(inputs)
    if n == 0:
        raise DataError("the parity loader yielded no samples; pass a non-empty test set")
    compared, metrics_torch, metrics_onnx = comparison.compute(), on_torch.compute(), on_onnx.compute()
    primary = task.primary_metric
    before, after = metrics_torch[primary.name], metrics_onnx[primary.name]
    if "agreement" in compared:
        return ParityReport(
            agreement=compared["agreement"],
            top1_torch=before,
            top1_onnx=after,
            accuracy_diff=after - before,
            max_abs_logit_diff=compared["max_abs_diff"],
            mean_abs_logit_diff=compared["mean_abs_diff"],
            n=n,
        )
    return OutputParityReport(
        n=n,
        metric=primary.name,
        metric_torch=before,
        metric_onnx=after,
        metric_drop=primary.drop(before, after),
        max_abs_diff=compared["max_abs_diff"],
        mean_abs_diff=compared["mean_abs_diff"],
        mean_rel_diff=compared["mean_rel_diff"],
        outputs=compared["outputs"],
        metrics_torch=metrics_torch,
        metrics_onnx=metrics_onnx,
    )


def restructure(reference: Outputs, flat: torch.Tensor | Sequence[torch.Tensor]) -> Outputs:
    """The runner's flat outputs (a tensor or a tuple) in the structure of the torch model's `reference`
    (tensor, tuple/list or dict, nested), so task metrics read both sides alike."""
    pending = list(flat) if isinstance(flat, (tuple, list)) else [flat]
    if len(pending) != len(flatten_outputs(reference)):
        return flat
    iterator = iter(pending)

    def build(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return next(iterator)
        if isinstance(value, Mapping):
            return {key: build(item) for key, item in value.items()}
        if isinstance(value, (tuple, list)):
            return type(value)(build(item) for item in value)
        return value

    return build(reference)
