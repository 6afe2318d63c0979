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
    example_input: torch.Tensor,
    *,
    opset: int = DEFAULT_OPSET,
    exporter: str = "auto",
) -> Path:
    """Export `model` (any plain fp32 module, pruned ones included) to ONNX at `path`; return the path.

    The batch axis is dynamic; the input is named "input", the output "logits". `exporter` "auto" tries the
    TorchScript exporter first (fast, stable names) and falls back to the torch.export-based one.
    """
    proto = torch_to_onnx(model, example_input, opset=opset, exporter=exporter)
    set_precision(proto, "fp32")
    return save_model_atomic(proto, path)


def torch_to_onnx(
    model: nn.Module, example_input: torch.Tensor, *, opset: int = DEFAULT_OPSET, exporter: str = "auto"
) -> onnx.ModelProto:
    """Trace `model` in eval mode into an ONNX ModelProto, batch axis dynamic (ExportError on failure)."""
    check_choice("exporter", exporter, EXPORTERS)
    check_int_range("opset", opset, 13, 30)
    if not isinstance(example_input, torch.Tensor) or example_input.dim() < 2:
        raise ExportError("example_input must be a batched tensor like torch.randn(1, 3, 32, 32)")
    example = example_input[:1].detach().float().expand(2, *example_input.shape[1:]).contiguous()
    order = ("torchscript", "dynamo") if exporter == "auto" else (exporter,)
    failures = []
    with _eval_mode(model):
        for name in order:
            try:
                proto = _EXPORTERS[name](model, example, opset)
            except Exception as exc:  # the exporters raise many unrelated types
                failures.append(f"{name}: {_first_line(exc)}")
                continue
            inline_constants(proto.graph)
            return proto
    raise ExportError(
        f"cannot export {type(model).__name__} to ONNX ({'; '.join(failures)}); "
        "replace the unsupported layer or op named there"
    )


def _torchscript(model: nn.Module, example: torch.Tensor, opset: int) -> onnx.ModelProto:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            buffer,
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        )
    return onnx.load_from_string(buffer.getvalue())


def _dynamo(model: nn.Module, example: torch.Tensor, opset: int) -> onnx.ModelProto:
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            opset_version=max(opset, 18),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
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
