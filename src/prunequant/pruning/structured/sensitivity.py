"""Per-group sensitivity: accuracy after pruning one group at a time by each amount, and amounts from it.

`sensitivity_scan` prunes each group alone (the others untouched) at every amount and evaluates on a
labelled loader. `amounts_from_table` then picks per-group amounts: the smallest accuracy-drop tolerance
whose per-group amounts (the largest scanned amount within the tolerance) reach the target mean amount,
weighted by channel count.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from prunequant.errors import ConfigError
from prunequant.pruning.structured.allocation import select_removed, uniform_keep
from prunequant.pruning.structured.graph import dependency_groups
from prunequant.pruning.structured.groups import ChannelGroup
from prunequant.pruning.structured.importance import ImportanceContext, group_scores
from prunequant.pruning.structured.rewrite import remove_channels_
from prunequant.training import evaluate
from prunequant.validation import check_fraction

DEFAULT_AMOUNTS = (0.25, 0.5, 0.75)


@dataclass(frozen=True)
class SensitivityTable:
    """`accuracy[group][i]` is the top-1 after pruning only that group by `amounts[i]`."""

    amounts: tuple[float, ...]
    baseline: float
    accuracy: dict[str, tuple[float, ...]]
    channels: dict[str, int]

    def to_dict(self) -> dict:
        return {
            "amounts": list(self.amounts),
            "baseline": self.baseline,
            "groups": {name: list(values) for name, values in self.accuracy.items()},
        }

    def markdown(self) -> str:
        header = "| group | channels | " + " | ".join(f"{a:.0%}" for a in self.amounts) + " |"
        rule = "|---|---:|" + "---:|" * len(self.amounts)
        rows = [
            f"| {name} | {self.channels[name]} | " + " | ".join(f"{100 * v:.2f}" for v in values) + " |"
            for name, values in self.accuracy.items()
        ]
        return "\n".join([header, rule, *rows])


def sensitivity_scan(
    model: nn.Module,
    example_input: torch.Tensor,
    loader: Iterable,
    *,
    amounts: Sequence[float] = DEFAULT_AMOUNTS,
    importance: str = "l1",
    groups: Sequence[ChannelGroup] | None = None,
    max_batches: int = 0,
    calib_batches: int = 8,
    seed: int = 0,
) -> SensitivityTable:
    """Top-1 on `loader` (up to `max_batches`; 0 = all) after pruning each group alone by each amount."""
    amounts = tuple(check_fraction("amount", a) for a in amounts)
    if not amounts:
        raise ConfigError("sensitivity needs at least one amount, e.g. 0.25,0.5,0.75")
    groups = list(groups) if groups is not None else dependency_groups(model, example_input).prunable
    context = ImportanceContext(model, groups, loader, calib_batches, seed)
    baseline = evaluate(model, loader, max_batches=max_batches).top1
    accuracy = {}
    for group in groups:
        scores = group_scores(importance, group, context)
        row = []
        for amount in amounts:
            pruned = copy.deepcopy(model)
            removed = select_removed(scores, uniform_keep(group, amount), group.blocks)
            remove_channels_(pruned, [group], {group.name: removed})
            row.append(evaluate(pruned, loader, max_batches=max_batches).top1)
        accuracy[group.name] = tuple(row)
    model.eval()
    return SensitivityTable(amounts, baseline, accuracy, {g.name: g.channels for g in groups})


def amounts_from_table(table: SensitivityTable, target: float) -> dict[str, float]:
    """Per-group amounts whose channel-weighted mean reaches `target` with the least worst drop."""
    check_fraction("target amount", target)
    total = sum(table.channels.values())
    drops = sorted({table.baseline - value for values in table.accuracy.values() for value in values})
    best: dict[str, float] = {}
    for tolerance in drops:
        best = {
            name: max(
                [0.0]
                + [a for a, v in zip(table.amounts, values, strict=True) if table.baseline - v <= tolerance]
            )
            for name, values in table.accuracy.items()
        }
        if sum(best[name] * table.channels[name] for name in best) >= target * total:
            break
    return best


def sensitivity_amounts(
    model: nn.Module,
    example_input: torch.Tensor,
    groups: Sequence[ChannelGroup],
    loader: Iterable | None,
    *,
    target: float,
    importance: str,
    calib_batches: int,
    seed: int,
) -> dict[str, float]:
    """Scan `groups` on `loader` (its first `calib_batches` batches) and return amounts reaching `target`."""
    if loader is None:
        raise ConfigError("allocation 'sensitivity' needs a labelled calib_loader (CLI: --dataset)")
    table = sensitivity_scan(
        model,
        example_input,
        loader,
        amounts=_grid(target),
        importance=importance,
        groups=groups,
        max_batches=calib_batches,
        calib_batches=calib_batches,
        seed=seed,
    )
    return amounts_from_table(table, target)


def _grid(target: float) -> tuple[float, ...]:
    """Amounts scanned for a target: the defaults plus the target and a step beyond it, below 1."""
    return tuple(sorted({*DEFAULT_AMOUNTS, target, min(0.9, target + 0.15)} - {0.0}))
