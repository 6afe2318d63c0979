"""torch.fx look-ups on a float model: which layers read the model input, which convs feed a BatchNorm,
where conv branches end without a ReLU and which layers read tensors that no quantizer covers."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch
from torch import fx, nn

from prunequant.models.checkpoint import register_post_load_hook
from prunequant.models.export_trace import op_name
from prunequant.models.layers import is_plain_layer, layer_role
from prunequant.quantization.block_output import hook_output_quantizers
from prunequant.quantization.quantizers import Quantizer
from prunequant.quantization.subclasses import subclass_plan
from prunequant.quantization.tracing import trace
from prunequant.quantization.wrappers import (
    ABSORBED_ACTIVATIONS,
    QUANT_LAYERS,
    QuantAct,
    QuantLinear,
    is_activation,
    is_quantized,
    wrapper_for,
)
from prunequant.tasks import Inputs


def _module_users(graph: fx.GraphModule, node: fx.Node) -> list[tuple[str, nn.Module | None]]:
    """(target, module) of each user of `node`; module None for users that are not module calls."""
    users = []
    for user in node.users:
        module = graph.get_submodule(user.target) if user.op == "call_module" else None
        users.append((str(user.target), module))
    return users


def input_consumers(model: nn.Module, example: Inputs | None = None) -> tuple[list[str], list[str]]:
    """(names of conv/linear layers (by role) that read a model input, other consumers of one), over every
    input (each positional or keyword tensor argument of `forward`)."""
    if wrapper_for(model) is not None:
        return [""], []
    graph = trace(model, "quantize_input", example)
    layers: list[str] = []
    others: list[str] = []
    for placeholder in (node for node in graph.graph.nodes if node.op == "placeholder"):
        for target, module in _module_users(graph, placeholder):
            (layers if module is not None and wrapper_for(module) is not None else others).append(target)
    return list(dict.fromkeys(layers)), list(dict.fromkeys(others))


def conv_bn_pairs(model: nn.Module, example: Inputs | None = None) -> list[tuple[str, str]]:
    """(conv, bn) names where a conv (1d/2d/3d, or transposed with groups 1; a subclass that computes as its
    base), called once, feeds only a BatchNorm of torch's own class with running statistics."""
    graph = trace(model, "fold_bn", example)
    calls = Counter(str(node.target) for node in graph.graph.nodes if node.op == "call_module")
    pairs = []
    for node in graph.graph.nodes:
        if node.op != "call_module" or not _foldable_conv(graph.get_submodule(node.target)):
            continue
        users = _module_users(graph, node)
        if len(users) != 1 or not _plain_batch_norm(users[0][1]):
            continue
        (bn_name, bn), conv_name = users[0], str(node.target)
        if calls[conv_name] == calls[bn_name] == 1 and isinstance(bn.running_var, torch.Tensor):
            pairs.append((conv_name, bn_name))
    return pairs


def _foldable_conv(module: nn.Module) -> bool:
    role = layer_role(module)
    if role == "conv_transpose" and module.groups != 1:  # per-column scales could not hold a folded BN
        return False
    return role in ("conv", "conv_transpose") and subclass_plan(module).problem is None


def _plain_batch_norm(module: nn.Module | None) -> bool:
    return isinstance(module, nn.modules.batchnorm._BatchNorm) and is_plain_layer(module)


def _weighted(module: nn.Module | None) -> bool:
    return module is not None and wrapper_for(module) is not None


_NORMS = (nn.modules.batchnorm._BatchNorm, nn.Identity)
"""Modules that end a conv branch when they are the conv's only user (nn.Identity: a folded BN)."""
_PASS_MODULES = (nn.Flatten, nn.Dropout, nn.Identity, nn.MaxPool1d, nn.MaxPool2d)
_PASS_CALLS = {torch.flatten, "flatten", "view", "reshape", "squeeze", "unsqueeze", "contiguous"}
"""Modules / functions / tensor methods whose output holds the values of their first input."""


@dataclass(frozen=True)
class BranchSites:
    """Where a fully-integer graph needs activation quantizers besides the ReLUs and the model input.

    `outputs`: the module ending each conv/linear branch whose output is not followed by a ReLU / ReLU6
    module only (its BN, folded-BN identity, or the layer itself; another activation such as SiLU runs
    between two quantizers), except outputs that are the model output.
    `readers`: conv/linear layers whose input (through value-preserving ops) is made by some other op:
    a residual sum, a concatenation, a pooling, a functional activation.
    `blocks`: modules whose forward returns a residual sum, concatenation, product or functional
    activation that some consumer besides an activation module reads (MobileNetV2's inverted residual):
    their output gets one OutputQuantizer, which all consumers share.
    """

    outputs: tuple[str, ...]
    readers: tuple[str, ...]
    blocks: tuple[str, ...] = ()


def branch_sites(model: nn.Module, example: Inputs | None = None) -> BranchSites:
    """The BranchSites of a float `model` (UnsupportedLayerError if it cannot be traced, with torch.fx or,
    given an `example` input, torch.export)."""
    graph = trace(model, "quantize_residuals", example)
    nodes = [node for node in graph.graph.nodes if node.op == "call_module"]
    layers = [node for node in nodes if _weighted(_module_of(graph, node))]
    covered = {node for node in nodes if is_activation(_module_of(graph, node))}
    blocks = _block_outputs(model, graph, covered)
    covered.update(blocks)
    outputs = []
    for node in layers:
        tail = node
        if len(node.users) == 1 and isinstance(_module_of(graph, next(iter(node.users))), _NORMS):
            tail = next(iter(node.users))
        covered.update((node, tail))
        relu_only = all(
            isinstance(_module_of(graph, user), ABSORBED_ACTIVATIONS)
            or (user in blocks and op_name(user.target) in _ABSORBED_CALLS)
            for user in tail.users
        )
        if not relu_only and not _reaches_output(graph, tail):
            outputs.append(str(tail.target))
    readers = [
        str(node.target)
        for node in layers
        if node.args
        and isinstance(node.args[0], fx.Node)
        and (source := _source(graph, node.args[0])).op != "placeholder"
        and source not in covered
    ]
    return BranchSites(
        tuple(dict.fromkeys(outputs)), tuple(dict.fromkeys(readers)), tuple(dict.fromkeys(blocks.values()))
    )


_BLOCK_CALLS = {
    "add", "add_", "iadd", "cat", "concat", "mul", "mul_", "imul",
    "relu", "relu_", "relu6", "hardtanh", "silu", "hardswish", "sigmoid", "tanh", "gelu", "leaky_relu",
    "hardsigmoid",
}  # fmt: skip
"""Functions / tensor methods whose output, when it is a module's output, gets that module's quantizer."""
_ABSORBED_CALLS = {"relu", "relu_", "relu6"}
"""Functional activations onnxruntime folds into the integer conv before them (as ABSORBED_ACTIVATIONS)."""


def _block_outputs(model: nn.Module, graph: fx.GraphModule, covered: set[fx.Node]) -> dict[fx.Node, str]:
    """{node: module name} for each sum / concat / product / functional activation that is the output of a
    submodule's forward (not a container's) and is read by something other than an activation module (not
    the model output)."""
    found = {}
    for node in graph.graph.nodes:
        if node.op not in ("call_function", "call_method") or op_name(node.target) not in _BLOCK_CALLS:
            continue
        if all(user in covered for user in node.users) or _reaches_output(graph, node):
            continue
        owner = _output_owner(node)
        if owner and not isinstance(model.get_submodule(owner), _CONTAINERS):
            found[node] = owner
    return found


_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
"""Modules that iterate their children in forward: a quantizer child would be called as a layer."""


def _output_owner(node: fx.Node) -> str | None:
    """The innermost module whose forward returns `node`: every user of `node` lies outside it."""
    stack = list(node.meta.get("nn_module_stack", {}).values())
    for entry in reversed(stack):
        path = entry[0] if isinstance(entry, tuple) else str(entry)
        if all(path not in _paths(user) for user in node.users):
            return path
    return None


def _paths(node: fx.Node) -> set[str]:
    return {
        entry[0] if isinstance(entry, tuple) else str(entry)
        for entry in node.meta.get("nn_module_stack", {}).values()
    }


def _module_of(graph: fx.GraphModule, node: fx.Node) -> nn.Module | None:
    return graph.get_submodule(node.target) if node.op == "call_module" else None


def _passes_values(graph: fx.GraphModule, node: fx.Node) -> bool:
    if node.op == "call_module":
        return type(_module_of(graph, node)) in _PASS_MODULES
    return node.op in ("call_function", "call_method") and node.target in _PASS_CALLS


def _reaches_output(graph: fx.GraphModule, node: fx.Node) -> bool:
    """Whether `node`'s values become the model output (through value-preserving ops only)."""
    return any(
        user.op == "output" or (_passes_values(graph, user) and _reaches_output(graph, user))
        for user in node.users
    )


def _source(graph: fx.GraphModule, node: fx.Node) -> fx.Node:
    """The node that made the values of `node`, looking back through value-preserving ops."""
    while _passes_values(graph, node) and node.args and isinstance(node.args[0], fx.Node):
        node = node.args[0]
    return node


class _QuantLeafTracer(fx.Tracer):
    """Traces a quantized model with its quantized modules as leaves (their forward is data-dependent)."""

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        quantized = isinstance(module, (*QUANT_LAYERS, QuantAct, Quantizer)) or layer_role(module) is not None
        return quantized or super().is_leaf_module(module, qualified_name)


def link_integer_bias(qmodel: nn.Module) -> int:
    """Give each QuantConv2d / QuantLinear of `qmodel` without its own input quantizer the activation
    quantizer its input comes from (through value-preserving ops) and the BatchNorm2d that alone reads its
    output (which the int8 exporter folds into it), IN PLACE; return the number of layers linked.

    Their eval-mode bias is then rounded exactly as the int8 export rounds it. A model torch.fx cannot trace
    keeps float biases (UnsupportedLayerError is not raised: there is nothing to fix for the user).
    """
    try:
        graph = fx.GraphModule(qmodel, _QuantLeafTracer().trace(qmodel))
    except Exception:
        return 0
    calls = Counter(str(node.target) for node in graph.graph.nodes if node.op == "call_module")
    linked = 0
    for node in graph.graph.nodes:
        layer = _module_of(graph, node)
        if not isinstance(layer, QUANT_LAYERS) or calls[str(node.target)] != 1:
            continue
        source = _source(graph, node.args[0]) if node.args and isinstance(node.args[0], fx.Node) else None
        layer.bias_link = (_output_quantizer(graph, source), _sole_norm(graph, node, calls))
        linked += layer.bias_link != (None, None)
    return linked


def _output_quantizer(graph: fx.GraphModule, node: fx.Node | None) -> Quantizer | None:
    """The activation quantizer that ends the module call `node` (None if its output is not quantized)."""
    module = None if node is None else _module_of(graph, node)
    if isinstance(module, Quantizer):  # a block output quantizer, called by its hook
        return module
    if isinstance(module, QuantAct):
        return module.act_quantizer
    return module.output_quantizer if isinstance(module, QUANT_LAYERS) else None


def _sole_norm(
    graph: fx.GraphModule, node: fx.Node, calls: Counter[str]
) -> nn.modules.batchnorm._BatchNorm | None:
    """The BatchNorm (bare or inside a QuantAct) that is the only user of a conv call, called once."""
    layer = _module_of(graph, node)
    if isinstance(layer, QuantLinear) or getattr(layer, "weight_axis", 1) != 0 or len(node.users) != 1:
        return None
    user = next(iter(node.users))
    module = _module_of(graph, user)
    norm = module.activation if isinstance(module, QuantAct) else module
    if _plain_batch_norm(norm) and calls[str(user.target)] == 1 and norm.running_var is not None:
        return norm
    return None


def _relink_loaded(model: nn.Module) -> None:
    """Post-load hook: bias links are derived, not saved, so a reloaded quantized model is re-linked."""
    if is_quantized(model):
        hook_output_quantizers(model)
        link_integer_bias(model)


register_post_load_hook(_relink_loaded)
