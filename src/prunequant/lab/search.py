"""Automatic search (Optuna TPE, optional extra `search`): the smallest or fastest model within budget.

Space: channel amount (structured; the only one that makes dense kernels faster), unstructured amount
with its allocation (global, per layer, or from sensitivity), weight bits per top-level module group,
and fine-tune epochs. The budget is an Optuna constraint (validation score at most the budget worse than
the baseline's, in the metric's direction); Optuna's ThresholdPruner stops a fine-tune whose drop exceeds
`slack` x budget (local backend).
Every trial is a row of the results DB; on resume the finished rows are replayed into a fresh study.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prunequant.errors import ConfigError
from prunequant.lab import sections as sec
from prunequant.lab.budget import Budget
from prunequant.lab.plans import compress_spec
from prunequant.lab.recovery import recovery_plan
from prunequant.lab.runner import Session
from prunequant.lab.sensitivity import allocate
from prunequant.lab.store import TrialRow, percent
from prunequant.lab.trials import TrialSpec, TrialStopped
from prunequant.training import Callback, Trainer

FLOAT_BITS = 32
Excess = Callable[[TrialRow], float]


def import_optuna() -> Any:
    """optuna, or a ConfigError saying how to install it."""
    try:
        import optuna
    except ImportError:
        raise ConfigError("the [search] stage needs Optuna: pip install 'prunequant[search]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def quant_groups(baseline: TrialRow) -> list[str]:
    """Top-level module groups holding conv/linear layers, in model order."""
    return list(dict.fromkeys(layer.split(".", 1)[0] for layer in baseline.extra["layers"]))


def search_space(optuna: Any, section: sec.SearchSection, groups: list[str]) -> dict[str, Any]:
    """Optuna distributions; a choice with one option is fixed, not searched."""
    dist = optuna.distributions
    space: dict[str, Any] = {"amount": dist.FloatDistribution(0.0, section.max_amount, step=0.05)}
    choices = {
        "channel_amount": section.channel_amounts,
        "allocation": section.allocations,
        "epochs": section.epochs,
        **{f"bits:{group}": section.bits for group in groups},
    }
    for name, options in choices.items():
        if len(set(options)) > 1:
            space[name] = dist.CategoricalDistribution(sorted(set(options), key=str))
    return space


def trial_spec(params: dict[str, Any], session: Session, groups: list[str]) -> TrialSpec:
    """The compress trial of one point of the space (unsampled choices take their only value)."""
    recipe, section = session.recipe, session.recipe.search
    baseline = session.baseline()
    channel = params.get("channel_amount", section.channel_amounts[0])
    amount = round(params["amount"], 4)
    allocation = params.get("allocation", section.allocations[0])
    bits = {group: params.get(f"bits:{group}", section.bits[0]) for group in groups}
    epochs = params.get("epochs", section.epochs[0])
    steps: list[dict[str, Any]] = []
    if channel > 0:
        steps.append({"op": "channels", "amount": channel, "importance": "l1", "allocation": "uniform"})
    if amount > 0 and allocation == "sensitivity":
        budget = session.budget
        tolerance = (
            budget.max_drop * abs(baseline.get("val_score", 0.0)) if budget.relative else budget.max_drop
        )
        overrides = allocate(session.store.rows("sensitivity"), amount, tolerance)
        steps.append({"op": "prune", "amount": 0.0, "scope": "layer", "overrides": overrides})
    elif amount > 0:
        steps.append({"op": "prune", "amount": amount, "scope": allocation})
    quantized = {group: b for group, b in bits.items() if b < FLOAT_BITS}
    if quantized:
        steps.append(
            {
                "op": "quantize",
                "w_bits": FLOAT_BITS,
                "a_bits": FLOAT_BITS,
                "granularity": "channel",
                "groups": quantized,
            }
        )
    finetune = {"epochs": epochs, "lr": recipe.baseline.lr, "refine_epochs": epochs, **recovery_plan(recipe)}
    label = (
        f"search: ch {percent(channel)}, prune {percent(amount)} {allocation}, "
        f"bits {'/'.join(str(bits[g]) for g in groups)}, {epochs} ep"
    )
    return compress_spec("search", label, baseline.trial_id, steps, finetune, params=params)


class PrunerCallback(Callback):
    """Reports the validation drop (in the budget's terms) after every epoch to the Optuna trial; stops it
    when the pruner says so."""

    def __init__(self, trial: Any, reference: float, budget: Budget) -> None:
        self.trial, self.reference, self.budget, self.step = trial, reference, budget, 0
        self.key = f"val_{budget.metric.name}"

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, float]) -> None:
        if self.key not in metrics:
            return
        self.trial.report(self.budget.drop(self.reference, metrics[self.key]), self.step)
        self.step += 1
        if self.trial.should_prune():
            raise TrialStopped({"val_score": metrics[self.key]}, {"stopped_after_epochs": self.step})


def _tell(optuna: Any, study: Any, trial: Any, row: TrialRow, objective: str, excess: Excess) -> None:
    states = optuna.trial.TrialState
    if row.status == "pruned":
        study.tell(trial, state=states.PRUNED)
    elif row.status != "done" or row.cost(objective) is None:
        study.tell(trial, state=states.FAIL)
    else:
        trial.set_constraint("budget", excess(row))
        study.tell(trial, row.cost(objective))


def _replay(
    optuna: Any, study: Any, rows: list[TrialRow], space: dict[str, Any], objective: str, excess: Excess
) -> None:
    """Add the finished search rows of a previous (interrupted) run to `study`."""
    states = optuna.trial.TrialState
    for row in rows:
        params = row.config.get("params", {})
        if not row.finished or set(params) != set(space):
            continue
        if row.status == "pruned" or row.cost(objective) is None:
            study.add_trial(
                optuna.trial.create_trial(state=states.PRUNED, params=params, distributions=space)
            )
            continue
        study.add_trial(
            optuna.trial.create_trial(
                params=params,
                distributions=space,
                value=row.cost(objective),
                constraints={"budget": excess(row)},
            )
        )


def run_search(session: Session) -> None:
    optuna = import_optuna()
    recipe, section = session.recipe, session.recipe.search
    objective = section.objective or recipe.run.objective
    baseline = session.baseline()
    groups = quant_groups(baseline)
    space = search_space(optuna, section, groups)
    budget, reference = session.budget, baseline.get("val_score")

    def excess(row: TrialRow) -> float:
        """How far beyond the budget a trial is (<= 0: feasible), for Optuna's constraint."""
        return budget.drop(reference, row.get("val_score")) - budget.max_drop

    pruner = optuna.pruners.ThresholdPruner(upper=section.slack * max(budget.max_drop, 1e-3))
    study = optuna.create_study(
        direction="minimize", pruner=pruner, sampler=optuna.samplers.TPESampler(seed=recipe.run.seed)
    )
    _replay(optuna, study, session.store.rows("search"), space, objective, excess)
    asked = 0
    while _finished(session) < section.trials and asked < 3 * section.trials:
        batch = [study.ask(space) for _ in range(min(section.parallel, section.trials - _finished(session)))]
        asked += len(batch)
        specs = [trial_spec(trial.params, session, groups) for trial in batch]
        pruners = {
            spec.trial_id: PrunerCallback(trial, reference, budget)
            for spec, trial in zip(specs, batch, strict=True)
        }
        rows = session.run(specs, lambda spec, pruners=pruners: [pruners[spec.trial_id]])
        rows_by_id = {row.trial_id: row for row in rows}
        for spec, trial in zip(specs, batch, strict=True):
            _tell(optuna, study, trial, rows_by_id[spec.trial_id], objective, excess)


def _finished(session: Session) -> int:
    return sum(row.finished for row in session.store.rows("search"))
