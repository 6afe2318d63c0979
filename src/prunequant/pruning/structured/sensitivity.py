"""Per-group sensitivity: the task's primary metric after pruning one group at a time by each amount, and
per-group amounts chosen from it.

`sensitivity_scan` prunes each group alone (the others untouched) at every amount and scores it on a loader
with targets. `amounts_from_table` then picks per-group amounts: the smallest tolerated worsening (in the
metric's direction) whose per-group amounts (the largest scanned amount within the tolerance) reach the
target mean amount, weighted by channel count.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from torch import nn

from prunequant.errors import ConfigError
from prunequant.pruning.structured.allocation import select_removed, uniform_keep
from prunequant.pruning.structured.graph import dependency_groups
from prunequant.pruning.structured.groups import ChannelGroup
from prunequant.pruning.structured.importance import ImportanceContext, group_scores
from prunequant.pruning.structured.rewrite import remove_channels_
from prunequant.tasks import Inputs, MetricSpec, Task, default_task
from prunequant.training import evaluate
from prunequant.validation import check_fraction

DEFAULT_AMOUNTS = (0.25, 0.5, 0.75)


def _default_metric() -> MetricSpec:
    return default_task().primary_metric


@dataclass(frozen=True)
class SensitivityTable:
    """`scores[group][i]` is the task's primary `metric` after pruning only that group by `amounts[i]`."""

    amounts: tuple[float, ...]
    baseline: float
    scores: dict[str, tuple[float, ...]]
    channels: dict[str, int]
    metric: MetricSpec = field(default_factory=_default_metric)

    def to_dict(self) -> dict:
        return {
            "metric": self.metric.name,
            "higher_is_better": self.metric.higher_is_better,
            "amounts": list(self.amounts),
            "baseline": self.baseline,
            "groups": {name: list(values) for name, values in self.scores.items()},
        }

    def markdown(self) -> str:
        """One row per group, one column per amount ('<metric> @ 50%'), in the metric's display units."""
        name = self.metric.name
        header = "| group | channels | " + " | ".join(f"{name} @ {a:.0%}" for a in self.amounts) + " |"
        rule = "|---|---:|" + "---:|" * len(self.amounts)
        rows = [
            f"| {name} | {self.channels[name]} | "
            + " | ".join(f"{self.metric.display(v):.2f}" for v in values)
            + " |"
            for name, values in self.scores.items()
        ]
        return "\n".join([header, rule, *rows])


def sensitivity_scan(
    model: nn.Module,
    example_input: Inputs,
    loader: Iterable,
    *,
    amounts: Sequence[float] = DEFAULT_AMOUNTS,
    importance: str = "l1",
    groups: Sequence[ChannelGroup] | None = None,
    max_batches: int = 0,
    calib_batches: int = 8,
    seed: int = 0,
    task: Task | None = None,
) -> SensitivityTable:
    """The task's primary metric on `loader` after pruning each group alone by each amount.

    Parameters
    ----------
    model:
        Left unchanged (each scan prunes a copy).
    example_input:
        A tensor, tuple or dict of tensors, for tracing the groups (unused when `groups` is given).
    loader:
        Batches with targets, scored by the task (up to `max_batches`; 0 = all); data-driven importance
        criteria read its first `calib_batches`.
    amounts, importance, groups, seed:
        The scanned amounts, the criterion choosing the channels, the groups (default: every prunable
        group of the traced graph) and the seed of `random` importance.
    task:
        Metric, direction and loss; defaults to classification.

    Returns
    -------
    SensitivityTable, whose `metric` carries the name and direction.
    """
    task = task or default_task()
    amounts = tuple(check_fraction("amount", a) for a in amounts)
    if not amounts:
        raise ConfigError("sensitivity needs at least one amount, e.g. 0.25,0.5,0.75")
    groups = list(groups) if groups is not None else dependency_groups(model, example_input).prunable
    context = ImportanceContext(model, groups, loader, calib_batches, seed, task)
    baseline = evaluate(model, loader, task, max_batches=max_batches).score
    scores = {}
    for group in groups:
        ranking = group_scores(importance, group, context)
        row = []
        for amount in amounts:
            pruned = copy.deepcopy(model)
            removed = select_removed(ranking, uniform_keep(group, amount), group.blocks)
            remove_channels_(pruned, [group], {group.name: removed})
            row.append(evaluate(pruned, loader, task, max_batches=max_batches).score)
        scores[group.name] = tuple(row)
    model.eval()
    return SensitivityTable(
        amounts, baseline, scores, {g.name: g.channels for g in groups}, task.primary_metric
    )


def amounts_from_table(table: SensitivityTable, target: float) -> dict[str, float]:
    """Per-group amounts whose channel-weighted mean reaches `target` with the least worst drop.

    Drops follow the table's metric direction (a larger error is a drop for a lower-is-better metric).
    """
    check_fraction("target amount", target)
    total = sum(table.channels.values())
    drop = table.metric.drop
    drops = {
        name: [drop(table.baseline, value) for value in values] for name, values in table.scores.items()
    }
    best: dict[str, float] = {}
    for tolerance in sorted({d for values in drops.values() for d in values}):
        best = {
            name: max([0.0] + [a for a, d in zip(table.amounts, values, strict=True) if d <= tolerance])
            for name, values in drops.items()
        }
        if sum(best[name] * table.channels[name] for name in best) >= target * total:
            break
    return best


def sensitivity_amounts(
    model: nn.Module,
    example_input: Inputs,
    groups: Sequence[ChannelGroup],
    loader: Iterable | None,
    *,
    target: float,
    importance: str,
    calib_batches: int,
    seed: int,
    task: Task | None = None,
) -> dict[str, float]:
    """Scan `groups` on `loader` (its first `calib_batches` batches) and return amounts reaching `target`."""
    if loader is None:
        raise ConfigError(
            "allocation 'sensitivity' needs a calib_loader whose batches carry targets (CLI: --dataset)"
        )
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
        task=task,
    )
    return amounts_from_table(table, target)


def _grid(target: float) -> tuple[float, ...]:
    """Amounts scanned for a target: the defaults plus the target and a step beyond it, below 1."""
    return tuple(sorted({*DEFAULT_AMOUNTS, target, min(0.9, target + 0.15)} - {0.0}))
