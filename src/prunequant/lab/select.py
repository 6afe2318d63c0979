"""Choosing under the budget: which trials and deployable forms qualify, and which to ship.

`best_trial` ranks trials by their own columns (the search and the live display); `best_choice` ranks
deployable forms (a runtime's file with its own scores and measured speed) and is what the run ships.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from prunequant.lab.budget import Budget
from prunequant.lab.store import MODEL_STAGES, TrialRow
from prunequant.tasks import MetricSpec

TIE_FLOOR = 0.9
"""A form ties with the fastest when its median speedup is at least this fraction of the fastest's.

Not the per-run p10-p90: within one run the rounds agree closely (p10-p90 often under 3% wide), yet the
same file measured in two idle `make demo` runs moved by up to 8% (8.81x vs 9.54x at batch 64), so a
spread-overlap rule flipped the pick between runs. 10% covers that drift."""
TIE_RULE = (
    f"forms at {100 * TIE_FLOOR:.0f}% of the fastest's median speedup or more are tied (run-to-run drift); "
    "ties go to the smaller file, then the better validation score, then the trial id"
)
"""How best_choice breaks ties, as the model card states it."""


def within_budget(row: TrialRow, baseline: TrialRow, budget: Budget) -> bool:
    """True when the trial's validation score is at most the budget worse than the baseline's."""
    return budget.allows(baseline.get("val_score"), row.get("val_score"))


def candidates(rows: Iterable[TrialRow]) -> list[TrialRow]:
    """Finished model trials (status done) of the model stages."""
    return [row for row in rows if row.status == "done" and row.stage in MODEL_STAGES]


def best_trial(
    rows: Iterable[TrialRow], baseline: TrialRow, budget: Budget, objective: str
) -> TrialRow | None:
    """The within-budget candidate with the lowest cost ("size" or "latency"); ties go to the better
    validation score (in the metric's direction)."""
    eligible = [
        row
        for row in candidates(rows)
        if within_budget(row, baseline, budget) and row.cost(objective) is not None
    ]
    if not eligible:
        return None
    sort_key = budget.metric.sort_key
    return min(eligible, key=lambda row: (row.cost(objective), sort_key(row.get("val_score"))))


@dataclass(frozen=True)
class Choice:
    """One deployable form (a runtime's file) of a finished trial, with its own scores, size and speed."""

    row: TrialRow
    form: dict[str, Any]

    @property
    def runtime(self) -> str:
        return self.form["runtime"]

    @property
    def label(self) -> str:
        return f"{self.row.label} on {self.runtime}"

    @property
    def batch(self) -> int:
        """The deploy batch the trial timed (the latency objective's)."""
        return int(self.row.extra["deploy"]["batch"])

    @property
    def artifact(self) -> str:
        """The file, relative to the run directory."""
        return f"artifacts/{self.row.trial_id}/{self.form['file']}"

    def speed(self, batch: int | None = None) -> dict[str, Any]:
        """{speedup, p10, p90, median_ms, original_ms, noisy} at `batch` (default: the deploy batch)."""
        return self.form["speed"][str(self.batch if batch is None else batch)]

    def cost(self, objective: str) -> float:
        """ "size": the file's bytes; "latency": runtime relative to the original at the deploy batch."""
        return float(self.form["bytes"]) if objective == "size" else 1.0 / self.speed()["speedup"]

    def key(self, metric: MetricSpec) -> tuple[Any, ...]:
        """The deterministic tie-break: smaller file, then better validation score, trial id, runtime."""
        return (self.form["bytes"], metric.sort_key(self.form["val_score"]), self.row.trial_id, self.runtime)


def deployable(rows: Iterable[TrialRow]) -> list[Choice]:
    """Every scored and timed form of the finished baseline and model trials (forms that failed to export,
    and trials without forms, e.g. masked zeros only, are not deployable)."""
    return [
        Choice(row, form)
        for row in rows
        if row.status == "done" and row.stage in ("profile", *MODEL_STAGES)
        for form in row.extra.get("deploy", {}).get("forms", [])
        if "speed" in form and form.get("val_score") is not None
    ]


def form_within_budget(choice: Choice, baseline: TrialRow, budget: Budget) -> bool:
    """True when the form's own validation score is within the budget of the original's."""
    return budget.allows(baseline.get("val_score"), choice.form.get("val_score"))


def best_choice(
    rows: Iterable[TrialRow], baseline: TrialRow, budget: Budget, objective: str
) -> Choice | None:
    """The deployable form to ship: the lowest cost ("latency": fastest at the deploy batch; "size":
    smallest file) within the budget.

    Ties are taken within the run-to-run drift of the timings: a form whose median speedup is at least
    TIE_FLOOR of the fastest's ties with it (for size: equal bytes); `Choice.key` picks among them, so runs
    with the same seed on the same machine ship the same file although timings differ a little.
    """
    eligible = [choice for choice in deployable(rows) if form_within_budget(choice, baseline, budget)]
    if not eligible:
        return None
    if objective == "size":
        least = min(choice.cost("size") for choice in eligible)
        tied = [choice for choice in eligible if choice.cost("size") == least]
    else:
        fastest = max(eligible, key=lambda choice: choice.speed()["speedup"])
        best = fastest.speed()
        tied = [choice for choice in eligible if choice.speed()["speedup"] >= TIE_FLOOR * best["speedup"]]
    return min(tied, key=lambda choice: choice.key(budget.metric))


def closest_choice(
    rows: Iterable[TrialRow], baseline: TrialRow, budget: Budget
) -> tuple[Choice, float] | None:
    """The deployable form nearest to the budget and by how much it misses it (budget terms), or None."""
    reference = baseline.get("val_score")
    scored = [
        (budget.drop(reference, choice.form["val_score"]) - budget.max_drop, choice)
        for choice in deployable(rows)
    ]
    if reference is None or not scored:
        return None
    missed, choice = min(scored, key=lambda item: (item[0], item[1].key(budget.metric)))
    return choice, missed


def fastest_choice(rows: Iterable[TrialRow]) -> Choice | None:
    """The fastest deployable form at the deploy batch, whatever its accuracy."""
    return max(deployable(rows), key=lambda choice: choice.speed()["speedup"], default=None)
