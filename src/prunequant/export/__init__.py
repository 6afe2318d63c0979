"""Deployment: ONNX export (fp32, int8 QDQ), onnxruntime runner, parity and side-by-side benchmarks.

Names are imported on first use, so `prunequant.export.storage` loads without torch.onnx or onnxruntime.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "export_onnx": "onnx_fp32",
    "export_int8": "onnx_int8",
    "ExportResult": "onnx_int8",
    "OrtQuantConfig": "ort_quantizer",
    "quantize_with_ort": "ort_quantizer",
    "OnnxRunner": "runtime",
    "parity": "parity",
    "ParityReport": "parity",
    "bench": "bench",
    "BenchReport": "bench",
    "BenchRow": "bench",
    "Candidate": "bench",
    "check_supported": "validate",
    "unsupported_nodes": "validate",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'prunequant.export' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"prunequant.export.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value
