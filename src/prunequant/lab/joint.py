"""Seed 003's joint pipeline as one stage: greedy layerwise channel pruning with activation-L1 importance
(Alg. 1) while fine-tuning, then quantization-aware training at the recipe's bits (Alg. 2/3).

One "joint" trial per LR x amount x format. The [finetune] recovery options apply to both phases, with the
original model as the distillation teacher (early stopping only in the QAT phase: the layerwise phase must
reach every layer). The trial records how many channel groups the schedule reached.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from prunequant.lab.compress import finetune_model
from prunequant.lab.ops import apply_steps
from prunequant.lab.plans import finetune_plan, lrs_of
from prunequant.lab.recovery import without_early_stop
from prunequant.lab.runner import Session
from prunequant.lab.sections import parse_format
from prunequant.lab.store import percent
from prunequant.lab.structured import batches_per_epoch, measured_outcome, pruning_schedule, source_models
from prunequant.lab.trials import TrialOutcome, TrialSpec, TrialTask, register_kind
from prunequant.training import Callback


@register_kind("joint")
def run_joint_trial(task: TrialTask, callbacks: Sequence[Callback]) -> TrialOutcome:
    """Layerwise pruning during `epochs`, quantize to config["format"], QAT `qat_epochs` + refine, measure."""
    recipe, config = task.recipe, task.spec.config
    env, model, meta, reference = source_models(task, config["source"], config["source"])
    finetune = config["finetune"]
    batches = finetune["epochs"] * batches_per_epoch(env, recipe)
    schedule = pruning_schedule(model, {**config, "schedule": "layerwise", "steps": 1}, env, batches)
    prune_phase = {**without_early_stop(finetune), "refine_epochs": 0}
    recovery = [finetune_model(model, env, recipe, prune_phase, [*callbacks, schedule], teacher=reference)]
    extra: dict[str, Any] = {
        "layerwise": {"groups": len(schedule.order), "pruned": list(schedule.done)},
        "channels": [result.meta() for result in schedule.results],
    }
    if len(schedule.done) < len(schedule.order):
        extra["layerwise"]["unreached"] = [name for name in schedule.order if name not in schedule.done]
    w_bits, a_bits = parse_format("format", config["format"])
    quantize = {"op": "quantize", "w_bits": w_bits, "a_bits": a_bits, "granularity": "channel"}
    applied = apply_steps(model, [quantize], env)
    model = applied.model
    extra["quantize"] = applied.info
    qat_phase = {**finetune, "epochs": config["qat_epochs"]}
    recovery.append(finetune_model(model, env, recipe, qat_phase, callbacks, teacher=reference))
    return measured_outcome(
        task, (model, meta), env, reference, {**extra, "recovery": recovery}, w_bits, a_bits
    )


def run_joint(session: Session) -> None:
    recipe, section, source = session.recipe, session.recipe.joint, session.baseline().trial_id
    specs = []
    for lr, amount, fmt in itertools.product(lrs_of(recipe, section), section.amounts, section.formats):
        finetune = finetune_plan(recipe, section, lr)
        qat_epochs = finetune["epochs"] if section.qat_epochs is None else section.qat_epochs
        config = {
            "kind": "joint",
            "source": source,
            "amount": amount,
            "importance": section.importance,
            "round_to": section.round_to,
            "format": fmt,
            "qat_epochs": qat_epochs,
            "finetune": finetune,
        }
        label = f"joint: layerwise {percent(amount)} {section.importance} + QAT {fmt} @ lr {lr:g}"
        specs.append(TrialSpec("joint", label, config))
    session.run(specs)
