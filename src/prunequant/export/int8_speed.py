"""Why an int8 ONNX file runs slower than its fp32 twin: the likely cause, read from the file.

The layer coverage comes from the metadata export/coverage.py wrote ("mixed: N of M layers int8" and the
float layer names); it is read, not recomputed. Channel widths come from the weight shapes in the graph.
"""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

import onnx

from prunequant.export.coverage import FLOAT_LAYERS_KEY, FLOAT_NORMS_KEY, FLOAT_OPS_KEY, INT8_LAYERS_KEY
from prunequant.export.onnx_int8 import WEIGHT_DTYPE_KEY
from prunequant.export.qdq_grid import producers_of

NARROW_CHANNELS = 16
"""Layers narrower than this (median output channels of the convs, else of every weighted layer) leave
int8 kernels too little work to pay for their quantize / dequantize steps (DESIGN.md: narrow layers)."""
_PRECISION_TOKENS = re.compile(r"[-_.]?(int8|uint8|qdq|q8|quantized|quant|fp32|float32|f32)(?=$|[-_.])")


def model_key(name: str) -> str:
    """A file stem without precision tokens: 'net_int8.onnx' and 'net-fp32.onnx' both give 'net'."""
    return _PRECISION_TOKENS.sub("", Path(name).stem.lower())


def slow_int8_cause(metadata: dict[str, str], path: Path | None) -> str:
    """The likely cause: 'float islands: K layers float (...)' (with 'J norms' and 'I ops', where
    normalizations or other arithmetic ops stay float), 'narrow layers: ...', 'uint8 weights: ...'
    (exact U8U8 kernels, slow without VNNI) or 'unknown (...)'."""
    layers = json.loads(metadata.get(FLOAT_LAYERS_KEY) or "{}")
    norms = json.loads(metadata.get(FLOAT_NORMS_KEY) or "{}")
    ops = json.loads(metadata.get(FLOAT_OPS_KEY) or "{}")
    if layers or norms or ops:
        floats = [*layers, *norms, *ops]
        names = ", ".join(floats[:3]) + (", ..." if len(floats) > 3 else "")
        extra = [f"{len(found)} {kind}" for found, kind in ((norms, "norms"), (ops, "ops")) if found]
        counted = " and ".join([f"{len(layers)} layers", *extra])
        return f"float islands: {counted} float ({metadata.get(INT8_LAYERS_KEY, '?')}: {names})"
    widths = _output_channels(path) if path is not None else []
    if widths and statistics.median(widths) < NARROW_CHANNELS:
        return (
            f"narrow layers: median {statistics.median(widths):g} output channels (< {NARROW_CHANNELS}), "
            "too little work per int8 kernel"
        )
    if metadata.get(WEIGHT_DTYPE_KEY) == "uint8":
        return (
            "uint8 weights: onnxruntime's exact U8U8 kernels are slow on CPUs without VNNI "
            "(export_int8(weight_dtype='int8') for VNNI / ARM targets)"
        )
    if INT8_LAYERS_KEY not in metadata:
        return "unknown (the file has no prunequant layer-coverage metadata)"
    return f"unknown ({metadata[INT8_LAYERS_KEY]}, layers not narrow)"


def _output_channels(path: Path) -> list[int]:
    """Output channels of the conv layers (of every weighted layer when there is no conv)."""
    graph = onnx.load(str(path), load_external_data=False).graph
    shapes = {tensor.name: list(tensor.dims) for tensor in graph.initializer}
    producers = producers_of(graph)
    convs, others = [], []
    for node in graph.node:
        if node.op_type not in ("Conv", "ConvTranspose", "Gemm", "MatMul") or len(node.input) < 2:
            continue
        weight = node.input[1]
        source = producers.get(weight)
        if source is not None and source.op_type == "DequantizeLinear":
            weight = source.input[0]
        dims = shapes.get(weight)
        if not dims or len(dims) < 2:
            continue
        if node.op_type == "Conv":
            convs.append(dims[0])
        elif node.op_type == "ConvTranspose":
            convs.append(dims[1])
        else:
            others.append(min(dims[0], dims[1]))
    return convs or others
