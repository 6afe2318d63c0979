"""The torch-native int8 path: PT2E static quantization for x86 inductor, saved as a `torch.export` artifact.

1. The model is captured with `torch.export` (batch dimension dynamic), prepared with torchao's
   X86InductorQuantizer (static uint8 activations, int8 per-channel weights; see pt2e_backend), calibrated on
   the first `calib_batches` batches of `calib_loader` (split into inputs by the task, as for the ONNX
   int8 path), converted to a q/dq graph and exported again to a .pt2 file.
2. The file runs anywhere torch does: `torch.export.load(...).module()` in eager (reference q/dq
   arithmetic), or, for speed, `torch.compile` with `torch._inductor.config.freezing = True`, which lowers
   the q/dq patterns to oneDNN int8 kernels. Compilation and timing happen in a fresh process per artifact
   (pt2e_runner), since compile caches leak between instances.

A model fake-quantized by prunequant is handed over in its deployable float form: BatchNorm folded, weights
rounded by our quantizers, activation quantizers dropped. PT2E then re-quantizes the weights per channel
(int8, symmetric; the rounded values sit close to its grid) and calibrates its own activation ranges, so
our scales and other bit widths are not kept: parity is measured against our fake-quant model, and the
result says so in `source`.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import torch
from torch import nn

from prunequant.errors import ExportError
from prunequant.export.pt2e_artifact import first_line, save_program
from prunequant.export.pt2e_backend import load_backend
from prunequant.export.pt2e_coverage import Pt2eCoverage, graph_coverage
from prunequant.quantization import activation_quantizers, is_quantized, quantized_layers
from prunequant.tasks import Inputs, Task, default_task, run_model
from prunequant.validation import check_int_range

RUNTIME = "torch-int8 (pt2e+inductor)"
"""The runtime name of a PT2E artifact in results and benchmark tables."""


@dataclass(frozen=True)
class Pt2eResult:
    """What was written: the .pt2 file, its size, how it was quantized and which layers are int8."""

    output: str
    bytes: int
    quantizer: str
    source: str
    calib_batches: int
    layers: str
    float_layers: dict[str, str] = field(default_factory=dict)
    int8_layers: list[str] = field(default_factory=list)
    precision: str = "int8"
    method: str = "pt2e"
    runtime: str = RUNTIME

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def export_pt2e_int8(
    model: nn.Module,
    path: str | os.PathLike[str],
    example: Inputs,
    calib_loader: Iterable,
    *,
    task: Task | None = None,
    calib_batches: int = 8,
) -> Pt2eResult:
    """Quantize `model` with PT2E (X86InductorQuantizer, static, per-channel) and save it to `path` (.pt2).

    Parameters
    ----------
    model:
        A float model, or one fake-quantized by prunequant (see the module docstring).
    example:
        Model inputs (a tensor, tuple or dict, batch first) fixing the input structure; the batch
        dimension of every input is exported as dynamic.
    calib_loader:
        Batches that `task` (default classification) splits into inputs; the first `calib_batches` are used.

    Returns
    -------
    Pt2eResult
        The file, the quantizer configuration, the model form quantized and the int8 / float layers.
    """
    check_int_range("calib_batches", calib_batches, 1, 1_000_000)
    backend = load_backend()
    task = task or default_task()
    float_model, source = float_source(model)
    args, kwargs, dynamic = export_spec(example)
    prepared = backend.prepare_pt2e(_capture(float_model, args, kwargs, dynamic), backend.make_quantizer())
    seen = calibrate(prepared, calib_loader, task, calib_batches)
    converted = backend.convert_pt2e(prepared)
    coverage: Pt2eCoverage = graph_coverage(converted)
    if not coverage.int8_layers:
        raise ExportError("PT2E quantized no conv or linear layer of this model; nothing would run in int8")
    written = save_program(export_program(converted, args, kwargs, dynamic), path)
    return Pt2eResult(
        str(written),
        Path(written).stat().st_size,
        backend.describe(),
        source,
        seen,
        coverage.summary,
        coverage.float_layers,
        coverage.int8_layers,
    )


def float_source(model: nn.Module) -> tuple[nn.Module, str]:
    """The float model PT2E quantizes, and a description of it (the `source` of the result)."""
    if not is_quantized(model):
        return copy.deepcopy(model).eval(), "float model"
    from prunequant.export.onnx_int8 import deployable

    weight_bits = sorted({q.bits for _, layer in quantized_layers(model) if (q := layer.weight_quantizer)})
    act_bits = sorted({q.bits for q in activation_quantizers(model)})
    plain, _ = deployable(model, quantized_weights=True, activations="drop")
    return plain, (
        f"prunequant fake-quant model (weights {'/'.join(map(str, weight_bits)) or 'float'}-bit, activations "
        f"{'/'.join(map(str, act_bits)) or 'float'}-bit): its BN-folded, weight-rounded float form, "
        "re-quantized and re-calibrated by PT2E; parity is against the fake-quant model"
    )


def calibrate(prepared: nn.Module, loader: Iterable, task: Task, batches: int) -> int:
    """Run the first `batches` batches of `loader` through the observers of `prepared`; the count run."""
    seen = 0
    with torch.no_grad():
        for batch in islice(loader, batches):
            run_model(prepared, task.split(batch)[0])
            seen += 1
    if not seen:
        raise ExportError("the calibration loader yielded no batches; pass a non-empty dataset")
    return seen


def export_spec(example: Inputs) -> tuple[tuple, dict, Any]:
    """(args, kwargs, dynamic_shapes) for `export_program`: batch first and dynamic; an example of batch 1
    is doubled (torch.export would specialise the batch to 1)."""
    batch = torch.export.Dim("batch", min=1)

    def widened(tensor: torch.Tensor) -> torch.Tensor:
        if not isinstance(tensor, torch.Tensor) or tensor.dim() == 0:
            raise ExportError("PT2E export needs batched tensor inputs (batch first)")
        return torch.cat([tensor, tensor]) if tensor.shape[0] == 1 else tensor

    if isinstance(example, dict):
        kwargs = {key: widened(value) for key, value in example.items()}
        return (), kwargs, {key: {0: batch} for key in kwargs}
    args = tuple(widened(t) for t in (example if isinstance(example, (tuple, list)) else (example,)))
    return args, {}, tuple({0: batch} for _ in args)


def _capture(model: nn.Module, args: tuple, kwargs: dict, dynamic: Any) -> torch.fx.GraphModule:
    return export_program(model, args, kwargs, dynamic).module()


def export_program(model: nn.Module, args: tuple, kwargs: dict, dynamic: Any) -> torch.export.ExportedProgram:
    """`torch.export.export`, its failures as one-line ExportErrors."""
    try:
        return torch.export.export(model, args, kwargs, dynamic_shapes=dynamic)
    except Exception as err:  # torch.export raises many types (user errors, unsupported ops, guards)
        raise ExportError(
            f"torch.export cannot capture the model with a dynamic batch: {first_line(err)}"
        ) from err
