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
    model: nn.Module, groups: Sequence[ChannelGroup], removed: Mapping[str, Sequence[int]]
) -> nn.Module:
    """In place: drop channels `removed[group.name]` of each group from all its layers; returns `model`.

    Layers fed by several groups (concatenation) lose the union of their positions in one rewrite. Output
    dimensions are rewritten before input ones, so a grouped conv is still told apart from a depthwise one.
    """
    positions: dict[tuple[str, str], set[int]] = defaultdict(set)
    for group in groups:
        channels = list(removed.get(group.name, ()))
        if not channels:
            continue
        for member in group.members:
            positions[(member.module, member.role)].update(member.positions(channels).tolist())
    modules = dict(model.named_modules())
    with masks_follow_reshape(model):  # unstructured masks are sliced with their weights
        for (name, role), drop in sorted(positions.items(), key=lambda item: item[0][1] != OUT):
            module = modules[name]
            size = dimension_size(module, role)
            keep = torch.tensor([p for p in range(size) if p not in drop], dtype=torch.long)
            keep_positions(module, role, keep)
    return model
