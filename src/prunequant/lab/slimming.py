"""Seed 004's network slimming as a lab stage: sparsity training, then channel pruning by BN |gamma|.

Every trial is of kind "compress" (prunequant.lab.compress):
- "sparsity training": the baseline trained `sparsity_epochs` at the baseline LR with step op
  "bn_sparsity" (L1 penalty * sign(gamma) added to each BN gamma's gradient, seed 004 formula 1); its
  extra records the BN gammas' statistics before and after (mean |gamma|, share below 0.01);
- "slimming A% (global BN gamma)": the sparse model with the channels of smallest |gamma| physically
  removed (op "channels", importance bn_gamma), measured as pruned and after a fine-tune at each LR +
  refine at LR/10.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from prunequant.errors import ConfigError
from prunequant.lab.env import Env
from prunequant.lab.ops import Applied, register_op
from prunequant.lab.plans import compress_spec, finetune_plan, lrs_of
from prunequant.lab.runner import Session
from prunequant.lab.slim_sections import LayerPruneSection, SlimmingSection, SparsityTraining
from prunequant.lab.store import NEAR_ZERO, SPARSITY_STAGE, percent
from prunequant.training import Callback, Trainer

SparseFinetune = SlimmingSection | LayerPruneSection
Level = tuple[dict[str, Any], str]
"""A step and the name of the trials that apply it."""


def gamma_stats(model: nn.Module) -> dict[str, float]:
    """{"bn_layers", "channels", "mean_abs", "near_zero_share"} of the affine BatchNorm gammas of `model`."""
    from prunequant.pruning.structured.slimming import bn_layers

    gammas = [bn.weight.detach().abs().flatten() for bn in bn_layers(model)]
    if not gammas:
        raise ConfigError("the model has no affine BatchNorm layer: network slimming ranks BN gammas")
    channels = sum(len(g) for g in gammas)
    return {
        "bn_layers": len(gammas),
        "channels": channels,
        "mean_abs": float(sum(g.sum() for g in gammas) / channels),
        "near_zero_share": float(sum((g < NEAR_ZERO).sum() for g in gammas) / channels),
    }


class _GammaAfter(Callback):
    """Records the gamma statistics when training ends, into the step's info (the trial's extra)."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info

    def on_train_end(self, trainer: Trainer) -> None:
        self.info["bn_gamma_after"] = gamma_stats(trainer.model)


@register_op("bn_sparsity")
def _bn_sparsity(applied: Applied, step: dict[str, Any], env: Env) -> Applied:
    """Sparsity training while fine-tuning: `penalty` * sign(gamma) on every BN gamma gradient."""
    from prunequant.pruning.structured import BNSparsity

    applied.info["bn_gamma_before"] = gamma_stats(applied.model)
    applied.info["penalty"] = step["penalty"]
    applied.callbacks += [BNSparsity(step["penalty"]), _GammaAfter(applied.info)]
    return applied


def sparse_source(session: Session, section: SparsityTraining) -> str:
    """The trial id of the sparsity-trained model `section` asks for (run now unless finished), or the
    baseline's when `sparsity_epochs` is 0."""
    baseline = session.baseline().trial_id
    if section.sparsity_epochs == 0:
        return baseline
    recipe = session.recipe
    plan = {"epochs": section.sparsity_epochs, "lr": recipe.baseline.lr, "refine_epochs": 0}
    epochs = f"{section.sparsity_epochs} epoch{'s' * (section.sparsity_epochs > 1)}"
    label = f"sparsity training (L1 on BN gamma, penalty {section.penalty:g}, {epochs})"
    step = {"op": "bn_sparsity", "penalty": section.penalty}
    spec = compress_spec(SPARSITY_STAGE, label, baseline, [step], plan)
    session.run([spec])
    return spec.trial_id


def run_levels(session: Session, stage: str, section: SparseFinetune, levels: list[Level]) -> None:
    """After the sparsity training `section` asks for, each (step, name) of `levels` applied to the sparse
    model: measured as it is ("NAME as pruned"), and fine-tuned at each LR of `section` then refined at
    LR/10 ("NAME @ lr X"; none when the section trains 0 epochs)."""
    recipe, source = session.recipe, sparse_source(session, section)
    specs = []
    for step, name in levels:
        specs.append(compress_spec(stage, f"{name} as pruned", source, [step]))
        for lr in lrs_of(recipe, section):
            plan = finetune_plan(recipe, section, lr)
            if plan["epochs"] or plan["refine_epochs"]:
                specs.append(compress_spec(stage, f"{name} @ lr {lr:g}", source, [step], plan))
    session.run(specs)


def run_slimming(session: Session) -> None:
    """Sparsity training, then each amount of channels with the smallest |gamma| removed."""
    section = session.recipe.slimming
    levels = [
        (
            {
                "op": "channels",
                "amount": amount,
                "importance": "bn_gamma",
                "allocation": section.allocation,
                "round_to": section.round_to,
            },
            f"slimming {percent(amount)} ({section.allocation} BN gamma)",
        )
        for amount in section.amounts
    ]
    run_levels(session, SPARSITY_STAGE, section, levels)
