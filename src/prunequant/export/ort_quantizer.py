"""The `method="ort"` int8 path: onnxruntime's own static QDQ quantizer, calibrated on the user's data.

Unlike `method="ours"` it measures its own activation ranges (min/max by default) on `calib_loader`; it never
sees prunequant's scales. U8 activations with per-channel weights is the default, the weights' type chosen
for the CPU ("auto", as `export_int8`'s weight_dtype): S8 where the U8S8 kernels are exact (x86 with VNNI,
non-x86), else U8, because on x86 CPUs without VNNI (AVX2 only) the U8S8 VPMADDUBSW kernels saturate pairs
of products at int16 (measured on the tiny test CNN: agreement with the float model 0.73 instead of
>= 0.95). "u8" / "s8" force one; on a VNNI CPU S8 ran ResNet-20 2.6x faster than U8.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from prunequant.errors import DataError, ExportError
from prunequant.export.onnx_fp32 import save_model_atomic, set_precision
from prunequant.export.weight_dtype import choose_weight_dtype
from prunequant.tasks import Task, as_args, default_task, describe
from prunequant.validation import check_choice, check_int_range

_TYPES = ("u8", "s8")
_WEIGHT_TYPES = ("auto", *_TYPES)
_CALIBRATIONS = ("minmax", "entropy", "percentile")


@dataclass(frozen=True)
class OrtQuantConfig:
    """onnxruntime static-quantization settings: activation/weight types, per-channel weights, calibration."""

    activations: str = "u8"
    weights: str = "auto"
    per_channel: bool = True
    calibration: str = "minmax"
    calib_batches: int = 8

    def __post_init__(self) -> None:
        check_choice("activations", self.activations, _TYPES)
        check_choice("weights", self.weights, _WEIGHT_TYPES)
        check_choice("calibration", self.calibration, _CALIBRATIONS)
        check_int_range("calib_batches", self.calib_batches, 1, 1_000_000)

    @property
    def weight_type(self) -> str:
        """"u8" or "s8": `weights`, with "auto" resolved for this CPU (see prunequant.export.weight_dtype)."""
        if self.weights != "auto":
            return self.weights
        return "s8" if choose_weight_dtype("auto").dtype == "int8" else "u8"

    @property
    def label(self) -> str:
        """e.g. "U8S8 per-channel"."""
        granularity = "per-channel" if self.per_channel else "per-tensor"
        return f"{self.activations.upper()}{self.weight_type.upper()} {granularity}"


class _LoaderReader:
    """onnxruntime CalibrationDataReader (`get_next`) over the first `limit` batches of a loader, feeding
    every graph input: `task.inputs(batch)` matched to `input_names` by dict key or position."""

    def __init__(self, loader: Iterable, input_names: list[str], limit: int, task: Task) -> None:
        self._batches = self._iterate(loader, input_names, limit, task)
        self.count = 0
        self.exhausted = False  # get_next was asked and had nothing left

    def _iterate(
        self, loader: Iterable, input_names: list[str], limit: int, task: Task
    ) -> Iterator[dict[str, np.ndarray]]:
        for index, batch in enumerate(loader):
            if index >= limit:
                return
            inputs = task.inputs(batch)
            values = [inputs[name] for name in input_names] if isinstance(inputs, dict) else as_args(inputs)
            if len(values) != len(input_names):
                raise DataError(
                    f"the calibration batches give {describe(inputs)}, the model takes "
                    f"{len(input_names)} input(s) ({', '.join(input_names)}); give the task a transform_fn"
                )
            self.count += 1
            yield {
                name: np.ascontiguousarray(torch.as_tensor(value).numpy(), dtype=np.float32)
                for name, value in zip(input_names, values, strict=True)
            }

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        self.exhausted = batch is None
        return batch


def quantize_with_ort(
    fp32_path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    calib_loader: Iterable,
    config: OrtQuantConfig = OrtQuantConfig(),
    *,
    task: Task | None = None,
) -> Path:
    """Quantize the fp32 ONNX model at `fp32_path` with onnxruntime's `quantize_static` (QDQ) into `output`.

    The model first goes through onnxruntime's recommended `quant_pre_process` (shape inference, graph
    optimisation); calibration reads the first `config.calib_batches` batches of `calib_loader`, split into
    every model input by `task` (default classification).
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    types = {"u8": QuantType.QUInt8, "s8": QuantType.QInt8}
    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    names = [value.name for value in onnx.load(str(fp32_path)).graph.input]
    reader = _LoaderReader(calib_loader, names, config.calib_batches, task or default_task())
    with tempfile.TemporaryDirectory(prefix="prunequant-ort-") as scratch, _quiet_logging():
        prepared, quantized = Path(scratch) / "prepared.onnx", Path(scratch) / "int8.onnx"
        try:
            _pre_process(quant_pre_process, fp32_path, prepared)
            quantize_static(
                str(prepared),
                str(quantized),
                reader,
                quant_format=QuantFormat.QDQ,
                per_channel=config.per_channel,
                activation_type=types[config.activations],
                weight_type=types[config.weight_type],
                calibrate_method=methods[config.calibration],
                extra_options={"ActivationSymmetric": config.activations == "s8"},
            )
        except Exception as exc:  # onnxruntime's quantizer raises bare exceptions of many types
            if reader.count == 0 and reader.exhausted:
                raise DataError(
                    "the calibration loader yielded no batches; pass a non-empty dataset"
                ) from None
            raise ExportError(f"onnxruntime's quantizer failed on {fp32_path} ({str(exc)[:200]})") from exc
        proto = onnx.load(quantized)
    set_precision(proto, "int8")
    return save_model_atomic(proto, output)


def _pre_process(quant_pre_process: Any, source: Path, prepared: Path) -> None:
    """onnxruntime's pre-processing; its symbolic shape inference fails on some decoders (transposed convs
    with a dynamic batch), and is then skipped, with a warning: ONNX's own shape inference still runs."""
    source, prepared = Path(source).resolve(), Path(prepared).resolve()
    cwd = os.getcwd()
    os.chdir(prepared.parent)  # its shape inference writes temp files into the working directory
    try:
        _run_pre_process(quant_pre_process, source, prepared)
    finally:
        os.chdir(cwd)


def _run_pre_process(quant_pre_process: Any, source: Path, prepared: Path) -> None:
    try:
        quant_pre_process(str(source), str(prepared))
    except Exception as exc:  # onnxruntime raises bare Exceptions here
        warnings.warn(
            f"onnxruntime's symbolic shape inference failed ({str(exc)[:120]}); quantizing with ONNX's own "
            "shape inference only",
            UserWarning,
            stacklevel=3,
        )
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)


@contextlib.contextmanager
def _quiet_logging() -> Iterator[None]:
    """onnxruntime's quantizer logs advice on the root logger; keep it off the user's terminal."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)
