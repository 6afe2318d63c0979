"""Choosing under the accuracy budget: which trials qualify, which is best, and the Pareto front."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prunequant.lab.store import TrialRow

MODEL_STAGES = (
    "post_prune",
    "aware_prune",
    "post_quant",
    "aware_quant",
    "combine",
    "structured",
    "search",
)
"""Stages whose trials are candidate models (profile is the baseline; the others measure or deploy)."""


def within_budget(row: TrialRow, baseline: TrialRow, max_drop: float) -> bool:
    """True when the trial's validation score is at most `max_drop` below the baseline's."""
    score, reference = row.get("val_score"), baseline.get("val_score")
    if score is None or reference is None:
        return False
    return score >= reference - max_drop - 1e-12


def objective_value(row: TrialRow, objective: str) -> float | None:
    """What `objective` minimises: "size" the file bytes, "latency" the runtime relative to the original
    (1 / speedup, timed interleaved within the trial, so machine load cancels out); None if unmeasured."""
    if objective == "size":
        return row.get("file_bytes")
    speedup = row.get("speedup")
    return 1.0 / speedup if speedup else None


def candidates(rows: Iterable[TrialRow]) -> list[TrialRow]:
    """Finished model trials (status done) of the model stages."""
    return [row for row in rows if row.status == "done" and row.stage in MODEL_STAGES]


def best_trial(
    rows: Iterable[TrialRow], baseline: TrialRow, max_drop: float, objective: str
) -> TrialRow | None:
    """The within-budget candidate with the lowest objective ("size" or "latency"); ties go to the higher
    validation score."""
    eligible = [
        row
        for row in candidates(rows)
        if within_budget(row, baseline, max_drop) and objective_value(row, objective) is not None
    ]
    if not eligible:
        return None
    return min(eligible, key=lambda row: (objective_value(row, objective), -row.get("val_score", 0.0)))


def pareto_front(rows: Sequence[TrialRow], objective: str, score: str = "top1") -> list[TrialRow]:
    """Rows not dominated in (lower objective_value, higher `score` column), sorted by the objective."""
    points = [
        row for row in rows if objective_value(row, objective) is not None and row.get(score) is not None
    ]
    points.sort(key=lambda row: (objective_value(row, objective), -row.get(score)))
    front: list[TrialRow] = []
    best_score = float("-inf")
    for row in points:
        if row.get(score) > best_score:
            front.append(row)
            best_score = row.get(score)
    return front
