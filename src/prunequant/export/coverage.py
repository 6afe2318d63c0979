"""Which conv / linear layers of an int8 ONNX graph onnxruntime really runs with integer kernels.

The graph is optimised the way OnnxRunner's session optimises it (QDQ fusion, ORT_ENABLE_EXTENDED, no
hardware-specific layouts); every Conv / ConvTranspose / Gemm / MatMul left as a float op is named, with
the reason, and the file says "mixed: N of M layers int8" when not all are. Every normalization left in the
graph (a BatchNorm not folded into a conv, an Instance / Group / Layer norm) runs in float too: it is named
with its reason, and the summary adds "; K norms float". Any other arithmetic op that runs in float between a
DequantizeLinear and a QuantizeLinear (an activation or a pooling with no integer kernel: Hardswish's
HardSigmoid and Mul, Tanh, GELU) is named by its module with its op types, and the summary adds
"; J ops float".
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from prunequant.export.pool_qdq import POOLS
from prunequant.export.qdq_grid import consumers_of, producers_of

INT8_LAYERS_KEY = "prunequant.int8_layers"
FLOAT_LAYERS_KEY = "prunequant.float_layers"
FLOAT_NORMS_KEY = "prunequant.float_norms"
FLOAT_OPS_KEY = "prunequant.float_ops"
_NORM_OPS = (
    "BatchNormalization", "InstanceNormalization", "LayerNormalization", "GroupNormalization",
    "SimplifiedLayerNormalization", "SkipLayerNormalization", "SkipSimplifiedLayerNormalization",
)  # fmt: skip
_UNFOLDED_BN = (
    "BatchNorm not folded into a conv (its input is not one conv's output, e.g. a pre-activation BN after a "
    "concat or an add): onnxruntime runs it in float between DequantizeLinear and QuantizeLinear"
)
_MOVEMENT_OPS = (
    "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Identity", "Shape", "Gather", "Slice",
    "Split", "Concat", "Pad", "Expand", "Tile", "Cast", "Constant", "ConstantOfShape", "MaxPool",
)  # fmt: skip
"""Ops that move or select values without arithmetic: not counted as float islands."""
_WEIGHTED = ("Conv", "ConvTranspose", "Gemm", "MatMul")
_FLOAT_OPS = (*_WEIGHTED, "FusedConv", "FusedGemm", "FusedMatMul")
_NOT_ISLANDS = frozenset(("QuantizeLinear", "DequantizeLinear", *_MOVEMENT_OPS, *_FLOAT_OPS, *_NORM_OPS))
"""Ops never counted as float islands: Q / DQ, value-moving ops, and the layers and norms named apart."""
_SHAPE_OPS = ("Shape", "Size")
"""Ops whose output is a tensor's sizes, not its values: what is computed from them is not a float island."""
_UNQUANTIZED_PATHS = ("QuantizeLinear", *_SHAPE_OPS)
"""Ops after which a DequantizeLinear's float values no longer flow."""
_RUNTIME_QUANTIZED = (
    "float weights in the file (not quantized by prunequant), but onnxruntime's WeightBiasQuantization pass "
    "runs it as an integer kernel with its own per-tensor weight scale: results differ from the fake-quant "
    "model"
)


@dataclass(frozen=True)
class LayerCoverage:
    """`total` weighted layers, of which `int8` run as integer kernels; `float_layers`: name -> reason;
    `float_norms`: the normalizations left in float, name -> reason; `float_ops`: the other arithmetic ops
    run in float between a DequantizeLinear and a QuantizeLinear, module -> reason."""

    total: int
    int8: int
    float_layers: dict[str, str] = field(default_factory=dict)
    float_norms: dict[str, str] = field(default_factory=dict)
    float_ops: dict[str, str] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        """'int8: all M layers' or 'mixed: N of M layers int8', plus '; K norms float' and '; J ops float'
        when there are."""
        if self.int8 == self.total:
            layers = f"int8: all {self.total} layers"
        else:
            layers = f"mixed: {self.int8} of {self.total} layers int8"
        for count, kind in ((len(self.float_norms), "norm"), (len(self.float_ops), "op")):
            layers += f"; {count} {kind}{'s' * (count > 1)} float" if count else ""
        return layers

    def metadata(self) -> dict[str, str]:
        """The metadata_props entries recording this coverage in the ONNX file."""
        return {
            INT8_LAYERS_KEY: self.summary,
            FLOAT_LAYERS_KEY: json.dumps(self.float_layers),
            FLOAT_NORMS_KEY: json.dumps(self.float_norms),
            FLOAT_OPS_KEY: json.dumps(self.float_ops),
        }


def int8_coverage(proto: onnx.ModelProto) -> LayerCoverage:
    """The LayerCoverage of `proto` (a QDQ graph) as onnxruntime's CPU provider fuses it."""
    import onnxruntime as ort

    original = producers_of(proto.graph)
    layers = [_layer_name(node, original) for node in proto.graph.node if _weighted(node)]
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.log_severity_level = 3
    with tempfile.TemporaryDirectory(prefix="prunequant-cover-") as scratch:
        options.optimized_model_filepath = str(Path(scratch) / "optimized.onnx")
        ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
        optimized = onnx.load(options.optimized_model_filepath)
    producers = producers_of(optimized.graph)
    initializers = {tensor.name for tensor in optimized.graph.initializer}
    floats: dict[str, str] = {}
    norms = {
        _scope_name(node): _norm_reason(node, producers)
        for node in optimized.graph.node
        if node.op_type in _NORM_OPS
    }
    for node in optimized.graph.node:
        if node.op_type not in _FLOAT_OPS or len(node.input) < 2:
            continue
        name = _layer_name(node, producers)
        if name not in layers:  # e.g. a weight computed in forward, constant-folded under a new name
            name = _scope_name(node)
        weight = producers.get(node.input[1])
        if weight is None and node.input[1] in initializers and not node.input[1].endswith("_dq"):
            floats[name] = "float weights (the layer was not quantized)"
        elif node.op_type == "ConvTranspose":
            floats[name] = "onnxruntime has no integer ConvTranspose kernel: runs as float ConvTranspose"
        else:
            floats[name] = (
                f"8-bit weights, but onnxruntime runs it as a float {node.op_type}: its input or output "
                "is not quantized (e.g. it makes the model output, or reads a float op)"
            )
    for node in proto.graph.node:
        if not _weighted(node):
            continue
        source, name = original.get(node.input[1]), _layer_name(node, original)
        if (source is None or source.op_type != "DequantizeLinear") and name not in floats:
            floats[name] = _RUNTIME_QUANTIZED
    named = norms.keys() | floats.keys()  # a decomposed GroupNorm's affine Mul / Add is its norm's
    islands = {op: reason for op, reason in _float_islands(optimized.graph).items() if op not in named}
    return LayerCoverage(len(layers), len(layers) - len(floats), floats, norms, islands)


def _float_islands(graph: onnx.GraphProto) -> dict[str, str]:
    """{module: reason} for the arithmetic ops (not weighted layers, norms or value-moving ops) that read a
    DequantizeLinear's float output and reach a QuantizeLinear: onnxruntime runs them in float. Shape
    arithmetic (the int64 sizes a channel shuffle or chunk computes from `x.size()`) is not counted."""
    after_dq: set[str] = set()  # tensors computed in float from a DequantizeLinear's output
    for node in graph.node:  # graph.node is topologically sorted
        if node.op_type == "DequantizeLinear" or (
            node.op_type not in _UNQUANTIZED_PATHS and any(name in after_dq for name in node.input)
        ):
            after_dq.update(node.output)
    before_q: set[str] = set()  # tensors a QuantizeLinear reads, directly or through float ops
    for node in reversed(graph.node):
        if node.op_type == "QuantizeLinear" or (
            node.op_type != "DequantizeLinear" and any(name in before_q for name in node.output)
        ):
            before_q.update(node.input)
    consumers = consumers_of(graph)
    wrappers = {
        path.removesuffix(".1")
        for path in (_module_path(node.name) for node in graph.node if node.op_type == "QuantizeLinear")
        if path.endswith(".1")
    }
    ops: dict[str, list[str]] = {}
    for node in graph.node:
        if node.op_type in _NOT_ISLANDS:
            continue
        if any(name in after_dq for name in node.input) and any(name in before_q for name in node.output):
            kinds = ops.setdefault(_op_name(node, consumers, wrappers), [])
            kinds += [] if node.op_type in kinds else [node.op_type]
    return {module: _island_reason(kinds) for module, kinds in ops.items()}


def _island_reason(kinds: list[str]) -> str:
    where = "it runs in float between DequantizeLinear and QuantizeLinear"
    if all(kind in POOLS for kind in kinds):
        return (
            f"{' / '.join(kinds)}: {where}; onnxruntime pools in integers only where one QuantizeLinear "
            "alone reads the pool output (through Flatten / Reshape), and here other ops read it"
        )
    return f"onnxruntime has no integer {' / '.join(kinds)} kernel here: {where}"


def _norm_reason(node: onnx.NodeProto, producers: dict[str, onnx.NodeProto]) -> str:
    """Why the normalization `node` of the optimised graph runs in float."""
    if node.op_type != "BatchNormalization":
        return f"onnxruntime has no integer {node.op_type} kernel: it runs in float"
    source = producers.get(node.input[0])
    if source is not None and source.op_type == "ConvTranspose":
        return "BatchNorm after a grouped transposed conv is not folded: it runs in float"
    return _UNFOLDED_BN


def _scope_name(node: onnx.NodeProto) -> str:
    """The module path in an exported node name ("/conv2/Conv" -> "conv2"), else the node name."""
    nested = node.name.startswith("/") and "/" in node.name.strip("/")
    return _module_path(node.name) if nested else node.name


def _op_name(node: onnx.NodeProto, consumers: dict[str, list[onnx.NodeProto]], wrappers: set[str]) -> str:
    """The module an op of the optimised graph came from, by the scope of its name, else of its output,
    else of the op reading its output (onnxruntime's inlined Hardswish leaves a nameless HardSigmoid). An
    activation wrapped with its quantizer for export (`wrappers`: child 0 of a module whose child 1 is a
    QuantizeLinear) is named as the user's module; a top-level functional op by itself
    ("GlobalAveragePool")."""
    names = [node.name, *node.output[:1]]
    readers = [reader for output in node.output for reader in consumers.get(output, [])]
    names += [name for reader in readers for name in (reader.name, *reader.output[:1])]
    for name in names:
        if name.startswith("/"):
            path = _module_path(name)
            wrapper = path.removesuffix(".0")
            return wrapper if wrapper in wrappers else path
    return node.name or node.op_type


def _module_path(name: str) -> str:
    """The module path in a torchscript node or tensor name: its scopes name each module relative to its
    parent ("/features/features.1/block/block.0/Mul" -> "features.1.block.0"); a name with one part is
    itself ("/GlobalAveragePool")."""
    parts = name.strip("/").split("/")
    scopes = parts[:-1] or parts
    path = [scopes[0]]
    for parent, scope in zip(scopes, scopes[1:], strict=False):
        path.append(scope.removeprefix(parent + "."))
    return ".".join(path)


def _weighted(node: onnx.NodeProto) -> bool:
    return node.op_type in _WEIGHTED and len(node.input) > 1 and node.input[1] != ""


def _layer_name(node: onnx.NodeProto, producers: dict[str, onnx.NodeProto]) -> str:
    """The layer a weighted node belongs to: its weight's name without '.weight' (through a weight DQ)."""
    weight = node.input[1]
    source = producers.get(weight)
    if source is not None and source.op_type == "DequantizeLinear":
        weight = source.input[0]
    for suffix in ("_dq", "_quantized", ".weight"):
        weight = weight.removesuffix(suffix)
    if not weight or weight.startswith("/"):  # a weight computed in forward ("/conv2/Sub_output_0")
        return _scope_name(node)
    return weight
