"""Fallback tracer: torch.export, for models whose top-level forward torch.fx cannot trace (shape-dependent
control flow). The exported aten graph is turned back into an fx graph over the model's own layers: each
aten conv2d / linear / batch_norm whose weight is a layer's parameter becomes a call of that layer."""

from __future__ import annotations

from typing import Any

import torch
from torch import fx, nn

_LAYER_OPS: dict[str, tuple[type[nn.Module], ...]] = {
    "conv2d": (nn.Conv2d,),
    "linear": (nn.Linear,),
    "batch_norm": (nn.modules.batchnorm._BatchNorm,),
    "instance_norm": (nn.InstanceNorm1d, nn.InstanceNorm2d),
    "prelu": (nn.PReLU,),
}


def op_name(target: Any) -> str:
    """Short name of a call target: `relu` for torch.relu, F.relu, aten.relu.default and 'relu' methods."""
    if isinstance(target, str):
        return target
    packet = getattr(target, "overloadpacket", None)
    return getattr(packet if packet is not None else target, "__name__", str(target))


def export_graph(model: nn.Module, example_input: torch.Tensor) -> fx.GraphModule:
    """An fx GraphModule over `model`'s layers, built from torch.export (eval mode, inference graph)."""
    exported = torch.export.export(model, (example_input,), strict=False).module()
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
    kinds = _LAYER_OPS.get(op_name(node.target)) if node.op == "call_function" else None
    weight = node.args[1] if kinds and len(node.args) > 1 else None
    if not isinstance(weight, fx.Node) or weight.op != "get_attr":
        return None
    name, _, attr = str(weight.target).rpartition(".")
    return name if attr == "weight" and isinstance(modules.get(name), kinds) else None


def _attribute(root: nn.Module, target: str) -> Any:
    value: Any = root
    for part in target.split("."):
        value = getattr(value, part)
    return value
