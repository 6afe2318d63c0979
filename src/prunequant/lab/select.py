"""Choosing under the budget: which trials qualify, and which is best, in the budget metric's direction."""

from __future__ import annotations

from collections.abc import Iterable

from prunequant.lab.budget import Budget
from prunequant.lab.store import MODEL_STAGES, TrialRow


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
