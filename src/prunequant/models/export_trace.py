"""Fallback tracer: torch.export, for models whose top-level forward torch.fx cannot trace (shape-dependent
control flow). The exported aten graph is turned back into an fx graph over the model's own layers: each
aten conv2d / linear / batch_norm whose weight is a layer's parameter becomes a call of that layer."""

from __future__ import annotations

from typing import Any

import torch
from torch import fx, nn

_CONV = (nn.modules.conv._ConvNd,)
_LAYER_OPS: dict[str, tuple[tuple[type[nn.Module], ...], int]] = {
    "conv1d": (_CONV, 1),
    "conv2d": (_CONV, 1),
    "conv3d": (_CONV, 1),
    "conv_transpose1d": (_CONV, 1),
    "conv_transpose2d": (_CONV, 1),
    "conv_transpose3d": (_CONV, 1),
    "linear": ((nn.Linear,), 1),
    "batch_norm": ((nn.modules.batchnorm._BatchNorm,), 1),
    "instance_norm": ((nn.modules.instancenorm._InstanceNorm,), 1),
    "group_norm": ((nn.GroupNorm,), 2),
    "layer_norm": ((nn.LayerNorm,), 2),
    "prelu": ((nn.PReLU,), 1),
}
"""aten op -> (layer classes it may belong to, index of its weight argument)."""


def op_name(target: Any) -> str:
    """Short name of a call target: `relu` for torch.relu, F.relu, aten.relu.default and 'relu' methods."""
    if isinstance(target, str):
        return target
    packet = getattr(target, "overloadpacket", None)
    return getattr(packet if packet is not None else target, "__name__", str(target))


def export_graph(model: nn.Module, args: tuple) -> fx.GraphModule:
    """An fx GraphModule over `model`'s layers, built from torch.export (eval mode, inference graph);
    `args` are the positional inputs, one graph input each."""
    exported = torch.export.export(model, tuple(args), strict=False).module()
    modules = dict(model.named_modules())
    attributes: dict[str, Any] = {}
    graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    for node in exported.graph.nodes:
        if node.op == "call_module":  # export's guard function: no channels
            continue
        owner = _owner(node, modules)
        if owner is not None:
            attributes[owner] = modules[owner]
            env[node] = graph.call_module(owner, (env[node.args[0]],))
            continue
        if node.op == "get_attr":
            attributes[str(node.target)] = _attribute(exported, str(node.target))
        env[node] = graph.node_copy(node, lambda n: env[n])
    graph_module = fx.GraphModule(attributes, graph)
    graph_module.graph.eliminate_dead_code()
    graph_module.recompile()
    return graph_module


def _owner(node: fx.Node, modules: dict[str, nn.Module]) -> str | None:
    """The layer an aten conv/linear/norm call belongs to, found through its weight's attribute name."""
    kinds, index = _LAYER_OPS.get(op_name(node.target), ((), 0)) if node.op == "call_function" else ((), 0)
    weight = node.args[index] if kinds and len(node.args) > index else None
    if not isinstance(weight, fx.Node) or weight.op != "get_attr":
        return None
    name, _, attr = str(weight.target).rpartition(".")
    return name if attr == "weight" and isinstance(modules.get(name), kinds) else None


def _attribute(root: nn.Module, target: str) -> Any:
    value: Any = root
    for part in target.split("."):
        value = getattr(value, part)
    return value
