"""Routed channels: chunks, concatenations and channel shuffles that move the channels of several spaces in
a way no layout follows (ShuffleNetV2: a chunk's pass-through half, itself a shuffle of the unit before,
meets a branch output in the next shuffle).

Such a tensor is an expression over source spaces. Evaluated at the sources' widths it lists, per position,
the (space, channel) label it holds; evaluated at pruned widths it lists what the same code computes after
pruning. A choice of kept channels is exact when every routed member (a layer reading or passing such a
tensor) finds in the pruned tensor only labels it read in the original, as many times: the layer then keeps
the positions of those labels, in the order the pruned tensor holds them, and computes what it did on them.
So each pruned channel must come from an original channel of its class (read by the same members as often);
within a class any channels may be kept. The sources of one region are pruned in proportion, `keep`
channels of every `step` of them (their common divisor).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, reduce

Label = tuple[str, int]
"""(source space, channel) held by one position."""


@dataclass(frozen=True)
class Leaf:
    """Source spaces laid out one after the other, each channel taking `repeat` consecutive positions."""

    segments: tuple[tuple[str, int], ...]  # (space, repeat)


@dataclass(frozen=True)
class Cat:
    parts: tuple[Expr, ...]


@dataclass(frozen=True)
class Chunk:
    """Piece `index` of torch.chunk(source, `count`): pieces of ceil(length / count) positions."""

    source: Expr
    index: int
    count: int


@dataclass(frozen=True)
class Shuffle:
    """Channel shuffle in `groups` groups: position i * n + j (n = length / groups) goes to j * groups + i."""

    source: Expr
    groups: int


Expr = Leaf | Cat | Chunk | Shuffle


def labels(expr: Expr, widths: Mapping[str, int]) -> list[Label] | None:
    """The label of every position of `expr` when the sources have `widths`; None where the code would
    not run or would cut differently at those widths (a shuffle that does not divide, a missing chunk)."""
    if isinstance(expr, Leaf):
        return [(s, c) for s, repeat in expr.segments for c in range(widths[s]) for _ in range(repeat)]
    if isinstance(expr, Cat):
        parts = [labels(part, widths) for part in expr.parts]
        return None if any(part is None for part in parts) else [label for part in parts for label in part]
    source = labels(expr.source, widths)
    if source is None:
        return None
    if isinstance(expr, Chunk):
        size = -(-len(source) // expr.count)
        piece = source[expr.index * size : (expr.index + 1) * size]
        return piece if piece else None
    if len(source) % expr.groups:
        return None
    n = len(source) // expr.groups
    return [source[i * n + j] for j in range(n) for i in range(expr.groups)]


def sources(expr: Expr) -> list[str]:
    """The spaces `expr` reads, in the order its leaves name them (deterministic: region names use it)."""
    if isinstance(expr, Leaf):
        return list(dict.fromkeys(space for space, _ in expr.segments))
    if isinstance(expr, Cat):
        return list(dict.fromkeys(space for part in expr.parts for space in sources(part)))
    return sources(expr.source)


@dataclass(frozen=True)
class RoutedMember:
    """Layer `module` reads (role "in") or passes (role "out": BN, depthwise conv) routed tensor `expr`."""

    module: str
    role: str
    expr: Expr


@dataclass(frozen=True)
class RoutedPlan:
    """Kept channels of every source, in the order its pruned channels hold them (not always ascending),
    and kept positions of every routed member's dimension, in the order the pruned tensor holds them."""

    kept: dict[str, list[int]]
    positions: dict[tuple[str, str], list[int]]


Chooser = Callable[[str, list[int], int], list[int]]
"""(space, candidate channels, count) -> the `count` channels to keep among the candidates."""


def first_channels(space: str, candidates: list[int], count: int) -> list[int]:
    """The default choice: the lowest channels of each class."""
    return candidates[:count]


@dataclass
class Region:
    """Source spaces coupled by routed tensors, and the members reading those tensors."""

    name: str
    widths: dict[str, int]
    members: list[RoutedMember]

    @property
    def step(self) -> int:
        """Channels of every source per unit of `keep`: the sources' greatest common divisor."""
        return reduce(math.gcd, self.widths.values())

    def scaled(self, keep: int) -> dict[str, int]:
        """Source widths when every source keeps `keep` of each `step` channels."""
        return {space: width // self.step * keep for space, width in self.widths.items()}

    def plan(self, keep: int, choose: Chooser = first_channels) -> RoutedPlan | None:
        """The exact pruning at `keep` (see the module docstring), channels picked by `choose` within
        each class of channels read alike; None when the routing at those widths cannot be followed."""
        widths = self.scaled(keep)
        original, pruned = self._original, self._tensors(widths)
        if original is None or pruned is None:
            return None
        before, after = self._original_classes, _classes(widths, pruned)
        kept = {}
        for space in self.widths:
            chosen = _matched(space, before[space], after[space], choose)
            if chosen is None:
                return None
            kept[space] = chosen
        positions: dict[tuple[str, str], list[int]] = {}
        for member, tensor_before, tensor_after in zip(self.members, original, pruned, strict=True):
            kept_positions = _follow(tensor_before, tensor_after, kept)
            key = (member.module, member.role)
            if kept_positions is None or positions.setdefault(key, kept_positions) != kept_positions:
                return None
        return RoutedPlan(kept, positions)

    def keeps(self) -> list[int]:
        """Every `keep` (1 .. step) at which the routing can be followed."""
        return [keep for keep in range(1, self.step + 1) if self.plan(keep) is not None]

    @cached_property
    def _original(self) -> list[list[Label]] | None:
        return self._tensors(self.widths)

    @cached_property
    def _original_classes(self) -> dict[str, list[tuple[int, ...]]]:
        return _classes(self.widths, self._original or [])

    def _tensors(self, widths: Mapping[str, int]) -> list[list[Label]] | None:
        tensors = [labels(member.expr, widths) for member in self.members]
        return None if any(t is None for t in tensors) else tensors


def _classes(widths: Mapping[str, int], tensors: Sequence[list[Label]]) -> dict[str, list[tuple[int, ...]]]:
    """Per source, per channel: how many times each member's tensor holds it."""
    counts = [Counter(tensor) for tensor in tensors]
    return {s: [tuple(count[(s, c)] for count in counts) for c in range(w)] for s, w in widths.items()}


def _matched(
    space: str, before: list[tuple[int, ...]], after: list[tuple[int, ...]], choose: Chooser
) -> list[int] | None:
    """Original channel of every pruned channel of `space`, given the class of each (`before`, `after`):
    within each class, the chosen ones in ascending order; None when a class has too few channels."""
    candidates: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for channel, cls in enumerate(before):
        candidates[cls].append(channel)
    chosen: dict[tuple[int, ...], list[int]] = {}
    for cls, count in Counter(after).items():
        if len(candidates[cls]) < count:
            return None
        chosen[cls] = sorted(choose(space, candidates[cls], count))
    return [chosen[cls].pop(0) for cls in after]


def _follow(before: list[Label], after: list[Label], kept: Mapping[str, list[int]]) -> list[int] | None:
    """Positions of `before` holding the original channels of the labels of `after`, in `after`'s order
    (occurrence by occurrence); None when one is missing or read a different number of times."""
    where: dict[Label, list[int]] = defaultdict(list)
    for position, label in enumerate(before):
        where[label].append(position)
    seen: Counter[Label] = Counter()
    result = []
    for space, channel in after:
        label = (space, kept[space][channel])
        if seen[label] >= len(where[label]):
            return None
        result.append(where[label][seen[label]])
        seen[label] += 1
    if any(seen[label] != len(where[label]) for label in seen):
        return None
    return result
