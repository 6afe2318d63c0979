"""Coupled channel groups: which tensor positions of which layers must lose the same channel together."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

OUT = "out"
"""Role of a member whose output dimension (conv/linear dim 0, BN tensors) holds the channels."""
IN = "in"
"""Role of a member whose input dimension (conv dim 1, linear dim 1) reads the channels."""
PAD_FRONT = "pad_front"
"""Role of a module padding zero channels before its input's (ResNet option A): the padded ones."""
PAD_BACK = "pad_back"
"""Role of a module padding zero channels after its input's: the padded ones."""


@dataclass(frozen=True)
class Member:
    """One layer tensor dimension in a group: block b = c // unit of the group's channels c is positions
    `offset + b * repeat + [0, repeat)` of the layer's `role` dimension (repeat > 1 after a flatten;
    unit > 1 after a pixel shuffle or a view of features into channels, where `unit` channels make one
    position and are pruned together)."""

    module: str
    role: str
    offset: int = 0
    repeat: int = 1
    unit: int = 1

    def positions(self, channels: torch.Tensor | list[int]) -> torch.Tensor:
        """The layer positions of the given group channels, ascending within each channel's block."""
        blocks = torch.unique(torch.as_tensor(channels, dtype=torch.long) // self.unit).reshape(-1, 1)
        return (self.offset + blocks * self.repeat + torch.arange(self.repeat)).reshape(-1)

    def reduce(self, values: torch.Tensor, channels: int) -> torch.Tensor:
        """Sum per-position `values` of this member over each channel's block -> one value per channel
        (a block shared by `unit` channels is shared equally)."""
        count = channels // self.unit
        block = values[self.offset : self.offset + count * self.repeat]
        per_block = block.reshape(count, self.repeat).sum(dim=1)
        return per_block.repeat_interleave(self.unit) / self.unit if self.unit > 1 else per_block


@dataclass
class ChannelGroup:
    """A set of `channels` channels shared index by index by all `members`.

    `blocks` > 1 means the channels form that many equal contiguous blocks (grouped conv) and every block
    must lose the same number. `unit` > 1 means channels go in whole runs of `unit` (GroupNorm groups,
    pixel shuffle blocks, features viewed as one channel). `region` names the routed region (ShuffleNetV2's
    chunks and shuffles) whose sources are pruned together. `unsafe` lists why the group may not be pruned
    (empty = prunable); `expected` marks reasons that are normal (model input/output) rather than
    unsupported patterns.
    """

    name: str
    channels: int
    members: list[Member] = field(default_factory=list)
    blocks: int = 1
    unsafe: list[str] = field(default_factory=list)
    expected: bool = True
    unit: int = 1
    region: str | None = None

    @property
    def prunable(self) -> bool:
        """Prunable on its own: safe, more than one channel, and not one of a routed region's sources
        (`region`: pruned with the others of that region, see routing.py)."""
        return not self.unsafe and self.channels > 1 and self.region is None

    @property
    def producers(self) -> list[Member]:
        """Members whose output channels are the group's channels (convs, linears, BNs, depthwise convs)."""
        return [member for member in self.members if member.role == OUT]

    @property
    def consumers(self) -> list[Member]:
        """Members reading the group's channels as inputs (the next convs and linears)."""
        return [member for member in self.members if member.role == IN]

    @property
    def layers(self) -> list[str]:
        """Names of every layer the group touches, in discovery order, without repeats."""
        return list(dict.fromkeys(member.module for member in self.members))
