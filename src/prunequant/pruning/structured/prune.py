"""`prune_channels`: structured channel pruning with physical removal, on any traceable CNN.

The model is traced into coupled channel groups (graph.py), each group is scored (importance.py), keep
counts are allocated (allocation.py) and the lowest-scoring channels are removed from every layer of the
group (rewrite.py). The result is an ordinary, smaller nn.Module; layers in unsupported patterns are left
as they were, reported in `skipped_layers` and by a warning.
"""

from __future__ import annotations

import copy
import fnmatch
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from prunequant.errors import ConfigError
from prunequant.pruning.structured.allocation import global_keep, select_removed, uniform_keep
from prunequant.pruning.structured.graph import DependencyGraph, dependency_groups
from prunequant.pruning.structured.groups import ChannelGroup
from prunequant.pruning.structured.importance import ImportanceContext, get_importance, group_scores
from prunequant.pruning.structured.region_prune import cut_region, nearest_keep, stand_in, stand_in_scores
from prunequant.pruning.structured.rewrite import remove_channels_
from prunequant.pruning.structured.sensitivity import sensitivity_amounts
from prunequant.pruning.structured.unpruned import unpruned_layers
from prunequant.tasks import BatchTransform, Task, with_transform
from prunequant.tasks.io import Inputs
from prunequant.validation import check_choice, check_fraction, check_int_range

ALLOCATIONS = ("uniform", "global", "sensitivity")

KeepFn = Callable[[list[ChannelGroup], dict[str, torch.Tensor]], dict[str, int]]


@dataclass(frozen=True)
class ChannelPruneConfig:
    """Options of `prune_channels`; validated when built (see its docstring for their meaning)."""

    amount: float
    importance: str = "l1"
    allocation: str = "uniform"
    round_to: int = 1
    ignored_layers: tuple[str, ...] = ()
    per_layer: tuple[tuple[str, float], ...] = ()
    min_channels: int = 1
    calib_batches: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        check_fraction("amount", self.amount)
        get_importance(self.importance)
        check_choice("allocation", self.allocation, ALLOCATIONS)
        check_int_range("round_to", self.round_to, 1, 4096)
        check_int_range("min_channels", self.min_channels, 1, 1_000_000)
        check_int_range("calib_batches", self.calib_batches, 1, 1_000_000)
        for pattern, amount in self.per_layer:
            check_fraction(f"per_layer[{pattern!r}]", amount)

    def amount_for(self, group: ChannelGroup) -> float | None:
        """The per-layer amount of the first pattern matching one of the group's layers, else None."""
        for pattern, amount in self.per_layer:
            if any(fnmatch.fnmatchcase(layer, pattern) for layer in group.layers):
                return amount
        return None

    def ignores(self, group: ChannelGroup) -> bool:
        return any(fnmatch.fnmatchcase(layer, p) for layer in group.layers for p in self.ignored_layers)


@dataclass(frozen=True)
class GroupPlan:
    """What happened to one group: channels before and after, the removed indices, the layers rewritten,
    and `note`, why the count kept differs from the one allocated (a routed region's nearest feasible
    width), else ""."""

    name: str
    channels: int
    kept: int
    removed: tuple[int, ...]
    layers: tuple[str, ...]
    note: str = ""


@dataclass
class StructuredPruneResult:
    """The pruned model, the per-group plans, the layers left alone and the graph of the original model."""

    model: nn.Module
    groups: list[GroupPlan]
    skipped_layers: dict[str, str]
    config: ChannelPruneConfig
    graph: DependencyGraph = field(repr=False)

    def meta(self) -> dict[str, Any]:
        """JSON-safe pruning record for the checkpoint meta."""
        pruned = [plan for plan in self.groups if plan.removed]
        return {
            "method": "channel",
            "amount": self.config.amount,
            "importance": self.config.importance,
            "allocation": self.config.allocation,
            "round_to": self.config.round_to,
            "min_channels": self.config.min_channels,
            "ignored_layers": list(self.config.ignored_layers),
            "per_layer": dict(self.config.per_layer),
            "groups_pruned": len(pruned),
            "channels_removed": sum(len(plan.removed) for plan in pruned),
            "groups": [_plan_entry(plan) for plan in self.groups],
            "skipped_layers": sorted(self.skipped_layers),
        }


def _plan_entry(plan: GroupPlan) -> dict[str, Any]:
    entry = {"name": plan.name, "channels": plan.channels, "kept": plan.kept}
    return {**entry, "note": plan.note} if plan.note else entry


def prune_channels(
    model: nn.Module,
    example_input: Inputs,
    amount: float,
    importance: str = "l1",
    allocation: str = "uniform",
    round_to: int = 1,
    ignored_layers: Iterable[str] = (),
    per_layer: Mapping[str, float] | None = None,
    min_channels: int = 1,
    calib_loader: Iterable | None = None,
    *,
    calib_batches: int = 8,
    seed: int = 0,
    return_result: bool = False,
    task: Task | None = None,
    transform_fn: BatchTransform | None = None,
) -> nn.Module | StructuredPruneResult:
    """Return a pruned deep copy of `model` (the original is untouched) with channels physically removed.

    example_input: a tensor, a tuple (positional inputs) or a dict (keyword inputs) of tensors; the graph
        is traced with all of them, and every output tensor (tuple, list or dict outputs) keeps its channels.

    amount: share of each group's channels to remove ("uniform"), or of all channels ("global": ranked
        across groups by mean-normalised scores), or the target mean of per-group amounts chosen from an
        scan of the task's metric ("sensitivity", needs a `calib_loader` with targets).
    importance: a registered criterion (l1, l2, bn_gamma, activation_l1, apoz, taylor, random, ...);
        data-driven ones read up to `calib_batches` batches of `calib_loader`.
    round_to: keep channel counts multiples of this (4/8/16 suit SIMD kernels).
    ignored_layers: fnmatch patterns; groups touching a matching layer are left exactly as they are.
    per_layer: {pattern: amount}; the first pattern matching a layer of a group sets that group's amount.
    min_channels: no group keeps fewer channels than this.
    return_result: return a StructuredPruneResult (model, per-group plans, skipped layers, meta()).
    task: splits calibration batches, gives taylor's loss and the sensitivity metric (default classification).
    transform_fn: ``batch -> (inputs, target)`` for calibration batches of any other shape (dicts, extras).
        `skipped_layers` names every conv, linear and norm layer left at its size, with the reason.
    Groups whose channels go in runs (GroupNorm groups, pixel-shuffle blocks) are counted, allocated and
    rounded in whole runs. Removing nothing while an amount > 0 was asked for warns (UserWarning).
    """
    config = ChannelPruneConfig(
        amount=amount,
        importance=importance,
        allocation=allocation,
        round_to=round_to,
        ignored_layers=tuple(ignored_layers),
        per_layer=tuple((per_layer or {}).items()),
        min_channels=min_channels,
        calib_batches=calib_batches,
        seed=seed,
    )
    result = prune_channels_(
        copy.deepcopy(model),
        example_input,
        config,
        calib_loader=calib_loader,
        task=with_transform(task, transform_fn),
    )
    return result if return_result else result.model


def prune_channels_(
    model: nn.Module,
    example_input: Inputs,
    config: ChannelPruneConfig,
    *,
    calib_loader: Iterable | None = None,
    keep_fn: KeepFn | None = None,
    task: Task | None = None,
) -> StructuredPruneResult:
    """In place: prune `model` as `prune_channels` does; `keep_fn(groups, scores)` may replace allocation."""
    if get_importance(config.importance).needs_data and calib_loader is None:
        raise ConfigError(
            f"importance {config.importance!r} needs calibration data: pass calib_loader (CLI: --dataset)"
        )
    graph = dependency_groups(model, example_input)
    groups = [group for group in graph.prunable if not config.ignores(group)]
    by_name = {group.name: group for group in graph.groups}
    regions = [r for r in graph.regions if not any(config.ignores(by_name[name]) for name in r.widths)]
    scored = groups + [by_name[name] for region in regions for name in region.widths]
    context = ImportanceContext(model, scored, calib_loader, config.calib_batches, config.seed, task)
    scores = {group.name: group_scores(config.importance, group, context) for group in scored}
    runs = {g.name: _in_runs(g) for g in groups}  # groups pruned in whole runs, as groups of runs
    run_scores = {g.name: _run_scores(scores[g.name], g.unit) for g in groups}
    stand_ins = [stand_in(region, by_name) for region in regions]  # a region is allocated as one group
    run_scores.update({region.name: stand_in_scores(region, scores) for region in regions})
    keeps = (keep_fn or _allocator(config, model, example_input, calib_loader, task))(
        [runs[g.name] for g in groups] + stand_ins, run_scores
    )
    removed = {}
    for g in groups:
        chosen = torch.tensor(select_removed(run_scores[g.name], keeps[g.name], g.blocks), dtype=torch.long)
        removed[g.name] = (chosen.reshape(-1, 1) * g.unit + torch.arange(g.unit)).reshape(-1).tolist()
    options = {"round_to": config.round_to, "min_channels": config.min_channels}
    cuts = [cut_region(r, nearest_keep(r, keeps[r.name], **options), scores, by_name) for r in regions]
    orders = {key: order for cut in cuts for key, order in cut.orders.items()}
    remove_channels_(model, groups, removed, orders)
    plans = [
        GroupPlan(
            g.name, g.channels, g.channels - len(removed[g.name]), tuple(removed[g.name]), tuple(g.layers)
        )
        for g in groups
    ]
    for region, cut in zip(regions, cuts, strict=True):  # channels numbered source after source
        lost, total = [], 0
        for name, width in region.widths.items():
            lost += [total + c for c in cut.removed[name]]
            total += width
        kept, asked = total - len(lost), keeps[region.name]
        note = ""
        if kept != asked:
            note = (
                f"kept {kept} of {total} channels where {asked} were allocated: the nearest width at which "
                "its chunks and channel shuffles route the same channels to the same layers"
            )
        plans.append(GroupPlan(region.name, total, kept, tuple(lost), cut.layers, note))
    skipped = unpruned_layers(model, graph, plans, config.ignores)
    if graph.skipped_layers:  # unsupported patterns warn; layers kept by the amount are only listed
        listed = "; ".join(f"{name} ({reason})" for name, reason in graph.skipped_layers.items())
        warnings.warn(f"structured pruning left these layers unpruned: {listed}", UserWarning, stacklevel=3)
    asked = config.amount > 0 or any(amount > 0 for _, amount in config.per_layer)
    if asked and not any(plan.removed for plan in plans):
        warnings.warn(
            f"structured pruning removed no channel at amount {config.amount} "
            f"({len(graph.prunable)} prunable groups of {len(graph.groups)}); see skipped_layers",
            UserWarning,
            stacklevel=3,
        )
    return StructuredPruneResult(model, plans, skipped, config, graph)


def _in_runs(group: ChannelGroup) -> ChannelGroup:
    """`group` counted in its runs of `unit` channels (the group itself when unit is 1)."""
    if group.unit == 1:
        return group
    return ChannelGroup(group.name, group.channels // group.unit, list(group.members), group.blocks)


def _run_scores(scores: torch.Tensor, unit: int) -> torch.Tensor:
    return scores.reshape(-1, unit).sum(dim=1) if unit > 1 else scores


def _allocator(
    config: ChannelPruneConfig,
    model: nn.Module,
    example_input: Inputs,
    calib_loader: Iterable | None,
    task: Task | None = None,
) -> KeepFn:
    options = {"round_to": config.round_to, "min_channels": config.min_channels}

    def fixed(group: ChannelGroup, default: float) -> int:
        amount = config.amount_for(group)
        return uniform_keep(group, default if amount is None else amount, **options)

    def allocate(groups: list[ChannelGroup], scores: dict[str, torch.Tensor]) -> dict[str, int]:
        if config.allocation == "uniform":
            return {group.name: fixed(group, config.amount) for group in groups}
        fixed_groups = {g.name for g in groups if config.amount_for(g) is not None}
        if config.allocation == "sensitivity":  # a routed region is not scanned: it takes the amount
            fixed_groups |= {g.name for g in groups if g.region is not None}
        overridden = [group for group in groups if group.name in fixed_groups]
        free = [group for group in groups if group.name not in fixed_groups]
        keeps = {group.name: fixed(group, config.amount) for group in overridden}
        if config.allocation == "global":
            keeps.update(global_keep(free, scores, config.amount, **options))
        else:
            amounts = sensitivity_amounts(
                model,
                example_input,
                free,
                calib_loader,
                target=config.amount,
                importance=config.importance,
                calib_batches=config.calib_batches,
                seed=config.seed,
                task=task,
            )
            keeps.update({group.name: uniform_keep(group, amounts[group.name], **options) for group in free})
        return keeps

    return allocate
