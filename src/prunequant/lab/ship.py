"""Shipping: the chosen deployable form goes to `RUN_DIR/ship/` with a JSON model card.

The form is chosen by prunequant.lab.select.best_choice (the recipe's objective, within the budget). The
file is copied from the trial's artifacts, loaded FRESH from ship/, scored on the full test split (the
original in torch eager fp32 too), compared with the PyTorch model (the task's parity) and re-timed
against the original at batch 1 and the deploy batch. Where another form of the same trial is faster at a
batch (prunequant.lab.per_batch), its file is shipped too, scored and timed the same way (one interleaved
measurement with the chosen file), and the card's `per_batch` maps every batch to the file to run there.
ship/ is replaced as a whole, atomically: the files and model_card.json, or, when no form meets the
budget, a card saying so with the closest form.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prunequant.atomic import atomic_dir
from prunequant.export.bench import Candidate
from prunequant.lab.deploy import output_parity
from prunequant.lab.env import Env, environment, model_from_bytes
from prunequant.lab.forms import deploy_batches, time_against_original, timing_threads
from prunequant.lab.per_batch import PER_BATCH_RULE, BatchPick, per_batch_picks
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
    picks = [] if choice is None else per_batch_picks(rows, choice, baseline, budget, recipe.run.objective)
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
    previous = existing_card(run_dir, card, choice, picks)
    if previous is not None:  # a resumed run that chose the same forms: the shipped figures stand
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
            card.update(shipped=True, **ship_choice(choice, picks, session, folder))
        (folder / CARD_NAME).write_text(json.dumps(clean(card), indent=2, allow_nan=False) + "\n")
        keep = {item.name for item in folder.iterdir()}
    for stale in (run_dir / SHIP_DIR).iterdir():  # a model file of an earlier choice
        if stale.is_file() and stale.name not in keep:
            stale.unlink()
    session.store.set_meta("ship", clean(card))
    return card


def existing_card(
    run_dir: Path, card: dict[str, Any], choice: Choice | None, picks: list[BatchPick]
) -> dict[str, Any] | None:
    """The model card already in ship/ when it shipped these same forms (the choice and the one per batch)
    under the same conditions."""
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
    per_batch = previous.get("per_batch") or {}
    chosen = chosen and {batch: entry["runtime"] for batch, entry in per_batch.items()} == {
        str(pick.batch): pick.choice.runtime for pick in picks
    }
    files = [previous.get("file"), *(entry["file"] for entry in per_batch.values())]
    shipped = previous.get("shipped") and all((run_dir / str(name)).is_file() for name in files)
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


@dataclass(frozen=True)
class ShippedFile:
    """One file written to ship/, loaded fresh from there and scored on the full test split."""

    choice: Choice
    path: Path
    candidate: Candidate
    test: Any
    parity: dict[str, Any]

    @property
    def name(self) -> str:
        """The file, relative to the run directory."""
        return f"{SHIP_DIR}/{self.path.name}"


def ship_file(
    choice: Choice, folder: Path, session: Session, env: Env, reference: Any, test: Any
) -> ShippedFile:
    """Copy `choice`'s file into `folder` (model<suffix>), load it fresh, score it on `test` and compare
    its outputs with `reference` (the trial's PyTorch model)."""
    runtime = RUNTIMES[choice.runtime]
    path = folder / f"model{runtime.suffix}"
    path.write_bytes((session.run_dir / choice.artifact).read_bytes())
    runner, candidate = runtime.load(path, timing_threads(session.recipe))
    parity = output_parity(reference, runner, _with_test(env, test))
    return ShippedFile(choice, path, candidate, evaluate(runner, test, env.task), parity)


def ship_choice(choice: Choice, picks: list[BatchPick], session: Session, folder: Path) -> dict[str, Any]:
    """Write the chosen file, and the other files `picks` recommend, into `folder`; load each fresh, score,
    compare and time it (interleaved, one measurement); the card's fields."""
    recipe = session.recipe
    env = environment(recipe)
    original, _ = model_from_bytes(checkpoint(session, session.baseline()), recipe.model.arch)
    pytorch, _ = model_from_bytes(checkpoint(session, choice.row), recipe.model.arch)
    test = full_test_loader(recipe, env)
    theirs = evaluate(original.eval(), test, env.task)
    forms = {choice.runtime: choice} | {pick.choice.runtime: pick.choice for pick in picks}
    files = [ship_file(form, folder, session, env, pytorch.eval(), test) for form in forms.values()]
    timed, conditions = time_against_original(original, [file.candidate for file in files], env, recipe)
    metric = env.budget.metric

    def change(result: Any) -> float:
        return metric.display(result.metrics[metric.name]) - metric.display(theirs.metrics[metric.name])

    described = {
        file.choice.runtime: file_fields(
            file, {str(batch): speed.to_dict() for batch, speed in by_batch.items()}, change(file.test)
        )
        for file, by_batch in zip(files, timed, strict=True)
    }
    main, original_bytes = files[0], original_size(session)
    main_fields = described[choice.runtime]
    return {
        **main_fields,
        "method": choice.form.get("method"),
        "trial_id": choice.row.trial_id,
        "label": choice.row.label,
        "metric": metric.name,
        "original_test": dict(theirs.metrics),
        "original_bytes": original_bytes,
        "smaller": original_bytes / main.path.stat().st_size,
        "conditions": conditions.to_dict(),
        "parity_reference": "the trial's PyTorch model (fake-quant where quantized) on the full test split",
        "per_batch_rule": PER_BATCH_RULE,
        "per_batch": {
            str(pick.batch): batch_entry(pick, described[pick.choice.runtime], main_fields, choice)
            for pick in picks
        },
    }


def file_fields(file: ShippedFile, speed: dict[str, Any], change: float) -> dict[str, Any]:
    """What the card says of one shipped file: runtime, how to run it, full-test metrics, size, speed
    (re-timed from ship/) and parity."""
    choice = file.choice
    return {
        "file": file.name,
        "runtime": choice.runtime,
        "engine": file.candidate.runtime,
        "usage": RUNTIMES[choice.runtime].usage,
        "precision": choice.form.get("precision"),
        "test_n": file.test.n,
        "test": dict(file.test.metrics),
        "change": change,
        "val_score": choice.form["val_score"],
        "bytes": file.path.stat().st_size,
        "speed": speed,
        "parity": file.parity,
    }


def batch_entry(
    pick: BatchPick, fields: dict[str, Any], main_fields: dict[str, Any], main: Choice
) -> dict[str, Any]:
    """The card's per_batch entry: the file to run at `pick.batch` (its file_fields), its speed there as
    re-timed in ship/ and as the trial measured it, whether the re-timing confirms it is faster there
    than the shipped file (`confirmed`; the pick stands on the trial's timing either way), and the
    trial's other forms with why not."""
    batch = str(pick.batch)
    here, is_main = fields["speed"][batch], pick.choice.runtime == main.runtime
    return {
        **fields,
        "main": is_main,
        "confirmed": is_main or here["speedup"] > main_fields["speed"][batch]["speedup"],
        **{key: here[key] for key in ("speedup", "p10", "p90", "noisy")},
        "trial_speedup": pick.choice.speed(pick.batch)["speedup"],
        "passed": [
            {
                "runtime": other.runtime,
                "val_score": other.form["val_score"],
                "trial_speedup": other.form["speed"].get(str(pick.batch), {}).get("speedup"),
                "reason": reason,
            }
            for other, reason in pick.passed
        ],
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
