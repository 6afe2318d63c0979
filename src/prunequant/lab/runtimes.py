"""The deployment runtimes a candidate can ship on: ONE table, each entry saying which models it applies
to, how it writes the model file and how it loads that file back (to score it and to time it).

A model's kind decides its forms: the original and a physically smaller (channel-pruned) float model run
on onnxruntime fp32 and int8 (onnxruntime's own calibration, method "ort"); a quantized model runs as our
int8 QDQ graph (method "ours": its own PTQ/QAT scales). A model whose only change is masked zeros has no
form: dense kernels run it exactly as fast as the original ("no speed gain: dense kernels").

"pt2e-int8", the torch-native int8 path, is opt-in (recipe `[run] runtimes`): the original, a smaller or
a quantized model is quantized by PT2E's X86InductorQuantizer, calibrated by its own observers on the same
calibration batches as onnxruntime's int8 (for a quantized model our scales are not kept: PT2E
re-quantizes its BN-folded, weight-rounded float form), and saved as a `torch.export` program (.pt2). It
is scored as that program's module in eager torch and timed compiled by inductor (freezing) in its own
worker process (prunequant.export.pt2e_worker).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from prunequant.errors import ConfigError
from prunequant.export.bench import Candidate, onnx_candidate
from prunequant.export.weight_dtype import choose_weight_dtype
from prunequant.lab.env import Env
from prunequant.lab.tomlfields import suggest
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
    """One deployment target; `usage` tells a user how to run its file (the model card's "usage").

    `applies(kind)` says whether a model of that kind runs on it; `export(model, env, path, calib)` writes
    the file at `path` and returns facts about it (precision, method, ...); `load(path, threads)` returns
    (a callable scored like a torch model, the bench Candidate that times it).
    """

    name: str
    suffix: str
    usage: str
    applies: Callable[[ModelKind], bool]
    export: Callable[[nn.Module, Env, Path, list[Any]], dict[str, Any]]
    load: Callable[[Path, int], tuple[Any, Candidate]]


ONNX_USAGE = "onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])"
PT2E_USAGE = (
    "import torchao (it registers the quantized_decomposed ops), torch._inductor.config.freezing = True, "
    "torch.compile(torch.export.load(path).module(), dynamic=False); it compiles once per input shape"
)


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


def _export_pt2e(model: nn.Module, env: Env, path: Path, calib: list[Any]) -> dict[str, Any]:
    from prunequant.export.pt2e_int8 import export_pt2e_int8

    result = export_pt2e_int8(model, path, env.sample, calib, task=env.task, calib_batches=len(calib))
    ours = " (our fake-quant scales are not kept)" if is_quantized(model) else ""
    return {
        "precision": result.precision,
        "method": result.method,
        "layers": result.layers,
        "quantizer": result.quantizer,
        "source": result.source,
        "calibration": f"PT2E's own observers on the same {result.calib_batches} calibration batches as "
        f"onnxruntime int8{ours}",
        "scored": "the .pt2 program's module in eager torch (reference q/dq arithmetic); timed compiled",
    }


def _load_pt2e(path: Path, threads: int) -> tuple[Any, Candidate]:
    from prunequant.export.pt2e_artifact import EagerProgram
    from prunequant.export.pt2e_worker import pt2e_candidate

    return EagerProgram(path), pt2e_candidate(path, threads)


RUNTIMES: dict[str, Runtime] = {
    "onnxruntime-fp32": Runtime(
        "onnxruntime-fp32",
        ".fp32.onnx",
        ONNX_USAGE,
        lambda kind: not kind.quantized and (kind.original or kind.smaller),
        _export_fp32,
        _load_onnx,
    ),
    "onnxruntime-int8": Runtime(
        "onnxruntime-int8",
        ".int8.onnx",
        ONNX_USAGE,
        lambda kind: kind.original or kind.smaller or kind.quantized,
        _export_int8,
        _load_onnx,
    ),
    "pt2e-int8": Runtime(
        "pt2e-int8",
        ".int8.pt2",
        PT2E_USAGE,
        lambda kind: kind.original or kind.smaller or kind.quantized,
        _export_pt2e,
        _load_pt2e,
    ),
}
"""Every runtime, in the order forms are listed."""


def runtimes_for(kind: ModelKind, names: Iterable[str]) -> list[Runtime]:
    """The runtimes among `names` a model of `kind` deploys on, in RUNTIMES order (empty: masked zeros
    only, no speed gain)."""
    chosen = set(names)
    return [runtime for runtime in RUNTIMES.values() if runtime.name in chosen and runtime.applies(kind)]


def check_runtimes(names: Iterable[str]) -> None:
    """Raise one ConfigError for an unknown, repeated or missing runtime name (listing the known ones)."""
    names = list(names)
    for name in names:
        if name not in RUNTIMES:
            raise ConfigError(f"runtimes: unknown runtime {name!r}{suggest(name, RUNTIMES)}")
        if names.count(name) > 1:
            raise ConfigError(f"runtimes: {name!r} is listed twice")
    if not names:
        raise ConfigError(f"runtimes must name at least one runtime (valid: {', '.join(sorted(RUNTIMES))})")
