import sys

import pytest

from prunequant.errors import ConfigError
from prunequant.lab.budget import Budget
from prunequant.lab.search import PrunerCallback, import_optuna, quant_groups
from prunequant.lab.trials import TrialStopped
from prunequant.tasks import default_task


def test_a_missing_optuna_is_a_config_error_with_the_fix(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(ConfigError, match=r"pip install 'prunequant\[search\]'"):
        import_optuna()


def test_quantization_groups_are_the_top_level_modules_in_order(make_row):
    row = make_row("profile", extra={"layers": ["features.0", "features.3.1", "fc", "features.9", "head.0"]})
    assert quant_groups(row) == ["features", "fc", "head"]


def test_the_budget_is_an_optuna_constraint_the_best_trial_respects():
    optuna = pytest.importorskip("optuna")
    from prunequant.lab.search import _tell

    class Row:
        def __init__(self, size, val):
            self.status, self.metrics = "done", {"file_bytes": size, "val_score": val}

        def get(self, key, default=None):
            return self.metrics.get(key, default)

        def cost(self, objective):
            return self.metrics["file_bytes"]

    study = optuna.create_study(direction="minimize")
    space = {"amount": optuna.distributions.FloatDistribution(0.0, 0.9, step=0.05)}
    def excess(row):
        return (0.90 - row.get("val_score")) - 0.01

    for size, val in ((100, 0.70), (300, 0.895), (200, 0.889)):
        _tell(optuna, study, study.ask(space), Row(size, val), "size", excess)
    assert study.best_trial.value == 300  # 100 and 200 break the budget
    assert [t.constraints["budget"] for t in study.trials] == pytest.approx([0.19, -0.005, 0.001])


def test_the_pruner_callback_stops_a_trial_far_beyond_the_budget():
    optuna = pytest.importorskip("optuna")
    study = optuna.create_study(direction="minimize", pruner=optuna.pruners.ThresholdPruner(upper=0.03))
    trial = study.ask({"amount": optuna.distributions.FloatDistribution(0.0, 0.9)})
    callback = PrunerCallback(trial, 0.90, Budget(default_task().metric(), 0.01))
    callback.on_epoch_end(None, 0, {"val_top1": 0.88})  # 2 points down: keep going
    with pytest.raises(TrialStopped) as stopped:
        callback.on_epoch_end(None, 1, {"val_top1": 0.80})
    assert stopped.value.metrics == {"val_score": 0.80} and stopped.value.extra == {"stopped_after_epochs": 2}
    assert trial.storage.get_trial(trial._trial_id).intermediate_values == pytest.approx({0: 0.02, 1: 0.10})


def test_a_search_recipe_without_optuna_fails_before_any_work(recipe_file, tmp_path, monkeypatch, capsys):
    from prunequant.cli.main import main

    monkeypatch.setitem(sys.modules, "optuna", None)
    out = tmp_path / "run"
    assert main(["run", str(recipe_file("\n[search]\ntrials = 2\n")), "-o", str(out)]) == 2
    assert "pip install 'prunequant[search]'" in capsys.readouterr().err and not out.exists()
