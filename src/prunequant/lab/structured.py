"""Seed 003's joint study: channel pruning (amount x importance) x weight/activation bits x schedule.

Schedules (prunequant.pruning.structured) share one training budget: `epochs` at the baseline LR while
pruning, then `refine_epochs` at LR * refine_factor, quantization-aware when the format quantizes:
- one-shot: prune to the target once, then fine-tune;
- stepwise: Zhu & Gupta's cubic ramp to the target over `steps` prunings in the first half of fine-tuning;
- layerwise: one channel group after another pruned to the target during fine-tuning (seed 003 Alg. 1);
- from-scratch: the one-shot architecture with every weight re-initialised, trained for the same budget.
Channels are physically removed, so the model really is smaller and faster on dense kernels.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from torch import nn

from prunequant.lab.compress import finetune_model
from prunequant.lab.env import Env, environment, model_from_bytes, model_to_bytes
from prunequant.lab.measure import evaluate_scores, measure
from prunequant.lab.ops import apply_steps
from prunequant.lab.plans import finetune_plan, lrs_of
from prunequant.lab.recipe import Recipe
from prunequant.lab.recovery import without_early_stop
from prunequant.lab.runner import Session
from prunequant.lab.sections import parse_format
from prunequant.lab.store import percent
from prunequant.lab.trials import TrialOutcome, TrialSpec, TrialTask, register_kind
from prunequant.training import Callback

CALIB_BATCHES = 4


def pruning_schedule(model: nn.Module, config: dict[str, Any], env: Env, batches: int) -> Callback:
    """The stepwise or layerwise Trainer callback, spread over `batches` optimizer steps of fine-tuning."""
    from prunequant.pruning.structured import (
        ChannelPruneConfig,
        LayerwisePruning,
        StepwisePruning,
        dependency_groups,
    )

    prune = ChannelPruneConfig(
        amount=config["amount"],
        importance=config["importance"],
        round_to=config["round_to"],
        calib_batches=CALIB_BATCHES,
    )
    calib = env.calibration(CALIB_BATCHES)
    # The schedules take the task from the Trainer they run in (trainer.task), not as an argument.
    if config["schedule"] == "stepwise":
        frequency = max(1, batches // (2 * config["steps"]))
        return StepwisePruning(
            env.sample, prune, steps=config["steps"], frequency=frequency, calib_loader=calib
        )
    groups = len(dependency_groups(model, env.sample).prunable)
    interval = max(1, batches // (groups + 1))
    return LayerwisePruning(env.sample, prune, interval=interval, calib_loader=calib)


def source_models(task: TrialTask, source: str, original: str) -> tuple[Env, nn.Module, dict, nn.Module]:
    """(env, model of trial `source` to compress, its meta, the model of trial `original`): the original
    is the reference of the speedup and the distillation teacher."""
    env = environment(task.recipe)
    model, meta = model_from_bytes(task.inputs[source], task.recipe.model.arch)
    reference, _ = model_from_bytes(task.inputs[original], task.recipe.model.arch)
    return env, model, meta, reference


def channels_step(config: dict[str, Any]) -> dict[str, Any]:
    """The "channels" op of a trial config's amount, importance and round_to."""
    return {
        "op": "channels",
        "amount": config["amount"],
        "importance": config["importance"],
        "round_to": config["round_to"],
        "calib_batches": CALIB_BATCHES,
    }


@register_kind("structured")
def run_structured_trial(task: TrialTask, callbacks: Sequence[Callback]) -> TrialOutcome:
    """Prune channels by config["schedule"], quantize to config["format"], fine-tune and refine, measure;
    a one-shot trial also records the pruned model's scores before fine-tuning (extra["before_finetune"])."""
    from prunequant.pruning.structured import reinitialize

    recipe, config = task.recipe, task.spec.config
    env, model, meta, reference = source_models(task, config["source"], config["source"])
    finetune, schedule = config["finetune"], config["schedule"]
    extra: dict[str, Any] = {}
    phase_callbacks = list(callbacks)
    if schedule in ("one-shot", "from-scratch"):
        applied = apply_steps(model, [channels_step(config)], env)
        model, extra["channels"] = applied.model, applied.info["channels"]
        if schedule == "from-scratch":
            model = reinitialize(model, recipe.run.seed)
        else:  # seed 004's "before fine-tuning" column: the pruned model as it is
            extra["before_finetune"] = evaluate_scores(model, env, recipe)
    else:
        batches = finetune["epochs"] * batches_per_epoch(env, recipe)
        phase_callbacks.append(pruning_schedule(model, config, env, batches))
        finetune = without_early_stop(finetune)  # the schedule must reach its target amount
    recovery = [
        finetune_model(
            model, env, recipe, {**finetune, "refine_epochs": 0}, phase_callbacks, teacher=reference
        )
    ]
    w_bits, a_bits = parse_format("format", config["format"])
    if (w_bits, a_bits) != (32, 32):
        quantize = {"op": "quantize", "w_bits": w_bits, "a_bits": a_bits, "granularity": "channel"}
        model = apply_steps(model, [quantize], env).model
    refine = {**config["finetune"], "epochs": 0}
    recovery.append(finetune_model(model, env, recipe, refine, callbacks, teacher=reference))
    return measured_outcome(
        task, (model, meta), env, reference, {**extra, "recovery": recovery}, w_bits, a_bits
    )


def measured_outcome(
    task: TrialTask,
    model_meta: tuple[nn.Module, dict],
    env: Env,
    reference: nn.Module,
    extra: dict[str, Any],
    w_bits: int = 32,
    a_bits: int = 32,
) -> TrialOutcome:
    """Measure the model against `reference` and pack the trial's outcome; extra["recovery"] (the records
    of each fine-tune) is kept only when some recovery was asked."""
    model, meta = model_meta
    if not any(extra.get("recovery", ())):
        extra.pop("recovery", None)
    metrics, deployment = measure(model, env, task.recipe, reference=reference, w_bits=w_bits, a_bits=a_bits)
    extra["deploy"] = deployment.info
    meta["lab"] = {"stage": task.spec.stage, "config": task.spec.config}
    return TrialOutcome(metrics, extra, model_to_bytes(model, **meta), files=deployment.files)


def batches_per_epoch(env: Env, recipe: Recipe) -> int:
    """Optimizer steps in one fine-tune epoch ([baseline] max_batches_per_epoch caps the train loader)."""
    limit = recipe.baseline.max_batches_per_epoch
    return min(len(env.loaders.train), limit) if limit else len(env.loaders.train)


def run_structured(session: Session) -> None:
    recipe, section, source = session.recipe, session.recipe.structured, session.baseline().trial_id
    grid = itertools.product(
        lrs_of(recipe, section), section.schedules, section.amounts, section.importance, section.formats
    )
    session.run(
        [
            TrialSpec(
                "structured",
                f"{schedule} channels {percent(amount)} {importance} {fmt} @ lr {lr:g}",
                {
                    "kind": "structured",
                    "source": source,
                    "amount": amount,
                    "importance": importance,
                    "format": fmt,
                    "schedule": schedule,
                    "steps": section.steps,
                    "round_to": section.round_to,
                    "finetune": finetune_plan(recipe, section, lr),
                },
            )
            for lr, schedule, amount, importance, fmt in grid
        ]
    )
