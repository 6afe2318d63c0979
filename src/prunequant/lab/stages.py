"""The stages of a recipe, in order: each is one function of the Session that plans trials and runs them.

profile -> post_prune -> aware_prune -> post_quant -> aware_quant -> combine -> structured -> sensitivity
-> search -> export -> bench. Later stages read earlier results from the store (combine picks levels,
search reads sensitivity, export and bench take the best models).
"""

from __future__ import annotations

from collections.abc import Callable

from prunequant.lab.combine import run_combine
from prunequant.lab.deploy import run_bench, run_export
from prunequant.lab.plans import compress_spec, finetune_plan, lrs_of, percent, prune_step, quant_step
from prunequant.lab.runner import Session
from prunequant.lab.search import run_search
from prunequant.lab.sensitivity import run_sensitivity
from prunequant.lab.structured import run_structured
from prunequant.lab.trials import TrialSpec


def run_profile(session: Session) -> None:
    recipe = session.recipe
    spec = TrialSpec("profile", "original model", {"kind": "baseline", "context": recipe.context_hash()})
    session.run([spec])
    session.baseline()


def run_post_prune(session: Session) -> None:
    section, source = session.recipe.post_prune, session.baseline().trial_id
    session.run(
        [
            compress_spec("post_prune", f"post prune {percent(a)}", source, [prune_step(a, section)])
            for a in section.amounts
        ]
    )


def run_aware_prune(session: Session) -> None:
    recipe, section, source = session.recipe, session.recipe.aware_prune, session.baseline().trial_id
    session.run(
        [
            compress_spec(
                "aware_prune",
                f"aware prune {percent(a)} @ lr {lr:g}",
                source,
                [prune_step(a, section)],
                finetune_plan(recipe, section, lr),
            )
            for lr in lrs_of(recipe, section)
            for a in section.amounts
        ]
    )


def run_post_quant(session: Session) -> None:
    section, source = session.recipe.post_quant, session.baseline().trial_id
    session.run(
        [
            compress_spec("post_quant", f"post quant {b}-bit", source, [quant_step(b, section)])
            for b in section.bits
        ]
    )


def run_aware_quant(session: Session) -> None:
    recipe, section, source = session.recipe, session.recipe.aware_quant, session.baseline().trial_id
    session.run(
        [
            compress_spec(
                "aware_quant",
                f"aware quant {b}-bit @ lr {lr:g}",
                source,
                [quant_step(b, section)],
                finetune_plan(recipe, section, lr),
            )
            for lr in lrs_of(recipe, section)
            for b in section.bits
        ]
    )


STAGES: dict[str, Callable[[Session], None]] = {
    "profile": run_profile,
    "post_prune": run_post_prune,
    "aware_prune": run_aware_prune,
    "post_quant": run_post_quant,
    "aware_quant": run_aware_quant,
    "combine": run_combine,
    "structured": run_structured,
    "sensitivity": run_sensitivity,
    "search": run_search,
    "export": run_export,
    "bench": run_bench,
}
