"""The deployment runtimes a candidate can ship on: ONE table, each entry saying which models it applies
to, how it writes the model file and how it loads that file back (to score it and to time it).

A model's kind decides its forms: the original and a physically smaller (channel-pruned) float model run
on onnxruntime fp32 and int8 (onnxruntime's own calibration, method "ort"); a quantized model runs as our
int8 QDQ graph (method "ours": its own PTQ/QAT scales). A model whose only change is masked zeros has no
form: dense kernels run it exactly as fast as the original ("no speed gain: dense kernels").
A further runtime (e.g. a torch-native PT2E int8 file) is one more entry of RUNTIMES.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from prunequant.export.bench import Candidate, onnx_candidate
from prunequant.export.weight_dtype import choose_weight_dtype
from prunequant.lab.env import Env
from prunequant.quantization import is_quantized
from prunequant.timing import NO_SPEED_GAIN_DENSE

NO_SPEED_GAIN = NO_SPEED_GAIN_DENSE
"""Why a masked (unstructured) model has no deployable speed form."""


@dataclass(frozen=True)
class ModelKind:
    """What a candidate is, as far as deployment cares."""

    original: bool
    quantized: bool
    smaller: bool

    @classmethod
    def of(cls, model: nn.Module, original: nn.Module | None) -> ModelKind:
        """The kind of `model`; `original` None means `model` is the original itself."""
        if original is None:
            return cls(True, False, False)
        return cls(False, is_quantized(model), _numel(model) < _numel(original))


@dataclass(frozen=True)
class Runtime:
    """One deployment target.

    `applies(kind)` says whether a model of that kind runs on it; `export(model, env, path, calib)` writes
    the file at `path` and returns facts about it (precision, method, ...); `load(path, threads)` returns
    (a callable scored like a torch model, the bench Candidate that times it).
    """

    name: str
    suffix: str
    applies: Callable[[ModelKind], bool]
    export: Callable[[nn.Module, Env, Path, list[Any]], dict[str, Any]]
    load: Callable[[Path, int], tuple[Any, Candidate]]


def _numel(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _load_onnx(path: Path, threads: int) -> tuple[Any, Candidate]:
    from prunequant.export.runtime import OnnxRunner

    runner = OnnxRunner(path, threads)
    return runner, onnx_candidate(path.name, runner)


def _export_fp32(model: nn.Module, env: Env, path: Path, calib: list[Any]) -> dict[str, Any]:
    from prunequant.export.onnx_fp32 import export_onnx
    from prunequant.lab.measure import deployed_fp32

    export_onnx(deployed_fp32(model), path, env.sample)
    return {"precision": "fp32", "method": "float"}


def _export_int8(model: nn.Module, env: Env, path: Path, calib: list[Any]) -> dict[str, Any]:
    from prunequant.export.onnx_int8 import export_int8
    from prunequant.export.ort_quantizer import OrtQuantConfig

    method, choice = ("ours" if is_quantized(model) else "ort"), choose_weight_dtype("auto")
    result = export_int8(
        model,
        path,
        env.sample,
        method,
        calib_loader=calib,
        ort_config=OrtQuantConfig(weights="s8" if choice.dtype == "int8" else "u8", calib_batches=len(calib)),
        weight_dtype=choice.dtype,
        task=env.task,
    )
    weights = f"{'S8' if choice.dtype == 'int8' else 'U8'} ({choice.reason})"
    return {"precision": result.precision, "method": method, "layers": result.layers, "weights": weights}


RUNTIMES: dict[str, Runtime] = {
    "onnxruntime-fp32": Runtime(
        "onnxruntime-fp32",
        ".fp32.onnx",
        lambda kind: not kind.quantized and (kind.original or kind.smaller),
        _export_fp32,
        _load_onnx,
    ),
    "onnxruntime-int8": Runtime(
        "onnxruntime-int8",
        ".int8.onnx",
        lambda kind: kind.original or kind.smaller or kind.quantized,
        _export_int8,
        _load_onnx,
    ),
}
"""Every runtime, in the order forms are listed; the torch-native PT2E int8 path joins here."""


def runtimes_for(kind: ModelKind) -> list[Runtime]:
    """The runtimes a model of `kind` deploys on (empty: masked zeros only, no speed gain)."""
    return [runtime for runtime in RUNTIMES.values() if runtime.applies(kind)]
