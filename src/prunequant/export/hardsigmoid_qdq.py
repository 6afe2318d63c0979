"""HardSigmoid as an integer Add in an int8 QDQ graph.

onnxruntime has no integer HardSigmoid: a Hardswish gate (x * q(hardsigmoid(x)), GatedHardswish) or a
squeeze-excitation gate (MobileNetV3's Hardsigmoid) ran in float between a DequantizeLinear and a
QuantizeLinear. When that Q is uint8 with zero point 0 and its 255 codes span at most [0, 1], its codes
are those of Q(x + beta / alpha) at scale / alpha: hardsigmoid(x) = alpha * clip(x + beta / alpha, 0,
1 / alpha), and the Q's own saturation at codes 0 and 255 makes both clips. The rewrite is exact, and
onnxruntime fuses DQ -> Add -> Q into QLinearAdd.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from prunequant.export.onnx_fp32 import replace_nodes
from prunequant.export.qdq_grid import attribute, consumers_of, producers_of


def hardsigmoids_as_adds(graph: onnx.GraphProto) -> None:
    """IN PLACE: each HardSigmoid read from a DequantizeLinear and read by one uint8 QuantizeLinear of
    zero point 0 and scale <= 1/255 becomes an Add of the constant beta / alpha, its Q's scale / alpha."""
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    producers, consumers = producers_of(graph), consumers_of(graph)
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        quantize = _unit_range_quantize(node, producers, consumers, initializers)
        if quantize is None:
            nodes.append(node)
            continue
        alpha, beta = float(attribute(node, "alpha", 0.2)), float(attribute(node, "beta", 0.5))
        name = node.name or node.output[0]
        scale = numpy_helper.to_array(initializers[quantize.input[1]]).astype(np.float32)
        new_scale = numpy_helper.from_array((scale / np.float32(alpha)).astype(np.float32), f"{name}/scale")
        offset = [  # beta / alpha as code 1 of that scale: exact
            numpy_helper.from_array(np.array(beta / alpha, dtype=np.float32), f"{name}/offset_scale"),
            numpy_helper.from_array(np.array(0, dtype=np.uint8), f"{name}/offset_zero_point"),
            numpy_helper.from_array(np.array(1, dtype=np.uint8), f"{name}/offset_code"),
        ]
        graph.initializer.extend([new_scale, *offset])
        quantize.input[1] = new_scale.name
        dequantized = f"{name}/offset"
        codes = [offset[2].name, offset[0].name, offset[1].name]
        nodes.append(helper.make_node("DequantizeLinear", codes, [dequantized], name=dequantized))
        nodes.append(helper.make_node("Add", [node.input[0], dequantized], [node.output[0]], name=name))
    replace_nodes(graph, nodes)


def _unit_range_quantize(
    node: onnx.NodeProto,
    producers: dict[str, onnx.NodeProto],
    consumers: dict[str, list[onnx.NodeProto]],
    initializers: dict[str, onnx.TensorProto],
) -> onnx.NodeProto | None:
    """The Q that alone reads HardSigmoid `node` when the rewrite is exact there, else None."""
    if node.op_type != "HardSigmoid" or attribute(node, "alpha", 0.2) <= 0:
        return None
    source, readers = producers.get(node.input[0]), consumers.get(node.output[0], [])
    if source is None or source.op_type != "DequantizeLinear" or len(readers) != 1:
        return None
    quantize = readers[0]
    if quantize.op_type != "QuantizeLinear" or len(quantize.input) < 3:
        return None
    scale, zero_point = (initializers.get(name) for name in quantize.input[1:3])
    if scale is None or zero_point is None or zero_point.data_type != TensorProto.UINT8:
        return None
    scale_value, zero_value = numpy_helper.to_array(scale), numpy_helper.to_array(zero_point)
    if scale_value.size != 1 or zero_value.any() or float(scale_value) * 255 > 1 + 1e-6:
        return None
    return quantize
