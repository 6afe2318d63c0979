"""Shipping: the chosen deployable form goes to `RUN_DIR/ship/` with a JSON model card.

The form is chosen by prunequant.lab.select.best_choice (the recipe's objective, within the budget). The
file is copied from the trial's artifacts, loaded FRESH from ship/, scored on the full test split (the
original in torch eager fp32 too), compared with the PyTorch model (the task's parity) and re-timed
against the original at batch 1 and the deploy batch. ship/ is replaced as a whole, atomically: the file
and model_card.json, or, when no form meets the budget, a card saying so with the closest form.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from prunequant.atomic import atomic_dir
from prunequant.lab.deploy import output_parity
from prunequant.lab.env import Env, environment, model_from_bytes
from prunequant.lab.forms import deploy_batches, time_against_original, timing_threads
from prunequant.lab.recipe import Recipe
from prunequant.lab.runner import Session
from prunequant.lab.runtimes import RUNTIMES
from prunequant.lab.select import TIE_RULE, Choice, best_choice, closest_choice, fastest_choice
from prunequant.lab.store import TrialRow
from prunequant.training import evaluate

SHIP_DIR = "ship"
CARD_NAME = "model_card.json"


def run_ship(session: Session) -> dict[str, Any]:
    """Choose, write and describe the model to ship; return its model card (also in store meta "ship")."""
    recipe, run_dir, baseline = session.recipe, session.run_dir, session.baseline()
    rows, budget = session.store.rows(), session.budget
    choice = best_choice(rows, baseline, budget, recipe.run.objective)
    card: dict[str, Any] = {
        "objective": recipe.run.objective,
        "budget": budget.to_dict(),
        "recipe_hash": recipe.context_hash(),
        "threads": timing_threads(recipe),
        "batches": deploy_batches(recipe),
        "selection": TIE_RULE,
    }
    fastest = fastest_choice(rows)
    card["fastest_any_budget"] = None if fastest is None else summary_of(fastest, baseline, budget)
    previous = existing_card(run_dir, card, choice)
    if previous is not None:  # a resumed run that chose the same form: the shipped figures stand
        session.store.set_meta("ship", previous)
        return previous
    with atomic_dir(run_dir / SHIP_DIR) as folder:
        if choice is None:
            closest = closest_choice(rows, baseline, budget)
            card.update(shipped=False, reason="no deployable form meets the budget")
            card["closest"] = (
                None
                if closest is None
                else {
                    **summary_of(closest[0], baseline, budget),
                    "missed_by": closest[1],
                }
            )
        else:
            card.update(shipped=True, **ship_choice(choice, session, folder))
        (folder / CARD_NAME).write_text(json.dumps(clean(card), indent=2, allow_nan=False) + "\n")
        keep = {item.name for item in folder.iterdir()}
    for stale in (run_dir / SHIP_DIR).iterdir():  # a model file of an earlier choice
        if stale.is_file() and stale.name not in keep:
            stale.unlink()
    session.store.set_meta("ship", clean(card))
    return card


def existing_card(run_dir: Path, card: dict[str, Any], choice: Choice | None) -> dict[str, Any] | None:
    """The model card already in ship/ when it shipped this same form under the same conditions."""
    path = run_dir / SHIP_DIR / CARD_NAME
    if choice is None or not path.is_file():
        return None
    try:
        previous = json.loads(path.read_text())
    except ValueError:
        return None
    same = all(
        previous.get(key) == card[key] for key in ("objective", "budget", "recipe_hash", "threads", "batches")
    )
    chosen = (previous.get("trial_id"), previous.get("runtime")) == (choice.row.trial_id, choice.runtime)
    shipped = previous.get("shipped") and (run_dir / str(previous.get("file"))).is_file()
    return previous if same and chosen and shipped else None


def summary_of(choice: Choice, baseline: TrialRow, budget: Any) -> dict[str, Any]:
    """The figures of a form as the trial measured them (validation and capped test scores)."""
    return {
        "trial_id": choice.row.trial_id,
        "label": choice.row.label,
        "runtime": choice.runtime,
        "precision": choice.form.get("precision"),
        "bytes": choice.form["bytes"],
        "val_score": choice.form["val_score"],
        "val_drop": budget.drop(baseline.get("val_score"), choice.form["val_score"]),
        "speed": choice.form["speed"],
    }


def ship_choice(choice: Choice, session: Session, folder: Path) -> dict[str, Any]:
    """Write the chosen file into `folder`, load it fresh, score, compare and time it; the card's fields."""
    recipe, run_dir = session.recipe, session.run_dir
    runtime = RUNTIMES[choice.runtime]
    path = folder / f"model{runtime.suffix}"
    path.write_bytes((run_dir / choice.artifact).read_bytes())
    env = environment(recipe)
    threads = timing_threads(recipe)
    shipped, candidate = runtime.load(path, threads)
    original, _ = model_from_bytes(checkpoint(session, session.baseline()), recipe.model.arch)
    pytorch, _ = model_from_bytes(checkpoint(session, choice.row), recipe.model.arch)
    test = full_test_loader(recipe, env)
    ours, theirs = evaluate(shipped, test, env.task), evaluate(original.eval(), test, env.task)
    metric = env.budget.metric
    speeds, conditions = time_against_original(original, [candidate], env, recipe)
    original_bytes = original_size(session)
    return {
        "file": f"{SHIP_DIR}/{path.name}",
        "runtime": choice.runtime,
        "engine": candidate.runtime,
        "usage": runtime.usage,
        "precision": choice.form.get("precision"),
        "method": choice.form.get("method"),
        "trial_id": choice.row.trial_id,
        "label": choice.row.label,
        "metric": metric.name,
        "test_n": ours.n,
        "test": dict(ours.metrics),
        "original_test": dict(theirs.metrics),
        "change": metric.display(ours.metrics[metric.name]) - metric.display(theirs.metrics[metric.name]),
        "val_score": choice.form["val_score"],
        "bytes": path.stat().st_size,
        "original_bytes": original_bytes,
        "smaller": original_bytes / path.stat().st_size,
        "speed": {str(batch): speed.to_dict() for batch, speed in speeds[0].items()},
        "conditions": conditions.to_dict(),
        "parity": output_parity(pytorch.eval(), shipped, _with_test(env, test)),
        "parity_reference": "the trial's PyTorch model (fake-quant where quantized) on the full test split",
    }


def checkpoint(session: Session, row: TrialRow) -> bytes:
    """The trial's prunequant checkpoint bytes."""
    return (session.run_dir / str(row.checkpoint)).read_bytes()


def original_size(session: Session) -> int:
    """Bytes of the original's file on disk: the recipe's checkpoint, else the baseline trained in the run."""
    if session.recipe.checkpoint_path:
        return Path(session.recipe.checkpoint_path).stat().st_size
    return (session.run_dir / str(session.baseline().checkpoint)).stat().st_size


def full_test_loader(recipe: Recipe, env: Env) -> Any:
    """The whole test split (a registered dataset's [data] limit lifted; a user factory's as given)."""
    if recipe.data.factory or not recipe.data.limit:
        return env.loaders.test
    from prunequant.data import load_dataset, make_loaders

    data = recipe.data
    splits = load_dataset(
        data.dataset,
        data.data_dir or None,
        val_fraction=data.val_fraction,
        seed=recipe.run.seed,
        **data.options,
    )
    return make_loaders(splits, recipe.baseline.batch_size, seed=recipe.run.seed).test


def _with_test(env: Env, test: Any) -> Env:
    return dataclasses.replace(env, loaders=env.loaders._replace(test=test))


def clean(value: Any) -> Any:
    """JSON-safe: NaN and infinities become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: clean(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(item) for item in value]
    return value
