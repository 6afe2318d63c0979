"""Channel spaces: union-find over sets of channels that must be pruned index by index together.

A tensor's channel dimension is described by a `Layout`: a list of segments, each a whole space whose
channel c occupies `repeat` consecutive positions (repeat > 1 after flatten) from `start + c * repeat`.
Concatenation joins segments; element-wise ops unify spaces; a layer reading or writing a layout becomes a
member of each space.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from prunequant.pruning.structured.groups import ChannelGroup, Member

FIXED_PADDING = "zero channels padded in by a fixed count"
EXPECTED_REASONS = ("model input", "model output", FIXED_PADDING)


@dataclass(frozen=True)
class Segment:
    """A whole space along a tensor dimension from position `start`: each run b of `unit` channels takes
    the `repeat` positions `start + b * repeat + [0, repeat)`."""

    space: int
    repeat: int = 1
    unit: int = 1
    start: int = 0

    @property
    def plain(self) -> bool:
        """One position per channel."""
        return self.repeat == 1 and self.unit == 1


@dataclass(frozen=True)
class Layout:
    """Channel layout of one tensor: `segments` along dimension `cdim`."""

    segments: tuple[Segment, ...]
    cdim: int

    def with_cdim(self, cdim: int) -> Layout:
        return Layout(self.segments, cdim)

    def repeated(self, factor: int) -> Layout:
        """Each channel now spans `factor` times more positions (flatten, depthwise channel multiplier)."""
        segments = (Segment(s.space, s.repeat * factor, s.unit, s.start * factor) for s in self.segments)
        return Layout(tuple(segments), self.cdim)

    def shifted(self, offset: int) -> Layout:
        """The same channels `offset` positions further along (a later operand of a concatenation)."""
        segments = (Segment(s.space, s.repeat, s.unit, s.start + offset) for s in self.segments)
        return Layout(tuple(segments), self.cdim)

    def coarsened(self, factor: int) -> Layout | None:
        """Every `factor` consecutive positions become one (pixel shuffle, features viewed as channels);
        None when a segment's positions do not split into such runs."""
        segments = []
        for s in self.segments:
            if s.start % factor:
                return None
            if s.repeat % factor == 0:
                segments.append(Segment(s.space, s.repeat // factor, s.unit, s.start // factor))
            elif factor % s.repeat == 0:
                segments.append(Segment(s.space, 1, s.unit * (factor // s.repeat), s.start // factor))
            else:
                return None
        return Layout(tuple(segments), self.cdim)


class Spaces:
    """Union-find of channel spaces with their members, pruning constraints and unsafe reasons."""

    def __init__(self) -> None:
        self._parent: list[int] = []
        self._size: list[int] = []
        self._origin: list[str] = []
        self._members: list[list[Member]] = []
        self._unsafe: list[list[str]] = []
        self._blocks: list[int] = []
        self._units: list[int] = []
        self._split: dict[int, list[int]] = {}
        self.untied: list[str] = []  # shuffles and chunks whose pieces could not be tied channel by channel

    def new(self, size: int, origin: str, *, blocks: int = 1) -> Layout:
        """A fresh space of `size` channels on dimension 1, named after the layer that creates it."""
        self._parent.append(len(self._parent))
        self._size.append(size)
        self._origin.append(origin)
        self._members.append([])
        self._unsafe.append([])
        self._blocks.append(blocks)
        self._units.append(1)
        return Layout((Segment(len(self._parent) - 1),), 1)

    def find(self, space: int) -> int:
        while self._parent[space] != space:
            self._parent[space] = self._parent[self._parent[space]]
            space = self._parent[space]
        return space

    def size(self, space: int) -> int:
        return self._size[self.find(space)]

    def origin(self, space: int) -> str:
        """Name of the group `space` belongs to (its root's creating layer)."""
        return self._origin[self.find(space)]

    def unsafe_reasons(self, space: int) -> list[str]:
        return list(self._unsafe[self.find(space)])

    def constraints(self, space: int) -> tuple[int, int]:
        """(grouped-conv blocks, channels per run) of `space`."""
        root = self.find(space)
        return self._blocks[root], self._units[root]

    def members(self, space: int) -> list[Member]:
        return list(self._members[self.find(space)])

    def roots(self) -> list[int]:
        """Every space that is neither merged into another nor split."""
        return [s for s in range(len(self._parent)) if self.find(s) == s and s not in self._split]

    def resolve(self, layout: Layout) -> Layout:
        """`layout` with every space that was split since replaced by its pieces."""
        segments: list[Segment] = []
        for s in layout.segments:
            root = self.find(s.space)
            if root not in self._split:
                segments.append(Segment(root, s.repeat, s.unit, s.start))
                continue
            pieces, first = [], 0
            for piece in self._split[root]:
                pieces.append(Segment(piece, s.repeat, s.unit, s.start + first // s.unit * s.repeat))
                first += self.size(piece)
            segments += self.resolve(Layout(tuple(pieces), layout.cdim)).segments
        return Layout(tuple(segments), layout.cdim)

    def split(self, space: int, sizes: list[int]) -> bool:
        """Cut a space into consecutive pieces of `sizes` channels (a concat meets one tensor, a channel
        pad meets a conv output); members follow their piece. False when a constraint forbids the cut."""
        root = self.find(space)
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        unit = math.lcm(self._units[root], *(m.unit for m in self._members[root]))
        if self._blocks[root] > 1 or any(start % unit for start in starts) or sum(sizes) != self._size[root]:
            return False
        pieces = []
        for start, size in zip(starts, sizes, strict=True):
            name = f"{self._origin[root]}[{start}:{start + size}]"  # group names stay unique
            piece = self.new(size, name).segments[0].space
            self._members[piece] = [
                Member(m.module, m.role, m.offset + start // m.unit * m.repeat, m.repeat, m.unit)
                for m in self._members[root]
            ]
            self._unsafe[piece] = list(self._unsafe[root])
            self._units[piece] = self._units[root]
            pieces.append(piece)
        self._split[root] = pieces
        self._members[root] = []
        return True

    def positions(self, layout: Layout) -> int:
        """Length of the tensor dimension that `layout` describes."""
        return sum(self.size(s.space) // s.unit * s.repeat for s in self.resolve(layout).segments)

    def joined(self, layouts: list[Layout]) -> Layout:
        """The layouts one after the other along their (common) channel dimension: a concatenation."""
        segments: list[Segment] = []
        offset = 0
        for layout in layouts:
            segments += layout.shifted(offset).segments
            offset += self.positions(layout)
        return Layout(tuple(segments), layouts[0].cdim)

    def mark(self, layout: Layout | None, reason: str) -> None:
        """Forbid pruning every space in `layout`, for `reason`."""
        for segment in self.resolve(layout).segments if layout else ():
            self._unsafe[self.find(segment.space)].append(reason)

    def constrain_blocks(self, layout: Layout, blocks: int) -> None:
        for segment in self.resolve(layout).segments:
            root = self.find(segment.space)
            self._blocks[root] = math.lcm(self._blocks[root], blocks)

    def constrain_units(self, layout: Layout, unit: int | None = None) -> None:
        """Channels of each space of `layout` go in whole runs of `unit` (default: the segment's own)."""
        for segment in self.resolve(layout).segments:
            root = self.find(segment.space)
            self._units[root] = math.lcm(self._units[root], unit or segment.unit)

    def add_members(self, layout: Layout, module: str, role: str) -> None:
        """Register `module`'s `role` dimension as reading/writing `layout`, segment by segment."""
        for s in self.resolve(layout).segments:
            self._members[self.find(s.space)].append(Member(module, role, s.start, s.repeat, s.unit))

    def unify(self, a: Layout, b: Layout, where: str, reason: str | None = None) -> bool:
        """Tie `a` and `b` channel by channel. Plain segmentations that differ are cut to a common one;
        other differences mark both unsafe with `reason` (default: they are laid out differently)."""
        a, b = self._aligned(self.resolve(a), self.resolve(b))
        same = len(a.segments) == len(b.segments) and all(
            (sa.start, sa.repeat, sa.unit, self.size(sa.space))
            == (sb.start, sb.repeat, sb.unit, self.size(sb.space))
            for sa, sb in zip(a.segments, b.segments, strict=True)
        )
        if not same:
            reason = reason or f"{where} combines tensors whose channels are laid out differently"
            self.mark(a, reason)
            self.mark(b, reason)
            return False
        for sa, sb in zip(a.segments, b.segments, strict=True):
            ra, rb = self.find(sa.space), self.find(sb.space)
            if ra == rb:
                continue
            keep, drop = min(ra, rb), max(ra, rb)
            self._parent[drop] = keep
            self._members[keep] += self._members[drop]
            self._unsafe[keep] += self._unsafe[drop]
            self._blocks[keep] = math.lcm(self._blocks[keep], self._blocks[drop])
            self._units[keep] = math.lcm(self._units[keep], self._units[drop])
        return True

    def _aligned(self, a: Layout, b: Layout) -> tuple[Layout, Layout]:
        """Split the spaces of two plain layouts (one position per channel) at each other's boundaries."""
        plain = all(s.plain for s in a.segments + b.segments)
        if not plain or self.positions(a) != self.positions(b) or len(a.segments) == len(b.segments) == 1:
            return a, b
        cuts = {s.start + self.size(s.space) for layout in (a, b) for s in layout.segments}
        self.cut(a, cuts)
        self.cut(b, cuts)
        return self.resolve(a), self.resolve(b)

    def shuffled(self, layout: Layout, groups: int, name: str) -> Layout | None:
        """`layout` after channel shuffle `name` of `groups` groups (position i * n + j, n = positions /
        groups, moves to j * groups + i). The groups are tied channel by channel, so that every group keeps
        the same channels and the pruned shuffle interleaves them as the original did: channel j of the
        tied space then takes the `groups` consecutive positions j * groups ... Groups laid out differently
        are marked unsafe, and so is the output, a new space (its channels mix theirs in a way no layout
        follows). None when a group boundary cuts a channel's run."""
        n = self.positions(layout) // groups
        pieces = self.pieces(layout, [n * (i + 1) for i in range(groups)])
        if pieces is None:
            return None
        where = f"channel shuffle '{name}'"
        reason = (
            f"{where} interleaves groups laid out differently (ShuffleNetV2: a chunk's pass-through half "
            "and a branch output): tied channel by channel, every branch channel would follow a run of "
            "earlier ones; chosen apart, the pruned shuffle would reorder the channels"
        )
        tied = [self.unify(pieces[0], piece, where, reason) for piece in pieces[1:]]  # every pair is tied
        if all(tied):
            return self.resolve(pieces[0]).repeated(groups)
        self.untied.append(name)
        output = self.new(groups * n, name)
        self.mark(output, reason)
        return output

    def pieces(self, layout: Layout, ends: list[int]) -> list[Layout] | None:
        """`layout` cut into consecutive pieces ending at positions `ends` (ascending, the last one its
        length), each counted from its own start (chunk, split); None where a space cannot be cut."""
        if not self.cut(layout, set(ends[:-1])):
            return None
        segments: list[list[Segment]] = [[] for _ in ends]
        for s in self.resolve(layout).segments:
            segments[bisect.bisect_right(ends, s.start)].append(s)
        starts = [0, *ends[:-1]]
        return [
            Layout(tuple(part), layout.cdim).shifted(-start)
            for part, start in zip(segments, starts, strict=True)
        ]

    def cut(self, layout: Layout, cuts: set[int]) -> bool:
        """Split the spaces of `layout` so that no segment spans a position in `cuts` (a channel's positions
        p with p < cut go to one piece, the others to the next). False when a space cannot be cut there
        (inside a channel's run of positions, or a constraint forbids it)."""
        for s in self.resolve(layout).segments:
            runs = self.size(s.space) // s.unit
            counts: set[int] = set()
            for c in cuts:
                n = min(max(-(-(c - s.start) // s.repeat), 0), runs)  # runs starting before the cut
                if 0 < n < runs:
                    if s.start + n * s.repeat > c:
                        return False  # the cut falls inside run n - 1
                    counts.add(n)
            bounds = [0, *sorted(n * s.unit for n in counts), runs * s.unit]
            if counts and not self.split(s.space, _lengths(bounds)):
                return False
        return True

    def groups(self) -> list[ChannelGroup]:
        """One ChannelGroup per root space, in creation order, named after its first creating layer."""
        result = []
        for space in range(len(self._parent)):
            if self.find(space) != space or space in self._split:
                continue
            size, blocks, unit = self._size[space], self._blocks[space], self._units[space]
            unsafe = list(dict.fromkeys(self._unsafe[space]))
            if size % blocks:
                unsafe.append(f"grouped convs need {blocks} equal blocks but the group has {size} channels")
            if size % (blocks * unit):
                unsafe.append(f"channels go in runs of {unit} that do not fit {blocks} block(s) of {size}")
            elif unit >= size // blocks and unit > 1:
                unsafe.append(f"channels go in runs of {unit}, the whole group: nothing can be removed")
            group = ChannelGroup(
                name=self._origin[space],
                channels=size,
                members=list(dict.fromkeys(self._members[space])),
                blocks=blocks,
                unsafe=unsafe,
                expected=all(reason in EXPECTED_REASONS for reason in unsafe),
                unit=unit,
            )
            result.append(group)
        return result


def _lengths(bounds: list[int]) -> list[int]:
    """The lengths between consecutive bounds."""
    return [hi - lo for lo, hi in zip(bounds, bounds[1:], strict=False)]
