"""fp32 ONNX export with a dynamic batch axis, written atomically; also the torch -> ONNX step int8 reuses."""

from __future__ import annotations

import contextlib
import copy
import io
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import onnx
import torch
from torch import nn

from prunequant.atomic import atomic_write
from prunequant.errors import ExportError
from prunequant.tasks.io import Inputs, as_args, describe, flatten_outputs, input_names, run_model
from prunequant.validation import check_choice, check_int_range

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
DEFAULT_OPSET = 17
EXPORTERS = ("auto", "torchscript", "dynamo")
PRECISION_KEY = "prunequant.precision"
"""metadata_props key recording what the graph computes in: "fp32", "int8" or "float-dequantized(N-bit)"."""


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    example_input: Inputs,
    *,
    opset: int = DEFAULT_OPSET,
    exporter: str = "auto",
) -> Path:
    """Export `model` (any plain fp32 module, pruned ones included) to ONNX at `path`; return the path.

    Parameters
    ----------
    example_input:
        A batched tensor, a tuple of them (positional inputs) or a dict (keyword inputs).
    exporter:
        "auto" tries the TorchScript exporter first (fast, stable names), then the torch.export one.

    Returns
    -------
    The path written. The batch axis of every input and output is dynamic. Inputs are named by the dict
    keys, or "input" (one) / "input0", "input1", ...; outputs by `onnx_output_names` ("logits" for one).
    """
    proto = torch_to_onnx(model, example_input, opset=opset, exporter=exporter)
    set_precision(proto, "fp32")
    return save_model_atomic(proto, path)


def torch_to_onnx(
    model: nn.Module, example_input: Inputs, *, opset: int = DEFAULT_OPSET, exporter: str = "auto"
) -> onnx.ModelProto:
    """Trace `model` in eval mode into an ONNX ModelProto, batch axes dynamic (ExportError on failure)."""
    check_choice("exporter", exporter, EXPORTERS)
    check_int_range("opset", opset, 13, 30)
    example = batch_of_two(example_input)
    order = ("torchscript", "dynamo") if exporter == "auto" else (exporter,)
    failures = []
    with _eval_mode(model):
        with torch.no_grad():
            outputs = run_model(model, example)
        signature = _Signature(input_names(example_input), onnx_output_names(outputs))
        positional = _positional(model, example, outputs)
        for name in order:
            try:
                proto = _EXPORTERS[name](positional, as_args(example), signature, opset)
            except Exception as exc:  # the exporters raise many unrelated types
                failures.append(f"{name}: {_first_line(exc)}")
                continue
            inline_constants(proto.graph)
            return proto
    raise ExportError(
        f"cannot export {type(model).__name__} to ONNX ({'; '.join(failures)}); "
        "replace the unsupported layer or op named there"
    )


def batch_of_two(example_input: Inputs) -> Inputs:
    """The example with each float input's first sample repeated twice (so the batch axis can be dynamic)."""

    def widen(tensor: object) -> torch.Tensor:
        if not isinstance(tensor, torch.Tensor) or tensor.dim() < (2 if tensor.is_floating_point() else 1):
            raise ExportError(
                "example_input must hold batched tensors like torch.randn(1, 3, 32, 32) (a tensor, a tuple "
                f"or a dict of them); got {describe(example_input)}"
            )
        first = tensor[:1].detach()
        first = first.float() if first.is_floating_point() else first
        return first.expand(2, *tensor.shape[1:]).contiguous()

    if isinstance(example_input, dict):
        return {key: widen(value) for key, value in example_input.items()}
    if isinstance(example_input, (tuple, list)):
        return tuple(widen(value) for value in example_input)
    return widen(example_input)


def onnx_output_names(outputs: object) -> list[str]:
    """ONNX names of a model's outputs: "logits" for one tensor, a flat dict's keys, else output0, ..."""
    flat = flatten_outputs(outputs)
    if isinstance(outputs, torch.Tensor):
        return [OUTPUT_NAME]
    if isinstance(outputs, dict) and len(outputs) == len(flat):
        return [str(key) for key in outputs]
    return [f"output{i}" for i in range(len(flat))]


class _Signature:
    """Input and output names of an export."""

    def __init__(self, inputs: list[str], outputs: list[str]) -> None:
        self.inputs, self.outputs = inputs, outputs

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        return {name: {0: "batch"} for name in (*self.inputs, *self.outputs)}


def _positional(model: nn.Module, example: Inputs, outputs: object) -> nn.Module:
    """`model` as a module called with positional tensors that returns a flat tuple of tensors.

    A shallow copy with its own `forward` (parameter names stay those of `model`, which the int8 weight
    rewrite looks up); `model` itself is returned when it already has that form.
    """
    flat = isinstance(outputs, torch.Tensor) or (
        isinstance(outputs, tuple) and all(isinstance(item, torch.Tensor) for item in outputs)
    )
    if flat and not isinstance(example, dict):
        return model
    keys = list(example) if isinstance(example, dict) else None
    forward = model.forward

    def positional(*args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = forward(**dict(zip(keys, args, strict=True))) if keys else forward(*args)
        return tuple(flatten_outputs(outputs))

    adapted = copy.copy(model)
    adapted.forward = positional
    return adapted


def _torchscript(
    model: nn.Module, args: tuple[torch.Tensor, ...], signature: _Signature, opset: int
) -> onnx.ModelProto:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            args,
            buffer,
            dynamo=False,
            opset_version=opset,
            input_names=signature.inputs,
            output_names=signature.outputs,
            dynamic_axes=signature.dynamic_axes(),
        )
    return onnx.load_from_string(buffer.getvalue())


def _dynamo(
    model: nn.Module, args: tuple[torch.Tensor, ...], signature: _Signature, opset: int
) -> onnx.ModelProto:
    batch = torch.export.Dim("batch")
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            args,
            dynamo=True,
            opset_version=max(opset, 18),
            input_names=signature.inputs,
            output_names=signature.outputs,
            dynamic_shapes=tuple({0: batch} for _ in args),
            verbose=False,
        )
    return program.model_proto


_EXPORTERS = {"torchscript": _torchscript, "dynamo": _dynamo}


def inline_constants(graph: onnx.GraphProto) -> None:
    """Turn Constant nodes and Identity-of-initializer nodes into initializers, in place.

    The TorchScript exporter shares equal folded tensors through Identity nodes; quantizers (ours and
    onnxruntime's) need each Conv/Gemm weight and bias to be an initializer of its own.
    """
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    kept = []
    for node in graph.node:
        if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
            source = node.attribute[0].t
        elif node.op_type == "Identity" and node.input[0] in initializers:
            source = initializers[node.input[0]]
        else:
            kept.append(node)
            continue
        tensor = onnx.TensorProto()
        tensor.CopyFrom(source)
        tensor.name = node.output[0]
        graph.initializer.append(tensor)
        initializers[tensor.name] = tensor
    replace_nodes(graph, kept)
    used = {name for node in graph.node for name in node.input} | {out.name for out in graph.output}
    live = [copy.deepcopy(tensor) for tensor in graph.initializer if tensor.name in used]
    del graph.initializer[:]
    graph.initializer.extend(live)


def replace_nodes(graph: onnx.GraphProto, nodes: list[onnx.NodeProto]) -> None:
    """Make `nodes` (copied first: they may be the graph's own) the graph's node list, in this order."""
    fresh = [copy.deepcopy(node) for node in nodes]
    del graph.node[:]
    graph.node.extend(fresh)


def set_metadata(proto: onnx.ModelProto, props: dict[str, str]) -> None:
    """Add (or overwrite) `props` in the model's metadata_props, keeping the others."""
    onnx.helper.set_model_props(proto, {**metadata_of(proto), **props})


def metadata_of(proto: onnx.ModelProto) -> dict[str, str]:
    """The model's metadata_props as a dict."""
    return {prop.key: prop.value for prop in proto.metadata_props}


def set_precision(proto: onnx.ModelProto, precision: str) -> None:
    """Record `precision` in the model's metadata (read back by `precision_of`)."""
    set_metadata(proto, {PRECISION_KEY: precision})


def precision_of(proto: onnx.ModelProto) -> str:
    """The precision recorded by prunequant, or "unknown" for foreign files."""
    return next((p.value for p in proto.metadata_props if p.key == PRECISION_KEY), "unknown")


def save_model_atomic(proto: onnx.ModelProto, path: str | os.PathLike[str]) -> Path:
    """Check `proto`, write it to `path` via a temp file + os.replace (old file or new one, never half)."""
    path = Path(path)
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"the exported ONNX graph is invalid ({_first_line(exc)})") from exc
    try:
        atomic_write(path, proto.SerializeToString())
    except OSError as exc:
        raise ExportError(f"cannot write {path} ({exc}); check the folder is writable and has space") from exc
    return path


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(training)


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:200]
