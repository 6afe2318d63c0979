"""A spatial mean as a global average pool in the int8 graph.

`x.mean([2, 3])` (torchvision's ShuffleNetV2 head) exports as ReduceMean, which onnxruntime has no integer
kernel for: it ran in float between a DequantizeLinear and a QuantizeLinear. A ReduceMean over every
dimension after the channels computes what GlobalAveragePool does (followed by a Flatten where the reduced
dimensions are dropped), and pool_qdq then gives that pool its integer form.
"""

from __future__ import annotations

import onnx
from onnx import helper, numpy_helper

from prunequant.export.onnx_fp32 import replace_nodes
from prunequant.export.qdq_grid import attribute, producers_of


def means_as_pools(proto: onnx.ModelProto) -> None:
    """IN PLACE: each ReduceMean over all the spatial dims (2 ..) of a 3-D to 5-D tensor becomes
    GlobalAveragePool (+ Flatten from dim 1 when keepdims is 0), with the same output name."""
    graph = proto.graph
    if not any(node.op_type == "ReduceMean" for node in graph.node):
        return  # no shape inference (the whole model) for nothing
    ranks = _ranks(proto)
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    producers = producers_of(graph)
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        rank = ranks.get(node.input[0], 0) if node.op_type == "ReduceMean" else 0
        if not 3 <= rank <= 5 or _axes(node, rank, initializers, producers) != set(range(2, rank)):
            nodes.append(node)
            continue
        name = node.name or node.output[0]
        if attribute(node, "keepdims", 1):
            nodes.append(helper.make_node("GlobalAveragePool", [node.input[0]], [node.output[0]], name=name))
            continue
        pooled = f"{name}/pooled"
        nodes.append(helper.make_node("GlobalAveragePool", [node.input[0]], [pooled], name=pooled))
        nodes.append(helper.make_node("Flatten", [pooled], [node.output[0]], name=name, axis=1))
    replace_nodes(graph, nodes)


def _ranks(proto: onnx.ModelProto) -> dict[str, int]:
    """Rank of every tensor whose shape ONNX shape inference knows."""
    inferred = onnx.shape_inference.infer_shapes(proto).graph
    return {
        info.name: len(info.type.tensor_type.shape.dim)
        for info in (*inferred.value_info, *inferred.input, *inferred.output)
        if info.type.tensor_type.HasField("shape")
    }


def _axes(
    node: onnx.NodeProto,
    rank: int,
    initializers: dict[str, onnx.TensorProto],
    producers: dict[str, onnx.NodeProto],
) -> set[int] | None:
    """The axes a ReduceMean reduces (attribute before opset 18, else its constant second input), made
    non-negative; None where they are not constants or not given (all axes)."""
    values = attribute(node, "axes", None)
    if values is None and len(node.input) > 1 and node.input[1]:
        source = node.input[1]
        if source in initializers:
            values = numpy_helper.to_array(initializers[source]).tolist()
        elif source in producers and producers[source].op_type == "Constant":
            values = numpy_helper.to_array(producers[source].attribute[0].t).tolist()
    if values is None:
        return None
    return {axis + rank if axis < 0 else axis for axis in values}
