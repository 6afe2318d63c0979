"""int8 ONNX (QDQ) from prunequant's fake-quant model, with OUR scales and zero points (`method="ours"`).

1. The fake-quant model becomes a float model: every quantized conv / linear a plain layer holding its
   fake-quant-rounded weights; every activation quantizer (QuantAct, whether after a ReLU or after the BN
   ending a residual branch; layer input / output quantizers) a fused `fake_quantize_per_tensor_affine`,
   which the TorchScript exporter writes as QuantizeLinear -> DequantizeLinear with exactly our uint8
   scale and zero point. BatchNorms are folded into their convs, so a quantized BN output becomes Q/DQ on
   the conv output: with `quantize_residuals` every conv reads a DQ and feeds a Q, and onnxruntime fuses
   all of them into QLinearConv (and the residual adds into QLinearAdd).
2. The ONNX graph is rewritten: each conv / gemm weight becomes an 8-bit initializer + per-channel
   DequantizeLinear (axis 0, codes from our weight quantizer; a folded BN only rescales channels, so the
   codes stay exact), and a bias reading a quantized input becomes int32 at scale x_scale * w_scale, as
   onnxruntime's QDQ fusion (QLinearConv, QGemm) requires.

Weight storage (`weight_dtype`): "uint8" stores each symmetric code c as c + 128 with zero point 128, which
onnxruntime runs with its u8u8 kernels: exact on every CPU. "int8" (zero point 0) runs the faster u8s8
kernels, which on x86 CPUs without VNNI (AVX2 only, e.g. AMD EPYC before Zen 4) multiply with VPMADDUBSW and
saturate pairs of products at int16: an asymmetric model input (codes near 128) loses up to half its outputs
(measured: agreement 0.70, mean logit error 0.12 on the tiny test CNN; onnxruntime issue 16105). "auto"
(default) picks "int8" on x86 with VNNI (AVX512-VNNI / AVX-VNNI) or a non-x86 CPU, "uint8" otherwise
(weight_dtype.py); the choice and its reason are in the result and the file's metadata.

Nothing is recalibrated. Bit widths other than 8 run as float that reproduces the fake quantization
exactly (`precision="float-dequantized(N-bit)"`), or, with `other_bits="int8"`, are clamped to int8 with a
warning. `method="ort"` instead hands the float model to onnxruntime's own quantizer (ort_quantizer.py).
"""

from __future__ import annotations

import copy
import os
import tempfile
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper
from torch import nn

from prunequant.errors import ExportError, UnsupportedLayerError
from prunequant.export.add_qdq import quantize_add_inputs
from prunequant.export.coverage import int8_coverage
from prunequant.export.hardsigmoid_qdq import hardsigmoids_as_adds
from prunequant.export.mean_pool import means_as_pools
from prunequant.export.onnx_fp32 import (
    export_onnx,
    replace_nodes,
    save_model_atomic,
    set_metadata,
    set_precision,
    torch_to_onnx,
)
from prunequant.export.ort_quantizer import OrtQuantConfig, quantize_with_ort
from prunequant.export.pool_qdq import quantize_pool_outputs
from prunequant.export.qdq_grid import attribute, grid_scale, producers_of, requantize_input
from prunequant.export.weight_dtype import WeightDtypeChoice, choose_weight_dtype
from prunequant.models.codecs import codec_for
from prunequant.quantization import (
    QuantAct,
    Quantizer,
    activation_quantizers,
    fold_batchnorm,
    is_quantized,
    quantized_layers,
)
from prunequant.quantization.block_output import OutputQuantizer
from prunequant.quantization.gated_silu import GatedSiLU
from prunequant.quantization.integer_bias import bias_codes
from prunequant.quantization.wrappers import float_class
from prunequant.tasks import Inputs, Task
from prunequant.validation import check_choice

METHODS = ("ours", "ort")
OTHER_BITS = ("dequantize", "int8")
WEIGHT_DTYPES = ("auto", "uint8", "int8")
WEIGHT_DTYPE_KEY = "prunequant.weight_dtype"
"""metadata_props key recording how weights are stored ("uint8": exact everywhere; "int8": VNNI / ARM)."""
WEIGHT_DTYPE_REASON_KEY = "prunequant.weight_dtype_reason"
NOT_QUANTIZED = (
    "checkpoint is not quantized; pass --dataset to calibrate with --int8-method ort "
    "or quantize first with `prunequant quantize`"
)
_WEIGHT_AXIS = {"Conv": 0, "Gemm": 0, "ConvTranspose": 1}
"""The output-channel axis of each weighted op's weight (ConvTranspose: [in, out/groups, k...])."""


@dataclass(frozen=True)
class ExportResult:
    """What was written: the file, its size, what it computes in and how it was made."""

    output: str
    bytes: int
    precision: str
    method: str
    layers: str = ""
    float_layers: dict[str, str] = field(default_factory=dict)
    float_norms: dict[str, str] = field(default_factory=dict)
    float_ops: dict[str, str] = field(default_factory=dict)
    weight_dtype: str = ""
    weight_dtype_reason: str = ""

    def to_dict(self) -> dict[str, object]:
        """The fields; `layers` / `float_layers` / `float_norms` / `float_ops` only for int8 files (the ones
        that have a coverage), the weight dtype and its reason only where prunequant stored the weights."""
        fields = asdict(self)
        if not self.layers:
            del fields["layers"], fields["float_layers"], fields["float_norms"], fields["float_ops"]
        if not self.weight_dtype:
            del fields["weight_dtype"], fields["weight_dtype_reason"]
        return fields


def export_int8(
    qmodel: nn.Module,
    path: str | os.PathLike[str],
    example_input: Inputs,
    method: str = "ours",
    *,
    calib_loader: Iterable | None = None,
    ort_config: OrtQuantConfig | None = None,
    other_bits: str = "dequantize",
    weight_dtype: str = "auto",
    task: Task | None = None,
) -> ExportResult:
    """Export a quantized model to an int8 QDQ ONNX file that onnxruntime runs with integer kernels.

    "ours" keeps the model's own (PTQ-calibrated or QAT-learned) qparams and needs a `quantize()`d model.
    "ort" exports the float weights and lets onnxruntime calibrate on `calib_loader` (any float model).
    `weight_dtype` ("ours" only): "uint8" codes + 128 (exact on every CPU), "int8" (faster u8s8 kernels,
    which saturate on x86 CPUs without VNNI; see the module docstring) or "auto" (int8 with VNNI or off
    x86, else uint8; the result says which and why). `example_input` is a tensor, a tuple
    or a dict (named inputs, as in `export_onnx`); `task` splits `calib_loader` batches into every input.
    """
    check_choice("method", method, METHODS)
    check_choice("other_bits", other_bits, OTHER_BITS)
    check_choice("weight_dtype", weight_dtype, WEIGHT_DTYPES)
    if method == "ort":
        config = ort_config or OrtQuantConfig()
        return _export_ort(qmodel, Path(path), example_input, calib_loader, config, task)
    if not is_quantized(qmodel):
        raise ExportError(NOT_QUANTIZED)
    return _export_ours(qmodel, Path(path), example_input, other_bits, choose_weight_dtype(weight_dtype))


def _export_ort(
    model: nn.Module,
    path: Path,
    example: Inputs,
    calib_loader: Iterable | None,
    config: OrtQuantConfig,
    task: Task | None,
) -> ExportResult:
    if calib_loader is None:
        raise ExportError("method='ort' calibrates with onnxruntime: pass calib_loader (CLI: --dataset)")
    if is_quantized(model):
        model = deployable(model, quantized_weights=False, activations="drop")[0]
    with tempfile.TemporaryDirectory(prefix="prunequant-") as scratch:
        fp32 = export_onnx(model, Path(scratch) / "fp32.onnx", example)
        written = quantize_with_ort(fp32, path, calib_loader, config, task=task)
        return _result(written, "int8", "ort", onnx.load(written))


def _export_ours(
    qmodel: nn.Module, path: Path, example: Inputs, other_bits: str, weight_dtype: WeightDtypeChoice
) -> ExportResult:
    """int8 QDQ when every quantizer is 8-bit (or clamping is asked for); else exact dequantized float.

    A model without activation quantizers cannot compute in integers: it is float-dequantized too.
    """
    weight_bits = {
        layer.weight_quantizer.bits for _, layer in quantized_layers(qmodel) if layer.weight_quantizer
    }
    activation_bits = {quantizer.bits for quantizer in activation_quantizers(qmodel)}
    bits = sorted(weight_bits | activation_bits)
    if not activation_bits or (bits != [8] and other_bits == "dequantize"):
        width = "/".join(map(str, bits))
        precision = f"float-dequantized({width}-bit{'' if activation_bits else ' weights'})"
        model, _ = deployable(qmodel, quantized_weights=True, activations="emulate", example=example)
        proto = torch_to_onnx(model, example)
    else:
        if bits != [8]:
            warnings.warn(
                f"bit widths {bits} are clamped to int8: weights and activation ranges are re-expressed in 8 "
                "bits, so results can differ from the fake-quant model; check the parity report",
                stacklevel=3,
            )
        precision = "int8"
        model, codes = deployable(qmodel, quantized_weights=True, activations="qdq", example=example)
        proto = torch_to_onnx(model, example, exporter="torchscript")
        quantize_weights(proto.graph, codes, weight_dtype.dtype)
        means_as_pools(proto)
        quantize_pool_outputs(proto.graph)
        hardsigmoids_as_adds(proto.graph)
        quantize_add_inputs(proto.graph)
        set_metadata(
            proto, {WEIGHT_DTYPE_KEY: weight_dtype.dtype, WEIGHT_DTYPE_REASON_KEY: weight_dtype.reason}
        )
    set_precision(proto, precision)
    int8 = precision == "int8"
    written = save_model_atomic(proto, path)
    return _result(written, precision, "ours", proto if int8 else None, weight_dtype if int8 else None)


def _result(
    path: Path,
    precision: str,
    method: str,
    proto: onnx.ModelProto | None = None,
    weight_dtype: WeightDtypeChoice | None = None,
) -> ExportResult:
    """The ExportResult; for an int8 graph (`proto`), its layer coverage, also written to the file.

    A mixed graph (some conv / linear layers, norms or other ops float in onnxruntime) warns, naming them.
    """
    if proto is None:
        return ExportResult(str(path), path.stat().st_size, precision, method)
    coverage = int8_coverage(proto)
    set_metadata(proto, coverage.metadata())
    save_model_atomic(proto, path)
    floats = {**coverage.float_layers, **coverage.float_norms, **coverage.float_ops}
    if floats:
        named = "; ".join(f"{name}: {reason}" for name, reason in floats.items())
        warnings.warn(f"{path.name} is {coverage.summary} ({named})", stacklevel=4)
    dtype, reason = (weight_dtype.dtype, weight_dtype.reason) if weight_dtype else ("", "")
    return ExportResult(
        str(path),
        path.stat().st_size,
        precision,
        method,
        coverage.summary,
        coverage.float_layers,
        coverage.float_norms,
        coverage.float_ops,
        dtype,
        reason,
    )


class ExportQDQ(nn.Module):
    """A frozen activation quantizer for export: fused fake-quant op ("qdq", becomes ONNX Q/DQ) or the same
    arithmetic in plain float ops ("emulate", for bit widths ONNX Q/DQ cannot hold)."""

    def __init__(self, quantizer: Quantizer, emulate: bool) -> None:
        super().__init__()
        if not quantizer.calibrated:
            raise ExportError(
                "an activation quantizer has no range yet; calibrate the model (prunequant quantize) first"
            )
        self.emulate = emulate
        scale, zero_point, self.qmin, self.qmax = (
            float(quantizer.scale),
            int(quantizer.zero_point),
            quantizer.qmin,
            quantizer.qmax,
        )
        if not emulate and (self.qmin, self.qmax) != (0, 255):
            scale, zero_point = _as_uint8(scale, zero_point, quantizer.qmin, quantizer.qmax)
            self.qmin, self.qmax = 0, 255
        self.scale, self.zero_point = scale, zero_point

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.emulate:
            codes = torch.clamp(torch.round(x * (1.0 / self.scale)) + self.zero_point, self.qmin, self.qmax)
            return (codes - self.zero_point) * self.scale
        return torch.fake_quantize_per_tensor_affine(x, self.scale, self.zero_point, self.qmin, self.qmax)


def _as_uint8(scale: float, zero_point: int, qmin: int, qmax: int) -> tuple[float, int]:
    """The same real range [(qmin - zp) * s, (qmax - zp) * s] on the uint8 grid 0..255."""
    low, high = (qmin - zero_point) * scale, (qmax - zero_point) * scale
    new_scale = max((high - low) / 255, torch.finfo(torch.float32).eps)
    return new_scale, int(np.clip(round(-low / new_scale), 0, 255))


def deployable(
    qmodel: nn.Module, *, quantized_weights: bool, activations: str, example: Inputs | None = None
) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """A plain float copy of `qmodel` for export, and {layer name: integer weight codes} of the layers whose
    weights go int8 (None: more than 8 bits, to be re-quantized to int8 when clamping).

    Wrapped layers become nn.Conv2d / nn.Linear with fake-quant-rounded (or, without `quantized_weights`,
    float) weights; activation quantizers become ExportQDQ ("qdq" / "emulate") or vanish ("drop"). BNs
    are folded into convs where the graph allows, so the deployed graph has no BatchNormalization.
    """
    model = copy.deepcopy(qmodel).eval()
    codes: dict[str, torch.Tensor | None] = {}
    io_quantizers: dict[str, tuple[Quantizer | None, Quantizer | None]] = {}
    for name, layer in quantized_layers(model):
        plain = _plain_layer(layer, quantized_weights)
        quantizer = layer.weight_quantizer
        if quantizer is not None and quantized_weights:
            codes[name] = quantizer.codes(layer.masked_weight()) if quantizer.bits <= 8 else None
        io_quantizers[name] = (layer.input_quantizer, layer.output_quantizer)
        model.set_submodule(name, plain)
    for name, module in list(model.named_modules()):
        if isinstance(module, QuantAct):
            tail = (
                [] if activations == "drop" else [ExportQDQ(module.act_quantizer, activations == "emulate")]
            )
            model.set_submodule(name, nn.Sequential(module.activation, *tail))
        elif isinstance(module, GatedSiLU):  # x * QDQ(gate(x)): QLinearSigmoid / QLinearAdd + QLinearMul
            module.gate_quantizer = _frozen(module.gate_quantizer, activations)
        elif isinstance(module, OutputQuantizer):  # applied by its module's forward hook
            model.set_submodule(name, _frozen(module, activations))
    try:
        fold_batchnorm(model, example)
    except UnsupportedLayerError as err:
        warnings.warn(f"BatchNorm stays unfolded, so int8 convs may not fuse: {err}", stacklevel=3)
    if activations != "drop":
        _attach_layer_qdq(model, io_quantizers, emulate=activations == "emulate")
    return model, codes


def _frozen(quantizer: Quantizer, activations: str) -> nn.Module:
    """`quantizer` as deployable() exports it: ExportQDQ ("qdq" / "emulate"), or nn.Identity ("drop")."""
    return nn.Identity() if activations == "drop" else ExportQDQ(quantizer, activations == "emulate")


def _attach_layer_qdq(
    model: nn.Module, quantizers: dict[str, tuple[Quantizer | None, Quantizer | None]], *, emulate: bool
) -> None:
    """Hook ExportQDQ onto the input / output of each plain layer that had input / output quantizers."""
    for name, (input_quantizer, output_quantizer) in quantizers.items():
        layer = model.get_submodule(name)
        if input_quantizer is not None:
            qdq = ExportQDQ(input_quantizer, emulate)
            layer.register_forward_pre_hook(lambda _, args, q=qdq: (q(args[0]),))
        if output_quantizer is not None:
            qdq = ExportQDQ(output_quantizer, emulate)
            layer.register_forward_hook(lambda _, args, out, q=qdq: q(out))


def _plain_layer(layer: nn.Module, quantized_weights: bool) -> nn.Module:
    """The torch twin (nn.Conv2d, nn.ConvTranspose1d, nn.Linear, ...) of `layer` holding its
    fake-quant-rounded weight and the bias it adds in eval mode (on the int32 grid where its input scale is
    known), or its float weight and bias; a `pre` child (padding) runs first, from a forward pre-hook."""
    codec = codec_for(float_class(type(layer)).__name__)
    plain = codec.from_config(codec.to_config(layer))
    if layer.pre is not None:
        plain.add_module(layer.pre, layer.get_submodule(layer.pre))
        plain.register_forward_pre_hook(_run_pre)
    with torch.no_grad():
        plain.weight.copy_(layer.quantized_weight() if quantized_weights else layer.masked_weight())
        bias = layer.effective_bias() if quantized_weights else layer.bias
        if bias is not None:
            plain.bias = nn.Parameter(bias.detach().clone())
    return plain.eval()


def _run_pre(layer: nn.Module, args: tuple) -> tuple:
    """Forward pre-hook: the layer's input through its one child (the `pre` module kept from a subclass)."""
    return (next(layer.children())(args[0]),)


def quantize_weights(
    graph: onnx.GraphProto, codes: dict[str, torch.Tensor | None], weight_dtype: str = "uint8"
) -> None:
    """IN PLACE: the Conv/ConvTranspose/Gemm weights of the layers in `codes` become 8-bit + per-channel
    DequantizeLinear (axis 0; ConvTranspose: axis 1, its output-channel axis).

    Weights are found by parameter name ("<layer>.weight"); a layer with codes None is re-quantized to int8
    (symmetric per channel); other layers stay float. "uint8" stores the symmetric codes + 128 with zero
    point 128 (same values, exact u8u8 kernels). Biases of Conv/Gemm layers with a quantized input become
    int32 (ConvTranspose runs in float on onnxruntime and keeps its float bias). A Conv/Gemm whose input
    reaches a DequantizeLinear only through value-preserving ops gets a Q -> DQ of that grid before it.
    """
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    producers = producers_of(graph)
    new_nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        weight_name = node.input[1] if node.op_type in _WEIGHT_AXIS and len(node.input) > 1 else ""
        module_name = weight_name.removesuffix(".weight")
        if module_name not in codes or weight_name not in initializers:
            continue
        if node.op_type == "Gemm" and attribute(node, "transB", 0) != 1:
            continue
        weight, axis = numpy_helper.to_array(initializers[weight_name]), _WEIGHT_AXIS[node.op_type]
        layer_codes = codes.get(module_name)
        layer_codes = None if layer_codes is None else np.moveaxis(layer_codes.numpy(), axis, 0)
        int8, scale = _int8_weight(np.moveaxis(weight, axis, 0), layer_codes, module_name)
        int8 = np.ascontiguousarray(np.moveaxis(int8, 0, axis))
        stored, zero_point = _stored_weight(int8, scale.shape, weight_dtype)
        _replace_initializer(graph, initializers, weight_name, stored)
        scale_name = f"{weight_name}_scale"
        graph.initializer.append(numpy_helper.from_array(scale, scale_name))
        graph.initializer.append(numpy_helper.from_array(zero_point, f"{weight_name}_zero_point"))
        new_nodes.append(
            helper.make_node(
                "DequantizeLinear",
                [weight_name, scale_name, f"{weight_name}_zero_point"],
                [f"{weight_name}_dq"],
                name=f"{module_name}/weight_dq",
                axis=axis,
            )
        )
        node.input[1] = f"{weight_name}_dq"
        if node.op_type == "ConvTranspose":
            continue  # no integer kernel in onnxruntime: DQ -> float ConvTranspose, float bias
        new_nodes.extend(requantize_input(node, producers, initializers, module_name))
        input_scale = grid_scale(node.input[0], producers, initializers)
        if len(node.input) > 2 and node.input[2] in initializers and input_scale is not None:
            new_nodes.append(_quantize_bias(graph, initializers, node, scale * input_scale, module_name))
    graph.node.extend(new_nodes)
    _topological_sort(graph)


def _int8_weight(weight: np.ndarray, codes: np.ndarray | None, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(int8 codes, positive float32 scale per output channel); codes * scale == weight up to fp32 rounding.

    With `codes` (our quantizer's), each channel's scale is fitted by least squares (a folded BN scales a
    channel, possibly negatively: the codes then flip sign); without, symmetric absmax / 127 per channel.
    """
    flat = weight.reshape(weight.shape[0], -1).astype(np.float64)
    if codes is None:
        scale = np.maximum(np.abs(flat).max(axis=1) / 127, np.finfo(np.float32).eps)
        q = np.clip(np.round(flat / scale[:, None]), -127, 127)
    else:
        q = codes.reshape(codes.shape[0], -1).astype(np.float64)
        norm = (q * q).sum(axis=1)
        fitted = (flat * q).sum(axis=1) / np.where(norm > 0, norm, 1)
        q = q * np.where(fitted < 0, -1, 1)[:, None]
        scale = np.where(norm > 0, np.abs(fitted), 1.0)
        error = np.abs(q * scale[:, None] - flat).max(initial=0.0)
        if error > 1e-5 * max(np.abs(flat).max(initial=0.0), 1e-12):
            raise ExportError(
                f"the weight of {name} is not its quantizer's codes times a per-channel scale "
                f"(max error {error:.3g}); refresh the weight scales (prunequant quantize) before export"
            )
    return q.astype(np.int8).reshape(weight.shape), scale.astype(np.float32)


def _stored_weight(
    int8: np.ndarray, channels: tuple[int, ...], weight_dtype: str
) -> tuple[np.ndarray, np.ndarray]:
    """(stored codes, per-channel zero point): int8 as is with zero point 0, or uint8 codes + 128 with 128."""
    if weight_dtype == "int8":
        return int8, np.zeros(channels, dtype=np.int8)
    return (int8.astype(np.int16) + 128).astype(np.uint8), np.full(channels, 128, dtype=np.uint8)


def _quantize_bias(
    graph: onnx.GraphProto,
    initializers: dict[str, onnx.TensorProto],
    node: onnx.NodeProto,
    scale: np.ndarray,
    module_name: str,
) -> onnx.NodeProto:
    bias_name = node.input[2]
    bias = numpy_helper.to_array(initializers[bias_name]).astype(np.float64)
    scale = np.broadcast_to(scale, bias.shape).astype(np.float32)
    codes = bias_codes(torch.from_numpy(bias), torch.from_numpy(scale)).numpy()
    _replace_initializer(graph, initializers, bias_name, codes)
    graph.initializer.append(numpy_helper.from_array(scale, f"{bias_name}_scale"))
    graph.initializer.append(numpy_helper.from_array(np.zeros_like(codes), f"{bias_name}_zero_point"))
    node.input[2] = f"{bias_name}_dq"
    return helper.make_node(
        "DequantizeLinear",
        [bias_name, f"{bias_name}_scale", f"{bias_name}_zero_point"],
        [f"{bias_name}_dq"],
        name=f"{module_name}/bias_dq",
        axis=0,
    )


def _replace_initializer(
    graph: onnx.GraphProto, initializers: dict[str, onnx.TensorProto], name: str, array: np.ndarray
) -> None:
    initializers[name].CopyFrom(numpy_helper.from_array(array, name))


def _topological_sort(graph: onnx.GraphProto) -> None:
    """Reorder nodes so each comes after the producers of its inputs (new DQ nodes were appended)."""
    available = {tensor.name for tensor in graph.initializer} | {value.name for value in graph.input} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        waiting = []
        for node in pending:
            if all(name in available for name in node.input):
                ordered.append(node)
                available.update(node.output)
            else:
                waiting.append(node)
        if len(waiting) == len(pending):
            raise ExportError("the rewritten ONNX graph has a cycle; please report this as a bug")
        pending = waiting
    replace_nodes(graph, ordered)
