"""Integer residual adds whose shortcut only moves and zero-pads a quantized tensor.

ResNet's option A shortcut subsamples with strided slices and pads zero channels: DQ -> Slice -> Slice ->
Pad -> Add. onnxruntime fuses an Add into QLinearAdd only when a DequantizeLinear feeds each input, so it
added in float. The shortcut's values are still on its DQ's grid (a slice moves them, and 0 is the zero
point's value), so a Q -> DQ of that grid before the Add is exact (qdq_grid.requantize_input).
"""

from __future__ import annotations

import onnx

from prunequant.export.onnx_fp32 import replace_nodes
from prunequant.export.qdq_grid import producers_of, requantize_input

ADDS = ("Add",)


def quantize_add_inputs(graph: onnx.GraphProto) -> None:
    """IN PLACE: before each Add, a Q -> DQ on every input that reaches a DequantizeLinear only through
    value-preserving ops including a Pad (with that DQ's scale and zero point)."""
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    producers = producers_of(graph)
    nodes: list[onnx.NodeProto] = []
    changed = False
    for node in graph.node:
        if node.op_type in ADDS:
            for index in range(len(node.input)):
                ahead = requantize_input(node, producers, initializers, node.name or node.output[0], index)
                nodes += ahead
                changed = changed or bool(ahead)
        nodes.append(node)
    if changed:
        replace_nodes(graph, nodes)
