"""Sim-deploy parity: a torch model (fake-quant or fp32) against its onnxruntime export, batch by batch."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import torch
from torch import nn

from prunequant.errors import DataError
from prunequant.export.runtime import OnnxRunner


@dataclass(frozen=True)
class ParityReport:
    """How closely onnxruntime reproduces torch on `n` labelled samples (accuracies in [0, 1]).

    `agreement` is the share of samples whose top-1 class is the same in both; `accuracy_diff` is
    top1_onnx - top1_torch; logit differences are absolute, over every logit of every sample.
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


def parity(
    torch_model: nn.Module,
    onnx_model: str | os.PathLike[str] | OnnxRunner,
    loader: Iterable,
    *,
    max_batches: int = 0,
    threads: int | None = None,
) -> ParityReport:
    """Run `torch_model` and the ONNX model on the same batches of `loader`; compare top-1 and logits."""
    runner = onnx_model if isinstance(onnx_model, OnnxRunner) else OnnxRunner(onnx_model, threads)
    torch_model.eval()
    n = agree = hits_torch = hits_onnx = 0
    max_diff = abs_sum = 0.0
    logit_count = 0
    with torch.inference_mode():
        for index, (inputs, targets) in enumerate(loader):
            if max_batches and index >= max_batches:
                break
            expected = torch_model(inputs).float()
            actual = runner(inputs).float()
            diff = (expected - actual).abs()
            max_diff = max(max_diff, diff.max().item())
            abs_sum += diff.sum().item()
            logit_count += diff.numel()
            pred_torch, pred_onnx = expected.argmax(1), actual.argmax(1)
            agree += pred_torch.eq(pred_onnx).sum().item()
            hits_torch += pred_torch.eq(targets).sum().item()
            hits_onnx += pred_onnx.eq(targets).sum().item()
            n += targets.numel()
    if n == 0:
        raise DataError("the parity loader yielded no samples; pass a non-empty test set")
    return ParityReport(
        agreement=agree / n,
        top1_torch=hits_torch / n,
        top1_onnx=hits_onnx / n,
        accuracy_diff=(hits_onnx - hits_torch) / n,
        max_abs_logit_diff=max_diff,
        mean_abs_logit_diff=abs_sum / logit_count,
        n=n,
    )
