"""Quantization grids through value-preserving ops in an int8 QDQ graph: which DequantizeLinear a tensor's
values come from when only moves, repeats and zero pads lie in between, and the exact Q -> DQ of that grid
that lets onnxruntime fuse the op reading it into an integer kernel."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

VALUE_PRESERVING = (
    "MaxPool", "Flatten", "Reshape", "Identity", "Squeeze", "Unsqueeze", "Transpose", "Slice", "Pad",
)  # fmt: skip
"""Ops between a DequantizeLinear and a conv/gemm input that keep values on the quantization grid (Pad: only
with mode reflect / edge, or constant 0, which the zero point holds exactly; see `keeps_grid`)."""


def producers_of(graph: onnx.GraphProto) -> dict[str, onnx.NodeProto]:
    """{tensor: the node that outputs it}."""
    return {output: node for node in graph.node for output in node.output}


def consumers_of(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto]]:
    """{tensor: the nodes that read it, in graph order}."""
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    return readers


def requantize_input(
    node: onnx.NodeProto,
    producers: dict[str, onnx.NodeProto],
    initializers: dict[str, onnx.TensorProto],
    module_name: str,
    index: int = 0,
) -> list[onnx.NodeProto]:
    """Q -> DQ right before `node` when its input reaches a DequantizeLinear only through value-preserving
    ops (Flatten, Reshape, MaxPool, ...), with that DQ's scale and zero point: exact (the values are on
    that grid already), and onnxruntime then fuses `node` into an integer kernel (QGemm, an integer pool)
    instead of leaving a float Gemm that dequantizes its weights on every call. A Conv or an Add needs it
    only after a Pad (onnxruntime moves a DQ through MaxPool, Reshape, ... itself, but not through Pad;
    a Q -> DQ after a MaxPool that a conv also reads would stop that move: ResNet-18's first block). [] when
    nothing is needed. `index`: which input of `node` (default the first)."""
    node_in = producers.get(node.input[index])
    source, path = node_in, []
    while source is not None and keeps_grid(source, initializers):
        path.append(source.op_type)
        source = producers.get(source.input[0])
    if node_in is None or node_in is source or source is None or source.op_type != "DequantizeLinear":
        return []
    if node.op_type in ("Conv", "Add") and "Pad" not in path:
        return []
    if any(name not in initializers for name in source.input[1:3]):
        return []
    scale, zero_point = source.input[1], source.input[2]
    suffix = f"input{index}" if index else "input"
    quantized, dequantized = f"{module_name}/{suffix}_q", f"{module_name}/{suffix}_dq"
    grid = [scale, zero_point]
    nodes = [
        helper.make_node("QuantizeLinear", [node.input[index], *grid], [quantized], name=quantized),
        helper.make_node("DequantizeLinear", [quantized, *grid], [dequantized], name=dequantized),
    ]
    node.input[index] = dequantized
    producers[dequantized] = nodes[1]
    return nodes


def keeps_grid(node: onnx.NodeProto, initializers: dict[str, onnx.TensorProto]) -> bool:
    """Whether `node` only moves or repeats its input's values (or pads with 0, the zero point's value)."""
    if node.op_type not in VALUE_PRESERVING:
        return False
    if node.op_type != "Pad" or _string_attribute(node, "mode", "constant") != "constant":
        return True
    if len(node.input) < 3 or not node.input[2]:
        return True  # the default constant is 0
    value = initializers.get(node.input[2])
    return value is not None and not numpy_helper.to_array(value).any()


def attribute(node: onnx.NodeProto, name: str, default: Any) -> Any:
    """The value of `node`'s attribute `name`, or `default` where it is not set."""
    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), default)


def _string_attribute(node: onnx.NodeProto, name: str, default: str) -> str:
    value = attribute(node, name, default)
    return value.decode() if isinstance(value, bytes) else value


def grid_scale(
    tensor: str, producers: dict[str, onnx.NodeProto], initializers: dict[str, onnx.TensorProto]
) -> np.ndarray | None:
    """The scale of the DequantizeLinear that `tensor` comes from, through value-preserving ops only."""
    node = producers.get(tensor)
    while node is not None and keeps_grid(node, initializers):
        node = producers.get(node.input[0])
    if node is None or node.op_type != "DequantizeLinear" or node.input[1] not in initializers:
        return None
    return numpy_helper.to_array(initializers[node.input[1]]).astype(np.float64)
