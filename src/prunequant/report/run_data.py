"""A run directory as the report sees it: the rows of its results DB (read-only, through the store's
schema), the task's metrics, the budget, the best model the lab recorded and the model card of what it
shipped (ship/model_card.json)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prunequant.errors import ConfigError
from prunequant.lab.store import DB_NAME, MODEL_STAGES, ResultsStore, TrialRow
from prunequant.tasks import MetricSpec, default_task


@dataclass(frozen=True)
class RunData:
    """Everything the tables and plots read; `baseline` is None when the profile stage did not finish.

    `metrics` are the task's metrics (the columns of `TrialRow.metrics["metrics"]`), `metric` the one the
    budget is on (the `score` / `val_score` columns), `budget` the lab's {metric, max_drop, relative,
    text}, `ship` the model card of ship/ (None when the run shipped nothing yet).
    """

    run_dir: Path
    name: str
    recipe: dict[str, Any]
    rows: list[TrialRow]
    baseline: TrialRow | None
    best: TrialRow | None
    combine_choice: dict[str, Any] | None
    task: dict[str, Any]
    budget: dict[str, Any]
    ship: dict[str, Any] | None = None

    @property
    def metrics(self) -> list[MetricSpec]:
        return [MetricSpec(**spec) for spec in self.task["metrics"]]

    @property
    def metric(self) -> MetricSpec:
        name = self.budget.get("metric") or self.task["primary"]
        return next(spec for spec in self.metrics if spec.name == name)

    @property
    def objective(self) -> str:
        return self.recipe.get("run", {}).get("objective", "size")  # runs from before "latency" was default

    def limit(self) -> float | None:
        """The worst validation score the budget allows (baseline's val_score moved by the budget)."""
        if self.baseline is None or self.baseline.get("val_score") is None:
            return None
        base, amount = self.baseline.get("val_score"), float(self.budget.get("max_drop", 0.0))
        step = amount * abs(base) if self.budget.get("relative") else amount
        return base - step if self.metric.higher_is_better else base + step

    def stage(self, name: str, *, done: bool = True) -> list[TrialRow]:
        """Rows of stage `name` (finished with status done only, by default)."""
        return [row for row in self.rows if row.stage == name and (row.status == "done" or not done)]

    def models(self) -> list[TrialRow]:
        """Finished candidate models of every model stage."""
        return [row for row in self.rows if row.status == "done" and row.stage in MODEL_STAGES]

    def pareto_front(self, rows: Sequence[TrialRow], objective: str, key: str = "score") -> list[TrialRow]:
        """Rows not dominated in (lower cost, better `key` in the metric's direction), by cost."""
        better = self.metric.sort_key  # smaller = better
        points = [row for row in rows if row.cost(objective) is not None and row.get(key) is not None]
        points.sort(key=lambda row: (row.cost(objective), better(row.get(key))))
        front: list[TrialRow] = []
        for row in points:
            if not front or better(row.get(key)) < better(front[-1].get(key)):
                front.append(row)
        return front


def load_run(run_dir: str | Path) -> RunData:
    """Read a run directory written by `prunequant run`."""
    run_dir = Path(run_dir)
    path = run_dir / DB_NAME
    if not path.is_file():
        raise ConfigError(
            f"{run_dir} is not a run directory (no {DB_NAME}); give the -o folder of 'prunequant run'"
        )
    with ResultsStore(path, read_only=True) as store:
        rows = store.rows()
        recipe = store.get_meta("recipe") or {}
        choice = store.get_meta("combine_choice")
        task = store.get_meta("task") or default_task().describe()  # runs from before tasks
        budget = store.get_meta("budget") or {}
        best_id = store.get_meta("best")
    profile = [row for row in rows if row.stage == "profile" and row.status == "done"]
    baseline = profile[-1] if profile else None
    best = next((row for row in rows if row.trial_id == best_id), None)
    name = recipe.get("name") or run_dir.name
    return RunData(run_dir, name, recipe, rows, baseline, best, choice, task, budget, load_card(run_dir))


def load_card(run_dir: Path) -> dict[str, Any] | None:
    """ship/model_card.json of `run_dir`, or None when absent; a damaged card is a ConfigError."""
    path = run_dir / "ship" / "model_card.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} cannot be read as a model card ({exc}); run the recipe again") from None
