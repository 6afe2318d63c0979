"""Which conv / linear layers of a PT2E-converted graph compute in int8, and which stay float (and why).

A layer is int8 when its input comes from `dequantize_per_tensor` and its weight from
`dequantize_per_channel` (or per tensor): that is the pattern inductor's x86 passes lower to oneDNN int8
kernels (qconv / qlinear). Layers are named by their module path (the node's `nn_module_stack`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

_aten = torch.ops.aten
_LAYER_OPS = {
    _aten.conv1d.default,
    _aten.conv2d.default,
    _aten.conv3d.default,
    _aten.conv1d.padding,
    _aten.conv2d.padding,
    _aten.conv3d.padding,
    _aten.conv_transpose1d.default,
    _aten.conv_transpose2d.input,
    _aten.conv_transpose3d.input,
    _aten.linear.default,
}
_DEQUANTIZE = ("dequantize_per_tensor", "dequantize_per_channel")


@dataclass(frozen=True)
class Pt2eCoverage:
    """int8 layer names, and {name: reason} for the conv / linear layers left float."""

    int8_layers: list[str] = field(default_factory=list)
    float_layers: dict[str, str] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        """E.g. "7 of 8 conv/linear layers int8"."""
        total = len(self.int8_layers) + len(self.float_layers)
        return f"{len(self.int8_layers)} of {total} conv/linear layers int8"


def graph_coverage(module: torch.fx.GraphModule) -> Pt2eCoverage:
    """The int8 / float split of the conv and linear layers of a converted (q/dq) PT2E graph."""
    int8_layers: list[str] = []
    float_layers: dict[str, str] = {}
    for node in module.graph.nodes:
        if node.op != "call_function" or node.target not in _LAYER_OPS:
            continue
        name = _layer_name(node)
        missing = [
            what for what, arg in (("input", node.args[0]), ("weight", node.args[1])) if not _dequantized(arg)
        ]
        if missing:
            float_layers[name] = f"{' and '.join(missing)} not quantized by the quantizer"
        else:
            int8_layers.append(name)
    return Pt2eCoverage(int8_layers, float_layers)


def _dequantized(arg: object) -> bool:
    """Whether `arg` is the output of a quantized_decomposed dequantize op (str: 'ns.op.overload')."""
    target = str(getattr(arg, "target", ""))
    return any(target.startswith(f"quantized_decomposed.{name}.") for name in _DEQUANTIZE)


def _layer_name(node: torch.fx.Node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    if stack:
        path = list(stack.values())[-1][0]
        return str(path) or node.name
    return node.name
