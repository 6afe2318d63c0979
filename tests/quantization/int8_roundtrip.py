"""quantize -> export int8 -> onnxruntime, against the fake-quant reference (shared by the coverage tests)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from prunequant.export.onnx_int8 import ExportResult, export_int8
from prunequant.export.runtime import OnnxRunner
from prunequant.quantization import QuantConfig, quantize


@dataclass
class Roundtrip:
    qmodel: nn.Module
    result: ExportResult
    max_diff: float
    """max |onnxruntime - fake-quant| over the outputs, in units of the output range."""
    mean_diff: float
    """mean |onnxruntime - fake-quant|, in units of the output range (one-code flips at rounding ties
    dominate the max in deep nets)."""
    ops: dict[str, int]


def settle(model: nn.Module, shape: tuple[int, ...], seed: int = 0) -> nn.Module:
    """Random BN statistics from one batch (so random nets have sane activations); eval mode."""
    for norm in model.modules():
        if isinstance(norm, nn.modules.batchnorm._BatchNorm):
            norm.momentum = None
            norm.reset_running_stats()
    model.train()
    with torch.no_grad():
        model(torch.randn(16, *shape, generator=torch.Generator().manual_seed(seed)))
    return model.eval()


def roundtrip(
    model: nn.Module,
    shape: tuple[int, ...],
    path: Path,
    config: QuantConfig | None = None,
    *,
    warn: bool = False,
    **quant: object,
) -> Roundtrip:
    """PTQ 8/8 on 2 random batches of `shape`, int8 export, and the error on 16 fresh inputs (`warn`: let
    the warnings of quantize and export through)."""
    generator = torch.Generator().manual_seed(1)
    calib = [(torch.randn(8, *shape, generator=generator), torch.zeros(8)) for _ in range(2)]
    with warnings.catch_warnings():
        if not warn:
            warnings.simplefilter("ignore")
        qmodel = quantize(settle(model, shape), config or QuantConfig(), calib, calib_batches=2, **quant)
        qmodel.eval()
        result = export_int8(qmodel, path, torch.randn(1, *shape))
    x = torch.randn(16, *shape, generator=generator)
    with torch.no_grad():
        reference = qmodel(x)
    runner = OnnxRunner(result.output, threads=1)
    span = float(reference.max() - reference.min()) or 1.0
    error = (runner(x) - reference).abs()
    ops = dict(runner.optimized_ops())
    return Roundtrip(qmodel, result, float(error.max()) / span, float(error.mean()) / span, ops)
