"""Seed 000's "combine the best": the largest pruning amount and the fewest bits whose score stays within
the budget, applied together (prune, then quantize keeping the zeros), then refine-tuned; one trial."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prunequant.lab.budget import Budget
from prunequant.lab.plans import compress_spec, finetune_plan, prune_step, quant_step
from prunequant.lab.recipe import Recipe
from prunequant.lab.runner import Session
from prunequant.lab.select import within_budget
from prunequant.lab.store import TrialRow, percent
from prunequant.lab.trials import TrialSpec


@dataclass(frozen=True)
class Choice:
    """The levels chosen for the combination and the trials they come from (None: no level qualified)."""

    prune: TrialRow | None
    quant: TrialRow | None

    @property
    def amount(self) -> float | None:
        return None if self.prune is None else _step(self.prune, "prune")["amount"]

    @property
    def bits(self) -> int | None:
        return None if self.quant is None else _step(self.quant, "quantize")["w_bits"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "amount": self.amount,
            "bits": self.bits,
            "prune_trial": self.prune.trial_id if self.prune else None,
            "quant_trial": self.quant.trial_id if self.quant else None,
        }


def choose_levels(
    prune_rows: list[TrialRow], quant_rows: list[TrialRow], baseline: TrialRow, budget: Budget
) -> Choice:
    """Largest amount and fewest bits within the budget; ties: the better validation score."""
    prune_ok = [row for row in prune_rows if row.status == "done" and within_budget(row, baseline, budget)]
    quant_ok = [row for row in quant_rows if row.status == "done" and within_budget(row, baseline, budget)]
    better = budget.metric.sort_key  # smaller = better
    prune = min(
        prune_ok, key=lambda r: (-_step(r, "prune")["amount"], better(r.get("val_score"))), default=None
    )
    quant = min(
        quant_ok, key=lambda r: (_step(r, "quantize")["w_bits"], better(r.get("val_score"))), default=None
    )
    return Choice(prune, quant)


def sweep_stage(recipe: Recipe, mode: str, method: str) -> str | None:
    """The sweep stage the levels of `method` ("prune"/"quant") come from: `mode` first, else the other."""
    for candidate in (mode, "post" if mode == "aware" else "aware"):
        if getattr(recipe, f"{candidate}_{method}") is not None:
            return f"{candidate}_{method}"
    return None


def combine_spec(session: Session) -> tuple[TrialSpec | None, Choice]:
    """The combined trial (None when no level is within budget) and the choice behind it."""
    recipe, store, baseline = session.recipe, session.store, session.baseline()
    section = recipe.combine
    stages = {method: sweep_stage(recipe, section.source, method) for method in ("prune", "quant")}
    rows = {method: store.rows(stage) if stage else [] for method, stage in stages.items()}
    choice = choose_levels(rows["prune"], rows["quant"], baseline, session.budget)
    if choice.prune is None and choice.quant is None:
        return None, choice
    steps, parts = [], []
    if choice.prune is not None:
        steps.append(prune_step(choice.amount, getattr(recipe, stages["prune"])))
        parts.append(f"prune {percent(choice.amount)}")
    if choice.quant is not None:
        steps.append(quant_step(choice.bits, getattr(recipe, stages["quant"])))
        parts.append(f"{choice.bits}-bit")
    lr = next(
        (r.config["finetune"]["lr"] for r in (choice.prune, choice.quant) if r and r.config["finetune"]),
        recipe.baseline.lr,
    )
    plan = finetune_plan(recipe, None, lr)
    plan.update(
        epochs=section.epochs,
        refine_epochs=plan["refine_epochs"] if section.refine_epochs is None else section.refine_epochs,
    )
    label = f"combined: {' + '.join(parts)}"
    return compress_spec("combine", label, baseline.trial_id, steps, plan, chosen=choice.to_dict()), choice


def run_combine(session: Session) -> None:
    spec, choice = combine_spec(session)
    session.store.set_meta("combine_choice", choice.to_dict())
    if spec is not None:
        session.run([spec])


def _step(row: TrialRow, op: str) -> dict[str, Any]:
    return next(step for step in row.config["steps"] if step["op"] == op)
