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
from prunequant.pruning.structured.rewrite import remove_channels_
from prunequant.pruning.structured.sensitivity import sensitivity_amounts
from prunequant.tasks import Task
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
    """What happened to one group: channels before and after, the removed indices, the layers rewritten."""

    name: str
    channels: int
    kept: int
    removed: tuple[int, ...]
    layers: tuple[str, ...]


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
            "groups": [{"name": p.name, "channels": p.channels, "kept": p.kept} for p in self.groups],
            "skipped_layers": sorted(self.skipped_layers),
        }


def prune_channels(
    model: nn.Module,
    example_input: torch.Tensor,
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
) -> nn.Module | StructuredPruneResult:
    """Return a pruned deep copy of `model` (the original is untouched) with channels physically removed.

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
        copy.deepcopy(model), example_input, config, calib_loader=calib_loader, task=task
    )
    return result if return_result else result.model


def prune_channels_(
    model: nn.Module,
    example_input: torch.Tensor,
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
    if graph.skipped_layers:
        listed = "; ".join(f"{name} ({reason})" for name, reason in graph.skipped_layers.items())
        warnings.warn(f"structured pruning left these layers unpruned: {listed}", UserWarning, stacklevel=3)
    groups = [group for group in graph.prunable if not config.ignores(group)]
    context = ImportanceContext(model, groups, calib_loader, config.calib_batches, config.seed, task)
    scores = {group.name: group_scores(config.importance, group, context) for group in groups}
    keeps = (keep_fn or _allocator(config, model, example_input, calib_loader, task))(groups, scores)
    removed = {g.name: select_removed(scores[g.name], keeps[g.name], g.blocks) for g in groups}
    remove_channels_(model, groups, removed)
    plans = [
        GroupPlan(
            g.name, g.channels, g.channels - len(removed[g.name]), tuple(removed[g.name]), tuple(g.layers)
        )
        for g in groups
    ]
    return StructuredPruneResult(model, plans, dict(graph.skipped_layers), config, graph)


def _allocator(
    config: ChannelPruneConfig,
    model: nn.Module,
    example_input: torch.Tensor,
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
        overridden = [group for group in groups if config.amount_for(group) is not None]
        free = [group for group in groups if config.amount_for(group) is None]
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
