"""The float-model trace the quantizer places its quantizers on: torch.fx with conv / linear / norm layers
(user subclasses included) as leaves, or, when fx cannot trace `forward` (Python shape checks, data-
dependent control flow), torch.export on an example input, turned back into module calls."""

from __future__ import annotations

import warnings
from collections import Counter

from torch import fx, nn

from prunequant.errors import UnsupportedLayerError
from prunequant.models.export_trace import export_graph
from prunequant.models.layers import layer_role
from prunequant.quantization.wrappers import is_activation
from prunequant.tasks import Inputs, as_args


class _RoleLeafTracer(fx.Tracer):
    """Keeps every conv / linear / norm layer, user subclasses included, as one module call (by role)."""

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        return layer_role(module) is not None or super().is_leaf_module(module, qualified_name)


def trace(model: nn.Module, purpose: str, example: Inputs | None = None) -> fx.GraphModule:
    """Trace `model` with torch.fx; if that fails and `example` (a tensor or a tuple of positional inputs)
    is given, with torch.export (a UserWarning says so). UnsupportedLayerError names `purpose` otherwise."""
    try:
        return fx.GraphModule(model, _RoleLeafTracer().trace(model))
    except Exception as exc:  # noqa: BLE001 - any fx failure: try torch.export, else explain
        fx_reason = _first_line(exc)
    if example is None or isinstance(example, dict):
        raise UnsupportedLayerError(
            f"{purpose} needs a torch.fx-traceable model, and tracing failed ({fx_reason}); pass a "
            "calibration loader or example input (positional tensors) for the torch.export fallback, or "
            f"turn {purpose} off"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            was_training = model.training
            graph = export_graph(model.eval(), tuple(as_args(example)))
            model.train(was_training)
    except Exception as exc:  # noqa: BLE001 - neither tracer works
        model.train(was_training)
        raise UnsupportedLayerError(
            f"{purpose} needs a traceable model: torch.fx failed ({fx_reason}) and torch.export too "
            f"({_first_line(exc)}); turn {purpose} off"
        ) from None
    warnings.warn(
        f"torch.fx cannot trace {type(model).__name__} ({fx_reason}); {purpose} used torch.export instead",
        stacklevel=3,
    )
    return _activation_calls(graph, model)


def _activation_calls(graph: fx.GraphModule, model: nn.Module) -> fx.GraphModule:
    """Turn each aten op that is the whole forward of an activation module (by the exported node's
    nn_module_stack) back into a call of that module, so placement sees ReLUs as in an fx trace."""
    owners = {node: _innermost(node) for node in graph.graph.nodes if node.op == "call_function"}
    counts = Counter(owner for owner in owners.values() if owner)
    modules = dict(model.named_modules())
    for node, owner in owners.items():
        module = modules.get(owner or "")
        if owner and counts[owner] == 1 and module is not None and is_activation(module):
            graph.add_submodule(owner, module)
            with graph.graph.inserting_after(node):
                call = graph.graph.call_module(owner, (node.args[0],))
            node.replace_all_uses_with(call)
            graph.graph.erase_node(node)
    graph.recompile()
    return graph


def _innermost(node: fx.Node) -> str | None:
    stack = list(node.meta.get("nn_module_stack", {}).values())
    if not stack:
        return None
    entry = stack[-1]
    return str(entry[0] if isinstance(entry, tuple) else entry) or None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:160] if text else type(exc).__name__
