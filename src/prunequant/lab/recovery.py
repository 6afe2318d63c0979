"""The [finetune] recovery options of a trial: planned into its config, turned into Trainer options.

A trial's fine-tune plan carries them under "recovery" only when the recipe sets them, so the trials of a
recipe without [finetune] keep their ids (and resume) as before.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from torch import nn

from prunequant.errors import ConfigError
from prunequant.lab.recipe import Recipe
from prunequant.lab.recovery_sections import FinetuneSection
from prunequant.tasks import Task
from prunequant.training import Distillation, FinetuneResult
from prunequant.training.distill import resolve_kind


def recovery_plan(recipe: Recipe) -> dict[str, Any]:
    """{"recovery": the [finetune] options} for a fine-tune plan, or {} when they are all defaults."""
    if recipe.finetune == FinetuneSection():
        return {}
    return {"recovery": asdict(recipe.finetune)}


def without_early_stop(finetune: dict[str, Any]) -> dict[str, Any]:
    """The plan with early stopping off (a phase that prunes as it trains must run to its target)."""
    recovery = finetune.get("recovery")
    if not recovery:
        return finetune
    return {**finetune, "recovery": {**recovery, "early_stop_patience": 0}}


@dataclass(frozen=True)
class RecoveryOptions:
    """What one fine-tune gets: distillation (or None), BN batches (0: none), early stopping patience."""

    distill: Distillation | None = None
    bn_recalibrate: int = 0
    early_stop_patience: int = 0


def recovery_options(finetune: dict[str, Any], teacher: nn.Module | None) -> RecoveryOptions:
    """The options of plan `finetune`; `teacher` (the trial's original model) is needed for distillation."""
    plan = finetune.get("recovery")
    if not plan:
        return RecoveryOptions()
    section = FinetuneSection(**{**plan, "distill_features": tuple(plan["distill_features"])})
    distill = None
    if section.distill:
        if teacher is None:
            raise ConfigError("distillation needs the original model as teacher, and this trial has none")
        distill = Distillation(
            teacher,
            weight=section.distill_weight,
            temperature=section.distill_temperature,
            kind=section.distill_kind,
            features=section.distill_features,
        )
    return RecoveryOptions(
        distill=distill,
        bn_recalibrate=section.bn_batches if section.bn_recalibrate else 0,
        early_stop_patience=section.early_stop_patience,
    )


def recovery_record(options: RecoveryOptions, task: Task, result: FinetuneResult | None) -> dict[str, Any]:
    """What recovery did in a fine-tune, for the trial's extra: {} when nothing was asked."""
    if options == RecoveryOptions() or result is None:
        return {}
    distill = options.distill
    return {
        "distill": None
        if distill is None
        else {
            "kind": resolve_kind(distill.kind, task),
            "weight": distill.weight,
            "temperature": distill.temperature,
            "features": list(distill.features),
        },
        "bn_recalibrated": result.bn_recalibrated,
        "early_stop_patience": options.early_stop_patience,
        "early_stopped": list(result.early_stopped),
    }
