"""Iterative channel pruning with fine-tuning between steps, up to a target MACs reduction or speedup
(NNCF's and Torch-Pruning's usual path).

Every step is one "channel_step" trial chained to the previous step's model: remove `step` of the channels
that remain, fine-tune (with the [finetune] recovery options, the original model as teacher), measure
against the original. The stage stops at the first step that reaches the target, breaks the accuracy
budget, removes nothing more, or fails, or after `max_steps`; the steps of each LR and why they stopped
are kept in the store's meta ("iterative").
"""

from __future__ import annotations

from collections.abc import Sequence

from prunequant.lab.compress import finetune_model
from prunequant.lab.ops import apply_steps
from prunequant.lab.plans import finetune_plan, lrs_of
from prunequant.lab.recovery_sections import IterativeSection
from prunequant.lab.runner import Session
from prunequant.lab.select import within_budget
from prunequant.lab.store import TrialRow, percent
from prunequant.lab.structured import channels_step, measured_outcome, source_models
from prunequant.lab.trials import TrialOutcome, TrialSpec, TrialTask, register_kind
from prunequant.profiling import profile
from prunequant.training import Callback


@register_kind("channel_step")
def run_channel_step(task: TrialTask, callbacks: Sequence[Callback]) -> TrialOutcome:
    """Prune config["amount"] of the previous step's remaining channels, fine-tune, measure vs the
    original."""
    recipe, config = task.recipe, task.spec.config
    env, model, meta, original = source_models(task, config["previous"], config["original"])
    applied = apply_steps(model, [channels_step(config)], env)
    model = applied.model
    recovery = finetune_model(model, env, recipe, config["finetune"], callbacks, teacher=original)
    macs = [profile(m, env.sample, latency=False).total["macs"] for m in (model, original)]
    extra = {
        "step": config["step"],
        "channels": applied.info["channels"],
        "macs_reduction": 1.0 - macs[0] / macs[1] if macs[1] else 0.0,
        "recovery": [recovery],
    }
    return measured_outcome(task, (model, meta), env, original, extra)


def target_reached(row: TrialRow, section: IterativeSection) -> bool:
    """True when the step meets every target the section sets (MACs reduction, measured speedup)."""
    macs_target, reduction = section.target_macs_reduction, row.extra["macs_reduction"]
    macs_ok = not macs_target or reduction >= macs_target
    speed_ok = not section.target_speedup or (row.get("speedup") or 0.0) >= section.target_speedup
    return macs_ok and speed_ok


def _step_spec(session: Session, previous: str, index: int, lr: float) -> TrialSpec:
    recipe, section = session.recipe, session.recipe.iterative
    original = session.baseline().trial_id
    remaining = (1.0 - section.step) ** index
    config = {
        "kind": "channel_step",
        "previous": previous,
        "original": original,
        "sources": list(dict.fromkeys([previous, original])),
        "step": index,
        "amount": section.step,
        "importance": section.importance,
        "round_to": section.round_to,
        "finetune": finetune_plan(recipe, section, lr),
    }
    removed = percent(round(1.0 - remaining, 4))
    label = f"iterative step {index}: {removed} channels {section.importance} @ lr {lr:g}"
    return TrialSpec("iterative", label, config)


def _stop_reason(
    row: TrialRow, previous: TrialRow, session: Session, section: IterativeSection
) -> str | None:
    """Why the iteration ends after `row`, or None to go on."""
    index = row.config["step"]
    if row.status != "done":
        return f"step {index} failed: {row.error}"
    if not within_budget(row, session.baseline(), session.budget):
        return f"step {index} broke the accuracy budget ({session.budget.describe()})"
    if target_reached(row, section):
        return f"target reached at step {index}"
    if previous.get("macs") is not None and row.get("macs") >= previous.get("macs"):
        return f"step {index} removed nothing more"
    return None


def run_iterative(session: Session) -> None:
    section, baseline = session.recipe.iterative, session.baseline()
    summary = []
    for lr in lrs_of(session.recipe, section):
        previous, steps, reason = baseline, [], None
        for index in range(1, section.max_steps + 1):
            row = session.run([_step_spec(session, previous.trial_id, index, lr)])[0]
            steps.append(row.trial_id)
            reason = _stop_reason(row, previous, session, section)
            if reason is not None:
                break
            previous = row
        summary.append(
            {
                "lr": lr,
                "steps": steps,
                "stopped": reason or f"max_steps ({section.max_steps}) reached before the target",
            }
        )
        session.store.set_meta("iterative", summary)
