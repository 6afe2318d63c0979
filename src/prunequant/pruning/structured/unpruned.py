"""Nothing silent: every conv, linear and norm layer a channel pruning left at its size, with the reason."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from prunequant.models.layers import layer_role
from prunequant.pruning.structured.graph import DependencyGraph
from prunequant.pruning.structured.groups import ChannelGroup


def unpruned_layers(
    model: nn.Module,
    graph: DependencyGraph,
    plans: Sequence[Any],
    ignores: Callable[[ChannelGroup], bool],
) -> dict[str, str]:
    """{layer: reason} for each conv/linear/norm of `model` none of whose channels were removed.

    Reasons come from the graph (unsupported patterns, layers refused by name), else from the groups the
    layer belongs to: ignored by pattern, model inputs/outputs only, or every channel kept by the amount.
    """
    narrowed = {layer for plan in plans if plan.removed for layer in plan.layers}
    skipped = {name: reason for name, reason in graph.skipped_layers.items() if name not in narrowed}
    kept = {plan.name for plan in plans if not plan.removed}
    for name, module in model.named_modules():
        if layer_role(module) is None or name in narrowed or name in skipped:
            continue
        groups = [group for group in graph.groups if name in group.layers]
        skipped[name] = _reason(groups, kept, ignores)
    return skipped


def _reason(groups: list[ChannelGroup], kept: set[str], ignores: Callable[[ChannelGroup], bool]) -> str:
    if not groups:
        return "not reached by the traced forward (never called, or its channels are not tracked)"
    if any(ignores(group) for group in groups):
        return "matches ignored_layers"
    if any(group.name in kept for group in groups):
        return "its channel group kept every channel at this amount (min_channels, round_to or a small group)"
    reasons = dict.fromkeys(reason for group in groups for reason in group.unsafe)
    if not reasons:
        return "its channel groups have a single channel"
    return "its channels are only " + " / ".join(reasons) + " channels, which keep their size"
