"""The compression lab: one TOML recipe in, a results database and a report out.

    prunequant run recipes/seed000.toml -o runs/seed000        # resumable: re-run the same command
    prunequant report runs/seed000                             # report.md, report.html, plots/

From Python: `run_recipe(load_recipe(path), "runs/NAME")`, then
prunequant.report.write_report("runs/NAME") (the lab never imports the report: the run directory is all
it hands on). A recipe (prunequant.lab.recipe) names the
model, data, baseline hyper-parameters, budget and stages; every trial is one row of the SQLite store
(schema: prunequant.lab.store), run by the one trial function (prunequant.lab.trials.run_trial) on the
local or the Ray backend.
"""

from prunequant.lab.recipe import Recipe, load_recipe, parse_recipe
from prunequant.lab.runner import LocalBackend, Session, run_recipe
from prunequant.lab.select import best_trial, within_budget
from prunequant.lab.store import ResultsStore, TrialRow
from prunequant.lab.trials import TrialOutcome, TrialSpec, TrialTask, register_kind, run_trial

__all__ = [
    "LocalBackend",
    "Recipe",
    "ResultsStore",
    "Session",
    "TrialOutcome",
    "TrialRow",
    "TrialSpec",
    "TrialTask",
    "best_trial",
    "load_recipe",
    "parse_recipe",
    "register_kind",
    "run_recipe",
    "run_trial",
    "within_budget",
]
