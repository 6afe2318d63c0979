"""Percentile magnitude pruning (seed 000 III.B), layer or global scope (seed 002), in place."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from prunequant.pruning.unstructured.config import UnstructuredConfig
from prunequant.pruning.unstructured.masks import MASK_SUFFIX, set_mask
from prunequant.pruning.unstructured.targets import Target, select_targets
from prunequant.pruning.unstructured.torch_prune_interop import from_torch_prune


@dataclass(frozen=True)
class PruneResult:
    """What one pruning call did: achieved sparsity over the pruned tensors, per tensor, and the masks.

    `sparsity` = pruned / total over the targeted tensors; `layers` maps each targeted tensor (state_dict
    name) to its share of zeros; `kept` are the layers keep_first_last left dense, `excluded` the tensors
    left dense by `exclude` patterns. `masks` are the bool keep-masks attached to the model.
    """

    config: UnstructuredConfig
    sparsity: float
    pruned: int
    total: int
    layers: dict[str, float]
    kept: list[str]
    excluded: list[str]
    masks: dict[str, torch.Tensor] = field(repr=False)

    def to_dict(self) -> dict:
        """JSON-ready summary (without the masks)."""
        return {
            **self.config.to_dict(),
            "sparsity": self.sparsity,
            "pruned": self.pruned,
            "total": self.total,
            "layers": dict(self.layers),
            "kept": list(self.kept),
            "excluded": list(self.excluded),
        }


def prune_unstructured(
    model: nn.Module,
    amount: float,
    scope: str = "global",
    *,
    include_bias: bool = False,
    exclude: Iterable[str] | str = (),
    overrides: Mapping[str, float] | None = None,
    keep_first_last: bool = False,
) -> PruneResult:
    """Zero the lowest-|w| `amount` of conv/linear weights IN PLACE and attach masks; see UnstructuredConfig.

    Exactly round(amount * n) entries are zeroed per tensor (`scope="layer"`) or over all targeted tensors
    (`"global"`), ties broken by torch.topk as torch.nn.utils.prune.l1_unstructured / global_unstructured
    do, so the masks are identical to theirs. Masks only grow: entries already masked are pruned first and
    stay pruned, so a lower `amount` than the current sparsity keeps the current masks.
    """
    config = UnstructuredConfig(amount, scope, include_bias, exclude, dict(overrides or {}), keep_first_last)
    return apply_pruning(model, config)


def apply_pruning(model: nn.Module, config: UnstructuredConfig) -> PruneResult:
    """`prune_unstructured` with a ready config. In place; torch.nn.utils.prune masks are converted first."""
    from_torch_prune(model)
    selection = select_targets(model, config)
    masks: dict[str, torch.Tensor] = {}
    for group in _groups(selection.targets, config.scope):
        amount = config.amount if group[0].amount is None else group[0].amount
        for target, keep in zip(group, _lowest_magnitude_keep(group, amount), strict=True):
            previous = _current_mask(target)
            set_mask(target.module, target.param, keep if previous is None else keep & previous)
            masks[target.name] = getattr(target.module, target.param + MASK_SUFFIX)
    counts = {name: int((~mask).sum()) for name, mask in masks.items()}
    layers = {name: counts[name] / mask.numel() for name, mask in masks.items()}
    pruned = sum(counts.values())
    total = sum(mask.numel() for mask in masks.values())
    return PruneResult(
        config=config,
        sparsity=pruned / total if total else 0.0,
        pruned=pruned,
        total=total,
        layers=layers,
        kept=selection.kept,
        excluded=selection.excluded,
        masks=masks,
    )


def _groups(targets: list[Target], scope: str) -> list[list[Target]]:
    """Tensors ranked together: each overridden tensor alone; the rest alone (layer) or pooled (global)."""
    groups = [[target] for target in targets if target.amount is not None]
    pooled = [target for target in targets if target.amount is None]
    if scope == "layer":
        groups += [[target] for target in pooled]
    elif pooled:
        groups.append(pooled)
    return groups


def _current_mask(target: Target) -> torch.Tensor | None:
    return getattr(target.module, target.param + MASK_SUFFIX, None)


def _scores(target: Target) -> torch.Tensor:
    """|w|, with already-masked entries at -1 so they are always among the lowest."""
    magnitude = getattr(target.module, target.param).detach().abs()
    previous = _current_mask(target)
    return magnitude if previous is None else magnitude.masked_fill(~previous, -1.0)


def _lowest_magnitude_keep(group: list[Target], amount: float) -> list[torch.Tensor]:
    """Keep-masks zeroing the round(amount * n) lowest scores over the group's tensors flattened in order."""
    scores = [_scores(target) for target in group]
    flat = torch.cat([score.reshape(-1) for score in scores])
    keep = torch.ones(flat.numel(), dtype=torch.bool, device=flat.device)
    count = round(amount * flat.numel())
    if count:
        keep[torch.topk(flat, k=count, largest=False).indices] = False
    parts = keep.split([score.numel() for score in scores])
    return [part.view_as(score) for part, score in zip(parts, scores, strict=True)]
