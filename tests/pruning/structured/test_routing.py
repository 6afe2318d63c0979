"""routing.py, the solver behind ShuffleNetV2's pruning: label lists against torch's own chunk / cat /
shuffle, and every plan checked by running the pruned ops on real tensors."""

from __future__ import annotations

import random

import pytest
import torch

from prunequant.pruning.structured.routing import (
    Cat,
    Chunk,
    Leaf,
    Region,
    RoutedMember,
    Shuffle,
    labels,
)


def shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    b, c = x.shape[:2]
    return x.view(b, groups, c // groups, *x.shape[2:]).transpose(1, 2).reshape(b, c, *x.shape[2:])


def run(expr, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
    """What torch computes for `expr` on source tensors [1, C] (a Leaf repeats each channel in place)."""
    if isinstance(expr, Leaf):
        return torch.cat([tensors[s].repeat_interleave(r, dim=1) for s, r in expr.segments], dim=1)
    if isinstance(expr, Cat):
        return torch.cat([run(part, tensors) for part in expr.parts], dim=1)
    if isinstance(expr, Chunk):
        return run(expr.source, tensors).chunk(expr.count, dim=1)[expr.index]
    return shuffle(run(expr.source, tensors), expr.groups)


def codes(widths: dict[str, int]) -> dict[str, torch.Tensor]:
    """Source s, channel c holds the number 1000 * index(s) + c."""
    return {
        s: (1000 * i + torch.arange(w)).reshape(1, -1).double() for i, (s, w) in enumerate(widths.items())
    }


def decode(values: torch.Tensor, names: list[str]) -> list[tuple[str, int]]:
    return [(names[int(v) // 1000], int(v) % 1000) for v in values.reshape(-1)]


def shufflenet_stage(width: int, units: int) -> Region:
    """A ShuffleNetV2 stage: two branches concatenated and shuffled, then `units` units whose chunk passes
    one half through and feeds the other to a branch conv; the next stage reads the output."""
    widths = {"a": width, "b": width}
    out = Shuffle(Cat((Leaf((("a", 1),)), Leaf((("b", 1),)))), 2)
    members = []
    for u in range(units):
        members.append(RoutedMember(f"unit{u}.conv", "in", Chunk(out, 1, 2)))
        widths[f"c{u}"] = width
        out = Shuffle(Cat((Chunk(out, 0, 2), Leaf(((f"c{u}", 1),)))), 2)
    members.append(RoutedMember("next.depthwise", "out", out))
    return Region("stage", widths, members)


def random_expr(rng: random.Random, names: list[str], depth: int):
    if depth == 0:
        return Leaf(tuple((name, rng.choice((1, 1, 2))) for name in rng.sample(names, rng.randint(1, 2))))
    kind = rng.choice(("cat", "chunk", "shuffle"))
    if kind == "cat":
        return Cat(tuple(random_expr(rng, names, depth - 1) for _ in range(2)))
    source = random_expr(rng, names, depth - 1)
    if kind == "chunk":
        count = rng.choice((2, 3))
        return Chunk(source, rng.randrange(count), count)
    return Shuffle(source, rng.choice((2, 3)))


@pytest.mark.parametrize("seed", range(40))
def test_labels_are_what_torch_computes(seed):
    rng = random.Random(seed)
    widths = {name: rng.choice((2, 4, 6)) for name in ("p", "q", "r")}
    expr = random_expr(rng, list(widths), 3)
    expected = labels(expr, widths)
    try:
        got = decode(run(expr, codes(widths)), list(widths))
    except (RuntimeError, IndexError):  # the ops cannot run at these widths
        assert expected is None
        return
    assert expected == got


@pytest.mark.parametrize("seed", range(40))
def test_every_plan_is_exact_when_run_by_torch(seed):
    """At every feasible keep, each member's pruned tensor (torch, from the kept source channels in plan
    order) equals its original tensor at the plan's positions for it."""
    rng = random.Random(seed)
    widths = {name: 12 for name in ("p", "q", "r")}
    exprs = [random_expr(rng, list(widths), rng.randint(1, 3)) for _ in range(3)]
    members = [RoutedMember(f"m{i}", "in", expr) for i, expr in enumerate(exprs)]
    region = Region("r", widths, members)
    if any(labels(m.expr, widths) is None for m in members):
        return
    original = codes(widths)
    generator = torch.Generator().manual_seed(seed)
    scores = {s: torch.rand(w, generator=generator) for s, w in widths.items()}

    def best(space: str, candidates: list[int], count: int) -> list[int]:
        return sorted(candidates, key=lambda c: -scores[space][c])[:count]

    keeps = region.keeps()
    assert keeps[-1] == region.step  # keeping everything always routes
    for keep in keeps:
        plan = region.plan(keep, best)
        pruned = {s: original[s][:, plan.kept[s]] for s in widths}
        for member in members:
            got = run(member.expr, pruned)
            expected = run(member.expr, original)[:, plan.positions[(member.module, member.role)]]
            assert torch.equal(got, expected)


def test_shufflenet_stages_prune_at_almost_every_width():
    """torchvision shufflenet_v2_x1_0's stage 3 (116 channels per branch, 7 pass-through units) and a toy
    stage: the widths the routing cannot follow are few, and half is always among the feasible ones."""
    big = shufflenet_stage(116, 7)
    feasible = big.keeps()
    assert 58 in feasible and len(feasible) >= 100
    small = shufflenet_stage(8, 2)
    assert small.keeps() == list(range(1, 9))


def test_a_width_the_code_cannot_run_at_is_refused():
    region = Region("odd", {"a": 4}, [RoutedMember("m", "in", Shuffle(Leaf((("a", 1),)), 2))])
    assert region.plan(3) is None and region.plan(2) is not None
    assert region.keeps() == [2, 4]


def test_a_class_with_too_few_channels_is_refused():
    """A stage of 3 channels per branch and 2 units: at 2 the code runs, but the pruned routing sends more
    channels of a source to one unit's branch than the original sends there."""
    region = shufflenet_stage(3, 2)
    assert all(labels(member.expr, region.scaled(2)) is not None for member in region.members)
    assert region.plan(2) is None and region.keeps() == [1, 3]


def test_the_default_choice_keeps_the_lowest_channels_of_each_class():
    """Channels 0 and 1 of `a` are read by m and n, 2 and 3 by n alone: keeping 2 keeps one of each."""
    a = Leaf((("a", 1),))
    members = [RoutedMember("m", "in", Chunk(a, 0, 2)), RoutedMember("n", "in", a)]
    plan = Region("c", {"a": 4}, members).plan(2)
    assert plan is not None and plan.kept["a"] == [0, 2]
    assert plan.positions == {("m", "in"): [0], ("n", "in"): [0, 2]}
