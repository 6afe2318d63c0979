"""Deployment: ONNX export (fp32, int8 QDQ), onnxruntime runner, parity and side-by-side benchmarks; the
torch-native int8 path (PT2E .pt2 artifacts compiled with inductor).

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
    "export_pt2e_int8": "pt2e_int8",
    "Pt2eResult": "pt2e_int8",
    "run_pt2e": "pt2e_runner",
    "Pt2eRun": "pt2e_runner",
    "load_program": "pt2e_artifact",
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
