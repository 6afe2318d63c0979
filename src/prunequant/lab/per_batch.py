"""Per-batch recommendation: which file of the shipped trial to run at each measured batch size.

The ship choice (prunequant.lab.select.best_choice) is the fastest form at the deploy batch. One file is
not always fastest at every batch: for ResNet-20 with 50% of its channels, pt2e-int8 measured about 6x at
batch 64 but 2x at batch 1, where onnxruntime-int8 of the same trial measured 9-18x. So for each measured
batch, another form of the SAME trial within the budget replaces the shipped file there when the shipped
file's median speedup is below TIE_FLOOR of that form's; otherwise the shipped file stands.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prunequant.lab.budget import Budget
from prunequant.lab.select import TIE_FLOOR, Choice, deployable, form_within_budget
from prunequant.lab.store import TrialRow

PER_BATCH_RULE = (
    "per batch size (objective 'latency'): the shipped file, unless another form of the same trial within "
    f"the budget is faster there beyond the tie floor (the shipped file below {100 * TIE_FLOOR:.0f}% of its "
    "median speedup); then the fastest such form, ties as for the shipped file, is shipped too for that "
    "batch; under objective 'size' the one smallest file serves every batch"
)
"""How per_batch_picks recommends a file per batch, as the model card states it."""


@dataclass(frozen=True)
class BatchPick:
    """The form to run at `batch`, and each other form of the trial with why it is not the one."""

    batch: int
    choice: Choice
    passed: tuple[tuple[Choice, str], ...]


def speedup(choice: Choice, batch: int) -> float | None:
    """The form's median speedup at `batch`, None when it was not timed there."""
    value = choice.form["speed"].get(str(batch))
    return None if value is None else value["speedup"]


def siblings(rows: Iterable[TrialRow], main: Choice) -> list[Choice]:
    """Every deployable form of `main`'s trial, `main` included."""
    return [choice for choice in deployable(rows) if choice.row.trial_id == main.row.trial_id]


def beats(choice: Choice, main: Choice, batch: int) -> bool:
    """True when `choice` is faster than `main` at `batch` beyond the tie floor."""
    theirs, ours = speedup(choice, batch), speedup(main, batch)
    return theirs is not None and ours is not None and ours < TIE_FLOOR * theirs


def pick_at(forms: list[Choice], main: Choice, batch: int, baseline: TrialRow, budget: Budget) -> BatchPick:
    """The BatchPick at `batch` among `forms` (the trial's forms, `main` among them)."""
    rivals = [c for c in forms if form_within_budget(c, baseline, budget) and beats(c, main, batch)]
    pick = main
    if rivals:
        fastest = max(choice.speed(batch)["speedup"] for choice in rivals)
        tied = [choice for choice in rivals if choice.speed(batch)["speedup"] >= TIE_FLOOR * fastest]
        pick = min(tied, key=lambda choice: choice.key(budget.metric))
    passed = tuple(
        (choice, why_not(choice, pick, main, batch, baseline, budget))
        for choice in forms
        if choice.runtime != pick.runtime
    )
    return BatchPick(batch, pick, passed)


def why_not(
    choice: Choice, pick: Choice, main: Choice, batch: int, baseline: TrialRow, budget: Budget
) -> str:
    """Why `choice` is not the form recommended at `batch` (`pick`)."""
    if not form_within_budget(choice, baseline, budget):
        return "outside the budget (its own validation score)"
    if speedup(choice, batch) is None:
        return f"not timed at batch {batch}"
    if choice.runtime == main.runtime:
        return f"{pick.runtime} is faster here beyond the tie floor"
    if not beats(choice, main, batch):
        return f"not faster than the shipped file ({main.runtime}) here beyond the tie floor"
    return f"tied with or slower than {pick.runtime} here (ties as for the shipped file)"


def per_batch_picks(
    rows: Iterable[TrialRow], main: Choice, baseline: TrialRow, budget: Budget, objective: str
) -> list[BatchPick]:
    """The file to run at each batch `main` was timed at, smallest batch first.

    Parameters
    ----------
    rows:
        The run's trials (only `main`'s trial's forms are considered).
    main:
        The shipped form (best_choice). It is the pick at the deploy batch by construction (no form is
        faster there beyond the tie floor) and at every batch under objective "size".
    baseline, budget:
        The original's row and the budget each form's own validation score must meet.
    objective:
        The recipe's objective; only "latency" recommends other files.

    Returns
    -------
    One BatchPick per measured batch (PER_BATCH_RULE).
    """
    forms = siblings(rows, main) if objective == "latency" else [main]
    batches = sorted(int(batch) for batch in main.form["speed"])
    return [pick_at(forms, main, batch, baseline, budget) for batch in batches]
