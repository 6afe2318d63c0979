"""Layer pruning (seed 004 section 5): remove whole residual blocks, keeping their identity shortcut.

A block is removable when its output is `act(branch(x) + x)` (act: ReLU-like or nothing) with the input
passed unchanged to the add, so input and output shapes agree. Removed blocks become nn.Identity, which
the checkpoint manifest records, so the shorter model reloads with `load_checkpoint`.
"""

from __future__ import annotations

import copy
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import fx, nn

from prunequant.errors import ConfigError
from prunequant.models.export_trace import op_name
from prunequant.tasks.io import Inputs, run_model, take
from prunequant.validation import check_choice


@dataclass(frozen=True)
class LayerPruneResult:
    """The shorter model, the removed block names and each candidate's score (low = removed first)."""

    model: nn.Module
    removed_blocks: tuple[str, ...]
    scores: dict[str, float]

    def meta(self) -> dict:
        return {
            "method": "layer",
            "blocks": len(self.removed_blocks),
            "removed_blocks": list(self.removed_blocks),
        }


def _last(block: nn.Module, kinds: tuple[type[nn.Module], ...]) -> nn.Module | None:
    """The last layer of one of `kinds` in the block's residual branch (registration order)."""
    found = [m for m in block.modules() if isinstance(m, kinds)]
    return found[-1] if found else None


def _bn_gamma(name: str, block: nn.Module) -> float:
    bn = _last(block, (nn.modules.batchnorm._BatchNorm,))
    if bn is None or bn.weight is None:
        raise ConfigError(f"block '{name}' has no affine BatchNorm; use --importance l1 for layer pruning")
    return float(bn.weight.detach().abs().mean())


def _l1(name: str, block: nn.Module) -> float:
    layer = _last(block, (nn.Conv2d, nn.Linear))
    return float(layer.weight.detach().abs().mean()) if layer is not None else 0.0


def _random(name: str, block: nn.Module) -> float:
    return zlib.crc32(name.encode()) / 2**32


BLOCK_SCORES: dict[str, Callable[[str, nn.Module], float]] = {
    "bn_gamma": _bn_gamma,
    "l1": _l1,
    "random": _random,
}
"""Block criteria: mean |gamma| of the last BN, mean |w| of the last conv/linear, or a seeded-free hash."""


def residual_blocks(model: nn.Module, example_input: Inputs) -> list[str]:
    """Names of the submodules computing `act(branch(x) + x)`, innermost only, in model order;
    `example_input` is a tensor, a tuple or a dict of tensors."""
    shapes = _io_shapes(model, example_input)
    candidates = []
    for name, module in model.named_modules():
        if not name or not list(module.children()) or name not in shapes:
            continue
        shape_in, shape_out = shapes[name]
        if shape_in == shape_out and _is_identity_residual(module):
            candidates.append(name)
    return [c for c in candidates if not any(o.startswith(c + ".") for o in candidates)]


def prune_layers(
    model: nn.Module,
    example_input: Inputs,
    blocks: int,
    importance: str = "bn_gamma",
    *,
    return_result: bool = False,
) -> nn.Module | LayerPruneResult:
    """A copy of `model` without its `blocks` lowest-scoring identity residual blocks (now nn.Identity).

    `return_result=True` returns a LayerPruneResult (model, removed block names, every candidate's score).
    """
    check_choice("importance", importance, tuple(BLOCK_SCORES))
    candidates = residual_blocks(model, example_input)
    if isinstance(blocks, bool) or not isinstance(blocks, int) or not 0 <= blocks <= len(candidates):
        raise ConfigError(
            f"blocks must be an integer in 0..{len(candidates)} (removable residual blocks), got {blocks!r}"
        )
    pruned = copy.deepcopy(model)
    modules = dict(pruned.named_modules())
    scores = {name: BLOCK_SCORES[importance](name, modules[name]) for name in candidates}
    removed = sorted(candidates, key=lambda name: scores[name])[:blocks]
    for name in removed:
        parent, _, child = name.rpartition(".")
        setattr(pruned.get_submodule(parent), child, nn.Identity())
    result = LayerPruneResult(pruned, tuple(n for n in candidates if n in removed), scores)
    return result if return_result else result.model


def _io_shapes(model: nn.Module, example_input: Inputs) -> dict[str, tuple[tuple, tuple]]:
    """Input and output shape of each submodule called once with one tensor, from an eval forward."""
    shapes: dict[str, tuple[tuple, tuple]] = {}
    calls: dict[str, int] = {}

    def record(name: str):
        def hook(module: nn.Module, args: tuple, output: object) -> None:
            calls[name] = calls.get(name, 0) + 1
            if len(args) == 1 and isinstance(args[0], torch.Tensor) and isinstance(output, torch.Tensor):
                shapes[name] = (tuple(args[0].shape), tuple(output.shape))

        return hook

    handles = [m.register_forward_hook(record(n)) for n, m in model.named_modules() if n]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            run_model(model, take(example_input, 2))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return {name: value for name, value in shapes.items() if calls[name] == 1}


_TRAILING = (nn.ReLU, nn.ReLU6, nn.Identity, nn.Dropout)
"""Ops allowed after the residual add: removing the block then keeps (ReLU of non-negative) x as it is."""


def _is_identity_residual(block: nn.Module) -> bool:
    try:
        graph = fx.symbolic_trace(block).graph
    except Exception:  # noqa: BLE001 - untraceable blocks are simply not candidates
        return False
    modules = dict(block.named_modules())
    (placeholder, *rest) = [n for n in graph.nodes if n.op == "placeholder"] or [None]
    output = next(n for n in graph.nodes if n.op == "output").args[0]
    if placeholder is None or rest or not isinstance(output, fx.Node):
        return False
    node = _skip(output, modules, _TRAILING, {"relu", "relu_", "relu6"})
    if op_name(node.target) not in ("add", "iadd", "add_") or len(node.args) != 2:
        return False
    sources = [
        _skip(arg, modules, (nn.Identity,), set()) if isinstance(arg, fx.Node) else arg for arg in node.args
    ]
    return sources.count(placeholder) == 1


def _skip(node: fx.Node, modules: dict[str, nn.Module], kinds: tuple, functions: set[str]) -> fx.Node:
    """Follow `node` up through single-input modules of `kinds` and functions named in `functions`."""
    while True:
        through_module = node.op == "call_module" and isinstance(modules[str(node.target)], kinds)
        through_function = node.op in ("call_function", "call_method") and op_name(node.target) in functions
        if through_module or through_function:
            node = node.args[0]
        else:
            return node
