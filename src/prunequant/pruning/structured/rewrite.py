"""Physically remove channels: every member layer of a pruned group is rewritten to its smaller shape."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from prunequant.pruning.structured.groups import OUT, ChannelGroup
from prunequant.pruning.structured.layer_ops import dimension_size, keep_positions
from prunequant.pruning.unstructured.masks import masks_follow_reshape


def remove_channels_(
    model: nn.Module,
    groups: Sequence[ChannelGroup],
    removed: Mapping[str, Sequence[int]],
    orders: Mapping[tuple[str, str], Sequence[int]] | None = None,
) -> nn.Module:
    """In place: drop channels `removed[group.name]` of each group from all its layers; returns `model`.

    Layers fed by several groups (concatenation) lose the union of their positions in one rewrite.
    `orders` gives other layer dimensions ((module, role) -> positions kept, in that order: a routed
    region's, see region_prune.py). Output dimensions are rewritten before input ones, so a grouped conv is
    still told apart from a depthwise one.
    """
    positions: dict[tuple[str, str], set[int]] = defaultdict(set)
    for group in groups:
        channels = list(removed.get(group.name, ()))
        if not channels:
            continue
        for member in group.members:
            positions[(member.module, member.role)].update(member.positions(channels).tolist())
    modules = dict(model.named_modules())
    keeps = {key: list(order) for key, order in (orders or {}).items()}
    for (name, role), drop in positions.items():
        if (name, role) in keeps:
            raise ValueError(f"'{name}' ({role}) is both pruned by a group and given an order")
        keeps[(name, role)] = [p for p in range(dimension_size(modules[name], role)) if p not in drop]
    with masks_follow_reshape(model):  # unstructured masks are sliced with their weights
        for (name, role), keep in sorted(keeps.items(), key=lambda item: item[0][1] != OUT):
            size = dimension_size(modules[name], role)
            if len(set(keep)) != len(keep) or not all(0 <= p < size for p in keep):
                raise ValueError(f"'{name}' ({role}) cannot keep positions {keep} of {size}")
            keep_positions(modules[name], role, torch.tensor(keep, dtype=torch.long))
    return model
