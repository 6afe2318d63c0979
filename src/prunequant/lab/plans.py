"""Trial spec builders shared by the stages: compress specs, steps, fine-tune plans and labels."""

from __future__ import annotations

from typing import Any

from prunequant.lab import sections as sec
from prunequant.lab.recipe import Recipe
from prunequant.lab.recovery import recovery_plan
from prunequant.lab.trials import TrialSpec


def finetune_plan(recipe: Recipe, section: sec.Finetune | None, lr: float | None = None) -> dict[str, Any]:
    """{"epochs", "lr", "refine_epochs"}: the section's values, else the [baseline] hyper-parameters;
    plus the recipe's [finetune] recovery options when it sets any."""
    base = recipe.baseline
    epochs = base.epochs if section is None or section.epochs is None else section.epochs
    refine = section.refine_epochs if section is not None and section.refine_epochs is not None else None
    if refine is None:
        refine = base.refine_epochs if base.refine_epochs is not None else epochs
    lr = base.lr if lr is None else lr
    return {"epochs": epochs, "lr": lr, "refine_epochs": refine, **recovery_plan(recipe)}


def compress_spec(
    stage: str,
    label: str,
    source: str,
    steps: list[dict[str, Any]],
    finetune: dict[str, Any] | None = None,
    **more: Any,
) -> TrialSpec:
    """A "compress" trial: apply `steps` to trial `source`'s model, then fine-tune if `finetune` is set."""
    if finetune is not None and not (finetune["epochs"] or finetune["refine_epochs"]):
        finetune = None
    config = {"kind": "compress", "source": source, "steps": steps, "finetune": finetune, **more}
    return TrialSpec(stage, label, config)


def prune_step(amount: float, section: sec.PruneSweep) -> dict[str, Any]:
    return {"op": "prune", "amount": amount, "scope": section.scope, "include_bias": section.include_bias}


def quant_step(bits: int, section: sec.QuantSweep) -> dict[str, Any]:
    return {
        "op": "quantize",
        "w_bits": bits,
        "a_bits": section.a_bits,
        "granularity": section.granularity,
        "calib_batches": section.calib_batches,
    }


def lrs_of(recipe: Recipe, section: sec.Finetune) -> tuple[float, ...]:
    return section.lrs or (recipe.baseline.lr,)
