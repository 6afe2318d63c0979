"""Trace a model into an fx graph with tensor shapes; submodules fx cannot trace become opaque leaves."""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.passes.fake_tensor_prop import FakeTensorProp
from torch.fx.passes.shape_prop import ShapeProp

from prunequant.errors import ModelError, UnsupportedLayerError
from prunequant.models.export_trace import export_graph
from prunequant.models.layers import layer_role
from prunequant.tasks.io import Inputs, as_args, describe, take


class UntraceableModelError(UnsupportedLayerError):
    """Neither torch.fx nor torch.export can trace the model."""


@dataclass
class Traced:
    """An fx GraphModule sharing the model's submodules, shapes in node.meta, and the opaque leaves."""

    graph_module: fx.GraphModule
    opaque: dict[str, str] = field(default_factory=dict)


class _FallbackTracer(fx.Tracer):
    """Standard fx tracing, except that a submodule whose forward cannot be traced is kept as one call."""

    def __init__(self) -> None:
        super().__init__()
        self.opaque: dict[str, str] = {}

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        """torch.nn layers, and subclasses of conv/linear/norm layers (kept whole: handled by their role)."""
        return layer_role(m) is not None or super().is_leaf_module(m, module_qualified_name)

    def call_module(self, m: nn.Module, forward: Any, args: tuple, kwargs: dict) -> Any:
        name = self.path_of_module(m)
        if name in self.opaque:  # called again after a failed trace
            return self.create_proxy("call_module", name, args, kwargs)
        if self.is_leaf_module(m, name):
            return super().call_module(m, forward, args, kwargs)
        try:
            return super().call_module(m, forward, args, kwargs)
        except Exception as exc:  # noqa: BLE001 - any tracing failure makes the module opaque
            self.opaque[name] = _first_line(exc)
            return self.create_proxy("call_module", name, args, kwargs)


def trace(model: nn.Module, example_input: Inputs) -> Traced:
    """Trace `model` with fx (else torch.export) and record every node's output shape for `example_input`.

    `example_input` is a tensor, a tuple (positional inputs) or a dict (keyword inputs) of tensors; every
    input becomes a graph input. The model's mode is restored and its weights are not changed; the graph
    shares its submodules.
    """
    args = positional_inputs(model, take(example_input, 2))
    tracer = _FallbackTracer()
    try:
        graph_module = fx.GraphModule(model, tracer.trace(model))
        graph_module.graph.eliminate_dead_code()  # leftovers of submodules whose tracing failed
        graph_module.recompile()
    except Exception as fx_error:  # noqa: BLE001 - e.g. shape-dependent control flow in forward
        graph_module = _exported(model, args, fx_error)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _propagate_shapes(graph_module, args)
    except Exception as exc:
        raise UnsupportedLayerError(
            f"the traced {type(model).__name__} does not run on the example input {describe(example_input)} "
            f"({_first_line(exc)}); pass an example input the model accepts"
        ) from None
    finally:
        model.train(was_training)
    return Traced(graph_module, tracer.opaque)


def positional_inputs(model: nn.Module, example_input: Inputs) -> tuple:
    """`example_input` as the positional arguments of `model.forward` (dict keys name parameters; defaults
    fill the rest), in the order of the traced graph's inputs."""
    signature = inspect.signature(model.forward)
    try:
        if isinstance(example_input, dict):
            bound = signature.bind(**example_input)
        else:
            bound = signature.bind(*as_args(example_input))
    except TypeError as exc:
        raise ModelError(
            f"the example input {describe(example_input)} does not fit {type(model).__name__}.forward"
            f"{signature} ({exc}); pass a tensor, a tuple of positional inputs or a dict keyed by name"
        ) from None
    bound.apply_defaults()
    values: list = []
    for name, value in bound.arguments.items():
        kind = signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            values.extend(value)
        elif kind is not inspect.Parameter.VAR_KEYWORD:
            values.append(value)
    return tuple(values)


def _exported(model: nn.Module, args: tuple, fx_error: Exception) -> fx.GraphModule:
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return export_graph(model, args)
    except Exception as exc:
        raise UntraceableModelError(
            f"cannot trace {type(model).__name__} with torch.fx ({_first_line(fx_error)}) nor torch.export "
            f"({_first_line(exc)}); move data-dependent control flow into a submodule"
        ) from None
    finally:
        model.train(was_training)


def _first_line(exc: Exception) -> str:
    return f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:120]}"


def _propagate_shapes(graph_module: fx.GraphModule, args: tuple) -> None:
    """Record output shapes with fake tensors (no compute), else by a real run."""
    try:
        FakeTensorProp(graph_module, FakeTensorMode(allow_non_fake_inputs=True)).propagate(*args)
    except Exception:  # noqa: BLE001 - e.g. custom ops without a fake kernel
        ShapeProp(graph_module).propagate(*args)


def shape_of(node: fx.Node) -> tuple[int, ...] | None:
    """The output shape of `node`, or None when it is not a single tensor."""
    value = node.meta.get("val")
    meta = value if isinstance(value, torch.Tensor) else node.meta.get("tensor_meta")
    shape = getattr(meta, "shape", None)
    return tuple(shape) if shape is not None else None
