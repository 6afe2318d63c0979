"""Pruning a routed region (routing.py) inside `prune_channels`: the region is allocated as one stand-in
group of all its sources' channels, its keep is moved to the nearest width the routing can follow, and every
source keeps its best-scoring channels within each class of channels read alike.

The kept channels of a source need not stay in their original order (the pruned shuffle may place them
elsewhere): every layer of the region is rewritten with its kept positions in the order the pruned code
reads them, so the pruned model computes exactly what the original did on those channels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from prunequant.pruning.structured.groups import ChannelGroup
from prunequant.pruning.structured.routing import Region


@dataclass(frozen=True)
class RegionCut:
    """What pruning a region does: kept positions (in order) of every layer dimension it rewrites, the
    channels each source loses, and the layers it touches."""

    orders: dict[tuple[str, str], list[int]]
    removed: dict[str, list[int]]
    layers: tuple[str, ...]


def stand_in(region: Region, groups: Mapping[str, ChannelGroup]) -> ChannelGroup:
    """The region as one group for allocation: all its sources' channels, one after the other."""
    members = [member for name in region.widths for member in groups[name].members]
    return ChannelGroup(region.name, sum(region.widths.values()), members, region=region.name)


def stand_in_scores(region: Region, scores: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The sources' scores one after the other, each divided by its mean (so global ranking weighs every
    source alike)."""
    parts = []
    for name in region.widths:
        values = scores[name].double()
        mean = values.mean()
        parts.append(values / mean if mean > 0 else values)
    return torch.cat(parts)


def nearest_keep(region: Region, channels: int, *, round_to: int = 1, min_channels: int = 1) -> int:
    """The feasible keep (per `step` channels of each source) closest to keeping `channels` of the
    region's; among them, where any, those leaving every source at least `min_channels` and a multiple of
    `round_to`. A tie keeps more."""
    target = channels / sum(region.widths.values()) * region.step
    feasible = region.keeps()

    def fits(keep: int) -> bool:
        return all(w >= min_channels and w % round_to == 0 for w in region.scaled(keep).values())

    pool = [keep for keep in feasible if fits(keep)] or feasible
    return min(pool, key=lambda keep: (abs(keep - target), -keep))


def cut_region(
    region: Region, keep: int, scores: Mapping[str, torch.Tensor], groups: Mapping[str, ChannelGroup]
) -> RegionCut:
    """Prune `region` to `keep` (feasible: see `nearest_keep`), keeping the top-scoring channels."""

    def best(space: str, candidates: list[int], count: int) -> list[int]:
        values = scores[space][candidates]
        order = torch.sort(values, descending=True, stable=True).indices[:count]
        return [candidates[int(i)] for i in order]

    plan = region.plan(keep, best)
    if plan is None:
        raise ValueError(f"region {region.name!r} cannot keep {keep} of {region.step}")
    orders = dict(plan.positions)
    for name, kept in plan.kept.items():
        for member in groups[name].members:
            positions = [member.offset + c * member.repeat + r for c in kept for r in range(member.repeat)]
            orders[(member.module, member.role)] = positions
    removed = {
        name: sorted(set(range(width)) - set(plan.kept[name])) for name, width in region.widths.items()
    }
    layers = [layer for name in region.widths for layer in groups[name].layers]
    layers += [member.module for member in region.members]
    return RegionCut(orders, removed, tuple(dict.fromkeys(layers)))
