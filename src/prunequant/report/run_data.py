"""A run directory as the report sees it: the rows of its results DB, the baseline, budget and best model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prunequant.errors import ConfigError
from prunequant.lab.select import best_trial, candidates
from prunequant.lab.store import DB_NAME, ResultsStore, TrialRow


@dataclass(frozen=True)
class RunData:
    """Everything the tables and plots read; `baseline` is None when the profile stage did not finish."""

    run_dir: Path
    name: str
    recipe: dict[str, Any]
    rows: list[TrialRow]
    baseline: TrialRow | None
    best: TrialRow | None
    combine_choice: dict[str, Any] | None

    @property
    def max_drop(self) -> float:
        return float(self.recipe.get("run", {}).get("max_drop", 0.01))

    @property
    def objective(self) -> str:
        return self.recipe.get("run", {}).get("objective", "size")

    @property
    def metric(self) -> str:
        return self.recipe.get("run", {}).get("metric", "top1")

    def stage(self, name: str, *, done: bool = True) -> list[TrialRow]:
        """Rows of stage `name` (finished with status done only, by default)."""
        return [row for row in self.rows if row.stage == name and (row.status == "done" or not done)]

    def models(self) -> list[TrialRow]:
        """Finished candidate models of every model stage."""
        return candidates(self.rows)


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
    profile = [row for row in rows if row.stage == "profile" and row.status == "done"]
    baseline = profile[-1] if profile else None
    run = recipe.get("run", {})
    best = None
    if baseline is not None:
        best = best_trial(rows, baseline, float(run.get("max_drop", 0.01)), run.get("objective", "size"))
    name = recipe.get("name") or run_dir.name
    return RunData(run_dir, name, recipe, rows, baseline, best, choice)
