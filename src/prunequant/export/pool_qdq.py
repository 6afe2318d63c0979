"""Integer average pools in an int8 QDQ graph.

A classifier head pools, flattens and then quantizes for its Linear: DQ -> GlobalAveragePool -> Flatten ->
Q -> DQ -> Gemm. onnxruntime fuses a pool into QLinearGlobalAveragePool / QLinearAveragePool only when a
DequantizeLinear feeds it and a QuantizeLinear follows it directly, so it ran the pool in float. Both are
exact here: the pool output takes the grid of that later Q (the ops in between only move values, and
Q(DQ(Q(x))) == Q(x)), and a pool that reads a DQ through MaxPool (VGG) or another grid-keeping op
re-reads that DQ's grid (qdq_grid.requantize_input).
"""

from __future__ import annotations

import onnx
from onnx import helper

from prunequant.export.onnx_fp32 import replace_nodes
from prunequant.export.qdq_grid import consumers_of, grid_scale, producers_of, requantize_input

POOLS = ("GlobalAveragePool", "AveragePool")
_MOVES = ("Flatten", "Reshape", "Squeeze", "Unsqueeze", "Identity")
"""Ops that only move values: a Q after them quantizes the same values as a Q before them."""


def quantize_pool_outputs(graph: onnx.GraphProto) -> None:
    """IN PLACE: a Q -> DQ right after each average pool whose input comes from a DequantizeLinear (through
    grid-keeping ops only) and whose only consumer chain (value-moving ops, one consumer each) ends in a
    QuantizeLinear, with that Q's scale and zero point."""
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    producers, consumers = producers_of(graph), consumers_of(graph)
    before: dict[str, list[onnx.NodeProto]] = {}
    after: dict[str, list[onnx.NodeProto]] = {}
    for pool in graph.node:
        if pool.op_type not in POOLS or grid_scale(pool.input[0], producers, initializers) is None:
            continue
        quantize = _quantize_after(pool.output[0], consumers)
        if quantize is not None:
            after[pool.output[0]] = _requantized(pool, quantize, consumers[pool.output[0]])
            before[pool.output[0]] = requantize_input(pool, producers, initializers, _name(pool))
    if after:
        around = [(before.get(n.output[0], []), n, after.get(n.output[0], [])) for n in graph.node]
        replace_nodes(graph, [node for ahead, n, behind in around for node in (*ahead, n, *behind)])


def _quantize_after(tensor: str, consumers: dict[str, list[onnx.NodeProto]]) -> onnx.NodeProto | None:
    """The QuantizeLinear that alone reads `tensor` through value-moving ops, each with one consumer."""
    users = consumers.get(tensor, [])
    while len(users) == 1 and users[0].op_type in _MOVES:
        users = consumers.get(users[0].output[0], [])
    return users[0] if len(users) == 1 and users[0].op_type == "QuantizeLinear" else None


def _requantized(
    pool: onnx.NodeProto, quantize: onnx.NodeProto, readers: list[onnx.NodeProto]
) -> list[onnx.NodeProto]:
    """Q -> DQ of `pool`'s output on `quantize`'s grid; `readers` of the pool now read the DQ."""
    grid = list(quantize.input[1:3])
    quantized, dequantized = f"{_name(pool)}/output_q", f"{_name(pool)}/output_dq"
    for reader in readers:
        reader.input[:] = [dequantized if name == pool.output[0] else name for name in reader.input]
    return [
        helper.make_node("QuantizeLinear", [pool.output[0], *grid], [quantized], name=quantized),
        helper.make_node("DequantizeLinear", [quantized, *grid], [dequantized], name=dequantized),
    ]


def _name(node: onnx.NodeProto) -> str:
    return node.name or node.output[0]
