"""The dependency graph's routed tensors (routing.py): values of its second pass, for models whose channel
shuffles cannot tie their groups channel by channel (ShuffleNetV2). In that pass every chunk and shuffle
along the channels makes a routed tensor instead of tying spaces; concatenations, BN, depthwise convs and
activations carry one, and the convs reading one are its members. Each set of spaces coupled that way
becomes a Region, or, where no narrower width routes the same channels, its spaces are marked unsafe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prunequant.pruning.structured.routing import Cat, Chunk, Leaf, Region, RoutedMember, Shuffle, sources
from prunequant.pruning.structured.spaces import Layout, Segment, Spaces


@dataclass(frozen=True)
class Pending:
    """A layout entering routed tensors; resolved into its spaces once the whole graph is walked."""

    layout: Layout


@dataclass(frozen=True)
class Routed:
    """A tensor whose channels (dimension 1) a routing expression with Pending leaves describes."""

    expr: Any
    cdim: int = 1

    def layouts(self) -> tuple[Layout, ...]:
        """Every layout the expression reads."""
        return tuple(leaf.layout for leaf in _leaves(self.expr))


def as_expr(value: Layout | Routed) -> Any:
    return value.expr if isinstance(value, Routed) else Pending(value)


def _leaves(expr: Any) -> list[Pending]:
    if isinstance(expr, Pending):
        return [expr]
    if isinstance(expr, Cat):
        return [leaf for part in expr.parts for leaf in _leaves(part)]
    return _leaves(expr.source)


class RoutedTracker:
    """The routed members found while walking the graph, turned into regions at the end."""

    def __init__(self) -> None:
        self.members: list[tuple[str, str, Any]] = []

    def add(self, module: str, role: str, value: Routed) -> None:
        self.members.append((module, role, value.expr))

    def regions(self, spaces: Spaces) -> list[Region]:
        """The feasible regions; the spaces of the others are marked unsafe with the reason."""
        resolved = []
        roots: dict[str, int] = {}
        for module, role, expr in self.members:
            leaf_expr = _resolve(expr, spaces, roots)
            if isinstance(leaf_expr, str):
                for leaf in _leaves(expr):
                    spaces.mark(leaf.layout, leaf_expr)
                continue
            resolved.append(RoutedMember(module, role, leaf_expr))
        routed_keys = {(member.module, member.role) for member in resolved}
        owners: dict[tuple[str, str], set[int]] = {}  # every layer dimension -> the spaces it belongs to
        for root in spaces.roots():
            for member in spaces.members(root):
                owners.setdefault((member.module, member.role), set()).add(root)
        regions = []
        for members in _components(resolved):
            widths = {name: spaces.size(roots[name]) for member in members for name in sources(member.expr)}
            region = Region(f"routed:{next(iter(widths))}", widths, members)
            problem = _problem(region, spaces, roots, routed_keys, owners)
            if problem:
                for name in widths:
                    spaces.mark(Layout((Segment(roots[name]),), 1), problem)
            else:
                regions.append(region)
        return regions


def _resolve(expr: Any, spaces: Spaces, roots: dict[str, int]) -> Any:
    """`expr` with every Pending leaf replaced by a Leaf of root spaces (by group name, each recorded in
    `roots`), or the reason it cannot be."""
    if isinstance(expr, Pending):
        segments, start = [], 0
        for segment in spaces.resolve(expr.layout).segments:
            if segment.unit != 1 or segment.start != start or expr.layout.cdim != 1:
                return "a chunk or channel shuffle routes channels that go in runs or in blocks"
            roots[spaces.origin(segment.space)] = spaces.find(segment.space)
            segments.append((spaces.origin(segment.space), segment.repeat))
            start += spaces.size(segment.space) * segment.repeat
        return Leaf(tuple(segments))
    if isinstance(expr, Cat):
        parts = [_resolve(part, spaces, roots) for part in expr.parts]
        reason = next((part for part in parts if isinstance(part, str)), None)
        return reason or Cat(tuple(parts))
    source = _resolve(expr.source, spaces, roots)
    if isinstance(source, str):
        return source
    return Chunk(source, expr.index, expr.count) if isinstance(expr, Chunk) else Shuffle(source, expr.groups)


def _components(members: list[RoutedMember]) -> list[list[RoutedMember]]:
    """Members grouped by the spaces they share (transitively), in order of first appearance."""
    parent: dict[str, str] = {}

    def find(space: str) -> str:
        while parent.setdefault(space, space) != space:
            space = parent[space]
        return space

    for member in members:
        first, *others = sorted(sources(member.expr))
        for other in others:
            parent[find(other)] = find(first)
    groups: dict[str, list[RoutedMember]] = {}
    for member in members:
        groups.setdefault(find(min(sources(member.expr))), []).append(member)
    return list(groups.values())


def _problem(
    region: Region,
    spaces: Spaces,
    roots: dict[str, int],
    routed_keys: set[tuple[str, str]],
    owners: dict[tuple[str, str], set[int]],
) -> str | None:
    """Why the region cannot be pruned, or None (`routed_keys`: the layer dimensions reading routed
    tensors; `owners`: the spaces each layer dimension belongs to)."""
    where = f"channels routed by chunks and channel shuffles from '{next(iter(region.widths))}'"
    for name in region.widths:
        space = roots[name]
        reasons = spaces.unsafe_reasons(space)
        if reasons:
            return f"{where} travel with channels that keep their size ({reasons[0]})"
        blocks, unit = spaces.constraints(space)
        if blocks > 1 or unit > 1:
            return f"{where} include channels of grouped convs or in runs"
        keys = [(member.module, member.role) for member in spaces.members(space)]
        if len(set(keys)) != len(keys):
            return f"{where} reach one layer twice"
        for member in spaces.members(space):
            if (member.unit, member.repeat, member.offset) != (1, 1, 0):
                return f"{where} reach '{member.module}' through a flatten or a concatenation"
            if (member.module, member.role) in routed_keys:
                return f"{where} meet '{member.module}' both routed and directly"
            if owners[(member.module, member.role)] != {space}:
                return f"{where} share layer '{member.module}' with other channels"
    if not any(region.plan(keep) for keep in range(region.step - 1, 0, -1)):
        return f"{where}: no narrower width routes the same channels to the same layers"
    return None
