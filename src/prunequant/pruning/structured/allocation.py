"""How many channels each group keeps (uniform or global ranking), and which ones (top scores).

Every keep count goes through `keep_count`: at least `min_channels`, a multiple of `round_to` (and of
the group's grouped-conv blocks), never more than the group has.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from prunequant.pruning.structured.groups import ChannelGroup


def keep_count(
    channels: int, keep: float, *, round_to: int = 1, min_channels: int = 1, blocks: int = 1
) -> int:
    """`keep` rounded to the nearest multiple of lcm(round_to, blocks), within [min_channels, channels].

    A keep of `channels` or more always keeps every channel (amount 0 never prunes).
    """
    if keep >= channels:
        return channels
    step = math.lcm(round_to, blocks)
    floor = min(channels, max(1, min_channels))
    keep = max(float(keep), floor)
    if step > 1:
        keep = max(step * math.floor(keep / step + 0.5), step * math.ceil(floor / step))
    return int(min(channels, keep))


def uniform_keep(group: ChannelGroup, amount: float, *, round_to: int = 1, min_channels: int = 1) -> int:
    """Keep count when the group loses `amount` of its channels."""
    return keep_count(
        group.channels,
        group.channels * (1.0 - amount),
        round_to=round_to,
        min_channels=min_channels,
        blocks=group.blocks,
    )


def global_keep(
    groups: list[ChannelGroup],
    scores: Mapping[str, torch.Tensor],
    amount: float,
    *,
    round_to: int = 1,
    min_channels: int = 1,
) -> dict[str, int]:
    """Remove the `amount` share of all channels with the lowest mean-normalised scores across groups.

    No group drops below `min_channels`; the counts are then rounded per group by `keep_count`.
    """
    entries = []
    for group in groups:
        values = scores[group.name]
        mean = values.mean()
        normalised = values / mean if mean > 0 else values
        entries += [(float(value), group.name) for value in normalised]
    entries.sort(key=lambda entry: entry[0])
    remaining = {group.name: group.channels for group in groups}
    floors = {group.name: min(group.channels, max(1, min_channels)) for group in groups}
    to_remove = round(amount * len(entries))
    for _, name in entries:
        if to_remove <= 0:
            break
        if remaining[name] > floors[name]:
            remaining[name] -= 1
            to_remove -= 1
    return {
        group.name: keep_count(
            group.channels,
            remaining[group.name],
            round_to=round_to,
            min_channels=min_channels,
            blocks=group.blocks,
        )
        for group in groups
    }


def select_removed(scores: torch.Tensor, keep: int, blocks: int = 1) -> list[int]:
    """Indices to remove so that the `keep` highest-scoring channels stay, `keep / blocks` in each block.

    Ties keep the lower index (stable order).
    """
    channels = len(scores)
    size, per_block = channels // blocks, keep // blocks
    removed: list[int] = []
    for block in range(blocks):
        local = scores[block * size : (block + 1) * size]
        order = torch.sort(local, descending=True, stable=True).indices
        removed += sorted(int(i) + block * size for i in order[per_block:])
    return removed
