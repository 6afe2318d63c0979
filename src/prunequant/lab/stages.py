"""The stages of a recipe, in order: each is one function of the Session that plans trials and runs them.

profile -> post_prune -> aware_prune -> post_quant -> aware_quant -> combine -> structured -> joint
-> iterative -> slimming -> layer_prune -> sensitivity -> search -> export -> bench. Later stages read
earlier results from the store (combine picks levels, search reads sensitivity, export and bench take the
best models).
"""

from __future__ import annotations

from collections.abc import Callable

from prunequant.lab.combine import run_combine
from prunequant.lab.deploy import run_bench, run_export
from prunequant.lab.iterative import run_iterative
from prunequant.lab.joint import run_joint
from prunequant.lab.layer_prune import run_layer_prune
from prunequant.lab.plans import compress_spec, finetune_plan, lrs_of, prune_step, quant_step
from prunequant.lab.runner import Session
from prunequant.lab.search import run_search
from prunequant.lab.sensitivity import run_sensitivity
from prunequant.lab.slimming import run_slimming
from prunequant.lab.store import percent
from prunequant.lab.structured import run_structured
from prunequant.lab.trials import TrialSpec


def run_profile(session: Session) -> None:
    recipe = session.recipe
    spec = TrialSpec("profile", "original model", {"kind": "baseline", "context": recipe.context_hash()})
    session.run([spec])
    session.baseline()


def _sweep(session: Session, stage: str, aware: bool) -> None:
    """One trial per level of `stage`'s section (and per LR when aware): prune or quantize the baseline,
    then, when aware, fine-tune at the LR and refine at LR/10."""
    recipe, source = session.recipe, session.baseline().trial_id
    section = getattr(recipe, stage)
    pruning = stage.endswith("prune")
    levels = section.amounts if pruning else section.bits
    lrs = lrs_of(recipe, section) if aware else (None,)
    specs = []
    for lr in lrs:
        for level in levels:
            name = f"{percent(level)}" if pruning else f"{level}-bit"
            label = f"{stage.replace('_', ' ')} {name}" + (f" @ lr {lr:g}" if aware else "")
            step = prune_step(level, section) if pruning else quant_step(level, section)
            plan = [finetune_plan(recipe, section, lr)] if aware else []
            specs.append(compress_spec(stage, label, source, [step], *plan))
    session.run(specs)


def run_post_prune(session: Session) -> None:
    _sweep(session, "post_prune", aware=False)


def run_aware_prune(session: Session) -> None:
    _sweep(session, "aware_prune", aware=True)


def run_post_quant(session: Session) -> None:
    _sweep(session, "post_quant", aware=False)


def run_aware_quant(session: Session) -> None:
    _sweep(session, "aware_quant", aware=True)


STAGES: dict[str, Callable[[Session], None]] = {
    "profile": run_profile,
    "post_prune": run_post_prune,
    "aware_prune": run_aware_prune,
    "post_quant": run_post_quant,
    "aware_quant": run_aware_quant,
    "combine": run_combine,
    "structured": run_structured,
    "joint": run_joint,
    "iterative": run_iterative,
    "slimming": run_slimming,
    "layer_prune": run_layer_prune,
    "sensitivity": run_sensitivity,
    "search": run_search,
    "export": run_export,
    "bench": run_bench,
}
