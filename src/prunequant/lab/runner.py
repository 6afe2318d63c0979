"""Running a recipe: the Session (driver side: DB, checkpoints, resume), the local backend, run_recipe.

Resume: every trial is registered as pending before it runs, marked running when dispatched, and
finished in one transaction after its checkpoint file is in place (temp file + rename). Re-running the
same command skips finished trials and redoes the pending, running (interrupted) and failed ones.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from prunequant.atomic import atomic_write
from prunequant.errors import ConfigError, PrunequantError
from prunequant.lab.env import budget_of, environment, task_of
from prunequant.lab.live import Observer, make_observer
from prunequant.lab.lock import locked_run
from prunequant.lab.recipe import Recipe
from prunequant.lab.select import Choice, best_choice
from prunequant.lab.store import DB_NAME, ResultsStore, TrialRow
from prunequant.lab.store_guard import check_run_dir
from prunequant.lab.trials import TrialOutcome, TrialSpec, TrialStopped, TrialTask, run_trial
from prunequant.training import Callback

CallbackFactory = Callable[[TrialSpec], list[Callback]]
StartHook = Callable[[TrialTask], list[Callback]]


class Backend(Protocol):
    """Executes trials and yields (task, outcome or exception) as each finishes; `start` is called when a
    task is dispatched and returns the Trainer callbacks a same-process backend should pass on."""

    name: str

    def execute(
        self, tasks: Sequence[TrialTask], start: StartHook
    ) -> Iterator[tuple[TrialTask, TrialOutcome | BaseException]]: ...

    def close(self) -> None: ...


class LocalBackend:
    """Runs trials one after another in this process."""

    name = "local"

    def execute(
        self, tasks: Sequence[TrialTask], start: StartHook
    ) -> Iterator[tuple[TrialTask, TrialOutcome | BaseException]]:
        for task in tasks:
            callbacks = start(task)
            try:
                outcome: TrialOutcome | BaseException = run_trial(task, callbacks)
            except Exception as exc:  # recorded as the trial's failure; the run goes on
                outcome = exc
            yield task, outcome

    def close(self) -> None: ...


class Session:
    """The driver of one run: it alone writes the results DB and the checkpoints."""

    def __init__(
        self, recipe: Recipe, run_dir: Path, store: ResultsStore, backend: Backend, observer: Observer
    ) -> None:
        self.recipe, self.run_dir, self.store = recipe, run_dir, store
        self.backend, self.observer = backend, observer
        self.budget = budget_of(recipe)
        self._inputs: dict[str, bytes] = {}

    def run(self, specs: Sequence[TrialSpec], callbacks: CallbackFactory | None = None) -> list[TrialRow]:
        """Register `specs`, run those not finished, and return their rows in order."""
        specs = list({spec.trial_id: spec for spec in specs}.values())
        self.store.add((spec.trial_id, spec.stage, spec.label, spec.config) for spec in specs)
        tasks = []
        for spec in specs:
            row = self.store.get(spec.trial_id)
            if row is not None and row.finished:
                continue
            missing = [
                s for s in spec.sources if (found := self.store.get(s)) is None or found.status != "done"
            ]
            if missing:
                self.store.fail(spec.trial_id, f"source trial {missing[0]} did not finish; see its error")
                continue
            tasks.append(TrialTask(spec, self.recipe, {s: self._checkpoint_bytes(s) for s in spec.sources}))
        if tasks:
            self.observer.stage_started(specs[0].stage, specs)

        def start(task: TrialTask) -> list[Callback]:
            self.store.start(task.spec.trial_id)
            self.observer.trial_started(task.spec)
            extra = callbacks(task.spec) if callbacks else []
            return [*self.observer.callbacks(), *extra]

        for task, outcome in self.backend.execute(tasks, start):
            self._record(task.spec, outcome)
        return [self.store.get(spec.trial_id) for spec in specs]  # type: ignore[misc]

    def baseline(self) -> TrialRow:
        """The finished profile (baseline) row; a ConfigError if the baseline could not be measured."""
        rows = self.store.rows("profile", "done")
        if not rows:
            failed = self.store.rows("profile")
            reason = failed[-1].error if failed else "it did not run"
            raise ConfigError(f"the baseline (profile stage) failed: {reason}")
        return rows[-1]

    def best(self) -> Choice | None:
        """The deployable form to ship so far, under the recipe's budget and objective."""
        baseline = self.store.rows("profile", "done")
        objective = self.recipe.run.objective
        return best_choice(self.store.rows(), baseline[-1], self.budget, objective) if baseline else None

    def save_best(self) -> Choice | None:
        """Record the trial and runtime of the best form so far in the store's meta ("best",
        "best_runtime"), for the report; return it."""
        best = self.best()
        self.store.set_meta("best", best.row.trial_id if best is not None else None)
        self.store.set_meta("best_runtime", best.runtime if best is not None else None)
        return best

    def _checkpoint_bytes(self, trial: str) -> bytes:
        if trial not in self._inputs:
            row = self.store.get(trial)
            if row is None or not row.checkpoint:
                raise ConfigError(f"trial {trial} has no checkpoint to start from")
            self._inputs[trial] = (self.run_dir / row.checkpoint).read_bytes()
        return self._inputs[trial]

    def _record(self, spec: TrialSpec, outcome: TrialOutcome | BaseException) -> None:
        trial = spec.trial_id
        row = self.store.get(trial)
        duration = time.time() - (row.started_at if row and row.started_at else time.time())
        if isinstance(outcome, TrialStopped):
            self.store.finish(
                trial, outcome.metrics, status="pruned", extra=outcome.extra, duration_s=duration
            )
        elif isinstance(outcome, BaseException):
            if not isinstance(outcome, PrunequantError):
                self._write_traceback(trial, outcome)
            self.store.fail(trial, f"{type(outcome).__name__}: {outcome}", duration)
        else:
            checkpoint = None
            for name, data in outcome.files.items():
                atomic_write(self.run_dir / "artifacts" / trial / name, data)
            if outcome.checkpoint is not None:
                checkpoint = f"checkpoints/{trial}{outcome.suffix}"
                atomic_write(self.run_dir / checkpoint, outcome.checkpoint)
                self._inputs.pop(trial, None)
            self.store.finish(
                trial,
                outcome.metrics,
                extra=outcome.extra,
                checkpoint=checkpoint,
                duration_s=outcome.duration_s,
            )
        best = self.best()
        self.observer.trial_finished(self.store.get(trial), best.row if best else None)  # type: ignore[arg-type]

    def _write_traceback(self, trial: str, exc: BaseException) -> None:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        atomic_write(self.run_dir / "errors" / f"{trial}.log", text.encode())


def make_backend(name: str, address: str | None = None) -> Backend:
    """'local' or 'ray' (optional extra `dist`)."""
    if name == "local":
        return LocalBackend()
    if name == "ray":
        from prunequant.lab.ray_backend import RayBackend

        return RayBackend(address)
    raise ConfigError(f"backend must be local or ray, got {name!r}")


def preflight(recipe: Recipe) -> None:
    """Load the data and the model (and check optional extras) before anything is written, so their
    errors come first."""
    from prunequant.lab.compress import load_baseline_model

    if recipe.search is not None:
        from prunequant.lab.search import import_optuna

        import_optuna()
    env = environment(recipe)
    load_baseline_model(recipe, env)


def open_run(recipe: Recipe, run_dir: str | Path) -> ResultsStore:
    """Create or reopen the run directory; a directory of another recipe context is refused."""
    run_dir = Path(run_dir)
    existing = run_dir / DB_NAME
    check_run_dir(run_dir, DB_NAME)
    if existing.exists():
        with ResultsStore(existing) as store:
            context, previous = store.get_meta("context"), store.get_meta("recipe")
        if context is not None and context != recipe.context_hash():
            raise ConfigError(
                f"{run_dir} holds a run of a different model/data/baseline/seed; use a new -o to start over"
            )
        _check_measurement(recipe, previous, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    store = ResultsStore(existing)
    store.set_meta("context", recipe.context_hash())
    store.set_meta("recipe", recipe.to_dict())
    store.set_meta("task", task_of(recipe).describe())
    store.set_meta("budget", budget_of(recipe).to_dict())
    return store


MEASUREMENT_KEYS = ("runtimes", "deploy_batch")
"""[run] settings every finished trial's deployable forms were measured with: a resumed run must keep them."""


def _check_measurement(recipe: Recipe, previous: dict | None, run_dir: Path) -> None:
    """Refuse to resume when `[run] runtimes` or `deploy_batch` changed: the finished trials were deployed
    and timed under the old ones and would not be re-measured, so the choice would mix the two."""
    old_run = (previous or {}).get("run") or {}
    new_run = recipe.to_dict()["run"]
    changed = [
        key for key in MEASUREMENT_KEYS if key in old_run and _as_list(old_run[key]) != _as_list(new_run[key])
    ]
    if changed:
        what = "; ".join(f"{key} {old_run[key]!r} -> {new_run[key]!r}" for key in changed)
        raise ConfigError(
            f"{run_dir} was measured with other [run] settings ({what}); its finished trials would not be "
            "re-measured: use a new -o, or set them back"
        )


def _as_list(value: object) -> object:
    """Tuples and lists compare alike (the stored recipe is JSON)."""
    return list(value) if isinstance(value, (list, tuple)) else value


@locked_run
def run_recipe(
    recipe: Recipe,
    run_dir: str | Path,
    *,
    backend: str = "local",
    address: str | None = None,
    progress: bool = True,
    recipe_file: str | Path | None = None,
) -> dict[str, Any]:
    """Run (or resume) `recipe` into `run_dir`; return {trials, done, failed, best, ship, run_dir}.

    After the stages, the best deployable form is shipped to `run_dir/ship/` (prunequant.lab.ship).
    The report is not written here: `prunequant report RUN_DIR` (prunequant.report.write_report) reads
    the run directory, the only thing the lab hands on.
    """
    from prunequant.lab.ship import run_ship
    from prunequant.lab.stages import STAGES

    preflight(recipe)
    executor = make_backend(backend, address)
    run_dir = Path(run_dir)
    store = open_run(recipe, run_dir)
    if recipe_file is not None:
        atomic_write(run_dir / "recipe.toml", Path(recipe_file).read_bytes())
    observer = make_observer(f"prunequant run {run_dir.name}", progress, budget_of(recipe).metric)
    try:
        observer.run_started(recipe.stages(), store.rows())
        session = Session(recipe, run_dir, store, executor, observer)
        for stage in recipe.stages():
            STAGES[stage](session)
            session.save_best()
        best = session.save_best()
        card = run_ship(session)
    finally:
        observer.close()
        executor.close()
        store.close()
    return summarize(run_dir, best, card)


def summarize(run_dir: Path, best: Choice | None, card: dict[str, Any] | None = None) -> dict[str, Any]:
    """The stable JSON of `prunequant run --json`."""
    with ResultsStore(run_dir / DB_NAME) as store:
        counts = store.counts()
        budget = store.get_meta("budget") or {}
    best_dict = None
    if best is not None:
        row = best.row
        best_dict = {
            "trial_id": row.trial_id,
            "stage": row.stage,
            "label": row.label,
            "metric": budget.get("metric"),
            "runtime": best.runtime,
            "precision": best.form.get("precision"),
            **{key: best.form.get(key) for key in ("score", "val_score", "metrics", "bytes", "speed")},
            "file": str(run_dir / best.artifact),
            "checkpoint": str(run_dir / row.checkpoint) if row.checkpoint else None,
        }
    return {
        "trials": sum(counts.values()),
        "done": counts["done"] + counts["pruned"],
        "failed": counts["failed"],
        "best": best_dict,
        "ship": card,
        "run_dir": str(run_dir),
    }
